//! `hamn serve` end to end: a fresh embedded store is filled with the demo data on first start
//! and served over HTTP; errors come back as JSON.

mod common;

use common::*;

#[test]
fn first_start_serves_the_demo_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let mut server = start(&args, &[]);
    let manifest = hamn::demo::load_manifest(&repo().join("data")).expect("manifest");
    let (status, doc) = get(&format!("{}/collections", server.base));
    assert_eq!(status, 200);
    let collections = doc["collections"].as_array().expect("collections");
    let themes: std::collections::BTreeSet<&str> =
        manifest.theme.iter().map(|t| t.theme.as_str()).collect();
    assert_eq!(
        collections.len(),
        manifest.collection.len() + themes.len(),
        "every demo collection and theme collection loads"
    );
    let count = |id: &str| {
        collections
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"))["itemCount"]
            .as_u64()
    };
    assert_eq!(count("malmo-miljoparkering"), Some(2261));
    assert_eq!(count("copenhagen-osm-parking"), Some(597));
    // The theme collection: Härryda's 9 sites and HaV's 2,684 bathing waters in one schema.
    assert_eq!(count("badplatser"), Some(2693));
    for c in collections {
        assert!(c["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            c["extent"]["spatial"]["bbox"][0]
                .as_array()
                .is_some_and(|b| b.len() == 4),
            "{}",
            c["id"]
        );
    }
    for c in collections
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(|s| s.contains("synthetic")))
    {
        assert!(c["title"]
            .as_str()
            .is_some_and(|t| t.to_lowercase().contains("synthetic")));
    }

    let (status, doc) = get(&format!("{}/collections/malmo-miljoparkering", server.base));
    assert_eq!(status, 200);
    assert_eq!(doc["source"]["name"], "malmo_miljoparkering.geojson");
    let (status, doc) = get(&format!("{}/", server.base));
    assert_eq!(status, 200);
    assert!(doc["links"]
        .as_array()
        .is_some_and(|l| l.iter().any(|l| l["rel"] == "data")));

    for bad in [
        "/collections/nope",
        "/collections/Robert%27%3B%20DROP%20TABLE",
        "/collections/%00",
        "/nothing/here",
    ] {
        let (status, doc) = get(&format!("{}{bad}", server.base));
        assert_eq!(status, 404, "{bad}");
        assert_eq!(doc["code"], "NotFound");
        assert!(doc["description"].as_str().is_some());
    }
    let (status, _) = get(&format!("{}/health", server.base));
    assert_eq!(status, 200, "still answering after bad requests");
    assert!(server.child.try_wait().expect("status").is_none());

    // A second start over the same store serves what is there and loads nothing again.
    let versions = |doc: &serde_json::Value| -> Vec<(String, u64)> {
        doc["collections"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or_default().to_string(),
                    c["version"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    };
    let (_, first) = get(&format!("{}/collections", server.base));
    drop(server);
    let server = start(&args, &[]);
    let (_, second) = get(&format!("{}/collections", server.base));
    assert_eq!(versions(&first), versions(&second));
}

#[tokio::test]
async fn postgis_store_is_served_too() {
    let Some(store) = postgis().await else { return };
    let o = store
        .hamn()
        .args([
            "ingest",
            &data("bathing/harryda_badplatser.csv"),
            "--title",
            "Badplatser",
        ])
        .output()
        .expect("ingest");
    assert!(o.status.success());
    let server = start(&store.args(), &["--no-demo"]);
    let (status, doc) = get(&format!("{}/collections/harryda-badplatser", server.base));
    assert_eq!(status, 200);
    assert_eq!(doc["itemCount"], 9);
    assert_eq!(doc["title"], "Badplatser");
    let (_, health) = get(&format!("{}/health", server.base));
    assert_eq!(health["store"], "postgis");
}

/// Two instances on one PostGIS stay in step through the store's notifications, not polling
/// (which is set to an hour here): an ingest by another process is served by both within
/// seconds, and a title edit too.
#[tokio::test]
async fn instances_on_postgis_follow_commits_at_once() {
    let Some(store) = postgis().await else { return };
    let slow = ["--no-demo", "--refresh-seconds", "3600"];
    let (a, b) = (start(&store.args(), &slow), start(&store.args(), &slow));
    let o = store
        .hamn()
        .args(["ingest", &data("bathing/harryda_badplatser.csv")])
        .output()
        .expect("ingest");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let served = |base: &str, want: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (status, doc) = get(&format!("{base}/collections/harryda-badplatser"));
            if status == 200 && doc["title"] == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{base}: not served within 20 s though polling waits an hour: {doc}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let title = store.entry("harryda-badplatser").await.meta.title;
    served(&a.base, &title);
    served(&b.base, &title);
    let o = store
        .hamn()
        .args([
            "collections",
            "edit",
            "harryda-badplatser",
            "--title",
            "Härryda",
        ])
        .output()
        .expect("edit");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    served(&a.base, "Härryda");
    served(&b.base, "Härryda");
}

/// One collection's failure is that collection's alone: with its GeoPackage replaced by junk
/// the server still starts and serves the rest, answers 503 with the reason for the broken
/// one, lists it for operators in /health, retries with back-off, and recovers by itself when
/// the file is fixed. A collection above --max-features is unavailable the same way.
#[test]
fn a_broken_collection_does_not_stop_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let server = start(&args, &[]);
    let (_, all) = get(&format!("{}/collections", server.base));
    let total = all["collections"].as_array().expect("list").len();
    drop(server);

    let victim = "harryda-badplatser";
    let file = std::fs::read_dir(dir.path().join("collections"))
        .expect("collections dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{victim}.v")) && n.ends_with(".gpkg"))
        })
        .expect("the victim's GeoPackage");
    let good = std::fs::read(&file).expect("read");
    std::fs::write(&file, b"this is not a GeoPackage").expect("corrupt");

    let server = start(&args, &["--refresh-seconds", "1"]);
    let (status, all) = get(&format!("{}/collections", server.base));
    assert_eq!(status, 200);
    let ids: Vec<&str> = all["collections"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids.len(), total - 1, "{ids:?}");
    assert!(!ids.contains(&victim));
    for path in [
        format!("/collections/{victim}"),
        format!("/collections/{victim}/items"),
        format!("/collections/{victim}/tiles/WebMercatorQuad/10/550/320"),
    ] {
        let resp = fetch(&format!("{}{path}", server.base));
        assert_eq!(resp.status(), 503, "{path}");
        assert!(resp.header("retry-after").is_some(), "{path}");
        let doc: serde_json::Value = resp.into_json().expect("json");
        assert_eq!(doc["code"], "ServiceUnavailable");
        assert!(doc["description"]
            .as_str()
            .is_some_and(|d| d.contains(victim)));
    }
    let (status, health) = get(&format!("{}/health", server.base));
    assert_eq!(status, 200);
    let down = &health["unavailable"][0];
    assert_eq!(down["id"], victim, "{health}");
    assert_eq!(down["retrying"], true);
    assert!(down["reason"].as_str().is_some_and(|r| !r.is_empty()));

    // Fixed on disk: served again after the next retry (first after 5 s), without a restart.
    std::fs::write(&file, &good).expect("restore");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while fetch(&format!("{}/collections/{victim}", server.base)).status() != 200 {
        assert!(std::time::Instant::now() < deadline, "never recovered");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let (_, health) = get(&format!("{}/health", server.base));
    assert_eq!(health["unavailable"], serde_json::json!([]));
    drop(server);

    // Too large for memory: unavailable with the reason, not retried, the rest served.
    let server = start(&args, &["--max-features", "600"]);
    let big = fetch(&format!("{}/collections/malmo-miljoparkering", server.base));
    assert_eq!(big.status(), 503);
    let doc: serde_json::Value = big.into_json().expect("json");
    assert!(doc["description"]
        .as_str()
        .is_some_and(|d| d.contains("--max-features")));
    assert_eq!(
        fetch(&format!("{}/collections/{victim}/items", server.base)).status(),
        200
    );
    let (_, health) = get(&format!("{}/health", server.base));
    assert!(health["unavailable"]
        .as_array()
        .expect("list")
        .iter()
        .any(|u| u["id"] == "malmo-miljoparkering" && u["retrying"] == false));
}

