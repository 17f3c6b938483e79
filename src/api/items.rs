//! `/collections/{id}/items` and `/collections/{id}/items/{featureId}`: features as GeoJSON,
//! with bbox, datetime, attribute equality filters, property selection and paging by an opaque
//! cursor that pins the collection version it started on. The same pages and features in the
//! encodings of `formats` (CSV, GeoJSON text sequences, NDJSON, FlatGeobuf), chosen by `f` or
//! `Accept`, streamed a chunk at a time, with their paging in `Link` and `OGC-Number*` headers.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};

use super::collections::{fxhash, snapshot};
use super::params::Params;
use super::{
    base_url, etag_check, negotiate_among, not_modified, quote, ApiError, AppState, Format,
    GEOJSON, JSON,
};
use crate::catalog::{AttrType, CatalogEntry};
use crate::cql2::{self, Lang};
use crate::crs::{self, Crs};
use crate::engine::snapshot::{parse_value, Equals, Feature, Interval};
use crate::engine::{Filter, Query, Snapshot, SortKey, Start};
use crate::formats::{self, Chunks, Encoding, Layer};

pub(super) const ITEM_PARAMS: &[&str] = &[
    "f",
    "bbox",
    "bbox-crs",
    "datetime",
    "limit",
    "offset",
    "cursor",
    "properties",
    "crs",
    "filter",
    "filter-lang",
    "filter-crs",
    "sortby",
    "profile",
];

/// JSON-FG 1.0 (OGC 21-045r1), asked for with `profile=jsonfg` or `profile=jsonfg-plus` on a
/// GeoJSON response. The default stays plain RFC 7946.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
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

fn profile(q: &Params, format: Format) -> Result<Profile, ApiError> {
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

/// A feature as JSON-FG: `time` from the collection's date/time attribute, and in a CRS
/// other than CRS84 the geometry in `place` (with CRS84 in `geometry` for jsonfg-plus).
fn jsonfg_feature(
    s: &Snapshot,
    f: &crate::engine::snapshot::Feature,
    crs: Crs,
    selected: Option<&[usize]>,
    profile: Profile,
) -> Result<String, ApiError> {
    let broken = |e: serde_json::Error| {
        tracing::error!(error = %e, "a feature's JSON did not parse back");
        ApiError::Unavailable("the feature cannot be written now".into())
    };
    let mut v: serde_json::Value =
        serde_json::from_str(&encode(s, f, crs, selected)?).map_err(broken)?;
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
fn jsonfg_root(s: &Snapshot, crs: Crs, base: &str) -> String {
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

/// Parses `bbox`: 4 or 6 numbers in CRS84, or in `bbox-crs` with that CRS's axis order. A box
/// whose west edge is east of its east edge crosses the antimeridian and becomes two.
pub fn parse_bbox(text: &str, crs: Option<&str>) -> Result<Vec<[f64; 4]>, ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("bbox={}: {why}", quote(text)));
    let nums: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("expected 4 or 6 comma-separated numbers"))?;
    let mut b = match nums.len() {
        4 => [nums[0], nums[1], nums[2], nums[3]],
        6 => [nums[0], nums[1], nums[3], nums[4]],
        n => return Err(bad(&format!("expected 4 or 6 numbers, got {n}"))),
    };
    let crs = match crs {
        None => Crs::Crs84,
        Some(c) => Crs::parse(c).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "bbox-crs={} is not offered; see the collection's crs list",
                quote(c)
            ))
        })?,
    };
    match crs {
        Crs::Crs84 => {}
        // Latitude first; swapped here rather than by PROJ so antimeridian boxes stay as given.
        Crs::Epsg(4326) => b = [b[1], b[0], b[3], b[2]],
        projected => {
            if b[0] > b[2] || b[1] > b[3] {
                return Err(bad("the minimum corner is above the maximum corner"));
            }
            b = crs::bbox_to_crs84(b, projected).map_err(|e| bad(&e.to_string()))?;
        }
    }
    let [w, s, e, n] = b;
    if !(-180.0..=180.0).contains(&w) || !(-180.0..=180.0).contains(&e) {
        return Err(bad("longitudes must lie in -180..180"));
    }
    if !(-90.0..=90.0).contains(&s) || !(-90.0..=90.0).contains(&n) {
        return Err(bad("latitudes must lie in -90..90"));
    }
    if s > n {
        return Err(bad("the south edge is north of the north edge"));
    }
    Ok(if w > e {
        vec![[w, s, 180.0, n], [-180.0, s, e, n]]
    } else {
        vec![b]
    })
}

