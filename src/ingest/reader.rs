//! Reading one layer through GDAL into typed rows: the schema, the CRS, geometry in WGS 84
//! lon/lat (reprojected with the PROJ that GDAL links, made valid where GEOS can), and values
//! coerced to their column types. Runs on a blocking thread; GDAL is not async.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Once;

use chrono::{DateTime, TimeZone, Utc};
use gdal::cpl::CslStringList;
use gdal::errors::CplErrType;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{Feature, FieldValue, Geometry, LayerAccess, OGRFieldType};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};

use super::coords;
use super::source::{PreparedSource, SourceKind, ALLOWED_DRIVERS};
use super::IngestError;
use crate::catalog::{sanitise_columns, AttrType, Attribute, Bbox};
use crate::store::{Row, Value};

thread_local! {
    /// GDAL errors raised on this thread since the last [`take_gdal_errors`].
    static GDAL_ERRORS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Routes GDAL's messages to tracing, and remembers failures per thread: GDAL's feature
/// iterator ends the same way on error as at the end of a layer, so a corrupt record halfway
/// would otherwise pass for the end of the file.
pub fn install_gdal_error_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        gdal::config::set_error_handler(|class, _code, msg| match class {
            CplErrType::Failure | CplErrType::Fatal => {
                tracing::debug!(gdal = msg, "GDAL error");
                GDAL_ERRORS.with(|e| e.borrow_mut().push(msg.to_string()));
            }
            CplErrType::Warning => tracing::debug!(gdal = msg, "GDAL warning"),
            _ => {}
        });
    });
}

fn take_gdal_errors() -> Vec<String> {
    GDAL_ERRORS.with(|e| std::mem::take(&mut *e.borrow_mut()))
}

/// How a layer's geometry is found.
#[derive(Debug, Clone)]
pub enum GeometrySource {
    /// GDAL's own geometry field.
    Native,
    /// A point from two columns (indices into the layer's fields), possibly swapped.
    Columns { x: usize, y: usize, swap: bool },
    /// WKT text in a column.
    Wkt(usize),
    /// A WGS 84 point written `[lon,lat]` (or `lon,lat`) in one column, as the French
    /// charging-point schema's `coordonneesXY`.
    Position(usize),
}

/// An attribute as read from the source: where it is in the layer and what it becomes.
#[derive(Debug, Clone)]
pub struct SourceField {
    pub index: usize,
    pub ogr_type: OGRFieldType::Type,
    pub attribute: Attribute,
}

/// Everything known about a layer before its features are read.
pub struct LayerSchema {
    pub dataset: Dataset,
    pub layer_index: usize,
    pub layer_name: String,
    pub fields: Vec<SourceField>,
    pub geometry: GeometrySource,
    /// WKT of the source CRS; `None` when the data is already WGS 84 lon/lat.
    pub source_srs_wkt: Option<String>,
    pub crs_label: String,
    pub feature_count: Option<u64>,
    pub warnings: Vec<String>,
}

/// The options of an ingest that bear on reading.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub source_crs: Option<String>,
    pub x_field: Option<String>,
    pub y_field: Option<String>,
    pub wkt_field: Option<String>,
    /// Coordinate columns (x, y) to use when the source has both and names no others: a
    /// theme's longitude/latitude columns.
    pub xy_hint: Option<(String, String)>,
    /// A `[lon,lat]` column to use when the source has it and names no other geometry.
    pub position_hint: Option<String>,
}

pub fn open(source: &PreparedSource) -> Result<Dataset, IngestError> {
    open_path(
        &source.gdal_path,
        &source.open_options,
        &source.name,
        source.allow_any_driver,
    )
}

