//! The `hamn` binary as a user runs it: help, collections, migrations, and every kind of bad
//! input — each a one-line error and a non-zero exit that leaves what was stored untouched.

mod common;

use std::process::Output;

use common::*;

fn run(cmd: &mut std::process::Command) -> Output {
    cmd.output().expect("run hamn")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["ingest", "--help"],
        vec!["collections", "--help"],
        vec!["collections", "list", "--help"],
        vec!["collections", "edit", "--help"],
        vec!["tokens", "create", "--help"],
        vec!["migrate", "--help"],
    ] {
        let o = run(hamn_cmd().args(&args));
        assert!(o.status.success(), "{args:?}");
        assert!(stdout(&o).contains("Usage:"), "{args:?}");
    }
    let o = run(hamn_cmd().args(["ingest", "--help"]));
    for flag in [
        "--mode",
        "--source-crs",
        "--id-field",
        "--x-field",
        "--encoding",
        "--licence",
        "--force",
    ] {
        assert!(stdout(&o).contains(flag), "ingest --help lacks {flag}");
    }
}

/// (what, arguments after `ingest`, words the error must contain)
fn bad_inputs(dir: &std::path::Path) -> Vec<(&'static str, Vec<String>, &'static str)> {
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        p.display().to_string()
    };
    let garbage = write(
        "garbage.dat",
        &(0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let empty = write("empty.geojson", b"");
    let broken_json = write(
        "broken.geojson",
        br#"{"type":"FeatureCollection","features":[{"type":"Feat"#,
    );
    let projected = write(
        "projected.csv",
        b"namn;E;N\nA;119000;6163000\nB;119100;6163100\n",
    );
    let half = dir.join("half");
    std::fs::create_dir_all(&half).expect("mkdir");
    let zip =
        std::fs::File::open(fixture("hav_active_bathing_waters_sweref99tm.zip")).expect("zip");
    zip::ZipArchive::new(zip)
        .expect("zip")
        .extract(&half)
        .expect("unzip");
    let shp = half.join("hav_active_bathing_waters_sweref99tm.shp");
    let bytes = std::fs::read(&shp).expect("read");
    std::fs::write(&shp, &bytes[..bytes.len() / 2]).expect("truncate");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (
            "unknown format",
            s(&[&garbage, "-c", "tc", "--mode", "replace"]),
            "not a vector format",
        ),
        (
            "broken JSON",
            s(&[&broken_json, "-c", "tc", "--mode", "replace"]),
            "not a vector format",
        ),
        (
            "empty file",
            s(&[&empty, "-c", "tc", "--mode", "replace"]),
            "empty file",
        ),
        (
            "no geometry",
            s(&[&fixture("no_geometry.csv"), "-c", "tc", "--mode", "replace"]),
            "no geometry",
        ),
        (
            "unknown CRS",
            s(&[
                &fixture("wkt_3006.csv"),
                "-c",
                "tc",
                "--mode",
                "replace",
                "--source-crs",
                "EPSG:999999",
            ]),
            "unknown CRS",
        ),
        (
            "projected CSV without CRS",
            s(&[&projected, "-c", "tc", "--mode", "replace"]),
            "--source-crs",
        ),
        (
            "missing file",
            s(&[
                "/nonexistent/parkering.geojson",
                "-c",
                "tc",
                "--mode",
                "replace",
            ]),
            "file not found",
        ),
        (
            "corrupt halfway",
            s(&[&shp.display().to_string(), "-c", "tc", "--mode", "replace"]),
            "corrupt source at feature 1341",
        ),
        (
            "name collision",
            s(&[&data("bathing/harryda_badplatser.csv"), "-c", "tc"]),
            "already exists",
        ),
        (
            "network source",
            s(&[
                "/vsicurl/http://127.0.0.1:9/x.geojson",
                "-c",
                "tc",
                "--mode",
                "replace",
            ]),
            "refused",
        ),
        (
            "URL",
            s(&[
                "http://127.0.0.1:9/x.geojson",
                "-c",
                "tc",
                "--mode",
                "replace",
            ]),
            "refused",
        ),
        (
            "driver prefix",
            s(&["PG:dbname=postgres", "-c", "tc", "--mode", "replace"]),
            "refused",
        ),
        (
            "unknown id field",
            s(&[
                &data("bathing/harryda_badplatser.csv"),
                "-c",
                "tc",
                "--mode",
                "replace",
                "--id-field",
                "nope",
            ]),
            "no field named \"nope\"",
        ),
        (
            "unknown layer",
            s(&[
                &data("bathing/harryda_badplatser.csv"),
                "-c",
                "tc",
                "--mode",
                "replace",
                "--layer",
                "nope",
            ]),
            "no layer named",
        ),
        (
            "unknown encoding",
            s(&[
                &fixture("swedish_excel_3008.csv"),
                "-c",
                "tc",
                "--mode",
                "replace",
                "--encoding",
                "klingon",
            ]),
            "unknown text encoding",
        ),
    ]
}

