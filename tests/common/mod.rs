//! Shared test support: stores to run against (the embedded store in a temporary directory,
//! and PostGIS in a fresh database per test), paths to demo data and fixtures, and the
//! `hamn` binary.
#![allow(dead_code)]

pub mod portal;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use hamn::catalog::CollectionId;
use hamn::ingest::{self, IngestOptions, IngestReport};
use hamn::store::embedded::EmbeddedStore;
use hamn::store::postgis::PostgisStore;
use hamn::store::{Store, StoredFeature};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn data(rel: &str) -> String {
    repo().join("data").join(rel).display().to_string()
}

pub fn fixture(rel: &str) -> String {
    repo()
        .join("tests/fixtures")
        .join(rel)
        .display()
        .to_string()
}

pub fn id(s: &str) -> CollectionId {
    s.parse().expect("valid id")
}

/// A store for one test, with what a `hamn` process needs to reach the same store.
pub struct TestStore {
    pub store: Box<dyn Store>,
    pub kind: &'static str,
    pub url: Option<String>,
    pub dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// Arguments that point a `hamn` process at this store.
    pub fn args(&self) -> Vec<String> {
        match (&self.url, &self.dir) {
            (Some(url), _) => vec!["--database-url".into(), url.clone()],
            (None, Some(dir)) => vec!["--data-dir".into(), dir.path().display().to_string()],
            (None, None) => unreachable!("a test store has a URL or a directory"),
        }
    }

    pub fn hamn(&self) -> Command {
        let mut cmd = hamn_cmd();
        cmd.args(self.args());
        cmd
    }

    pub async fn ingest(
        &self,
        opts: &IngestOptions,
    ) -> Result<Vec<IngestReport>, ingest::IngestError> {
        ingest::ingest(self.store.as_ref(), opts).await
    }

    /// The catalog entry of a collection that must exist.
    pub async fn entry(&self, id: &str) -> hamn::catalog::CatalogEntry {
        self.store
            .get(&self::id(id))
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("no collection {id}"))
    }

    pub async fn features(&self, id: &str) -> Vec<StoredFeature> {
        self.store.features(&self::id(id)).await.expect("features")
    }
}

/// The `hamn` binary built for these tests, with no configuration leaking in from outside.
pub fn hamn_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hamn"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("HAMN_DATA_DIR")
        .env_remove("HAMN_CONFIG")
        .env_remove("HAMN_COLLATION")
        .env("HAMN_LOG", "warn");
    cmd
}

pub fn embedded() -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    TestStore {
        store: Box::new(EmbeddedStore::open(dir.path()).expect("embedded store")),
        kind: "embedded",
        url: None,
        dir: Some(dir),
    }
}

/// The server URL from scripts/with-postgis.sh. Tests need a real PostGIS: without one they
/// fail, unless HAMN_SKIP_POSTGIS=1 says to run the embedded half only.
pub fn postgis_url() -> Option<String> {
    match std::env::var("HAMN_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("HAMN_SKIP_POSTGIS").as_deref() == Ok("1") => None,
        _ => panic!(
            "HAMN_TEST_DATABASE_URL is not set: run the tests with `bash scripts/test.sh` \
             (or set HAMN_SKIP_POSTGIS=1 to skip the PostGIS half)"
        ),
    }
}

/// A fresh database (with PostGIS, migrated) for one test, so tests can run in parallel.
pub async fn postgis() -> Option<TestStore> {
    let base = postgis_url()?;
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "hamn_t_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let url = match base.rsplit_once('/') {
        Some((server, _db)) => format!("{server}/{name}"),
        None => panic!("unexpected test database URL {base}"),
    };
    let store = PostgisStore::connect(&url)
        .await
        .expect("connect and migrate");
    Some(TestStore {
        store: Box::new(store),
        kind: "postgis",
        url: Some(url),
        dir: None,
    })
}

/// Both stores: every behaviour is tested on each.
pub async fn each_store() -> Vec<TestStore> {
    let mut stores = vec![embedded()];
    stores.extend(postgis().await);
    stores
}

/// Runs SQL against a PostGIS test store.
pub async fn sql(store: &TestStore) -> tokio_postgres::Client {
    let url = store.url.as_ref().expect("a PostGIS store");
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

/// How many data tables a PostGIS test store holds (one per collection when nothing leaked).
pub async fn data_tables(store: &TestStore) -> i64 {
    sql(store)
        .await
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'hamn_data'",
            &[],
        )
        .await
        .expect("count data tables")
        .get(0)
}

/// `hamn serve` on a fresh embedded store with the demo data, refreshing every second.
pub fn demo_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        &["--data-dir".to_string(), dir.path().display().to_string()],
        &["--refresh-seconds", "1"],
    );
    (server, dir)
}

/// Coordinates of a WKB geometry's vertices (points and line strings; polygons' rings flattened).
pub fn vertices(wkb: &[u8]) -> Vec<(f64, f64)> {
    let g = gdal::vector::Geometry::from_wkb(wkb).expect("WKB");
    let mut out = Vec::new();
    collect(&g, &mut out);
    out
}

