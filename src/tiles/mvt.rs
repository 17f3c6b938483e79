//! One collection's features that meet a tile, encoded as one Mapbox Vector Tile layer: selects
//! and thins them, puts each shape on the tile's grid (`geometry`; points go straight
//! there), and writes the layer's protobuf directly: geometry commands, tags, deduplicated
//! values. (geozero and prost built a message object per feature and hashed every tag value
//! with SipHash; writing the bytes as the features come is several times faster. The tests
//! decode every tile with geozero, an independent reader.)

use super::geometry::{near_box, projected_parts, quantise, shape_for_tile};
use super::tms::TileId;
use crate::catalog::CatalogEntry;
use crate::engine::snapshot::{Feature, Geom, ValueRef};
use crate::engine::{Query, Snapshot};

/// Tile grid size and buffer, in tile units (MVT's usual 4096 and 64).
#[derive(Debug, Clone, Copy)]
pub struct TileOptions {
    pub extent: u32,
    pub buffer: u32,
    /// At most this many features per layer (in `fid` order), so a dense tile stays bounded.
    pub max_features: usize,
}

impl Default for TileOptions {
    fn default() -> Self {
        Self {
            extent: 4096,
            buffer: 64,
            max_features: 10_000,
        }
    }
}

/// Protocol Buffers wire types and the MVT 2.1 field numbers written here.
mod pb {
    pub const VARINT: u32 = 0;
    pub const BYTES: u32 = 2;
    pub const I64: u32 = 1;
    // Layer
    pub const NAME: u32 = 1;
    pub const FEATURES: u32 = 2;
    pub const KEYS: u32 = 3;
    pub const VALUES: u32 = 4;
    pub const EXTENT: u32 = 5;
    pub const VERSION: u32 = 15;
    // Feature
    pub const ID: u32 = 1;
    pub const TAGS: u32 = 2;
    pub const TYPE: u32 = 3;
    pub const GEOMETRY: u32 = 4;
    // Value
    pub const STRING: u32 = 1;
    pub const DOUBLE: u32 = 3;
    pub const INT: u32 = 4;
    pub const BOOL: u32 = 7;
    // Tile
    pub const LAYERS: u32 = 3;
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from((field << 3) | wire));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, pb::BYTES);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn packed(out: &mut Vec<u8>, field: u32, values: &[u32]) {
    let len: usize = values.iter().map(|&v| varint_len(u64::from(v))).sum();
    key(out, field, pb::BYTES);
    varint(out, len as u64);
    for &v in values {
        varint(out, u64::from(v));
    }
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A layer's tile: `Tile { layers = 3 }` is just its layers, each as field 3.
pub fn tile_bytes(layers: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(layers.iter().map(|l| l.len() + 6).sum());
    for l in layers {
        bytes_field(&mut out, pb::LAYERS, l);
    }
    out
}

/// A tag value as the dedup key: borrowed from the snapshot where it can be, so a value met
/// again costs a hash lookup and nothing else.
#[derive(Debug, PartialEq, Eq, Hash)]
enum TagValue<'a> {
    Int(i64),
    Real(u64),
    Bool(bool),
    Text(&'a str),
    Date(chrono::NaiveDate),
    /// Seconds, nanoseconds and UTC offset: equal instants written with other offsets stay apart.
    DateTime(i64, u32, i32),
    Json(String),
}

impl<'a> TagValue<'a> {
    fn of(v: ValueRef<'a>) -> Option<Self> {
        Some(match v {
            ValueRef::Null => return None,
            ValueRef::Integer(i) => TagValue::Int(i),
            ValueRef::Real(f) => TagValue::Real(f.to_bits()),
            ValueRef::Boolean(b) => TagValue::Bool(b),
            ValueRef::Text(s) => TagValue::Text(s),
            ValueRef::Date(d) => TagValue::Date(d),
            ValueRef::DateTime(t) => TagValue::DateTime(
                t.timestamp(),
                t.timestamp_subsec_nanos(),
                t.offset().local_minus_utc(),
            ),
            // A JSON string as its text, anything else as JSON (as the GeoJSON has it).
            ValueRef::Json(j) => {
                TagValue::Json(serde_json::from_str::<String>(j).unwrap_or_else(|_| j.to_string()))
            }
        })
    }

    /// The `Value` message (MVT 2.1, 4.1): text as strings, as the GeoJSON has them.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TagValue::Int(i) => {
                key(out, pb::INT, pb::VARINT);
                varint(out, *i as u64);
            }
            TagValue::Real(bits) => {
                key(out, pb::DOUBLE, pb::I64);
                out.extend_from_slice(&bits.to_le_bytes());
            }
            TagValue::Bool(b) => {
                key(out, pb::BOOL, pb::VARINT);
                varint(out, u64::from(*b));
            }
            TagValue::Text(s) => bytes_field(out, pb::STRING, s.as_bytes()),
            TagValue::Json(s) => bytes_field(out, pb::STRING, s.as_bytes()),
            TagValue::Date(d) => {
                // YYYY-MM-DD by hand: chrono's formatter was the slow part of a small tile.
                use chrono::Datelike;
                let (y, m, day) = (d.year(), d.month(), d.day());
                if (0..=9999).contains(&y) {
                    let y = y as u32;
                    let digit = |v: u32| b'0' + (v % 10) as u8;
                    let b = [
                        digit(y / 1000),
                        digit(y / 100),
                        digit(y / 10),
                        digit(y),
                        b'-',
                        digit(m / 10),
                        digit(m),
                        b'-',
                        digit(day / 10),
                        digit(day),
                    ];
                    bytes_field(out, pb::STRING, &b);
                } else {
                    bytes_field(out, pb::STRING, d.to_string().as_bytes());
                }
            }
            TagValue::DateTime(secs, nanos, offset) => {
                let text = chrono::DateTime::from_timestamp(*secs, *nanos)
                    .zip(chrono::FixedOffset::east_opt(*offset))
                    .map(|(t, o)| t.with_timezone(&o).to_rfc3339())
                    .unwrap_or_default();
                bytes_field(out, pb::STRING, text.as_bytes());
            }
        }
    }
}