fn parse_instant(text: &str, end: bool) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    // A date stands for the whole day.
    let t = if end {
        d.and_hms_nano_opt(23, 59, 59, 999_999_999)?
    } else {
        d.and_hms_opt(0, 0, 0)?
    };
    Some(t.and_utc())
}

/// Parses `datetime`: an instant, or an interval `start/end` where either end may be `..` or empty.
pub fn parse_datetime(text: &str) -> Result<Interval, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "datetime={}: expected an RFC 3339 date-time or date, or an interval such as 2024-01-01/.. ",
            quote(text)
        ))
    };
    let open = |s: &str| s.is_empty() || s == "..";
    match text.split_once('/') {
        None => {
            let a = parse_instant(text, false).ok_or_else(bad)?;
            let b = parse_instant(text, true).ok_or_else(bad)?;
            Ok((Some(a), Some(b)))
        }
        Some((a, b)) => {
            if open(a) && open(b) {
                return Ok((None, None));
            }
            let a = if open(a) {
                None
            } else {
                Some(parse_instant(a, false).ok_or_else(bad)?)
            };
            let b = if open(b) {
                None
            } else {
                Some(parse_instant(b, true).ok_or_else(bad)?)
            };
            if let (Some(x), Some(y)) = (a, b) {
                if x > y {
                    return Err(ApiError::BadRequest(format!(
                        "datetime={}: the interval ends before it starts",
                        quote(text)
                    )));
                }
            }
            Ok((a, b))
        }
    }
}

/// `limit`: a positive integer; values above the maximum are clamped (clients size pages
/// from the advertised maximum, and some ask for more).
pub fn parse_limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(text) = text else { return Ok(default) };
    let bad = || {
        ApiError::BadRequest(format!(
            "limit={}: expected a whole number from 1 to {max}",
            quote(text)
        ))
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match text.parse::<usize>() {
        Ok(0) => Err(bad()),
        Ok(n) => Ok(n.min(max)),
        // All digits but too long for a number: as absurd as it gets, so the maximum.
        Err(_) => Ok(max),
    }
}

/// The opaque paging cursor: the version the walk started on and a position in `fid` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub version: i64,
    pub start: Start,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let (dir, fid) = match self.start {
            Start::After(f) => ('a', f),
            Start::Before(f) => ('b', f),
            Start::Offset(o) => ('o', o as i64),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}{dir}{fid}", self.version))
    }

    pub fn decode(text: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::BadRequest(format!(
                "cursor={}: not a cursor this server issued",
                quote(text)
            ))
        };
        if text.len() > 64 {
            return Err(bad());
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let pos = raw.find(['a', 'b', 'o']).ok_or_else(bad)?;
        let version: i64 = raw[..pos].parse().map_err(|_| bad())?;
        let n: i64 = raw[pos + 1..].parse().map_err(|_| bad())?;
        let start = match &raw[pos..=pos] {
            "a" => Start::After(n),
            "b" => Start::Before(n),
            _ => Start::Offset(usize::try_from(n).map_err(|_| bad())?),
        };
        Ok(Self { version, start })
    }
}

/// `filter`, `filter-lang` and `filter-crs` as a filter bound to the snapshot `s`.
pub fn parse_filter(q: &Params, s: &Snapshot) -> Result<Option<Filter>, ApiError> {
    let Some(text) = q.get("filter") else {
        if q.get("filter-lang").is_some() || q.get("filter-crs").is_some() {
            return Err(ApiError::BadRequest(
                "filter-lang or filter-crs given without filter".into(),
            ));
        }
        return Ok(None);
    };
    let lang = match q.get("filter-lang") {
        None => Lang::Text,
        Some(l) => Lang::parse(l).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "filter-lang={}: this server reads cql2-text and cql2-json",
                quote(l)
            ))
        })?,
    };
    let crs = match q.get("filter-crs") {
        None => Crs::Crs84,
        Some(c) => Crs::parse(c).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "filter-crs={} is not offered; see the collection's crs list",
                quote(c)
            ))
        })?,
    };
    let expr = cql2::parse(text, lang).map_err(|e| ApiError::BadRequest(format!("filter: {e}")))?;
    Filter::bind(&expr, &s.entry, crs, s.collation())
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("filter: {e}")))
}

