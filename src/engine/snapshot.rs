//! One immutable, queryable version of one collection: features in `fid` order, each with its
//! GeoJSON encoded once, an R-tree over their envelopes, and the values filters compare.
//! Built from a store's features; never changed after that (a new version is a new snapshot).

use chrono::{DateTime, Utc};
use geo::{BoundingRect, Intersects};
use rstar::{RStarInsertionStrategy, RTree, RTreeObject, RTreeParams, AABB};
use serde_json::Value as Json;

use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

use super::filter::Filter;
use crate::catalog::{AttrType, CatalogEntry};
use crate::collation::Collation;
use crate::store::{StoredFeature, Value};

/// A feature ready to serve.
#[derive(Debug)]
pub struct Feature {
    pub fid: i64,
    pub id: Box<str>,
    pub values: Box<[Value]>,
    pub geometry: Option<Geom>,
    /// The whole GeoJSON Feature, in CRS84, with every property.
    pub json: Box<str>,
    /// Instant of the collection's date/time attribute, for `datetime` queries.
    pub instant: Option<DateTime<Utc>>,
}

/// A feature's geometry, compact for the common case: a point is two numbers, anything else
/// a boxed `geo` geometry (a million points would otherwise carry a 56-byte enum each).
#[derive(Debug, Clone, PartialEq)]
pub enum Geom {
    Point(f64, f64),
    Shape(Box<geo::Geometry<f64>>),
}

impl Geom {
    pub fn to_geo(&self) -> geo::Geometry<f64> {
        match self {
            Geom::Point(x, y) => geo::Geometry::Point(geo::Point::new(*x, *y)),
            Geom::Shape(g) => (**g).clone(),
        }
    }

    fn from_geo(g: geo::Geometry<f64>) -> Self {
        match g {
            geo::Geometry::Point(p) => Geom::Point(p.x(), p.y()),
            other => Geom::Shape(Box::new(other)),
        }
    }
}

/// R-tree nodes of up to 16 entries instead of rstar's 6: the tree is bulk-loaded once per
/// snapshot and never inserted into, and a search then follows fewer pointers (5 levels
/// instead of 8 for 1M features) through children that lie side by side in memory.
pub struct WideNodes;

impl RTreeParams for WideNodes {
    const MIN_SIZE: usize = 6;
    const MAX_SIZE: usize = 16;
    const REINSERTION_COUNT: usize = 3;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

/// An R-tree entry: a feature's envelope and its index in [`Snapshot::features`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    env: AABB<[f64; 2]>,
    pub index: u32,
    /// The feature is a point, so its envelope is its geometry (fits in the padding).
    point: bool,
}

impl RTreeObject for Node {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

#[derive(Debug)]
pub struct Snapshot {
    pub entry: CatalogEntry,
    pub features: Vec<Feature>,
    tree: RTree<Node, WideNodes>,
    /// Where most of the features are: the 1st to 99th percentile of their envelopes' centres.
    /// Real files carry stray points (at 0,0, or with swapped coordinates); a map fitted to
    /// this box shows the data instead of the world.
    pub core_bbox: Option<[f64; 4]>,
    /// Feature indices sorted by id, for lookups by id without a second copy of every id.
    by_id: Vec<u32>,
    /// What the snapshot holds on the heap, estimated at build (for /metrics).
    pub memory_bytes: usize,
    /// How text is ordered (`sortby`, and the filters bound to this snapshot).
    collation: Collation,
    /// Per attribute, each feature's place among the attribute's texts in collation order
    /// ([`Collation::ranks`]), made on the first `sortby` on that attribute (a sort then
    /// compares integers); only for text attributes, 4 bytes a feature.
    text_ranks: Box<[OnceLock<Box<[u32]>>]>,
}

/// A filter on one attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Equals {
    pub attribute: usize,
    pub value: Value,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Offset(usize),
    /// Features with a larger `fid` than this (a `next` cursor).
    After(i64),
    /// The last page of features with a smaller `fid` than this (a `prev` cursor).
    Before(i64),
}

