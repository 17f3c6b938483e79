//! The serving engine: an immutable in-memory snapshot per collection (see `snapshot`), built
//! from the store at start-up and rebuilt when a collection's version changes, then swapped in
//! atomically. A request holds an `Arc` to one snapshot, so it sees one version, whole.
//!
//! Versions are noticed by polling the store's catalog and, with PostGIS, at once through
//! `LISTEN hamn_catalog` (ingests `NOTIFY` on commit), so several server instances stay in step.

pub mod snapshot;
mod trim;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::catalog::CollectionId;
use crate::store::{Store, StoreError};
pub use snapshot::{Page, Query, Snapshot, SortKey, Start};

type Snapshots = HashMap<CollectionId, Arc<Snapshot>>;

/// Why a collection was not built this time.
enum Build {
    /// It changed or went away while read: the next refresh sees the new state.
    Moved,
    Failed {
        reason: String,
        retry: bool,
    },
}

pub struct Engine {
    store: Arc<dyn Store>,
    current: ArcSwap<Snapshots>,
    /// The version each collection had before its latest swap, kept so that paging cursors
    /// issued against it stay valid while clients finish walking it.
    previous: ArcSwap<Snapshots>,
    /// Collections in the catalog that are not served as their catalog says, and why.
    failures: std::sync::Mutex<HashMap<CollectionId, Failure>>,
    /// Largest collection (in features) held in memory; larger ones are refused with a log line.
    max_features: u64,
    refresh_lock: tokio::sync::Mutex<()>,
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

/// The first retry after this, doubling to `MAX_BACKOFF`: a broken collection costs one log
/// line per attempt, not one per refresh.
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the engine knows of a collection id.
pub enum Lookup {
    Served(Arc<Snapshot>),
    /// In the catalog, but not served: the reason.
    Unavailable(String),
    Missing,
}

impl Engine {
    pub async fn start(store: Arc<dyn Store>, max_features: u64) -> Result<Arc<Self>, StoreError> {
        let engine = Arc::new(Self {
            store,
            current: ArcSwap::from_pointee(HashMap::new()),
            previous: ArcSwap::from_pointee(HashMap::new()),
            failures: std::sync::Mutex::new(HashMap::new()),
            max_features,
            refresh_lock: tokio::sync::Mutex::new(()),
        });
        engine.refresh().await?;
        Ok(engine)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn get(&self, id: &CollectionId) -> Option<Arc<Snapshot>> {
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
        match self.failures.lock() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_failures(&self, failures: HashMap<CollectionId, Failure>) {
        match self.failures.lock() {
            Ok(mut f) => *f = failures,
            Err(poisoned) => *poisoned.into_inner() = failures,
        }
    }

    /// The snapshot of a given version, if it is the current or the one before.
    pub fn get_version(&self, id: &CollectionId, version: i64) -> Option<Arc<Snapshot>> {
        [
            self.current.load().get(id).cloned(),
            self.previous.load().get(id).cloned(),
        ]
        .into_iter()
        .flatten()
        .find(|s| s.version() == version)
    }

    /// Every served collection, by id.
    pub fn list(&self) -> Vec<Arc<Snapshot>> {
        let mut all: Vec<Arc<Snapshot>> = self.current.load().values().cloned().collect();
        all.sort_by(|a, b| a.entry.id.cmp(&b.entry.id));
        all
    }

    /// Brings the snapshots in line with the store: builds new and changed collections, drops
    /// deleted ones, and swaps the set in at once. Returns how many collections changed. Only
    /// a failure to list the catalog is an error; a collection that cannot be read or is too
    /// large is that collection's failure alone (see [`Failure`]).
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let _guard = self.refresh_lock.lock().await;
        let entries = self.store.list().await?;
        let old = self.current.load_full();
        let mut failures = self.failures();
        let mut next: Snapshots = HashMap::with_capacity(entries.len());
        let mut replaced: Snapshots = (**self.previous.load()).clone();
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
            match self.build(&listed).await {
                Ok(snapshot) => {
                    failures.remove(&id);
                    if let Some(prev) = held {
                        replaced.insert(id.clone(), prev.clone());
                    }
                    next.insert(id, Arc::new(snapshot));
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
        changed += old.keys().filter(|k| !next.contains_key(*k)).count();
        if changed > 0 {
            trim::release_free_memory();
        }
        failures.retain(|k, _| listed_ids.contains(k));
        replaced.retain(|k, _| next.contains_key(k));
        self.previous.store(Arc::new(replaced));
        self.current.store(Arc::new(next));
        self.set_failures(failures);
        Ok(changed)
    }

    /// Reads one collection version from the store and builds its snapshot.
    async fn build(&self, listed: &crate::catalog::CatalogEntry) -> Result<Snapshot, Build> {
        if listed.feature_count > self.max_features {
            return Err(Build::Failed {
                reason: format!(
                    "collection has {} features, more than the in-memory engine takes (--max-features {}); not served",
                    listed.feature_count, self.max_features
                ),
                retry: false,
            });
        }
        let failed = |e: StoreError| Build::Failed {
            reason: format!("cannot read the collection: {e}"),
            retry: true,
        };
        let (entry, features) = match self.store.read(&listed.id).await {
            Ok(read) => read,
            Err(StoreError::NotFound(_) | StoreError::Changed(_)) => return Err(Build::Moved),
            Err(e) => return Err(failed(e)),
        };
        if entry.feature_count > self.max_features {
            return Err(Build::Moved);
        }
        let started = std::time::Instant::now();
        let snapshot = tokio::task::spawn_blocking(move || Snapshot::build(entry, features))
            .await
            .map_err(|e| failed(StoreError::Task(e.to_string())))?;
        tracing::info!(
            collection = %snapshot.entry.id,
            version = snapshot.version(),
            features = snapshot.features.len(),
            ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        Ok(snapshot)
    }

    /// Keeps the snapshots current: polls every `interval`, and with PostGIS also refreshes as
    /// soon as a `NOTIFY` arrives.
    pub fn watch(self: &Arc<Self>, interval: Duration, database_url: Option<String>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        if let Some(url) = database_url {
            tokio::spawn(listen(url, tx.clone()));
        }
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

/// Forwards `hamn_catalog` notifications; reconnects after a pause when the connection drops.
async fn listen(url: String, tx: tokio::sync::mpsc::Sender<()>) {
    use futures_util::StreamExt;
    loop {
        let connected = match crate::store::tls::connector(&url) {
            Ok((config, tls)) => config.connect(tls).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match connected {
            Ok((client, mut conn)) => {
                let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel();
                let pump = tokio::spawn(async move {
                    let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
                    while let Some(msg) = stream.next().await {
                        match msg {
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                let _ = ntx.send(());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {}", crate::store::postgis::NOTIFY_CHANNEL))
                    .await
                    .is_ok()
                {
                    while nrx.recv().await.is_some() {
                        // A full channel means a refresh is already due.
                        let _ = tx.try_send(());
                    }
                }
                pump.abort();
            }
            Err(e) => tracing::warn!(error = %e, "LISTEN connection failed; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