/// Attributes that `sortby` accepts (lists and objects have no order).
pub fn sortable(kind: AttrType) -> bool {
    kind != AttrType::Json
}

/// `sortby=-places,name`: attribute names, each optionally prefixed `+` (ascending, the
/// default) or `-` (descending).
pub fn parse_sortby(text: &str, entry: &CatalogEntry) -> Result<Vec<SortKey>, ApiError> {
    let mut keys = Vec::new();
    for raw in text.split(',') {
        let (descending, name) = match raw.as_bytes().first() {
            Some(b'-') => (true, &raw[1..]),
            // A '+' that was not percent-encoded arrives as a space.
            Some(b'+' | b' ') => (false, &raw[1..]),
            _ => (false, raw),
        };
        if name.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "sortby={}: expected attribute names separated by commas",
                quote(text)
            )));
        }
        let attribute = entry
            .attributes
            .iter()
            .position(|a| a.name == name && sortable(a.kind))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "sortby: {} is not sortable in {}; see /collections/{}/sortables",
                    quote(name),
                    entry.id,
                    entry.id
                ))
            })?;
        keys.push(SortKey {
            attribute,
            descending,
        });
    }
    Ok(keys)
}

/// The response CRS from `crs=`, CRS84 by default.
fn response_crs(q: &Params) -> Result<Crs, ApiError> {
    match q.get("crs") {
        None => Ok(Crs::Crs84),
        Some(c) => Crs::parse(c).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "crs={} is not offered; see the collection's crs list",
                quote(c)
            ))
        }),
    }
}

/// A feature's JSON in the response CRS: the pre-encoded text for CRS84 with all properties,
/// else encoded anew.
fn encode(
    s: &Snapshot,
    f: &Feature,
    crs: Crs,
    selected: Option<&[usize]>,
) -> Result<String, ApiError> {
    formats::feature_geojson(&s.entry, f, crs, selected)
        .map(|json| json.into_owned())
        .map_err(encode_error)
}

fn encode_error(e: formats::EncodeError) -> ApiError {
    ApiError::BadRequest(format!("feature {}: {}", quote(&e.id), e.message))
}

struct ItemsRequest {
    query: Query,
    crs: Crs,
    limit: usize,
    cursor: Option<Cursor>,
    offset: Option<usize>,
    selected: Option<Vec<usize>>,
}

