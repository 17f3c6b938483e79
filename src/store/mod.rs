//! Storage of collections: the catalog and the features. One trait, two implementations —
//! PostGIS (production) and an embedded store in a data directory (no server process). Both give
//! the same guarantee: an ingest becomes visible whole, at once, or not at all.
//!
//! The store does not read source files or decide what a feature is: `ingest` hands it rows
//! that are already typed, reprojected to WGS 84 and validated.

pub mod embedded;
pub mod postgis;
pub mod tls;
mod value;

use async_trait::async_trait;

use crate::catalog::{Attribute, CatalogEntry, CollectionId, Description};
pub use value::{Row, Value};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("collection '{0}' not found")]
    NotFound(CollectionId),
    #[error("collection '{0}' already exists (use --mode replace or --mode append)")]
    AlreadyExists(CollectionId),
    #[error("cannot append: {0}")]
    Incompatible(String),
    #[error("duplicate feature id {0:?}: the id field must be unique")]
    DuplicateId(String),
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database pool error: {0}")]
    Pool(String),
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    #[error("migration {name} failed: {source}")]
    Migration {
        name: String,
        source: tokio_postgres::Error,
    },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("GDAL error in the embedded store: {0}")]
    Gdal(#[from] gdal::errors::GdalError),
    #[error("corrupt catalog file {path}: {reason}")]
    CorruptCatalog { path: String, reason: String },
    #[error("store task failed: {0}")]
    Task(String),
    #[error("collection '{0}' changed while it was read; read it again")]
    Changed(CollectionId),
}

impl StoreError {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How an ingest meets an existing collection of the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IngestMode {
    /// Make a new collection; fail if the id is taken.
    Create,
    /// Replace the collection's features and schema whole.
    Replace,
    /// Add features to the collection (new attributes are added; types must agree).
    Append,
}

/// What the store must know before the first row arrives.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    pub id: CollectionId,
    pub mode: IngestMode,
    pub attributes: Vec<Attribute>,
    /// Append only: the existing features whose text attribute equals a value are left out of
    /// the new version. This is how one publisher's part of a shared (theme) collection is
    /// replaced or removed whole while the other publishers' features stay, under the same
    /// lock as any append.
    pub replacing: Option<AttributeMatch>,
}

/// `attribute = value`, compared as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMatch {
    pub attribute: String,
    pub value: String,
}

/// Rows for one ingest go here; nothing is visible to readers until [`IngestSink::commit`].
/// Dropping a sink without committing (an error, a panic, a killed process) leaves the store as
/// it was before the ingest began.
#[async_trait]
pub trait IngestSink: Send {
    /// The attributes of the collection as it will be after commit (for append: the existing
    /// ones merged with the new). Rows must carry values in this order.
    fn attributes(&self) -> &[Attribute];
    /// The first sequence number rows of this ingest should take (continues after existing
    /// features when appending).
    fn first_fid(&self) -> i64;
    /// The collection as it was when this ingest began (appends merge counts and extents with
    /// it; the store holds it locked for appends, so it is still current at commit). With
    /// [`IngestPlan::replacing`], its count, extent, geometry types and temporal extent are
    /// those of the features kept.
    fn previous(&self) -> Option<&CatalogEntry>;
    async fn write(&mut self, rows: Vec<Row>) -> Result<()>;
    /// Makes the new version visible and returns the catalog entry as stored. `entry.version`,
    /// `created` and the counts/extent for append mode are filled in by the store.
    async fn commit(self: Box<Self>, entry: CatalogEntry) -> Result<CatalogEntry>;
}

/// A metadata change: the entry after it, and the version it replaced (the features are
/// those of that version; `changes` records an empty change between the two).
#[derive(Debug, Clone)]
pub struct Described {
    pub previous_version: i64,
    pub entry: CatalogEntry,
}

/// A feature as read back from a store (for serving and for tests).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeature {
    pub fid: i64,
    pub id: String,
    pub values: Vec<Value>,
    /// ISO WKB in WGS 84 lon/lat; `None` for a feature without geometry.
    pub geometry: Option<Vec<u8>>,
}