/// An inclusive time interval; a `None` end is open.
pub type Interval = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Boxes in CRS84 (two when a box crosses the antimeridian); a feature matches if it
    /// intersects any of them.
    pub bbox: Vec<[f64; 4]>,
    /// Inclusive interval; `None` ends are open.
    pub datetime: Option<Interval>,
    pub equals: Vec<Equals>,
    /// A CQL2 filter bound to this collection.
    pub filter: Option<Arc<Filter>>,
    /// Sort keys, most significant first; empty is `fid` order.
    pub sort: Vec<SortKey>,
    /// Set when the request's deadline has passed: the scan stops early, and the caller,
    /// which set it, discards what it returns.
    pub cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Query {
    pub fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// True when the query tests nothing but (perhaps) boxes: no time, attributes, filter or
    /// order.
    fn plain(&self) -> bool {
        self.datetime.is_none()
            && self.equals.is_empty()
            && self.filter.is_none()
            && self.sort.is_empty()
    }
}

/// One `sortby` key: an attribute and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub attribute: usize,
    pub descending: bool,
}

#[derive(Debug)]
pub struct Page {
    pub matched: usize,
    /// Indices into [`Snapshot::features`], in `fid` order.
    pub items: Vec<u32>,
    /// Position of the first returned item among all matches (for offset links).
    pub first_position: usize,
    pub has_more: bool,
}

fn envelope(g: &geo::Geometry<f64>) -> Option<AABB<[f64; 2]>> {
    g.bounding_rect()
        .map(|r| AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]))
}

/// Writes `{"type":"Feature","id":…,"geometry":…,"properties":{…}}`, straight into a string
/// (this runs once per feature at start-up, so it avoids building a JSON tree first).
/// A geometry as GeoJSON (`null` for none), points written directly.
pub fn push_geometry(out: &mut String, geometry: Option<&geo::Geometry<f64>>) {
    match geometry {
        None => out.push_str("null"),
        Some(geo::Geometry::Point(p)) => {
            out.push_str("{\"type\":\"Point\",\"coordinates\":[");
            push_number(out, p.x());
            out.push(',');
            push_number(out, p.y());
            out.push_str("]}");
        }
        Some(g) => out.push_str(
            &serde_json::to_string(&geojson::Geometry::from(g)).unwrap_or_else(|_| "null".into()),
        ),
    }
}

pub fn feature_json(
    entry: &CatalogEntry,
    id: &str,
    geometry: Option<&geo::Geometry<f64>>,
    values: &[Value],
    selected: Option<&[usize]>,
) -> String {
    let mut out = String::with_capacity(128 + values.len() * 24);
    out.push_str("{\"type\":\"Feature\",\"id\":");
    out.push_str(&id_json(id).to_string());
    out.push_str(",\"geometry\":");
    push_geometry(&mut out, geometry);
    out.push_str(",\"properties\":{");
    let mut first = true;
    let mut prop = |name: &str, v: &Value| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&Json::String(name.to_string()).to_string());
        out.push(':');
        out.push_str(&v.to_json().to_string());
    };
    match selected {
        Some(sel) => {
            for &i in sel {
                prop(&entry.attributes[i].name, &values[i]);
            }
        }
        None => {
            for (a, v) in entry.attributes.iter().zip(values) {
                prop(&a.name, v);
            }
        }
    }
    out.push_str("}}");
    out
}

fn push_number(out: &mut String, v: f64) {
    match serde_json::Number::from_f64(v) {
        Some(n) => out.push_str(&n.to_string()),
        None => out.push_str("null"),
    }
}

/// Feature ids that are plain integers are served as JSON numbers, others as strings.
pub fn id_json(id: &str) -> Json {
    match id.parse::<i64>() {
        Ok(n) if id_is_integer(id) => Json::from(n),
        _ => Json::String(id.to_string()),
    }
}

/// Whether [`id_json`] serves `id` as a JSON number: digits only, no leading zero, fewer than
/// 16 of them.
pub fn id_is_integer(id: &str) -> bool {
    !id.is_empty()
        && id.len() < 16
        && id.bytes().all(|b| b.is_ascii_digit())
        && !(id.len() > 1 && id.starts_with('0'))
}

fn instant(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Date(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
        Value::DateTime(t) => Some(t.with_timezone(&Utc)),
        _ => None,
    }
}

/// Parses ISO WKB into a `geo` geometry: points directly (most features of large collections
/// are points), anything else through GDAL, which wrote it.
pub fn geometry_from_wkb(wkb: &[u8]) -> Option<geo::Geometry<f64>> {
    if wkb.len() == 21 {
        let little = wkb[0] == 1;
        let word = |b: &[u8]| -> Option<[u8; 8]> { b.try_into().ok() };
        let ty = if little {
            u32::from_le_bytes(wkb[1..5].try_into().ok()?)
        } else {
            u32::from_be_bytes(wkb[1..5].try_into().ok()?)
        };
        if ty == 1 {
            let (x, y) = (word(&wkb[5..13])?, word(&wkb[13..21])?);
            let (x, y) = if little {
                (f64::from_le_bytes(x), f64::from_le_bytes(y))
            } else {
                (f64::from_be_bytes(x), f64::from_be_bytes(y))
            };
            return Some(geo::Geometry::Point(geo::Point::new(x, y)));
        }
    }
    gdal::vector::Geometry::from_wkb(wkb).ok()?.to_geo().ok()
}