fn parse_items(q: &Params, s: &Snapshot, state: &AppState) -> Result<ItemsRequest, ApiError> {
    let attrs = &s.entry.attributes;
    let mut query = Query::default();
    if let Some(b) = q.get("bbox") {
        query.bbox = parse_bbox(b, q.get("bbox-crs"))?;
    } else if q.get("bbox-crs").is_some() {
        return Err(ApiError::BadRequest("bbox-crs given without bbox".into()));
    }
    if let Some(d) = q.get("datetime") {
        query.datetime = Some(parse_datetime(d)?);
    }
    let crs = response_crs(q)?;
    query.filter = parse_filter(q, s)?.map(std::sync::Arc::new);
    if let Some(sortby) = q.get("sortby") {
        query.sort = parse_sortby(sortby, &s.entry)?;
    }
    for (name, value) in q.iter().filter(|(k, _)| !ITEM_PARAMS.contains(k)) {
        // Params::parse_with admitted only attribute names here.
        let Some(i) = attrs.iter().position(|a| a.name == name) else {
            continue;
        };
        let v = parse_value(attrs[i].kind, value).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{}={}: not a valid {:?} value",
                quote(name),
                quote(value),
                attrs[i].kind
            ))
        })?;
        query.equals.push(Equals {
            attribute: i,
            value: v,
        });
    }
    let limit = parse_limit(
        q.get("limit"),
        state.limits.default_limit,
        state.limits.max_limit,
    )?;
    let cursor = q.get("cursor").map(Cursor::decode).transpose()?;
    let offset = match q.get("offset") {
        None => None,
        Some(o) => Some(o.parse::<usize>().map_err(|_| {
            ApiError::BadRequest(format!(
                "offset={}: expected a whole number of 0 or more",
                quote(o)
            ))
        })?),
    };
    if cursor.is_some() && offset.is_some() {
        return Err(ApiError::BadRequest(
            "give cursor or offset, not both".into(),
        ));
    }
    let selected = match q.get("properties") {
        None => None,
        Some(list) => Some(
            list.split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    attrs.iter().position(|a| a.name == p).ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "properties: no attribute {} in this collection",
                            quote(p)
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(ItemsRequest {
        query,
        crs,
        limit,
        cursor,
        offset,
        selected,
    })
}

/// The snapshot an items request walks: the current one, or the version its cursor began on.
/// A cursor whose version is no longer held (replaced twice since, or the server restarted) is
/// answered 410 with a link that starts the same walk again on the current version, rather
/// than continued on other data.
fn walked_snapshot(
    req: &HttpRequest,
    state: &AppState,
    current: std::sync::Arc<Snapshot>,
) -> Result<std::sync::Arc<Snapshot>, ApiError> {
    let Some(raw) = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(current);
    };
    let c = Cursor::decode(&raw)?;
    if c.version == current.version() {
        return Ok(current);
    }
    if let Some(s) = state.engine.get_version(&current.entry.id, c.version) {
        return Ok(s);
    }
    let rest: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(req.query_string().as_bytes()).filter(|(k, _)| k != "cursor"),
        )
        .finish();
    let items_url = format!("{}/collections/{}/items", base_url(req)?, current.entry.id);
    Err(ApiError::Gone {
        message: format!(
            "this cursor walks version {} of {}, which is no longer served (it is now at version {}); start the walk again",
            c.version,
            current.entry.id,
            current.version()
        ),
        restart: if rest.is_empty() {
            items_url
        } else {
            format!("{items_url}?{rest}")
        },
    })
}

fn link(href: String, rel: &str, ty: &str) -> serde_json::Value {
    serde_json::json!({"href": href, "rel": rel, "type": ty})
}

