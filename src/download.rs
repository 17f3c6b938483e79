//! Bulk downloads: each collection's current version as one file per format (FlatGeobuf with
//! its packed Hilbert R-tree, GeoPackage with its R*Tree), built once per version and kept in
//! a directory of this server's own. The collection document links them as `enclosure` with
//! their `length`, as the INSPIRE good practice for OGC API – Features asks; `api::download`
//! serves them (with Range requests) and pages of items stay for the rest.
//!
//! GDAL writes both formats: its FlatGeobuf and GeoPackage drivers make the spatial indices
//! and the metadata tables that QGIS and ogr2ogr read, which hand-written code would have to
//! match byte for byte. A build runs on a blocking thread, one at a time (a file of a million
//! features takes seconds of one core, and the API must keep the other), and into a temporary
//! name renamed when complete, so a half-written file is never served.
//!
//! The features come from the collection's engine in batches in `fid` order
//! (`Source::batch`): from the memory engine's snapshot, or from the PostGIS engine's table,
//! so a collection served from PostGIS has its files too, written without ever holding it whole.
//!
//! What is built when: a watcher looks at the engine's collections every second and queues
//! every (version, format) of the memory engine's not built yet; a request for one not built
//! yet waits for that same build (never a second one). Files of collections served from PostGIS
//! are built on the first request only: such a collection may be large, and every instance
//! keeps files of its own, so an instance that is never asked never spends minutes of a core
//! writing one. Files of versions the engine no longer holds are deleted, and at
//! start what an earlier run left that is not current; a file of the current version from an
//! earlier run is used again. A file's name carries a digest of its catalog entry, so a stale
//! directory of another store can never pass for this one's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
use gdal::vector::{Feature, FieldValue, LayerAccess, LayerOptions, ToGdal};
use gdal::DriverManager;
use gdal_sys::{OGRFieldSubType, OGRFieldType, OGRwkbGeometryType};

use crate::catalog::{AttrType, CatalogEntry, CollectionId};
use crate::engine::snapshot::Geom;
use crate::engine::{Engine, EngineKind, Served, Source};
use crate::store::Value;

/// A bulk download format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    FlatGeobuf,
    GeoPackage,
}

impl Format {
    pub const ALL: [Format; 2] = [Format::FlatGeobuf, Format::GeoPackage];

    /// The last path segment that names it (and the file extension).
    pub fn name(self) -> &'static str {
        match self {
            Format::FlatGeobuf => "fgb",
            Format::GeoPackage => "gpkg",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::FlatGeobuf => "application/flatgeobuf",
            Format::GeoPackage => "application/geopackage+sqlite3",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Format::FlatGeobuf => "FlatGeobuf",
            Format::GeoPackage => "GeoPackage",
        }
    }

    fn driver(self) -> &'static str {
        match self {
            Format::FlatGeobuf => "FlatGeobuf",
            Format::GeoPackage => "GPKG",
        }
    }
}

/// Why a download cannot be given.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DownloadError {
    /// The build failed (a full disk, GDAL refusing a value); logged with the details.
    #[error("the {0} file could not be built")]
    Failed(&'static str),
    /// A newer version came while this one waited to be built.
    #[error("the collection changed while its file was being prepared")]
    Superseded,
}

/// A built file.
#[derive(Debug, Clone)]
pub struct Built {
    pub path: PathBuf,
    pub length: u64,
    /// Of the file's bytes (hex): a strong validator, equal wherever the bytes are.
    pub digest: String,
}

type Key = (CollectionId, i64, Format);

enum Slot {
    /// Queued or being written; waiters watch for the result.
    Building(tokio::sync::watch::Receiver<Option<Result<Built, DownloadError>>>),
    Ready(Built),
    /// Tried again after `RETRY`.
    Failed(Instant),
}

/// A failed build is tried again after this (a full disk may have been cleared).
const RETRY: Duration = Duration::from_secs(60);