/// Writes one layer's protobuf directly: features as they come, keys fixed to the collection's
/// attributes (key i is attribute i), values deduplicated with a fast hash of borrowed values —
/// except for a text attribute whose values turn out to be nearly all different (names,
/// addresses), which are written as they come rather than hashed in vain. No per-feature
/// message objects are built.
struct LayerWriter<'a> {
    features: Vec<u8>,
    values: Vec<u8>,
    value_count: u32,
    value_index: std::collections::HashMap<TagValue<'a>, u32, foldhash::fast::FixedState>,
    /// Per attribute: values looked up and values found again.
    lookups: Vec<(u32, u32)>,
    scratch: Vec<u8>,
    feature: Vec<u8>,
    tags: Vec<u32>,
    count: usize,
}

/// After this many lookups a text attribute with fewer than one repeat in eight stops being
/// deduplicated.
const DEDUP_PROBE: u32 = 16;

impl<'a> LayerWriter<'a> {
    /// A writer for about `features` features of `attributes` attributes each.
    fn new(attributes: usize, features: usize) -> Self {
        // Sized to the tile: a small tile should not clear a large table.
        let values = (features * attributes).min(4096);
        Self {
            features: Vec::with_capacity(features * 16),
            values: Vec::with_capacity(values * 12),
            value_count: 0,
            value_index: std::collections::HashMap::with_capacity_and_hasher(
                values,
                foldhash::fast::FixedState::default(),
            ),
            lookups: vec![(0, 0); attributes],
            scratch: Vec::new(),
            feature: Vec::new(),
            tags: Vec::new(),
            count: 0,
        }
    }