pub async fn items(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let current = snapshot(&state, &path)?;
    // The cursor chooses the version first; everything else in the request is then read against
    // that version's attributes, so a cursor never applies one version's columns to another's.
    let s = walked_snapshot(&req, &state, current)?;
    let attrs = s.entry.attributes.clone();
    let q = Params::parse_with(req.query_string(), ITEM_PARAMS, |n| {
        attrs.iter().any(|a| a.name == n)
    })?;
    let format = negotiate_among(&req, q.get("f"), &Encoding::ALL)?;
    let profile = profile(&q, format)?;
    let r = parse_items(&q, &s, &state)?;
    if !r.query.sort.is_empty()
        && r.cursor
            .is_some_and(|c| !matches!(c.start, Start::Offset(_)))
    {
        return Err(ApiError::BadRequest(
            "this cursor comes from an unsorted walk; start again without it to sort".into(),
        ));
    }
    let start = match (r.cursor, r.offset) {
        (Some(c), _) => c.start,
        (None, Some(o)) => Start::Offset(o),
        (None, None) => Start::Offset(0),
    };
    // HTML and JSON are different representations: never one ETag for both.
    let (etag, fresh) = etag_check(
        &req,
        &format!(
            "{}-v{}-{:x}-{}",
            s.entry.id,
            s.version(),
            // The collation decides a sorted or filtered page: a restart with another one
            // must not answer 304 to a page cached before it.
            fxhash(&format!("{}#{}", req.query_string(), s.collation().name())),
            format.tag()
        ),
    );
    if fresh {
        return Ok(not_modified(&etag));
    }
    let page = if state.heavy.is_heavy(s.estimate(&r.query)) {
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let query = Query {
            cancel: Some(cancel.clone()),
            ..r.query.clone()
        };
        let (walked, limit) = (s.clone(), r.limit);
        state
            .heavy
            .run(cancel, move || walked.query(&query, start, limit))
            .await?
    } else {
        s.query(&r.query, start, r.limit)
    };

    let base = base_url(&req)?;
    let items_url = format!("{base}/collections/{}/items", s.entry.id);
    // A link to another page (`extra`: its cursor or offset) in the format `f` (None: the
    // format this request named, if it named one).
    let with = |extra: &[(&str, String)], f: Option<&str>| {
        let mut drop = vec!["cursor", "offset"];
        let mut add = extra.to_vec();
        if let Some(f) = f {
            drop.push("f");
            add.push(("f", f.to_string()));
        }
        let qs = q.rebuild(&drop, &add);
        if qs.is_empty() {
            items_url.clone()
        } else {
            format!("{items_url}?{qs}")
        }
    };
    let self_href = if req.query_string().is_empty() {
        items_url.clone()
    } else {
        format!("{items_url}?{}", req.query_string())
    };
    let mut links = vec![
        link(self_href, "self", GEOJSON),
        link(
            format!("{base}/collections/{}", s.entry.id),
            "collection",
            JSON,
        ),
    ];
    // This page in each other encoding (same query, cursor and offset).
    links.extend(alternates(&items_url, &q, "This page"));
    let use_offsets = matches!(start, Start::Offset(_)) && r.offset.is_some();
    // A sorted walk cannot resume after a fid: its cursor holds a position instead.
    let sorted = !r.query.sort.is_empty();
    let at = |position: usize| {
        let c = Cursor {
            version: s.version(),
            start: Start::Offset(position),
        };
        vec![("cursor", c.encode())]
    };
    let next = page
        .has_more
        .then(|| match (use_offsets, page.items.last()) {
            (true, _) => vec![(
                "offset",
                (page.first_position + page.items.len()).to_string(),
            )],
            (false, _) if sorted => at(page.first_position + page.items.len()),
            (false, Some(&last)) => {
                let c = Cursor {
                    version: s.version(),
                    start: Start::After(s.features[last as usize].fid),
                };
                vec![("cursor", c.encode())]
            }
            (false, None) => vec![],
        });
    let prev = (page.first_position > 0).then(|| match (use_offsets, page.items.first()) {
        (true, _) => vec![(
            "offset",
            page.first_position.saturating_sub(r.limit).to_string(),
        )],
        (false, _) if sorted => at(page.first_position.saturating_sub(r.limit)),
        (false, Some(&first)) => {
            let c = Cursor {
                version: s.version(),
                start: Start::Before(s.features[first as usize].fid),
            };
            vec![("cursor", c.encode())]
        }
        (false, None) => vec![(
            "offset",
            page.first_position.saturating_sub(r.limit).to_string(),
        )],
    });
    // The Link header names pages in the format of this response: FlatGeobuf and CSV have no
    // place for links of their own.
    let (header_f, header_type) = match format {
        Format::Encoded(e) => (Some(e.name()), e.media_type()),
        _ => (None, GEOJSON),
    };
    let mut header_links = Vec::new();
    for (rel, extra) in [("next", &next), ("prev", &prev)] {
        if let Some(extra) = extra {
            let href = with(extra, header_f);
            header_links.push(format!("<{href}>; rel=\"{rel}\"; type=\"{header_type}\""));
            links.push(link(with(extra, None), rel, GEOJSON));
        }
    }

    if format == Format::Html {
        let href = |rel: &str| {
            links
                .iter()
                .find(|l| l["rel"] == rel)
                .and_then(|l| l["href"].as_str())
                .map(str::to_string)
        };
        let features: Vec<_> = page
            .items
            .iter()
            .map(|&i| &s.features[i as usize])
            .collect();
        let map = super::map::block(&super::map::MapView {
            layers: std::slice::from_ref(&s),
            tilejson: &super::map::collection_tilejson(&base, &s.entry.id),
            base: &base,
            basemap: state.basemap_style.as_deref(),
            highlight: Some(&features),
        });
        return Ok(super::html::items(
            &super::html::ItemsPage {
                entry: &s.entry,
                features,
                matched: page.matched,
                next: href("next"),
                prev: href("prev"),
            },
            &base,
            map,
        ));
    }

    let (matched, returned) = (page.matched, page.items.len());
    if let Format::Encoded(e) = format {
        let layer = Layer::new(
            &s.entry,
            r.selected.as_deref(),
            r.crs,
            page.items.iter().map(|&i| &s.features[i as usize]),
        );
        let encoder = formats::encoder(e, &s.entry, layer, r.selected.clone());
        let body = encoded_stream(s.clone(), page.items, encoder)?;
        let mut resp = HttpResponse::Ok();
        resp.insert_header((header::CONTENT_TYPE, e.content_type()))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.{}\"", s.entry.id, e.extension()),
            ))
            .insert_header(("Content-Crs", format!("<{}>", r.crs.uri())))
            .insert_header(("OGC-NumberMatched", matched.to_string()))
            .insert_header(("OGC-NumberReturned", returned.to_string()))
            .insert_header((header::ETAG, etag));
        state.cache.apply(
            &mut resp,
            super::cache::Kind::Document,
            Some(s.entry.updated),
        );
        if !header_links.is_empty() {
            resp.insert_header((header::LINK, header_links.join(", ")));
        }
        return Ok(resp.streaming(body));
    }

    let mut tail = String::with_capacity(256);
    tail.push_str("],\"numberMatched\":");
    tail.push_str(&page.matched.to_string());
    tail.push_str(",\"numberReturned\":");
    tail.push_str(&page.items.len().to_string());
    tail.push_str(",\"timeStamp\":");
    tail.push_str(
        &serde_json::Value::String(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .to_string(),
    );
    tail.push_str(",\"links\":");
    tail.push_str(&serde_json::Value::Array(links).to_string());
    tail.push('}');
    const HEAD: &str = "{\"type\":\"FeatureCollection\",\"features\":[";
    // Pre-encoded features are streamed as they are, a chunk at a time, so a page of thousands
    // is never one string in memory; other CRSs, property selections and JSON-FG re-encode
    // (and can fail with a 400, so they are encoded before the response starts).
    let body = if r.crs == Crs::Crs84 && r.selected.is_none() && profile == Profile::Plain {
        Body::Stream(feature_stream(s.clone(), page.items, HEAD, tail))
    } else {
        let mut body = String::with_capacity(64 + returned * 256);
        if profile == Profile::Plain {
            body.push_str(HEAD);
        } else {
            body.push_str("{\"type\":\"FeatureCollection\",");
            body.push_str(&jsonfg_root(&s, r.crs, &base));
            body.push_str(",\"features\":[");
        }
        for (n, &i) in page.items.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            let f = &s.features[i as usize];
            body.push_str(&match profile {
                Profile::Plain => encode(&s, f, r.crs, r.selected.as_deref())?,
                _ => jsonfg_feature(&s, f, r.crs, r.selected.as_deref(), profile)?,
            });
        }
        body.push_str(&tail);
        Body::Whole(body)
    };

    let mut resp = HttpResponse::Ok();
    let media = if profile == Profile::Plain {
        GEOJSON
    } else {
        JSONFG
    };
    resp.insert_header((header::CONTENT_TYPE, media))
        .insert_header(("Content-Crs", format!("<{}>", r.crs.uri())))
        .insert_header(("OGC-NumberMatched", matched.to_string()))
        .insert_header(("OGC-NumberReturned", returned.to_string()))
        .insert_header((header::ETAG, etag));
    state.cache.apply(
        &mut resp,
        super::cache::Kind::Document,
        Some(s.entry.updated),
    );
    if !header_links.is_empty() {
        resp.insert_header((header::LINK, header_links.join(", ")));
    }
    Ok(match body {
        Body::Whole(text) => resp.body(text),
        Body::Stream(stream) => resp.streaming(stream),
    })
}