impl Snapshot {
    pub fn build(entry: CatalogEntry, stored: Vec<StoredFeature>, collation: Collation) -> Self {
        let datetime_attr = entry
            .datetime_field
            .as_ref()
            .and_then(|n| entry.attributes.iter().position(|a| &a.name == n));
        let mut features = Vec::with_capacity(stored.len());
        let mut nodes = Vec::with_capacity(stored.len());
        for (i, f) in stored.into_iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let geometry = f.geometry.as_deref().and_then(geometry_from_wkb);
            if let Some(env) = geometry.as_ref().and_then(envelope) {
                let point = matches!(geometry, Some(geo::Geometry::Point(_)));
                nodes.push(Node { env, index, point });
            }
            let json =
                feature_json(&entry, &f.id, geometry.as_ref(), &f.values, None).into_boxed_str();
            features.push(Feature {
                fid: f.fid,
                instant: datetime_attr.and_then(|a| instant(&f.values[a])),
                id: f.id.into_boxed_str(),
                values: f.values.into_boxed_slice(),
                geometry: geometry.map(Geom::from_geo),
                json,
            });
        }
        let core_bbox = core_bbox(&nodes);
        let mut by_id: Vec<u32> = (0..features.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| features[a as usize].id.cmp(&features[b as usize].id));
        let memory_bytes = estimate_memory(&features);
        let text_ranks = entry.attributes.iter().map(|_| OnceLock::new()).collect();
        Self {
            entry,
            features,
            tree: RTree::bulk_load_with_params(nodes),
            core_bbox,
            by_id,
            memory_bytes,
            collation,
            text_ranks,
        }
    }

    pub fn version(&self) -> i64 {
        self.entry.version
    }

    /// The order of text in this snapshot, for binding filters to it.
    pub fn collation(&self) -> &Collation {
        &self.collation
    }

    /// Ranks of a text attribute's values in collation order, made once per snapshot.
    fn ranks(&self, attribute: usize) -> Option<&[u32]> {
        if self.entry.attributes.get(attribute)?.kind != AttrType::Text {
            return None;
        }
        let ranks = self.text_ranks.get(attribute)?.get_or_init(|| {
            self.collation
                .ranks(self.features.iter().map(|f| match f.values.get(attribute) {
                    Some(Value::Text(t)) => Some(t.as_str()),
                    _ => None,
                }))
        });
        Some(ranks)
    }

    pub fn get(&self, id: &str) -> Option<&Feature> {
        self.by_id
            .binary_search_by(|&i| (*self.features[i as usize].id).cmp(id))
            .ok()
            .map(|pos| &self.features[self.by_id[pos] as usize])
    }

    fn matches(&self, f: &Feature, q: &Query) -> bool {
        if let Some((from, to)) = q.datetime {
            if self.entry.datetime_field.is_some() {
                let Some(t) = f.instant else { return false };
                if from.is_some_and(|a| t < a) || to.is_some_and(|b| t > b) {
                    return false;
                }
            }
        }
        q.equals
            .iter()
            .all(|e| values_equal(&f.values[e.attribute], &e.value))
            && q.filter.as_ref().is_none_or(|filter| filter.matches(f))
    }

    /// The matching features' indices in `fid` order.
    pub fn select(&self, q: &Query) -> Vec<u32> {
        // A filter's spatial part narrows the R-tree search; the filter itself decides.
        let envelope = q.filter.as_ref().and_then(|f| f.envelope());
        if let Some(e) = envelope {
            if e[0] > e[2] || e[1] > e[3] {
                return Vec::new();
            }
        }
        if q.bbox.is_empty() {
            let Some(e) = envelope else {
                return (0..self.features.len() as u32)
                    .take_while(|i| i % 1024 != 0 || !q.cancelled())
                    .filter(|&i| self.matches(&self.features[i as usize], q))
                    .collect();
            };
            let aabb = AABB::from_corners([e[0], e[1]], [e[2], e[3]]);
            let mut out: Vec<u32> = self
                .tree
                .locate_in_envelope_intersecting(&aabb)
                .take_while(|_| !q.cancelled())
                .filter(|n| self.matches(&self.features[n.index as usize], q))
                .map(|n| n.index)
                .collect();
            out.sort_unstable();
            return out;
        }
        let attribute_test = q.datetime.is_some() || !q.equals.is_empty() || q.filter.is_some();
        let mut out: Vec<u32> = Vec::new();
        for b in &q.bbox {
            let search = match envelope {
                None => *b,
                Some(e) => [
                    b[0].max(e[0]),
                    b[1].max(e[1]),
                    b[2].min(e[2]),
                    b[3].min(e[3]),
                ],
            };
            if search[0] > search[2] || search[1] > search[3] {
                continue;
            }
            let aabb = AABB::from_corners([search[0], search[1]], [search[2], search[3]]);
            let rect = geo::Rect::new(
                geo::coord! { x: b[0], y: b[1] },
                geo::coord! { x: b[2], y: b[3] },
            );
            for node in self
                .tree
                .locate_in_envelope_intersecting(&aabb)
                .take_while(|_| !q.cancelled())
            {
                // A point's envelope is the point, so the envelope test was exact and, with no
                // attribute test either, the feature itself need not be read here: it lies
                // elsewhere in memory, and reading it is most of the cost of a small tile.
                // (A zero-area envelope is not enough: a one-vertex line has one and meets
                // nothing.)
                if !attribute_test && node.point {
                    out.push(node.index);
                    continue;
                }
                let f = &self.features[node.index as usize];
                // Envelopes overlap; for anything but a point, check the geometry itself.
                let exact = match &f.geometry {
                    Some(Geom::Point(..)) | None => true,
                    Some(Geom::Shape(g)) => g.intersects(&rect),
                };
                if exact && self.matches(f, q) {
                    out.push(node.index);
                }
            }
        }
        // Index order is fid order (features are stored sorted).
        out.sort_unstable();
        out.dedup();
        out
    }

    /// About how many features a query must look at: all of them without a box (or a
    /// filter's spatial part), else the collection's size times the share of its core area
    /// the boxes cover. A plain page with no box is 0: it reads only the page. Cheap (no
    /// search); used to decide which requests are heavy.
    pub fn estimate(&self, q: &Query) -> usize {
        let n = self.features.len();
        let envelope = q.filter.as_ref().and_then(|f| f.envelope());
        let boxes: Vec<[f64; 4]> = match (q.bbox.is_empty(), envelope) {
            (false, _) => q.bbox.clone(),
            (true, Some(e)) => vec![e],
            (true, None) if q.plain() => return 0,
            (true, None) => return n,
        };
        let Some(core) = self.core_bbox else {
            return 0;
        };
        let area = |b: [f64; 4]| (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0);
        let covered: f64 = boxes
            .iter()
            .map(|b| {
                area([
                    b[0].max(core[0]),
                    b[1].max(core[1]),
                    b[2].min(core[2]),
                    b[3].min(core[3]),
                ])
            })
            .sum();
        let share = (covered / area(core).max(1e-12)).min(1.0);
        (n as f64 * share).ceil() as usize
    }

    pub fn query(&self, q: &Query, start: Start, limit: usize) -> Page {
        let mut all = self.select(q);
        if !q.sort.is_empty() {
            let keys: Vec<(SortKey, Option<&[u32]>)> = q
                .sort
                .iter()
                .map(|k| (*k, self.ranks(k.attribute)))
                .collect();
            // Stable: equal keys stay in fid order, so pages are deterministic.
            all.sort_by(|&a, &b| {
                let (fa, fb) = (&self.features[a as usize], &self.features[b as usize]);
                keys.iter()
                    .map(|(k, ranks)| {
                        sort_order(
                            &fa.values[k.attribute],
                            &fb.values[k.attribute],
                            k.descending,
                            |x, y| match ranks {
                                Some(r) => r[a as usize].cmp(&r[b as usize]),
                                None => self.collation.compare(x, y),
                            },
                        )
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            });
        }
        let matched = all.len();
        let fid = |i: u32| self.features[i as usize].fid;
        let (from, to) = match start {
            Start::Offset(o) => (o.min(matched), o.saturating_add(limit).min(matched)),
            Start::After(after) => {
                let from = all.partition_point(|&i| fid(i) <= after);
                (from, from.saturating_add(limit).min(matched))
            }
            Start::Before(before) => {
                let to = all.partition_point(|&i| fid(i) < before);
                (to.saturating_sub(limit), to)
            }
        };
        Page {
            matched,
            items: all[from..to].to_vec(),
            first_position: from,
            has_more: to < matched,
        }
    }
}

fn core_bbox(nodes: &[Node]) -> Option<[f64; 4]> {
    if nodes.is_empty() {
        return None;
    }
    let mut xs: Vec<f64> = nodes
        .iter()
        .map(|n| (n.env.lower()[0] + n.env.upper()[0]) / 2.0)
        .collect();
    let mut ys: Vec<f64> = nodes
        .iter()
        .map(|n| (n.env.lower()[1] + n.env.upper()[1]) / 2.0)
        .collect();
    xs.sort_by(f64::total_cmp);
    ys.sort_by(f64::total_cmp);
    let q = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let (w, s, e, n) = (q(&xs, 0.01), q(&ys, 0.01), q(&xs, 0.99), q(&ys, 0.99));
    // A single point, or all on a line: give the box some size.
    let pad = 0.005;
    Some([w - pad, s - pad, e + pad, n + pad])
}

/// Order of two values of one attribute for `sortby`; missing values come last either way.
/// Two texts are ordered by `text` (the collation, or ranks made from it).
fn sort_order(
    a: &Value,
    b: &Value,
    descending: bool,
    text: impl FnOnce(&str, &str) -> Ordering,
) -> Ordering {
    let o = match (a, b) {
        (Value::Null, Value::Null) => return Ordering::Equal,
        (Value::Null, _) => return Ordering::Greater,
        (_, Value::Null) => return Ordering::Less,
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Integer(x), Value::Real(y)) => (*x as f64).total_cmp(y),
        (Value::Real(x), Value::Integer(y)) => x.total_cmp(&(*y as f64)),
        (Value::Real(x), Value::Real(y)) => x.total_cmp(y),
        (Value::Text(x), Value::Text(y)) => text(x, y),
        (Value::Boolean(x), Value::Boolean(y)) => x.cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        (Value::DateTime(x), Value::DateTime(y)) => x.cmp(y),
        // Values of different kinds in one column (a list among numbers): ordered by kind, so
        // the order stays total, as sorting requires.
        (a, b) => kind_rank(a).cmp(&kind_rank(b)),
    };
    if descending {
        o.reverse()
    } else {
        o
    }
}

