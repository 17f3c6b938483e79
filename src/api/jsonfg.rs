//! JSON-FG 1.0 (OGC 21-045r1) on GeoJSON responses, asked for with `profile=jsonfg` or
//! `profile=jsonfg-plus`: the root's `conformsTo`, `featureType`, `featureSchema`,
//! `geometryDimension` and `coordRefSys`; each feature's `time` and `place`.

use super::common::encode_error;
use super::params::Params;
use super::{quote, ApiError, Format};
use crate::catalog::CatalogEntry;
use crate::crs::{self, Crs};
use crate::engine::snapshot::{feature_json, push_geometry, Feature};
use crate::formats;

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

/// A feature as JSON-FG: `time` from the collection's date/time attribute, and in a CRS other
/// than CRS84 the geometry in `place` (with CRS84 in `geometry` for jsonfg-plus, else null).
/// Written as text around the GeoJSON encoding (the pre-encoded feature where it serves), not
/// through a JSON tree: a page of JSON-FG then costs about what a page of GeoJSON does.
pub fn jsonfg_feature(
    entry: &CatalogEntry,
    f: &Feature,
    crs: Crs,
    selected: Option<&[usize]>,
    profile: Profile,
) -> Result<String, ApiError> {
    let geojson = |crs: Crs| {
        formats::feature_geojson(entry, f, crs, selected)
            .map(std::borrow::Cow::into_owned)
            .map_err(encode_error)
    };
    let mut place = String::new();
    let mut out = if crs == Crs::Crs84 {
        place.push_str("null");
        geojson(Crs::Crs84)?
    } else {
        let projected = f
            .geometry
            .as_ref()
            .map(|g| crs::from_crs84(&g.to_geo(), crs))
            .transpose()
            .map_err(|e| {
                encode_error(formats::EncodeError {
                    id: f.id().to_string(),
                    message: e.to_string(),
                })
            })?;
        push_geometry(&mut place, projected.as_ref());
        match profile {
            Profile::JsonFgPlus => geojson(Crs::Crs84)?,
            _ => feature_json(entry, f.id(), None, &f.values(), selected),
        }
    };
    // Every encoding ends with the feature object's closing brace.
    if out.pop() != Some('}') {
        tracing::error!(feature = %f.id(), "a feature's JSON does not end with a closing brace");
        return Err(ApiError::Unavailable(
            "the feature cannot be written now".into(),
        ));
    }
    let kind = entry
        .datetime_field
        .as_ref()
        .and_then(|n| entry.attributes.iter().find(|a| &a.name == n))
        .map(|a| a.kind);
    let time = match (f.instant(), kind) {
        (Some(t), Some(crate::catalog::AttrType::Date)) => {
            format!("{{\"date\":\"{}\"}}", t.format("%Y-%m-%d"))
        }
        (Some(t), _) => format!(
            "{{\"timestamp\":\"{}\"}}",
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        ),
        (None, _) => "null".to_string(),
    };
    out.push_str(",\"place\":");
    out.push_str(&place);
    out.push_str(",\"time\":");
    out.push_str(&time);
    out.push('}');
    Ok(out)
}

/// The members a JSON-FG document's root carries before its features or geometry: the
/// classes it conforms to (Core, and Feature Types and Schemas: `featureType`, the collection's
/// Part 5 schema as `featureSchema`, `geometryDimension` when every geometry type has one), and
/// the CRS when it is not CRS84.
pub fn jsonfg_root(entry: &CatalogEntry, crs: Crs, base: &str) -> String {
    let id = &entry.id;
    let mut root = format!(
        "\"conformsTo\":[\"{JSONFG_CORE}\",\"{JSONFG_TYPES_SCHEMAS}\"],\"featureType\":{},\"featureSchema\":{}",
        serde_json::Value::String(id.to_string()),
        serde_json::Value::String(format!("{base}/collections/{id}/schema"))
    );
    if let Some(d) = geometry_dimension(&entry.geometry_types) {
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