pub struct Downloads {
    dir: PathBuf,
    /// The directory, when it is a temporary one of this process (removed on exit).
    _temp: Option<tempfile::TempDir>,
    slots: Mutex<HashMap<Key, Slot>>,
    /// One build at a time.
    permit: Arc<tokio::sync::Semaphore>,
    /// Whether the leftovers of an earlier run were swept (at the first sync).
    swept: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Downloads {
    /// Files go to `dir` (created if missing), or to a temporary directory of this process.
    pub fn new(dir: Option<&Path>) -> std::io::Result<Self> {
        let (dir, temp) = match dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                (d.to_path_buf(), None)
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("hamn-downloads-")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        Ok(Self {
            dir,
            _temp: temp,
            slots: Mutex::new(HashMap::new()),
            permit: Arc::new(tokio::sync::Semaphore::new(1)),
            swept: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The length of the file of the collection version `entry` in `format`, once built.
    pub fn length(&self, entry: &CatalogEntry, format: Format) -> Option<u64> {
        match lock(&self.slots).get(&(entry.id.clone(), entry.version, format)) {
            Some(Slot::Ready(b)) => Some(b.length),
            _ => None,
        }
    }

    /// The file of `s` in `format`: at once if built, else when its build ends.
    pub async fn get(self: &Arc<Self>, s: &Served, format: Format) -> Result<Built, DownloadError> {
        let mut rx = {
            let mut slots = lock(&self.slots);
            match slots.get(&key(s.entry(), format)) {
                Some(Slot::Ready(b)) => return Ok(b.clone()),
                Some(Slot::Building(rx)) => rx.clone(),
                Some(Slot::Failed(at)) if at.elapsed() < RETRY => {
                    return Err(DownloadError::Failed(format.title()))
                }
                _ => self.start(&mut slots, s.clone(), format),
            }
        };
        let result = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| DownloadError::Superseded)?;
        result.clone().unwrap_or(Err(DownloadError::Superseded))
    }

    /// Queues the build of `s` in `format`; `slots` is the locked map.
    fn start(
        self: &Arc<Self>,
        slots: &mut HashMap<Key, Slot>,
        s: Served,
        format: Format,
    ) -> tokio::sync::watch::Receiver<Option<Result<Built, DownloadError>>> {
        let (tx, rx) = tokio::sync::watch::channel(None);
        let k = key(s.entry(), format);
        slots.insert(k.clone(), Slot::Building(rx.clone()));
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = this.permit.clone().acquire_owned().await else {
                return;
            };
            // Pruned while queued: the version is gone, so is the need.
            if !matches!(lock(&this.slots).get(&k), Some(Slot::Building(_))) {
                let _ = tx.send(Some(Err(DownloadError::Superseded)));
                return;
            }
            let path = this.dir.join(file_name(s.entry(), format));
            let started = Instant::now();
            let built = {
                let (s, path) = (s.clone(), path.clone());
                // GDAL writes on a blocking thread, which waits there for each batch.
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    // Built before a restart: the name says which version and entry, and a
                    // file only gets its name once complete.
                    if let Ok(found) = digest(&path) {
                        return Ok(found);
                    }
                    build(s.as_ref(), &runtime, format, &path)
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
            };
            let result = match built {
                Ok((length, digest)) => {
                    tracing::info!(collection = %s.entry().id, version = s.version(), format = format.name(), bytes = length, seconds = started.elapsed().as_secs_f64(), "download built");
                    Ok(Built {
                        path,
                        length,
                        digest,
                    })
                }
                Err(e) => {
                    // A version replaced meanwhile (its table dropped) is no failure to report.
                    if lock(&this.slots).contains_key(&k) {
                        tracing::warn!(collection = %s.entry().id, version = s.version(), format = format.name(), error = %e, "download build failed");
                    }
                    Err(DownloadError::Failed(format.title()))
                }
            };
            {
                let mut slots = lock(&this.slots);
                match (&result, slots.get(&k)) {
                    // Pruned while built: its file goes too.
                    (Ok(b), None) => {
                        let _ = std::fs::remove_file(&b.path);
                    }
                    (Ok(b), Some(_)) => {
                        slots.insert(k, Slot::Ready(b.clone()));
                    }
                    (Err(_), Some(_)) => {
                        slots.insert(k, Slot::Failed(Instant::now()));
                    }
                    (Err(_), None) => {}
                }
            }
            let _ = tx.send(Some(result));
        });
        rx
    }

    /// Brings the files in line with what `engine` serves: queues the missing ones of the
    /// current versions, deletes those of versions no longer held.
    pub fn sync(self: &Arc<Self>, engine: &Engine) {
        let current = engine.list();
        let mut held: std::collections::HashSet<(CollectionId, i64)> = current
            .iter()
            .map(|s| (s.entry().id.clone(), s.version()))
            .collect();
        held.extend(engine.previous_versions());
        if !self.swept.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.sweep(&held);
        }
        let mut slots = lock(&self.slots);
        let gone: Vec<Key> = slots
            .keys()
            .filter(|(id, v, _)| !held.contains(&(id.clone(), *v)))
            .cloned()
            .collect();
        for k in gone {
            if let Some(Slot::Ready(b)) = slots.remove(&k) {
                if let Err(e) = std::fs::remove_file(&b.path) {
                    tracing::warn!(path = %b.path.display(), error = %e, "cannot delete an old download");
                }
            }
        }
        for s in current.iter().filter(|s| s.engine() == EngineKind::Memory) {
            for format in Format::ALL {
                let due = match slots.get(&key(s.entry(), format)) {
                    None => true,
                    Some(Slot::Failed(at)) => at.elapsed() >= RETRY,
                    Some(_) => false,
                };
                if due {
                    self.start(&mut slots, s.clone(), format);
                }
            }
        }
    }