fn kind_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Integer(_) | Value::Real(_) => 1,
        Value::Text(_) => 2,
        Value::Boolean(_) => 3,
        Value::Date(_) => 4,
        Value::DateTime(_) => 5,
        Value::Json(_) => 6,
    }
}

fn values_equal(stored: &Value, wanted: &Value) -> bool {
    match (stored, wanted) {
        (Value::Integer(a), Value::Real(b)) | (Value::Real(b), Value::Integer(a)) => {
            (*a as f64) == *b
        }
        (Value::DateTime(a), Value::DateTime(b)) => a == b,
        (a, b) => a == b,
    }
}

/// Parses a query-string value for an attribute of type `kind`; `None` if it cannot be one.
pub fn parse_value(kind: AttrType, text: &str) -> Option<Value> {
    Some(match kind {
        AttrType::Integer => match text.parse::<i64>() {
            Ok(i) => Value::Integer(i),
            Err(_) => Value::Real(text.parse::<f64>().ok().filter(|f| f.is_finite())?),
        },
        AttrType::Real => Value::Real(text.parse::<f64>().ok().filter(|f| f.is_finite())?),
        AttrType::Text | AttrType::Json => Value::Text(text.to_string()),
        AttrType::Boolean => match text {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return None,
        },
        AttrType::Date => Value::Date(chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?),
        AttrType::DateTime => Value::DateTime(DateTime::parse_from_rfc3339(text).ok()?),
    })
}

