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

pub struct Engine {
    store: Arc<dyn Store>,
    current: ArcSwap<Snapshots>,
    /// The version each collection had before its latest swap, kept so that paging cursors
    /// issued against it stay valid while clients finish walking it.
    previous: ArcSwap<Snapshots>,
    /// Largest collection (in features) held in memory; larger ones are refused with a log line.
    max_features: u64,
    refresh_lock: tokio::sync::Mutex<()>,
}

impl Engine {
    pub async fn start(store: Arc<dyn Store>, max_features: u64) -> Result<Arc<Self>, StoreError> {
        let engine = Arc::new(Self {
            store,
            current: ArcSwap::from_pointee(HashMap::new()),
            previous: ArcSwap::from_pointee(HashMap::new()),
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
    /// deleted ones, and swaps the set in at once. Returns how many collections changed.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let _guard = self.refresh_lock.lock().await;
        let entries = self.store.list().await?;
        let old = self.current.load_full();
        let mut next: Snapshots = HashMap::with_capacity(entries.len());
        let mut replaced: Snapshots = (**self.previous.load()).clone();
        let mut changed = 0;
        for entry in entries {
            if let Some(s) = old.get(&entry.id).filter(|s| s.version() == entry.version) {
                next.insert(entry.id.clone(), s.clone());
                continue;
            }
            if entry.feature_count > self.max_features {
                tracing::error!(
                    collection = %entry.id,
                    features = entry.feature_count,
                    limit = self.max_features,
                    "collection too large for the in-memory engine (raise HAMN_MAX_FEATURES); not served"
                );
                continue;
            }
            let id = entry.id.clone();
            let features = match self.store.features(&id).await {
                Ok(f) => f,
                // Deleted or replaced between list and read: the next refresh sees the new state.
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let started = std::time::Instant::now();
            let snapshot = tokio::task::spawn_blocking(move || Snapshot::build(entry, features))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
            tracing::info!(
                collection = %id,
                version = snapshot.version(),
                features = snapshot.features.len(),
                ms = started.elapsed().as_millis() as u64,
                "snapshot built"
            );
            if let Some(prev) = old.get(&id) {
                replaced.insert(id.clone(), prev.clone());
            }
            next.insert(id, Arc::new(snapshot));
            changed += 1;
        }
        changed += old.keys().filter(|k| !next.contains_key(*k)).count();
        if changed > 0 {
            trim::release_free_memory();
        }
        replaced.retain(|k, _| next.contains_key(k));
        self.previous.store(Arc::new(replaced));
        self.current.store(Arc::new(next));
        Ok(changed)
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
