//! Ingest: from a file a municipality published to a committed collection in a store.
//!
//! The pipeline per layer: prepare the source (`source`), read its schema and decide geometry
//! and CRS (`reader::analyse`), open an ingest in the store (nothing visible yet), stream rows
//! from a blocking GDAL thread through a bounded channel into the store (memory stays flat in
//! the file's size), then commit with the catalog entry. Any error before the commit drops the
//! store's sink, which leaves the previous version untouched.

pub mod coords;
pub mod gdal_ext;
pub mod reader;
pub mod source;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use crate::catalog::{Bbox, CatalogEntry, CollectionId, Description, SourceInfo};
use crate::store::{IngestMode, IngestPlan, Store, StoreError};
use reader::{GeometrySource, ReadOptions, RowPlan};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("file not found: {0}")]
    NotFound(String),
    #[error("not a file: {0}")]
    NotAFile(String),
    #[error("empty file: {0}")]
    Empty(String),
    #[error("refused source {0:?}: GDAL virtual file systems, network sources and driver prefixes are not allowed (an operator can allow them with --allow-gdal-paths)")]
    RefusedPath(String),
    #[error("refused {name}: GDAL recognises its content as {driver}, which is not among the file formats hamn opens (a VRT or a network or database driver can read other files and servers); an operator can allow any driver with --allow-any-gdal-driver")]
    RefusedDriver { name: String, driver: String },
    #[error("{name}: not a vector format GDAL can read ({reason})")]
    UnreadableSource { name: String, reason: String },
    #[error("the source has no layer named {layer:?} (layers: {available})")]
    NoSuchLayer { layer: String, available: String },
    #[error("the source has no layers")]
    NoLayers,
    #[error("no field named {field:?} (fields: {available})")]
    NoSuchField { field: String, available: String },
    #[error("no geometry: no geometry field, and no coordinate (x/y, lon/lat, E/N) or WKT columns among: {columns}")]
    NoGeometry { columns: String },
    #[error("CRS: {0}")]
    Crs(String),
    #[error("unknown text encoding {0:?} (try UTF-8, ISO-8859-1 or windows-1252)")]
    UnknownEncoding(String),
    #[error("corrupt source at feature {row}: {reason}")]
    CorruptSource { row: u64, reason: String },
    #[error("no feature could be stored: all {read} were rejected (first: {first})")]
    AllRejected { read: u64, first: String },
    #[error("bad zip file {path}: {reason}")]
    BadZip { path: String, reason: String },
    #[error("{0}")]
    Options(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("ingest task failed: {0}")]
    Task(String),
    #[error("cancelled before it was committed; the collection is as it was")]
    Cancelled,
}

impl IngestError {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Everything a user can say about one ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub input: String,
    /// The collection id; by default made from the file (or layer) name.
    pub collection: Option<CollectionId>,
    pub layer: Option<String>,
    pub mode: IngestMode,
    /// Ingest even when the source is unchanged since the last ingest.
    pub force: bool,
    pub read: ReadOptions,
    pub id_field: Option<String>,
    pub datetime_field: Option<String>,
    pub encoding: Option<String>,
    pub meta: MetaOptions,
    /// Zoom levels for vector tiles: `(min, max)`, either end optional (kept from the previous
    /// version, else 0 and 22).
    pub zoom: (Option<u8>, Option<u8>),
    /// Which engine serves the collection: `None` keeps the previous version's choice,
    /// `Some(None)` lets `--max-features` decide, `Some(Some(e))` is the operator's choice.
    pub engine: Option<Option<crate::catalog::EngineChoice>>,
    /// The operator's permission to pass GDAL virtual paths and network sources through.
    pub allow_gdal_paths: bool,
    /// The operator's permission to open sources with any GDAL driver, not only the file
    /// formats in [`source::ALLOWED_DRIVERS`] (VRT and network drivers read other sources).
    pub allow_any_gdal_driver: bool,
    pub progress: bool,
    /// For a caller that watches and may stop the ingest (the admin API's jobs).
    pub watch: Option<IngestWatch>,
    /// Map the file into a theme collection as one publisher's part of it.
    pub theme: Option<ThemeIngest>,
}

