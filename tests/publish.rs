//! Publishing over HTTP, against the running binary: tokens, uploads, source URLs (refreshed
//! with and without change, broken, refused), harvesting a DCAT catalog, cancelling, and a
//! restart in the middle of a job. A local stand-in for a municipal web server
//! (`common::portal`) serves the files.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::portal::{Portal, Route};
use common::*;
use serde_json::{json, Value as Json};

/// A `hamn serve` whose log goes to a file (read by the tests: no secret may be in it).
struct Hamn {
    server: Server,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

fn serve(store_args: &[String], extra: &[&str]) -> Hamn {
    let log_dir = tempfile::tempdir().expect("tempdir");
    let log = log_dir.path().join("hamn.log");
    let port = free_port();
    let child = hamn_cmd()
        .env("HAMN_LOG", "info")
        .args(store_args)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--no-demo"])
        .args(["--refresh-seconds", "1"])
        .arg("--download-dir")
        .arg(log_dir.path().join("downloads"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn hamn serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        downloads: None,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&format!("{}/health", server.base))
        .call()
        .is_err()
    {
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    Hamn {
        server,
        log,
        _log_dir: log_dir,
    }
}

/// Makes a token with the CLI; returns (token, its id).
fn token(store: &TestStore, scope: &[&str]) -> (String, String) {
    let text = make_token(&store.args(), scope);
    let id = text
        .strip_prefix("hamn_")
        .and_then(|r| r.split('_').next())
        .expect("token id")
        .to_string();
    (text, id)
}

/// An answer: status, JSON body (Null when empty) and the headers.
struct Reply {
    status: u16,
    json: Json,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn req(method: &str, url: &str, token: Option<&str>, body: Option<(&[u8], &str)>) -> Reply {
    let mut r = ureq::request(method, url);
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    let result = match body {
        Some((bytes, ct)) => r.set("Content-Type", ct).send_bytes(bytes),
        None => r.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    let text = resp.into_string().unwrap_or_default();
    let json = if text.is_empty() {
        Json::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {url}: not JSON ({status}): {text}"))
    };
    Reply {
        status,
        json,
        headers,
    }
}

fn send_json(method: &str, url: &str, token: &str, body: Json) -> Reply {
    let bytes = body.to_string();
    req(
        method,
        url,
        Some(token),
        Some((bytes.as_bytes(), "application/json")),
    )
}

fn get_auth(url: &str, token: &str) -> Reply {
    req("GET", url, Some(token), None)
}

/// Sends a file as the raw body of an upload.
fn upload(base: &str, token: &str, id: &str, query: &str, bytes: &[u8]) -> Reply {
    req(
        "POST",
        &format!("{base}/admin/collections/{id}/upload?{query}"),
        Some(token),
        Some((bytes, "application/octet-stream")),
    )
}

/// Polls a job until it has finished; returns it.
fn wait_job(base: &str, token: &str, id: &str) -> Json {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let r = get_auth(&format!("{base}/admin/jobs/{id}"), token);
        assert_eq!(r.status, 200, "{}", r.json);
        if !matches!(r.json["state"].as_str(), Some("queued" | "running")) {
            return r.json;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not finish: {}",
            r.json
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until a job is in `state`.
fn wait_state(base: &str, token: &str, id: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = get_auth(&format!("{base}/admin/jobs/{id}"), token);
        if r.json["state"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never {state}: {}",
            r.json
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The number of features served for a collection (None: not served).
fn served(base: &str, id: &str) -> Option<u64> {
    let r = req(
        "GET",
        &format!("{base}/collections/{id}/items?limit=1"),
        None,
        None,
    );
    (r.status == 200).then(|| r.json["numberMatched"].as_u64().unwrap_or(0))
}

/// Waits until the collection is served with `count` features.
fn wait_served(base: &str, id: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = served(base, id);
        if now == Some(count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: served {now:?} features, waiting for {count}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The admin list's entry of one collection.
fn admin_entry(base: &str, token: &str, id: &str) -> Json {
    let r = get_auth(&format!("{base}/admin/collections"), token);
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or(Json::Null)
}

fn geojson(n: usize, prefix: &str) -> Vec<u8> {
    let features: Vec<Json> = (0..n)
        .map(|i| {
            json!({"type": "Feature", "properties": {"name": format!("{prefix} {i}"), "n": i},
                   "geometry": {"type": "Point", "coordinates": [13.0 + i as f64 * 0.001, 55.6]}})
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
        .to_string()
        .into_bytes()
}

fn job_id(r: &Reply) -> String {
    assert_eq!(r.status, 202, "{}", r.json);
    r.json["id"].as_str().expect("job id").to_string()
}

/// Tokens: none, wrong, malformed, revoked and out of scope are refused with JSON; failures
/// from one address are limited; the read API stays open; no token reaches the log.
#[test]
fn tokens_are_enforced() {
    let store = embedded();
    let (admin, _) = token(&store, &["--admin"]);
    let (writer, writer_id) = token(&store, &["--collections", "parking,noise"]);
    let h = serve(&store.args(), &[]);
    let base = &h.server.base;

    let r = req("GET", &format!("{base}/admin/jobs"), None, None);
    assert_eq!(r.status, 401, "{}", r.json);
    assert_eq!(r.json["code"], "Unauthorized");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Bearer")));
    let mut wrong = admin.clone();
    let last = wrong.pop().expect("char");
    wrong.push(if last == 'x' { 'y' } else { 'x' });
    for bad in [wrong.as_str(), "hamn_nonsense", "Basic dXNlcjpwYXNz"] {
        let r = req("GET", &format!("{base}/admin/jobs"), Some(bad), None);
        assert_eq!(r.status, 401, "{bad}: {}", r.json);
    }
    assert_eq!(
        get_auth(&format!("{base}/admin/whoami"), &admin).json["scope"],
        "admin"
    );

    // A write token: its own collections only, and no catalogs or deletes.
    let r = send_json(
        "POST",
        &format!("{base}/admin/collections"),
        &writer,
        json!({"id": "parking"}),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    let r = send_json(
        "POST",
        &format!("{base}/admin/collections"),
        &writer,
        json!({"id": "schools"}),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(r.json["code"], "Forbidden");
    let r = upload(
        base,
        &writer,
        "schools",
        "fileName=s.geojson",
        &geojson(2, "s"),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    let r = send_json(
        "POST",
        &format!("{base}/admin/catalogs"),
        &writer,
        json!({"url": "http://example.se/dcat"}),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    let r = req(
        "DELETE",
        &format!("{base}/admin/collections/parking"),
        Some(&writer),
        None,
    );
    assert_eq!(r.status, 403, "{}", r.json);
    let r = upload(
        base,
        &writer,
        "parking",
        "fileName=p.geojson",
        &geojson(3, "p"),
    );
    let job = wait_job(base, &writer, &job_id(&r));
    assert_eq!(job["state"], "succeeded", "{job}");
    wait_served(base, "parking", 3);
    // Another collection's source is not the write token's to see.
    let r = get_auth(&format!("{base}/admin/collections/schools/source"), &writer);
    assert_eq!(r.status, 403, "{}", r.json);
    // The read API needs no token.
    assert_eq!(
        req("GET", &format!("{base}/collections/parking"), None, None).status,
        200
    );

    // Revoked while the server runs: refused at once.
    let out = store
        .hamn()
        .args(["tokens", "revoke", &writer_id])
        .output()
        .expect("revoke");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = get_auth(&format!("{base}/admin/jobs"), &writer);
    assert_eq!(r.status, 401, "{}", r.json);
    let list = store
        .hamn()
        .args(["tokens", "list"])
        .output()
        .expect("list");
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        list.contains(&writer_id) && list.contains("revoked"),
        "{list}"
    );
    assert!(
        !list.contains(&admin[20..]),
        "tokens list must not print secrets"
    );

    // Failed attempts from one address run out (the revoked token's attempt counted too).
    let mut limited = None;
    for i in 0..12 {
        let r = req(
            "GET",
            &format!("{base}/admin/jobs"),
            Some("hamn_000000000000_x"),
            None,
        );
        if r.status == 429 {
            limited = Some((i, r.header("retry-after").map(str::to_string), r.json));
            break;
        }
        assert_eq!(r.status, 401);
    }
    let (i, retry, body) = limited.expect("429 after repeated failures");
    // Ten failures are allowed in a burst; some were spent above.
    assert!((3..=10).contains(&i), "limited after {i} more failures");
    assert!(retry
        .and_then(|s| s.parse::<u64>().ok())
        .is_some_and(|s| (1..=6).contains(&s)));
    assert_eq!(body["code"], "TooManyRequests");

    let log = std::fs::read_to_string(&h.log).expect("log");
    for secret in [&admin, &writer] {
        let part = &secret[18..];
        assert!(!log.contains(part), "a token's secret is in the log");
    }
}

/// Uploads (raw and multipart) are ingested by jobs and served; a broken upload fails and
/// changes nothing; limits and bad requests are 4xx with JSON; metadata and delete.
#[tokio::test]
async fn uploads_are_ingested_and_bad_ones_change_nothing() {
    for store in each_store().await {
        let (admin, _) = token(&store, &["--admin"]);
        let h = serve(&store.args(), &["--max-upload-mb", "1"]);
        let base = &h.server.base;
        let kind = store.kind;

        let r = upload(
            base,
            &admin,
            "bad",
            "mode=create&fileName=bad.geojson",
            &geojson(25, "a"),
        );
        assert!(r
            .header("location")
            .is_some_and(|l| l.contains("/admin/jobs/")));
        let first = wait_job(base, &admin, &job_id(&r));
        assert_eq!(first["state"], "succeeded", "{kind}: {first}");
        assert_eq!(first["report"][0]["stored"], 25);
        assert_eq!(first["progress"]["written"], 25);
        wait_served(base, "bad", 25);
        let version = admin_entry(base, &admin, "bad")["version"]
            .as_i64()
            .expect("version");

        // multipart/form-data, as a browser form sends it: a CSV with latitude/longitude.
        let csv = std::fs::read(data("bathing/harryda_badplatser.csv")).expect("csv");
        let boundary = "hamnBoundary7MA4YWxkTrZu0gW";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"badplatser.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&csv);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let r = req(
            "POST",
            &format!("{base}/admin/collections/badplatser/upload?mode=create"),
            Some(&admin),
            Some((&body, &format!("multipart/form-data; boundary={boundary}"))),
        );
        let job = wait_job(base, &admin, &job_id(&r));
        assert_eq!(job["state"], "succeeded", "{kind}: {job}");
        assert_eq!(job["fileName"], "badplatser.csv");
        let n = job["report"][0]["stored"].as_u64().expect("stored");
        assert!(n > 5, "{job}");
        wait_served(base, "badplatser", n);

        // A zipped Shapefile in SWEREF 99 TM.
        let zip = std::fs::read(fixture("hav_active_bathing_waters_sweref99tm.zip")).expect("zip");
        let r = upload(base, &admin, "zipped", "mode=create&fileName=bad.zip", &zip);
        let job = wait_job(base, &admin, &job_id(&r));
        assert_eq!(job["state"], "succeeded", "{kind}: {job}");
        wait_served(base, "zipped", 2684);

        // A client that goes away halfway through its upload: no job, nothing left behind.
        let before = get_auth(&format!("{base}/admin/jobs"), &admin).json["jobs"]
            .as_array()
            .map(Vec::len);
        {
            use std::io::Write;
            let addr = base.trim_start_matches("http://");
            let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
            write!(
                tcp,
                "POST /admin/collections/bad/upload?fileName=half.geojson HTTP/1.1\r\n\
                 Host: {addr}\r\nAuthorization: Bearer {admin}\r\n\
                 Content-Type: application/octet-stream\r\nContent-Length: 500000\r\n\r\n"
            )
            .expect("head");
            tcp.write_all(&geojson(50, "half"))
                .expect("part of the body");
        }
        // The server notices the closed connection and drops what it spooled: waited for (up
        // to 20 s, so a loaded machine does not fail the test), then no job may have come.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left: Vec<_> = match &store.dir {
                Some(dir) => std::fs::read_dir(dir.path().join("spool"))
                    .expect("spool")
                    .flatten()
                    .map(|e| e.path())
                    .collect(),
                None => Vec::new(),
            };
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "left in the spool: {left:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(300));
        let after = get_auth(&format!("{base}/admin/jobs"), &admin).json["jobs"]
            .as_array()
            .map(Vec::len);
        assert_eq!(before, after, "{kind}: a broken-off upload made a job");

        // A broken file: the job fails with the reason, the served version stays.
        let mut broken = geojson(40, "b");
        broken.truncate(broken.len() / 2);
        let r = upload(
            base,
            &admin,
            "bad",
            "mode=replace&fileName=bad.geojson",
            &broken,
        );
        let job = wait_job(base, &admin, &job_id(&r));
        assert_eq!(job["state"], "failed", "{kind}: {job}");
        assert!(
            job["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{job}"
        );
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(served(base, "bad"), Some(25), "{kind}");
        assert_eq!(admin_entry(base, &admin, "bad")["version"], version);

        // The same file again: unchanged, nothing done.
        let r = upload(
            base,
            &admin,
            "bad",
            "mode=replace&fileName=bad.geojson",
            &geojson(25, "a"),
        );
        let job = wait_job(base, &admin, &job_id(&r));
        assert_eq!(job["state"], "unchanged", "{kind}: {job}");

        // Bad requests: 4xx with a JSON body, and no job.
        let jobs_before = get_auth(&format!("{base}/admin/jobs"), &admin).json["jobs"]
            .as_array()
            .map(Vec::len);
        let big = vec![b' '; (1 << 20) + 10];
        for (query, body, status) in [
            ("mode=replace&fileName=big.geojson", big.as_slice(), 413),
            ("mode=replace", b"{}".as_slice(), 400),
            (
                "mode=replace&fileName=..%2F..%2Fpasswd",
                b"{}".as_slice(),
                400,
            ),
            ("mode=sideways&fileName=x.geojson", b"{}".as_slice(), 400),
            (
                "mode=replace&fileName=x.geojson&fileName=y.geojson",
                b"{}".as_slice(),
                400,
            ),
            ("mode=create&fileName=x.geojson", b"{}".as_slice(), 409),
            ("mode=replace&fileName=empty.geojson", b"".as_slice(), 400),
        ] {
            let r = upload(base, &admin, "bad", query, body);
            assert_eq!(r.status, status, "{kind} {query}: {}", r.json);
            assert!(r.json["description"].is_string(), "{query}");
        }
        let r = upload(base, &admin, "Not_An_Id", "fileName=x.geojson", b"{}");
        assert_eq!(r.status, 400, "{}", r.json);
        let r = send_json(
            "POST",
            &format!("{base}/admin/collections"),
            &admin,
            json!({"id": "x", "colour": "red"}),
        );
        assert_eq!(r.status, 400, "{}", r.json);
        let r = req(
            "POST",
            &format!("{base}/admin/collections"),
            Some(&admin),
            Some((b"{not json", "application/json")),
        );
        assert_eq!(r.status, 400, "{}", r.json);
        let jobs_after = get_auth(&format!("{base}/admin/jobs"), &admin).json["jobs"]
            .as_array()
            .map(Vec::len);
        assert_eq!(jobs_before, jobs_after, "a refused upload made a job");

        // Metadata: changed without touching the features; served at once.
        let r = send_json(
            "PATCH",
            &format!("{base}/admin/collections/bad"),
            &admin,
            json!({"title": "Badplatser i Skåne", "licence": "CC0-1.0", "keywords": ["bad", "sjö"]}),
        );
        assert_eq!(r.status, 200, "{}", r.json);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, c) = get(&format!("{base}/collections/bad"));
            if c["title"] == "Badplatser i Skåne" {
                assert_eq!(c["keywords"], json!(["bad", "sjö"]));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{kind}: new title never served: {c}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(served(base, "bad"), Some(25));

        // The engine: a wrong name is refused; PostGIS only where there is SQL.
        let engine = |name: &str| {
            send_json(
                "PATCH",
                &format!("{base}/admin/collections/bad"),
                &admin,
                json!({ "engine": name }),
            )
        };
        let r = engine("sql");
        assert_eq!(r.status, 400, "{kind}: {}", r.json);
        let r = engine("postgis");
        if store.url.is_some() {
            assert_eq!(r.status, 200, "{kind}: {}", r.json);
            assert_eq!(r.json["engineChoice"], "postgis", "{kind}: {}", r.json);
            assert_eq!(engine("auto").json["engineChoice"], Json::Null);
        } else {
            assert_eq!(r.status, 400, "{kind}: {}", r.json);
            assert!(
                r.json["description"]
                    .as_str()
                    .unwrap_or("")
                    .contains("embedded store"),
                "{}",
                r.json
            );
        }
        assert_eq!(served(base, "bad"), Some(25), "{kind}");

        // Delete: gone from the API, 404 for a second delete.
        let r = req(
            "DELETE",
            &format!("{base}/admin/collections/badplatser"),
            Some(&admin),
            None,
        );
        assert_eq!(r.status, 204);
        let r = req(
            "DELETE",
            &format!("{base}/admin/collections/badplatser"),
            Some(&admin),
            None,
        );
        assert_eq!(r.status, 404, "{}", r.json);
        let deadline = Instant::now() + Duration::from_secs(30);
        while served(base, "badplatser").is_some() {
            assert!(
                Instant::now() < deadline,
                "{kind}: deleted collection still served"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A source URL: fetched, then 304 (one request, no ingest), then a change, then a broken
/// file (the served version stays), on a schedule; every way to reach an internal address
/// is refused.
#[test]
fn sources_refresh_on_change_and_internal_addresses_are_refused() {
    let portal = Portal::start("127.0.0.1");
    let internal = Portal::start("127.0.0.2");
    internal.file(
        "/secret.geojson",
        geojson(1, "secret"),
        "application/geo+json",
    );
    portal.file(
        "/parkering.geojson",
        geojson(10, "p"),
        "application/geo+json",
    );
    let store = embedded();
    let (admin, _) = token(&store, &["--admin"]);
    let h = serve(
        &store.args(),
        &[
            "--fetch-allow-networks",
            "127.0.0.1/32",
            "--fetch-max-mb",
            "1",
            "--min-refresh-seconds",
            "1",
            "--schedule-seconds",
            "1",
        ],
    );
    let base = &h.server.base;
    let source = |id: &str, url: &str, interval: u64| {
        send_json(
            "PUT",
            &format!("{base}/admin/collections/{id}/source"),
            &admin,
            json!({"url": url, "intervalSeconds": interval}),
        )
    };
    let refresh = |id: &str| {
        let r = req(
            "POST",
            &format!("{base}/admin/collections/{id}/refresh"),
            Some(&admin),
            None,
        );
        wait_job(base, &admin, &job_id(&r))
    };

    let r = source("parkering", &portal.url("/parkering.geojson"), 3600);
    assert_eq!(r.status, 200, "{}", r.json);
    let job = wait_job(base, &admin, r.json["job"]["id"].as_str().expect("job"));
    assert_eq!(job["state"], "succeeded", "{job}");
    wait_served(base, "parkering", 10);
    let version = admin_entry(base, &admin, "parkering")["version"].clone();

    // Unchanged: one conditional request, answered 304, no ingest.
    let hits = portal.hits("/parkering.geojson");
    let job = refresh("parkering");
    assert_eq!(job["state"], "unchanged", "{job}");
    assert!(
        job["message"].as_str().is_some_and(|m| m.contains("304")),
        "{job}"
    );
    assert_eq!(portal.hits("/parkering.geojson"), hits + 1);
    assert_eq!(admin_entry(base, &admin, "parkering")["version"], version);

    // Changed: ingested, served.
    portal.file(
        "/parkering.geojson",
        geojson(12, "p2"),
        "application/geo+json",
    );
    let job = refresh("parkering");
    assert_eq!(job["state"], "succeeded", "{job}");
    wait_served(base, "parkering", 12);

    // Broken, then gone, then a server error: each fails, the served data stays.
    portal.file(
        "/parkering.geojson",
        b"{\"type\": \"FeatureColl".to_vec(),
        "application/geo+json",
    );
    let job = refresh("parkering");
    assert_eq!(job["state"], "failed", "{job}");
    portal.set("/parkering.geojson", Route::Status(404));
    let job = refresh("parkering");
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["message"].as_str().is_some_and(|m| m.contains("404")),
        "{job}"
    );
    portal.set("/parkering.geojson", Route::Status(500));
    assert_eq!(refresh("parkering")["state"], "failed");
    assert_eq!(served(base, "parkering"), Some(12));
    let src = get_auth(
        &format!("{base}/admin/collections/parkering/source"),
        &admin,
    );
    assert_eq!(src.json["lastState"], "failed", "{}", src.json);

    // Too large for --fetch-max-mb.
    portal.file(
        "/stor.geojson",
        vec![b' '; (1 << 20) + 100],
        "application/geo+json",
    );
    let r = source("stor", &portal.url("/stor.geojson"), 3600);
    let job = wait_job(base, &admin, r.json["job"]["id"].as_str().expect("job"));
    assert_eq!(job["state"], "failed", "{job}");

    // Internal addresses: a redirect to another loopback address, the cloud metadata
    // address, IPv6 loopback, an IPv4-mapped loopback, the unspecified address.
    portal.set(
        "/redirect",
        Route::Redirect(internal.url("/secret.geojson")),
    );
    let port = internal.base.rsplit(':').next().expect("port");
    for (i, url) in [
        portal.url("/redirect"),
        internal.url("/secret.geojson"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::1]:{port}/secret.geojson"),
        format!("http://[::ffff:127.0.0.2]:{port}/secret.geojson"),
        format!("http://0.0.0.0:{port}/secret.geojson"),
    ]
    .iter()
    .enumerate()
    {
        let id = format!("ssrf-{i}");
        let r = source(&id, url, 3600);
        assert_eq!(r.status, 200, "{url}: {}", r.json);
        let job = wait_job(base, &admin, r.json["job"]["id"].as_str().expect("job"));
        assert_eq!(job["state"], "failed", "{url}: {job}");
        let message = job["message"].as_str().unwrap_or_default();
        assert!(message.contains("refused"), "{url}: {message}");
        assert_eq!(served(base, &id), None);
    }
    assert_eq!(
        internal.hits("/secret.geojson"),
        0,
        "the internal server was reached"
    );
    for url in [
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "ftp://example.se/x.zip",
        "/relative",
    ] {
        let r = source("ssrf-x", url, 3600);
        assert_eq!(r.status, 400, "{url}: {}", r.json);
    }

    // On a schedule: a second-by-second source is checked again without being asked.
    portal.file("/tiden.geojson", geojson(3, "t"), "application/geo+json");
    let r = source("tiden", &portal.url("/tiden.geojson"), 1);
    wait_job(base, &admin, r.json["job"]["id"].as_str().expect("job"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = get_auth(&format!("{base}/admin/jobs?collection=tiden"), &admin).json;
        let scheduled = jobs["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .filter(|j| j["requestedBy"] == "scheduler" && j["state"] == "unchanged")
            .count();
        if scheduled >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled refreshes: {jobs}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = send_json(
        "PUT",
        &format!("{base}/admin/collections/tiden/source"),
        &admin,
        json!({"url": portal.url("/tiden.geojson"), "intervalSeconds": 0}),
    );
    assert_eq!(r.status, 400, "{}", r.json);

    // A server that trusts 127.0.0.2 only: the portal on 127.0.0.1 is internal to it, directly
    // and through a redirect from the trusted network.
    internal.set("/to-local", Route::Redirect(portal.url("/tiden.geojson")));
    internal.file("/ok.geojson", geojson(2, "ok"), "application/geo+json");
    let store2 = embedded();
    let (admin2, _) = token(&store2, &["--admin"]);
    let h2 = serve(&store2.args(), &["--fetch-allow-networks", "127.0.0.2/32"]);
    let base2 = &h2.server.base;
    let hits = portal.hits("/tiden.geojson");
    for (id, url, word) in [
        ("direct", portal.url("/tiden.geojson"), "loopback"),
        ("redirected", internal.url("/to-local"), "redirected from"),
    ] {
        let r = send_json(
            "PUT",
            &format!("{base2}/admin/collections/{id}/source"),
            &admin2,
            json!({ "url": url }),
        );
        let job = wait_job(base2, &admin2, r.json["job"]["id"].as_str().expect("job"));
        assert_eq!(job["state"], "failed", "{url}: {job}");
        let message = job["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(word) && message.contains("refused"),
            "{url}: {message}"
        );
    }
    assert_eq!(portal.hits("/tiden.geojson"), hits, "127.0.0.1 was reached");
    assert_eq!(internal.hits("/to-local"), 1);
    let r = send_json(
        "PUT",
        &format!("{base2}/admin/collections/ok/source"),
        &admin2,
        json!({ "url": internal.url("/ok.geojson") }),
    );
    let job = wait_job(base2, &admin2, r.json["job"]["id"].as_str().expect("job"));
    assert_eq!(
        job["state"], "succeeded",
        "the trusted network is reachable: {job}"
    );
}

/// A catalog in DCAT-AP-SE: one source per dataset that has a file hamn reads, with the
/// catalog's metadata; the rest reported with the reason; a re-harvest costs 304s.
#[test]
fn a_municipal_catalog_is_harvested() {
    let portal = Portal::start("127.0.0.1");
    let internal = Portal::start("127.0.0.2");
    internal.file("/secret.geojson", geojson(1, "s"), "application/geo+json");
    portal.file(
        "/data/parkering.geojson",
        geojson(7, "p"),
        "application/geo+json",
    );
    let csv = std::fs::read(data("bathing/harryda_badplatser.csv")).expect("csv");
    // An EntryScape resource URL: no extension, and a Content-Type that says little.
    portal.file("/store/2/resource/27", csv, "application/octet-stream");
    let p = &portal.base;
    let i = &internal.base;
    let ttl = format!(
        r#"@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
<{p}/catalog> a dcat:Catalog ;
  dcterms:title "Exempelkommunens data"@sv ;
  dcterms:license <http://creativecommons.org/publicdomain/zero/1.0/> ;
  dcterms:publisher <{p}/org> ;
  dcat:dataset <{p}/ds/parkering>, <{p}/ds/bad>, <{p}/ds/budget>, <{p}/ds/borta>, <{p}/ds/intern> .
<{p}/org> a foaf:Organization ; foaf:name "Exempelkommunen"@sv .
<{p}/ds/parkering> a dcat:Dataset ;
  dcterms:title "Parkeringsplatser"@sv , "Parking places"@en ;
  dcterms:description "Kommunens parkeringsplatser."@sv ;
  dcat:keyword "parkering"@sv , "parking"@en ;
  dcat:theme <http://publications.europa.eu/resource/authority/data-theme/TRAN> ;
  dcterms:publisher <{p}/org> ;
  dcat:distribution <{p}/dist/parkering> .
<{p}/dist/parkering> a dcat:Distribution ;
  dcat:accessURL <{p}/data/> ;
  dcat:downloadURL <{p}/data/parkering.geojson> ;
  dcterms:format "application/geo+json" ;
  dcterms:license <http://creativecommons.org/licenses/by/4.0/> .
<{p}/ds/bad> a dcat:Dataset ;
  dcterms:title "Badplatser"@sv ;
  dcterms:description "Badplatser enligt specifikationen."@sv ;
  dcterms:conformsTo <https://dataportal.se/specifications/badplatser/1.0> ;
  dcterms:publisher <{p}/org> ;
  dcat:distribution [ a dcat:Distribution ; dcat:accessURL <{p}/store/2/resource/27> ; dcterms:format "text/csv" ] .
<{p}/ds/budget> a dcat:Dataset ;
  dcterms:title "Budget 2026"@sv ;
  dcterms:description "Tabeller."@sv ;
  dcterms:publisher <{p}/org> ;
  dcat:distribution [ a dcat:Distribution ; dcat:accessURL <{p}/budget.pdf> ; dcterms:format "application/pdf" ] .
<{p}/ds/borta> a dcat:Dataset ;
  dcterms:title "Borta"@sv ;
  dcterms:description "Filen finns inte."@sv ;
  dcterms:publisher <{p}/org> ;
  dcat:distribution [ a dcat:Distribution ; dcat:downloadURL <{p}/data/borta.geojson> ; dcterms:format "application/geo+json" ] .
<{p}/ds/intern> a dcat:Dataset ;
  dcterms:title "Intern"@sv ;
  dcterms:description "Pekar på en intern server."@sv ;
  dcterms:publisher <{p}/org> ;
  dcat:distribution [ a dcat:Distribution ; dcat:downloadURL <{i}/secret.geojson> ; dcterms:format "application/geo+json" ] .
"#
    );
    portal.file("/catalog", ttl.clone().into_bytes(), "text/turtle");

    let store = embedded();
    let (admin, _) = token(&store, &["--admin"]);
    let h = serve(
        &store.args(),
        &[
            "--fetch-allow-networks",
            "127.0.0.1/32",
            "--min-refresh-seconds",
            "1",
        ],
    );
    let base = &h.server.base;
    let r = send_json(
        "POST",
        &format!("{base}/admin/catalogs"),
        &admin,
        json!({"url": portal.url("/catalog"), "intervalSeconds": 3600, "prefix": "ex-"}),
    );
    assert_eq!(r.status, 202, "{}", r.json);
    let key = r.json["key"].as_str().expect("key").to_string();
    let harvest = wait_job(base, &admin, r.json["job"]["id"].as_str().expect("job"));
    assert_eq!(harvest["state"], "succeeded", "{harvest}");
    let items = harvest["harvest"].as_array().expect("items");
    assert_eq!(items.len(), 5, "{harvest}");
    let item = |title: &str| {
        items
            .iter()
            .find(|i| i["title"] == title)
            .unwrap_or_else(|| panic!("{title} not in {harvest}"))
            .clone()
    };
    assert_eq!(item("Parkeringsplatser")["outcome"], "scheduled");
    assert_eq!(
        item("Parkeringsplatser")["collection"],
        "ex-parkeringsplatser"
    );
    assert_eq!(item("Badplatser")["collection"], "ex-badplatser");
    let budget = item("Budget 2026");
    assert_eq!(budget["outcome"], "skipped", "{budget}");
    assert!(budget["reason"].as_str().is_some_and(|r| !r.is_empty()));

    let finished = |title: &str| wait_job(base, &admin, item(title)["job"].as_str().expect("job"));
    assert_eq!(finished("Parkeringsplatser")["state"], "succeeded");
    assert_eq!(finished("Badplatser")["state"], "succeeded");
    let gone = finished("Borta");
    assert_eq!(gone["state"], "failed", "{gone}");
    assert!(
        gone["message"].as_str().is_some_and(|m| m.contains("404")),
        "{gone}"
    );
    let inside = finished("Intern");
    assert_eq!(inside["state"], "failed", "{inside}");
    assert!(
        inside["message"]
            .as_str()
            .is_some_and(|m| m.contains("refused")),
        "{inside}"
    );
    assert_eq!(internal.hits("/secret.geojson"), 0);

    wait_served(base, "ex-parkeringsplatser", 7);
    assert!(served(base, "ex-badplatser").is_some_and(|n| n > 5));
    assert_eq!(served(base, "ex-borta"), None);
    let (_, c) = get(&format!("{base}/collections/ex-parkeringsplatser"));
    assert_eq!(c["title"], "Parkeringsplatser", "Swedish first: {c}");
    assert_eq!(c["description"], "Kommunens parkeringsplatser.");
    let e = admin_entry(base, &admin, "ex-parkeringsplatser");
    assert_eq!(e["publisher"], "Exempelkommunen", "{e}");
    assert_eq!(
        e["licence"], "http://creativecommons.org/licenses/by/4.0/",
        "{e}"
    );
    assert_eq!(e["keywords"], json!(["parkering"]), "{e}");
    let e = admin_entry(base, &admin, "ex-badplatser");
    assert_eq!(
        e["conformsTo"],
        json!(["https://dataportal.se/specifications/badplatser/1.0"])
    );

    // Harvested again: the files are unchanged, so each refresh is one 304.
    let r = req(
        "POST",
        &format!("{base}/admin/catalogs/{key}/harvest"),
        Some(&admin),
        None,
    );
    let again = wait_job(base, &admin, &job_id(&r));
    let job = again["harvest"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["title"] == "Parkeringsplatser")
        .and_then(|i| i["job"].as_str())
        .expect("a refresh job")
        .to_string();
    assert_eq!(wait_job(base, &admin, &job)["state"], "unchanged");
    let sources = get_auth(&format!("{base}/admin/sources"), &admin).json;
    assert!(
        sources["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .any(|s| s["type"] == "catalog"),
        "{sources}"
    );

    // The catalog changes: a dataset is retitled (same URI) and one leaves. The retitled one
    // keeps feeding its collection, with the new title; the one that left is reported, kept.
    let borta = ttl.find(&format!("<{p}/ds/borta> a")).expect("borta");
    let intern = ttl.find(&format!("<{p}/ds/intern> a")).expect("intern");
    let ttl = format!("{}{}", &ttl[..borta], &ttl[intern..])
        .replace("\"Parkeringsplatser\"@sv", "\"Parkering i kommunen\"@sv")
        .replace(&format!(", <{p}/ds/borta>"), "");
    portal.file("/catalog", ttl.into_bytes(), "text/turtle");
    let r = req(
        "POST",
        &format!("{base}/admin/catalogs/{key}/harvest"),
        Some(&admin),
        None,
    );
    let third = wait_job(base, &admin, &job_id(&r));
    let items = third["harvest"].as_array().expect("items");
    let parking = items
        .iter()
        .find(|i| i["title"] == "Parkering i kommunen")
        .unwrap_or_else(|| panic!("{third}"));
    assert_eq!(parking["collection"], "ex-parkeringsplatser", "{third}");
    let gone = items
        .iter()
        .find(|i| i["outcome"] == "gone")
        .unwrap_or_else(|| panic!("{third}"));
    assert_eq!(gone["collection"], "ex-borta", "{third}");
    assert!(third["message"]
        .as_str()
        .is_some_and(|m| m.contains("no longer")));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, c) = get(&format!("{base}/collections/ex-parkeringsplatser"));
        if c["title"] == "Parkering i kommunen" {
            break;
        }
        assert!(Instant::now() < deadline, "new title never served: {c}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(served(base, "ex-parkeringsplatser"), Some(7));
}

/// A real municipal record: Härryda's bathing sites as data.europa.eu republishes its
/// EntryScape entry (RDF/XML), with the catalog's host pointed at the stand-in server. The
/// CSV distribution is chosen (not the rowstore API beside it) and ingested with the record's
/// Swedish metadata.
#[test]
fn harrydas_entryscape_record_is_harvested() {
    let portal = Portal::start("127.0.0.1");
    let rdf = std::fs::read_to_string(fixture(
        "dcat/harryda_badplatser_dataset_via_data.europa.eu.rdf",
    ))
    .expect("record")
    .replace("https://catalog.harryda.se", &portal.base);
    portal.file("/dataset.rdf", rdf.into_bytes(), "application/rdf+xml");
    let csv = std::fs::read(data("bathing/harryda_badplatser.csv")).expect("csv");
    portal.file("/store/2/resource/27", csv, "text/csv");
    let store = embedded();
    let (admin, _) = token(&store, &["--admin"]);
    let h = serve(&store.args(), &["--fetch-allow-networks", "127.0.0.1/32"]);
    let base = &h.server.base;
    let r = send_json(
        "POST",
        &format!("{base}/admin/catalogs"),
        &admin,
        json!({"url": portal.url("/dataset.rdf"), "prefix": "harryda-"}),
    );
    assert_eq!(r.status, 202, "{}", r.json);
    let harvest = wait_job(base, &admin, r.json["job"]["id"].as_str().expect("job"));
    let items = harvest["harvest"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{harvest}");
    assert_eq!(items[0]["title"], "Badplatser", "{harvest}");
    assert_eq!(items[0]["url"], portal.url("/store/2/resource/27"));
    let job = wait_job(base, &admin, items[0]["job"].as_str().expect("job"));
    assert_eq!(job["state"], "succeeded", "{job}");
    wait_served(base, "harryda-badplatser", 9);
    let e = admin_entry(base, &admin, "harryda-badplatser");
    assert_eq!(e["publisher"], "Härryda kommun", "{e}");
    assert_eq!(
        e["licence"], "http://creativecommons.org/publicdomain/zero/1.0/",
        "{e}"
    );
    assert_eq!(
        e["conformsTo"],
        json!(["https://dataportal.se/specifications/badplatser/1.0"]),
        "{e}"
    );
    assert_eq!(
        portal.hits("/rowstore/dataset/21cffcda-f0aa-471d-9cd3-4630669f6fb1"),
        0
    );
}

/// Cancelling a job, and a restart in its middle: nothing changes, and the job says so.
#[tokio::test]
async fn a_cancelled_or_interrupted_job_changes_nothing() {
    let portal = Portal::start("127.0.0.1");
    let mut body = geojson(50, "slow");
    body.truncate(200);
    portal.set("/slow.geojson", Route::Slow(body));
    for store in each_store().await {
        let kind = store.kind;
        let (admin, _) = token(&store, &["--admin"]);
        let args = [
            "--fetch-allow-networks",
            "127.0.0.1/32",
            "--min-refresh-seconds",
            "1",
            "--jobs",
            "1",
        ];
        let mut h = serve(&store.args(), &args);
        let base = h.server.base.clone();
        let r = upload(
            &base,
            &admin,
            "slow",
            "mode=create&fileName=slow.geojson",
            &geojson(5, "v1"),
        );
        assert_eq!(wait_job(&base, &admin, &job_id(&r))["state"], "succeeded");
        wait_served(&base, "slow", 5);

        let put = |base: &str| {
            send_json(
                "PUT",
                &format!("{base}/admin/collections/slow/source"),
                &admin,
                json!({"url": portal.url("/slow.geojson"), "intervalSeconds": 3600}),
            )
        };
        let r = put(&base);
        let job = r.json["job"]["id"].as_str().expect("job").to_string();
        wait_state(&base, &admin, &job, "running");
        // One job at a time (--jobs 1): an upload now waits in the queue.
        let r = upload(
            &base,
            &admin,
            "other",
            "mode=create&fileName=other.geojson",
            &geojson(4, "o"),
        );
        let queued = job_id(&r);
        std::thread::sleep(Duration::from_millis(500));
        let q = get_auth(&format!("{base}/admin/jobs/{queued}"), &admin).json;
        assert_eq!(q["state"], "queued", "{kind}: {q}");
        // A queued job cancelled ends at once, and never runs.
        let r = upload(
            &base,
            &admin,
            "never",
            "mode=create&fileName=never.geojson",
            &geojson(3, "n"),
        );
        let never = job_id(&r);
        let r = req(
            "POST",
            &format!("{base}/admin/jobs/{never}/cancel"),
            Some(&admin),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(r.json["state"], "cancelled", "{kind}: {}", r.json);
        let r = req(
            "POST",
            &format!("{base}/admin/jobs/{job}/cancel"),
            Some(&admin),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.json);
        let done = wait_job(&base, &admin, &job);
        assert_eq!(done["state"], "cancelled", "{kind}: {done}");
        // The slot is free: the queued upload runs.
        assert_eq!(wait_job(&base, &admin, &queued)["state"], "succeeded");
        wait_served(&base, "other", 4);
        assert_eq!(served(&base, "never"), None, "{kind}: a cancelled job ran");
        let r = req(
            "POST",
            &format!("{base}/admin/jobs/{job}/cancel"),
            Some(&admin),
            None,
        );
        assert_eq!(r.status, 409, "{}", r.json);

        // Again, and this time the server is killed while the job runs.
        let r = req(
            "POST",
            &format!("{base}/admin/collections/slow/refresh"),
            Some(&admin),
            None,
        );
        let job = job_id(&r);
        wait_state(&base, &admin, &job, "running");
        h.server.child.kill().expect("kill");
        h.server.child.wait().expect("wait");
        h = serve(&store.args(), &args);
        let base = h.server.base.clone();
        let after = get_auth(&format!("{base}/admin/jobs/{job}"), &admin).json;
        assert_eq!(after["state"], "failed", "{kind}: {after}");
        assert!(
            after["message"]
                .as_str()
                .is_some_and(|m| m.contains("interrupted")),
            "{after}"
        );
        wait_served(&base, "slow", 5);
        let (_, items) = get(&format!("{base}/collections/slow/items"));
        assert!(items["features"][0]["properties"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("v1")));
        drop(h);
    }
}

/// API keys for the read API: off by default; required, a key's quota gives 429 with
/// Retry-After; publishers' tokens read without a quota; a read key cannot publish.
#[test]
fn read_keys_hold_their_quota_when_asked_for() {
    let store = embedded();
    let (admin, _) = token(&store, &["--admin"]);
    let (key, key_id) = token(&store, &["--read-key", "--per-minute", "3"]);
    let open = serve(&store.args(), &[]);
    for _ in 0..5 {
        let r = req(
            "GET",
            &format!("{}/collections", open.server.base),
            None,
            None,
        );
        assert_eq!(r.status, 200, "off by default");
        assert!(r.header("ratelimit-limit").is_none());
    }
    drop(open);

    let h = serve(&store.args(), &["--read-keys", "required"]);
    let base = &h.server.base;
    let r = req("GET", &format!("{base}/collections"), None, None);
    assert_eq!(r.status, 401, "{}", r.json);
    assert!(r.json["description"]
        .as_str()
        .is_some_and(|d| d.contains("API key")));
    let r = req(
        "GET",
        &format!("{base}/collections"),
        Some("hamn_000000000000_nope"),
        None,
    );
    assert_eq!(r.status, 401, "{}", r.json);
    assert_eq!(
        req("GET", &format!("{base}/health"), None, None).status,
        200
    );
    for remaining in ["2", "1", "0"] {
        let r = ureq::get(&format!("{base}/collections"))
            .set("X-API-Key", &key)
            .call()
            .expect("within the quota");
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
        assert_eq!(r.header("ratelimit-remaining"), Some(remaining));
    }
    let r = req("GET", &format!("{base}/collections"), Some(&key), None);
    assert_eq!(r.status, 429, "{}", r.json);
    let wait: u64 = r
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!((1..=20).contains(&wait), "{wait}");
    for _ in 0..5 {
        let r = req("GET", &format!("{base}/collections"), Some(&admin), None);
        assert_eq!(r.status, 200, "a publisher's token has no quota");
    }
    let r = get_auth(&format!("{base}/admin/whoami"), &key);
    assert_eq!(r.status, 403, "{}", r.json);

    let out = store
        .hamn()
        .args(["tokens", "revoke", &key_id])
        .output()
        .expect("revoke");
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let r = req("GET", &format!("{base}/collections"), Some(&key), None);
        if r.status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a revoked key still works: {}",
            r.status
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Optional: requests without a key are served as before.
    let h2 = serve(&store.args(), &["--read-keys", "optional"]);
    assert_eq!(
        req(
            "GET",
            &format!("{}/collections", h2.server.base),
            None,
            None
        )
        .status,
        200
    );
}

/// A collection of another OGC API Features server as a source, read page by page (here the
/// other server is another hamn): by hand, and from a catalog in DCAT-AP-SE's form for an API.
#[test]
fn an_ogc_api_features_collection_is_a_source() {
    let upstream_store = embedded();
    let out = upstream_store
        .hamn()
        .args([
            "ingest",
            &data("bathing/hav_active_bathing_waters.geojson"),
            "-c",
            "bad",
        ])
        .output()
        .expect("ingest");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let upstream = serve(&upstream_store.args(), &[]);
    let up = &upstream.server.base;
    let total = served(up, "bad").expect("upstream serves");
    assert!(total > 2000, "several pages of 1000: {total}");

    let store = embedded();
    let (admin, _) = token(&store, &["--admin"]);
    let h = serve(&store.args(), &["--fetch-allow-networks", "127.0.0.1/32"]);
    let base = &h.server.base;
    let r = send_json(
        "PUT",
        &format!("{base}/admin/collections/speglad/source"),
        &admin,
        json!({"url": format!("{up}/collections/bad"), "protocol": "ogc-api-features"}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let job = wait_job(base, &admin, r.json["job"]["id"].as_str().expect("job"));
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["report"][0]["stored"].as_u64(), Some(total), "{job}");
    wait_served(base, "speglad", total);
    let pick = |b: &str, id: &str| {
        let (_, one) = get(&format!("{b}/collections/{id}/items?limit=1"));
        one["features"][0]["properties"].clone()
    };
    assert_eq!(pick(base, "speglad"), pick(up, "bad"));
    // Read again: the same features, so nothing changes.
    let r = req(
        "POST",
        &format!("{base}/admin/collections/speglad/refresh"),
        Some(&admin),
        None,
    );
    assert_eq!(wait_job(base, &admin, &job_id(&r))["state"], "unchanged");
    // Not a collection URL: refused when it is given.
    let r = send_json(
        "PUT",
        &format!("{base}/admin/collections/speglad/source"),
        &admin,
        json!({"url": format!("{up}/"), "protocol": "ogc-api-features"}),
    );
    assert_eq!(r.status, 400, "{}", r.json);

    // A catalog describing the API as DCAT-AP-SE recommends: a geo+json distribution whose
    // access URL is the collection's items, through a data service.
    let portal = Portal::start("127.0.0.1");
    let p = &portal.base;
    let ttl = format!(
        r#"@prefix dcat: <http://www.w3.org/ns/dcat#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
<{p}/ds/bad> a dcat:Dataset ;
  dcterms:title "Badplatser via API"@sv ;
  dcterms:description "EU-badvatten."@sv ;
  dcat:distribution <{p}/dist/api> .
<{p}/dist/api> a dcat:Distribution ;
  dcterms:format "application/geo+json" ;
  dcat:accessURL <{up}/collections/bad/items> ;
  dcat:accessService <{p}/api> .
<{p}/api> a dcat:DataService ;
  dcterms:title "Exempel-API"@sv ;
  dcat:endpointURL <{up}/> ;
  dcterms:conformsTo <http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core> .
"#
    );
    portal.file("/catalog.ttl", ttl.into_bytes(), "text/turtle");
    let r = send_json(
        "POST",
        &format!("{base}/admin/catalogs"),
        &admin,
        json!({"url": portal.url("/catalog.ttl")}),
    );
    let harvest = wait_job(base, &admin, r.json["job"]["id"].as_str().expect("job"));
    let item = &harvest["harvest"][0];
    assert_eq!(item["outcome"], "scheduled", "{harvest}");
    assert_eq!(item["url"], format!("{up}/collections/bad/items"));
    let job = wait_job(base, &admin, item["job"].as_str().expect("job"));
    assert_eq!(job["state"], "succeeded", "{job}");
    wait_served(base, "badplatser-via-api", total);
}

/// Municipalities publish their parts of a theme collection over the admin API, each with a
/// token limited to its own part: uploads mapped into the theme by jobs, a part removed while
/// the other stays, and what a limited token may not do. On both stores.
#[tokio::test]
async fn municipalities_publish_their_parts_of_a_theme_collection() {
    // Lund's own column names (namn for the theme's name); L3 has no name, which the theme
    // requires: kept with a note, or rejected under strict=true.
    let lund = "id,namn,latitude,longitude,toalett\n\
                L1,Lomma hamn,55.6760,13.0560,ja\n\
                L2,Bjärred,55.7180,13.0090,nej\n\
                L3,,55.7000,13.0300,ja\n";
    let lund = lund.as_bytes();
    let harryda = std::fs::read(data("bathing/harryda_badplatser.csv")).expect("csv");
    for store in each_store().await {
        let kind = store.kind;
        let (admin, _) = token(&store, &["--admin"]);
        let (t1281, _) = token(
            &store,
            &["--collections", "badplatser", "--source-org", "1281"],
        );
        let (t1401, _) = token(
            &store,
            &["--collections", "badplatser", "--source-org", "1401"],
        );
        let (coordinator, _) = token(&store, &["--collections", "badplatser"]);
        let h = serve(&store.args(), &[]);
        let base = &h.server.base;
        let part = |org: &str, query: &str| {
            format!("{base}/admin/themes/badplatser/sources/{org}/upload?{query}")
        };
        let send = |url: &str, token: &str, bytes: &[u8]| {
            req(
                "POST",
                url,
                Some(token),
                Some((bytes, "application/octet-stream")),
            )
        };

        // The themes, for any publishing token.
        let r = get_auth(&format!("{base}/admin/themes"), &t1281);
        assert_eq!(r.status, 200, "{kind}: {}", r.json);
        let bad = r.json["themes"]
            .as_array()
            .expect("themes")
            .iter()
            .find(|t| t["id"] == "badplatser")
            .cloned()
            .expect("badplatser");
        assert_eq!(
            bad["conformsTo"],
            "https://dataportal.se/specifications/badplatser/1.0"
        );
        let name = bad["attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .find(|a| a["name"] == "name")
            .cloned()
            .expect("name");
        assert_eq!(
            (&name["type"], &name["required"]),
            (&json!("text"), &json!(true))
        );
        let who = get_auth(&format!("{base}/admin/whoami"), &t1281).json;
        assert_eq!(who["scope"]["write"]["sourceOrg"], "1281", "{who}");

        // Two municipalities at once, each with its own token: Härryda's file follows the
        // theme as it is; Lund's names its column namn.
        let r1401 = send(&part("1401", "fileName=harryda.csv"), &t1401, &harryda);
        let r1281 = send(
            &part("1281", "fileName=lund.csv&map=namn%3Dname&idField=id"),
            &t1281,
            lund,
        );
        let j1401 = wait_job(base, &t1401, &job_id(&r1401));
        let j1281 = wait_job(base, &t1281, &job_id(&r1281));
        assert_eq!(j1401["state"], "succeeded", "{kind}: {j1401}");
        assert_eq!(
            (
                &j1401["type"],
                &j1401["theme"],
                &j1401["source"],
                &j1401["collection"]
            ),
            (
                &json!("theme-upload"),
                &json!("badplatser"),
                &json!("1401"),
                &json!("badplatser")
            ),
        );
        assert_eq!(j1401["report"][0]["stored"], 9, "{kind}: {j1401}");
        assert_eq!(j1281["state"], "succeeded", "{kind}: {j1281}");
        let report = &j1281["report"][0];
        assert_eq!(
            (&report["stored"], &report["unfitCount"]),
            (&json!(3), &json!(1)),
            "{kind}: {report}"
        );
        assert_eq!(report["unfit"][0]["feature"], 3, "{report}");
        assert!(
            report["unfit"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("name: required value missing")),
            "{report}"
        );
        assert!(
            report["warnings"].to_string().contains("left out: toalett"),
            "{report}"
        );
        wait_served(base, "badplatser", 12);
        let sources = || {
            let (_, items) = get(&format!("{base}/collections/badplatser/items?limit=100"));
            let mut n = std::collections::BTreeMap::new();
            for f in items["features"].as_array().expect("features") {
                *n.entry(
                    f["properties"]["source"]
                        .as_str()
                        .unwrap_or("?")
                        .to_string(),
                )
                .or_insert(0) += 1;
            }
            n
        };
        assert_eq!(
            sources(),
            [("1281".into(), 3), ("1401".into(), 9)].into(),
            "{kind}"
        );
        let (_, l1) = get(&format!("{base}/collections/badplatser/items/1281:L1"));
        assert_eq!(l1["properties"]["name"], "Lomma hamn", "{kind}: {l1}");

        // Each token its own part only: not another's, not the whole collection.
        let r = send(&part("1401", "fileName=lund.csv"), &t1281, lund);
        assert_eq!(r.status, 403, "{kind}: {}", r.json);
        let r = upload(base, &t1281, "badplatser", "fileName=lund.csv", lund);
        assert_eq!(r.status, 403, "{kind}: {}", r.json);
        assert!(
            r.json["description"]
                .as_str()
                .is_some_and(|d| d.contains("/admin/themes/badplatser/sources/1281/upload")),
            "{}",
            r.json
        );
        let r = send_json(
            "PATCH",
            &format!("{base}/admin/collections/badplatser"),
            &t1281,
            json!({"title": "Lunds badplatser"}),
        );
        assert_eq!(r.status, 403, "{kind}: {}", r.json);
        let r = req(
            "DELETE",
            &format!("{base}/admin/themes/badplatser/sources/1401"),
            Some(&t1281),
            None,
        );
        assert_eq!(r.status, 403, "{kind}: {}", r.json);
        // Nor another publisher's jobs.
        let id1401 = j1401["id"].as_str().expect("id");
        assert_eq!(
            get_auth(&format!("{base}/admin/jobs/{id1401}"), &t1281).status,
            404
        );
        let mine = get_auth(&format!("{base}/admin/jobs"), &t1281).json;
        assert_eq!(mine["jobs"].as_array().map(Vec::len), Some(1), "{mine}");

        // Refused before anything is received.
        let r = send(
            &format!("{base}/admin/themes/lekplatser/sources/1281/upload?fileName=x.csv"),
            &admin,
            lund,
        );
        assert_eq!(
            (r.status, &r.json["code"]),
            (404, &json!("NotFound")),
            "{kind}: {}",
            r.json
        );
        let r = req(
            "DELETE",
            &format!("{base}/admin/themes/lekplatser/sources/1281"),
            Some(&admin),
            None,
        );
        assert_eq!(r.status, 404, "{kind}: {}", r.json);
        let r = send(
            &format!("{base}/admin/themes/badplatser/sources/Lund/upload?fileName=x.csv"),
            &admin,
            lund,
        );
        assert_eq!(r.status, 400, "{kind}: {}", r.json);
        assert!(
            r.json["description"]
                .as_str()
                .is_some_and(|d| d.contains("municipality code")),
            "{}",
            r.json
        );
        for (map, says) in [
            ("namn", "write source_column=theme_attribute"),
            (
                "namn%3Dnamn",
                "the theme badplatser has no attribute \"namn\"",
            ),
            (
                "namn%3Dname,id%3Dname",
                "two columns are mapped to \"name\"",
            ),
        ] {
            let r = send(
                &part("1281", &format!("fileName=lund.csv&map={map}")),
                &t1281,
                lund,
            );
            assert_eq!(r.status, 400, "{kind}: {map}: {}", r.json);
            let d = r.json["description"].as_str().unwrap_or_default();
            assert!(d.starts_with("map=") && d.contains(says), "{map}: {d}");
        }
        let r = send(
            &part("1281", "fileName=lund.csv&strict=maybe"),
            &t1281,
            lund,
        );
        assert_eq!(r.status, 400, "{kind}: {}", r.json);
        // A column the file does not have is found by the job, which changes nothing.
        let r = send(
            &part("1281", "fileName=lund.csv&map=NAMNET%3Dname"),
            &t1281,
            lund,
        );
        let job = wait_job(base, &t1281, &job_id(&r));
        assert_eq!(job["state"], "failed", "{kind}: {job}");
        assert!(
            job["message"]
                .to_string()
                .contains("no column \\\"NAMNET\\\""),
            "{job}"
        );

        // strict=true: the row without a name is rejected, and Lund's part replaced by two.
        let r = send(
            &part(
                "1281",
                "fileName=lund.csv&map=namn%3Dname&idField=id&strict=true",
            ),
            &t1281,
            lund,
        );
        let job = wait_job(base, &t1281, &job_id(&r));
        assert_eq!(job["state"], "succeeded", "{kind}: {job}");
        let report = &job["report"][0];
        assert_eq!(
            (
                &report["stored"],
                &report["rejectedCount"],
                &report["unfitCount"]
            ),
            (&json!(2), &json!(1), &json!(0)),
            "{kind}: {report}"
        );
        assert!(
            report["rejected"][0]["reason"].as_str().is_some_and(|r| r
                .contains("does not fit the theme badplatser")
                && r.contains("name")),
            "{report}"
        );
        wait_served(base, "badplatser", 11);

        // Lund removes its part; Härryda's stays.
        let r = req(
            "DELETE",
            &format!("{base}/admin/themes/badplatser/sources/1281"),
            Some(&t1281),
            None,
        );
        assert_eq!(r.status, 200, "{kind}: {}", r.json);
        assert_eq!(
            (&r.json["removed"], &r.json["featureCount"]),
            (&json!(2), &json!(9)),
            "{}",
            r.json
        );
        assert!(r.json["version"].as_i64().is_some(), "{}", r.json);
        wait_served(base, "badplatser", 9);
        assert_eq!(sources(), [("1401".into(), 9)].into(), "{kind}");
        let r = req(
            "DELETE",
            &format!("{base}/admin/themes/badplatser/sources/1281"),
            Some(&t1281),
            None,
        );
        assert_eq!(r.status, 404, "{kind}: {}", r.json);
        // The region's coordinator (a write token without --source-org) may write every part.
        let r = req(
            "DELETE",
            &format!("{base}/admin/themes/badplatser/sources/1401"),
            Some(&coordinator),
            None,
        );
        assert_eq!(r.status, 200, "{kind}: {}", r.json);
        assert_eq!(r.json["featureCount"], 0, "{}", r.json);
    }
}