fn collect(g: &gdal::vector::Geometry, out: &mut Vec<(f64, f64)>) {
    if g.geometry_count() > 0 {
        for i in 0..g.geometry_count() {
            collect(&g.get_geometry(i), out);
        }
    } else {
        let mut pts = Vec::new();
        g.get_points(&mut pts);
        out.extend(pts.into_iter().map(|(x, y, _)| (x, y)));
    }
}

/// Distance in metres between two lon/lat points (flat approximation, fine below a kilometre).
pub fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
    let lat = a.1.to_radians();
    let dx = (a.0 - b.0) * 111_320.0 * lat.cos();
    let dy = (a.1 - b.1) * 110_574.0;
    (dx * dx + dy * dy).sqrt()
}

/// The value of a named attribute of a stored feature, as JSON.
pub fn attr(
    store_attrs: &[hamn::catalog::Attribute],
    f: &StoredFeature,
    name: &str,
) -> serde_json::Value {
    let i = store_attrs
        .iter()
        .position(|a| a.name == name)
        .unwrap_or_else(|| panic!("no attribute {name}"));
    f.values[i].to_json()
}

/// A running `hamn serve`, killed when dropped.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
    /// The bulk downloads of a server on PostGIS (an embedded store keeps them in its own
    /// directory): removed with the test, which kills the process before it could.
    pub downloads: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts `hamn serve` on the store the arguments name, with the demo data directory, and waits
/// until it answers.
pub fn start(store_args: &[String], extra: &[&str]) -> Server {
    let port = free_port();
    let downloads = (store_args.iter().any(|a| a == "--database-url")
        && !extra.contains(&"--download-dir"))
    .then(|| tempfile::tempdir().expect("tempdir"));
    let download_args: Vec<String> = downloads
        .iter()
        .flat_map(|d| ["--download-dir".to_string(), d.path().display().to_string()])
        .collect();
    let child = hamn_cmd()
        .args(store_args)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--demo-data",
            &repo().join("data").display().to_string(),
        ])
        .args(extra)
        .args(&download_args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn hamn serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        downloads,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while ureq::get(&format!("{}/health", server.base))
        .call()
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "server did not come up"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server
}

/// GET returning the status and the response (4xx/5xx included).
pub fn fetch(url: &str) -> ureq::Response {
    match ureq::get(url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    }
}

/// GET a JSON document: status and body.
pub fn get(url: &str) -> (u16, serde_json::Value) {
    let resp = fetch(url);
    let status = resp.status();
    assert!(
        resp.content_type().contains("json"),
        "{url}: {}",
        resp.content_type()
    );
    (status, resp.into_json().expect("JSON body"))
}

/// A token made with `hamn tokens create` on the store the arguments name, with the scope
/// flags given (`--admin`, `--collections a,b`, `--read-key …`): the token's text.
pub fn make_token(store_args: &[String], scope: &[&str]) -> String {
    let out = hamn_cmd()
        .args(store_args)
        .args(["tokens", "create", "--name", "tests"])
        .args(scope)
        .output()
        .expect("hamn tokens create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_string();
    assert!(token.starts_with("hamn_"), "token {token:?}");
    token
}

/// A token with the admin scope on the embedded store in `dir`.
pub fn admin_token(dir: &std::path::Path) -> String {
    make_token(
        &["--data-dir".to_string(), dir.display().to_string()],
        &["--admin"],
    )
}

/// `hamn serve` on a fresh, empty embedded store (no demo data), with an admin token for it.
pub fn admin_server(extra: &[&str]) -> (Server, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = admin_token(dir.path());
    let mut args = vec!["--no-demo"];
    args.extend_from_slice(extra);
    let server = start(
        &["--data-dir".to_string(), dir.path().display().to_string()],
        &args,
    );
    (server, dir, token)
}

/// The read API in-process (for `actix_web::test`), over an embedded store in a temporary
/// directory holding one collection `name` ingested from the GeoJSON `features`.
pub async fn in_process_state(
    name: &str,
    features: serde_json::Value,
) -> (actix_web::web::Data<hamn::api::AppState>, tempfile::TempDir) {
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(format!("{name}.geojson"));
    std::fs::write(&file, features.to_string()).expect("write");
    let data = dir.path().join("store");
    let o = hamn_cmd()
        .args(["--data-dir", &data.display().to_string(), "ingest"])
        .arg(&file)
        .output()
        .expect("ingest");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&data).expect("embedded store"));
    let engine = hamn::engine::Engine::start(
        store,
        Default::default(),
        hamn::collation::Collation::default(),
    )
    .await
    .expect("engine");
    let state = actix_web::web::Data::new(hamn::api::AppState {
        engine,
        limits: hamn::api::Limits::default(),
        tiles: hamn::tiles::TileCache::new(1 << 20),
        tile_options: Default::default(),
        origin: Default::default(),
        metrics: Default::default(),
        heavy: Arc::new(hamn::api::heavy::HeavyPool::new(Default::default())),
        ready_max_age: None,
        admin: None,
        read_keys: None,
        dcat: Default::default(),
        basemap_style: None,
        cache: Default::default(),
        downloads: Arc::new(hamn::download::Downloads::new(None).expect("a download directory")),
    });
    (state, dir)
}