/// A theme ingest: which theme, whose part, and how the publisher's columns map.
#[derive(Debug, Clone)]
pub struct ThemeIngest {
    pub theme: &'static crate::theme::Theme,
    pub source: crate::theme::SourceOrg,
    pub mapping: crate::theme::Mapping,
}

/// Shared with whoever runs an ingest in the background: features written so far, the
/// source's count when it says, and a flag that stops the ingest before its commit.
#[derive(Debug, Clone, Default)]
pub struct IngestWatch {
    pub written: Arc<AtomicU64>,
    pub total: Arc<AtomicU64>,
    pub cancel: Arc<AtomicBool>,
}

impl IngestWatch {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

impl IngestOptions {
    pub fn new(input: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            collection: None,
            layer: None,
            mode: IngestMode::Create,
            force: false,
            read: ReadOptions::default(),
            id_field: None,
            datetime_field: None,
            encoding: None,
            meta: MetaOptions::default(),
            zoom: (None, None),
            engine: None,
            allow_gdal_paths: false,
            allow_any_gdal_driver: false,
            progress: false,
            watch: None,
            theme: None,
        }
    }
}

/// Descriptive metadata given on the command line (all optional; titles default to the name).
#[derive(Debug, Clone, Default)]
pub struct MetaOptions {
    pub title: Option<String>,
    pub description: Option<String>,
    pub keywords: Vec<String>,
    pub theme: Option<String>,
    pub publisher: Option<String>,
    pub licence: Option<String>,
    pub conforms_to: Vec<String>,
    /// The language of the texts (a tag from `catalog::LANGUAGES`).
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    /// The same file (by SHA-256) was ingested last time; nothing was done.
    Unchanged,
}

/// The summary of one layer's ingest.
#[derive(Debug, Clone)]
pub struct IngestReport {
    pub collection: CollectionId,
    pub outcome: Outcome,
    pub version: i64,
    pub read: u64,
    pub stored: u64,
    pub feature_count: u64,
    pub repaired: Vec<(u64, String)>,
    pub rejected: Vec<(u64, String)>,
    /// Kept, although they do not fit the theme (a theme ingest without --strict).
    pub unfit: Vec<(u64, String)>,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.outcome == Outcome::Unchanged {
            return writeln!(
                f,
                "{}: unchanged since version {} (same SHA-256); nothing done (use --force to ingest again)",
                self.collection, self.version
            );
        }
        writeln!(
            f,
            "{}: version {} — read {}, stored {}, repaired {}, rejected {}{} in {:.2} s ({} features in the collection)",
            self.collection,
            self.version,
            self.read,
            self.stored,
            self.repaired.len(),
            self.rejected.len(),
            if self.unfit.is_empty() {
                String::new()
            } else {
                format!(", kept but not fitting the theme {}", self.unfit.len())
            },
            self.seconds,
            self.feature_count
        )?;
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        for (what, list) in [
            ("repaired", &self.repaired),
            ("rejected", &self.rejected),
            ("not fitting the theme (kept)", &self.unfit),
        ] {
            for (row, why) in list.iter().take(20) {
                writeln!(f, "  {what} feature {row}: {why}")?;
            }
            if list.len() > 20 {
                writeln!(f, "  … and {} more {what}", list.len() - 20)?;
            }
        }
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IngestError> + Send + 'static,
) -> Result<T, IngestError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IngestError::Task(e.to_string()))?
}