    fn push_value(&mut self, tv: &TagValue) -> u32 {
        self.scratch.clear();
        tv.encode(&mut self.scratch);
        bytes_field(&mut self.values, pb::VALUES, &self.scratch);
        self.value_count += 1;
        self.value_count - 1
    }

    /// Tags of a feature: (attribute, value index) pairs for its non-null values.
    fn tags_of(&mut self, values: impl Iterator<Item = ValueRef<'a>>) {
        self.tags.clear();
        for (k, v) in values.enumerate() {
            let Some(tv) = TagValue::of(v) else { continue };
            let (tries, hits) = self.lookups.get(k).copied().unwrap_or((0, 0));
            // Only text is worth skipping: numbers and dates hash in a few instructions.
            let text = matches!(tv, TagValue::Text(_));
            let index = if text && tries >= DEDUP_PROBE && hits * 8 < tries {
                self.push_value(&tv)
            } else {
                if let Some(l) = self.lookups.get_mut(k) {
                    l.0 += 1;
                }
                match self.value_index.get(&tv) {
                    Some(&i) => {
                        if let Some(l) = self.lookups.get_mut(k) {
                            l.1 += 1;
                        }
                        i
                    }
                    None => {
                        let i = self.push_value(&tv);
                        self.value_index.insert(tv, i);
                        i
                    }
                }
            };
            self.tags.push(k as u32);
            self.tags.push(index);
        }
    }

    fn feature(&mut self, id: u64, kind: u32, geometry: &[u32]) {
        self.feature.clear();
        key(&mut self.feature, pb::ID, pb::VARINT);
        varint(&mut self.feature, id);
        if !self.tags.is_empty() {
            packed(&mut self.feature, pb::TAGS, &self.tags);
        }
        key(&mut self.feature, pb::TYPE, pb::VARINT);
        varint(&mut self.feature, u64::from(kind));
        packed(&mut self.feature, pb::GEOMETRY, geometry);
        bytes_field(&mut self.features, pb::FEATURES, &self.feature);
        self.count += 1;
    }

    fn finish(self, name: &str, keys: &[crate::catalog::Attribute], extent: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.features.len() + self.values.len() + 64);
        key(&mut out, pb::VERSION, pb::VARINT);
        varint(&mut out, 2);
        bytes_field(&mut out, pb::NAME, name.as_bytes());
        out.extend_from_slice(&self.features);
        for a in keys {
            bytes_field(&mut out, pb::KEYS, a.name.as_bytes());
        }
        out.extend_from_slice(&self.values);
        key(&mut out, pb::EXTENT, pb::VARINT);
        varint(&mut out, u64::from(extent));
        out
    }
}

/// MVT geometry types.
const POINT: u32 = 1;
const LINESTRING: u32 = 2;
const POLYGON: u32 = 3;

fn zigzag(v: i64) -> u32 {
    ((v << 1) ^ (v >> 63)) as u32
}

fn command(id: u32, count: usize) -> u32 {
    (id & 0x7) | ((count as u32) << 3)
}

/// MVT geometry commands (MoveTo 1, LineTo 2, ClosePath 7) for a shape already on the tile
/// grid, the cursor carried from one part to the next as the encoding requires.
struct Commands<'c> {
    out: &'c mut Vec<u32>,
    x: i64,
    y: i64,
}

impl Commands<'_> {
    fn to(&mut self, c: &geo::Coord<f64>) {
        let (x, y) = (c.x as i64, c.y as i64);
        self.out.push(zigzag(x - self.x));
        self.out.push(zigzag(y - self.y));
        self.x = x;
        self.y = y;
    }

    fn line(&mut self, pts: &[geo::Coord<f64>]) {
        if let Some((first, rest)) = pts.split_first() {
            self.out.push(command(1, 1));
            self.to(first);
            self.out.push(command(2, rest.len()));
            for c in rest {
                self.to(c);
            }
        }
    }

    /// A closed ring (last = first): the closing vertex is ClosePath, not a LineTo.
    fn ring(&mut self, pts: &[geo::Coord<f64>]) {
        self.line(&pts[..pts.len().saturating_sub(1)]);
        self.out.push(command(7, 1));
    }
}