/// Opens `gdal_path` as a read-only vector dataset; `name` is what errors call it. Unless
/// `any_driver`, only the drivers in [`ALLOWED_DRIVERS`] may open it.
pub fn open_path(
    gdal_path: &str,
    open_options: &[String],
    name: &str,
    any_driver: bool,
) -> Result<Dataset, IngestError> {
    install_gdal_error_handler();
    take_gdal_errors();
    if !any_driver {
        // The allow-list alone would keep the VRT driver out, but a VRT called `x.csv` would
        // then be read by the CSV driver as a table of XML lines: refused by name instead.
        let detected = super::gdal_ext::identify_vector_driver(gdal_path);
        // Drivers that tried the file and failed are not the open's errors.
        take_gdal_errors();
        if let Some(driver) = detected.filter(|d| !ALLOWED_DRIVERS.contains(&d.as_str())) {
            return Err(IngestError::RefusedDriver {
                name: name.to_string(),
                driver,
            });
        }
    }
    let options: Vec<&str> = open_options.iter().map(String::as_str).collect();
    let ds = Dataset::open_ex(
        gdal_path,
        DatasetOptions {
            open_flags: GdalOpenFlags::GDAL_OF_VECTOR | GdalOpenFlags::GDAL_OF_READONLY,
            open_options: if options.is_empty() {
                None
            } else {
                Some(&options)
            },
            allowed_drivers: if any_driver {
                None
            } else {
                Some(ALLOWED_DRIVERS)
            },
            ..Default::default()
        },
    );
    let errors = take_gdal_errors();
    ds.map_err(|e| IngestError::UnreadableSource {
        name: name.to_string(),
        reason: errors.last().cloned().unwrap_or_else(|| e.to_string()),
    })
}

pub fn layer_names(ds: &Dataset) -> Vec<String> {
    ds.layers().map(|l| l.name()).collect()
}

fn attr_type(ogr: OGRFieldType::Type) -> AttrType {
    match ogr {
        OGRFieldType::OFTInteger | OGRFieldType::OFTInteger64 => AttrType::Integer,
        OGRFieldType::OFTReal => AttrType::Real,
        OGRFieldType::OFTDate => AttrType::Date,
        OGRFieldType::OFTDateTime => AttrType::DateTime,
        OGRFieldType::OFTIntegerList
        | OGRFieldType::OFTInteger64List
        | OGRFieldType::OFTRealList
        | OGRFieldType::OFTStringList => AttrType::Json,
        _ => AttrType::Text,
    }
}

