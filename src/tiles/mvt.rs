//! Encoding a collection's features that meet a tile as one Mapbox Vector Tile layer: project to
//! Web Mercator, clip to the buffered tile, simplify to about a display pixel, drop what shrank
//! to nothing, quantise to the tile's grid with rings wound as MVT 2.1 wants, and encode the
//! commands (geozero).

use geo::{Area, BooleanOps, BoundingRect, Euclidean, Length, MapCoords, Simplify};
use geozero::mvt::{tile, TagsBuilder, TileValue};
use geozero::ToMvt;

use super::tms::{to_mercator, TileId};
use crate::engine::snapshot::{Feature, Geom};
use crate::engine::{Query, Snapshot};
use crate::store::Value;

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

fn mercator(g: &geo::Geometry<f64>) -> geo::Geometry<f64> {
    g.map_coords(|c| {
        let (x, y) = to_mercator(c.x, c.y);
        geo::coord! { x: x, y: y }
    })
}

/// Parts of a feature in one MVT geometry type each (a collection may hold several types).
fn parts(g: geo::Geometry<f64>) -> Vec<geo::Geometry<f64>> {
    use geo::Geometry as G;
    match g {
        G::GeometryCollection(gc) => {
            let (mut pts, mut lines, mut polys) = (Vec::new(), Vec::new(), Vec::new());
            for g in gc {
                for p in parts(g) {
                    match p {
                        G::Point(p) => pts.push(p),
                        G::MultiPoint(m) => pts.extend(m),
                        G::LineString(l) => lines.push(l),
                        G::MultiLineString(m) => lines.extend(m),
                        G::Polygon(p) => polys.push(p),
                        G::MultiPolygon(m) => polys.extend(m),
                        _ => {}
                    }
                }
            }
            let mut out = Vec::new();
            if !pts.is_empty() {
                out.push(G::MultiPoint(pts.into()));
            }
            if !lines.is_empty() {
                out.push(G::MultiLineString(geo::MultiLineString::new(lines)));
            }
            if !polys.is_empty() {
                out.push(G::MultiPolygon(polys.into()));
            }
            out
        }
        G::Line(l) => vec![G::LineString(l.into())],
        G::Rect(r) => vec![G::Polygon(r.to_polygon())],
        G::Triangle(t) => vec![G::Polygon(t.to_polygon())],
        other => vec![other],
    }
}

/// Clips one part to the buffered tile (Web Mercator metres); `None` when nothing remains.
fn shape_for_tile(g: geo::Geometry<f64>, clip: &geo::Rect<f64>) -> Option<geo::Geometry<f64>> {
    use geo::Geometry as G;
    let inside = g.bounding_rect().is_some_and(|b| {
        b.min().x >= clip.min().x
            && b.min().y >= clip.min().y
            && b.max().x <= clip.max().x
            && b.max().y <= clip.max().y
    });
    let in_rect = |c: &geo::Point<f64>| {
        c.x() >= clip.min().x
            && c.x() <= clip.max().x
            && c.y() >= clip.min().y
            && c.y() <= clip.max().y
    };
    let shape = match g {
        G::Point(p) => in_rect(&p).then_some(G::Point(p))?,
        G::MultiPoint(m) => {
            let kept: Vec<geo::Point<f64>> = m.into_iter().filter(|p| in_rect(p)).collect();
            if kept.is_empty() {
                return None;
            }
            G::MultiPoint(kept.into())
        }
        G::LineString(_) | G::MultiLineString(_) => {
            let mls = match g {
                G::LineString(l) => geo::MultiLineString::new(vec![l]),
                G::MultiLineString(m) => m,
                _ => return None,
            };
            let clipped = if inside {
                mls
            } else {
                clip.to_polygon().clip(&mls, false)
            };
            let kept: Vec<geo::LineString<f64>> = clipped
                .into_iter()
                .filter(|l| l.0.len() >= 2 && l.length::<Euclidean>() > 0.0)
                .collect();
            if kept.is_empty() {
                return None;
            }
            G::MultiLineString(geo::MultiLineString::new(kept))
        }
        G::Polygon(_) | G::MultiPolygon(_) => {
            let mp = match g {
                G::Polygon(p) => geo::MultiPolygon::new(vec![p]),
                G::MultiPolygon(m) => m,
                _ => return None,
            };
            let clipped = if inside {
                mp
            } else {
                mp.intersection(&clip.to_polygon())
            };
            let kept: Vec<geo::Polygon<f64>> = clipped
                .into_iter()
                .filter(|p| p.exterior().0.len() >= 4 && p.unsigned_area() > 0.0)
                .collect();
            if kept.is_empty() {
                return None;
            }
            G::MultiPolygon(geo::MultiPolygon::new(kept))
        }
        _ => return None,
    };
    Some(shape)
}

