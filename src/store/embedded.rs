//! The embedded store: a data directory, no server process. Each collection version is one
//! GeoPackage file (written through GDAL, so QGIS can open it directly); `catalog.json` lists
//! the collections and names the file of each one's current version.
//!
//! Atomicity: an ingest writes a new `.partial.gpkg`, renames it to its final versioned name,
//! and only then replaces `catalog.json` (write to a temporary file, fsync, rename). The rename
//! of the catalog is the commit point; a crash before it leaves the old catalog, which still
//! names the old file. Concurrent processes serialise catalog updates with a file lock.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
use gdal::vector::{
    Feature, FieldDefn, FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType,
    OGRwkbGeometryType,
};
use gdal::{Dataset, DatasetOptions, DriverManager, GdalOpenFlags};
use serde::{Deserialize, Serialize};

use super::{
    Described, IngestMode, IngestPlan, IngestSink, RecordKind, Result, Row, Store, StoreError,
    StoredFeature, Value,
};
use crate::catalog::{AttrType, Attribute, Bbox, CatalogEntry, CollectionId, Description};

const CATALOG_FILE: &str = "catalog.json";
/// Records of the publishing side (tokens, jobs, sources), one file for all: they are few and
/// small, and one file replaced atomically under the lock needs no recovery logic.
const RECORDS_FILE: &str = "records.json";
const LOCK_FILE: &str = ".lock";
const LAYER: &str = "features";
/// Partial files older than this are leftovers of a killed ingest and are removed on open.
const STALE_PARTIAL: Duration = Duration::from_secs(3600);

#[derive(Debug, Default, Serialize, Deserialize)]
struct CatalogFile {
    /// Format of this file, for future migrations.
    format: u32,
    next_version: i64,
    collections: Vec<StoredEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEntry {
    #[serde(flatten)]
    entry: CatalogEntry,
    /// File name (in `collections/`) of the current version.
    file: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RecordsFile {
    #[serde(default)]
    token: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    job: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    source: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    change: std::collections::BTreeMap<String, serde_json::Value>,
}

impl RecordsFile {
    fn of(
        &mut self,
        kind: RecordKind,
    ) -> &mut std::collections::BTreeMap<String, serde_json::Value> {
        match kind {
            RecordKind::Token => &mut self.token,
            RecordKind::Job => &mut self.job,
            RecordKind::Source => &mut self.source,
            RecordKind::Change => &mut self.change,
        }
    }
}

pub struct EmbeddedStore {
    dir: PathBuf,
}

/// An exclusive lock on the data directory, released on drop.
struct DirLock(File);

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) a data directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let collections = dir.join("collections");
        std::fs::create_dir_all(&collections).map_err(|e| StoreError::io(&collections, e))?;
        let store = Self { dir };
        store.remove_stale_partials();
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn collections_dir(&self) -> PathBuf {
        self.dir.join("collections")
    }

