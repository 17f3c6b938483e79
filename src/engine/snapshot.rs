//! One immutable, queryable version of one collection: features in `fid` order, each with its
//! GeoJSON encoded once, an R-tree over their envelopes, and the values filters compare.
//! Built from a store's features; never changed after that (a new version is a new snapshot).

use chrono::{DateTime, Datelike, Utc};
use geo::{BoundingRect, Intersects};
use rstar::{RStarInsertionStrategy, RTree, RTreeObject, RTreeParams, AABB};
use serde_json::Value as Json;

use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

use super::filter::Filter;
use crate::catalog::{id_is_integer, AttrType, CatalogEntry};
use crate::collation::Collation;
use crate::store::{StoredFeature, Value};

/// A feature ready to serve: its sequence number and geometry as fields, and everything else
/// (id, values, the pre-encoded GeoJSON) in one string, its data, read through the methods
/// below.
///
/// A feature used to be six fields with heap blocks of their own for the id, the values, every
/// text value and the JSON: some 750 bytes a point with five attributes. Here it is 56 bytes
/// and its data, which lies in a block shared with the features next to it ([`Packer`]): a
/// short record of the values, then the GeoJSON. Texts and the id are not stored twice: the
/// record points at them inside the GeoJSON (only those that JSON escapes are kept again, after
/// it). BENCHMARKS.md, "Memory per feature (issue 14)".
///
/// The data is `[record length][record][GeoJSON][unescaped texts]`, the record and its length in
/// the 7-bit code of [`put`], so the whole is valid UTF-8 and `json()` is a plain slice. The
/// record is `[GeoJSON length][date/time attribute + 1, or 0][id at][id length]` and a tagged
/// entry per attribute ([`tag`]); offsets count from the GeoJSON's start.
#[derive(Debug, Clone)]
pub struct Feature {
    pub fid: i64,
    pub geometry: Option<Geom>,
    /// Shared with the features built before and after it; this one's data is
    /// `block[at..at + len]`.
    block: Arc<str>,
    at: u32,
    len: u32,
}

/// Record entry tags; what follows each tag is in [`Feature::value`].
mod tag {
    pub const NULL: u8 = 0;
    pub const INTEGER: u8 = 1;
    pub const REAL: u8 = 2;
    pub const TEXT: u8 = 3;
    pub const FALSE: u8 = 4;
    pub const TRUE: u8 = 5;
    pub const DATE: u8 = 6;
    pub const DATETIME: u8 = 7;
    pub const JSON: u8 = 8;
}