/// Operators' endpoints: /ready tells whether the catalog is loaded and how fresh it is;
/// /metrics counts requests by route pattern (not by path) and reports collections, memory,
/// snapshot builds and the tile cache in the Prometheus text format.
#[test]
fn ready_and_metrics_tell_the_truth() {
    let (s, _dir) = demo_server();
    let (status, ready) = get(&format!("{}/ready", s.base));
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["storeReachable"], true);
    assert!(ready["lastRefreshAgeSeconds"]
        .as_u64()
        .is_some_and(|a| a < 60));
    assert_eq!(ready["collections"], 9);

    for _ in 0..3 {
        fetch(&format!(
            "{}/collections/harryda-badplatser/items?limit=1",
            s.base
        ));
    }
    fetch(&format!("{}/collections/no-such-thing/items", s.base));
    let tile = format!(
        "{}/collections/harryda-badplatser/tiles/WebMercatorQuad/10/550/320",
        s.base
    );
    fetch(&tile);
    fetch(&tile);
    let resp = fetch(&format!("{}/metrics", s.base));
    assert_eq!(resp.status(), 200);
    assert!(resp.content_type().starts_with("text/plain"));
    let text = resp.into_string().expect("text");
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse::<f64>()))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .expect("number")
    };
    assert!(
        value(
            r#"hamn_http_requests_total{route="/collections/{id}/items",method="GET",status="200"}"#
        ) >= 3.0
    );
    assert_eq!(
        value(
            r#"hamn_http_requests_total{route="/collections/{id}/items",method="GET",status="404"}"#
        ),
        1.0
    );
    assert!(
        !text.contains("no-such-thing"),
        "paths must not become labels"
    );
    assert!(
        value(
            r#"hamn_http_request_duration_seconds_count{route="/collections/{id}/items",method="GET",status="200"}"#
        ) >= 3.0
    );
    assert_eq!(
        value(r#"hamn_collection_features{collection="harryda-badplatser"}"#),
        9.0
    );
    assert!(value(r#"hamn_collection_memory_bytes{collection="harryda-badplatser"}"#) > 0.0);
    assert!(value("hamn_snapshot_builds_total") >= 8.0);
    assert!(value("hamn_tile_cache_hits_total") >= 1.0);
    assert!(value("process_resident_memory_bytes") > 0.0);
    assert_eq!(value("hamn_collections_unavailable"), 0.0);
}

/// The access log: one event per request with fields, written off the request path; as JSON
/// lines with --log-format json, each parseable and carrying method, uri, status and timing.
#[test]
fn access_log_lines_are_json_with_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = hamn_cmd()
        .env("HAMN_LOG", "info")
        .args(["--data-dir", &dir.path().display().to_string()])
        .args([
            "--log-format",
            "json",
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--demo-data", &repo().join("data").display().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while ureq::get(&format!("{base}/health")).call().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "server did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = ureq::get(&format!(
        "{base}/collections/harryda-badplatser/items?limit=1"
    ))
    .set("x-request-id", "access-log-test")
    .call()
    .expect("items");
    assert_eq!(r.status(), 200);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access = lines
        .iter()
        .find(|l| l["id"] == "access-log-test")
        .unwrap_or_else(|| panic!("no access line in\n{log}"));
    assert_eq!(access["target"], "access");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["status"], 200);
    assert_eq!(
        access["uri"],
        "/collections/harryda-badplatser/items?limit=1"
    );
    assert!(access["ms"].as_f64().is_some());
    assert!(lines.iter().any(|l| l["message"] == "snapshot built"));
}

/// Demo data only when asked for: `hamn serve` on an empty store serves an empty catalog.
#[test]
fn an_empty_store_gets_no_demo_data_unless_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = hamn_cmd()
        .current_dir(repo())
        .args(["--data-dir", &dir.path().display().to_string()])
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ureq::get(&format!("{base}/health")).call().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "server did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, doc) = get(&format!("{base}/collections"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert_eq!(
        doc["collections"],
        serde_json::json!([]),
        "run from the repo root, data/ beside it"
    );
}

