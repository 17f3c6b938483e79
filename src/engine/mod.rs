//! The serving engine: an immutable in-memory snapshot per collection (see `snapshot`), built
//! from the store at start-up and rebuilt when a collection's version changes, then swapped in
//! atomically. A request holds an `Arc` to one snapshot, so it sees one version, whole.
//!
//! Versions are noticed by polling the store's catalog and at once when the store tells of a
//! commit (`Store::watch`: PostGIS's LISTEN/NOTIFY), so several server instances stay in step.
//! The engine itself speaks no PostgreSQL.

pub mod filter;
pub mod postgis;
pub mod snapshot;
pub mod source;
mod trim;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::catalog::CollectionId;
use crate::collation::Collation;
use crate::store::{Store, StoreError};
pub use filter::Filter;
pub use snapshot::{Query, Snapshot, SortKey, Start};
pub use source::{EngineError, EngineKind, Features, MemorySource, Page, Source, Summary};

/// A served collection version, whichever engine serves it.
pub type Served = Arc<dyn Source>;

type Snapshots = HashMap<CollectionId, Served>;

/// Why a collection was not built this time.
enum Build {
    /// It changed or went away while read: the next refresh sees the new state.
    Moved,
    Failed {
        reason: String,
        retry: bool,
    },
}

/// How the engine holds collections; `Default` is what `hamn serve` uses without flags.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Largest collection (in features) held in memory; a larger one is served by the PostGIS
    /// engine from its table, or (on the embedded store, which has no SQL) not at all.
    pub max_features: u64,
    /// Heap bytes the in-memory snapshots may take together (`--memory-budget`): collections
    /// are taken into memory smallest first while their estimate fits, the rest are served
    /// by the PostGIS engine. `None`: `max_features` alone decides.
    pub memory_budget: Option<u64>,
    pub postgis: postgis::PostgisOptions,
    /// Streaming replicas the PostGIS engine reads from (the primary when there are none).
    pub replica_urls: Vec<String>,
    /// How long the version before a swap stays held for cursors walking it.
    pub cursor_grace: Duration,
    /// Longest a refresh waits for the catalog, and for one collection's rows: a store that
    /// stops answering cannot hold the refresh (and its lock) for ever.
    pub list_timeout: Duration,
    pub read_timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_features: 5_000_000,
            memory_budget: None,
            postgis: postgis::PostgisOptions::default(),
            replica_urls: Vec::new(),
            cursor_grace: Duration::from_secs(900),
            list_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(600),
        }
    }
}

/// A version replaced by a newer one, held for cursors until `since + cursor_grace`.
#[derive(Clone)]
struct Retired {
    snapshot: Served,
    since: std::time::Instant,
}

/// What the last refresh found, for `/ready` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct RefreshStatus {
    /// When the catalog was last read successfully.
    pub last_ok: Option<std::time::SystemTime>,
    /// The error of the latest refresh, if it failed.
    pub last_error: Option<String>,
    pub failures_total: u64,
    /// Snapshots built since start, and the time spent building them.
    pub builds_total: u64,
    pub build_seconds_total: f64,
}

pub struct Engine {
    store: Arc<dyn Store>,
    /// Connections of the PostGIS engine (on a PostGIS store only).
    readers: Option<postgis::Readers>,
    options: EngineOptions,
    current: ArcSwap<Snapshots>,
    /// The version each collection had before its latest swap, kept for `cursor_grace` so
    /// that paging cursors issued against it stay valid while clients finish walking it.
    previous: ArcSwap<HashMap<CollectionId, Retired>>,
    /// Snapshots no longer served, dropped by the refresh task once no request holds them:
    /// freeing a large snapshot takes a while and must not fall to a request's thread.
    graveyard: std::sync::Mutex<Vec<Served>>,
    status: std::sync::Mutex<RefreshStatus>,
    /// Collections in the catalog that are not served as their catalog says, and why.
    failures: std::sync::Mutex<HashMap<CollectionId, Failure>>,
    /// The order of text in every snapshot built (`--collation`).
    collation: Collation,
    refresh_lock: tokio::sync::Mutex<()>,
}

/// A lock whose holder panicked still guards plain data: use it.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a collection's current version is not served, and when to try again. A collection that
/// fails keeps its last good snapshot if it had one (served, but stale); without one, requests
/// for it are answered 503 with the reason.
#[derive(Debug, Clone)]
pub struct Failure {
    pub version: i64,
    pub reason: String,
    /// Whether trying again can help: a read error can pass; a size limit cannot until the
    /// version changes.
    pub retry: bool,
    pub attempts: u32,
    pub since: std::time::SystemTime,
    next_try: std::time::Instant,
}

