//! Property-based tests of the HTTP APIs from their OpenAPI documents: schemathesis (PyPI, pinned
//! in tests/api/requirements.txt, installed into tests/api/.venv by `bash scripts/test.sh`
//! through `scripts/deps.sh api`) reads a document from a `hamn serve`, generates requests for
//! every operation (valid and invalid ones) and checks every response: no 5xx, and status
//! code, content type, declared headers and body as the document says. Two documents: the
//! public OGC API (`/api`, on the demo data) and the admin API (`/admin/api`, on an empty
//! store, with an admin token).
//!
//! Bounded and repeatable: derandomized generation (the same requests every run), at most
//! a few cases per operation and phase, and a deadline for the whole run.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Test cases per operation in the fuzzing phase of the public API (the coverage phase adds
/// its own, from the schemas' boundaries, and the stateful phase follows links between
/// operations).
const MAX_EXAMPLES: &str = "25";

/// The same for the admin API: fewer, since uploads, sources and catalogs queue jobs.
const ADMIN_MAX_EXAMPLES: &str = "10";

/// The checks run on every response.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

/// A run is stopped and failed past this (each takes well under a minute).
const DEADLINE: Duration = Duration::from_secs(600);

/// Operations (method and path) in an OpenAPI document.
fn operations(doc: &serde_json::Value) -> usize {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| METHODS.iter().filter(|m| item[**m].is_object()).count())
        .sum()
}

/// Runs schemathesis on the document at `url` with `args` added, and fails the test on any
/// problem it reports, on a run past DEADLINE, on an operation left untested, or on fewer than
/// `min_cases` cases per operation. Returns its report.
fn schemathesis(url: &str, args: &[&str], min_cases: usize) -> String {
    let st = repo().join("tests/api/.venv/bin/st");
    assert!(
        st.is_file(),
        "schemathesis is missing ({}): `bash scripts/test.sh` installs it \
         (or `bash scripts/deps.sh api` alone)",
        st.display()
    );
    let (status, doc) = get(url);
    assert_eq!(status, 200);
    // schemathesis leaves out the operation that serves the document itself (the admin
    // document lists `GET /admin/api`; the public one does not list `/api`).
    let own_path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/");
    let operations = operations(&doc) - usize::from(doc["paths"][own_path]["get"].is_object());

    // Its own working directory, so no schemathesis.toml or report from elsewhere is read or
    // left behind.
    let cwd = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut child = Command::new(&st)
        .current_dir(cwd.path())
        .args(["run", url])
        .args(["--checks", CHECKS])
        .arg("--generation-deterministic")
        .args(["--request-timeout", "30"])
        .args(args)
        .arg("--no-color")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", st.display()));

    // Read the pipes on threads so a full pipe never stalls the run, and wait with a deadline.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    let took = started.elapsed();
    println!("{out}\n{err}\nschemathesis ran {:.1} s", took.as_secs_f64());

    let Some(status) = status else {
        panic!("schemathesis ran past {DEADLINE:?}:\n{out}\n{err}");
    };
    assert!(
        status.success(),
        "schemathesis found problems ({status}); its report:\n{out}\n{err}"
    );
    // A run that tested nothing passes too: check that every operation was tested.
    let tested = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse::<usize>().ok());
    assert_eq!(
        tested,
        Some(operations),
        "operations tested, of {operations} in {url}:\n{out}"
    );
    let generated = out
        .lines()
        .find_map(|l| {
            let (n, _) = l.trim().split_once(" generated, ")?;
            n.parse::<usize>().ok()
        })
        .unwrap_or(0);
    assert!(
        generated >= min_cases * operations,
        "only {generated} test cases:\n{out}"
    );
    out
}

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let (server, _dir) = demo_server();
    let (_, doc) = get(&format!("{}/api", server.base));
    assert!(
        operations(&doc) > 20,
        "{} operations in /api",
        operations(&doc)
    );
    schemathesis(
        &format!("{}/api", server.base),
        &[
            "--max-examples",
            MAX_EXAMPLES,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--workers",
            "2",
        ],
        20,
    );
}

/// The admin API, on an empty embedded store, with an admin token. Uploads, source URLs and
/// catalogs queue jobs: the fetches they start (of URLs schemathesis makes up, refused as
/// non-public or unreachable, since there is no internet here) end within 5 s. One worker, so
/// the requests come in the same order each run.
#[test]
fn the_admin_api_answers_as_its_openapi_document_says() {
    let (server, _dir, token) = admin_server(&["--fetch-timeout-seconds", "5"]);
    let authorization = format!("Authorization: Bearer {token}");
    schemathesis(
        &format!("{}/admin/api", server.base),
        &[
            "--header",
            &authorization,
            "--max-examples",
            ADMIN_MAX_EXAMPLES,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--workers",
            "1",
        ],
        10,
    );
}
