//! Feature encodings besides the GeoJSON page: CSV, GeoJSON text sequences (RFC 8142), NDJSON
//! and FlatGeobuf. Each writes a header, then one feature at a time into a buffer, so a page is
//! sent in chunks as it is encoded ([`Chunks`]) and never held whole in memory. No HTTP here:
//! `api::items` chooses the encoding and sends the chunks; a bulk download can reuse them.
//!
//! Coordinates: the text sequences are GeoJSON and follow the requested CRS's axis order, as the
//! GeoJSON page does (OGC API – Features Part 2); WKT, CSV x/y columns and FlatGeobuf are always
//! easting (or longitude) first, the order those formats' readers (GDAL, QGIS, spreadsheets)
//! assume whatever the CRS.

pub mod csv;
pub mod fgb;
pub mod seq;
pub mod wkt;

use std::borrow::Cow;
#[cfg(test)]
use std::sync::Arc;

use crate::catalog::{AttrType, CatalogEntry};
use crate::crs::{self, Crs};
use crate::engine::snapshot::{feature_json, Feature, Geom};
use crate::engine::Features;
#[cfg(test)]
use crate::engine::Snapshot;

/// An encoding of features other than the GeoJSON page (and HTML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Csv,
    /// GeoJSON text sequence (RFC 8142): each feature after an RS (0x1E), ending in LF.
    GeoJsonSeq,
    /// Newline-delimited GeoJSON features (ndjson.org): each feature on its own line.
    NdJson,
    FlatGeobuf,
}

impl Encoding {
    pub const ALL: [Encoding; 4] = [
        Encoding::Csv,
        Encoding::GeoJsonSeq,
        Encoding::NdJson,
        Encoding::FlatGeobuf,
    ];

    /// The `f=` value that asks for it.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Csv => "csv",
            Encoding::GeoJsonSeq => "jsonseq",
            Encoding::NdJson => "ndjson",
            Encoding::FlatGeobuf => "fgb",
        }
    }

    /// The media type, as links and `Accept` name it.
    pub fn media_type(self) -> &'static str {
        match self {
            Encoding::Csv => "text/csv",
            Encoding::GeoJsonSeq => "application/geo+json-seq",
            // tipg, pygeoapi's ogcapi models and FHIR bulk data say application/ndjson;
            // application/x-ndjson (ndjson.org, Elasticsearch) is accepted too.
            Encoding::NdJson => "application/ndjson",
            Encoding::FlatGeobuf => "application/flatgeobuf",
        }
    }

    /// The `Content-Type` of a response.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Csv => "text/csv; charset=utf-8; header=present",
            other => other.media_type(),
        }
    }

    /// The file name extension a download gets.
    pub fn extension(self) -> &'static str {
        match self {
            Encoding::Csv => "csv",
            Encoding::GeoJsonSeq => "geojsons",
            Encoding::NdJson => "geojsonl",
            Encoding::FlatGeobuf => "fgb",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Encoding::Csv => "CSV",
            Encoding::GeoJsonSeq => "GeoJSON text sequence",
            Encoding::NdJson => "Newline-delimited GeoJSON",
            Encoding::FlatGeobuf => "FlatGeobuf",
        }
    }

    /// A short mark for ETags.
    pub fn tag(self) -> &'static str {
        match self {
            Encoding::Csv => "csv",
            Encoding::GeoJsonSeq => "seq",
            Encoding::NdJson => "nd",
            Encoding::FlatGeobuf => "fgb",
        }
    }

    /// The encoding an `f=` value names: its name, a common alias or its media type.
    pub fn from_f(f: &str) -> Option<Self> {
        match f {
            "csv" => Some(Encoding::Csv),
            "jsonseq" | "geojsonseq" | "geojson-seq" => Some(Encoding::GeoJsonSeq),
            "ndjson" | "geojsonl" => Some(Encoding::NdJson),
            "fgb" | "flatgeobuf" => Some(Encoding::FlatGeobuf),
            other => Self::from_media_type(other),
        }
    }

    /// The encoding a media type (without parameters) names.
    pub fn from_media_type(media: &str) -> Option<Self> {
        match media {
            "text/csv" => Some(Encoding::Csv),
            "application/geo+json-seq" => Some(Encoding::GeoJsonSeq),
            "application/ndjson" | "application/x-ndjson" | "application/geo+x-ndjson" => {
                Some(Encoding::NdJson)
            }
            "application/flatgeobuf" | "application/vnd.flatgeobuf" => Some(Encoding::FlatGeobuf),
            _ => None,
        }
    }
}

