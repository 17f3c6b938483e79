//! FlatGeobuf (flatgeobuf.org, version 3): the magic bytes, the header, then each feature as
//! it is encoded. Written with the `flatgeobuf` crate's FlatBuffers schema types rather than
//! its `FgbWriter`, which gathers every feature in a temporary file and writes the file at the
//! end: a page has no spatial index (`index_node_size` 0, as the format allows for a stream),
//! so nothing waits for the last feature.
//!
//! The header: the collection's id as the layer name and its title, the feature count, the CRS
//! as an EPSG code (CRS84 as EPSG:4326: FlatGeobuf coordinates are easting or longitude first
//! in every CRS), one column per attribute after an `id` column (the feature id, as text), and
//! the geometry type: the collection's one type; its multi type when it mixes single and multi
//! types of one kind (single geometries are written as multi ones of one part, as FlatGeobuf's
//! own writer promotes them); else Unknown, with each feature's type on its geometry.
//!
//! Column types: integer Long, real Double, text String, boolean Bool, date and date-time
//! DateTime (ISO 8601 text), JSON values Json (their JSON text). A missing value is left out.

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use flatgeobuf::{
    Column, ColumnArgs, ColumnType, Crs as FgbCrs, CrsArgs, FeatureArgs, GeometryArgs,
    GeometryType, Header, HeaderArgs,
};

use super::{geometry_xy, EncodeError, FeatureEncoder, Layer};
use crate::catalog::AttrType;
use crate::crs::Crs;
use crate::engine::snapshot::Feature;
use crate::store::Value;

/// `fgb`, version 3, `fgb`, 0.
pub const MAGIC: [u8; 8] = [b'f', b'g', b'b', flatgeobuf::VERSION, b'f', b'g', b'b', 0];

pub struct Fgb {
    layer: Layer,
    fbb: FlatBufferBuilder<'static>,
    /// The header's geometry type, and whether single geometries are promoted to it.
    geometry_type: GeometryType,
    promote: bool,
    properties: Vec<u8>,
}

impl Fgb {
    pub fn new(layer: Layer) -> Self {
        let (geometry_type, promote) = header_type(&layer.geometry_types);
        Self {
            layer,
            fbb: FlatBufferBuilder::with_capacity(4096),
            geometry_type,
            promote,
            properties: Vec::with_capacity(256),
        }
    }
}

fn fgb_type(name: &str) -> GeometryType {
    match name {
        "Point" => GeometryType::Point,
        "LineString" => GeometryType::LineString,
        "Polygon" => GeometryType::Polygon,
        "MultiPoint" => GeometryType::MultiPoint,
        "MultiLineString" => GeometryType::MultiLineString,
        "MultiPolygon" => GeometryType::MultiPolygon,
        "GeometryCollection" => GeometryType::GeometryCollection,
        _ => GeometryType::Unknown,
    }
}

/// The header's geometry type for features of `types`, and whether single geometries are
/// promoted to it.
fn header_type(types: &[&str]) -> (GeometryType, bool) {
    match types {
        [] => (GeometryType::Unknown, false),
        [one] => (fgb_type(one), false),
        _ => {
            for (single, multi) in [
                ("Point", "MultiPoint"),
                ("LineString", "MultiLineString"),
                ("Polygon", "MultiPolygon"),
            ] {
                if types.iter().all(|t| *t == single || *t == multi) {
                    return (fgb_type(multi), true);
                }
            }
            (GeometryType::Unknown, false)
        }
    }
}

fn column_type(kind: AttrType) -> ColumnType {
    match kind {
        AttrType::Integer => ColumnType::Long,
        AttrType::Real => ColumnType::Double,
        AttrType::Text => ColumnType::String,
        AttrType::Boolean => ColumnType::Bool,
        AttrType::Date | AttrType::DateTime => ColumnType::DateTime,
        AttrType::Json => ColumnType::Json,
    }
}