/// A snapshot takes about this many times its table's bytes in PostgreSQL (`pg_table_size`:
/// pre-encoded JSON, the geometry, the R-tree and sort orders against rows). Measured with
/// `hamn_collection_memory_bytes` on the demo data and 1M generated points: 2.7 for the points
/// and for all together, from 0.7 (9 rows) to 6.5 (OSM polygons with many tags) per
/// collection; see BENCHMARKS.md. An estimate to decide before reading, not a limit: polygon
/// collections with many attributes can take twice as much.
const MEMORY_PER_TABLE_BYTE: u64 = 3;

/// The first retry after this, doubling to `MAX_BACKOFF`: a broken collection costs one log
/// line per attempt, not one per refresh.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the engine knows of a collection id.
pub enum Lookup {
    Served(Served),
    /// In the catalog, but not served: the reason.
    Unavailable(String),
    Missing,
}

impl Engine {
    pub async fn start(
        store: Arc<dyn Store>,
        options: EngineOptions,
        collation: Collation,
    ) -> Result<Arc<Self>, StoreError> {
        let readers = match store.postgis() {
            Some(pg) => {
                let (timeout, size) =
                    (options.postgis.statement_timeout, options.postgis.pool_size);
                let replicas = options
                    .replica_urls
                    .iter()
                    .map(|url| pg.read_pool(Some(url), timeout, size))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(postgis::Readers::new(
                    pg.read_pool(None, timeout, size)?,
                    replicas,
                ))
            }
            None => None,
        };
        let engine = Arc::new(Self {
            store,
            readers,
            options,
            current: ArcSwap::from_pointee(HashMap::new()),
            previous: ArcSwap::from_pointee(HashMap::new()),
            graveyard: std::sync::Mutex::new(Vec::new()),
            status: std::sync::Mutex::new(RefreshStatus::default()),
            failures: std::sync::Mutex::new(HashMap::new()),
            collation,
            refresh_lock: tokio::sync::Mutex::new(()),
        });
        engine.refresh().await?;
        Ok(engine)
    }

    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub fn status(&self) -> RefreshStatus {
        lock(&self.status).clone()
    }

    /// Versions held for cursors besides the current ones (for operators and tests).
    pub fn previous_versions(&self) -> Vec<(CollectionId, i64)> {
        let mut v: Vec<_> = self
            .previous
            .load()
            .iter()
            .map(|(id, r)| (id.clone(), r.snapshot.version()))
            .collect();
        v.sort();
        v
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn get(&self, id: &CollectionId) -> Option<Served> {
        self.current.load().get(id).cloned()
    }

    /// A collection for a request: served, or known but unavailable (with why), or unknown.
    pub fn lookup(&self, id: &CollectionId) -> Lookup {
        if let Some(s) = self.get(id) {
            return Lookup::Served(s);
        }
        match self.failures().get(id) {
            Some(f) => Lookup::Unavailable(f.reason.clone()),
            None => Lookup::Missing,
        }
    }

    /// Collections that are not served at their catalog version, for operators.
    pub fn failures(&self) -> HashMap<CollectionId, Failure> {
        lock(&self.failures).clone()
    }

    /// The snapshot of a given version, if it is the current or the one before.
    pub fn get_version(&self, id: &CollectionId, version: i64) -> Option<Served> {
        [
            self.current.load().get(id).cloned(),
            self.previous.load().get(id).map(|r| r.snapshot.clone()),
        ]
        .into_iter()
        .flatten()
        .find(|s| s.version() == version)
    }

    /// Every served collection, by id.
    pub fn list(&self) -> Vec<Served> {
        let mut all: Vec<Served> = self.current.load().values().cloned().collect();
        all.sort_by(|a, b| a.entry().id.cmp(&b.entry().id));
        all
    }

    /// Brings the snapshots in line with the store: builds new and changed collections, drops
    /// deleted ones, and swaps the set in at once. Returns how many collections changed. Only
    /// a failure to list the catalog is an error; a collection that cannot be read or is too
    /// large is that collection's failure alone (see [`Failure`]).
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let _guard = self.refresh_lock.lock().await;
        let result = self.refresh_locked().await;
        let mut status = lock(&self.status);
        match &result {
            Ok(_) => {
                status.last_ok = Some(std::time::SystemTime::now());
                status.last_error = None;
            }
            Err(e) => {
                status.last_error = Some(e.to_string());
                status.failures_total += 1;
            }
        }
        result
    }

