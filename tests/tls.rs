//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` in the database URL, against the
//! test cluster, which scripts/test.sh starts with TLS on (a self-signed certificate for
//! localhost and 127.0.0.1). PostgreSQL's own `pg_stat_ssl` says whether each of hamn's
//! connections is encrypted.

mod common;

use common::*;

/// The test cluster's URL and certificates; `None` (skipped) only with HAMN_SKIP_POSTGIS=1.
fn cluster() -> Option<(String, String, String)> {
    let url = postgis_url()?;
    let ca = std::env::var("HAMN_TEST_PG_CA").unwrap_or_else(|_| {
        panic!("HAMN_TEST_PG_CA is not set: run the tests with `bash scripts/test.sh`, which starts the cluster with TLS")
    });
    let other = std::env::var("HAMN_TEST_PG_OTHER_CA").expect("HAMN_TEST_PG_OTHER_CA");
    Some((url, ca, other))
}

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// Whether the connections named `app` are encrypted, as the server sees them.
async fn encrypted(url: &str, app: &str) -> Vec<bool> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .expect("pg_stat_ssl")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn sslmode_and_sslrootcert_are_honoured() {
    let Some((url, ca, other)) = cluster() else {
        return;
    };
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    for (mode, root, app, want_tls) in [
        ("verify-full", Some(&ca), "hamn-verify-full", true),
        ("verify-ca", Some(&ca), "hamn-verify-ca", true),
        ("require", None, "hamn-require", true),
        ("prefer", None, "hamn-prefer", true),
        ("disable", None, "hamn-disable", false),
    ] {
        let mut params = format!("sslmode={mode}&application_name={app}");
        if let Some(root) = root {
            params.push_str(&format!("&sslrootcert={}", enc(root)));
        }
        let db = with_params(&url, &params);
        // A one-shot command connects and answers...
        let o = hamn_cmd()
            .args(["--database-url", &db, "collections", "list"])
            .output()
            .expect("hamn collections list");
        assert!(
            o.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // ... and a server's connections are encrypted exactly when they should be.
        let s = start(&["--database-url".to_string(), db.clone()], &["--no-demo"]);
        assert_eq!(fetch(&format!("{}/collections", s.base)).status(), 200);
        let seen = encrypted(&url, app).await;
        assert!(!seen.is_empty(), "{mode}: no connection named {app}");
        assert!(
            seen.iter().all(|&tls| tls == want_tls),
            "{mode}: encrypted {seen:?}"
        );
        drop(s);
    }

    // A certificate from another authority is refused when checked, with a clear message...
    for mode in ["verify-full", "verify-ca", "require"] {
        let db = with_params(&url, &format!("sslmode={mode}&sslrootcert={}", enc(&other)));
        let o = hamn_cmd()
            .args(["--database-url", &db, "collections", "list"])
            .output()
            .expect("hamn collections list");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "{mode}: accepted a certificate it cannot trust"
        );
        assert!(err.contains("certificate"), "{mode}: {err}");
    }
    // ... as is a host name the certificate does not name, under verify-full only: the name
    // is wrong.example (what TLS checks), the address the cluster's (hostaddr).
    let port = url
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .expect("port in the test URL");
    let by_other_name = format!(
        "postgres://postgres@wrong.example:{port}/hamn_test?hostaddr=127.0.0.1&sslrootcert={}",
        enc(&ca)
    );
    let check = |mode: &str| {
        hamn_cmd()
            .args([
                "--database-url",
                &format!("{by_other_name}&sslmode={mode}"),
                "collections",
                "list",
            ])
            .output()
            .expect("hamn")
    };
    let full = check("verify-full");
    let err = String::from_utf8_lossy(&full.stderr);
    assert!(
        !full.status.success() && err.contains("certificate"),
        "verify-full accepted a certificate for another name: {err}"
    );
    let ca_only = check("verify-ca");
    assert!(
        ca_only.status.success(),
        "verify-ca checks the chain only: {}",
        String::from_utf8_lossy(&ca_only.stderr)
    );

    // Bad settings are refused before connecting.
    for (params, says) in [
        ("sslmode=sometimes", "sslmode=sometimes"),
        (
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            "/nonexistent/ca.pem",
        ),
    ] {
        let o = hamn_cmd()
            .args([
                "--database-url",
                &with_params(&url, params),
                "collections",
                "list",
            ])
            .output()
            .expect("hamn");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{params}: {err}");
    }
}