enum Body<S> {
    Whole(String),
    Stream(S),
}

/// Features per chunk of a streamed page: about 100 KB of typical municipal features.
const CHUNK: usize = 256;

/// A page in another encoding, a chunk at a time, each encoded when the connection takes it.
/// The first chunk (the head and up to `formats::CHUNK` features) is encoded before the
/// response starts, so a feature that cannot be written in the requested CRS answers 400 as the
/// GeoJSON page does; one further on can only end the stream early (the client sees a body cut
/// short, and the log says why).
fn encoded_stream(
    s: std::sync::Arc<Snapshot>,
    items: Vec<u32>,
    encoder: Box<dyn formats::FeatureEncoder>,
) -> Result<impl futures_util::Stream<Item = Result<bytes::Bytes, actix_web::Error>>, ApiError> {
    let collection = s.entry.id.to_string();
    let mut chunks = Chunks::new(s, items, encoder);
    let first = chunks.next().transpose().map_err(encode_error)?;
    let rest = chunks.map(move |c| {
        c.map(bytes::Bytes::from).map_err(|e| {
            tracing::error!(collection = %collection, error = %e, "a streamed page stopped early");
            actix_web::error::ErrorInternalServerError(e.to_string())
        })
    });
    Ok(futures_util::stream::iter(
        first
            .map(|b| Ok(bytes::Bytes::from(b)))
            .into_iter()
            .chain(rest),
    ))
}

