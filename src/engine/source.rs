//! The one interface the HTTP layer has to a collection: [`Source`]. Each served collection
//! version is one `Source`, whichever engine serves it — the memory engine's [`Snapshot`] or
//! the PostGIS engine's table (`engine::postgis`). `api/*` asks it for a page of features, one
//! feature or one tile layer, and for what its documents say of it ([`Summary`]); it never
//! sees an engine's internals (feature indices, R-trees, SQL).
//!
//! A page's features are [`Feature`]s either way, so every encoding (GeoJSON, JSON-FG, CSV,
//! FlatGeobuf, HTML) is written by one code path, and two engines give the same bytes.

use std::sync::Arc;

use async_trait::async_trait;

use super::snapshot::{Feature, Page as MemoryPage, Query, Snapshot, Start};
use crate::catalog::CatalogEntry;
use crate::collation::Collation;
use crate::tiles::mvt::TileOptions;
use crate::tiles::tms::TileId;

/// Which engine serves a collection (for operators: `/collections/{id}` says it, and
/// `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Memory,
    Postgis,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Memory => "memory",
            EngineKind::Postgis => "postgis",
        }
    }
}

/// Why an engine could not answer. The request was valid (it was parsed and bound before it
/// reached the engine), so none of these is the client's fault, except `Unsupported`.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The query asks for something this engine cannot do (a 400 naming it).
    #[error("{0}")]
    Unsupported(String),
    /// The collection was replaced while the request ran: asking again reads the new version.
    #[error("collection {0} changed while it was read; ask again")]
    Changed(String),
    /// The statement ran past its time limit.
    #[error("the query took longer than {0} s")]
    Timeout(u64),
    /// The database failed (connection, pool, an unexpected error).
    #[error("{0}")]
    Database(String),
}

pub use crate::catalog::IdKinds;

/// What a collection's documents say of it besides its catalog entry, found once per version.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Where most of the features are (1st to 99th percentile of their centres): a map fitted
    /// to it shows the data, not its stray points.
    pub core_bbox: Option<[f64; 4]>,
    pub ids: IdKinds,
    /// One feature id, as an example in the OpenAPI document.
    pub example_id: Option<String>,
    /// Memory the version holds in this process (an estimate).
    pub memory_bytes: usize,
}

/// The features of one page, in page order. Shared cheaply: a streamed response holds them
/// until its last chunk is written.
#[derive(Clone)]
pub struct Features(Repr);

#[derive(Clone)]
enum Repr {
    /// Positions in a snapshot, which the page keeps alive.
    Held(Arc<Snapshot>, Arc<[u32]>),
    /// Features read for this page.
    Owned(Arc<[Feature]>),
}

impl Features {
    pub fn held(snapshot: Arc<Snapshot>, items: Vec<u32>) -> Self {
        Self(Repr::Held(snapshot, items.into()))
    }

    pub fn owned(features: Vec<Feature>) -> Self {
        Self(Repr::Owned(features.into()))
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Held(_, items) => items.len(),
            Repr::Owned(f) => f.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, n: usize) -> Option<&Feature> {
        match &self.0 {
            Repr::Held(s, items) => s.features.get(*items.get(n)? as usize),
            Repr::Owned(f) => f.get(n),
        }
    }

    pub fn first(&self) -> Option<&Feature> {
        self.get(0)
    }

    pub fn last(&self) -> Option<&Feature> {
        self.len().checked_sub(1).and_then(|n| self.get(n))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Feature> + '_ {
        (0..self.len()).filter_map(move |n| self.get(n))
    }
}

/// One page of a query.
pub struct Page {
    /// All matches, when known: an engine may leave it out where counting would cost more
    /// than the page (the PostGIS engine past `--count-limit`).
    pub matched: Option<usize>,
    pub features: Features,
    /// Position of the first feature among all matches; exact for pages started by offset
    /// (and for every page of the memory engine).
    pub first_position: usize,
    pub has_more: bool,
    /// Whether matches come before this page.
    pub has_prev: bool,
}