#[tokio::test]
async fn bad_input_is_one_clear_line_and_changes_nothing() {
    for store in each_store().await {
        let o = run(store.hamn().args([
            "ingest",
            &data("synthetic/traffic_counts_malmo_lund_synthetic.geojson"),
            "-c",
            "tc",
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        let before = store.entry("tc").await;
        let features = store.features("tc").await;
        let dir = tempfile::tempdir().expect("tempdir");
        for (what, args, words) in bad_inputs(dir.path()) {
            let o = run(store.hamn().arg("ingest").args(&args));
            let err = stderr(&o);
            assert!(!o.status.success(), "{} {what}: should fail", store.kind);
            assert!(
                err.contains(words),
                "{} {what}: {err:?} lacks {words:?}",
                store.kind
            );
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{} {what}: one line, got {err:?}",
                store.kind
            );
            assert!(err.starts_with("error: "), "{what}: {err}");
        }
        assert_eq!(
            store.store.get(&id("tc")).await.expect("get"),
            Some(before),
            "{}",
            store.kind
        );
        assert_eq!(store.features("tc").await, features);
        let o = run(store.hamn().args(["collections", "list"]));
        assert_eq!(
            stdout(&o).lines().count(),
            1,
            "no stray collection: {}",
            stdout(&o)
        );
    }
}

#[test]
fn a_bad_collection_id_is_refused_by_the_parser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = run(hamn_cmd()
        .args([
            "--data-dir",
            &dir.path().display().to_string(),
            "ingest",
            &data("bathing/harryda_badplatser.csv"),
        ])
        .args(["-c", "Robert'); DROP TABLE students;--"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid collection id"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn collections_list_show_delete() {
    for store in each_store().await {
        let o = run(store.hamn().args([
            "ingest",
            &data("bathing/harryda_badplatser.csv"),
            "--title",
            "Badplatser i Härryda",
            "--licence",
            "CC0-1.0",
            "--keywords",
            "bad, strand",
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stdout(&o).contains("harryda-badplatser: version"),
            "{}",
            stdout(&o)
        );
        assert!(stdout(&o).contains("stored 9"), "{}", stdout(&o));
        let o = run(store.hamn().args(["collections", "list"]));
        assert!(
            stdout(&o).starts_with("harryda-badplatser\t9 features\tv"),
            "{}",
            stdout(&o)
        );
        let o = run(store
            .hamn()
            .args(["collections", "show", "harryda-badplatser"]));
        let shown: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        assert_eq!(shown["title"], "Badplatser i Härryda");
        assert_eq!(shown["licence"], "CC0-1.0");
        assert_eq!(shown["keywords"], serde_json::json!(["bad", "strand"]));
        assert_eq!(shown["feature_count"], 9);
        // Edit: only what is given changes; "" clears; the features stay.
        let o = run(store.hamn().args([
            "collections",
            "edit",
            "harryda-badplatser",
            "--description",
            "Nio kommunala badplatser.",
            "--licence",
            "",
            "--conforms-to",
            "https://dataportal.se/specifications/badplatser/1.0",
            "--language",
            "SV",
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        let o = run(store
            .hamn()
            .args(["collections", "show", "harryda-badplatser"]));
        let edited: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        assert_eq!(edited["title"], "Badplatser i Härryda");
        assert_eq!(edited["description"], "Nio kommunala badplatser.");
        assert_eq!(edited["licence"], serde_json::Value::Null);
        assert_eq!(edited["keywords"], serde_json::json!(["bad", "strand"]));
        assert_eq!(
            edited["conforms_to"],
            serde_json::json!(["https://dataportal.se/specifications/badplatser/1.0"])
        );
        assert_eq!(edited["feature_count"], 9);
        assert_eq!(edited["language"], "sv");
        let o = run(store.hamn().args([
            "collections",
            "edit",
            "harryda-badplatser",
            "--language",
            "klingon",
        ]));
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("language \"klingon\": use one of sv, en"),
            "{}",
            stderr(&o)
        );
        assert!(edited["version"].as_i64() > shown["version"].as_i64());
        let o =
            run(store
                .hamn()
                .args(["collections", "edit", "harryda-badplatser", "--title", " "]));
        assert!(!o.status.success() && stderr(&o).contains("title"));
        let o = run(store
            .hamn()
            .args(["collections", "edit", "nowhere", "--title", "x"]));
        assert!(!o.status.success() && stderr(&o).contains("not found"));
        let o = run(store
            .hamn()
            .args(["collections", "delete", "harryda-badplatser"]));
        assert!(o.status.success());
        let o = run(store
            .hamn()
            .args(["collections", "show", "harryda-badplatser"]));
        assert!(!o.status.success());
        assert!(stderr(&o).contains("not found"));
        let o = run(store
            .hamn()
            .args(["collections", "delete", "harryda-badplatser"]));
        assert!(!o.status.success());
        if store.kind == "postgis" {
            assert_eq!(data_tables(&store).await, 0, "delete drops the data table");
        }
    }
}

#[tokio::test]
async fn migrations_are_safe_twice_and_concurrently() {
    let Some(store) = postgis().await else { return };
    // A fresh database, migrated by two processes at the same moment, then once more.
    let c = sql(&store).await;
    let fresh = format!(
        "{}_m",
        store
            .url
            .as_ref()
            .and_then(|u| u.rsplit_once('/'))
            .map(|(_, d)| d.to_string())
            .unwrap_or_default()
    );
    c.batch_execute(&format!("CREATE DATABASE {fresh}"))
        .await
        .expect("create");
    let url = format!(
        "{}/{fresh}",
        store
            .url
            .as_ref()
            .and_then(|u| u.rsplit_once('/'))
            .map(|(s, _)| s.to_string())
            .unwrap_or_default()
    );
    let spawn = || {
        hamn_cmd()
            .args(["--database-url", &url, "migrate"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let o = child.wait_with_output().expect("wait");
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = run(hamn_cmd().args(["--database-url", &url, "migrate"]));
    assert!(o.status.success());
    assert!(stdout(&o).contains("up to date"));
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let n: i64 = client
        .query_one("SELECT count(*) FROM hamn.schema_migrations", &[])
        .await
        .expect("q")
        .get(0);
    assert_eq!(n as usize, hamn::store::postgis::MIGRATIONS.len());
}

/// An ingest killed with SIGKILL while it is loading leaves the previous version served.
#[tokio::test]
async fn an_ingest_killed_midway_leaves_the_previous_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.csv");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).expect("create"));
        writeln!(f, "id,namn,lon,lat").expect("write");
        for i in 0..400_000u32 {
            let (x, y) = (
                12.5 + f64::from(i % 1000) * 0.002,
                55.4 + f64::from(i / 1000) * 0.002,
            );
            writeln!(f, "{i},plats {i},{x:.5},{y:.5}").expect("write");
        }
    }
    for store in each_store().await {
        let o = run(store.hamn().args([
            "ingest",
            &data("bathing/harryda_badplatser.csv"),
            "-c",
            "big",
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        let before = store.entry("big").await;
        let features = store.features("big").await;

        let mut child = store
            .hamn()
            .args([
                "ingest",
                &big.display().to_string(),
                "-c",
                "big",
                "--mode",
                "replace",
                "--quiet",
            ])
            .spawn()
            .expect("spawn");
        // Wait until rows are being loaded, then kill without warning.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let loading = match store.kind {
                "embedded" => {
                    std::fs::read_dir(store.dir.as_ref().expect("dir").path().join("collections"))
                        .expect("read dir")
                        .flatten()
                        .any(|e| e.file_name().to_string_lossy().contains(".partial."))
                }
                _ => {
                    let n: i64 = sql(&store)
                        .await
                        .query_one(
                            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %'",
                            &[],
                        )
                        .await
                        .expect("query")
                        .get(0);
                    n > 0
                }
            };
            if loading {
                break;
            }
            assert!(
                child.try_wait().expect("wait").is_none(),
                "{}: ingest ended before it could be killed",
                store.kind
            );
            assert!(
                std::time::Instant::now() < deadline,
                "loading never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");

        assert_eq!(
            store.store.get(&id("big")).await.expect("get"),
            Some(before),
            "{}",
            store.kind
        );
        assert_eq!(store.features("big").await, features);
        if store.kind == "postgis" {
            // The server rolls the dead session's transaction back, new table included.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                if data_tables(&store).await == 1 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "half-loaded table still there"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        // And the next ingest works.
        let o = run(store.hamn().args([
            "ingest",
            &data("synthetic/traffic_counts_malmo_lund_synthetic.geojson"),
            "-c",
            "big",
            "--mode",
            "replace",
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(store.features("big").await.len(), 150);
    }
}
