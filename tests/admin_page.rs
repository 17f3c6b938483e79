//! The admin page (`/admin`): its security headers, checked on the wire, and the whole
//! publishing flow driven through it in a real browser (tests/browser/admin.js).

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{fetch, free_port, hamn_cmd, repo, Server};
use serde_json::Value as Json;

/// `hamn serve` on an empty embedded store (no demo data), its log in a file.
struct Served {
    server: Server,
    dir: tempfile::TempDir,
    log: tempfile::NamedTempFile,
}

impl Served {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = tempfile::NamedTempFile::new().expect("log file");
        let port = free_port();
        let child = hamn_cmd()
            .args(["--data-dir", &dir.path().display().to_string()])
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--no-demo"])
            .args(["--refresh-seconds", "1"])
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .expect("spawn hamn serve");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            downloads: None,
        };
        let served = Served { server, dir, log };
        let deadline = Instant::now() + Duration::from_secs(120);
        while ureq::get(&format!("{}/health", served.base()))
            .call()
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "server did not come up: {}",
                served.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        served
    }

    fn base(&self) -> &str {
        &self.server.base
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// A new admin token, made with the binary against the same store.
    fn admin_token(&self) -> String {
        common::admin_token(self.dir.path())
    }
}

/// The nonce of a Content-Security-Policy directive such as `script-src 'nonce-…'`.
fn nonce_of<'a>(policy: &'a str, directive: &str) -> &'a str {
    let rest = policy
        .split(';')
        .map(str::trim)
        .find_map(|d| d.strip_prefix(directive))
        .unwrap_or_else(|| panic!("no {directive} in {policy}"));
    rest.trim()
        .strip_prefix("'nonce-")
        .and_then(|n| n.strip_suffix('\''))
        .unwrap_or_else(|| panic!("{directive} is not just a nonce: {policy}"))
}

#[test]
fn admin_page_has_a_strict_policy_and_no_other_hosts() {
    let s = Served::start();
    let url = format!("{}/admin", s.base());
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let resp = fetch(&url);
        assert_eq!(resp.status(), 200);
        assert!(resp.content_type().starts_with("text/html"));
        assert_eq!(resp.header("cache-control"), Some("no-store"));
        assert_eq!(resp.header("x-frame-options"), Some("DENY"));
        assert_eq!(resp.header("referrer-policy"), Some("no-referrer"));
        let policy = resp
            .header("content-security-policy")
            .expect("a Content-Security-Policy")
            .to_string();
        for directive in [
            "default-src 'none'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(
                policy.split(';').any(|d| d.trim() == directive),
                "{directive} missing: {policy}"
            );
        }
        assert!(!policy.contains("unsafe"), "{policy}");
        let nonce = nonce_of(&policy, "script-src").to_string();
        assert_eq!(nonce_of(&policy, "style-src"), nonce);
        assert!(nonce.len() >= 22, "a short nonce: {nonce}");
        let body = resp.into_string().expect("body");
        // The one script and the one style carry the header's nonce.
        assert_eq!(body.matches("<script").count(), 1, "{body}");
        assert_eq!(body.matches("<style").count(), 1);
        assert!(body.contains(&format!("<script nonce=\"{nonce}\">")));
        assert!(body.contains(&format!("<style nonce=\"{nonce}\">")));
        // Nothing from elsewhere: every absolute URL is this server's.
        for scheme in ["http://", "https://"] {
            for (at, _) in body.match_indices(scheme) {
                assert!(
                    body[at..].starts_with(&format!("{}/", s.base()))
                        || body[at..].starts_with(&format!("{}\"", s.base())),
                    "a reference to another host: {}",
                    &body[at..(at + 60).min(body.len())]
                );
            }
        }
        assert!(!body.contains("src=\"//") && !body.contains("href=\"//"));
        nonces.push(nonce);
    }
    assert_ne!(
        nonces[0], nonces[1],
        "the nonce must be fresh for each response"
    );
}

#[test]
fn admin_page_publishes_an_upload_in_a_browser() {
    let started = Instant::now();
    let script = repo().join("tests/browser/admin.js");
    let modules = repo().join("tests/browser/node_modules/playwright-core");
    assert!(
        modules.exists(),
        "playwright-core is missing: `bash scripts/deps.sh browser` installs it (the test command does)"
    );
    let file = repo().join("data/bathing/harryda_badplatser.csv");
    assert!(Path::new(&file).exists(), "{} is missing", file.display());
    let s = Served::start();
    let token = s.admin_token();

    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(s.base())
        .arg(&token)
        .arg(&file)
        .arg("browser-upload")
        .stdin(Stdio::null())
        .output()
        .expect("node");
    let report: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "no report from admin.js: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let context = format!("{report:#}\nserver log:\n{}", s.log());
    assert_eq!(report["errors"], serde_json::json!([]), "{context}");
    assert_eq!(report["cspViolations"], serde_json::json!([]), "{context}");
    assert!(
        report["wrongTokenError"]
            .as_str()
            .is_some_and(|e| e.contains("not valid")),
        "{context}"
    );
    assert_eq!(report["loggedIn"], true, "{context}");
    assert_eq!(report["tokenInSessionStorage"], true, "{context}");
    assert_eq!(report["localStorageKeys"], 0, "{context}");
    assert_eq!(report["cookies"], 0, "{context}");
    assert_eq!(report["progressSeen"], true, "{context}");
    assert_eq!(report["jobState"], "succeeded", "{context}");
    assert_eq!(report["jobProgress"], "9 / 9", "{context}");
    let job_report = report["reportText"].as_str().unwrap_or_default();
    assert!(
        job_report.contains("read") && job_report.contains("stored"),
        "{context}"
    );
    assert_eq!(report["collectionListed"], true, "{context}");
    assert_eq!(report["loggedOut"], true, "{context}");

    // The server serves what the page published.
    let items = format!("{}/collections/browser-upload/items?f=json", s.base());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = fetch(&items);
        if resp.status() == 200 {
            let body: Json = resp.into_json().expect("JSON");
            let n = body["features"].as_array().map_or(0, Vec::len);
            if n > 0 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no features served: {}", s.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "admin page browser test: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