/// `head`, the page's pre-encoded features separated by commas, `tail`: one chunk at a time.
fn feature_stream(
    s: std::sync::Arc<Snapshot>,
    items: Vec<u32>,
    head: &'static str,
    tail: String,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, actix_web::Error>> {
    let chunks = (0..items.len()).step_by(CHUNK).map(move |from| {
        let to = (from + CHUNK).min(items.len());
        let mut buf = String::with_capacity((to - from) * 320);
        for (n, &i) in items[from..to].iter().enumerate() {
            if from + n > 0 {
                buf.push(',');
            }
            buf.push_str(&s.features[i as usize].json);
        }
        bytes::Bytes::from(buf)
    });
    futures_util::stream::iter(
        std::iter::once(bytes::Bytes::from_static(head.as_bytes()))
            .chain(chunks)
            .chain(std::iter::once(bytes::Bytes::from(tail)))
            .map(Ok),
    )
}

pub async fn item(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (collection, feature) = path.into_inner();
    let s = snapshot(&state, &collection)?;
    let q = Params::parse(req.query_string(), &["f", "crs", "profile"])?;
    let format = negotiate_among(&req, q.get("f"), &Encoding::ALL)?;
    let profile = profile(&q, format)?;
    let crs = response_crs(&q)?;
    let f = s.get(&feature).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no feature {} in collection {}",
            quote(&feature),
            s.entry.id
        ))
    })?;
    if format == Format::Html {
        let base = base_url(&req)?;
        let map = super::map::block(&super::map::MapView {
            layers: std::slice::from_ref(&s),
            tilejson: &super::map::collection_tilejson(&base, &s.entry.id),
            base: &base,
            basemap: state.basemap_style.as_deref(),
            highlight: Some(&[f]),
        });
        return Ok(super::html::item(&s.entry, f, &base, map));
    }
    // The query (crs, f) makes the representation too.
    let (etag, fresh) = etag_check(
        &req,
        &format!(
            "{}-v{}-{:x}-{}",
            s.entry.id,
            s.version(),
            fxhash(&format!("{feature}?{}", req.query_string())),
            format.tag()
        ),
    );
    if fresh {
        return Ok(not_modified(&etag));
    }
    if let Format::Encoded(e) = format {
        let layer = Layer::new(&s.entry, None, crs, std::iter::once(f));
        let mut encoder = formats::encoder(e, &s.entry, layer, None);
        let body = formats::encode_one(encoder.as_mut(), f).map_err(encode_error)?;
        let mut resp = HttpResponse::Ok();
        resp.insert_header((header::CONTENT_TYPE, e.content_type()))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}-{}.{}\"",
                    s.entry.id,
                    file_name_part(&f.id),
                    e.extension()
                ),
            ))
            .insert_header(("Content-Crs", format!("<{}>", crs.uri())))
            .insert_header((header::ETAG, etag));
        state.cache.apply(
            &mut resp,
            super::cache::Kind::Document,
            Some(s.entry.updated),
        );
        return Ok(resp.body(body));
    }
    let base = base_url(&req)?;
    let item_url = format!(
        "{base}/collections/{}/items/{}",
        s.entry.id,
        urlencode(&f.id)
    );
    let mut links = vec![
        link(item_url.clone(), "self", GEOJSON),
        link(
            format!("{base}/collections/{}", s.entry.id),
            "collection",
            JSON,
        ),
    ];
    links.extend(alternates(&item_url, &q, "This feature"));
    let links = serde_json::Value::Array(links);
    // The feature's JSON ends with '}': add the links before it.
    let (json, media) = match profile {
        Profile::Plain => (encode(&s, f, crs, None)?, GEOJSON),
        _ => {
            // A JSON-FG document's root declares its conformance (and CRS).
            let feature = jsonfg_feature(&s, f, crs, None, profile)?;
            (
                format!("{{{},{}", jsonfg_root(&s, crs, &base), &feature[1..]),
                JSONFG,
            )
        }
    };
    let body = format!("{},\"links\":{links}}}", &json[..json.len() - 1]);
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, media))
        .insert_header(("Content-Crs", format!("<{}>", crs.uri())))
        .insert_header((header::ETAG, etag));
    state.cache.apply(
        &mut resp,
        super::cache::Kind::Document,
        Some(s.entry.updated),
    );
    Ok(resp.body(body))
}