impl FeatureEncoder for Fgb {
    fn head(&mut self, out: &mut Vec<u8>) {
        let fbb = &mut self.fbb;
        fbb.reset();
        let id_name = self.layer.column_name("id");
        let mut columns = Vec::with_capacity(self.layer.attributes.len() + 1);
        let all = std::iter::once((id_name.as_str(), AttrType::Text)).chain(
            self.layer
                .attributes
                .iter()
                .map(|(_, name, kind)| (name.as_str(), *kind)),
        );
        for (n, (name, kind)) in all.enumerate() {
            let name = fbb.create_string(name);
            columns.push(Column::create(
                fbb,
                &ColumnArgs {
                    name: Some(name),
                    type_: column_type(kind),
                    nullable: n > 0,
                    unique: n == 0,
                    ..Default::default()
                },
            ));
        }
        let columns = fbb.create_vector(&columns);
        let org = fbb.create_string("EPSG");
        let code = match self.layer.crs {
            Crs::Crs84 => 4326,
            Crs::Epsg(c) => i32::try_from(c).unwrap_or(0),
        };
        let crs = FgbCrs::create(
            fbb,
            &CrsArgs {
                org: Some(org),
                code,
                ..Default::default()
            },
        );
        let name = fbb.create_string(&self.layer.name);
        let title = fbb.create_string(&self.layer.title);
        let header = Header::create(
            fbb,
            &HeaderArgs {
                name: Some(name),
                title: Some(title),
                geometry_type: self.geometry_type,
                columns: Some(columns),
                features_count: self.layer.count as u64,
                // No spatial index: features follow the header in the order given.
                index_node_size: 0,
                crs: Some(crs),
                ..Default::default()
            },
        );
        fbb.finish_size_prefixed(header, None);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(fbb.finished_data());
    }

    fn feature(&mut self, f: &Feature, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let g = geometry_xy(f, self.layer.crs)?;
        let props = &mut self.properties;
        props.clear();
        string_property(props, 0, f.id());
        let values = f.values();
        for (n, &(i, _, kind)) in self.layer.attributes.iter().enumerate() {
            let column = u16::try_from(n + 1).unwrap_or(u16::MAX);
            if let Some(v) = values.get(i) {
                property(props, column, kind, v);
            }
        }
        let fbb = &mut self.fbb;
        fbb.reset();
        let geometry = g.as_deref().map(|g| {
            let typed = self.geometry_type == GeometryType::Unknown;
            match g {
                geo::Geometry::Polygon(p)
                    if self.promote && self.geometry_type == GeometryType::MultiPolygon =>
                {
                    let part = polygon(fbb, p, None);
                    let parts = fbb.create_vector(&[part]);
                    flatgeobuf::Geometry::create(
                        fbb,
                        &GeometryArgs {
                            parts: Some(parts),
                            ..Default::default()
                        },
                    )
                }
                g => geometry(fbb, g, typed),
            }
        });
        let properties = fbb.create_vector(props);
        let feature = flatgeobuf::Feature::create(
            fbb,
            &FeatureArgs {
                geometry,
                properties: Some(properties),
                columns: None,
            },
        );
        fbb.finish_size_prefixed(feature, None);
        out.extend_from_slice(fbb.finished_data());
        Ok(())
    }
}

fn string_property(props: &mut Vec<u8>, column: u16, text: &str) {
    props.extend_from_slice(&column.to_le_bytes());
    props.extend_from_slice(&u32::try_from(text.len()).unwrap_or(u32::MAX).to_le_bytes());
    props.extend_from_slice(text.as_bytes());
}

/// A value in the column's type; a value of another kind than its column's (not made by
/// ingest, but possible in a JSON column's neighbour) as text where the column takes text,
/// else left out.
fn property(props: &mut Vec<u8>, column: u16, kind: AttrType, v: &Value) {
    let start = props.len();
    props.extend_from_slice(&column.to_le_bytes());
    match (column_type(kind), v) {
        (_, Value::Null) => props.truncate(start),
        (ColumnType::Long, Value::Integer(i)) => props.extend_from_slice(&i.to_le_bytes()),
        (ColumnType::Double, Value::Real(r)) => props.extend_from_slice(&r.to_le_bytes()),
        (ColumnType::Double, Value::Integer(i)) => {
            props.extend_from_slice(&(*i as f64).to_le_bytes())
        }
        (ColumnType::Bool, Value::Boolean(b)) => props.push(u8::from(*b)),
        (ColumnType::DateTime, Value::Date(d)) => {
            props.truncate(start);
            string_property(props, column, &d.format("%Y-%m-%d").to_string());
        }
        (ColumnType::DateTime, Value::DateTime(t)) => {
            props.truncate(start);
            string_property(props, column, &t.to_rfc3339());
        }
        (ColumnType::String, Value::Text(t)) => {
            props.truncate(start);
            string_property(props, column, t);
        }
        (ColumnType::String | ColumnType::Json, v) => {
            props.truncate(start);
            let text = match v {
                Value::Json(j) => j.to_string(),
                Value::Text(t) if kind == AttrType::Json => {
                    serde_json::Value::String(t.clone()).to_string()
                }
                Value::Text(t) => t.clone(),
                other => other.to_json().to_string(),
            };
            string_property(props, column, &text);
        }
        _ => props.truncate(start),
    }
}