/// PostGIS: a collection whose data table was dropped by hand is unavailable (503, listed in
/// /health); the server starts and serves the rest. Dataset tiles name each collection once.
#[tokio::test]
async fn a_dropped_table_is_that_collections_failure_alone() {
    let Some(store) = postgis().await else {
        return;
    };
    for (file, id) in [
        ("bathing/harryda_badplatser.csv", "kept"),
        (
            "synthetic/traffic_counts_malmo_lund_synthetic.geojson",
            "dropped",
        ),
    ] {
        let mut o = hamn::ingest::IngestOptions::new(data(file));
        o.collection = Some(common::id(id));
        store.ingest(&o).await.expect("ingest");
    }
    let client = sql(&store).await;
    let table: String = client
        .query_one(
            "SELECT data_table FROM hamn.collections WHERE id = 'dropped'",
            &[],
        )
        .await
        .expect("catalog")
        .get(0);
    client
        .batch_execute(&format!("DROP TABLE hamn_data.\"{table}\""))
        .await
        .expect("drop");
    let server = start(&store.args(), &[]);
    assert_eq!(
        fetch(&format!("{}/collections/kept/items", server.base)).status(),
        200
    );
    assert_eq!(
        fetch(&format!("{}/collections/dropped/items", server.base)).status(),
        503
    );
    let (_, health) = get(&format!("{}/health", server.base));
    assert_eq!(health["unavailable"][0]["id"], "dropped", "{health}");

    let tile = |q: &str| {
        let resp = fetch(&format!(
            "{}/tiles/WebMercatorQuad/6/19/34?collections={q}",
            server.base
        ));
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("read");
        body
    };
    let once = tile("kept");
    assert!(!once.is_empty());
    assert_eq!(
        tile("kept,kept,kept"),
        once,
        "a repeated name draws its layer once"
    );
}