/// Ingests every layer of the source (or the one named by `--layer`): one collection each.
pub async fn ingest(
    store: &dyn Store,
    opts: &IngestOptions,
) -> Result<Vec<IngestReport>, IngestError> {
    let input = opts.input.clone();
    let encoding = opts.encoding.clone();
    let allow = opts.allow_gdal_paths;
    let mut prepared =
        blocking(move || source::prepare(&input, encoding.as_deref(), allow)).await?;
    prepared.allow_any_driver = opts.allow_any_gdal_driver;
    // The SHA-256 pass and GDAL's open (which parses a whole GeoJSON) each read the file; they
    // run side by side. The dataset opened here is the one the first layer is read from:
    // opening a large GeoJSON again would parse it again.
    let hashing = (!source::is_gdal_special(&opts.input)).then(|| {
        let path = std::path::PathBuf::from(&opts.input);
        tokio::task::spawn_blocking(move || source::sha256_file(&path))
    });
    let gdal_path = prepared.gdal_path.clone();
    let open_options = prepared.open_options.clone();
    let name = prepared.name.clone();
    let any_driver = prepared.allow_any_driver;
    let (dataset, layers) = blocking(move || {
        let ds = reader::open_path(&gdal_path, &open_options, &name, any_driver)?;
        let names = reader::layer_names(&ds);
        Ok((ds, names))
    })
    .await?;
    if let Some(h) = hashing {
        prepared.sha256 = h.await.map_err(|e| IngestError::Task(e.to_string()))??;
    }
    let prepared = Arc::new(prepared);
    let mut dataset = Some(dataset);
    let chosen: Vec<(usize, String)> = match &opts.layer {
        Some(name) => match layers.iter().position(|l| l == name) {
            Some(i) => vec![(i, name.clone())],
            None => {
                return Err(IngestError::NoSuchLayer {
                    layer: name.clone(),
                    available: layers.join(", "),
                })
            }
        },
        None => layers.iter().cloned().enumerate().collect(),
    };
    if chosen.is_empty() {
        return Err(IngestError::NoLayers);
    }
    if let Some(t) = &opts.theme {
        if chosen.len() > 1 {
            return Err(IngestError::Options(format!(
                "the source has {} layers ({}); a theme ingest reads one: name it with --layer",
                chosen.len(),
                layers.join(", ")
            )));
        }
        let id = match &opts.collection {
            Some(id) => id.clone(),
            None => t
                .theme
                .id
                .parse()
                .map_err(|e: crate::catalog::InvalidCollectionId| {
                    IngestError::Options(e.to_string())
                })?,
        };
        let (index, _) = chosen[0].clone();
        let title = t.theme.title.clone();
        return Ok(vec![
            ingest_layer(store, opts, prepared, dataset.take(), index, id, title).await?,
        ]);
    }
    let multi = chosen.len() > 1;
    let stem = std::path::Path::new(&prepared.name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| prepared.name.clone());
    let mut reports = Vec::new();
    for (index, layer_name) in chosen {
        let id = match (&opts.collection, multi) {
            (Some(id), false) => id.clone(),
            (Some(id), true) => CollectionId::slugify(&format!("{id}-{layer_name}"))
                .map_err(|e| IngestError::Options(e.to_string()))?,
            (None, false) => {
                CollectionId::slugify(&stem).map_err(|e| IngestError::Options(e.to_string()))?
            }
            (None, true) => CollectionId::slugify(&format!("{stem}-{layer_name}"))
                .map_err(|e| IngestError::Options(e.to_string()))?,
        };
        let default_title = if multi {
            layer_name.clone()
        } else {
            stem.clone()
        };
        let ds = dataset.take();
        reports
            .push(ingest_layer(store, opts, prepared.clone(), ds, index, id, default_title).await?);
    }
    Ok(reports)
}