/// A feature that cannot be written in the requested CRS.
#[derive(Debug, thiserror::Error)]
#[error("feature {id:?}: {message}")]
pub struct EncodeError {
    pub id: String,
    pub message: String,
}

/// What an encoder is asked to write: a collection's attributes (all, or those `properties`
/// selected, in its order) and the CRS.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: String,
    pub title: String,
    /// (index into the feature's values, name, type) of each attribute written.
    pub attributes: Vec<(usize, String, AttrType)>,
    pub crs: Crs,
    /// The collection's geometry types (GeoJSON names), with those of the features to write.
    pub geometry_types: Vec<&'static str>,
    /// How many features will be written.
    pub count: usize,
}

impl Layer {
    /// The layer for `features` of the collection `entry`.
    pub fn new<'a>(
        entry: &CatalogEntry,
        selected: Option<&[usize]>,
        crs: Crs,
        features: impl IntoIterator<Item = &'a Feature>,
    ) -> Self {
        let attributes = match selected {
            Some(sel) => sel.to_vec(),
            None => (0..entry.attributes.len()).collect(),
        }
        .into_iter()
        .filter_map(|i| {
            let a = entry.attributes.get(i)?;
            Some((i, a.name.clone(), a.kind))
        })
        .collect();
        let mut geometry_types: Vec<&'static str> = entry
            .geometry_types
            .iter()
            .filter_map(|t| GEOMETRY_TYPES.iter().find(|k| **k == t.as_str()).copied())
            .collect();
        let mut count = 0;
        for f in features {
            count += 1;
            if let Some(t) = f.geometry.as_ref().map(geometry_type) {
                if !geometry_types.contains(&t) {
                    geometry_types.push(t);
                }
            }
        }
        Self {
            name: entry.id.to_string(),
            title: entry.meta.title.clone(),
            attributes,
            crs,
            geometry_types,
            count,
        }
    }

    /// True when every geometry is a point (and there is at least one kind): CSV then writes
    /// x and y columns instead of WKT.
    pub fn points_only(&self) -> bool {
        self.geometry_types == ["Point"]
    }

    /// `base`, or with underscores before it until no attribute has that name (the columns
    /// the encoders add, `id`, `wkt`, `x` and `y`, must not collide with the collection's).
    pub fn column_name(&self, base: &str) -> String {
        let mut name = base.to_string();
        while self.attributes.iter().any(|(_, n, _)| *n == name) {
            name.insert(0, '_');
        }
        name
    }
}

/// GeoJSON geometry type names.
pub const GEOMETRY_TYPES: &[&str] = &[
    "Point",
    "LineString",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
    "GeometryCollection",
];

fn geometry_type(g: &Geom) -> &'static str {
    match g {
        Geom::Point(..) => "Point",
        Geom::Shape(g) => geo_type(g),
    }
}

/// The GeoJSON name of a `geo` geometry's type (lines, rectangles and triangles as GeoJSON
/// writes them).
pub fn geo_type(g: &geo::Geometry<f64>) -> &'static str {
    match g {
        geo::Geometry::Point(_) => "Point",
        geo::Geometry::Line(_) | geo::Geometry::LineString(_) => "LineString",
        geo::Geometry::Polygon(_) | geo::Geometry::Rect(_) | geo::Geometry::Triangle(_) => {
            "Polygon"
        }
        geo::Geometry::MultiPoint(_) => "MultiPoint",
        geo::Geometry::MultiLineString(_) => "MultiLineString",
        geo::Geometry::MultiPolygon(_) => "MultiPolygon",
        geo::Geometry::GeometryCollection(_) => "GeometryCollection",
    }
}

/// A feature's geometry in `crs`, easting (or longitude) first; borrowed when nothing changes.
pub fn geometry_xy(
    f: &Feature,
    crs: Crs,
) -> Result<Option<Cow<'_, geo::Geometry<f64>>>, EncodeError> {
    let Some(g) = &f.geometry else {
        return Ok(None);
    };
    if crs == Crs::Crs84 {
        return Ok(Some(match g {
            Geom::Point(x, y) => Cow::Owned(geo::Geometry::Point(geo::Point::new(*x, *y))),
            Geom::Shape(s) => Cow::Borrowed(&**s),
        }));
    }
    crs::from_crs84_xy(&g.to_geo(), crs)
        .map(|g| Some(Cow::Owned(g)))
        .map_err(|e| EncodeError {
            id: f.id().to_string(),
            message: e.to_string(),
        })
}