/// Commands for a quantised shape and its MVT type.
fn commands(g: &geo::Geometry<f64>, out: &mut Vec<u32>) -> Option<u32> {
    use geo::Geometry as G;
    out.clear();
    let mut c = Commands { out, x: 0, y: 0 };
    Some(match g {
        G::Point(p) => {
            c.out.push(command(1, 1));
            c.to(&p.0);
            POINT
        }
        G::MultiPoint(m) => {
            c.out.push(command(1, m.0.len()));
            for p in &m.0 {
                c.to(&p.0);
            }
            POINT
        }
        G::MultiLineString(m) => {
            for l in &m.0 {
                c.line(&l.0);
            }
            LINESTRING
        }
        G::MultiPolygon(m) => {
            for p in &m.0 {
                c.ring(&p.exterior().0);
                for h in p.interiors() {
                    c.ring(&h.0);
                }
            }
            POLYGON
        }
        _ => return None,
    })
}

/// MVT ids are unsigned integers: numeric feature ids are kept, others use the sequence number.
/// What a layer is written from: a feature of a snapshot, or a row the PostGIS engine read
/// (borrowed from it, so a tile of rows is written without building a feature per row).
pub trait TileFeature<'a> {
    fn fid(&self) -> i64;
    fn id(&self) -> &str;
    fn geometry(&self) -> Option<&Geom>;
    fn tag_values(&self) -> impl Iterator<Item = ValueRef<'a>> + 'a;

    /// The MVT feature id: the public id when it is a whole number, else the fid.
    fn mvt_id(&self) -> u64 {
        self.id()
            .parse::<u64>()
            .unwrap_or(u64::try_from(self.fid()).unwrap_or(0))
    }
}

impl<'a> TileFeature<'a> for &'a Feature {
    fn fid(&self) -> i64 {
        self.fid
    }

    fn id(&self) -> &str {
        Feature::id(self)
    }

    fn geometry(&self) -> Option<&Geom> {
        self.geometry.as_ref()
    }

    fn tag_values(&self) -> impl Iterator<Item = ValueRef<'a>> + 'a {
        let f: &'a Feature = self;
        f.value_refs()
    }
}

/// Features loaded ahead of encoding at a time: few enough that they are still in the cache
/// when encoded.
const LOAD_AHEAD: usize = 256;

/// Reads the selected features' records, ids, values and text before they are encoded. The
/// features of a tile lie scattered over memory (the array is in fid order, a tile is a place),
/// and encoding them one by one waits for memory several times a feature, one wait after
/// another. Here the reads within each pass do not depend on each other, so the processor
/// overlaps them. Numbers in BENCHMARKS.md ("Loading ahead").
fn load_ahead(features: &[Feature], selected: &[u32]) {
    let mut sum = 0usize;
    // The struct first (geometry, and where the data is), then the data: a line for the
    // record, more for the texts in the GeoJSON.
    for &i in selected {
        if let Some(f) = features.get(i as usize) {
            let point = matches!(f.geometry, Some(Geom::Point(..)));
            sum = sum.wrapping_add(usize::from(point));
        }
    }
    for &i in selected {
        if let Some(f) = features.get(i as usize) {
            sum = sum.wrapping_add(f.touch());
        }
    }
    std::hint::black_box(sum);
}

/// A feature's place in the order of thinning: a hash of its `fid`, so the order is fixed
/// for a version, unrelated to where features lie, and the same in every tile. Integer steps
/// that stay inside `i64` (31-bit words, multipliers below 2^31), so that PostgreSQL computes
/// the same order on `bigint` ([`priority_sql`]) for the PostGIS engine. Each step is a
/// bijection on 31-bit words, so distinct fids below 2^31 never tie.
///
/// Two multiplications and one xor-shift: enough to scatter neighbouring fids, and short,
/// because PostgreSQL has no common subexpressions: each reuse of a step doubles the SQL it
/// plans and evaluates per row. (A longer hash of three steps cost a third of the PostGIS
/// engine's rate on small tiles.)
pub fn priority(fid: i64) -> i64 {
    const M: i64 = 0x7fff_ffff;
    let z = ((fid & M) * PRIORITY[0]) & M;
    ((z ^ (z >> 15)) * PRIORITY[1]) & M
}