    async fn refresh_locked(&self) -> Result<usize, StoreError> {
        let entries = tokio::time::timeout(self.options.list_timeout, self.store.list())
            .await
            .map_err(|_| {
                StoreError::Task(format!(
                    "the store did not list its catalog within {} s",
                    self.options.list_timeout.as_secs()
                ))
            })??;
        let old = self.current.load_full();
        // Smallest first, so that under a memory budget many small collections stay in memory
        // and the largest go to PostGIS.
        let mut entries = entries;
        entries.sort_by_key(|e| e.feature_count);
        let mut in_memory: u64 = entries
            .iter()
            .filter_map(|e| old.get(&e.id).filter(|s| s.version() == e.version))
            .map(|s| s.summary().memory_bytes as u64)
            .sum();
        let mut failures = self.failures();
        let mut next: Snapshots = HashMap::with_capacity(entries.len());
        let mut previous: HashMap<CollectionId, Retired> = (**self.previous.load()).clone();
        let mut retire: Vec<Served> = Vec::new();
        let mut changed = 0;
        let now = std::time::Instant::now();
        let listed_ids: std::collections::HashSet<CollectionId> =
            entries.iter().map(|e| e.id.clone()).collect();
        for listed in entries {
            let id = listed.id.clone();
            let held = old.get(&id);
            if let Some(s) = held.filter(|s| s.version() == listed.version) {
                next.insert(id.clone(), s.clone());
                failures.remove(&id);
                continue;
            }
            // A failure of this same version waits for its back-off (or for ever, if retrying
            // cannot help); the last good snapshot, if any, is served meanwhile.
            if let Some(f) = failures.get(&id).filter(|f| f.version == listed.version) {
                if !f.retry || now < f.next_try {
                    if let Some(s) = held {
                        next.insert(id, s.clone());
                    }
                    continue;
                }
            }
            let started = std::time::Instant::now();
            let budget_left = self
                .options
                .memory_budget
                .map(|b| b.saturating_sub(in_memory));
            match self.build(&listed, budget_left).await {
                Ok(snapshot) => {
                    in_memory += snapshot.summary().memory_bytes as u64;
                    {
                        let mut status = lock(&self.status);
                        status.builds_total += 1;
                        status.build_seconds_total += started.elapsed().as_secs_f64();
                    }
                    failures.remove(&id);
                    // A PostGIS-served version is not held for cursors: its table is gone
                    // once replaced, so its cursors get a 410 at once.
                    if let Some(prev) = held.filter(|p| p.engine() == EngineKind::Memory) {
                        let displaced = previous.insert(
                            id.clone(),
                            Retired {
                                snapshot: prev.clone(),
                                since: now,
                            },
                        );
                        retire.extend(displaced.map(|r| r.snapshot));
                    }
                    retire.extend(held.filter(|p| p.engine() != EngineKind::Memory).cloned());
                    next.insert(id, snapshot);
                    changed += 1;
                }
                // Replaced or deleted while read: the next refresh reads the new state.
                Err(Build::Moved) => {
                    if let Some(s) = held {
                        next.insert(id, s.clone());
                    }
                }
                Err(Build::Failed { reason, retry }) => {
                    let attempts = failures
                        .get(&id)
                        .filter(|f| f.version == listed.version)
                        .map_or(1, |f| f.attempts + 1);
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(1 << (attempts - 1).min(16))
                        .min(MAX_BACKOFF);
                    tracing::error!(
                        collection = %id,
                        version = listed.version,
                        attempt = attempts,
                        retry_in_s = if retry { backoff.as_secs() } else { 0 },
                        serving = held.map(|s| s.version()),
                        "{reason}"
                    );
                    failures.insert(
                        id.clone(),
                        Failure {
                            version: listed.version,
                            reason,
                            retry,
                            attempts,
                            since: std::time::SystemTime::now(),
                            next_try: now + backoff,
                        },
                    );
                    if let Some(s) = held {
                        next.insert(id, s.clone());
                    }
                }
            }
        }
        for (id, s) in old.iter() {
            if !next.contains_key(id) {
                changed += 1;
                retire.push(s.clone());
            }
        }
        failures.retain(|k, _| listed_ids.contains(k));
        // Past the grace period (or deleted), a replaced version is dropped: a cursor of it
        // then gets a 410 rather than holding a second copy of the data for ever.
        let grace = self.options.cursor_grace;
        let expired: Vec<CollectionId> = previous
            .iter()
            .filter(|(k, r)| !next.contains_key(*k) || now.duration_since(r.since) >= grace)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            retire.extend(previous.remove(&k).map(|r| r.snapshot));
        }
        self.previous.store(Arc::new(previous));
        self.current.store(Arc::new(next));
        *lock(&self.failures) = failures;
        self.bury(retire, changed > 0).await;
        Ok(changed)
    }

    /// Drops retired snapshots that no request holds any more, on a blocking thread, and
    /// gives the memory back (also after builds, whose read buffers are freed by then); ones
    /// still in use wait for a later refresh.
    async fn bury(&self, retired: Vec<Served>, built: bool) {
        let dead: Vec<Served> = {
            let mut graveyard = lock(&self.graveyard);
            graveyard.extend(retired);
            let (dead, alive) = std::mem::take(&mut *graveyard)
                .into_iter()
                .partition(|s| Arc::strong_count(s) == 1);
            *graveyard = alive;
            dead
        };
        if dead.is_empty() && !built {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || {
            drop(dead);
            trim::release_free_memory();
        })
        .await;
    }

    /// Reads one collection version from the store and builds its snapshot, or opens it in
    /// PostGIS when it is too large for memory or would not fit in `budget_left` bytes.
    async fn build(
        &self,
        listed: &crate::catalog::CatalogEntry,
        budget_left: Option<u64>,
    ) -> Result<Served, Build> {
        use crate::catalog::EngineChoice;
        // The operator's choice first (`hamn ingest --engine`), else the size decides.
        let max = match listed.engine {
            Some(EngineChoice::Memory) => u64::MAX,
            Some(EngineChoice::Postgis) => 0,
            None => self.options.max_features,
        };
        if let Some(readers) = &self.readers {
            if listed.feature_count > max {
                return self
                    .open_in_postgis(readers.clone(), listed, "more features than --max-features")
                    .await;
            }
            if let (None, Some(left)) = (listed.engine, budget_left) {
                let estimate = match readers.table_bytes(listed).await {
                    Ok(Some(bytes)) => bytes.saturating_mul(MEMORY_PER_TABLE_BYTE),
                    Ok(None) => return Err(Build::Moved),
                    Err(e) => {
                        return Err(Build::Failed {
                            reason: format!("cannot size the collection's table: {e}"),
                            retry: true,
                        })
                    }
                };
                if estimate > left {
                    tracing::info!(
                        collection = %listed.id,
                        estimate_bytes = estimate,
                        budget_left_bytes = left,
                        "over the memory budget"
                    );
                    return self
                        .open_in_postgis(readers.clone(), listed, "over --memory-budget")
                        .await;
                }
            }
        }
        if listed.feature_count > max {
            return Err(Build::Failed {
                reason: format!(
                    "collection has {} features, more than the in-memory engine takes (--max-features {max}); not served",
                    listed.feature_count
                ),
                retry: false,
            });
        }
        let failed = |e: StoreError| Build::Failed {
            reason: format!("cannot read the collection: {e}"),
            retry: true,
        };
        let read = tokio::time::timeout(self.options.read_timeout, self.store.read(&listed.id));
        let (entry, features) = match read.await {
            Ok(Ok(read)) => read,
            Ok(Err(StoreError::NotFound(_) | StoreError::Changed(_))) => return Err(Build::Moved),
            Ok(Err(e)) => return Err(failed(e)),
            Err(_) => {
                return Err(failed(StoreError::Task(format!(
                    "reading took longer than {} s",
                    self.options.read_timeout.as_secs()
                ))))
            }
        };
        if entry.feature_count > max {
            return Err(Build::Moved);
        }
        let started = std::time::Instant::now();
        let collation = self.collation.clone();
        let snapshot =
            tokio::task::spawn_blocking(move || Snapshot::build(entry, features, collation))
                .await
                .map_err(|e| failed(StoreError::Task(e.to_string())))?;
        tracing::info!(
            collection = %snapshot.entry.id,
            version = snapshot.version(),
            features = snapshot.features.len(),
            ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        Ok(Arc::new(MemorySource::new(snapshot)))
    }

    /// Serves `listed` from its table with the PostGIS engine.
    async fn open_in_postgis(
        &self,
        readers: postgis::Readers,
        listed: &crate::catalog::CatalogEntry,
        why: &str,
    ) -> Result<Served, Build> {
        let started = std::time::Instant::now();
        match postgis::PostgisSource::open(
            readers,
            listed.clone(),
            self.options.postgis,
            self.collation.clone(),
        )
        .await
        {
            Ok(Some(source)) => {
                tracing::info!(
                    collection = %listed.id,
                    version = listed.version,
                    features = listed.feature_count,
                    ms = started.elapsed().as_millis() as u64,
                    why,
                    "served from PostGIS"
                );
                Ok(Arc::new(source))
            }
            Ok(None) | Err(EngineError::Changed(_)) => Err(Build::Moved),
            Err(e) => Err(Build::Failed {
                reason: format!("cannot open the collection in PostGIS: {e}"),
                retry: true,
            }),
        }
    }

    /// Keeps the snapshots current: polls every `interval`, and refreshes as soon as the store
    /// tells of a commit.
    pub fn watch(self: &Arc<Self>, interval: Duration) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        self.store.watch(tx);
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    Some(()) = rx.recv() => {}
                }
                if let Err(e) = engine.refresh().await {
                    tracing::warn!(error = %e, "refreshing collections failed; serving the versions held");
                }
            }
        });
    }
}
