//! The query of an items request: `bbox`, `datetime`, `limit`, `offset`, `cursor`,
//! `properties`, `crs`, `filter`, `sortby` and attribute equality, each parsed and checked
//! against the collection (an unknown name or a bad value is a 400 naming it) into the engine's
//! `Query`. The tiles and collections handlers share the bbox, filter and sortable rules.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};

use super::params::Params;
use super::{quote, ApiError, AppState};
use crate::catalog::{AttrType, CatalogEntry};
use crate::cql2::{self, Lang};
use crate::crs::{self, Crs};
use crate::engine::snapshot::{parse_value, Equals, Interval};
use crate::engine::{Filter, Query, SortKey, Source, Start};

pub const ITEM_PARAMS: &[&str] = &[
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
pub fn parse_filter(q: &Params, s: &dyn Source) -> Result<Option<Filter>, ApiError> {
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
    Filter::bind(&expr, s.entry(), crs, s.collation())
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
pub fn response_crs(q: &Params) -> Result<Crs, ApiError> {
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

/// An items request, parsed against one collection version.
pub struct ItemsRequest {
    pub query: Query,
    pub crs: Crs,
    pub limit: usize,
    pub cursor: Option<Cursor>,
    pub offset: Option<usize>,
    pub selected: Option<Vec<usize>>,
}

pub fn parse_items(q: &Params, s: &dyn Source, state: &AppState) -> Result<ItemsRequest, ApiError> {
    let attrs = &s.entry().attributes;
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
        query.sort = parse_sortby(sortby, s.entry())?;
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