async fn ingest_layer(
    store: &dyn Store,
    opts: &IngestOptions,
    prepared: Arc<source::PreparedSource>,
    dataset: Option<gdal::Dataset>,
    layer_index: usize,
    id: CollectionId,
    default_title: String,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let existing = store.get(&id).await?;
    let theme = opts.theme.as_ref();
    // A theme ingest replaces one publisher's part of the shared collection: an append that
    // leaves that publisher's old features out.
    let mode = if theme.is_some() {
        IngestMode::Append
    } else {
        opts.mode
    };
    if let (Some(t), Some(old)) = (theme, &existing) {
        if !old.meta.conforms_to.contains(&t.theme.conforms_to) {
            return Err(IngestError::Options(format!(
                "collection '{id}' exists and is not a collection of the theme {} (it does not \
                 conform to {}); give another id with --collection",
                t.theme.id, t.theme.conforms_to
            )));
        }
    }
    if let (Some(old), None) = (&existing, theme) {
        if opts.mode == IngestMode::Create {
            return Err(StoreError::AlreadyExists(id).into());
        }
        if !opts.force && !prepared.sha256.is_empty() && old.source.sha256 == prepared.sha256 {
            return Ok(IngestReport {
                collection: id,
                outcome: Outcome::Unchanged,
                version: old.version,
                read: 0,
                stored: 0,
                feature_count: old.feature_count,
                repaired: Vec::new(),
                rejected: Vec::new(),
                unfit: Vec::new(),
                warnings: Vec::new(),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
    }

    let old_zoom = existing.as_ref().map(|e| e.zoom).unwrap_or_default();
    let zoom = crate::catalog::ZoomRange::new(
        opts.zoom.0.unwrap_or(old_zoom.min()),
        opts.zoom.1.unwrap_or(old_zoom.max()),
    )
    .map_err(IngestError::Options)?;
    let engine = match opts.engine {
        Some(choice) => choice,
        None => existing.as_ref().and_then(|e| e.engine),
    };
    if engine == Some(crate::catalog::EngineChoice::Postgis) && store.postgis().is_none() {
        return Err(IngestError::Options(
            "--engine postgis needs a PostGIS store (--database-url): the embedded store has \
             no SQL engine, and serves every collection from memory"
                .into(),
        ));
    }
    let p = prepared.clone();
    let mut read_opts = opts.read.clone();
    if let Some(t) = theme.map(|t| t.theme) {
        read_opts.xy_hint = t.longitude.clone().zip(t.latitude.clone());
        read_opts.position_hint = t.position.clone();
    }
    let schema = blocking(move || {
        let ds = match dataset {
            Some(ds) => ds,
            None => reader::open(&p)?,
        };
        reader::analyse(ds, layer_index, p.kind, &read_opts)
    })
    .await?;

    let mut warnings = prepared.warnings.clone();
    warnings.extend(schema.warnings.iter().cloned());
    let columns: Vec<String> = schema
        .fields
        .iter()
        .map(|f| f.attribute.name.clone())
        .collect();
    let find = |name: &str| {
        schema
            .fields
            .iter()
            .find(|f| f.attribute.name == name)
            .ok_or_else(|| IngestError::NoSuchField {
                field: name.to_string(),
                available: columns.join(", "),
            })
    };
    let mut mapper = match theme {
        None => None,
        Some(t) => {
            let coordinates: Vec<String> = match schema.geometry {
                GeometrySource::Native => Vec::new(),
                GeometrySource::Columns { x, y, .. } => vec![x, y],
                GeometrySource::Wkt(i) | GeometrySource::Position(i) => vec![i],
            }
            .into_iter()
            .filter_map(|i| schema.fields.iter().find(|f| f.index == i))
            .map(|f| f.attribute.name.clone())
            .collect();
            let m = crate::theme::Mapper::new(
                t.theme,
                t.source.clone(),
                &t.mapping,
                &columns,
                &coordinates,
            )
            .map_err(IngestError::Options)?;
            warnings.extend(m.warnings.iter().cloned());
            Some(m)
        }
    };
    // The attributes as they will be stored, before any merge with the stored collection.
    let attributes: Vec<crate::catalog::Attribute> = match &mapper {
        Some(m) => m.attributes().to_vec(),
        None => schema.fields.iter().map(|f| f.attribute.clone()).collect(),
    };
    let id_field = match (&mapper, opts.id_field.as_deref()) {
        (None, Some(name)) => Some(find(name)?.index),
        _ => None,
    };
    let datetime_name = match &opts.datetime_field {
        Some(name) => {
            let a = attributes.iter().find(|a| &a.name == name).ok_or_else(|| {
                IngestError::NoSuchField {
                    field: name.clone(),
                    available: attributes
                        .iter()
                        .map(|a| a.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })?;
            if !a.kind.is_temporal() {
                return Err(IngestError::Options(format!(
                    "--datetime-field {name}: the field is {:?}, not a date or date-time",
                    a.kind
                )));
            }
            Some(name.clone())
        }
        None => {
            let temporal: Vec<&str> = attributes
                .iter()
                .filter(|a| a.kind.is_temporal())
                .map(|a| a.name.as_str())
                .collect();
            match temporal.as_slice() {
                [one] => Some((*one).to_string()),
                _ => None,
            }
        }
    };

    let plan = IngestPlan {
        id: id.clone(),
        mode,
        attributes,
        replacing: theme.map(|t| crate::store::AttributeMatch {
            attribute: t
                .theme
                .source_attribute
                .clone()
                .unwrap_or_else(|| crate::theme::SOURCE.to_string()),
            value: t.source.to_string(),
        }),
    };
    // The features as they are, to tell afterwards what this ingest changed (`changes`).
    let before = match &existing {
        Some(_) => crate::changes::before(store, &id).await,
        None => None,
    };
    let mut sink = store.begin_ingest(plan).await?;
    if let Some(m) = mapper.as_mut() {
        m.arrange(sink.attributes());
    }
    let row_plan = RowPlan {
        targets: match &mapper {
            // The mapper reads every column as the source has it and builds the stored row.
            Some(_) => schema
                .fields
                .iter()
                .map(|f| (Some(f.index), f.attribute.kind))
                .collect(),
            None => sink
                .attributes()
                .iter()
                .map(|a| {
                    let src = schema
                        .fields
                        .iter()
                        .find(|f| f.attribute.name == a.name)
                        .map(|f| f.index);
                    (src, a.kind)
                })
                .collect(),
        },
        id_field,
        ids_from_source_fid: sink.previous().is_none() || mode != IngestMode::Append,
        datetime_target: datetime_name
            .as_ref()
            .and_then(|n| sink.attributes().iter().position(|a| &a.name == n)),
        first_fid: sink.first_fid(),
        batch_size: 2000,
        shape: None,
    };
    let mapper = mapper.map(Arc::new);
    let mut row_plan = row_plan;
    row_plan.shape = mapper.clone().map(|m| m as Arc<dyn reader::Shape>);

    let progress = if opts.progress {
        let bar = indicatif::ProgressBar::new(schema.feature_count.unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:40}] {pos}/{len} features ({per_sec}, {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(id.to_string());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let watch = opts.watch.clone().unwrap_or_default();
    watch
        .total
        .store(schema.feature_count.unwrap_or(0), Ordering::Relaxed);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<crate::store::Row>>(4);
    let bar = progress.clone();
    let reader_watch = watch.clone();
    let layer_name = schema.layer_name.clone();
    let crs_label = schema.crs_label.clone();
    let native = matches!(schema.geometry, GeometrySource::Native);
    let reading = tokio::task::spawn_blocking(move || {
        reader::read_rows(&schema, &row_plan, &bar, |rows| {
            !reader_watch.cancelled() && tx.blocking_send(rows).is_ok()
        })
    });
    while let Some(rows) = rx.recv().await {
        let n = rows.len() as u64;
        sink.write(rows).await?;
        watch.written.fetch_add(n, Ordering::Relaxed);
    }
    let stats = reading
        .await
        .map_err(|e| IngestError::Task(e.to_string()))??;
    progress.finish_and_clear();
    // Checked last before the commit: a cancel after this point is too late to honour.
    if watch.cancelled() {
        return Err(IngestError::Cancelled);
    }

    if stats.stored == 0 && stats.read > 0 {
        let first = stats
            .rejected
            .first()
            .map(|(r, why)| format!("feature {r}: {why}"))
            .unwrap_or_default();
        return Err(IngestError::AllRejected {
            read: stats.read,
            first,
        });
    }
    if let Some(m) = mapper.as_ref().filter(|m| m.numbered() > 0) {
        warnings.push(format!(
            "{} features have an empty {}: numbered in file order instead, so their ids \
             change if the file's order does",
            m.numbered(),
            m.id_column_name().unwrap_or("id column")
        ));
    }
    if stats.null_geometries > 0 && native {
        warnings.push(format!(
            "{} features have no geometry (kept, served with null geometry)",
            stats.null_geometries
        ));
    }
    if stats.at_null_island > 0 {
        warnings.push(format!(
            "{} features lie at exactly (0, 0): probably missing coordinates in the source (kept)",
            stats.at_null_island
        ));
    }
    if stats.linearised > 0 {
        warnings.push(format!(
            "{} curved geometries (CircularString, CompoundCurve, CurvePolygon, MultiCurve, \
             MultiSurface) linearised: arcs stored as straight segments, a vertex every 4 degrees",
            stats.linearised
        ));
    }
    if stats.dropped_z {
        warnings.push("Z/M coordinates dropped: hamn stores 2D geometry".into());
    }
    if stats.geometry_types.len() > 1 {
        warnings.push(format!(
            "mixed geometry types ({}): stored in one generic geometry column",
            stats
                .geometry_types
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let previous = if mode == IngestMode::Append {
        sink.previous().cloned()
    } else {
        None
    };
    let now = Utc::now();
    let meta = &opts.meta;
    // An append's metadata comes from the version it adds to (read under the store's lock; the
    // collection may have been made since `existing` was read, by another publisher's part).
    let old_meta = previous
        .as_ref()
        .or(existing.as_ref())
        .map(|e| e.meta.clone())
        .unwrap_or_default();
    let pick = |new: &Option<String>, old: &Option<String>| new.clone().or_else(|| old.clone());
    let mut geometry_types: Vec<String> = stats.geometry_types.iter().cloned().collect();
    let mut extent = stats.extent;
    let mut feature_count = stats.stored;
    let mut temporal = stats.temporal.map(|(a, b)| [a, b]);
    if let Some(prev) = &previous {
        feature_count += prev.feature_count;
        if let Some(Bbox(b)) = prev.extent {
            extent = Bbox::expand(extent, b);
        }
        for t in &prev.geometry_types {
            if !geometry_types.contains(t) {
                geometry_types.push(t.clone());
            }
        }
        geometry_types.sort();
        temporal = match (temporal, prev.temporal_extent) {
            (Some([a, b]), Some([c, d])) => Some([a.min(c), b.max(d)]),
            (x, y) => x.or(y),
        };
    }
    let mut description = Description {
        // A title someone gave is kept across re-ingests; one hamn made from the previous
        // file's name (or layer) follows the new file.
        title: meta.title.clone().unwrap_or_else(|| {
            let made_up = theme.is_none()
                && existing.as_ref().is_some_and(|e| {
                    let stem = std::path::Path::new(&e.source.name)
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned());
                    stem.as_deref() == Some(old_meta.title.as_str())
                        || e.source.layer == old_meta.title
                });
            if old_meta.title.is_empty() || made_up {
                default_title
            } else {
                old_meta.title.clone()
            }
        }),
        description: pick(&meta.description, &old_meta.description),
        keywords: if meta.keywords.is_empty() {
            old_meta.keywords.clone()
        } else {
            meta.keywords.clone()
        },
        theme: pick(&meta.theme, &old_meta.theme),
        publisher: pick(&meta.publisher, &old_meta.publisher),
        licence: pick(&meta.licence, &old_meta.licence),
        conforms_to: if meta.conforms_to.is_empty() {
            old_meta.conforms_to.clone()
        } else {
            meta.conforms_to.clone()
        },
        language: pick(&meta.language, &old_meta.language),
    };
    if let Some(t) = theme.map(|t| t.theme) {
        // A theme collection describes itself by its theme until someone says otherwise.
        description.description = description
            .description
            .or_else(|| Some(t.description.clone()));
        if description.keywords.is_empty() {
            description.keywords = t.keywords.clone();
        }
        description.theme = description.theme.or_else(|| Some(t.id.clone()));
        if !description.conforms_to.contains(&t.conforms_to) {
            description.conforms_to.insert(0, t.conforms_to.clone());
        }
    }
    let entry = CatalogEntry {
        id: id.clone(),
        meta: description,
        source: SourceInfo {
            name: prepared.name.clone(),
            sha256: prepared.sha256.clone(),
            layer: layer_name,
            crs: crs_label,
        },
        attributes: sink.attributes().to_vec(),
        geometry_types,
        // A theme collection's ids are `<source>:<source_id>`, made by the mapping.
        id_field: if theme.is_some() {
            None
        } else {
            opts.id_field.clone()
        },
        datetime_field: datetime_name,
        feature_count,
        extent,
        temporal_extent: temporal,
        created: now,
        updated: now,
        zoom,
        engine,
        version: 0,
    };
    let stored = sink.commit(entry).await?;
    crate::changes::record(store, &id, before, stored.version).await;
    Ok(IngestReport {
        collection: id,
        outcome: Outcome::Stored,
        version: stored.version,
        read: stats.read,
        stored: stats.stored,
        feature_count: stored.feature_count,
        repaired: stats.repaired,
        rejected: stats.rejected,
        unfit: stats.unfit,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Removes one publisher's features from a theme collection (an append that keeps everything
/// else, under the same lock as any ingest). Returns the new entry and how many were removed.
pub async fn remove_source(
    store: &dyn Store,
    id: &CollectionId,
    source: &crate::theme::SourceOrg,
) -> Result<(CatalogEntry, u64), IngestError> {
    let Some(current) = store.get(id).await? else {
        return Err(StoreError::NotFound(id.clone()).into());
    };
    let Some(theme) = crate::theme::by_conformance(&current.meta.conforms_to) else {
        return Err(IngestError::Options(format!(
            "collection '{id}' is not a theme collection: delete it, or ingest with --mode replace"
        )));
    };
    let attribute = theme
        .source_attribute
        .clone()
        .unwrap_or_else(|| crate::theme::SOURCE.to_string());
    let features_before = crate::changes::before(store, id).await;
    let sink = store
        .begin_ingest(IngestPlan {
            id: id.clone(),
            mode: IngestMode::Append,
            attributes: current.attributes.clone(),
            replacing: Some(crate::store::AttributeMatch {
                attribute,
                value: source.to_string(),
            }),
        })
        .await?;
    let Some(kept) = sink.previous().cloned() else {
        return Err(StoreError::NotFound(id.clone()).into());
    };
    let before = current.feature_count;
    if kept.feature_count == before {
        return Err(IngestError::Options(format!(
            "collection '{id}' has no features of source {source}"
        )));
    }
    let mut entry = kept;
    entry.updated = Utc::now();
    let stored = sink.commit(entry).await?;
    crate::changes::record(store, id, features_before, stored.version).await;
    Ok((stored.clone(), before.saturating_sub(stored.feature_count)))
}

/// A collection with metadata and no features yet: the publisher uploads into it, or gives it
/// a source URL, later. Committed like any ingest (nothing half-made on failure).
pub async fn create_empty(
    store: &dyn Store,
    id: &CollectionId,
    meta: Description,
) -> Result<CatalogEntry, IngestError> {
    let sink = store
        .begin_ingest(IngestPlan {
            id: id.clone(),
            mode: IngestMode::Create,
            attributes: Vec::new(),
            replacing: None,
        })
        .await?;
    let now = Utc::now();
    let entry = CatalogEntry {
        id: id.clone(),
        meta,
        source: SourceInfo {
            name: String::new(),
            sha256: String::new(),
            layer: String::new(),
            crs: "OGC:CRS84".into(),
        },
        attributes: Vec::new(),
        geometry_types: Vec::new(),
        id_field: None,
        datetime_field: None,
        feature_count: 0,
        extent: None,
        temporal_extent: None,
        created: now,
        updated: now,
        zoom: crate::catalog::ZoomRange::default(),
        engine: None,
        version: 0,
    };
    Ok(sink.commit(entry).await?)
}