/// A feature as GeoJSON in `crs` (its axis order): the pre-encoded text for CRS84 with every
/// property, else encoded anew with the `selected` properties.
pub fn feature_geojson<'a>(
    entry: &CatalogEntry,
    f: &'a Feature,
    crs: Crs,
    selected: Option<&[usize]>,
) -> Result<Cow<'a, str>, EncodeError> {
    if crs == Crs::Crs84 && selected.is_none() {
        return Ok(Cow::Borrowed(f.json()));
    }
    let geometry = match (&f.geometry, crs) {
        (Some(g), Crs::Epsg(_)) => {
            Some(crs::from_crs84(&g.to_geo(), crs).map_err(|e| EncodeError {
                id: f.id().to_string(),
                message: e.to_string(),
            })?)
        }
        (g, _) => g.as_ref().map(Geom::to_geo),
    };
    Ok(Cow::Owned(feature_json(
        entry,
        f.id(),
        geometry.as_ref(),
        &f.values(),
        selected,
    )))
}

/// Writes one encoding: a head (CSV's header row, FlatGeobuf's magic bytes and header), then
/// features one by one. Nothing comes after the last feature in any of these encodings.
pub trait FeatureEncoder: Send {
    fn head(&mut self, out: &mut Vec<u8>);
    fn feature(&mut self, f: &Feature, out: &mut Vec<u8>) -> Result<(), EncodeError>;
}

/// The encoder of `encoding` for `layer`; `entry` is the collection's (GeoJSON needs it).
pub fn encoder(
    encoding: Encoding,
    entry: &CatalogEntry,
    layer: Layer,
    selected: Option<Vec<usize>>,
) -> Box<dyn FeatureEncoder> {
    match encoding {
        Encoding::Csv => Box::new(csv::Csv::new(layer)),
        Encoding::GeoJsonSeq => Box::new(seq::Seq::new(entry.clone(), layer.crs, selected, true)),
        Encoding::NdJson => Box::new(seq::Seq::new(entry.clone(), layer.crs, selected, false)),
        Encoding::FlatGeobuf => Box::new(fgb::Fgb::new(layer)),
    }
}

/// Features per chunk: a few hundred kilobytes of typical municipal features at most.
pub const CHUNK: usize = 256;

/// A page of features encoded a chunk at a time: the head with the first chunk, then a chunk
/// per call, each encoded only when asked for.
pub struct Chunks {
    features: Features,
    next: usize,
    started: bool,
    encoder: Box<dyn FeatureEncoder>,
}

impl Chunks {
    pub fn new(features: Features, encoder: Box<dyn FeatureEncoder>) -> Self {
        Self {
            features,
            next: 0,
            started: false,
            encoder,
        }
    }
}

impl Iterator for Chunks {
    type Item = Result<Vec<u8>, EncodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.started && self.next >= self.features.len() {
            return None;
        }
        let mut out = Vec::with_capacity(64 * 1024);
        if !self.started {
            self.started = true;
            self.encoder.head(&mut out);
        }
        let to = (self.next + CHUNK).min(self.features.len());
        for f in (self.next..to).filter_map(|n| self.features.get(n)) {
            if let Err(e) = self.encoder.feature(f, &mut out) {
                // Nothing more after an error.
                self.next = self.features.len();
                return Some(Err(e));
            }
        }
        self.next = to;
        Some(Ok(out))
    }
}