    /// Deletes what an earlier run left in the directory: files of versions not held now and
    /// unfinished ones. Only names this module makes are touched.
    fn sweep(&self, held: &std::collections::HashSet<(CollectionId, i64)>) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = Format::ALL
                .iter()
                .any(|f| name.ends_with(&format!(".{}", f.name())));
            if !ours {
                continue;
            }
            let keep = !name.contains(".partial.")
                && held
                    .iter()
                    .any(|(id, v)| name.starts_with(&format!("{id}-v{v}-")));
            if !keep {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Forgets the file of `entry`'s version in `format` (it went missing): the next request
    /// or sync builds it again.
    pub fn forget(&self, entry: &CatalogEntry, format: Format) {
        let mut slots = lock(&self.slots);
        if matches!(slots.get(&key(entry, format)), Some(Slot::Ready(_))) {
            slots.remove(&key(entry, format));
        }
    }

    /// Keeps the files in line with `engine` from now on (every second; a sync costs a
    /// look at each collection's version).
    pub fn watch(self: &Arc<Self>, engine: Arc<Engine>) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.sync(&engine);
            }
        });
    }
}

fn key(entry: &CatalogEntry, format: Format) -> Key {
    (entry.id.clone(), entry.version, format)
}

/// `{id}-v{version}-{digest}.{ext}`: the digest of the catalog entry tells apart two stores'
/// collections of one id and version.
fn file_name(entry: &CatalogEntry, format: Format) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(entry).unwrap_or_default();
    let hex = hex::encode(&sha2::Sha256::digest(&bytes)[..6]);
    format!("{}-v{}-{hex}.{}", entry.id, entry.version, format.name())
}