/// Appends `v` six bits a byte, low bits first, bit 6 set on all but the last byte: every byte
/// is ASCII, so a record is text.
fn put(out: &mut String, mut v: u64) {
    loop {
        let low = (v & 0x3f) as u8;
        v >>= 6;
        if v == 0 {
            out.push(char::from(low));
            return;
        }
        out.push(char::from(low | 0x40));
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads what [`put`] wrote at `*pos`, moving `*pos` past it.
fn get(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0u32;
    while let Some(&b) = bytes.get(*pos) {
        *pos += 1;
        if shift < 64 {
            v |= u64::from(b & 0x3f) << shift;
        }
        if b & 0x40 == 0 {
            break;
        }
        shift += 6;
    }
    v
}

fn skip(bytes: &[u8], pos: &mut usize) {
    while let Some(&b) = bytes.get(*pos) {
        *pos += 1;
        if b & 0x40 == 0 {
            break;
        }
    }
}

/// One attribute value of a feature, borrowed from it: what [`Value`] is, without a heap block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Boolean(bool),
    Date(chrono::NaiveDate),
    DateTime(DateTime<chrono::FixedOffset>),
    /// The value as the GeoJSON has it (JSON text).
    Json(&'a str),
}

impl ValueRef<'_> {
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(t) => Value::Text(t.to_string()),
            ValueRef::Boolean(b) => Value::Boolean(b),
            ValueRef::Date(d) => Value::Date(d),
            ValueRef::DateTime(t) => Value::DateTime(t),
            ValueRef::Json(j) => Value::Json(Box::new(serde_json::from_str(j).unwrap_or_default())),
        }
    }

    /// A date or date-time as an instant, as [`Value::instant`].
    pub fn instant(self) -> Option<DateTime<Utc>> {
        match self {
            ValueRef::Date(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
            ValueRef::DateTime(t) => Some(t.with_timezone(&Utc)),
            _ => None,
        }
    }

    /// Whether the value equals `wanted` as an `equals` query compares them: numbers by value,
    /// date-times as instants, everything else exactly.
    fn equals(self, wanted: &Value) -> bool {
        match (self, wanted) {
            (ValueRef::Integer(a), Value::Real(b)) => (a as f64) == *b,
            (ValueRef::Real(a), Value::Integer(b)) => a == (*b as f64),
            (ValueRef::Null, Value::Null) => true,
            (ValueRef::Integer(a), Value::Integer(b)) => a == *b,
            (ValueRef::Real(a), Value::Real(b)) => a == *b,
            (ValueRef::Text(a), Value::Text(b)) => a == b,
            (ValueRef::Boolean(a), Value::Boolean(b)) => a == *b,
            (ValueRef::Date(a), Value::Date(b)) => a == *b,
            (ValueRef::DateTime(a), Value::DateTime(b)) => a == *b,
            (ValueRef::Json(_), Value::Json(_)) => self.to_value() == *wanted,
            _ => false,
        }
    }
}

/// Where the building of a feature's GeoJSON put the id and each text or JSON value, so the
/// record can point there instead of keeping a copy.
#[derive(Default)]
struct Spans {
    id: Option<(usize, usize)>,
    /// Per attribute, in order.
    values: Vec<Option<(usize, usize)>>,
}

/// Writes `s` as a JSON string. Returns where `s` itself lies in `out` if it went in unescaped.
fn push_json_str(out: &mut String, s: &str) -> Option<(usize, usize)> {
    // serde_json escapes nothing else: quote, backslash and control characters.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        let at = out.len();
        out.push_str(s);
        out.push('"');
        Some((at, s.len()))
    } else {
        out.push_str(&Json::String(s.to_string()).to_string());
        None
    }
}

/// Scratch space for encoding features' data, reused from one feature to the next: at
/// start-up, blocks freed between the features' data would be holes the size of a few of them.
#[derive(Default)]
struct Encoder {
    json: String,
    spans: Spans,
    extra: String,
    record: String,
    data: String,
}

impl Encoder {
    /// The data of a feature of `entry` (see [`Feature`]), its GeoJSON as [`feature_json`]
    /// writes it.
    fn feature(
        &mut self,
        entry: &CatalogEntry,
        datetime: Option<usize>,
        id: &str,
        values: &[Value],
        geometry: Option<&geo::Geometry<f64>>,
    ) -> &str {
        self.json.clear();
        write_feature(
            &mut self.json,
            entry,
            id,
            geometry,
            values,
            None,
            Some(&mut self.spans),
        );
        self.pack(id, values, datetime)
    }