/// One feature (a single-item request) whole: the head and the feature.
pub fn encode_one(encoder: &mut dyn FeatureEncoder, f: &Feature) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(1024);
    encoder.head(&mut out);
    encoder.feature(f, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collation::Collation;
    use crate::store::{StoredFeature, Value};
    use gdal::vector::LayerAccess;

    /// A snapshot of features with the geometries `wkts` (None: no geometry) and a text, a
    /// number and a list each.
    fn snapshot(types: &[&str], wkts: &[Option<&str>]) -> Arc<Snapshot> {
        let entry: CatalogEntry = serde_json::from_value(serde_json::json!({
            "id": "t", "title": "T", "description": null, "keywords": [], "theme": null,
            "publisher": null, "licence": null,
            "source": {"name": "t.geojson", "sha256": "0", "layer": "t", "crs": "EPSG:4326"},
            "attributes": [
                {"name": "namn", "column": "namn", "type": "text"},
                {"name": "nr", "column": "nr", "type": "real"},
                {"name": "lista", "column": "lista", "type": "json"}
            ],
            "geometry_types": types, "id_field": null, "datetime_field": null,
            "feature_count": wkts.len(), "extent": null, "temporal_extent": null,
            "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
            "zoom": [0, 22], "version": 1
        }))
        .expect("a catalog entry");
        let stored = wkts
            .iter()
            .enumerate()
            .map(|(i, w)| StoredFeature {
                fid: i as i64 + 1,
                id: format!("f{i}"),
                values: vec![
                    Value::Text(format!("namn, \"{i}\"")),
                    if i % 2 == 0 {
                        Value::Real(i as f64 + 0.25)
                    } else {
                        Value::Null
                    },
                    Value::Json(Box::new(serde_json::json!([i, "x"]))),
                ],
                geometry: w.map(|w| {
                    gdal::vector::Geometry::from_wkt(w)
                        .and_then(|g| g.wkb())
                        .expect("WKT")
                }),
            })
            .collect();
        Arc::new(Snapshot::build(
            entry,
            stored,
            Collation::parse("sv").expect("collation"),
        ))
    }

    fn encode_all(s: &Arc<Snapshot>, encoding: Encoding, crs: Crs) -> Vec<Vec<u8>> {
        let items: Vec<u32> = (0..s.features.len() as u32).collect();
        let layer = Layer::new(&s.entry, None, crs, s.features.iter());
        let encoder = encoder(encoding, &s.entry, layer, None);
        Chunks::new(Features::held(s.clone(), items), encoder)
            .collect::<Result<Vec<_>, _>>()
            .expect("encoded")
    }

    /// A feature GDAL read: id, namn, nr and the geometry as WKT.
    type Read = (String, String, Option<f64>, Option<String>);

    /// FlatGeobuf bytes read by GDAL: the layer's geometry type and its features.
    fn read_fgb(bytes: Vec<u8>) -> (String, Vec<Read>) {
        let path = format!("/vsimem/hamn-test-{}.fgb", std::process::id());
        gdal::vsi::create_mem_file(&path, bytes).expect("vsimem");
        let out = {
            let ds = gdal::Dataset::open(&path).expect("GDAL opens the FlatGeobuf");
            let mut layer = ds.layer(0).expect("layer");
            let kind = gdal::vector::geometry_type_to_name(layer.defn().geometry_type());
            let features = layer
                .features()
                .map(|f| {
                    let text = |name: &str| {
                        f.field_index(name)
                            .ok()
                            .and_then(|i| f.field_as_string(i).ok().flatten())
                            .unwrap_or_default()
                    };
                    // A missing value is an unset field, which GDAL gives as an empty text
                    // (the gdal crate's typed getters see only null fields, not unset ones).
                    let nr = text("nr").parse::<f64>().ok();
                    (
                        text("id"),
                        text("namn"),
                        nr,
                        f.geometry().and_then(|g| g.wkt().ok()),
                    )
                })
                .collect();
            (kind, features)
        };
        gdal::vsi::unlink_mem_file(&path).expect("unlink");
        out
    }

    #[test]
    fn a_page_is_encoded_a_chunk_at_a_time() {
        let wkts: Vec<String> = (0..CHUNK * 2 + 10)
            .map(|i| format!("POINT ({} 55)", 13.0 + i as f64 / 1000.0))
            .collect();
        let s = snapshot(
            &["Point"],
            &wkts.iter().map(|w| Some(w.as_str())).collect::<Vec<_>>(),
        );
        for e in Encoding::ALL {
            let items: Vec<u32> = (0..s.features.len() as u32).collect();
            let layer = Layer::new(&s.entry, None, Crs::Crs84, s.features.iter());
            let mut chunks = Chunks::new(
                Features::held(s.clone(), items),
                encoder(e, &s.entry, layer, None),
            );
            let first = chunks.next().expect("a first chunk").expect("encoded");
            // The first chunk is ready with a CHUNK of features; the rest is not encoded yet.
            assert_eq!(chunks.next, CHUNK, "{e:?}");
            assert!(!first.is_empty());
            assert_eq!(chunks.count(), 2, "{e:?}");
        }
        let csv = encode_all(&s, Encoding::Csv, Crs::Crs84).concat();
        let text = String::from_utf8(csv).expect("UTF-8");
        assert_eq!(
            text.split("\r\n").filter(|l| !l.is_empty()).count(),
            wkts.len() + 1
        );
    }

    #[test]
    fn flatgeobuf_holds_every_geometry_type_gdal_reads() {
        let wkts = [
            Some("POLYGON ((13 55,14 55,14 56,13 55),(13.2 55.1,13.5 55.1,13.5 55.3,13.2 55.1))"),
            Some("MULTIPOLYGON (((13 55,14 55,14 56,13 55)),((15 55,16 55,16 56,15 55)))"),
            Some("POINT (13.1 55.6)"),
            Some("MULTILINESTRING ((13 55,14 56),(15 55,16 56,17 57))"),
            Some("GEOMETRYCOLLECTION (POINT (1 2),LINESTRING (1 2,3 4))"),
            None,
        ];
        let s = snapshot(
            &[
                "Polygon",
                "MultiPolygon",
                "Point",
                "MultiLineString",
                "GeometryCollection",
            ],
            &wkts,
        );
        let (kind, features) = read_fgb(encode_all(&s, Encoding::FlatGeobuf, Crs::Crs84).concat());
        assert_eq!(kind, "Unknown (any)");
        assert_eq!(features.len(), wkts.len());
        for (i, (f, w)) in features.iter().zip(wkts).enumerate() {
            assert_eq!(f.0, format!("f{i}"));
            assert_eq!(f.1, format!("namn, \"{i}\""));
            assert_eq!(f.2, (i % 2 == 0).then_some(i as f64 + 0.25));
            let want = w.map(|w| {
                gdal::vector::Geometry::from_wkt(w)
                    .and_then(|g| g.wkt())
                    .expect("wkt")
            });
            assert_eq!(f.3, want, "feature {i}");
        }

        // Polygons and multipolygons: a MultiPolygon layer, polygons as one-part multipolygons.
        let s = snapshot(&["Polygon", "MultiPolygon"], &wkts[..2]);
        let (kind, features) = read_fgb(encode_all(&s, Encoding::FlatGeobuf, Crs::Crs84).concat());
        assert_eq!(kind, "Multi Polygon");
        assert_eq!(
            features[0].3.as_deref(),
            Some("MULTIPOLYGON (((13 55,14 55,14 56,13 55),(13.2 55.1,13.5 55.1,13.5 55.3,13.2 55.1)))")
        );

        // In SWEREF 99 TM, easting first: x is about 370 000, y about 6 160 000 in Malmö.
        let s = snapshot(&["Point"], &[Some("POINT (12.97 55.59)")]);
        let (_, features) =
            read_fgb(encode_all(&s, Encoding::FlatGeobuf, Crs::Epsg(3006)).concat());
        let p = gdal::vector::Geometry::from_wkt(features[0].3.as_deref().expect("geometry"))
            .expect("wkt")
            .get_point(0);
        assert!(
            (300_000.0..400_000.0).contains(&p.0) && p.1 > 6_000_000.0,
            "{p:?}"
        );
    }

    #[test]
    fn csv_and_sequences_of_mixed_geometries() {
        let s = snapshot(
            &["Polygon", "Point"],
            &[
                Some("POLYGON ((13 55,14 55,14 56,13 55))"),
                Some("POINT (1.5 2)"),
                None,
            ],
        );
        let csv =
            String::from_utf8(encode_all(&s, Encoding::Csv, Crs::Crs84).concat()).expect("UTF-8");
        assert_eq!(
            csv,
            "id,namn,nr,lista,wkt\r\n\
             \"f0\",\"namn, \"\"0\"\"\",0.25,\"[0,\"\"x\"\"]\",\"POLYGON ((13 55, 14 55, 14 56, 13 55))\"\r\n\
             \"f1\",\"namn, \"\"1\"\"\",,\"[1,\"\"x\"\"]\",\"POINT (1.5 2)\"\r\n\
             \"f2\",\"namn, \"\"2\"\"\",2.25,\"[2,\"\"x\"\"]\",\r\n"
        );
        let seq = encode_all(&s, Encoding::GeoJsonSeq, Crs::Crs84).concat();
        let nd = encode_all(&s, Encoding::NdJson, Crs::Crs84).concat();
        let records: Vec<&[u8]> = seq.split(|b| *b == 0x1E).skip(1).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records.concat(), nd);
        for (r, f) in records.iter().zip(&s.features) {
            assert_eq!(*r, format!("{}\n", f.json()).as_bytes());
        }
    }
}
