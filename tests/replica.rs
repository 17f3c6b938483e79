//! Reads from a real PostgreSQL streaming replica (`--database-replica-url`): the second
//! cluster that `scripts/with-postgis.sh` makes with `pg_basebackup` when
//! HAMN_TEST_PG_REPLICA=1 (scripts/test.sh sets it). Two instances on one store, one reading
//! the primary only and one reading the replica, serve the same answers; the replica does the
//! second one's reads; and while the replica's replay is paused, a new version is served at
//! once anyway (from the primary, never the replica's stale or missing table), then again from
//! the replica once it has caught up.

mod common;

use std::time::{Duration, Instant};

use common::{fetch, postgis, start, Server};

/// The replica's URL for the test database `db` (the script's names the database `hamn_test`).
fn replica_url(db_url: &str) -> Option<String> {
    let base = std::env::var("HAMN_TEST_REPLICA_URL").ok()?;
    let (server, _) = base.rsplit_once('/')?;
    let (_, db) = db_url.rsplit_once('/')?;
    Some(format!("{server}/{db}"))
}

async fn connect(url: &str) -> Option<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(client)
}

/// A collection of `n` points whose attribute `v` is `version`.
fn write_points(dir: &std::path::Path, n: usize, version: i64) -> String {
    let features: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"type": "Feature", "properties": {"nr": i, "v": version},
                "geometry": {"type": "Point", "coordinates": [13.0 + i as f64 * 0.001, 55.6]}})
        })
        .collect();
    let file = dir.join(format!("platser-{version}.geojson"));
    std::fs::write(
        &file,
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .expect("write");
    file.display().to_string()
}

/// The first page of the collection as text, and its `numberMatched`.
fn page(s: &Server) -> (u16, String, i64) {
    let resp = fetch(&format!(
        "{}/collections/platser/items?limit=100&sortby=nr",
        s.base
    ));
    let status = resp.status();
    let body = resp.into_string().unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    // The page without its time stamp and the server's own address.
    let features = doc["features"].to_string();
    (
        status,
        features,
        doc["numberMatched"].as_i64().unwrap_or(-1),
    )
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

#[test]
fn a_replica_takes_the_reads_and_never_serves_a_version_it_lacks() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(store) = rt.block_on(postgis()) else {
        eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
        return;
    };
    let primary_url = store.url.clone().expect("a PostGIS store");
    let Some(replica) = replica_url(&primary_url) else {
        eprintln!(
            "skipped: no replica; run with HAMN_TEST_PG_REPLICA=1 (bash scripts/test.sh sets it)"
        );
        return;
    };
    let db = primary_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    // The replica replays the CREATE DATABASE of the test's database.
    wait_for("the test database on the replica", || {
        rt.block_on(connect(&replica)).is_some()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let ingest = |n: usize, version: i64| {
        let o = store
            .hamn()
            .args(["ingest", &write_points(dir.path(), n, version)])
            .args(["-c", "platser", "--id-field", "nr"])
            .args(if version > 1 {
                &["--mode", "replace"][..]
            } else {
                &[]
            })
            .output()
            .expect("ingest");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ingest(50, 1);

    let args = store.args();
    let on_primary = start(&args, &["--no-demo", "--max-features", "0"]);
    let on_replica = start(
        &args,
        &[
            "--no-demo",
            "--max-features",
            "0",
            "--database-replica-url",
            &replica,
        ],
    );
    for s in [&on_primary, &on_replica] {
        wait_for("version 1", || page(s).2 == 50);
    }
    assert_eq!(page(&on_primary), page(&on_replica));

    // The second instance's reads went to the replica, under the read pool's name.
    let replica_client = rt.block_on(connect(&replica)).expect("replica");
    let reading: i64 = rt
        .block_on(replica_client.query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hamn-read' AND datname = $1",
            &[&db],
        ))
        .expect("pg_stat_activity")
        .get(0);
    assert!(reading > 0, "no read connection of hamn on the replica");

    // The replica stops replaying: a new version's table does not reach it.
    rt.block_on(replica_client.execute("SELECT pg_wal_replay_pause()", &[]))
        .expect("pause replay");
    ingest(60, 2);
    let primary_client = rt.block_on(connect(&primary_url)).expect("primary");
    let table: String = rt
        .block_on(primary_client.query_one(
            "SELECT data_table FROM hamn.collections WHERE id = 'platser'",
            &[],
        ))
        .expect("catalog")
        .get(0);
    let on_replica_yet = |client: &tokio_postgres::Client| -> bool {
        rt.block_on(client.query_one(
            "SELECT to_regclass(format('hamn_data.%I', $1::text)) IS NOT NULL",
            &[&table],
        ))
        .expect("to_regclass")
        .get(0)
    };
    wait_for("version 2 on the primary's instance", || {
        page(&on_primary).2 == 60
    });
    // Served by the replica's instance at once all the same, from the primary: the replica
    // still lacks the table.
    let took = wait_for("version 2 on the replica's instance", || {
        page(&on_replica).2 == 60
    });
    assert!(
        !on_replica_yet(&replica_client),
        "the replica has replayed the new version although paused"
    );
    assert_eq!(page(&on_primary), page(&on_replica));
    eprintln!("version 2 served {took:?} after the primary's instance, replay paused");

    // Replay resumes: the replica catches up and takes the reads again.
    rt.block_on(replica_client.execute("SELECT pg_wal_replay_resume()", &[]))
        .expect("resume replay");
    let caught_up = wait_for("the replica to replay version 2", || {
        on_replica_yet(&replica_client)
    });
    eprintln!("the replica replayed version 2 {caught_up:?} after resuming");
    let since: std::time::SystemTime = rt
        .block_on(replica_client.query_one("SELECT now()", &[]))
        .expect("now")
        .get(0);
    for _ in 0..5 {
        assert_eq!(page(&on_primary), page(&on_replica));
    }
    // pg_stat_activity shows when each of the replica's sessions last changed state.
    let active: i64 = rt
        .block_on(replica_client.query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hamn-read' \
             AND datname = $1 AND state_change > $2",
            &[&db, &since],
        ))
        .expect("pg_stat_activity")
        .get(0);
    assert!(
        active > 0,
        "the replica answered none of the reads after catching up"
    );
}