    /// The data of a feature whose GeoJSON is `self.json`, with ids and texts where
    /// `self.spans` says.
    fn pack(&mut self, id: &str, values: &[Value], datetime: Option<usize>) -> &str {
        let Encoder {
            json,
            spans,
            extra,
            record,
            data,
        } = self;
        extra.clear();
        record.clear();
        let mut place = |span: Option<(usize, usize)>, text: &str| match span {
            Some(s) => s,
            None => {
                let at = json.len() + extra.len();
                extra.push_str(text);
                (at, text.len())
            }
        };
        put(record, json.len() as u64);
        put(record, datetime.map_or(0, |d| d as u64 + 1));
        let (at, len) = place(spans.id, id);
        put(record, at as u64);
        put(record, len as u64);
        for (i, v) in values.iter().enumerate() {
            let span = spans.values.get(i).copied().flatten();
            match v {
                Value::Null => record.push(char::from(tag::NULL)),
                Value::Integer(n) => {
                    record.push(char::from(tag::INTEGER));
                    put(record, zigzag(*n));
                }
                Value::Real(r) => {
                    record.push(char::from(tag::REAL));
                    put(record, r.to_bits());
                }
                Value::Text(t) => {
                    record.push(char::from(tag::TEXT));
                    let (at, len) = place(span, t);
                    put(record, at as u64);
                    put(record, len as u64);
                }
                Value::Boolean(b) => {
                    record.push(char::from(if *b { tag::TRUE } else { tag::FALSE }));
                }
                Value::Date(d) => {
                    record.push(char::from(tag::DATE));
                    put(record, zigzag(i64::from(d.num_days_from_ce())));
                }
                Value::DateTime(t) => {
                    record.push(char::from(tag::DATETIME));
                    put(record, zigzag(t.timestamp()));
                    put(record, u64::from(t.timestamp_subsec_nanos()));
                    put(record, zigzag(i64::from(t.offset().local_minus_utc())));
                }
                Value::Json(j) => {
                    record.push(char::from(tag::JSON));
                    let text = j.to_string();
                    let (at, len) = place(span, &text);
                    put(record, at as u64);
                    put(record, len as u64);
                }
            }
        }
        data.clear();
        put(data, record.len() as u64);
        data.push_str(record);
        data.push_str(json);
        data.push_str(extra);
        data
    }
}

/// About how many bytes of features' data share one block.
const BLOCK: usize = 1 << 20;

/// Packs features' data into shared blocks of about [`BLOCK`] bytes, in order: one block of
/// its own per feature would cost the allocator's header and rounding (some 16 bytes) and, at
/// start-up, leave holes where the rows read from the store were freed (some 60 bytes more a
/// point).
#[derive(Default)]
struct Packer {
    block: String,
    /// Features whose data is in `block`: fid, geometry, where and how long.
    pending: Vec<(i64, Option<Geom>, usize, usize)>,
    features: Vec<Feature>,
}

impl Packer {
    fn push(&mut self, fid: i64, geometry: Option<Geom>, data: &str) {
        if !self.block.is_empty() && self.block.len() + data.len() > BLOCK {
            self.flush();
        }
        self.pending
            .push((fid, geometry, self.block.len(), data.len()));
        self.block.push_str(data);
    }

    fn flush(&mut self) {
        let block: Arc<str> = Arc::from(self.block.as_str());
        for (fid, geometry, at, len) in self.pending.drain(..) {
            self.features.push(Feature {
                fid,
                geometry,
                block: block.clone(),
                at: u32::try_from(at).unwrap_or(u32::MAX),
                len: u32::try_from(len).unwrap_or(0),
            });
        }
        self.block.clear();
    }

    fn finish(mut self) -> Vec<Feature> {
        if !self.pending.is_empty() {
            self.flush();
        }
        self.features
    }
}

impl Feature {
    /// A feature of `entry`, its GeoJSON encoded as [`feature_json`] encodes it.
    pub fn new(
        entry: &CatalogEntry,
        fid: i64,
        id: &str,
        values: &[Value],
        geometry: Option<geo::Geometry<f64>>,
    ) -> Self {
        let mut encoder = Encoder::default();
        let data = encoder.feature(
            entry,
            datetime_attribute(entry),
            id,
            values,
            geometry.as_ref(),
        );
        Self::alone(fid, geometry.map(Geom::from_geo), data)
    }

    /// A feature without its GeoJSON (its text is empty; the id and values are in its record
    /// as in any other): for the PostGIS engine's tiles, which encode ids, values and
    /// geometry only, and would spend most of their time writing JSON nobody reads.
    pub fn without_json(
        entry: &CatalogEntry,
        fid: i64,
        id: &str,
        values: &[Value],
        geometry: Option<geo::Geometry<f64>>,
    ) -> Self {
        let mut encoder = Encoder::default();
        let data = encoder.pack(id, values, datetime_attribute(entry));
        Self::alone(fid, geometry.map(Geom::from_geo), data)
    }