fn wgs84() -> Result<SpatialRef, IngestError> {
    let mut srs = SpatialRef::from_epsg(4326).map_err(|e| IngestError::Crs(e.to_string()))?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// `AUTHORITY:CODE` for a CRS where GDAL can tell it, else its name.
fn crs_label(srs: &mut SpatialRef) -> String {
    if srs.auth_name().is_none() {
        let _ = srs.auto_identify_epsg();
    }
    match (srs.auth_name(), srs.auth_code()) {
        (Some(name), Ok(code)) => format!("{name}:{code}"),
        _ => srs.name().unwrap_or_else(|| "unknown".into()),
    }
}

fn is_wgs84_lonlat(label: &str) -> bool {
    matches!(label, "EPSG:4326" | "OGC:CRS84")
}

fn user_srs(definition: &str) -> Result<SpatialRef, IngestError> {
    SpatialRef::from_definition(definition).map_err(|_| {
        IngestError::Crs(format!(
            "unknown CRS {definition:?} (try EPSG:3006, EPSG:3008 or EPSG:4326)"
        ))
    })
}

/// Reads a layer's schema and decides how to find its geometry and CRS.
pub fn analyse(
    dataset: Dataset,
    layer_index: usize,
    kind: SourceKind,
    opts: &ReadOptions,
) -> Result<LayerSchema, IngestError> {
    let mut warnings = Vec::new();
    let (layer_name, mut fields, native_geom, layer_srs, feature_count, field_names) = {
        let layer = dataset
            .layer(layer_index)
            .map_err(|e| IngestError::Crs(e.to_string()))?;
        let defn = layer.defn();
        let names: Vec<String> = defn.fields().map(|f| f.name()).collect();
        let columns = sanitise_columns(&names, &[]);
        let fields: Vec<SourceField> = defn
            .fields()
            .zip(columns)
            .enumerate()
            .map(|(index, (f, column))| SourceField {
                index,
                ogr_type: f.field_type(),
                attribute: Attribute {
                    name: f.name().trim_start_matches('\u{feff}').to_string(),
                    column,
                    kind: if super::gdal_ext::is_boolean_field(defn, index) {
                        AttrType::Boolean
                    } else {
                        attr_type(f.field_type())
                    },
                },
            })
            .collect();
        let native_geom = defn.geom_fields().count() > 0;
        let count = layer
            .try_feature_count()
            .or_else(|| Some(layer.feature_count()));
        (
            layer.name(),
            fields,
            native_geom,
            layer.spatial_ref(),
            count,
            names,
        )
    };

    let find_named = |name: &str| -> Result<usize, IngestError> {
        field_names
            .iter()
            .position(|f| f.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| IngestError::NoSuchField {
                field: name.to_string(),
                available: field_names.join(", "),
            })
    };

    let mut geometry = GeometrySource::Native;
    let mut guessed_crs = None;
    if kind == SourceKind::Csv || !native_geom {
        let wkt = match &opts.wkt_field {
            Some(name) => Some(find_named(name)?),
            None if opts.x_field.is_none() => coords::find_wkt(&field_names),
            None => None,
        };
        let xy = match (&opts.x_field, &opts.y_field) {
            (Some(x), Some(y)) => Some((find_named(x)?, find_named(y)?)),
            (None, None) => opts
                .xy_hint
                .as_ref()
                .and_then(|(x, y)| find_named(x).ok().zip(find_named(y).ok()))
                .or_else(|| coords::find_xy(&field_names)),
            _ => {
                return Err(IngestError::Options(
                    "give both --x-field and --y-field".into(),
                ))
            }
        };
        let position = match (&opts.position_hint, &opts.wkt_field, &opts.x_field) {
            (Some(p), None, None) => find_named(p).ok(),
            _ => None,
        };
        if let Some(p) = position {
            geometry = GeometrySource::Position(p);
            guessed_crs = Some("EPSG:4326");
        } else if let Some(w) = wkt {
            fields.retain(|f| f.index != w);
            geometry = GeometrySource::Wkt(w);
        } else if let Some((x, y)) = xy {
            let sample = sample_xy(&dataset, layer_index, x, y)?;
            let verdict = coords::judge(
                &sample,
                opts.source_crs.is_some(),
                coords::names_say_lonlat(&field_names[x]),
            )
            .map_err(IngestError::Crs)?;
            warnings.extend(verdict.warnings);
            guessed_crs = verdict.guessed_crs;
            geometry = GeometrySource::Columns {
                x,
                y,
                swap: verdict.swap,
            };
        } else {
            return Err(IngestError::NoGeometry {
                columns: field_names.join(", "),
            });
        }
    }

    let mut srs = match (&opts.source_crs, layer_srs, guessed_crs) {
        (Some(def), Some(mut from_file), _) => {
            let user = user_srs(def)?;
            let mut user_c = user.clone();
            if crs_label(&mut from_file) != crs_label(&mut user_c) {
                warnings.push(format!(
                    "--source-crs {def} overrides the file's own CRS ({})",
                    crs_label(&mut from_file)
                ));
            }
            user
        }
        (Some(def), None, _) => user_srs(def)?,
        (None, Some(s), _) => s,
        (None, None, Some(guess)) => user_srs(guess)?,
        (None, None, None) => {
            return Err(IngestError::Crs(
                "the source names no CRS: give --source-crs (e.g. EPSG:3006 for SWEREF 99 TM)"
                    .into(),
            ))
        }
    };
    let label = crs_label(&mut srs);
    let source_srs_wkt = if is_wgs84_lonlat(&label) {
        None
    } else {
        Some(srs.to_wkt().map_err(|e| IngestError::Crs(e.to_string()))?)
    };
    Ok(LayerSchema {
        dataset,
        layer_index,
        layer_name,
        fields,
        geometry,
        source_srs_wkt,
        crs_label: label,
        feature_count,
        warnings,
    })
}

fn sample_xy(
    ds: &Dataset,
    layer_index: usize,
    x: usize,
    y: usize,
) -> Result<Vec<(f64, f64)>, IngestError> {
    let mut layer = ds
        .layer(layer_index)
        .map_err(|e| IngestError::Crs(e.to_string()))?;
    let mut sample = Vec::new();
    for f in layer.features().take(2000) {
        if let (Some(a), Some(b)) = (number(&f, x), number(&f, y)) {
            sample.push((a, b));
        }
    }
    layer.reset_feature_reading();
    Ok(sample)
}

fn number(f: &Feature, idx: usize) -> Option<f64> {
    if !super::gdal_ext::has_value(f, idx) {
        return None;
    }
    match f.field(idx).ok()?? {
        FieldValue::RealValue(v) => Some(v),
        FieldValue::IntegerValue(v) => Some(f64::from(v)),
        FieldValue::Integer64Value(v) => Some(v as f64),
        FieldValue::StringValue(s) => coords::parse_number(&s),
        _ => None,
    }
}

/// What the reader learned about the rows it produced.
#[derive(Debug, Default)]
pub struct ReadStats {
    pub read: u64,
    pub stored: u64,
    pub repaired: Vec<(u64, String)>,
    pub rejected: Vec<(u64, String)>,
    pub extent: Option<Bbox>,
    pub geometry_types: BTreeSet<String>,
    pub temporal: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub null_geometries: u64,
    pub at_null_island: u64,
    /// Features kept although they do not fit the theme they were mapped to, and why.
    pub unfit: Vec<(u64, String)>,
    pub dropped_z: bool,
    /// Geometries with arcs (or curve types) turned into straight segments.
    pub linearised: u64,
}

/// How rows are built: for each target attribute, the source field feeding it (if any).
pub struct RowPlan {
    pub targets: Vec<(Option<usize>, AttrType)>,
    /// Source field whose value is the feature id.
    pub id_field: Option<usize>,
    /// Use the source's FID as the id when there is no id field (not when appending, where
    /// source FIDs would collide with existing features).
    pub ids_from_source_fid: bool,
    /// Target attribute index of the date/time attribute for the temporal extent.
    pub datetime_target: Option<usize>,
    pub first_fid: i64,
    pub batch_size: usize,
    /// Turns the values read (in `targets` order) into the stored row, or rejects the feature:
    /// the mapping of a source into a theme. `None`: stored as read.
    pub shape: Option<std::sync::Arc<dyn Shape>>,
}

/// A row reshaped for storage, and what did not fit but was kept.
pub struct Shaped {
    pub values: Vec<Value>,
    pub id: String,
    pub problems: Vec<String>,
}

/// Reshapes each feature's values (see [`RowPlan::shape`]).
pub trait Shape: Send + Sync {
    /// `geometry`: the GeoJSON type of the feature's geometry, `None` without one. `Err` rejects
    /// the feature with the reason given.
    fn shape(
        &self,
        row: u64,
        values: Vec<Value>,
        id: String,
        geometry: Option<&'static str>,
    ) -> Result<Shaped, String>;
}

/// Reads every feature of the layer, sending rows in batches to `send`. Returns when the layer
/// is exhausted or `send` fails (the receiver gave up).
pub fn read_rows(
    schema: &LayerSchema,
    plan: &RowPlan,
    progress: &indicatif::ProgressBar,
    mut send: impl FnMut(Vec<Row>) -> bool,
) -> Result<ReadStats, IngestError> {
    take_gdal_errors();
    let transform = match &schema.source_srs_wkt {
        Some(wkt) => {
            let mut src = SpatialRef::from_wkt(wkt).map_err(|e| IngestError::Crs(e.to_string()))?;
            src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
            Some(
                CoordTransform::new(&src, &wgs84()?)
                    .map_err(|e| IngestError::Crs(e.to_string()))?,
            )
        }
        None => None,
    };
    let mut layer = schema
        .dataset
        .layer(schema.layer_index)
        .map_err(|e| IngestError::Crs(e.to_string()))?;
    let mut stats = ReadStats::default();
    let mut batch = Vec::with_capacity(plan.batch_size);
    let mut next_fid = plan.first_fid;
    for feature in layer.features() {
        stats.read += 1;
        let row_no = stats.read;
        progress.inc(1);
        let geometry = match feature_geometry(&feature, &schema.geometry) {
            Ok(g) => g,
            Err(reason) => {
                stats.rejected.push((row_no, reason));
                continue;
            }
        };
        let geometry = match geometry {
            Some(g) => match to_wgs84_wkb(g, transform.as_ref()) {
                Ok(converted) => converted,
                Err(reason) => {
                    stats.rejected.push((row_no, reason));
                    continue;
                }
            },
            None => None,
        };
        let values: Vec<Value> = plan
            .targets
            .iter()
            .map(|(src, kind)| src.map_or(Value::Null, |i| read_value(&feature, i, *kind)))
            .collect();
        let id = match plan.id_field {
            Some(i) => match feature
                .field_as_string(i)
                .ok()
                .flatten()
                .filter(|s| !s.is_empty())
            {
                Some(id) => id,
                None => {
                    stats
                        .rejected
                        .push((row_no, "the id field is empty".into()));
                    continue;
                }
            },
            None if plan.ids_from_source_fid => feature
                .fid()
                .map_or_else(|| row_no.to_string(), |f| f.to_string()),
            None => next_fid.to_string(),
        };
        if let Some(reason) = take_gdal_errors().into_iter().next() {
            return Err(IngestError::CorruptSource {
                row: row_no,
                reason,
            });
        }
        let (values, id) = match &plan.shape {
            None => (values, id),
            Some(shape) => match shape.shape(row_no, values, id, geometry.as_ref().map(|g| g.kind))
            {
                Ok(shaped) => {
                    stats
                        .unfit
                        .extend(shaped.problems.into_iter().map(|p| (row_no, p)));
                    (shaped.values, shaped.id)
                }
                Err(reason) => {
                    stats.rejected.push((row_no, reason));
                    continue;
                }
            },
        };
        // Kept: only now does the feature count in the layer's statistics.
        let geometry = match geometry {
            Some(g) => {
                stats.count_geometry(&g);
                if let Some(what) = g.repaired {
                    stats.repaired.push((row_no, what));
                }
                Some(g.wkb)
            }
            None => {
                stats.null_geometries += 1;
                None
            }
        };
        if let Some(t) = plan.datetime_target.and_then(|i| values[i].instant()) {
            stats.temporal = Some(match stats.temporal {
                None => (t, t),
                Some((a, b)) => (a.min(t), b.max(t)),
            });
        }
        batch.push(Row {
            fid: next_fid,
            id,
            values,
            geometry,
        });
        next_fid += 1;
        stats.stored += 1;
        if batch.len() >= plan.batch_size
            && !send(std::mem::replace(
                &mut batch,
                Vec::with_capacity(plan.batch_size),
            ))
        {
            return Ok(stats);
        }
    }
    let errors = take_gdal_errors();
    if let Some(last) = errors.last() {
        return Err(IngestError::CorruptSource {
            row: stats.read + 1,
            reason: last.clone(),
        });
    }
    if let Some(expected) = schema.feature_count {
        if stats.read < expected {
            return Err(IngestError::CorruptSource {
                row: stats.read + 1,
                reason: format!(
                    "the source ended after {} of {expected} features",
                    stats.read
                ),
            });
        }
    }
    if !batch.is_empty() {
        send(batch);
    }
    Ok(stats)
}

fn feature_geometry<'f>(
    f: &'f Feature,
    how: &GeometrySource,
) -> Result<Option<Cow<'f, Geometry>>, String> {
    match how {
        // The crate hands out a geometry with a null handle for "no geometry".
        GeometrySource::Native if !super::gdal_ext::has_geometry(f) => Ok(None),
        GeometrySource::Native => Ok(f.geometry().map(Cow::Borrowed)),
        GeometrySource::Wkt(i) => match f.field_as_string(*i).ok().flatten() {
            Some(text) if !text.trim().is_empty() => Geometry::from_wkt(text.trim())
                .map(|g| Some(Cow::Owned(g)))
                .map_err(|_| {
                    format!(
                        "unreadable WKT: {}",
                        text.chars().take(60).collect::<String>()
                    )
                }),
            _ => Ok(None),
        },
        GeometrySource::Position(i) => match f.field_as_string(*i).ok().flatten() {
            Some(text) if !text.trim().is_empty() => {
                let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
                let parts: Vec<Option<f64>> = inner.split(',').map(coords::parse_number).collect();
                match parts.as_slice() {
                    [Some(x), Some(y)] => {
                        let mut p = Geometry::empty(gdal::vector::OGRwkbGeometryType::wkbPoint)
                            .map_err(|e| e.to_string())?;
                        p.add_point_2d((*x, *y));
                        Ok(Some(Cow::Owned(p)))
                    }
                    _ => Err(format!(
                        "unreadable position {:?}: write [longitude,latitude]",
                        text.chars().take(60).collect::<String>()
                    )),
                }
            }
            _ => Ok(None),
        },
        GeometrySource::Columns { x, y, swap } => match (number(f, *x), number(f, *y)) {
            (Some(a), Some(b)) => {
                let (px, py) = if *swap { (b, a) } else { (a, b) };
                let mut p = Geometry::empty(gdal::vector::OGRwkbGeometryType::wkbPoint)
                    .map_err(|e| e.to_string())?;
                p.add_point_2d((px, py));
                Ok(Some(Cow::Owned(p)))
            }
            (None, None) => Ok(None),
            _ => Err("only one of the two coordinates is given".into()),
        },
    }
}

