//! Well-known text (OGC 06-103r4, the 2D types): `POINT (13 55.6)`. Numbers are written in
//! Rust's shortest form that reads back to the same double, never with an exponent, so a
//! geometry goes through WKT unchanged.

use std::fmt::Write as _;

use geo::Geometry;

/// `g` as WKT, appended to `out`.
pub fn write(out: &mut String, g: &Geometry<f64>) {
    match g {
        Geometry::Point(p) => {
            out.push_str("POINT (");
            coord(out, p.0);
            out.push(')');
        }
        Geometry::Line(l) => {
            out.push_str("LINESTRING ");
            coords(out, [l.start, l.end].into_iter());
        }
        Geometry::LineString(l) => {
            out.push_str("LINESTRING");
            line(out, l);
        }
        Geometry::Polygon(p) => {
            out.push_str("POLYGON");
            polygon(out, p);
        }
        Geometry::Rect(r) => write(out, &Geometry::Polygon(r.to_polygon())),
        Geometry::Triangle(t) => write(out, &Geometry::Polygon(t.to_polygon())),
        Geometry::MultiPoint(m) => {
            out.push_str("MULTIPOINT");
            list(out, &m.0, |out, p| {
                out.push('(');
                coord(out, p.0);
                out.push(')');
            });
        }
        Geometry::MultiLineString(m) => {
            out.push_str("MULTILINESTRING");
            list(out, &m.0, |out, l| coords(out, l.0.iter().copied()));
        }
        Geometry::MultiPolygon(m) => {
            out.push_str("MULTIPOLYGON");
            list(out, &m.0, rings);
        }
        Geometry::GeometryCollection(c) => {
            out.push_str("GEOMETRYCOLLECTION");
            list(out, &c.0, write);
        }
    }
}

/// ` EMPTY`, or ` (a, b, …)` with each item written by `item`.
fn list<T>(out: &mut String, items: &[T], mut item: impl FnMut(&mut String, &T)) {
    if items.is_empty() {
        out.push_str(" EMPTY");
        return;
    }
    out.push_str(" (");
    for (n, i) in items.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        item(out, i);
    }
    out.push(')');
}

fn line(out: &mut String, l: &geo::LineString<f64>) {
    if l.0.is_empty() {
        out.push_str(" EMPTY");
    } else {
        out.push(' ');
        coords(out, l.0.iter().copied());
    }
}

fn polygon(out: &mut String, p: &geo::Polygon<f64>) {
    if p.exterior().0.is_empty() {
        out.push_str(" EMPTY");
    } else {
        out.push(' ');
        rings(out, p);
    }
}

/// `((…), (…))`: the exterior ring, then the holes.
fn rings(out: &mut String, p: &geo::Polygon<f64>) {
    out.push('(');
    coords(out, p.exterior().0.iter().copied());
    for hole in p.interiors() {
        out.push_str(", ");
        coords(out, hole.0.iter().copied());
    }
    out.push(')');
}

/// `(x y, x y, …)`
fn coords(out: &mut String, cs: impl Iterator<Item = geo::Coord<f64>>) {
    out.push('(');
    for (n, c) in cs.enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        coord(out, c);
    }
    out.push(')');
}

fn coord(out: &mut String, c: geo::Coord<f64>) {
    number(out, c.x);
    out.push(' ');
    number(out, c.y);
}

/// A number in its shortest form that reads back the same (Display of f64: no exponent).
pub fn number(out: &mut String, v: f64) {
    let _ = write!(out, "{v}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{line_string, point, polygon};

    fn wkt(g: impl Into<Geometry<f64>>) -> String {
        let mut s = String::new();
        write(&mut s, &g.into());
        s
    }

    #[test]
    fn every_type_as_gdal_reads_it() {
        assert_eq!(wkt(point!(x: 13.0, y: 55.625)), "POINT (13 55.625)");
        assert_eq!(
            wkt(line_string![(x: 1.0, y: 2.0), (x: 3.5, y: -4.0)]),
            "LINESTRING (1 2, 3.5 -4)"
        );
        let p = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0), (x: 0.0, y: 0.0)],
            interiors: [[(x: 1.0, y: 1.0), (x: 2.0, y: 1.0), (x: 2.0, y: 2.0), (x: 1.0, y: 1.0)]],
        );
        assert_eq!(
            wkt(p.clone()),
            "POLYGON ((0 0, 4 0, 4 4, 0 0), (1 1, 2 1, 2 2, 1 1))"
        );
        assert_eq!(
            wkt(geo::MultiPolygon(vec![p.clone(), p])),
            "MULTIPOLYGON (((0 0, 4 0, 4 4, 0 0), (1 1, 2 1, 2 2, 1 1)), ((0 0, 4 0, 4 4, 0 0), (1 1, 2 1, 2 2, 1 1)))"
        );
        assert_eq!(
            wkt(geo::MultiPoint(vec![
                point!(x: 1.0, y: 2.0),
                point!(x: 3.0, y: 4.0)
            ])),
            "MULTIPOINT ((1 2), (3 4))"
        );
        assert_eq!(
            wkt(geo::MultiLineString(vec![
                line_string![(x: 1.0, y: 2.0), (x: 3.0, y: 4.0)],
                line_string![(x: 5.0, y: 6.0), (x: 7.0, y: 8.0)]
            ])),
            "MULTILINESTRING ((1 2, 3 4), (5 6, 7 8))"
        );
        assert_eq!(
            wkt(Geometry::GeometryCollection(geo::GeometryCollection(vec![
                Geometry::Point(point!(x: 1.0, y: 2.0)),
                Geometry::LineString(line_string![(x: 1.0, y: 2.0), (x: 3.0, y: 4.0)]),
            ]))),
            "GEOMETRYCOLLECTION (POINT (1 2), LINESTRING (1 2, 3 4))"
        );
        assert_eq!(wkt(geo::MultiPoint::<f64>(vec![])), "MULTIPOINT EMPTY");
    }

    #[test]
    fn numbers_read_back_exactly() {
        for v in [
            0.1 + 0.2,
            1e-9,
            123_456.789_012_345_67,
            -0.0000001,
            6_394_811.123,
        ] {
            let mut s = String::new();
            number(&mut s, v);
            assert!(!s.contains('e'), "{s}");
            assert_eq!(s.parse::<f64>().expect("a number"), v);
        }
    }
}