    fn remove_stale_partials(&self) {
        let Ok(entries) = std::fs::read_dir(self.collections_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_PARTIAL);
            if name.contains(".partial.") && old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn lock(&self) -> Result<DirLock> {
        let path = self.dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        file.lock().map_err(|e| StoreError::io(&path, e))?;
        Ok(DirLock(file))
    }

    /// Takes the lock on a blocking thread: waiting for another process must not stall the
    /// async runtime (with two ingests on one thread, that would deadlock).
    async fn lock_async(&self) -> Result<DirLock> {
        let store = EmbeddedStore {
            dir: self.dir.clone(),
        };
        blocking(move || store.lock()).await
    }

    fn read_catalog(&self) -> Result<CatalogFile> {
        let path = self.dir.join(CATALOG_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptCatalog {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CatalogFile {
                format: 1,
                next_version: 1,
                collections: Vec::new(),
            }),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Replaces `catalog.json` atomically (the caller holds the lock).
    fn write_catalog(&self, catalog: &CatalogFile) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(catalog)
            .map_err(|e| StoreError::Task(format!("serialising the catalog: {e}")))?;
        self.replace_file(CATALOG_FILE, &bytes)
    }

    fn read_records(&self) -> Result<RecordsFile> {
        let path = self.dir.join(RECORDS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptCatalog {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RecordsFile::default()),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Replaces `records.json` atomically (the caller holds the lock).
    fn write_records(&self, records: &RecordsFile) -> Result<()> {
        let bytes = serde_json::to_vec(records)
            .map_err(|e| StoreError::Task(format!("serialising records: {e}")))?;
        self.replace_file(RECORDS_FILE, &bytes)
    }

    fn replace_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut f = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| StoreError::io(&tmp, e))?;
        f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, e))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn find(&self, id: &CollectionId) -> Result<Option<StoredEntry>> {
        Ok(self
            .read_catalog()?
            .collections
            .into_iter()
            .find(|c| &c.entry.id == id))
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

fn field_type(kind: AttrType) -> OGRFieldType::Type {
    match kind {
        AttrType::Integer | AttrType::Boolean => OGRFieldType::OFTInteger64,
        AttrType::Real => OGRFieldType::OFTReal,
        AttrType::Date => OGRFieldType::OFTDate,
        AttrType::DateTime => OGRFieldType::OFTDateTime,
        AttrType::Text | AttrType::Json => OGRFieldType::OFTString,
    }
}

fn open_gpkg(path: &Path, update: bool) -> Result<Dataset> {
    let mut flags = GdalOpenFlags::GDAL_OF_VECTOR;
    if update {
        flags |= GdalOpenFlags::GDAL_OF_UPDATE;
    }
    Ok(Dataset::open_ex(
        path,
        DatasetOptions {
            open_flags: flags,
            allowed_drivers: Some(&["GPKG"]),
            ..Default::default()
        },
    )?)
}

fn create_gpkg(path: &Path, attributes: &[Attribute]) -> Result<Dataset> {
    let driver = DriverManager::get_driver_by_name("GPKG")?;
    let mut ds = driver.create_vector_only(path)?;
    let mut srs = SpatialRef::from_epsg(4326)?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    {
        let layer = ds.create_layer(LayerOptions {
            name: LAYER,
            srs: Some(&srs),
            ty: OGRwkbGeometryType::wkbUnknown,
            options: Some(&["GEOMETRY_NAME=geom", "SPATIAL_INDEX=YES"]),
        })?;
        FieldDefn::new("hamn_fid", OGRFieldType::OFTInteger64)?.add_to_layer(&layer)?;
        FieldDefn::new("hamn_id", OGRFieldType::OFTString)?.add_to_layer(&layer)?;
        for a in attributes {
            FieldDefn::new(&a.column, field_type(a.kind))?.add_to_layer(&layer)?;
        }
    }
    Ok(ds)
}

fn set_value(f: &mut Feature, idx: usize, v: &Value) -> Result<()> {
    match v {
        Value::Null => f.set_field_null(idx)?,
        Value::Integer(i) => f.set_field_integer64(idx, *i)?,
        Value::Real(r) => f.set_field_double(idx, *r)?,
        Value::Boolean(b) => f.set_field_integer64(idx, i64::from(*b))?,
        // GDAL takes C strings: a NUL inside a value would cut it, so it is replaced.
        Value::Text(s) => f.set_field_string(idx, &s.replace('\0', "\u{fffd}"))?,
        Value::Date(d) => f.set_field(idx, &FieldValue::DateValue(*d))?,
        Value::DateTime(t) => f.set_field_datetime(idx, *t)?,
        Value::Json(j) => f.set_field_string(idx, &j.to_string().replace('\0', "\u{fffd}"))?,
    }
    Ok(())
}

fn get_value(f: &Feature, idx: usize, kind: AttrType) -> Value {
    let field = f.field(idx).ok().flatten();
    match (kind, field) {
        (_, None) => Value::Null,
        (AttrType::Integer, Some(v)) => v.into_int64().map_or(Value::Null, Value::Integer),
        (AttrType::Boolean, Some(v)) => v
            .into_int64()
            .map_or(Value::Null, |i| Value::Boolean(i != 0)),
        (AttrType::Real, Some(v)) => v.into_real().map_or(Value::Null, Value::Real),
        (AttrType::Text, Some(v)) => v.into_string().map_or(Value::Null, Value::Text),
        (AttrType::Date, Some(FieldValue::DateValue(d))) => Value::Date(d),
        (AttrType::Date, Some(FieldValue::DateTimeValue(t))) => Value::Date(t.date_naive()),
        (AttrType::DateTime, Some(FieldValue::DateTimeValue(t))) => Value::DateTime(t),
        (AttrType::DateTime, Some(FieldValue::DateValue(d))) => d
            .and_hms_opt(0, 0, 0)
            .map_or(Value::Null, |t| Value::DateTime(t.and_utc().fixed_offset())),
        (AttrType::Json, Some(v)) => v
            .into_string()
            .and_then(|s| serde_json::from_str(&s).ok())
            .map_or(Value::Null, |j| Value::Json(Box::new(j))),
        _ => Value::Null,
    }
}

fn read_features(path: &Path, attributes: &[Attribute]) -> Result<Vec<StoredFeature>> {
    let ds = open_gpkg(path, false)?;
    let mut layer = ds.layer_by_name(LAYER)?;
    let defn_idx = |name: &str| layer.defn().field_index(name);
    let fid_idx = defn_idx("hamn_fid")?;
    let id_idx = defn_idx("hamn_id")?;
    let attr_idx: Vec<Option<usize>> = attributes
        .iter()
        .map(|a| defn_idx(&a.column).ok())
        .collect();
    let mut out = Vec::new();
    for f in layer.features() {
        let values = attributes
            .iter()
            .zip(&attr_idx)
            .map(|(a, idx)| idx.map_or(Value::Null, |i| get_value(&f, i, a.kind)))
            .collect();
        out.push(StoredFeature {
            fid: f.field_as_integer64(fid_idx)?.unwrap_or(0),
            id: f.field_as_string(id_idx)?.unwrap_or_default(),
            geometry: f
                .geometry()
                .filter(|g| !g.is_empty())
                .map(Geometry::wkb)
                .transpose()?,
            values,
        });
    }
    out.sort_by_key(|f| f.fid);
    Ok(out)
}

#[async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn list(&self) -> Result<Vec<CatalogEntry>> {
        let mut all: Vec<CatalogEntry> = self
            .read_catalog()?
            .collections
            .into_iter()
            .map(|c| c.entry)
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    async fn get(&self, id: &CollectionId) -> Result<Option<CatalogEntry>> {
        Ok(self.find(id)?.map(|c| c.entry))
    }

    async fn delete(&self, id: &CollectionId) -> Result<()> {
        let _lock = self.lock_async().await?;
        let mut catalog = self.read_catalog()?;
        let Some(pos) = catalog.collections.iter().position(|c| &c.entry.id == id) else {
            return Err(StoreError::NotFound(id.clone()));
        };
        let removed = catalog.collections.remove(pos);
        self.write_catalog(&catalog)?;
        let _ = std::fs::remove_file(self.collections_dir().join(removed.file));
        Ok(())
    }

    async fn set_description(
        &self,
        id: &CollectionId,
        meta: Description,
        engine: Option<crate::catalog::EngineChoice>,
    ) -> Result<Described> {
        let _lock = self.lock_async().await?;
        let mut catalog = self.read_catalog()?;
        let version = catalog.next_version.max(1);
        let Some(stored) = catalog.collections.iter_mut().find(|c| &c.entry.id == id) else {
            return Err(StoreError::NotFound(id.clone()));
        };
        let previous_version = stored.entry.version;
        stored.entry.meta = meta;
        stored.entry.engine = engine;
        stored.entry.version = version;
        stored.entry.updated = Utc::now();
        let entry = stored.entry.clone();
        catalog.next_version = version + 1;
        self.write_catalog(&catalog)?;
        Ok(Described {
            previous_version,
            entry,
        })
    }

    async fn put_record(&self, kind: RecordKind, key: &str, doc: &serde_json::Value) -> Result<()> {
        let _lock = self.lock_async().await?;
        let mut records = self.read_records()?;
        records.of(kind).insert(key.to_string(), doc.clone());
        self.write_records(&records)
    }

    async fn get_record(&self, kind: RecordKind, key: &str) -> Result<Option<serde_json::Value>> {
        Ok(self.read_records()?.of(kind).remove(key))
    }

    async fn list_records(&self, kind: RecordKind) -> Result<Vec<(String, serde_json::Value)>> {
        Ok(std::mem::take(self.read_records()?.of(kind))
            .into_iter()
            .collect())
    }

    async fn delete_record(&self, kind: RecordKind, key: &str) -> Result<bool> {
        let _lock = self.lock_async().await?;
        let mut records = self.read_records()?;
        let gone = records.of(kind).remove(key).is_some();
        if gone {
            self.write_records(&records)?;
        }
        Ok(gone)
    }

    async fn delete_records(&self, kind: RecordKind, keys: &[String]) -> Result<()> {
        let _lock = self.lock_async().await?;
        let mut records = self.read_records()?;
        let map = records.of(kind);
        let before = map.len();
        for key in keys {
            map.remove(key);
        }
        if map.len() != before {
            self.write_records(&records)?;
        }
        Ok(())
    }

    async fn begin_ingest(&self, plan: IngestPlan) -> Result<Box<dyn IngestSink>> {
        // Appends hold the lock for the whole ingest (as the PostGIS store holds the row).
        // Taken on a blocking thread: held across the `.await` below, a second ingest on the
        // same runtime thread waiting for it synchronously would never let this one finish.
        let lock = self.lock_async().await?;
        let mut catalog = self.read_catalog()?;
        let previous = catalog
            .collections
            .iter()
            .find(|c| c.entry.id == plan.id)
            .cloned();
        if plan.mode == IngestMode::Create && previous.is_some() {
            return Err(StoreError::AlreadyExists(plan.id));
        }
        let version = catalog.next_version.max(1);
        catalog.next_version = version + 1;
        self.write_catalog(&catalog)?;
        let plan_mode = plan.mode;
        let append_to = previous.clone().filter(|_| plan.mode == IngestMode::Append);
        let attributes = match &append_to {
            Some(old) => super::merge_attributes(&old.entry.attributes, &plan.attributes)?,
            None => plan.attributes.clone(),
        };
        let partial = self
            .collections_dir()
            .join(format!("{}.v{version}.partial.gpkg", plan.id));
        let old_path = append_to
            .as_ref()
            .map(|o| self.collections_dir().join(&o.file));
        let (path, attrs) = (partial.clone(), attributes.clone());
        let replacing = plan.replacing.clone();
        let mut previous = previous;
        let old_entry = append_to.as_ref().map(|o| o.entry.clone());
        let (dataset, first_fid, kept) = blocking(move || {
            let Some(old_path) = old_path else {
                return Ok((create_gpkg(&path, &attrs)?, 1, None));
            };
            if let (Some(m), Some(old)) = (replacing, old_entry) {
                return copy_except(&old_path, &path, &attrs, old, &m)
                    .map(|(ds, fid, kept)| (ds, fid, Some(kept)));
            }
            std::fs::copy(&old_path, &path).map_err(|e| StoreError::io(&path, e))?;
            let ds = open_gpkg(&path, true)?;
            let max_fid = {
                let mut layer = ds.layer_by_name(LAYER)?;
                let idx = layer.defn().field_index("hamn_fid")?;
                let mut max = 0;
                for f in layer.features() {
                    max = max.max(f.field_as_integer64(idx)?.unwrap_or(0));
                }
                for a in &attrs {
                    if layer.defn().field_index(&a.column).is_err() {
                        FieldDefn::new(&a.column, field_type(a.kind))?.add_to_layer(&layer)?;
                    }
                }
                max
            };
            Ok((ds, max_fid + 1, None))
        })
        .await?;
        if let (Some(kept), Some(p)) = (kept, previous.as_mut()) {
            p.entry = kept;
        }
        Ok(Box::new(EmbeddedSink {
            store_dir: self.dir.clone(),
            plan,
            attributes,
            previous,
            version,
            partial,
            dataset: Some(dataset),
            first_fid,
            // An append to a collection that does not exist yet holds it too: a second append
            // (another publisher's first part of a theme collection) must wait and add to what
            // this one commits, not make the collection anew and replace it.
            lock: (plan_mode == IngestMode::Append).then_some(lock),
        }))
    }

    async fn read(&self, id: &CollectionId) -> Result<(CatalogEntry, Vec<StoredFeature>)> {
        let Some(stored) = self.find(id)? else {
            return Err(StoreError::NotFound(id.clone()));
        };
        let path = self.collections_dir().join(&stored.file);
        let entry = stored.entry;
        blocking(move || {
            // A replace committed after the catalog read removes the version's file.
            if !path.exists() {
                return Err(StoreError::Changed(entry.id.clone()));
            }
            let features = read_features(&path, &entry.attributes)?;
            Ok((entry, features))
        })
        .await
    }
}

struct EmbeddedSink {
    store_dir: PathBuf,
    plan: IngestPlan,
    attributes: Vec<Attribute>,
    previous: Option<StoredEntry>,
    version: i64,
    partial: PathBuf,
    /// `None` only while a batch is being written on a blocking thread, and after commit.
    dataset: Option<Dataset>,
    first_fid: i64,
    lock: Option<DirLock>,
}

impl Drop for EmbeddedSink {
    fn drop(&mut self) {
        // Not committed (or committed, in which case the partial file was renamed away).
        self.dataset.take();
        let _ = std::fs::remove_file(&self.partial);
    }
}

fn write_rows(ds: &mut Dataset, attributes: &[Attribute], rows: &[Row]) -> Result<()> {
    let txn = ds.start_transaction()?;
    {
        let layer = txn.layer_by_name(LAYER)?;
        let defn = layer.defn();
        let fid_idx = defn.field_index("hamn_fid")?;
        let id_idx = defn.field_index("hamn_id")?;
        let idx: Vec<usize> = attributes
            .iter()
            .map(|a| defn.field_index(&a.column))
            .collect::<std::result::Result<_, _>>()?;
        for row in rows {
            let mut f = Feature::new(defn)?;
            f.set_field_integer64(fid_idx, row.fid)?;
            f.set_field_string(id_idx, &row.id.replace('\0', "\u{fffd}"))?;
            for (i, v) in idx.iter().zip(&row.values) {
                set_value(&mut f, *i, v)?;
            }
            if let Some(wkb) = &row.geometry {
                f.set_geometry(Geometry::from_wkb(wkb)?)?;
            }
            f.create(&layer)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// For an append that replaces one publisher's part: a new file with the old features except
/// those matching `m`, and the old entry with the kept features' count, extent, geometry types
/// and temporal extent.
fn copy_except(
    old_path: &Path,
    path: &Path,
    attributes: &[Attribute],
    mut old: CatalogEntry,
    m: &super::AttributeMatch,
) -> Result<(Dataset, i64, CatalogEntry)> {
    let features = read_features(old_path, &old.attributes)?;
    let at = old
        .attributes
        .iter()
        .position(|a| a.name == m.attribute && a.kind == AttrType::Text);
    let temporal_at = old
        .datetime_field
        .as_ref()
        .and_then(|n| old.attributes.iter().position(|a| &a.name == n));
    let mut ds = create_gpkg(path, attributes)?;
    let mut rows = Vec::new();
    let mut extent = None;
    let mut types = std::collections::BTreeSet::new();
    let mut temporal: Option<[DateTime<Utc>; 2]> = None;
    let mut max_fid = 0;
    let mut kept = 0;
    for f in features {
        if at.is_some_and(|i| matches!(&f.values[i], Value::Text(v) if *v == m.value)) {
            continue;
        }
        if let Some(wkb) = &f.geometry {
            let g = Geometry::from_wkb(wkb)?;
            let e = g.envelope();
            extent = Bbox::expand(extent, [e.MinX, e.MinY, e.MaxX, e.MaxY]);
            types.insert(geometry_name(&g));
        }
        if let Some(t) = temporal_at.and_then(|i| f.values[i].instant()) {
            temporal = Some(match temporal {
                None => [t, t],
                Some([a, b]) => [a.min(t), b.max(t)],
            });
        }
        max_fid = max_fid.max(f.fid);
        kept += 1;
        let mut values = f.values;
        values.resize(attributes.len(), Value::Null);
        rows.push(Row {
            fid: f.fid,
            id: f.id,
            values,
            geometry: f.geometry,
        });
        if rows.len() >= 2000 {
            write_rows(&mut ds, attributes, &rows)?;
            rows.clear();
        }
    }
    write_rows(&mut ds, attributes, &rows)?;
    old.feature_count = kept;
    old.extent = extent;
    old.geometry_types = types.into_iter().collect();
    old.temporal_extent = temporal;
    Ok((ds, max_fid + 1, old))
}

/// The GeoJSON name of a geometry's type (OGR names it in capitals).
fn geometry_name(g: &Geometry) -> String {
    let name = g.geometry_name();
    match name.as_str() {
        "POINT" => "Point",
        "LINESTRING" => "LineString",
        "POLYGON" => "Polygon",
        "MULTIPOINT" => "MultiPoint",
        "MULTILINESTRING" => "MultiLineString",
        "MULTIPOLYGON" => "MultiPolygon",
        "GEOMETRYCOLLECTION" => "GeometryCollection",
        _ => return name,
    }
    .to_string()
}

/// Ids must be unique, as the PostGIS store enforces with an index.
fn check_unique_ids(path: &Path) -> Result<()> {
    let ds = open_gpkg(path, false)?;
    let mut layer = ds.layer_by_name(LAYER)?;
    let idx = layer.defn().field_index("hamn_id")?;
    let mut seen = std::collections::HashSet::new();
    for f in layer.features() {
        let id = f.field_as_string(idx)?.unwrap_or_default();
        if !seen.insert(id.clone()) {
            return Err(StoreError::DuplicateId(id));
        }
    }
    Ok(())
}

#[async_trait]
impl IngestSink for EmbeddedSink {
    fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    fn first_fid(&self) -> i64 {
        self.first_fid
    }

    fn previous(&self) -> Option<&CatalogEntry> {
        self.previous.as_ref().map(|p| &p.entry)
    }

    async fn write(&mut self, rows: Vec<Row>) -> Result<()> {
        let mut ds = self
            .dataset
            .take()
            .ok_or_else(|| StoreError::Task("ingest already committed".into()))?;
        let attributes = self.attributes.clone();
        let (ds, result) = tokio::task::spawn_blocking(move || {
            let r = write_rows(&mut ds, &attributes, &rows);
            (ds, r)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        self.dataset = Some(ds);
        result
    }

    async fn commit(mut self: Box<Self>, mut entry: CatalogEntry) -> Result<CatalogEntry> {
        let ds = self.dataset.take();
        let partial = self.partial.clone();
        let final_name = format!("{}.v{}.gpkg", self.plan.id, self.version);
        let final_path = self.store_dir.join("collections").join(&final_name);
        let target = final_path.clone();
        blocking(move || {
            if let Some(ds) = ds {
                ds.close()?;
            }
            check_unique_ids(&partial)?;
            File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::io(&partial, e))?;
            std::fs::rename(&partial, &target).map_err(|e| StoreError::io(&target, e))
        })
        .await?;

        let store = EmbeddedStore {
            dir: self.store_dir.clone(),
        };
        let lock = match self.lock.take() {
            Some(l) => l,
            None => store.lock_async().await?,
        };
        let result = (|| {
            let mut catalog = store.read_catalog()?;
            let old = catalog
                .collections
                .iter()
                .position(|c| c.entry.id == entry.id);
            if self.plan.mode == IngestMode::Create && old.is_some() {
                return Err(StoreError::AlreadyExists(entry.id.clone()));
            }
            entry.version = self.version;
            entry.attributes = self.attributes.clone();
            entry.updated = Utc::now();
            let stored = StoredEntry {
                entry: entry.clone(),
                file: final_name.clone(),
            };
            let old_file = match old {
                Some(i) => {
                    entry.created = catalog.collections[i].entry.created;
                    let prev = std::mem::replace(
                        &mut catalog.collections[i],
                        StoredEntry {
                            entry: entry.clone(),
                            ..stored
                        },
                    );
                    Some(prev.file)
                }
                None => {
                    catalog.collections.push(stored);
                    None
                }
            };
            store.write_catalog(&catalog)?;
            if let Some(f) = old_file.filter(|f| f != &final_name) {
                let _ = std::fs::remove_file(store.collections_dir().join(f));
            }
            Ok(entry)
        })();
        drop(lock);
        if result.is_err() {
            let _ = std::fs::remove_file(&final_path);
        }
        result
    }
}