/// A geometry as stored (ISO WKB), what was repaired, and what the layer's statistics learn
/// from it once the feature is kept.
struct Converted {
    wkb: Vec<u8>,
    repaired: Option<String>,
    kind: &'static str,
    envelope: [f64; 4],
    linearised: bool,
    dropped_z: bool,
}

impl ReadStats {
    fn count_geometry(&mut self, g: &Converted) {
        self.linearised += u64::from(g.linearised);
        self.dropped_z |= g.dropped_z;
        if g.envelope == [0.0; 4] {
            self.at_null_island += 1;
        }
        self.extent = Bbox::expand(self.extent, g.envelope);
        if !self.geometry_types.contains(g.kind) {
            self.geometry_types.insert(g.kind.to_string());
        }
    }
}

/// Reprojects, drops Z, repairs. `Ok(None)`: an empty geometry (stored as none).
fn to_wgs84_wkb(
    geom: Cow<'_, Geometry>,
    transform: Option<&CoordTransform>,
) -> Result<Option<Converted>, String> {
    if geom.is_empty() {
        return Ok(None);
    }
    // Arcs are linearised before reprojection: an arc is a circle in the source CRS, not in
    // longitude/latitude, so its vertices are placed there and then moved.
    let geom = match super::gdal_ext::linear_geometry(&geom) {
        Some(linear) => (Cow::Owned(linear), true),
        None => (geom, false),
    };
    let (geom, linearised) = geom;
    // The feature's own geometry is borrowed; a copy is made only when it must change.
    let mut geom = match transform {
        Some(ct) => Cow::Owned(
            geom.transform(ct)
                .map_err(|_| "coordinates cannot be transformed from the source CRS".to_string())?,
        ),
        None => geom,
    };
    let dropped_z = gdal::vector::geometry_type_has_z(geom.geometry_type())
        || gdal::vector::geometry_type_has_m(geom.geometry_type());
    if dropped_z {
        geom.to_mut().flatten_to_2d();
    }
    let mut repaired = None;
    let kind = type_name(gdal::vector::geometry_type_flatten(geom.geometry_type()));
    // Points are valid by construction; asking GEOS costs a conversion per feature, which
    // dominates the ingest of large point files.
    let is_point = matches!(kind, "Point" | "MultiPoint");
    if !is_point && !geom.is_valid() {
        let fixed = geom
            .make_valid(&CslStringList::new())
            .map_err(|_| "invalid geometry that could not be repaired".to_string())?;
        if fixed.is_empty() {
            return Err("invalid geometry: nothing valid remains after repair".into());
        }
        repaired = Some(format!(
            "invalid {} made valid",
            geom.geometry_name().to_lowercase()
        ));
        geom = Cow::Owned(fixed);
    }
    let env = geom.envelope();
    if env.MinX < -180.0
        || env.MaxX > 180.0
        || env.MinY < -90.0
        || env.MaxY > 90.0
        || !env.MinX.is_finite()
    {
        return Err(format!(
            "coordinates outside WGS 84 after reprojection ({:.1}, {:.1}): is the source CRS right?",
            env.MinX, env.MinY
        ));
    }
    let wkb = geom.wkb().map_err(|e| e.to_string())?;
    Ok(Some(Converted {
        wkb,
        repaired,
        kind: type_name(gdal::vector::geometry_type_flatten(geom.geometry_type())),
        envelope: [env.MinX, env.MinY, env.MaxX, env.MaxY],
        linearised,
        dropped_z,
    }))
}

