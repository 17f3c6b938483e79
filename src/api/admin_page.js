// The admin page's script (inlined by src/api/admin_html.rs under a per-response CSP nonce).
// It asks for a token, keeps it in sessionStorage (gone when the tab closes; no cookie, so no
// CSRF), sends it as `Authorization: Bearer` and draws everything from the admin API's JSON
// with DOM calls and textContent: no data is ever parsed as HTML. Vanilla ES2017.
"use strict";
(function () {
  const KEY = "hamn-admin-token";
  const POLL_MS = 2000;
  // Requests go to this origin under the server's public path (the CSP allows 'self' only).
  let prefix = "";
  try {
    prefix = new URL(document.body.dataset.base || "", location.href).pathname.replace(/\/+$/, "");
  } catch (e) {
    prefix = "";
  }
  const $ = (id) => document.getElementById(id);

  let token = null;
  try {
    token = sessionStorage.getItem(KEY);
  } catch (e) {
    token = null;
  }
  let pollTimer = null;
  let generation = 0; // bumped on log out: answers to older requests are dropped
  const openReports = new Set();

  class ApiError extends Error {
    constructor(status, description, retryAfter) {
      super(description);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  // An element with attributes and children (strings become text nodes).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = String(v);
      else if (k === "testid") e.dataset.testid = String(v);
      else if (k === "onclick") e.addEventListener("click", v);
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function time(s) {
    if (!s) return "—";
    const d = new Date(s);
    if (isNaN(d.getTime())) return String(s);
    return d.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function waitText(e) {
    // The server's description usually says how long already.
    if (!e.retryAfter || /try again in/.test(e.message)) return "";
    return " (wait " + e.retryAfter + " s)";
  }

  // Shows a message in a status element: kind "ok" or "error".
  function say(id, text, kind) {
    const e = $(id);
    if (!e) return;
    e.textContent = text;
    e.dataset.kind = kind || "";
  }

  function sayError(id, e) {
    if (e instanceof ApiError && e.status === 401) return; // the login form shows it
    say(id, e.message + (e instanceof ApiError && e.status === 429 ? waitText(e) : ""), "error");
  }

  // The answer of a call: its JSON, or an ApiError with the server's description.
  function answer(status, retryAfter, text) {
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (status >= 200 && status < 300) return data;
    const description =
      data && typeof data.description === "string" ? data.description : "the server answered " + status;
    const err = new ApiError(status, description, retryAfter);
    if (status === 401) loggedOut(description);
    throw err;
  }

  async function call(method, path, body, withToken) {
    const t = withToken === undefined ? token : withToken;
    const gen = generation;
    const headers = { Accept: "application/json" };
    if (t) headers.Authorization = "Bearer " + t;
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(prefix + path, init);
    } catch (e) {
      throw new ApiError(0, "the server did not answer: " + e.message, null);
    }
    const text = await resp.text();
    if (gen !== generation && withToken === undefined) throw new ApiError(0, "logged out", null);
    return answer(resp.status, resp.headers.get("Retry-After"), text);
  }

  // ---- logging in and out ----

  function showLogin(message) {
    $("app").hidden = true;
    $("login").hidden = false;
    say("login-error", message || "", message ? "error" : "");
    $("login-token").focus();
  }

  function loggedOut(message) {
    generation += 1;
    token = null;
    try {
      sessionStorage.removeItem(KEY);
    } catch (e) {
      /* storage may be off */
    }
    stopPolling();
    showLogin(message);
  }

  function showApp(who) {
    $("login").hidden = true;
    $("app").hidden = false;
    $("whoami").textContent = who.name + " (" + scopeText(who.scope) + ", token " + who.id + ")";
    document.body.dataset.loggedIn = "yes";
    refreshAll();
  }

  function scopeText(scope) {
    if (typeof scope === "string") return scope;
    if (scope && Array.isArray(scope.write)) return "write: " + scope.write.join(", ");
    if (scope && scope.write && Array.isArray(scope.write.collections)) {
      return "write: " + scope.write.collections.join(", ") + ", source " + scope.write.sourceOrg + "'s part only";
    }
    return JSON.stringify(scope);
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = $("login-token").value.trim();
    if (!t) {
      say("login-error", "Paste a token (hamn tokens create).", "error");
      return;
    }
    say("login-error", "Checking …", "");
    $("login-submit").disabled = true;
    try {
      const who = await call("GET", "/admin/whoami", undefined, t);
      token = t;
      try {
        sessionStorage.setItem(KEY, t);
      } catch (e) {
        /* the page still works while it stays open */
      }
      $("login-token").value = "";
      say("login-error", "", "");
      showApp(who);
    } catch (e) {
      if (e.status === 429) say("login-error", e.message + waitText(e), "error");
      else if (e.status !== 401) say("login-error", e.message, "error");
    } finally {
      $("login-submit").disabled = false;
    }
  });

  $("logout").addEventListener("click", () => {
    delete document.body.dataset.loggedIn;
    loggedOut("Logged out.");
  });

  // ---- polling ----

  function stopPolling() {
    if (pollTimer !== null) clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function refreshAll() {
    stopPolling();
    if (!token) return;
    const gen = generation;
    const results = await Promise.allSettled([loadCollections(), loadJobs(), loadCatalogs()]);
    if (gen !== generation || !token) return;
    const failed = results.find((r) => r.status === "rejected");
    if (failed) sayError("status", failed.reason);
    else say("status", "Updated " + new Date().toLocaleTimeString() + ".", "ok");
    const jobs = results[1].status === "fulfilled" ? results[1].value : [];
    const busy = jobs.some((j) => j.state === "queued" || j.state === "running");
    document.body.dataset.polling = busy ? "yes" : "no";
    if (busy) pollTimer = setTimeout(refreshAll, POLL_MS);
  }

  // ---- collections ----

  async function loadCollections() {
    const data = await call("GET", "/admin/collections");
    const list = (data && data.collections) || [];
    const body = $("collections-body");
    const rows = list.map((c) => collectionRow(c));
    if (rows.length === 0) {
      rows.push(el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No collections yet." })));
    }
    body.replaceChildren(...rows);
    const ids = $("collection-ids");
    ids.replaceChildren(...list.map((c) => el("option", { value: c.id })));
    return list;
  }

  function collectionRow(c) {
    const src = c.source;
    const job = c.lastJob;
    const sourceCell = el("td", {});
    if (src) {
      sourceCell.append(
        el("span", { class: "url", text: src.url }),
        el("br"),
        el("span", { class: "muted" },
          "every " + src.intervalSeconds + " s; last " + (src.lastState || "not checked") +
          ", checked " + time(src.lastChecked)),
      );
      if (src.lastMessage) sourceCell.append(el("br"), el("span", { class: "muted", text: src.lastMessage }));
    } else {
      sourceCell.append(el("span", { class: "muted", text: "—" }));
    }
    const actions = el("td", {});
    if (src) {
      actions.append(
        el("button", {
          type: "button",
          testid: "refresh-" + c.id,
          "aria-label": "Refresh " + c.id + " from its source now",
          onclick: () => refreshSource(c.id),
          text: "Refresh now",
        }),
      );
    }
    return el("tr", { testid: "collection-row", "data-collection": c.id },
      el("td", {},
        el("a", { href: prefix + "/collections/" + encodeURIComponent(c.id), text: c.id })),
      el("td", { text: c.title || "" }),
      el("td", { class: "num", text: c.featureCount }),
      el("td", { class: "num", text: c.version }),
      el("td", { class: "num", text: c.servedVersion === null || c.servedVersion === undefined ? "—" : c.servedVersion }),
      sourceCell,
      el("td", {}, job ? stateBadge(job.state) : el("span", { class: "muted", text: "—" })),
      actions,
    );
  }

  function stateBadge(state) {
    return el("span", { class: "state state-" + state, text: state });
  }

  async function refreshSource(id) {
    say("status", "Asking for a refresh of " + id + " …", "");
    try {
      const job = await call("POST", "/admin/collections/" + encodeURIComponent(id) + "/refresh");
      say("status", "Refresh of " + id + " queued as job " + job.id + ".", "ok");
      refreshAll();
    } catch (e) {
      sayError("status", e);
    }
  }

  function field(id) {
    return $(id).value.trim();
  }

  function optional(v) {
    return v === "" ? undefined : v;
  }

  $("create-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = field("create-id");
    const body = {
      id,
      title: optional(field("create-title")),
      description: optional(field("create-description")),
      licence: optional(field("create-licence")),
      publisher: optional(field("create-publisher")),
    };
    say("create-result", "Creating …", "");
    try {
      await call("POST", "/admin/collections", body);
      say("create-result", "Collection " + id + " made. Upload a file into it or give it a source URL.", "ok");
      $("create-form").reset();
      $("upload-collection").value = id;
      $("upload-mode").value = "replace";
      $("source-collection").value = id;
      refreshAll();
    } catch (e) {
      sayError("create-result", e);
    }
  });

  // ---- upload, with progress ----

  function setProgress(loaded, total) {
    const bar = $("upload-progress");
    const pct = total > 0 ? Math.min(100, Math.round((loaded / total) * 100)) : 0;
    bar.value = pct;
    bar.setAttribute("aria-valuetext", pct + " %");
    $("upload-percent").textContent = pct + " %";
    const seen = Number(bar.dataset.maxPercent || "0");
    if (pct > seen) bar.dataset.maxPercent = String(pct);
  }

  $("upload-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = field("upload-collection");
    const mode = $("upload-mode").value;
    const file = $("upload-file").files[0];
    if (!id || !file) {
      say("upload-result", "Choose a collection id and a file.", "error");
      return;
    }
    const bar = $("upload-progress");
    bar.dataset.maxPercent = "0";
    bar.dataset.events = "0";
    setProgress(0, 1);
    $("upload-job").replaceChildren();
    say("upload-result", "Sending " + file.name + " …", "");
    $("upload-submit").disabled = true;
    const gen = generation;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", prefix + "/admin/collections/" + encodeURIComponent(id) +
      "/upload?mode=" + encodeURIComponent(mode));
    xhr.setRequestHeader("Authorization", "Bearer " + token);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => {
      bar.dataset.events = String(Number(bar.dataset.events || "0") + 1);
      if (e.lengthComputable) setProgress(e.loaded, e.total);
    };
    xhr.upload.onload = () => setProgress(1, 1);
    xhr.onerror = () => {
      $("upload-submit").disabled = false;
      say("upload-result", "The upload broke off (network error).", "error");
    };
    xhr.onload = () => {
      $("upload-submit").disabled = false;
      if (gen !== generation) return;
      let job;
      try {
        job = answer(xhr.status, xhr.getResponseHeader("Retry-After"), xhr.responseText);
      } catch (e) {
        sayError("upload-result", e);
        return;
      }
      setProgress(1, 1);
      say("upload-result", "Received; job " + job.id + " is " + job.state + ".", "ok");
      $("upload-job").replaceChildren(jobSummary(job));
      refreshAll();
    };
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });

  // ---- source URL ----

  $("source-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = field("source-collection");
    const body = {
      url: field("source-url"),
      protocol: $("source-protocol").value,
      intervalSeconds: Number($("source-interval").value),
    };
    say("source-result", "Saving …", "");
    try {
      const r = await call("PUT", "/admin/collections/" + encodeURIComponent(id) + "/source", body);
      const job = r && r.job;
      say("source-result", "Source of " + id + " saved" + (job ? "; job " + job.id + " checks it now." : "."), "ok");
      refreshAll();
    } catch (e) {
      sayError("source-result", e);
    }
  });

  // ---- catalogs ----

  async function loadCatalogs() {
    const data = await call("GET", "/admin/sources");
    const list = ((data && data.sources) || []).filter((s) => s.type === "catalog");
    const rows = list.map((s) =>
      el("tr", { testid: "catalog-row", "data-key": s.key },
        el("td", {}, el("span", { class: "url", text: s.url }), el("br"), el("code", { text: s.key })),
        el("td", { text: s.prefix || "—" }),
        el("td", { class: "num", text: s.intervalSeconds }),
        el("td", {}, s.lastState ? stateBadge(s.lastState) : el("span", { class: "muted", text: "—" })),
        el("td", { text: time(s.lastChecked) }),
        el("td", { text: s.lastMessage || "" }),
        el("td", {},
          el("button", {
            type: "button",
            "aria-label": "Harvest " + s.url + " now",
            onclick: () => harvestNow(s.key),
            text: "Harvest now",
          })),
      ));
    if (rows.length === 0) {
      rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No catalogs." })));
    }
    $("catalogs-body").replaceChildren(...rows);
    return list;
  }

  async function harvestNow(key) {
    try {
      const job = await call("POST", "/admin/catalogs/" + encodeURIComponent(key) + "/harvest");
      say("status", "Harvest queued as job " + job.id + ".", "ok");
      refreshAll();
    } catch (e) {
      sayError("status", e);
    }
  }

  $("catalog-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {
      url: field("catalog-url"),
      intervalSeconds: Number($("catalog-interval").value),
      prefix: field("catalog-prefix"),
    };
    say("catalog-result", "Saving …", "");
    try {
      const r = await call("POST", "/admin/catalogs", body);
      say("catalog-result", "Catalog " + r.key + " saved" + (r.job ? "; job " + r.job.id + " harvests it now." : "."), "ok");
      refreshAll();
    } catch (e) {
      sayError("catalog-result", e);
    }
  });

  // ---- jobs ----

  async function loadJobs() {
    const data = await call("GET", "/admin/jobs");
    const jobs = (data && data.jobs) || [];
    const rows = jobs.map(jobRow);
    if (rows.length === 0) {
      rows.push(el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No jobs yet." })));
    }
    $("jobs-body").replaceChildren(...rows);
    // Keep the upload form's job line current too.
    const shown = $("upload-job").querySelector("[data-job-id]");
    const current = shown && jobs.find((j) => j.id === shown.dataset.jobId);
    if (current) $("upload-job").replaceChildren(jobSummary(current));
    return jobs;
  }

  function what(job) {
    if (job.type === "harvest") return "catalog " + (job.catalog || "");
    return job.collection || "";
  }

  function jobSummary(job) {
    return el("p", { testid: "upload-job", "data-job-id": job.id },
      "Job ", el("code", { text: job.id }), " (" + job.type + " of " + what(job) + "): ", stateBadge(job.state));
  }

  function progressText(p) {
    if (!p) return "";
    return p.written + " / " + (p.total === null || p.total === undefined ? "?" : p.total);
  }

  function jobRow(job) {
    const active = job.state === "queued" || job.state === "running";
    const detailsCell = el("td", {});
    if ((job.report && job.report.length) || (job.harvest && job.harvest.length)) {
      const d = el("details", { testid: "job-report" }, el("summary", { text: "report" }), report(job));
      if (openReports.has(job.id)) d.open = true;
      d.addEventListener("toggle", () => {
        if (d.open) openReports.add(job.id);
        else openReports.delete(job.id);
      });
      detailsCell.append(d);
    }
    const actions = el("td", {});
    if (active) {
      actions.append(el("button", {
        type: "button",
        testid: "cancel-" + job.id,
        "aria-label": "Cancel job " + job.id,
        onclick: () => cancelJob(job.id),
        text: "Cancel",
      }));
    }
    let about = job.type;
    if (job.type === "upload") about += " (" + job.mode + ", " + job.fileName + ")";
    if (job.type === "theme-upload") about += " (source " + job.source + ", " + job.fileName + ")";
    return el("tr", { testid: "job-row", "data-job-id": job.id, "data-state": job.state },
      el("td", {}, stateBadge(job.state), el("br"), el("code", { class: "muted", text: job.id })),
      el("td", { text: about }),
      el("td", { text: what(job) }),
      el("td", { class: "num", text: progressText(job.progress) }),
      el("td", { text: time(job.created) }),
      el("td", { text: time(job.finished) }),
      el("td", { class: "message", text: job.message || "" }),
      detailsCell,
      actions,
    );
  }

  function notes(title, list, count) {
    if (!list || list.length === 0) return null;
    const more = count > list.length ? " (first " + list.length + " of " + count + ")" : "";
    return el("div", {},
      el("h4", { text: title + more }),
      el("ul", {}, ...list.map((n) => el("li", { text: "feature " + n.feature + ": " + n.reason }))));
  }

  function report(job) {
    const box = el("div", { class: "report" });
    for (const r of job.report || []) {
      box.append(
        el("h4", { text: r.collection + " → version " + r.version + (r.changed ? "" : " (unchanged)") }),
        el("table", { class: "counts" },
          el("tr", {}, ...["read", "stored", "repaired", "rejected", "features", "seconds"].map((h) => el("th", { scope: "col", text: h }))),
          el("tr", {},
            el("td", { class: "num", text: r.read }),
            el("td", { class: "num", text: r.stored }),
            el("td", { class: "num", text: r.repairedCount }),
            el("td", { class: "num", text: r.rejectedCount }),
            el("td", { class: "num", text: r.featureCount }),
            el("td", { class: "num", text: typeof r.seconds === "number" ? r.seconds.toFixed(2) : "" }))),
      );
      if (r.warnings && r.warnings.length) {
        box.append(el("h4", { text: "warnings" }), el("ul", {}, ...r.warnings.map((w) => el("li", { text: w }))));
      }
      const rep = notes("repaired", r.repaired, r.repairedCount);
      const rej = notes("rejected", r.rejected, r.rejectedCount);
      const unfit = notes("kept, not fitting the theme", r.unfit || [], r.unfitCount || 0);
      if (rep) box.append(rep);
      if (rej) box.append(rej);
      if (unfit) box.append(unfit);
    }
    if (job.harvest && job.harvest.length) {
      box.append(el("table", { class: "harvest" },
        el("tr", {}, ...["dataset", "outcome", "collection", "reason"].map((h) => el("th", { scope: "col", text: h }))),
        ...job.harvest.map((h) => el("tr", {},
          el("td", { text: h.title || h.dataset }),
          el("td", { text: h.outcome }),
          el("td", { text: h.collection || "" }),
          el("td", { text: h.reason || "" })))));
    }
    return box;
  }

  async function cancelJob(id) {
    try {
      await call("POST", "/admin/jobs/" + encodeURIComponent(id) + "/cancel");
      say("status", "Job " + id + " cancelled.", "ok");
    } catch (e) {
      sayError("status", e);
    }
    refreshAll();
  }

  $("refresh-all").addEventListener("click", () => refreshAll());

  // ---- start ----

  document.body.dataset.ready = "yes";
  if (token) {
    call("GET", "/admin/whoami").then(showApp, (e) => {
      if (e.status !== 401) showLogin(e.message + (e.status === 429 ? waitText(e) : ""));
    });
  } else {
    showLogin("");
  }
})();
