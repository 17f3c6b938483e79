//! The MVT geometry pipeline: one shape from CRS84 onto a tile's integer grid. Projected to
//! the tile matrix set's CRS (cut near the tile first when it reaches beyond the longitudes
//! the projection takes), split into parts of one MVT type each, clipped to the buffered tile,
//! simplified to about a display pixel, with what shrank to nothing dropped and rings wound as
//! MVT 2.1 wants. Turning the result into commands and protobuf is `mvt`'s part.

use geo::{Area, BooleanOps, BoundingRect, Euclidean, Length, MapCoords, Simplify};

use super::tms::{TileId, Tms};

fn project(g: &geo::Geometry<f64>, tms: Tms) -> geo::Geometry<f64> {
    g.map_coords(|c| {
        let (x, y) = tms.project(c.x, c.y);
        geo::coord! { x: x, y: y }
    })
}

/// A longitude/latitude box around a tile's search box `search`, grown by half its size each
/// way and kept where the tile matrix set's projection holds. A shape reaching beyond that
/// range is cut to this box before it is projected, so no vertex is bent by the projection's
/// limits, and the cut's own edges, straight between two far vertices, stay well away from the
/// tile.
pub(super) fn near_box(tile: TileId, search: [f64; 4]) -> geo::Rect<f64> {
    let [w, s, e, n] = search;
    let (gx, gy) = ((e - w) / 2.0, (n - s) / 2.0);
    let [west, east] = tile.tms().lon_range();
    geo::Rect::new(
        geo::coord! { x: (w - gx).max(west), y: (s - gy).max(-90.0) },
        geo::coord! { x: (e + gx).min(east), y: (n + gy).min(90.0) },
    )
}

/// A shape projected to the tile's CRS, in parts of one MVT type each; cut to `near` first
/// when it reaches beyond the longitudes the projection takes.
pub(super) fn projected_parts(
    g: &geo::Geometry<f64>,
    tms: Tms,
    near: &geo::Rect<f64>,
) -> Vec<geo::Geometry<f64>> {
    let [west, east] = tms.lon_range();
    let within = g
        .bounding_rect()
        .is_some_and(|b| b.min().x >= west && b.max().x <= east);
    if within {
        return parts(project(g, tms));
    }
    parts(g.clone())
        .into_iter()
        .filter_map(|p| shape_for_tile(p, near))
        .flat_map(|p| parts(project(&p, tms)))
        .collect()
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

/// Clips one part to the buffered tile (metres of its CRS); `None` when nothing remains.
pub(super) fn shape_for_tile(
    g: geo::Geometry<f64>,
    clip: &geo::Rect<f64>,
) -> Option<geo::Geometry<f64>> {
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

/// Moves a shape from the CRS's metres onto the tile's integer grid (y down), simplifies it
/// to about a display pixel, removes repeated vertices, drops lines and rings that collapsed,
/// and winds rings as MVT 2.1 wants: exteriors with a positive shoelace area in tile
/// coordinates, holes negative. A line or ring that simplification would erase (a parking lot
/// at zoom 10) keeps its unsimplified shape: small is not the same as degenerate.
pub(super) fn quantise(
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
