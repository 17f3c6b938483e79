//! Property-based tests of the HTTP API from its OpenAPI document: schemathesis (PyPI, pinned in
//! tests/api/requirements.txt, installed into tests/api/.venv by `bash scripts/test.sh` through
//! `scripts/deps.sh api`) reads `/api` of a `hamn serve` on the demo data, generates requests
//! for every operation (valid and invalid ones) and checks every response: no 5xx, and status
//! code, content type, declared headers and body as the document says.
//!
//! Bounded and repeatable: derandomized generation (the same requests every run) and at most
//! MAX_EXAMPLES cases per operation and phase.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Test cases per operation in the fuzzing phase (the coverage phase adds its own, from the
/// schemas' boundaries, and the stateful phase follows links between operations).
const MAX_EXAMPLES: &str = "25";

/// The checks run on every response.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

/// The whole run is stopped and failed past this (it takes well under a minute).
const DEADLINE: Duration = Duration::from_secs(600);

#[test]
fn the_api_answers_as_its_openapi_document_says() {
    let st = repo().join("tests/api/.venv/bin/st");
    assert!(
        st.is_file(),
        "schemathesis is missing ({}): `bash scripts/test.sh` installs it \
         (or `bash scripts/deps.sh api` alone)",
        st.display()
    );

    let (server, _dir) = demo_server();
    let (status, doc) = get(&format!("{}/api", server.base));
    assert_eq!(status, 200);
    let operations = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |m| m.len()))
        .sum::<usize>();
    assert!(operations > 20, "{operations} operations in /api");

    // Its own working directory, so no schemathesis.toml or report from elsewhere is read or
    // left behind.
    let cwd = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut child = Command::new(&st)
        .current_dir(cwd.path())
        .args(["run", &format!("{}/api", server.base)])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .arg("--generation-deterministic")
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
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
        "operations tested, of {operations} in /api:\n{out}"
    );
    let generated = out
        .lines()
        .find_map(|l| {
            let (n, _) = l.trim().split_once(" generated, ")?;
            n.parse::<usize>().ok()
        })
        .unwrap_or(0);
    assert!(
        generated >= 20 * operations,
        "only {generated} test cases:\n{out}"
    );
}