/// One collection version, as an engine serves it.
#[async_trait]
pub trait Source: Send + Sync {
    fn entry(&self) -> &CatalogEntry;

    fn version(&self) -> i64 {
        self.entry().version
    }

    fn engine(&self) -> EngineKind;

    /// The order of text in sorts and filters on this version.
    fn collation(&self) -> &Collation;

    fn summary(&self) -> &Summary;

    /// About how many features the query makes this process look at, to decide whether it is
    /// heavy (`api::heavy`). An engine whose work is done elsewhere says 0.
    fn estimate(&self, q: &Query) -> usize;

    /// One page: the matches of `q` from `start`, at most `limit`.
    async fn items(&self, q: &Query, start: Start, limit: usize) -> Result<Page, EngineError>;

    /// The feature with public id `id`.
    async fn item(&self, id: &str) -> Result<Option<Feature>, EngineError>;

    /// The encoded MVT layer of this collection in `tile` (features chosen by `q`), or `None`
    /// when nothing shows there.
    async fn tile(
        &self,
        tile: TileId,
        opts: TileOptions,
        q: &Query,
    ) -> Result<Option<Vec<u8>>, EngineError>;

    /// Up to `limit` features in `fid` order, those after `after` (from the first when
    /// `None`): the whole version, batch by batch, for the bulk download files.
    async fn batch(&self, after: Option<i64>, limit: usize) -> Result<Features, EngineError>;

    /// The memory engine's snapshot, for tests that look inside it.
    fn snapshot(&self) -> Option<&Arc<Snapshot>> {
        None
    }
}

/// The memory engine's side of the interface. A snapshot is wrapped once, as it is built.
pub struct MemorySource {
    snapshot: Arc<Snapshot>,
    summary: Summary,
}

impl MemorySource {
    pub fn new(snapshot: Snapshot) -> Self {
        let summary = snapshot.summary();
        Self {
            snapshot: Arc::new(snapshot),
            summary,
        }
    }
}

#[async_trait]
impl Source for MemorySource {
    fn entry(&self) -> &CatalogEntry {
        &self.snapshot.entry
    }

    fn engine(&self) -> EngineKind {
        EngineKind::Memory
    }

    fn collation(&self) -> &Collation {
        self.snapshot.collation()
    }

    fn summary(&self) -> &Summary {
        &self.summary
    }

    fn estimate(&self, q: &Query) -> usize {
        self.snapshot.estimate(q)
    }

    async fn items(&self, q: &Query, start: Start, limit: usize) -> Result<Page, EngineError> {
        let MemoryPage {
            matched,
            items,
            first_position,
            has_more,
        } = self.snapshot.query(q, start, limit);
        Ok(Page {
            matched: Some(matched),
            features: Features::held(self.snapshot.clone(), items),
            first_position,
            has_more,
            has_prev: first_position > 0,
        })
    }

    async fn item(&self, id: &str) -> Result<Option<Feature>, EngineError> {
        Ok(self.snapshot.get(id).cloned())
    }

    async fn tile(
        &self,
        tile: TileId,
        opts: TileOptions,
        q: &Query,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(crate::tiles::mvt::layer(&self.snapshot, tile, opts, q))
    }

    async fn batch(&self, after: Option<i64>, limit: usize) -> Result<Features, EngineError> {
        let features = &self.snapshot.features;
        // The features are in fid order.
        let from = after.map_or(0, |a| features.partition_point(|f| f.fid <= a));
        let to = from.saturating_add(limit).min(features.len());
        let items = (from..to).filter_map(|i| u32::try_from(i).ok()).collect();
        Ok(Features::held(self.snapshot.clone(), items))
    }

    fn snapshot(&self) -> Option<&Arc<Snapshot>> {
        Some(&self.snapshot)
    }
}
