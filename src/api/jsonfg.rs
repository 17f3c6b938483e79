//! JSON-FG 1.0 (OGC 21-045r1) on GeoJSON responses, asked for with `profile=jsonfg` or
//! `profile=jsonfg-plus`: the root's `conformsTo`, `featureType`, `featureSchema`,
//! `geometryDimension` and `coordRefSys`; each feature's `time` and `place`.

use super::params::Params;
use super::{quote, ApiError, Format};
use crate::crs::Crs;
use crate::engine::snapshot::Feature;
use crate::engine::Snapshot;

/// JSON-FG 1.0 (OGC 21-045r1), asked for with `profile=jsonfg` or `profile=jsonfg-plus` on a
/// GeoJSON response. The default stays plain RFC 7946.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Plain,
    /// In a CRS other than CRS84 the geometry is in `place` only (`geometry` null).
    JsonFg,
    /// …and in `geometry` as CRS84 too, for GeoJSON readers.
    JsonFgPlus,
}

pub const JSONFG_CORE: &str = "http://www.opengis.net/spec/json-fg-1/1.0/conf/core";
pub const JSONFG_TYPES_SCHEMAS: &str =
    "http://www.opengis.net/spec/json-fg-1/1.0/conf/types-schemas";
pub const JSONFG: &str = "application/vnd.ogc.fg+json";

pub fn profile(q: &Params, format: Format) -> Result<Profile, ApiError> {
    let p = match q.get("profile") {
        None => return Ok(Profile::Plain),
        Some("jsonfg") => Profile::JsonFg,
        Some("jsonfg-plus") => Profile::JsonFgPlus,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "profile={}: jsonfg or jsonfg-plus (JSON-FG 1.0), or none for plain GeoJSON",
                quote(other)
            )))
        }
    };
    match format {
        Format::Json | Format::Html => Ok(p),
        Format::Encoded(e) => Err(ApiError::BadRequest(format!(
            "profile={} is for GeoJSON responses, not {}",
            q.get("profile").unwrap_or_default(),
            e.title()
        ))),
    }
}

/// A feature (its GeoJSON in `crs`) as JSON-FG: `time` from the collection's date/time attribute, and in a CRS
/// other than CRS84 the geometry in `place` (with CRS84 in `geometry` for jsonfg-plus).
pub fn jsonfg_feature(
    s: &Snapshot,
    f: &Feature,
    geojson: &str,
    crs: Crs,
    profile: Profile,
) -> Result<String, ApiError> {
    let broken = |e: serde_json::Error| {
        tracing::error!(error = %e, "a feature's JSON did not parse back");
        ApiError::Unavailable("the feature cannot be written now".into())
    };
    let mut v: serde_json::Value = serde_json::from_str(geojson).map_err(broken)?;
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::Unavailable(
            "the feature cannot be written now".into(),
        ));
    };
    if crs == Crs::Crs84 {
        obj.insert("place".into(), serde_json::Value::Null);
    } else {
        let place = obj.remove("geometry").unwrap_or(serde_json::Value::Null);
        obj.insert("place".into(), place);
        let geometry = if profile == Profile::JsonFgPlus {
            let mut plain: serde_json::Value = serde_json::from_str(&f.json).map_err(broken)?;
            plain["geometry"].take()
        } else {
            serde_json::Value::Null
        };
        obj.insert("geometry".into(), geometry);
    }
    let kind = s
        .entry
        .datetime_field
        .as_ref()
        .and_then(|n| s.entry.attributes.iter().find(|a| &a.name == n))
        .map(|a| a.kind);
    let time = match (f.instant, kind) {
        (Some(t), Some(crate::catalog::AttrType::Date)) => {
            serde_json::json!({"date": t.format("%Y-%m-%d").to_string()})
        }
        (Some(t), _) => serde_json::json!({
            "timestamp": t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        }),
        (None, _) => serde_json::Value::Null,
    };
    obj.insert("time".into(), time);
    Ok(v.to_string())
}

/// The members a JSON-FG document's root carries before its features or geometry: the
/// classes it conforms to (Core, and Feature Types and Schemas: `featureType`, the collection's
/// Part 5 schema as `featureSchema`, `geometryDimension` when every geometry type has one), and
/// the CRS when it is not CRS84.
pub fn jsonfg_root(s: &Snapshot, crs: Crs, base: &str) -> String {
    let id = &s.entry.id;
    let mut root = format!(
        "\"conformsTo\":[\"{JSONFG_CORE}\",\"{JSONFG_TYPES_SCHEMAS}\"],\"featureType\":{},\"featureSchema\":{}",
        serde_json::Value::String(id.to_string()),
        serde_json::Value::String(format!("{base}/collections/{id}/schema"))
    );
    if let Some(d) = geometry_dimension(&s.entry.geometry_types) {
        root.push_str(&format!(",\"geometryDimension\":{d}"));
    }
    if crs != Crs::Crs84 {
        root.push_str(&format!(",\"coordRefSys\":\"{}\"", crs.uri()));
    }
    root
}

/// 0 for points, 1 for curves, 2 for surfaces, when all `types` (GeoJSON names) agree.
fn geometry_dimension(types: &[String]) -> Option<u8> {
    let dimension = |t: &str| match t {
        "Point" | "MultiPoint" => Some(0),
        "LineString" | "MultiLineString" => Some(1),
        "Polygon" | "MultiPolygon" => Some(2),
        _ => None,
    };
    let mut dims = types.iter().map(|t| dimension(t));
    let first = dims.next()??;
    dims.all(|d| d == Some(first)).then_some(first)
}
