//! CSV (RFC 4180): UTF-8 without a byte-order mark, CRLF line ends, a header row.
//!
//! Columns: `id`, the attributes (all, or those `properties` chose, in that order), then the
//! geometry: `x` and `y` for a collection of points only (what spreadsheets and QGIS's
//! delimited-text layers read without options), else `wkt` (well-known text). An added column
//! whose name an attribute already has gets underscores before it (`_id`).
//!
//! Values: text, WKT and JSON values (lists, objects, as their JSON text) are always quoted,
//! quotes doubled, so an empty text (`""`) differs from a missing value (nothing between the
//! commas); numbers as their shortest exact decimal, booleans `true`/`false`, dates and
//! date-times ISO 8601 (RFC 3339), all unquoted. A feature id that is a plain integer is written
//! as a number, others as text. Coordinates are in the requested CRS, easting (or longitude)
//! first.
//!
//! No byte-order mark: RFC 4180 and most readers (GDAL, Python's csv, R, databases) take UTF-8
//! without it, and some would read one as part of the first column's name. Excel opens such a
//! file correctly through Data › From Text/CSV.

use super::{geometry_xy, wkt, EncodeError, FeatureEncoder, Layer};
use crate::engine::snapshot::Feature;
use crate::store::Value;

pub struct Csv {
    layer: Layer,
    points: bool,
    line: String,
}

impl Csv {
    pub fn new(layer: Layer) -> Self {
        let points = layer.points_only();
        Self {
            layer,
            points,
            line: String::with_capacity(512),
        }
    }
}

/// `text` as a CSV field: quoted (quotes doubled) when it holds a comma, quote, CR or LF, or
/// always when `always`.
pub fn field(out: &mut String, text: &str, always: bool) {
    if always || text.contains([',', '"', '\r', '\n']) {
        out.push('"');
        for c in text.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// A value as a CSV field (see the module's description).
pub fn value(out: &mut String, v: &Value) {
    use std::fmt::Write as _;
    match v {
        Value::Null => {}
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Real(f) if f.is_finite() => wkt::number(out, *f),
        Value::Real(_) => {}
        Value::Text(t) => field(out, t, true),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Date(d) => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
        Value::DateTime(t) => out.push_str(&t.to_rfc3339()),
        Value::Json(j) => field(out, &j.to_string(), true),
    }
}

/// True for ids written as numbers in GeoJSON (and so unquoted here).
fn plain_integer(id: &str) -> bool {
    matches!(
        crate::engine::snapshot::id_json(id),
        serde_json::Value::Number(_)
    )
}

impl FeatureEncoder for Csv {
    fn head(&mut self, out: &mut Vec<u8>) {
        let mut line = String::new();
        field(&mut line, &self.layer.column_name("id"), false);
        for (_, name, _) in &self.layer.attributes {
            line.push(',');
            field(&mut line, name, false);
        }
        let geometry: &[&str] = if self.points { &["x", "y"] } else { &["wkt"] };
        for g in geometry {
            line.push(',');
            field(&mut line, &self.layer.column_name(g), false);
        }
        line.push_str("\r\n");
        out.extend_from_slice(line.as_bytes());
    }

    fn feature(&mut self, f: &Feature, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let line = &mut self.line;
        line.clear();
        field(line, f.id(), !plain_integer(f.id()));
        let values = f.values();
        for &(i, _, _) in &self.layer.attributes {
            line.push(',');
            if let Some(v) = values.get(i) {
                value(line, v);
            }
        }
        let g = geometry_xy(f, self.layer.crs)?;
        match (self.points, g.as_deref()) {
            (true, Some(geo::Geometry::Point(p))) => {
                line.push(',');
                wkt::number(line, p.x());
                line.push(',');
                wkt::number(line, p.y());
            }
            // Layer::points_only saw every feature's type: nothing else reaches here.
            (true, _) => line.push(','),
            (false, Some(g)) => {
                let mut text = String::with_capacity(64);
                wkt::write(&mut text, g);
                line.push(',');
                field(line, &text, true);
            }
            (false, None) => line.push(','),
        }
        line.push_str("\r\n");
        out.extend_from_slice(line.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        let mut s = String::new();
        field(&mut s, "plain", false);
        s.push('|');
        field(&mut s, "a,b", false);
        s.push('|');
        field(&mut s, "say \"hej\"\r\nnew line", false);
        s.push('|');
        field(&mut s, "", true);
        assert_eq!(s, "plain|\"a,b\"|\"say \"\"hej\"\"\r\nnew line\"|\"\"");
    }

    #[test]
    fn values() {
        let cases = [
            (Value::Null, ""),
            (Value::Integer(-42), "-42"),
            (Value::Real(0.1), "0.1"),
            (Value::Real(3.0), "3"),
            (Value::Real(f64::NAN), ""),
            (Value::Text("Malmö, \"C\"".into()), "\"Malmö, \"\"C\"\"\""),
            (Value::Boolean(true), "true"),
            (
                Value::Date(chrono::NaiveDate::from_ymd_opt(2024, 5, 1).expect("date")),
                "2024-05-01",
            ),
            (
                Value::Json(Box::new(serde_json::json!(["a", 1]))),
                "\"[\"\"a\"\",1]\"",
            ),
        ];
        for (v, want) in cases {
            let mut s = String::new();
            value(&mut s, &v);
            assert_eq!(s, want, "{v:?}");
        }
    }
}