/// The multipliers of [`priority`] (odd, below 2^31).
const PRIORITY: [i64; 2] = [1_103_515_245, 739_982_445];

/// [`priority`] of the column `hamn_fid` as SQL, for `ORDER BY`.
pub fn priority_sql() -> String {
    let m = 0x7fff_ffff_i64;
    let z = format!("(((hamn_fid & {m}) * {}) & {m})", PRIORITY[0]);
    format!("((({z} # ({z} >> 15)) * {}) & {m})", PRIORITY[1])
}

/// How many candidates a tile with more than `max` encodes first, in priority order: the
/// first `max` and a margin for candidates that draw nothing in the tile. When that margin is
/// not enough (small shapes vanish at low zoom), twice as many, and so on.
pub fn first_round(max: usize) -> usize {
    max + max / 4
}

/// Puts the `k` candidates first in priority order at the front of `selected`, in that order
/// (the rest stay behind them in no order). Costs O(n + k log k), not a sort of all n.
fn first_by_priority(selected: &mut [u32], k: usize, fid: impl Fn(u32) -> i64) {
    let key = |&i: &u32| (priority(fid(i)), fid(i));
    let k = k.min(selected.len());
    if k < selected.len() {
        selected.select_nth_unstable_by_key(k, key);
    }
    selected[..k].sort_unstable_by_key(key);
}

/// The encoded layer (an MVT `Layer` message) for `snapshot` in `tile`, or `None` when no
/// feature shows in it. A tile with more candidates than it may hold shows a sample spread
/// over the whole tile, the first in priority order, instead of the first features in id
/// order (a few municipalities of a national dataset at low zoom). As the order is global, a
/// feature kept in one tile is kept in a neighbour with fewer candidates too, and a shape
/// crossing the edge is drawn in both.
pub fn layer(
    snapshot: &Snapshot,
    tile: TileId,
    opts: TileOptions,
    query: &Query,
) -> Option<Vec<u8>> {
    let mut q = query.clone();
    q.bbox = vec![tile.lonlat_bounds(opts.buffer, opts.extent)];
    let mut selected = snapshot.select(&q);
    let features = &snapshot.features;
    let encode = |candidates: &[u32]| {
        // In chunks, so what was loaded is still in the cache when it is encoded.
        let ordered = candidates.chunks(LOAD_AHEAD).flat_map(|chunk| {
            load_ahead(features, chunk);
            chunk.iter().filter_map(|&i| features.get(i as usize))
        });
        write_layer(
            &snapshot.entry,
            tile,
            opts,
            query,
            candidates.len(),
            ordered,
        )
    };
    let max = opts.max_features;
    if selected.len() <= max {
        return encode(&selected).map(|(layer, _)| layer);
    }
    let fid = |i: u32| features.get(i as usize).map_or(0, |f| f.fid);
    let mut k = first_round(max);
    loop {
        let k_now = k.min(selected.len());
        first_by_priority(&mut selected, k_now, fid);
        let out = encode(&selected[..k_now]);
        let full = out.as_ref().is_some_and(|(_, n)| *n >= max);
        if full || k_now == selected.len() || query.cancelled() {
            return out.map(|(layer, _)| layer);
        }
        k = k.saturating_mul(2);
    }
}

