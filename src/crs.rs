//! Coordinate reference systems offered by the API (OGC API – Features Part 2): which ones, their
//! URIs, and transformations from and to the stored CRS84, done by the PROJ that GDAL links.
//!
//! Axis order follows each CRS's EPSG definition, as Part 2 requires: EPSG:4326 is
//! latitude/longitude, SWEREF 99 TM and its zones are northing/easting, CRS84 stays
//! longitude/latitude. GDAL's authority-compliant axis mapping gives exactly that.

use std::cell::RefCell;
use std::collections::HashMap;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use geo::MapCoords;

pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
const EPSG_PREFIX: &str = "http://www.opengis.net/def/crs/EPSG/0/";

/// EPSG codes offered besides CRS84: WGS 84, SWEREF 99 TM and its 12 local zones, RT 90 2.5 gon V,
/// Web Mercator.
pub const EPSG_CODES: &[u32] = &[
    4326, 3006, 3007, 3008, 3009, 3010, 3011, 3012, 3013, 3014, 3015, 3016, 3017, 3018, 3021, 3857,
];

/// A CRS the API can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Crs {
    Crs84,
    Epsg(u32),
}

impl Crs {
    /// Parses a CRS URI (or the short `EPSG:3006` form); `None` for anything not offered.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t == CRS84 || t.eq_ignore_ascii_case("OGC:CRS84") || t == "[OGC:CRS84]" {
            return Some(Crs::Crs84);
        }
        let code = t
            .strip_prefix(EPSG_PREFIX)
            .or_else(|| t.strip_prefix("EPSG:"))
            .or_else(|| t.strip_prefix("[EPSG:").and_then(|r| r.strip_suffix(']')))?;
        let code: u32 = code.parse().ok()?;
        EPSG_CODES.contains(&code).then_some(Crs::Epsg(code))
    }

    pub fn uri(self) -> String {
        match self {
            Crs::Crs84 => CRS84.to_string(),
            Crs::Epsg(c) => format!("{EPSG_PREFIX}{c}"),
        }
    }

    /// True when the CRS's first axis points north: latitude first (EPSG:4326) or northing
    /// first (SWEREF 99 TM and its zones, RT 90). Formats that always write easting (or
    /// longitude) first swap these.
    pub fn northing_first(self) -> bool {
        matches!(self, Crs::Epsg(4326 | 3006..=3018 | 3021))
    }

    /// Every offered CRS, as URIs (for collection documents).
    pub fn all_uris() -> Vec<String> {
        std::iter::once(CRS84.to_string())
            .chain(EPSG_CODES.iter().map(|c| format!("{EPSG_PREFIX}{c}")))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot transform coordinates: {0}")]
pub struct CrsError(String);

fn crs84() -> Result<SpatialRef, CrsError> {
    let mut s = SpatialRef::from_epsg(4326).map_err(|e| CrsError(e.to_string()))?;
    s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(s)
}

fn epsg(code: u32) -> Result<SpatialRef, CrsError> {
    let mut s = SpatialRef::from_epsg(code).map_err(|e| CrsError(e.to_string()))?;
    s.set_axis_mapping_strategy(AxisMappingStrategy::AuthorityCompliant);
    Ok(s)
}

thread_local! {
    /// PROJ transformations are costly to set up and not thread-safe: one set per thread.
    static TRANSFORMS: RefCell<HashMap<(u32, bool), CoordTransform>> = RefCell::new(HashMap::new());
}

/// Runs `f` with the transformation CRS84 → `code` (`inverse`: `code` → CRS84).
fn with_transform<T>(
    code: u32,
    inverse: bool,
    f: impl FnOnce(&CoordTransform) -> T,
) -> Result<T, CrsError> {
    TRANSFORMS.with(|cache| {
        let mut cache = cache.borrow_mut();
        let ct = match cache.entry((code, inverse)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let (a, b) = if inverse {
                    (epsg(code)?, crs84()?)
                } else {
                    (crs84()?, epsg(code)?)
                };
                v.insert(CoordTransform::new(&a, &b).map_err(|e| CrsError(e.to_string()))?)
            }
        };
        Ok(f(ct))
    })
}