/// A display pixel in tile units: MapLibre draws a 4096-unit tile 512 pixels wide.
const PIXEL: f64 = 8.0;

/// Moves a shape from Web Mercator metres onto the tile's integer grid (y down), simplifies it
/// to about a display pixel, removes repeated vertices, drops lines and rings that collapsed,
/// and winds rings as MVT 2.1 wants: exteriors with a positive shoelace area in tile
/// coordinates, holes negative. A line or ring that simplification would erase (a parking lot
/// at zoom 10) keeps its unsimplified shape: small is not the same as degenerate.
fn quantise(
    g: geo::Geometry<f64>,
    left: f64,
    top: f64,
    span: f64,
    extent: f64,
) -> Option<geo::Geometry<f64>> {
    use geo::Geometry as G;
    let grid = |c: &geo::Coord<f64>| {
        geo::coord! {
            x: ((c.x - left) / span * extent).round(),
            y: ((top - c.y) / span * extent).round(),
        }
    };
    let dedup = |l: &geo::LineString<f64>| -> Vec<geo::Coord<f64>> {
        let mut out: Vec<geo::Coord<f64>> = Vec::with_capacity(l.0.len());
        for c in &l.0 {
            if out.last() != Some(c) {
                out.push(*c);
            }
        }
        out
    };
    let on_grid = |l: &geo::LineString<f64>| geo::LineString::new(l.0.iter().map(grid).collect());
    let line = |l: &geo::LineString<f64>| -> Option<geo::LineString<f64>> {
        let full = on_grid(l);
        let simple = dedup(&full.simplify(&PIXEL));
        let pts = if simple.len() >= 2 {
            simple
        } else {
            dedup(&full)
        };
        (pts.len() >= 2).then(|| geo::LineString::new(pts))
    };
    let shoelace = |r: &[geo::Coord<f64>]| -> f64 {
        let n = r.len();
        (0..n)
            .map(|i| r[i].x * r[(i + 1) % n].y - r[(i + 1) % n].x * r[i].y)
            .sum::<f64>()
    };
    let open_ring = |l: &geo::LineString<f64>| -> Vec<geo::Coord<f64>> {
        let mut r = dedup(l);
        if r.len() > 1 && r.first() == r.last() {
            r.pop();
        }
        r
    };
    let ring = |l: &geo::LineString<f64>, exterior: bool| -> Option<geo::LineString<f64>> {
        let full = on_grid(l);
        let simple = open_ring(&full.simplify(&PIXEL));
        let mut r = if simple.len() >= 3 && shoelace(&simple) != 0.0 {
            simple
        } else {
            open_ring(&full)
        };
        let area = shoelace(&r);
        if r.len() < 3 || area == 0.0 {
            return None;
        }
        if (area > 0.0) != exterior {
            r.reverse();
        }
        r.push(r[0]);
        Some(geo::LineString::new(r))
    };
    Some(match g {
        G::Point(p) => G::Point(grid(&p.0).into()),
        G::MultiPoint(m) => G::MultiPoint(
            m.into_iter()
                .map(|p| geo::Point::from(grid(&p.0)))
                .collect(),
        ),
        G::MultiLineString(m) => {
            let kept: Vec<geo::LineString<f64>> = m.iter().filter_map(line).collect();
            if kept.is_empty() {
                return None;
            }
            G::MultiLineString(geo::MultiLineString::new(kept))
        }
        G::MultiPolygon(m) => {
            let kept: Vec<geo::Polygon<f64>> = m
                .iter()
                .filter_map(|p| {
                    let ext = ring(p.exterior(), true)?;
                    let holes = p
                        .interiors()
                        .iter()
                        .filter_map(|h| ring(h, false))
                        .collect();
                    Some(geo::Polygon::new(ext, holes))
                })
                .collect();
            if kept.is_empty() {
                return None;
            }
            G::MultiPolygon(geo::MultiPolygon::new(kept))
        }
        _ => return None,
    })
}