/// Encodes `features` (a tile's candidates: all in `fid` order when there are no more than
/// `opts.max_features`, else the first in priority order) as the layer of `entry` in `tile`,
/// up to `opts.max_features` that show in it, and how many that is; `None` when none does.
/// Both engines write their tiles here.
pub fn write_layer<'a, F: TileFeature<'a>>(
    entry: &CatalogEntry,
    tile: TileId,
    opts: TileOptions,
    query: &Query,
    candidates: usize,
    features: impl Iterator<Item = F>,
) -> Option<(Vec<u8>, usize)> {
    let [l, _, _, t] = tile.bounds();
    let span = tile.span();
    let extent = f64::from(opts.extent);
    // Clipped one unit inside the buffer, so rounding to the grid cannot carry a vertex past it.
    let [bl, bb, br, bt] = tile.buffered(opts.buffer.saturating_sub(1), opts.extent);
    let clip = geo::Rect::new(geo::coord! { x: bl, y: bb }, geo::coord! { x: br, y: bt });
    let near = near_box(tile, tile.lonlat_bounds(opts.buffer, opts.extent));
    let mut w = LayerWriter::new(entry.attributes.len(), candidates.min(opts.max_features));
    let mut geometry: Vec<u32> = Vec::with_capacity(64);
    for (n, f) in features.enumerate() {
        if w.count >= opts.max_features || (n % 256 == 0 && query.cancelled()) {
            break;
        }
        match f.geometry() {
            None => {}
            // Most features of large collections are points: straight to the grid.
            Some(Geom::Point(x, y)) => {
                let (mx, my) = tile.project(*x, *y);
                if !(mx >= bl && mx <= br && my >= bb && my <= bt) {
                    continue;
                }
                let gx = ((mx - l) / span * extent).round() as i64;
                let gy = ((t - my) / span * extent).round() as i64;
                geometry.clear();
                geometry.extend([command(1, 1), zigzag(gx), zigzag(gy)]);
                w.tags_of(f.tag_values());
                w.feature(f.mvt_id(), POINT, &geometry);
            }
            Some(Geom::Shape(g)) => {
                let mut tagged = false;
                for part in projected_parts(g, tile.tms(), &near) {
                    let Some(shape) = shape_for_tile(part, &clip) else {
                        continue;
                    };
                    let Some(shape) = quantise(shape, l, t, span, extent) else {
                        continue;
                    };
                    let Some(kind) = commands(&shape, &mut geometry) else {
                        continue;
                    };
                    if geometry.is_empty() {
                        continue;
                    }
                    if !tagged {
                        w.tags_of(f.tag_values());
                        tagged = true;
                    }
                    w.feature(f.mvt_id(), kind, &geometry);
                }
            }
        }
    }
    if w.count == 0 {
        return None;
    }
    let count = w.count;
    Some((
        w.finish(entry.id.as_str(), &entry.attributes, opts.extent),
        count,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A feature kept in a tile is kept in every tile whose candidates it is among, when that
    /// tile has as many or fewer candidates: thinning agrees across neighbours.
    #[test]
    fn thinning_keeps_the_same_features_in_every_tile() {
        let all: Vec<u32> = (0..10_000).collect();
        let kept = |candidates: &[u32], max: usize| -> std::collections::HashSet<u32> {
            let mut c = candidates.to_vec();
            first_by_priority(&mut c, max, i64::from);
            c.into_iter().take(max).collect()
        };
        let big = kept(&all, 100);
        assert_eq!(big.len(), 100);
        let half: Vec<u32> = all.iter().copied().filter(|i| i % 2 == 0).collect();
        let small = kept(&half, 100);
        for i in big.iter().filter(|i| *i % 2 == 0) {
            assert!(
                small.contains(i),
                "{i} kept in the larger tile but not the smaller"
            );
        }
        // Spread: the sample is not the first ids.
        assert!(big.iter().any(|&i| i > 5_000));
        // The front is in priority order, and holds the first by priority of all.
        let mut c = all.clone();
        first_by_priority(&mut c, 100, i64::from);
        let mut sorted = all.clone();
        sorted.sort_by_key(|&i| (priority(i64::from(i)), i));
        assert_eq!(c[..100], sorted[..100]);
    }
}