/// Writes `s` as `format` to `path` (through a temporary name beside it) and returns its
/// length and digest.
fn build(
    s: &dyn Source,
    runtime: &tokio::runtime::Handle,
    format: Format,
    path: &Path,
) -> Result<(u64, String), String> {
    let partial = path.with_extension(format!("partial.{}", format.name()));
    let _ = std::fs::remove_file(&partial);
    let result = write(s, runtime, format, &partial)
        .and_then(|()| digest(&partial).map_err(|e| e.to_string()));
    match result {
        Ok(d) => {
            std::fs::rename(&partial, path).map_err(|e| e.to_string())?;
            Ok(d)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// The length of the file at `path` and the first 128 bits of its SHA-256, in hex.
fn digest(path: &Path) -> std::io::Result<(u64, String)> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let length = std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((length, hex::encode(&hasher.finalize()[..16])))
}

/// The name the feature id column gets: `id`, or with underscores before it until no
/// attribute has that name.
fn id_column(entry: &CatalogEntry) -> String {
    let mut name = "id".to_string();
    while entry.attributes.iter().any(|a| a.name == name) {
        name.insert(0, '_');
    }
    name
}

fn field_type(kind: AttrType) -> (OGRFieldType::Type, OGRFieldSubType::Type) {
    match kind {
        AttrType::Integer => (OGRFieldType::OFTInteger64, OGRFieldSubType::OFSTNone),
        AttrType::Boolean => (OGRFieldType::OFTInteger, OGRFieldSubType::OFSTBoolean),
        AttrType::Real => (OGRFieldType::OFTReal, OGRFieldSubType::OFSTNone),
        AttrType::Text => (OGRFieldType::OFTString, OGRFieldSubType::OFSTNone),
        AttrType::Date => (OGRFieldType::OFTDate, OGRFieldSubType::OFSTNone),
        AttrType::DateTime => (OGRFieldType::OFTDateTime, OGRFieldSubType::OFSTNone),
        AttrType::Json => (OGRFieldType::OFTString, OGRFieldSubType::OFSTJSON),
    }
}

/// Features written per GeoPackage transaction (SQLite commits are the cost).
const BATCH: usize = 50_000;

/// Writes every feature of `s`, batch by batch (each fetched through `runtime`), as `format` to
/// `path`.
fn write(
    s: &dyn Source,
    runtime: &tokio::runtime::Handle,
    format: Format,
    path: &Path,
) -> Result<(), String> {
    let gdal = |e: gdal::errors::GdalError| e.to_string();
    let mut ds = create(s.entry(), format, path).map_err(gdal)?;
    let mut after = None;
    loop {
        let batch = runtime
            .block_on(s.batch(after, BATCH))
            .map_err(|e| e.to_string())?;
        let Some(last) = batch.last() else { break };
        after = Some(last.fid);
        match format {
            Format::GeoPackage => {
                let txn = ds.start_transaction().map_err(gdal)?;
                write_features(&txn.layer(0).map_err(gdal)?, batch.iter()).map_err(gdal)?;
                txn.commit().map_err(gdal)?;
            }
            Format::FlatGeobuf => {
                write_features(&ds.layer(0).map_err(gdal)?, batch.iter()).map_err(gdal)?
            }
        }
        if batch.len() < BATCH {
            break;
        }
    }
    // Closing writes FlatGeobuf's index and header, and GeoPackage's last pages.
    ds.close().map_err(gdal)
}

/// The file with its one layer and the layer's fields, no features yet.
fn create(
    entry: &CatalogEntry,
    format: Format,
    path: &Path,
) -> gdal::errors::Result<gdal::Dataset> {
    let driver = DriverManager::get_driver_by_name(format.driver())?;
    let mut ds = driver.create_vector_only(path)?;
    let mut srs = SpatialRef::from_epsg(4326)?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    // FlatGeobuf's index is on by default (GDAL 3.6 takes no title for its header);
    // GeoPackage's contents table gets the title and description.
    let options: Vec<String> = match format {
        Format::FlatGeobuf => vec!["SPATIAL_INDEX=YES".into()],
        Format::GeoPackage => vec![
            "SPATIAL_INDEX=YES".into(),
            "GEOMETRY_NAME=geom".into(),
            format!("IDENTIFIER={}", entry.meta.title),
            format!(
                "DESCRIPTION={}",
                entry.meta.description.as_deref().unwrap_or_default()
            ),
        ],
    };
    let options: Vec<String> = options.into_iter().map(|o| o.replace('\0', "")).collect();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    {
        let layer = ds.create_layer(LayerOptions {
            name: entry.id.as_str(),
            srs: Some(&srs),
            ty: geometry_type(&entry.geometry_types),
            options: Some(&options),
        })?;
        crate::ingest::gdal_ext::add_field(
            &layer,
            &id_column(entry),
            (OGRFieldType::OFTString, OGRFieldSubType::OFSTNone),
        )?;
        for a in &entry.attributes {
            crate::ingest::gdal_ext::add_field(&layer, &a.name, field_type(a.kind))?;
        }
    }
    Ok(ds)
}

fn write_features<'a>(
    layer: &gdal::vector::Layer,
    features: impl Iterator<Item = &'a crate::engine::snapshot::Feature>,
) -> gdal::errors::Result<()> {
    let defn = layer.defn();
    for f in features {
        let mut out = Feature::new(defn)?;
        out.set_field_string(0, &f.id().replace('\0', "\u{fffd}"))?;
        for (i, v) in f.values().iter().enumerate() {
            set_value(&mut out, i + 1, v)?;
        }
        if let Some(g) = &f.geometry {
            let g = match g {
                Geom::Point(x, y) => geo::Point::new(*x, *y).to_gdal()?,
                Geom::Shape(g) => g.to_gdal()?,
            };
            out.set_geometry(g)?;
        }
        out.create(layer)?;
    }
    Ok(())
}

fn set_value(f: &mut Feature, idx: usize, v: &Value) -> gdal::errors::Result<()> {
    match v {
        // Left unset: both formats read an unset field as null.
        Value::Null => {}
        Value::Integer(i) => f.set_field_integer64(idx, *i)?,
        Value::Real(r) => f.set_field_double(idx, *r)?,
        Value::Boolean(b) => f.set_field_integer(idx, i32::from(*b))?,
        // GDAL takes C strings: a NUL inside a value would cut it, so it is replaced.
        Value::Text(t) => f.set_field_string(idx, &t.replace('\0', "\u{fffd}"))?,
        Value::Date(d) => f.set_field(idx, &FieldValue::DateValue(*d))?,
        Value::DateTime(t) => f.set_field_datetime(idx, *t)?,
        Value::Json(j) => f.set_field_string(idx, &j.to_string().replace('\0', "\u{fffd}"))?,
    }
    Ok(())
}

/// The layer geometry type of a collection with `types` (GeoJSON names): its one type, else
/// any (each feature then carries its own).
fn geometry_type(types: &[String]) -> OGRwkbGeometryType::Type {
    let one = |t: &str| match t {
        "Point" => OGRwkbGeometryType::wkbPoint,
        "LineString" => OGRwkbGeometryType::wkbLineString,
        "Polygon" => OGRwkbGeometryType::wkbPolygon,
        "MultiPoint" => OGRwkbGeometryType::wkbMultiPoint,
        "MultiLineString" => OGRwkbGeometryType::wkbMultiLineString,
        "MultiPolygon" => OGRwkbGeometryType::wkbMultiPolygon,
        "GeometryCollection" => OGRwkbGeometryType::wkbGeometryCollection,
        _ => OGRwkbGeometryType::wkbUnknown,
    };
    match types {
        [t] => one(t),
        _ => OGRwkbGeometryType::wkbUnknown,
    }
}