/// The GeoJSON name of a (flattened) OGR geometry type.
fn type_name(ty: gdal::vector::OGRwkbGeometryType::Type) -> &'static str {
    use gdal::vector::OGRwkbGeometryType as T;
    match ty {
        T::wkbPoint => "Point",
        T::wkbLineString => "LineString",
        T::wkbPolygon => "Polygon",
        T::wkbMultiPoint => "MultiPoint",
        T::wkbMultiLineString => "MultiLineString",
        T::wkbMultiPolygon => "MultiPolygon",
        T::wkbGeometryCollection => "GeometryCollection",
        T::wkbCircularString => "CircularString",
        T::wkbCompoundCurve => "CompoundCurve",
        T::wkbCurvePolygon => "CurvePolygon",
        T::wkbMultiCurve => "MultiCurve",
        T::wkbMultiSurface => "MultiSurface",
        _ => "Geometry",
    }
}

fn read_value(f: &Feature, idx: usize, kind: AttrType) -> Value {
    if !super::gdal_ext::has_value(f, idx) {
        return Value::Null;
    }
    let raw = match f.field(idx) {
        Ok(Some(v)) => v,
        Ok(None) => return Value::Null,
        // Field types the gdal crate does not map (time, binary): GDAL's own text form.
        Err(_) if kind == AttrType::Text => {
            return f
                .field_as_string(idx)
                .ok()
                .flatten()
                .map_or(Value::Null, Value::Text)
        }
        Err(_) => return Value::Null,
    };
    coerce(raw, kind)
}

