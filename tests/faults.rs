//! Faults a running server must live through. PostgreSQL stopped under a serving hamn, then
//! started again (through scripts/with-postgis.sh's HAMN_TEST_PG_CTL): hamn keeps serving what
//! it holds, says so in /ready, reconnects, and catches up with an ingest made meanwhile. This
//! binary stops the cluster every test binary shares; cargo runs test binaries one at a time,
//! and it holds this one test only. (A killed ingest: tests/cli.rs; a corrupt collection file:
//! tests/serve.rs.)

mod common;

use common::*;

fn pg_ctl(action: &str) {
    let ctl = std::env::var("HAMN_TEST_PG_CTL")
        .expect("HAMN_TEST_PG_CTL is not set: run the tests with `bash scripts/test.sh`");
    let out = std::process::Command::new("bash")
        .args([&ctl, action])
        .output()
        .expect("pg_ctl");
    assert!(
        out.status.success(),
        "{action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[tokio::test]
async fn postgres_stopped_and_started_under_a_serving_hamn() {
    let Some(store) = postgis().await else {
        return;
    };
    let mut o = hamn::ingest::IngestOptions::new(data("bathing/harryda_badplatser.csv"));
    o.collection = Some(id("before"));
    store.ingest(&o).await.expect("ingest");
    let server = start(&store.args(), &["--refresh-seconds", "1"]);
    let items = format!("{}/collections/before/items", server.base);
    assert_eq!(get(&items).0, 200);

    pg_ctl("stop");
    // Served from memory while the store is away; /ready tells the truth about it.
    wait_for("a refresh noticing the store is gone", 20, || {
        get(&format!("{}/ready", server.base)).1["storeReachable"] == false
    });
    let (status, page) = get(&items);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["numberMatched"], 9);
    let (status, ready) = get(&format!("{}/ready", server.base));
    assert_eq!(status, 200, "stale data is still served: {ready}");
    assert!(ready["lastError"].as_str().is_some());
    assert_eq!(get(&format!("{}/health", server.base)).0, 200);

    pg_ctl("start");
    // An ingest made through another connection once the database is back...
    let url = store.url.clone().expect("a PostGIS store");
    let writer = hamn::store::postgis::PostgisStore::connect(&url)
        .await
        .expect("reconnect");
    let mut o = hamn::ingest::IngestOptions::new(data(
        "synthetic/traffic_counts_malmo_lund_synthetic.geojson",
    ));
    o.collection = Some(id("after"));
    hamn::ingest::ingest(&writer, &o)
        .await
        .expect("ingest after");
    // ...is served by the hamn that lived through the outage, without a restart.
    wait_for("hamn catching up", 30, || {
        get(&format!("{}/collections/after/items?limit=1", server.base)).0 == 200
    });
    let (_, ready) = get(&format!("{}/ready", server.base));
    assert_eq!(ready["storeReachable"], true, "{ready}");
    assert_eq!(get(&items).1["numberMatched"], 9);
}