/// Cache rules per kind of resource: documents and unversioned tiles for `--cache-max-age`
/// and `--tile-max-age` (revalidated with the ETag when 0), tiles and assets addressed by
/// version immutable; Last-Modified from the version's commit; Vary on what is negotiated.
#[test]
fn cache_rules_per_resource_kind() {
    let header = |url: &str, name: &str| -> String {
        fetch(url)
            .header(name)
            .unwrap_or_else(|| panic!("{url}: no {name}"))
            .to_string()
    };
    let (s, _dir) = demo_server();
    let base = &s.base;
    let items = format!("{base}/collections/harryda-badplatser/items?limit=2");
    assert_eq!(header(&items, "cache-control"), "no-cache");
    let modified = header(&items, "last-modified");
    assert!(modified.ends_with(" GMT"), "{modified}");
    assert_eq!(
        header(&format!("{base}/collections"), "cache-control"),
        "no-cache"
    );

    // The TileJSON's tile URLs carry the version; such a tile is immutable, others are not.
    let (_, tj) = get(&format!(
        "{base}/collections/harryda-badplatser/tiles/WebMercatorQuad/tilejson.json"
    ));
    let template = tj["tiles"][0].as_str().expect("template").to_string();
    let version = template
        .split("v=")
        .nth(1)
        .expect("v= in the tile URL")
        .to_string();
    assert!(version.parse::<i64>().is_ok(), "{template}");
    let tile =
        |v: &str| format!("{base}/collections/harryda-badplatser/tiles/WebMercatorQuad/5/9/17{v}");
    assert_eq!(
        header(&tile(&format!("?v={version}")), "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&tile(""), "cache-control"), "no-cache");
    assert_eq!(header(&tile("?v=1"), "cache-control"), "no-cache");
    let (_, all) = get(&format!("{base}/tiles/WebMercatorQuad/tilejson.json"));
    let all_template = all["tiles"][0].as_str().expect("template");
    let all_v = all_template.split("v=").nth(1).expect("v=");
    assert_eq!(
        header(
            &format!("{base}/tiles/WebMercatorQuad/5/9/17?v={all_v}"),
            "cache-control"
        ),
        "public, max-age=31536000, immutable"
    );

    // Assets linked from pages with their version.
    let page = fetch(&format!("{base}/?f=html"))
        .into_string()
        .expect("html");
    let js = page
        .split("/assets/maplibre-gl/maplibre-gl.js?v=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("versioned MapLibre URL")
        .to_string();
    assert_eq!(
        header(
            &format!("{base}/assets/maplibre-gl/maplibre-gl.js?v={js}"),
            "cache-control"
        ),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        header(
            &format!("{base}/assets/maplibre-gl/maplibre-gl.js"),
            "cache-control"
        ),
        "public, max-age=86400"
    );
    // Negotiated documents vary on Accept (and, compressed, on Accept-Encoding).
    let r = ureq::get(&items)
        .set("Accept-Encoding", "gzip")
        .call()
        .expect("items");
    let vary: Vec<String> = r.all("vary").iter().map(|v| v.to_lowercase()).collect();
    assert!(
        vary.iter().any(|v| v.contains("accept-encoding")),
        "{vary:?}"
    );
    assert!(
        vary.iter()
            .any(|v| v.split(',').any(|p| p.trim() == "accept")),
        "{vary:?}"
    );
    drop(s);

    // Configured ages.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(
        &["--data-dir".to_string(), dir.path().display().to_string()],
        &["--cache-max-age", "30", "--tile-max-age", "600"],
    );
    let base = &s.base;
    assert_eq!(
        header(
            &format!("{base}/collections/harryda-badplatser/items"),
            "cache-control"
        ),
        "public, max-age=30"
    );
    assert_eq!(
        header(
            &format!("{base}/collections/harryda-badplatser/tiles/WebMercatorQuad/5/9/17"),
            "cache-control"
        ),
        "public, max-age=600"
    );
}
