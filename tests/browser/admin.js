// Drives hamn's admin page (/admin) in headless Chromium (Debian's, via playwright-core: no
// browser download): a wrong token must show the server's error, the right one logs in, a file
// is uploaded into a new collection through the form (multipart, with a progress bar), the job
// row must reach `succeeded` by the page's own polling, and the collection must be listed.
// Prints a JSON report on stdout; tests/admin_page.rs checks it.
//
//   node tests/browser/admin.js <base> <token> <file> [collection]
const { chromium } = require("playwright-core");

(async () => {
  const [base, token, file, collection = "browser-upload"] = process.argv.slice(2);
  const report = {
    loggedIn: false,
    wrongTokenError: "",
    tokenInSessionStorage: false,
    localStorageKeys: -1,
    cookies: -1,
    progressSeen: false,
    progressEvents: 0,
    jobId: "",
    jobState: "",
    jobProgress: "",
    reportText: "",
    collectionListed: false,
    collectionFeatures: "",
    loggedOut: false,
    errors: [],
    cspViolations: [],
  };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  // The wrong token's 401 is logged by Chromium as a failed resource: that one is expected.
  let expected401 = 0;
  try {
    const context = await browser.newContext({ viewport: { width: 1300, height: 1000 } });
    const page = await context.newPage();
    page.on("pageerror", (e) => report.errors.push("pageerror: " + e.message));
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      const text = m.text();
      if (/Content[ -]Security[ -]Policy/i.test(text)) report.cspViolations.push(text);
      else if (expected401 > 0 && /status of 401/.test(text)) expected401 -= 1;
      else report.errors.push("console: " + text);
    });
    await page.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener("securitypolicyviolation", (e) => {
        window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
      });
    });
    const wait = { timeout: 60000 };

    await page.goto(base + "/admin");
    await page.waitForSelector("#login-form", { state: "visible", ...wait });

    // A wrong token: the login form stays, with the server's description.
    expected401 = 1;
    await page.fill("#login-token", "hamn_000000000000_" + "A".repeat(43));
    await page.click("#login-submit");
    await page.waitForSelector("#login-error[data-kind=error]", wait);
    report.wrongTokenError = (await page.textContent("#login-error")) || "";

    // The right one.
    await page.fill("#login-token", token);
    await page.click("#login-submit");
    await page.waitForSelector("#app", { state: "visible", ...wait });
    await page.waitForFunction(() => document.getElementById("whoami").textContent.length > 0, null, wait);
    report.loggedIn = await page.isHidden("#login");
    report.tokenInSessionStorage = await page.evaluate(
      (t) => sessionStorage.getItem("hamn-admin-token") === t, token);
    report.localStorageKeys = await page.evaluate(() => localStorage.length);
    report.cookies = (await context.cookies()).length;

    // Upload into a new collection.
    await page.fill("#upload-collection", collection);
    await page.selectOption("#upload-mode", "create");
    await page.setInputFiles("#upload-file", file);
    await page.click("#upload-submit");
    await page.waitForFunction(
      () => document.getElementById("upload-progress").dataset.maxPercent === "100" &&
        document.getElementById("upload-percent").textContent === "100 %", null, wait);
    report.progressSeen = true;
    report.progressEvents = Number(await page.getAttribute("#upload-progress", "data-events"));
    const jobHandle = await page.waitForSelector("#upload-job [data-job-id]", wait).catch(() => null);
    if (!jobHandle) {
      report.errors.push("no job: " + (await page.textContent("#upload-result")));
    } else {
      report.jobId = await jobHandle.getAttribute("data-job-id");
      // The page polls every 2 s while a job is queued or running; no reload here.
      const row = `[data-testid=job-row][data-job-id="${report.jobId}"]`;
      await page.waitForFunction((sel) => {
        const r = document.querySelector(sel);
        return r && !["queued", "running"].includes(r.dataset.state);
      }, row, wait);
      report.jobState = await page.getAttribute(row, "data-state");
      report.jobProgress = (await page.textContent(`${row} td.num`)) || "";
      const summary = await page.$(`${row} details summary`);
      if (summary) {
        await summary.click();
        report.reportText = (await page.innerText(`${row} details .report`)) || "";
      }
      const coll = `[data-testid=collection-row][data-collection="${collection}"]`;
      await page.waitForSelector(coll, wait).catch(() => null);
      report.collectionListed = (await page.$(coll)) !== null;
      if (report.collectionListed) {
        report.collectionFeatures = (await page.textContent(`${coll} td:nth-child(3)`)) || "";
      }
    }
    if (process.env.HAMN_SCREENSHOT) await page.screenshot({ path: process.env.HAMN_SCREENSHOT, fullPage: true });

    // Log out: back to the form, the token gone from the tab.
    await page.click("#logout");
    await page.waitForSelector("#login-form", { state: "visible", ...wait });
    report.loggedOut = await page.evaluate(() => sessionStorage.getItem("hamn-admin-token") === null &&
      document.getElementById("app").hidden);

    report.cspViolations.push(...(await page.evaluate(() => window.__cspViolations)));
  } catch (e) {
    report.errors.push(String(e));
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report) + "\n");
})();