/// A geometry's coordinates through the transformation CRS84 → EPSG:`code` (`inverse`: back).
fn transform_geometry(
    g: &geo::Geometry<f64>,
    code: u32,
    inverse: bool,
) -> Result<geo::Geometry<f64>, CrsError> {
    use geo::CoordsIter;
    // One PROJ call for the whole geometry: per vertex, the call's own overhead was most of
    // the cost of answering a page of polygons in another CRS.
    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = g.coords_iter().map(|c| (c.x, c.y)).unzip();
    let mut zs = vec![0.0; xs.len()];
    with_transform(code, inverse, |ct| {
        ct.transform_coords(&mut xs, &mut ys, &mut zs)
            .map_err(|_| CrsError(format!("a coordinate lies outside EPSG:{code}")))
    })??;
    // map_coords visits the coordinates in the order coords_iter gave them (its closure must
    // be Copy, hence the index in a Cell).
    let next = std::cell::Cell::new(0usize);
    let (xs, ys) = (&xs, &ys);
    let next = &next;
    let mapped = g.map_coords(|c| {
        let i = next.get();
        next.set(i + 1);
        match (xs.get(i), ys.get(i)) {
            (Some(&x), Some(&y)) => geo::coord! { x: x, y: y },
            _ => c,
        }
    });
    Ok(mapped)
}

/// A geometry in CRS84 expressed in `crs`, axis order as the CRS defines it.
pub fn from_crs84(g: &geo::Geometry<f64>, crs: Crs) -> Result<geo::Geometry<f64>, CrsError> {
    match crs {
        Crs::Crs84 => Ok(g.clone()),
        Crs::Epsg(code) => transform_geometry(g, code, false),
    }
}

/// A geometry in CRS84 expressed in `crs`, easting (or longitude) first whatever the CRS's
/// axis order: the order of WKT, FlatGeobuf and spreadsheet x/y columns.
pub fn from_crs84_xy(g: &geo::Geometry<f64>, crs: Crs) -> Result<geo::Geometry<f64>, CrsError> {
    let out = from_crs84(g, crs)?;
    Ok(if crs.northing_first() {
        out.map_coords(|c| geo::coord! { x: c.y, y: c.x })
    } else {
        out
    })
}

/// A geometry given in `crs` (its axis order) in CRS84.
pub fn to_crs84(g: &geo::Geometry<f64>, crs: Crs) -> Result<geo::Geometry<f64>, CrsError> {
    match crs {
        Crs::Crs84 => Ok(g.clone()),
        Crs::Epsg(code) => transform_geometry(g, code, true),
    }
}

