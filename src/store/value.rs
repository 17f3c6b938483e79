//! Attribute values and rows as they travel from ingest to a store, and their binary
//! encoding for PostgreSQL's COPY.

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, FixedOffset, NaiveDate};
use postgres_types::{to_sql_checked, IsNull, ToSql, Type};

/// One attribute value. Ingest coerces every value to its column's [`crate::catalog::AttrType`],
/// so a store can rely on the variant matching the column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Boolean(bool),
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
    /// Boxed: `serde_json::Value` is 72 bytes and would make every value that large.
    Json(Box<serde_json::Value>),
}

impl Value {
    /// A date or date-time as an instant (a date at its midnight in UTC), for temporal extents.
    pub fn instant(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        use chrono::TimeZone;
        match self {
            Value::Date(d) => d
                .and_hms_opt(0, 0, 0)
                .map(|t| chrono::Utc.from_utc_datetime(&t)),
            Value::DateTime(t) => Some(t.with_timezone(&chrono::Utc)),
            _ => None,
        }
    }

    /// The value as JSON, the way the API serves it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Integer(i) => J::from(*i),
            Value::Real(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Text(s) => J::String(s.clone()),
            Value::Boolean(b) => J::Bool(*b),
            Value::Date(d) => J::String(d.format("%Y-%m-%d").to_string()),
            Value::DateTime(t) => J::String(t.to_rfc3339()),
            Value::Json(j) => (**j).clone(),
        }
    }
}

/// A feature on its way into a store.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Sequence number within the collection: the stable order for paging.
    pub fid: i64,
    /// The public feature id.
    pub id: String,
    pub values: Vec<Value>,
    /// ISO WKB, 2D, WGS 84 lon/lat. `None`: the feature has no geometry (valid GeoJSON).
    pub geometry: Option<Vec<u8>>,
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) if *ty == Type::FLOAT8 => (*i as f64).to_sql(ty, out),
            Value::Integer(i) => i.to_sql(ty, out),
            Value::Real(f) => f.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Boolean(b) => b.to_sql(ty, out),
            Value::Date(d) => d.to_sql(ty, out),
            Value::DateTime(t) => t.to_sql(ty, out),
            Value::Json(j) => (**j).to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // The variant is matched to the column type by ingest; see the type's doc.
        true
    }

    to_sql_checked!();
}

/// SRID PostGIS stores with every geometry.
pub const WGS84_SRID: u32 = 4326;

/// A geometry parameter for PostGIS's binary input: EWKB with SRID 4326, made from ISO WKB.
#[derive(Debug)]
pub struct Ewkb<'a>(pub &'a [u8]);

impl ToSql for Ewkb<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let wkb = self.0;
        if wkb.len() < 5 {
            return Err("truncated WKB".into());
        }
        let little = wkb[0] == 1;
        let ty_bytes: [u8; 4] = [wkb[1], wkb[2], wkb[3], wkb[4]];
        let ty = if little {
            u32::from_le_bytes(ty_bytes)
        } else {
            u32::from_be_bytes(ty_bytes)
        };
        // EWKB marks "an SRID follows" with this flag in the type word (PostGIS liblwgeom).
        let ty = ty | 0x2000_0000;
        out.put_u8(wkb[0]);
        if little {
            out.put_u32_le(ty);
            out.put_u32_le(WGS84_SRID);
        } else {
            out.put_u32(ty);
            out.put_u32(WGS84_SRID);
        }
        out.put_slice(&wkb[5..]);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        ty.name() == "geometry"
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_stay_small() {
        // A million features with a handful of attributes each: every byte here counts.
        assert!(
            std::mem::size_of::<super::Value>() <= 32,
            "{}",
            std::mem::size_of::<super::Value>()
        );
    }
}