/// A feature id as part of a file name: letters, digits, `-` and `_` kept, anything else `_`.
fn file_name_part(id: &str) -> String {
    id.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `rel=alternate` links to `url` with the same query in each other encoding.
fn alternates(url: &str, q: &Params, what: &str) -> Vec<serde_json::Value> {
    Encoding::ALL
        .iter()
        .map(|e| {
            let mut l = link(
                format!("{url}?{}", q.rebuild(&["f"], &[("f", e.name().into())])),
                "alternate",
                e.media_type(),
            );
            l["title"] = format!("{what} as {}", e.title()).into();
            l
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("12.9,55.5,13.1,55.7", Some(vec![[12.9, 55.5, 13.1, 55.7]]))]
    #[case("12.9,55.5,0,13.1,55.7,100", Some(vec![[12.9, 55.5, 13.1, 55.7]]))]
    #[case("170,-10,-170,10", Some(vec![[170.0, -10.0, 180.0, 10.0], [-180.0, -10.0, -170.0, 10.0]]))]
    #[case("1,2,3,4,5", None)]
    #[case("1,2,3", None)]
    #[case("a,b,c,d", None)]
    #[case("0,0,1,NaN", None)]
    #[case("0,91,1,92", None)]
    #[case("0,10,1,5", None)]
    #[case("-200,0,1,1", None)]
    fn bboxes(#[case] text: &str, #[case] want: Option<Vec<[f64; 4]>>) {
        assert_eq!(parse_bbox(text, None).ok(), want);
    }

    #[test]
    fn bbox_in_epsg_4326_is_lat_lon() {
        let b = parse_bbox(
            "55.5,12.9,55.7,13.1",
            Some("http://www.opengis.net/def/crs/EPSG/0/4326"),
        )
        .expect("ok");
        assert_eq!(b, vec![[12.9, 55.5, 13.1, 55.7]]);
    }

    #[rstest]
    #[case(None, Ok(10))]
    #[case(Some("5"), Ok(5))]
    #[case(Some("20000"), Ok(10_000))]
    #[case(Some("99999999999999999999999999999"), Ok(10_000))]
    #[case(Some("0"), Err(()))]
    #[case(Some("-1"), Err(()))]
    #[case(Some("ten"), Err(()))]
    #[case(Some(""), Err(()))]
    fn limits(#[case] text: Option<&str>, #[case] want: Result<usize, ()>) {
        assert_eq!(parse_limit(text, 10, 10_000).map_err(|_| ()), want);
    }

    #[rstest]
    #[case("2024-05-01", true)]
    #[case("2024-05-01T12:00:00Z", true)]
    #[case("2024-01-01/2024-12-31", true)]
    #[case("../2024-12-31", true)]
    #[case("2024-01-01/..", true)]
    #[case("2024-01-01/", true)]
    #[case("2024-12-31/2024-01-01", false)]
    #[case("yesterday", false)]
    #[case("2024-13-01", false)]
    fn datetimes(#[case] text: &str, #[case] ok: bool) {
        assert_eq!(parse_datetime(text).is_ok(), ok, "{text}");
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        for start in [Start::After(41), Start::Before(7), Start::Offset(30)] {
            let c = Cursor { version: 12, start };
            assert_eq!(Cursor::decode(&c.encode()).expect("decode"), c);
        }
        for junk in ["", "!!!", "MTJ4NDE", &"A".repeat(5000)] {
            assert!(Cursor::decode(junk).is_err(), "{junk}");
        }
    }
}