/// A bounding box given in `crs` (its axis order) as CRS84 `[west, south, east, north]`.
pub fn bbox_to_crs84(b: [f64; 4], crs: Crs) -> Result<[f64; 4], CrsError> {
    let Crs::Epsg(code) = crs else { return Ok(b) };
    with_transform(code, true, |ct| {
        ct.transform_bounds(&b, 21)
            .map_err(|e| CrsError(e.to_string()))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-geometry transformation puts every vertex where a per-vertex one does, in
    /// the same place of the structure (rings, holes, parts).
    #[test]
    fn one_call_per_geometry_keeps_every_vertex_in_place() {
        use geo::{CoordsIter, MapCoords};
        let ring = |pts: &[(f64, f64)]| geo::LineString::from(pts.to_vec());
        let g = geo::Geometry::MultiPolygon(geo::MultiPolygon(vec![
            geo::Polygon::new(
                ring(&[
                    (13.0, 55.5),
                    (13.2, 55.5),
                    (13.2, 55.7),
                    (13.0, 55.7),
                    (13.0, 55.5),
                ]),
                vec![ring(&[
                    (13.05, 55.55),
                    (13.1, 55.55),
                    (13.1, 55.6),
                    (13.05, 55.55),
                ])],
            ),
            geo::Polygon::new(
                ring(&[(14.0, 56.0), (14.1, 56.0), (14.1, 56.1), (14.0, 56.0)]),
                vec![],
            ),
        ]));
        let batch = from_crs84(&g, Crs::Epsg(3006)).expect("batch");
        let one_by_one = g.map_coords(|c| {
            let p = geo::Geometry::Point(geo::Point::from(c));
            match from_crs84(&p, Crs::Epsg(3006)).expect("point") {
                geo::Geometry::Point(p) => p.0,
                _ => unreachable!(),
            }
        });
        let a: Vec<_> = batch.coords_iter().collect();
        let b: Vec<_> = one_by_one.coords_iter().collect();
        assert_eq!(a.len(), 13);
        for (p, q) in a.iter().zip(&b) {
            assert!(
                (p.x - q.x).abs() < 1e-6 && (p.y - q.y).abs() < 1e-6,
                "{p:?} {q:?}"
            );
        }
        assert!(
            matches!(batch, geo::Geometry::MultiPolygon(ref mp) if mp.0[0].interiors().len() == 1)
        );
    }

    /// The axis orders `northing_first` assumes are those of the EPSG definitions GDAL has.
    #[test]
    fn northing_first_matches_the_epsg_definitions() {
        for &code in EPSG_CODES {
            let srs = SpatialRef::from_epsg(code).expect("EPSG");
            let key = if srs.is_geographic() {
                "GEOGCS"
            } else {
                "PROJCS"
            };
            let first = srs.axis_orientation(key, 0).expect("axis");
            assert_eq!(
                first == gdal_sys::OGRAxisOrientation::OAO_North,
                Crs::Epsg(code).northing_first(),
                "EPSG:{code}: first axis {first}"
            );
        }
        assert!(!Crs::Crs84.northing_first());
        let p = geo::Geometry::Point(geo::Point::new(13.0, 55.6));
        let geo::Geometry::Point(en) = from_crs84_xy(&p, Crs::Epsg(3006)).expect("3006") else {
            unreachable!()
        };
        assert!(en.x() < 1_000_000.0 && en.y() > 6_000_000.0, "{en:?}");
    }

    #[test]
    fn parses_uris_and_short_forms() {
        assert_eq!(Crs::parse(CRS84), Some(Crs::Crs84));
        assert_eq!(
            Crs::parse("http://www.opengis.net/def/crs/EPSG/0/3006"),
            Some(Crs::Epsg(3006))
        );
        assert_eq!(Crs::parse("EPSG:3008"), Some(Crs::Epsg(3008)));
        assert_eq!(Crs::parse("EPSG:2154"), None);
        assert_eq!(
            Crs::parse("http://www.opengis.net/def/crs/EPSG/0/abc"),
            None
        );
    }

    #[test]
    fn axis_orders_follow_the_epsg_definitions() {
        let p = geo::Geometry::Point(geo::Point::new(13.0, 55.6));
        let geo::Geometry::Point(lat_lon) = from_crs84(&p, Crs::Epsg(4326)).expect("4326") else {
            unreachable!()
        };
        assert!((lat_lon.x() - 55.6).abs() < 1e-12 && (lat_lon.y() - 13.0).abs() < 1e-12);
        let geo::Geometry::Point(ne) = from_crs84(&p, Crs::Epsg(3006)).expect("3006") else {
            unreachable!()
        };
        assert!(
            ne.x() > 6_000_000.0 && ne.y() < 1_000_000.0,
            "northing first: {ne:?}"
        );
        let geo::Geometry::Point(en) = from_crs84(&p, Crs::Epsg(3857)).expect("3857") else {
            unreachable!()
        };
        assert!(
            en.x() > 1_000_000.0 && en.x() < 2_000_000.0,
            "Web Mercator is easting first: {en:?}"
        );
        // And back: a box in SWEREF 99 TM (northing, easting) around the point.
        let b = bbox_to_crs84(
            [ne.x() - 10.0, ne.y() - 10.0, ne.x() + 10.0, ne.y() + 10.0],
            Crs::Epsg(3006),
        )
        .expect("bbox");
        assert!(
            b[0] < 13.0 && b[2] > 13.0 && b[1] < 55.6 && b[3] > 55.6,
            "{b:?}"
        );
    }
}