fn coerce(raw: FieldValue, kind: AttrType) -> Value {
    use FieldValue as F;
    match (raw, kind) {
        (F::IntegerValue(i), AttrType::Integer) => Value::Integer(i64::from(i)),
        (F::IntegerValue(i), AttrType::Boolean) => Value::Boolean(i != 0),
        (F::Integer64Value(i), AttrType::Integer) => Value::Integer(i),
        (F::IntegerValue(i), AttrType::Real) => Value::Real(f64::from(i)),
        (F::Integer64Value(i), AttrType::Real) => Value::Real(i as f64),
        (F::RealValue(r), AttrType::Real) => Value::Real(r),
        (F::DateValue(d), AttrType::Date) => Value::Date(d),
        (F::DateTimeValue(t), AttrType::DateTime) => Value::DateTime(t),
        (F::DateValue(d), AttrType::DateTime) => d.and_hms_opt(0, 0, 0).map_or(Value::Null, |t| {
            Value::DateTime(Utc.from_utc_datetime(&t).fixed_offset())
        }),
        (F::StringValue(s), AttrType::Text) => Value::Text(s),
        (F::IntegerListValue(v), _) => Value::Json(Box::new(v.into())),
        (F::Integer64ListValue(v), _) => Value::Json(Box::new(v.into())),
        (F::RealListValue(v), _) => Value::Json(Box::new(v.into())),
        (F::StringListValue(v), _) => Value::Json(Box::new(v.into())),
        // A value of another type in a text column (after an append merged schemas).
        (other, AttrType::Text) => Value::Text(match other {
            F::IntegerValue(i) => i.to_string(),
            F::Integer64Value(i) => i.to_string(),
            F::RealValue(r) => r.to_string(),
            F::DateValue(d) => d.to_string(),
            F::DateTimeValue(t) => t.to_rfc3339(),
            _ => String::new(),
        }),
        _ => Value::Null,
    }
}