    /// A feature with the given GeoJSON text, which need not contain the id or the values (for
    /// tests of what is done with the text).
    #[cfg(test)]
    pub fn with_json(fid: i64, id: &str, geometry: Option<Geom>, json: &str) -> Self {
        let mut encoder = Encoder {
            json: json.to_string(),
            ..Encoder::default()
        };
        let data = encoder.pack(id, &[], None);
        Self::alone(fid, geometry, data)
    }

    /// A feature with a block of its own.
    fn alone(fid: i64, geometry: Option<Geom>, data: &str) -> Self {
        Self {
            fid,
            geometry,
            block: Arc::from(data),
            at: 0,
            len: u32::try_from(data.len()).unwrap_or(0),
        }
    }

    /// This feature's part of its block.
    fn data(&self) -> &str {
        let at = self.at as usize;
        self.block
            .get(at..at.saturating_add(self.len as usize))
            .unwrap_or("")
    }

    /// Where the record starts, where the GeoJSON starts, and the GeoJSON's length.
    fn layout(&self) -> (usize, usize, usize) {
        let b = self.data().as_bytes();
        let mut pos = 0;
        let record = get(b, &mut pos) as usize;
        let start = pos;
        let json_len = get(b, &mut pos) as usize;
        (start, start + record, json_len)
    }

    /// Text at a record offset (from the GeoJSON's start).
    fn text(&self, json_at: usize, at: u64, len: u64) -> &str {
        let from = json_at.saturating_add(at as usize);
        self.data()
            .get(from..from.saturating_add(len as usize))
            .unwrap_or("")
    }

    /// The whole GeoJSON Feature, in CRS84, with every property.
    pub fn json(&self) -> &str {
        let (_, at, len) = self.layout();
        self.data().get(at..at.saturating_add(len)).unwrap_or("")
    }

    /// The public feature id.
    pub fn id(&self) -> &str {
        let (mut pos, json_at, _) = self.layout();
        let b = self.data().as_bytes();
        skip(b, &mut pos);
        skip(b, &mut pos);
        let at = get(b, &mut pos);
        let len = get(b, &mut pos);
        self.text(json_at, at, len)
    }

    /// Position just past the id in the record.
    fn values_start(&self) -> (usize, usize) {
        let (mut pos, json_at, _) = self.layout();
        let b = self.data().as_bytes();
        for _ in 0..4 {
            skip(b, &mut pos);
        }
        (pos, json_at)
    }