type Fbb = FlatBufferBuilder<'static>;
type GeometryOffset = WIPOffset<flatgeobuf::Geometry<'static>>;

/// A geometry with its coordinates (`xy`, pairs) and part ends (in points), `type_` when
/// `typed`.
fn simple(
    fbb: &mut Fbb,
    ty: GeometryType,
    typed: bool,
    xy: &[f64],
    ends: &[u32],
) -> GeometryOffset {
    let xy = fbb.create_vector(xy);
    let ends = (ends.len() > 1).then(|| fbb.create_vector(ends));
    flatgeobuf::Geometry::create(
        fbb,
        &GeometryArgs {
            xy: Some(xy),
            ends,
            type_: if typed { ty } else { GeometryType::Unknown },
            ..Default::default()
        },
    )
}

fn flat<'a>(cs: impl IntoIterator<Item = &'a geo::Coord<f64>>, xy: &mut Vec<f64>) {
    for c in cs {
        xy.push(c.x);
        xy.push(c.y);
    }
}

fn polygon(fbb: &mut Fbb, p: &geo::Polygon<f64>, ty: Option<GeometryType>) -> GeometryOffset {
    let mut xy = Vec::with_capacity(p.exterior().0.len() * 2);
    let mut ends = Vec::with_capacity(1 + p.interiors().len());
    for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
        flat(&ring.0, &mut xy);
        ends.push((xy.len() / 2) as u32);
    }
    simple(
        fbb,
        ty.unwrap_or(GeometryType::Polygon),
        ty.is_some(),
        &xy,
        &ends,
    )
}

/// `g` as a FlatGeobuf geometry; its type written when `typed` (a header of Unknown type, or a
/// collection's member).
fn geometry(fbb: &mut Fbb, g: &geo::Geometry<f64>, typed: bool) -> GeometryOffset {
    use geo::Geometry as G;
    match g {
        G::Point(p) => simple(fbb, GeometryType::Point, typed, &[p.x(), p.y()], &[]),
        G::Line(l) => simple(
            fbb,
            GeometryType::LineString,
            typed,
            &[l.start.x, l.start.y, l.end.x, l.end.y],
            &[],
        ),
        G::LineString(l) => {
            let mut xy = Vec::with_capacity(l.0.len() * 2);
            flat(&l.0, &mut xy);
            simple(fbb, GeometryType::LineString, typed, &xy, &[])
        }
        G::Polygon(p) => polygon(fbb, p, typed.then_some(GeometryType::Polygon)),
        G::Rect(r) => polygon(fbb, &r.to_polygon(), typed.then_some(GeometryType::Polygon)),
        G::Triangle(t) => polygon(fbb, &t.to_polygon(), typed.then_some(GeometryType::Polygon)),
        G::MultiPoint(m) => {
            let mut xy = Vec::with_capacity(m.0.len() * 2);
            flat(m.0.iter().map(|p| &p.0), &mut xy);
            simple(fbb, GeometryType::MultiPoint, typed, &xy, &[])
        }
        G::MultiLineString(m) => {
            let mut xy = Vec::new();
            let mut ends = Vec::with_capacity(m.0.len());
            for l in &m.0 {
                flat(&l.0, &mut xy);
                ends.push((xy.len() / 2) as u32);
            }
            simple(fbb, GeometryType::MultiLineString, typed, &xy, &ends)
        }
        G::MultiPolygon(m) => {
            let parts: Vec<_> = m.0.iter().map(|p| polygon(fbb, p, None)).collect();
            let parts = fbb.create_vector(&parts);
            flatgeobuf::Geometry::create(
                fbb,
                &GeometryArgs {
                    parts: Some(parts),
                    type_: if typed {
                        GeometryType::MultiPolygon
                    } else {
                        GeometryType::Unknown
                    },
                    ..Default::default()
                },
            )
        }
        G::GeometryCollection(c) => {
            let parts: Vec<_> = c.0.iter().map(|g| geometry(fbb, g, true)).collect();
            let parts = fbb.create_vector(&parts);
            flatgeobuf::Geometry::create(
                fbb,
                &GeometryArgs {
                    parts: Some(parts),
                    type_: GeometryType::GeometryCollection,
                    ..Default::default()
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_types() {
        assert_eq!(header_type(&[]), (GeometryType::Unknown, false));
        assert_eq!(header_type(&["Point"]), (GeometryType::Point, false));
        assert_eq!(
            header_type(&["MultiPolygon", "Polygon"]),
            (GeometryType::MultiPolygon, true)
        );
        assert_eq!(
            header_type(&["Polygon", "MultiPolygon", "Point"]),
            (GeometryType::Unknown, false)
        );
    }
}
