//! hamn through PgBouncer in session pooling (the mode README recommends): the PgBouncer that
//! `scripts/with-postgis.sh` runs in front of the test cluster when HAMN_TEST_PGBOUNCER=1
//! (scripts/test.sh sets it). Debian 12's PgBouncer 1.18 refuses the startup parameter
//! `options` in every pooling mode, so the PostGIS engine's read pool sets its statement
//! timeout and read-only mode on each new connection instead; the prepared statements and
//! `LISTEN` need a session of their own, which session pooling gives.
//!
//! An ingest, the catalog, `LISTEN` and the PostGIS engine's reads all go through PgBouncer;
//! the answers are those of an instance connected directly, and a new version arrives by
//! notification (polling is hourly here).

mod common;

use std::time::{Duration, Instant};

use common::{fetch, postgis, start, Server};

fn write_points(dir: &std::path::Path, n: usize) -> String {
    let features: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"type": "Feature", "properties": {"nr": i, "namn": format!("Plats {i}")},
                "geometry": {"type": "Point", "coordinates": [13.0 + i as f64 * 0.001, 55.6 + i as f64 * 0.0005]}})
        })
        .collect();
    let file = dir.join(format!("platser-{n}.geojson"));
    std::fs::write(
        &file,
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .expect("write");
    file.display().to_string()
}

fn body(s: &Server, path: &str) -> (u16, String) {
    let resp = fetch(&format!("{}{path}", s.base));
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    // Without the time stamp and the server's own address.
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    (status, doc["features"].to_string())
}

#[test]
fn hamn_works_through_pgbouncer_in_session_pooling() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(store) = rt.block_on(postgis()) else {
        eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
        return;
    };
    let Ok(bouncer) = std::env::var("HAMN_TEST_PGBOUNCER_URL") else {
        eprintln!(
            "skipped: no PgBouncer; run with HAMN_TEST_PGBOUNCER=1 (bash scripts/test.sh sets it)"
        );
        return;
    };
    let direct = store.url.clone().expect("a PostGIS store");
    let db = direct.rsplit('/').next().unwrap_or_default();
    let via = format!(
        "{}/{db}",
        bouncer.rsplit_once('/').map_or("", |(server, _)| server)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let ingest = |url: &str, n: usize, mode: &str| {
        let o = common::hamn_cmd()
            .args([
                "--database-url",
                url,
                "ingest",
                &write_points(dir.path(), n),
            ])
            .args(["-c", "platser", "--id-field", "nr", "--mode", mode])
            .output()
            .expect("ingest");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ingest(&via, 300, "create");

    let through = start(
        &["--database-url".to_string(), via.clone()],
        &[
            "--no-demo",
            "--max-features",
            "0",
            "--refresh-seconds",
            "3600",
        ],
    );
    let memory = start(&store.args(), &["--no-demo"]);
    let paths = [
        "/collections/platser/items?limit=20",
        "/collections/platser/items?limit=20&bbox=13.05,55.6,13.2,55.7",
        "/collections/platser/items?limit=20&sortby=-namn",
        "/collections/platser/items?limit=20&filter=nr%20%3E%20250%20AND%20namn%20LIKE%20%27Plats%202%25%27",
        "/collections/platser/items/42",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    while body(&through, paths[0]).0 != 200 {
        assert!(Instant::now() < deadline, "not served through PgBouncer");
        std::thread::sleep(Duration::from_millis(100));
    }
    // More requests than the read pool has connections, so every connection is used.
    for round in 0..10 {
        for path in paths {
            let a = body(&through, path);
            assert_eq!(a.0, 200, "round {round}: {path}: {}", a.1);
            assert_eq!(a, body(&memory, path), "round {round}: {path}");
        }
    }
    // The tile holding 13.1, 55.65, where some of the points are.
    let tile = |s: &Server| {
        let resp = fetch(&format!(
            "{}/collections/platser/tiles/WebMercatorQuad/12/1282/2197",
            s.base
        ));
        let status = resp.status();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).expect("tile");
        (status, bytes)
    };
    let t = tile(&through);
    assert_eq!(t.0, 200, "tile through PgBouncer");
    assert_eq!(
        t,
        tile(&memory),
        "the tile differs from the memory engine's"
    );

    // A new version, ingested through PgBouncer too, arrives by notification.
    ingest(&via, 310, "replace");
    let count = |s: &Server| {
        let resp = fetch(&format!("{}/collections/platser/items?limit=1", s.base));
        let doc: serde_json::Value = resp.into_json().unwrap_or_default();
        doc["numberMatched"].as_i64()
    };
    let started = Instant::now();
    while count(&through) != Some(310) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the new version did not arrive through PgBouncer's LISTEN"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "new version served through PgBouncer after {:?}",
        started.elapsed()
    );
}