fn tile_value(v: &Value) -> Option<TileValue> {
    Some(match v {
        Value::Null => return None,
        Value::Integer(i) => TileValue::Int(*i),
        Value::Real(f) => TileValue::Double(*f),
        Value::Text(s) => TileValue::Str(s.clone()),
        Value::Boolean(b) => TileValue::Bool(*b),
        other => match other.to_json() {
            serde_json::Value::String(s) => TileValue::Str(s),
            j => TileValue::Str(j.to_string()),
        },
    })
}

/// MVT ids are unsigned integers: numeric feature ids are kept, others use the sequence number.
fn mvt_id(f: &Feature) -> u64 {
    f.id.parse::<u64>()
        .unwrap_or(u64::try_from(f.fid).unwrap_or(0))
}

/// The layer for `snapshot` in `tile`, or `None` when no feature shows in it.
pub fn layer(
    snapshot: &Snapshot,
    tile: TileId,
    opts: TileOptions,
    query: &Query,
) -> Option<tile::Layer> {
    let mut q = query.clone();
    q.bbox = vec![tile.lonlat_bounds(opts.buffer, opts.extent)];
    let [l, _, _, t] = tile.bounds();
    let span = tile.span();
    // Clipped one unit inside the buffer, so rounding to the grid cannot carry a vertex past it.
    let [bl, bb, br, bt] = tile.buffered(opts.buffer.saturating_sub(1), opts.extent);
    let clip = geo::Rect::new(geo::coord! { x: bl, y: bb }, geo::coord! { x: br, y: bt });
    let mut tags = TagsBuilder::new();
    let mut features = Vec::new();
    for i in snapshot.select(&q) {
        if features.len() >= opts.max_features {
            break;
        }
        let f = &snapshot.features[i as usize];
        let Some(geom) = &f.geometry else { continue };
        let projected = match geom {
            Geom::Point(x, y) => {
                let (mx, my) = to_mercator(*x, *y);
                geo::Geometry::Point(geo::Point::new(mx, my))
            }
            Geom::Shape(g) => mercator(g),
        };
        let mut feature_tags: Option<Vec<u32>> = None;
        for part in parts(projected) {
            let Some(shape) = shape_for_tile(part, &clip) else {
                continue;
            };
            let Some(shape) = quantise(shape, l, t, span, f64::from(opts.extent)) else {
                continue;
            };
            let Ok(mut encoded) = shape.to_mvt_unscaled() else {
                continue;
            };
            if encoded.geometry.is_empty() {
                continue;
            }
            let tag_list = feature_tags.get_or_insert_with(|| {
                let mut list = Vec::new();
                for (a, v) in snapshot.entry.attributes.iter().zip(f.values.iter()) {
                    if let Some(tv) = tile_value(v) {
                        let (k, v) = tags.insert_ref(&a.name, tv);
                        list.push(k);
                        list.push(v);
                    }
                }
                list
            });
            encoded.id = Some(mvt_id(f));
            encoded.tags = tag_list.clone();
            features.push(encoded);
        }
    }
    if features.is_empty() {
        return None;
    }
    let (keys, values) = tags.into_tags();
    Some(tile::Layer {
        version: 2,
        name: snapshot.entry.id.to_string(),
        features,
        keys,
        values: values.into_iter().map(Into::into).collect(),
        extent: Some(opts.extent),
    })
}