/// The kinds of records the publishing side keeps beside the collections (tokens, jobs,
/// sources). The store keeps each as an opaque JSON document under a key; `publish` and
/// `auth` own their meaning, so adding a field needs no migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Token,
    Job,
    Source,
    /// What changed from one collection version to the next (`changes`).
    Change,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Token => "token",
            RecordKind::Job => "job",
            RecordKind::Source => "source",
            RecordKind::Change => "change",
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// A short name for logs: `postgis` or `embedded`.
    fn kind(&self) -> &'static str;
    /// From now on, sends on `changed` whenever a catalog change is committed (by this process
    /// or another), never waiting: a full channel means a refresh is already due. A store that
    /// cannot tell sends nothing, and readers rely on polling.
    fn watch(&self, changed: tokio::sync::mpsc::Sender<()>) {
        drop(changed);
    }
    /// The PostGIS store, for the PostGIS engine, which reads its tables in place; `None`
    /// for stores that have no SQL to offer (the embedded one).
    fn postgis(&self) -> Option<&postgis::PostgisStore> {
        None
    }
    async fn list(&self) -> Result<Vec<CatalogEntry>>;
    async fn get(&self, id: &CollectionId) -> Result<Option<CatalogEntry>>;
    async fn delete(&self, id: &CollectionId) -> Result<()>;
    async fn begin_ingest(&self, plan: IngestPlan) -> Result<Box<dyn IngestSink>>;
    /// The current version whole: its catalog entry and all its features in `fid` order, read
    /// as one, so the entry is the one the rows belong to even when an ingest commits meanwhile
    /// (the engine builds snapshots from this; a list then a read could pair one version's
    /// schema with the next one's rows). [`StoreError::Changed`] when the version was replaced
    /// under the read: read again.
    async fn read(&self, id: &CollectionId) -> Result<(CatalogEntry, Vec<StoredFeature>)>;

    /// Replaces a collection's descriptive metadata and its engine choice (`None`: the size
    /// decides). The features stay as they are; the version changes (ETags and the engine
    /// follow versions, so every instance serves the new choice at its next refresh).
    async fn set_description(
        &self,
        id: &CollectionId,
        meta: Description,
        engine: Option<crate::catalog::EngineChoice>,
    ) -> Result<Described>;

    /// Writes (inserts or replaces) one record.
    async fn put_record(&self, kind: RecordKind, key: &str, doc: &serde_json::Value) -> Result<()>;
    async fn get_record(&self, kind: RecordKind, key: &str) -> Result<Option<serde_json::Value>>;
    /// Every record of a kind, in key order.
    async fn list_records(&self, kind: RecordKind) -> Result<Vec<(String, serde_json::Value)>>;
    /// The records of a kind whose keys start with `prefix`, in key order.
    async fn list_records_with_prefix(
        &self,
        kind: RecordKind,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>> {
        let mut all = self.list_records(kind).await?;
        all.retain(|(k, _)| k.starts_with(prefix));
        Ok(all)
    }
    /// True when there was a record to delete.
    async fn delete_record(&self, kind: RecordKind, key: &str) -> Result<bool>;
    /// Deletes many records at once (the embedded store rewrites its file once, not per key).
    async fn delete_records(&self, kind: RecordKind, keys: &[String]) -> Result<()> {
        for key in keys {
            self.delete_record(kind, key).await?;
        }
        Ok(())
    }

    /// All features of the current version, in `fid` order.
    async fn features(&self, id: &CollectionId) -> Result<Vec<StoredFeature>> {
        Ok(self.read(id).await?.1)
    }
}

/// Merges a new schema into an existing one for append: existing attributes keep their
/// columns; new ones are added; a name whose type differs is an error (silently converting
/// would lose data).
pub fn merge_attributes(existing: &[Attribute], incoming: &[Attribute]) -> Result<Vec<Attribute>> {
    let mut merged = existing.to_vec();
    let mut new_names = Vec::new();
    for attr in incoming {
        match existing.iter().find(|a| a.name == attr.name) {
            Some(old) if old.kind == attr.kind => {}
            Some(old)
                if old.kind == crate::catalog::AttrType::Real
                    && attr.kind == crate::catalog::AttrType::Integer => {}
            Some(old) => {
                return Err(StoreError::Incompatible(format!(
                    "attribute '{}' is {:?} in the collection but {:?} in the new source",
                    attr.name, old.kind, attr.kind
                )))
            }
            None => new_names.push(attr.clone()),
        }
    }
    let names: Vec<String> = new_names.iter().map(|a| a.name.clone()).collect();
    let in_use: Vec<String> = merged.iter().map(|a| a.column.clone()).collect();
    let columns = crate::catalog::sanitise_columns(&names, &in_use);
    for (attr, column) in new_names.into_iter().zip(columns) {
        merged.push(Attribute { column, ..attr });
    }
    Ok(merged)
}