    /// The value of attribute `attribute`; `None` past the last attribute.
    pub fn value(&self, attribute: usize) -> Option<ValueRef<'_>> {
        let (mut pos, json_at) = self.values_start();
        for _ in 0..attribute {
            self.skip_entry(&mut pos)?;
        }
        self.entry(&mut pos, json_at)
    }

    /// The values, in attribute order, borrowed.
    pub fn value_refs(&self) -> impl Iterator<Item = ValueRef<'_>> {
        let (mut pos, json_at) = self.values_start();
        std::iter::from_fn(move || self.entry(&mut pos, json_at))
    }

    /// The values, in attribute order, as owned [`Value`]s.
    pub fn values(&self) -> Vec<Value> {
        self.value_refs().map(ValueRef::to_value).collect()
    }

    /// Instant of the collection's date/time attribute, for `datetime` queries.
    pub fn instant(&self) -> Option<DateTime<Utc>> {
        let (mut pos, _, _) = self.layout();
        let b = self.data().as_bytes();
        skip(b, &mut pos);
        let attribute = get(b, &mut pos).checked_sub(1)?;
        self.value(usize::try_from(attribute).ok()?)?.instant()
    }

    /// Reads one byte of each cache line of the feature's data, for loading features ahead of
    /// their use (see `tiles::mvt`); returns them summed, so the reads are not optimised away.
    pub fn touch(&self) -> usize {
        self.data()
            .as_bytes()
            .iter()
            .step_by(64)
            .map(|&b| usize::from(b))
            .sum()
    }

    fn skip_entry(&self, pos: &mut usize) -> Option<()> {
        let b = self.data().as_bytes();
        let t = *b.get(*pos)?;
        *pos += 1;
        let words = match t {
            tag::NULL | tag::FALSE | tag::TRUE => 0,
            tag::INTEGER | tag::REAL | tag::DATE => 1,
            tag::TEXT | tag::JSON => 2,
            tag::DATETIME => 3,
            _ => return None,
        };
        for _ in 0..words {
            skip(b, pos);
        }
        Some(())
    }

    fn entry(&self, pos: &mut usize, json_at: usize) -> Option<ValueRef<'_>> {
        let b = self.data().as_bytes();
        if *pos >= json_at {
            return None;
        }
        let t = *b.get(*pos)?;
        *pos += 1;
        Some(match t {
            tag::NULL => ValueRef::Null,
            tag::INTEGER => ValueRef::Integer(unzigzag(get(b, pos))),
            tag::REAL => ValueRef::Real(f64::from_bits(get(b, pos))),
            tag::TEXT => {
                let at = get(b, pos);
                ValueRef::Text(self.text(json_at, at, get(b, pos)))
            }
            tag::FALSE => ValueRef::Boolean(false),
            tag::TRUE => ValueRef::Boolean(true),
            tag::DATE => {
                let days = i32::try_from(unzigzag(get(b, pos))).ok()?;
                ValueRef::Date(chrono::NaiveDate::from_num_days_from_ce_opt(days)?)
            }
            tag::DATETIME => {
                let secs = unzigzag(get(b, pos));
                let nanos = u32::try_from(get(b, pos)).ok()?;
                let offset = i32::try_from(unzigzag(get(b, pos))).ok()?;
                let offset = chrono::FixedOffset::east_opt(offset)?;
                ValueRef::DateTime(DateTime::from_timestamp(secs, nanos)?.with_timezone(&offset))
            }
            tag::JSON => {
                let at = get(b, pos);
                ValueRef::Json(self.text(json_at, at, get(b, pos)))
            }
            _ => return None,
        })
    }

    /// Heap bytes of the feature beyond its struct (for /metrics).
    fn heap_bytes(&self) -> usize {
        use geo::CoordsIter;
        let geometry = match &self.geometry {
            Some(Geom::Shape(g)) => 64 + g.coords_count() * 16,
            _ => 0,
        };
        self.len as usize + geometry
    }
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

    pub fn from_geo(g: geo::Geometry<f64>) -> Self {
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
    pub(crate) fn plain(&self) -> bool {
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

/// Writes `{"type":"Feature","id":…,"geometry":…,"properties":{…}}`, straight into a string
/// (this runs once per feature at start-up, so it avoids building a JSON tree first).
pub fn feature_json(
    entry: &CatalogEntry,
    id: &str,
    geometry: Option<&geo::Geometry<f64>>,
    values: &[Value],
    selected: Option<&[usize]>,
) -> String {
    let mut out = String::with_capacity(128 + values.len() * 24);
    write_feature(&mut out, entry, id, geometry, values, selected, None);
    out
}

/// [`feature_json`] into `out`, noting in `spans` where the id and the texts went.
fn write_feature(
    out: &mut String,
    entry: &CatalogEntry,
    id: &str,
    geometry: Option<&geo::Geometry<f64>>,
    values: &[Value],
    selected: Option<&[usize]>,
    mut spans: Option<&mut Spans>,
) {
    out.push_str("{\"type\":\"Feature\",\"id\":");
    let id_span = if id_is_integer(id) {
        let at = out.len();
        out.push_str(id);
        Some((at, id.len()))
    } else {
        push_json_str(out, id)
    };
    if let Some(s) = spans.as_deref_mut() {
        s.id = id_span;
        s.values.clear();
        s.values.resize(values.len(), None);
    }
    out.push_str(",\"geometry\":");
    push_geometry(out, geometry);
    out.push_str(",\"properties\":{");
    let mut first = true;
    let mut prop = |out: &mut String, i: usize| {
        let (Some(a), Some(v)) = (entry.attributes.get(i), values.get(i)) else {
            return;
        };
        if !first {
            out.push(',');
        }
        first = false;
        push_json_str(out, &a.name);
        out.push(':');
        let span = match v {
            Value::Text(t) => push_json_str(out, t),
            Value::Json(j) => {
                let at = out.len();
                out.push_str(&j.to_string());
                Some((at, out.len() - at))
            }
            _ => {
                out.push_str(&v.to_json().to_string());
                None
            }
        };
        if let Some(s) = spans.as_deref_mut().and_then(|s| s.values.get_mut(i)) {
            *s = span;
        }
    };
    match selected {
        Some(sel) => {
            for &i in sel {
                prop(out, i);
            }
        }
        None => {
            for i in 0..entry.attributes.len().min(values.len()) {
                prop(out, i);
            }
        }
    }
    out.push_str("}}");
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

/// The position of the collection's date/time attribute.
fn datetime_attribute(entry: &CatalogEntry) -> Option<usize> {
    entry
        .datetime_field
        .as_ref()
        .and_then(|n| entry.attributes.iter().position(|a| &a.name == n))
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

/// Features packed between two hand-backs of freed memory while a snapshot is built.
const TRIM_EVERY: usize = 250_000;

impl Snapshot {
    pub fn build(entry: CatalogEntry, stored: Vec<StoredFeature>, collation: Collation) -> Self {
        let datetime = datetime_attribute(&entry);
        let mut encoder = Encoder::default();
        let mut packer = Packer {
            features: Vec::with_capacity(stored.len()),
            ..Packer::default()
        };
        let mut nodes = Vec::with_capacity(stored.len());
        for (i, f) in stored.into_iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let geometry = f.geometry.as_deref().and_then(geometry_from_wkb);
            if let Some(env) = geometry.as_ref().and_then(envelope) {
                let point = matches!(geometry, Some(geo::Geometry::Point(_)));
                nodes.push(Node { env, index, point });
            }
            let data = encoder.feature(&entry, datetime, &f.id, &f.values, geometry.as_ref());
            packer.push(f.fid, geometry.map(Geom::from_geo), data);
            // The rows were read on another thread, into another of glibc's arenas, whose
            // freed memory this thread's allocations do not reuse: handed back as the build
            // goes, the rows already packed stop counting towards the build's peak.
            if i % TRIM_EVERY == TRIM_EVERY - 1 {
                super::trim::release_free_memory();
            }
        }
        let features = packer.finish();
        let core_bbox = core_bbox(&nodes);
        // Sorted with the ids at hand: reading one from its feature takes a few steps.
        let mut keyed: Vec<(&str, u32)> = features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id(), i as u32))
            .collect();
        keyed.sort_unstable();
        let by_id: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
        let memory_bytes = estimate_memory(&features, nodes.len());
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

    /// What the documents say of this version (see [`super::Summary`]).
    pub fn summary(&self) -> super::Summary {
        let mut ids = super::source::IdKinds::default();
        for f in &self.features {
            ids.add(f.id());
            if ids.complete() {
                break;
            }
        }
        super::Summary {
            core_bbox: self.core_bbox,
            ids,
            example_id: self.features.first().map(|f| f.id().to_string()),
            memory_bytes: self.memory_bytes,
        }
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
                .ranks(self.features.iter().map(|f| match f.value(attribute) {
                    Some(ValueRef::Text(t)) => Some(t),
                    _ => None,
                }))
        });
        Some(ranks)
    }

    pub fn get(&self, id: &str) -> Option<&Feature> {
        self.by_id
            .binary_search_by(|&i| self.features[i as usize].id().cmp(id))
            .ok()
            .map(|pos| &self.features[self.by_id[pos] as usize])
    }

    fn matches(&self, f: &Feature, q: &Query) -> bool {
        if let Some((from, to)) = q.datetime {
            if self.entry.datetime_field.is_some() {
                let Some(t) = f.instant() else { return false };
                if from.is_some_and(|a| t < a) || to.is_some_and(|b| t > b) {
                    return false;
                }
            }
        }
        q.equals
            .iter()
            .all(|e| f.value(e.attribute).is_some_and(|v| v.equals(&e.value)))
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
                            fa.value(k.attribute).unwrap_or(ValueRef::Null),
                            fb.value(k.attribute).unwrap_or(ValueRef::Null),
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
    a: ValueRef,
    b: ValueRef,
    descending: bool,
    text: impl FnOnce(&str, &str) -> Ordering,
) -> Ordering {
    let o = match (a, b) {
        (ValueRef::Null, ValueRef::Null) => return Ordering::Equal,
        (ValueRef::Null, _) => return Ordering::Greater,
        (_, ValueRef::Null) => return Ordering::Less,
        (ValueRef::Integer(x), ValueRef::Integer(y)) => x.cmp(&y),
        (ValueRef::Integer(x), ValueRef::Real(y)) => (x as f64).total_cmp(&y),
        (ValueRef::Real(x), ValueRef::Integer(y)) => x.total_cmp(&(y as f64)),
        (ValueRef::Real(x), ValueRef::Real(y)) => x.total_cmp(&y),
        (ValueRef::Text(x), ValueRef::Text(y)) => text(x, y),
        (ValueRef::Boolean(x), ValueRef::Boolean(y)) => x.cmp(&y),
        (ValueRef::Date(x), ValueRef::Date(y)) => x.cmp(&y),
        (ValueRef::DateTime(x), ValueRef::DateTime(y)) => x.cmp(&y),
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

fn kind_rank(v: ValueRef) -> u8 {
    match v {
        ValueRef::Null => 0,
        ValueRef::Integer(_) | ValueRef::Real(_) => 1,
        ValueRef::Text(_) => 2,
        ValueRef::Boolean(_) => 3,
        ValueRef::Date(_) => 4,
        ValueRef::DateTime(_) => 5,
        ValueRef::Json(_) => 6,
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
fn estimate_memory(features: &[Feature], nodes: usize) -> usize {
    use std::mem::size_of;
    // A leaf is an `RTreeNode` (the size of a parent node); parents add about one in ten.
    let tree = nodes * size_of::<rstar::RTreeNode<Node>>() * 11 / 10;
    let per_feature = size_of::<Feature>() + size_of::<u32>();
    tree + features
        .iter()
        .map(|f| per_feature + f.heap_bytes())
        .sum::<usize>()
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
            .map(|&i| match s.features[i as usize].value(0) {
                Some(ValueRef::Text(t)) => Some(t.to_string()),
                _ => None,
            })
            .collect()
    }

    fn typed_entry(datetime: Option<&str>) -> CatalogEntry {
        serde_json::from_value(serde_json::json!({
            "id": "t", "title": "t", "description": null, "keywords": [], "theme": null,
            "publisher": null, "licence": null,
            "source": {"name": "t.geojson", "sha256": "0", "layer": "t", "crs": "EPSG:4326"},
            "attributes": [
                {"name": "n", "column": "n", "type": "integer"},
                {"name": "r", "column": "r", "type": "real"},
                {"name": "t\"x", "column": "t", "type": "text"},
                {"name": "b", "column": "b", "type": "boolean"},
                {"name": "d", "column": "d", "type": "date"},
                {"name": "dt", "column": "dt", "type": "datetime"},
                {"name": "j", "column": "j", "type": "json"},
                {"name": "z", "column": "z", "type": "text"}
            ],
            "geometry_types": ["Point"], "id_field": null, "datetime_field": datetime,
            "feature_count": 1, "extent": null, "temporal_extent": null,
            "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
            "zoom": [0, 22], "version": 1
        }))
        .expect("a catalog entry")
    }

    /// The record gives back every value, the id and the instant, and the text is what
    /// `feature_json` writes, for texts and ids JSON escapes as well as those it does not.
    #[rstest]
    #[case::integer_id("42", "Malmö, Storgatan 12")]
    #[case::leading_zero("007", "plain")]
    #[case::text_id("a-1", "tab\there")]
    #[case::escaped_id("x\"y\\z\u{1}", "quote \" and \\")]
    #[case::empty("", "")]
    fn features_keep_what_they_were_built_from(#[case] id: &str, #[case] text: &str) {
        let dt = DateTime::parse_from_rfc3339("2024-02-29T23:59:59.5+01:00").expect("a date-time");
        let values = vec![
            Value::Integer(-1234567890123),
            Value::Real(f64::NAN),
            Value::Text(text.into()),
            Value::Boolean(true),
            Value::Date(chrono::NaiveDate::from_ymd_opt(1, 1, 1).expect("a date")),
            Value::DateTime(dt),
            Value::Json(Box::new(
                serde_json::json!({"b": [1, 2.5, "å\n"], "a": null}),
            )),
            Value::Null,
        ];
        for (datetime, geometry) in [
            (None, None),
            (
                Some("dt"),
                Some(geo::Geometry::Point(geo::Point::new(13.1, 55.6))),
            ),
            (
                Some("d"),
                Some(geo::Geometry::LineString(geo::LineString::from(vec![
                    (1.0, 2.0),
                    (3.0, 4.5),
                ]))),
            ),
        ] {
            let entry = typed_entry(datetime);
            let want = feature_json(&entry, id, geometry.as_ref(), &values, None);
            // With its GeoJSON, and without (the PostGIS engine's tiles): the same record.
            let built = [
                (Feature::new(&entry, 7, id, &values, geometry.clone()), want),
                (
                    Feature::without_json(&entry, 7, id, &values, geometry),
                    String::new(),
                ),
            ];
            for (f, json) in built {
                assert_eq!(f.json(), json);
                assert_eq!(f.id(), id);
                assert_eq!(f.fid, 7);
                let got = f.values();
                assert_eq!(got.len(), values.len());
                for (g, w) in got.iter().zip(&values) {
                    match (g, w) {
                        (Value::Real(a), Value::Real(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                        (Value::DateTime(a), Value::DateTime(b)) => {
                            assert_eq!(a.to_rfc3339(), b.to_rfc3339())
                        }
                        (a, b) => assert_eq!(a, b),
                    }
                }
                assert_eq!(f.value(values.len()), None);
                assert_eq!(f.value(2), Some(ValueRef::Text(text)));
                let instant = datetime.and_then(|d| {
                    let i = entry.attributes.iter().position(|a| a.name == d)?;
                    values[i].instant()
                });
                assert_eq!(f.instant(), instant);
            }
        }
    }

    /// The texts the record points at in the GeoJSON are exactly those serde_json leaves
    /// unescaped.
    #[test]
    fn json_strings_are_written_as_serde_json_writes_them() {
        for c in (0u32..0x300).chain([0x2028, 0x2029, 0xfeff, 0x1f600]) {
            let Some(c) = char::from_u32(c) else { continue };
            let s = format!("a{c}b");
            let mut out = String::new();
            let span = push_json_str(&mut out, &s);
            assert_eq!(out, Json::String(s.clone()).to_string(), "{c:?}");
            if let Some((at, len)) = span {
                assert_eq!(&out[at..at + len], s);
            }
        }
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
                        fa.value(k.attribute).unwrap_or(ValueRef::Null),
                        fb.value(k.attribute).unwrap_or(ValueRef::Null),
                        k.descending,
                        |x, y| s.collation().compare(x, y),
                    )
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        let want: Vec<Option<String>> = want
            .iter()
            .map(|&i| match s.features[i].value(0) {
                Some(ValueRef::Text(t)) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(sorted(&s, keys), want);
    }
}