/// Heap bytes of the features, the R-tree and the id index: an estimate from sizes and string
/// lengths (allocator overhead not counted), good enough to see which collection costs what.
fn estimate_memory(features: &[Feature]) -> usize {
    use geo::CoordsIter;
    use std::mem::size_of;
    let per_feature = size_of::<Feature>() + size_of::<Node>() + size_of::<u32>();
    features
        .iter()
        .map(|f| {
            let values: usize = f
                .values
                .iter()
                .map(|v| {
                    size_of::<Value>()
                        + match v {
                            Value::Text(t) => t.len(),
                            Value::Json(j) => j.to_string().len() + 72,
                            _ => 0,
                        }
                })
                .sum();
            let geometry = match &f.geometry {
                Some(Geom::Shape(g)) => 64 + g.coords_count() * 16,
                _ => 0,
            };
            per_feature + f.id.len() + f.json.len() + values + geometry
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn names_snapshot(names: &[Option<&str>], collation: &str) -> Snapshot {
        let entry: CatalogEntry = serde_json::from_value(serde_json::json!({
            "id": "t", "title": "t", "description": null, "keywords": [], "theme": null,
            "publisher": null, "licence": null,
            "source": {"name": "t.geojson", "sha256": "0", "layer": "t", "crs": "EPSG:4326"},
            "attributes": [
                {"name": "namn", "column": "namn", "type": "text"},
                {"name": "nr", "column": "nr", "type": "integer"}
            ],
            "geometry_types": ["Point"], "id_field": null, "datetime_field": null,
            "feature_count": names.len(), "extent": null, "temporal_extent": null,
            "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
            "zoom": [0, 22], "version": 1
        }))
        .expect("a catalog entry");
        let stored = names
            .iter()
            .enumerate()
            .map(|(i, n)| StoredFeature {
                fid: i as i64 + 1,
                id: (i + 1).to_string(),
                values: vec![
                    n.map_or(Value::Null, |n| Value::Text(n.into())),
                    Value::Integer(i as i64 % 2),
                ],
                geometry: None,
            })
            .collect();
        Snapshot::build(
            entry,
            stored,
            Collation::parse(collation).expect("collation"),
        )
    }

    fn sorted(s: &Snapshot, sort: Vec<SortKey>) -> Vec<Option<String>> {
        let q = Query {
            sort,
            ..Query::default()
        };
        s.query(&q, Start::Offset(0), usize::MAX)
            .items
            .iter()
            .map(|&i| match &s.features[i as usize].values[0] {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    const NAMES: &[Option<&str>] = &[
        Some("Örkelljunga"),
        None,
        Some("apelsin"),
        Some("Åhus"),
        Some("Zebra"),
        Some("Ängelholm"),
        Some("10"),
        Some("2"),
        Some("Apelsin"),
    ];

    #[rstest]
    #[case::swedish("sv", false, &["10", "2", "apelsin", "Apelsin", "Zebra", "Åhus", "Ängelholm", "Örkelljunga"])]
    #[case::swedish_descending("sv", true, &["Örkelljunga", "Ängelholm", "Åhus", "Zebra", "Apelsin", "apelsin", "2", "10"])]
    #[case::root("und", false, &["10", "2", "Åhus", "Ängelholm", "apelsin", "Apelsin", "Örkelljunga", "Zebra"])]
    #[case::bytes("bytes", false, &["10", "2", "Apelsin", "Zebra", "apelsin", "Ängelholm", "Åhus", "Örkelljunga"])]
    fn sortby_text_follows_the_collation(
        #[case] collation: &str,
        #[case] descending: bool,
        #[case] want: &[&str],
    ) {
        let s = names_snapshot(NAMES, collation);
        let got = sorted(
            &s,
            vec![SortKey {
                attribute: 0,
                descending,
            }],
        );
        let mut want: Vec<Option<String>> = want.iter().map(|w| Some(w.to_string())).collect();
        // Missing values last, either way.
        want.push(None);
        assert_eq!(got, want);
    }

    /// The ranks a sort uses give the order `sort_order` gives with the collation itself.
    #[rstest]
    #[case("sv")]
    #[case("und")]
    #[case("bytes")]
    fn ranks_and_collation_sort_alike(#[case] collation: &str) {
        let s = names_snapshot(NAMES, collation);
        let keys = vec![
            SortKey {
                attribute: 1,
                descending: true,
            },
            SortKey {
                attribute: 0,
                descending: false,
            },
        ];
        let mut want: Vec<usize> = (0..s.features.len()).collect();
        want.sort_by(|&a, &b| {
            let (fa, fb) = (&s.features[a], &s.features[b]);
            keys.iter()
                .map(|k| {
                    sort_order(
                        &fa.values[k.attribute],
                        &fb.values[k.attribute],
                        k.descending,
                        |x, y| s.collation().compare(x, y),
                    )
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        let want: Vec<Option<String>> = want
            .iter()
            .map(|&i| match &s.features[i].values[0] {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(sorted(&s, keys), want);
    }
}
