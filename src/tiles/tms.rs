//! The WebMercatorQuad tile matrix set (OGC 17-083r4): tile addressing, tile bounds, and the
//! spherical Mercator projection it is defined on.

use std::f64::consts::PI;

use serde_json::{json, Value as Json};

pub const TMS_ID: &str = "WebMercatorQuad";
pub const TMS_URI: &str = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad";
/// Deepest zoom offered.
pub const MAX_ZOOM: u8 = 24;
/// Half the width of the world in EPSG:3857 metres.
pub const HALF_WORLD: f64 = PI * 6_378_137.0;
/// Latitude where Web Mercator's square world ends.
pub const MAX_LAT: f64 = 85.051_128_779_806_59;

/// A tile of WebMercatorQuad: zoom (`tileMatrix`), column (`x`, `tileCol`) and row (`y`,
/// `tileRow`, counted from the top). Constructed only within the matrix's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    z: u8,
    x: u32,
    y: u32,
}

impl TileId {
    pub fn new(z: u8, x: u32, y: u32) -> Option<Self> {
        if z > MAX_ZOOM {
            return None;
        }
        let n = 1u64 << z;
        (u64::from(x) < n && u64::from(y) < n).then_some(Self { z, x, y })
    }

    pub fn z(&self) -> u8 {
        self.z
    }
    pub fn x(&self) -> u32 {
        self.x
    }
    pub fn y(&self) -> u32 {
        self.y
    }

    /// Width of the tile in metres.
    pub fn span(&self) -> f64 {
        2.0 * HALF_WORLD / (1u64 << self.z) as f64
    }

    /// `[left, bottom, right, top]` in EPSG:3857 metres.
    pub fn bounds(&self) -> [f64; 4] {
        let span = self.span();
        let left = -HALF_WORLD + f64::from(self.x) * span;
        let top = HALF_WORLD - f64::from(self.y) * span;
        [left, top - span, left + span, top]
    }

    /// The bounds grown by `buffer` units of a tile `extent` units wide, in lon/lat.
    pub fn lonlat_bounds(&self, buffer: u32, extent: u32) -> [f64; 4] {
        let [l, b, r, t] = self.buffered(buffer, extent);
        let (w, s) = to_lonlat(l, b);
        let (e, n) = to_lonlat(r, t);
        [w.max(-180.0), s, e.min(180.0), n]
    }

    /// The bounds grown by `buffer` units of a tile `extent` units wide, in metres.
    pub fn buffered(&self, buffer: u32, extent: u32) -> [f64; 4] {
        let pad = self.span() * f64::from(buffer) / f64::from(extent);
        let [l, b, r, t] = self.bounds();
        [l - pad, b - pad, r + pad, t + pad]
    }
}

/// Longitude/latitude to EPSG:3857 metres (latitudes beyond the square world are clamped).
pub fn to_mercator(lon: f64, lat: f64) -> (f64, f64) {
    let lat = lat.clamp(-MAX_LAT, MAX_LAT).to_radians();
    let x = lon.to_radians() * 6_378_137.0;
    let y = (PI / 4.0 + lat / 2.0).tan().ln() * 6_378_137.0;
    (x, y)
}

pub fn to_lonlat(x: f64, y: f64) -> (f64, f64) {
    let lon = (x / 6_378_137.0).to_degrees();
    let lat = (2.0 * (y / 6_378_137.0).exp().atan() - PI / 2.0).to_degrees();
    (lon, lat)
}

/// The tile matrix set's definition, as `/tileMatrixSets/WebMercatorQuad` serves it.
pub fn definition() -> Json {
    let matrices: Vec<Json> = (0..=MAX_ZOOM)
        .map(|z| {
            let n = 1u64 << z;
            let cell = 2.0 * HALF_WORLD / (256.0 * n as f64);
            json!({
                "id": z.to_string(),
                "scaleDenominator": cell / 0.00028,
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-HALF_WORLD, HALF_WORLD],
                "tileWidth": 256,
                "tileHeight": 256,
                "matrixWidth": n,
                "matrixHeight": n,
            })
        })
        .collect();
    json!({
        "id": TMS_ID,
        "title": "Google Maps Compatible for the World",
        "uri": TMS_URI,
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "orderedAxes": ["E", "N"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": matrices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(TileId::new(0, 0, 0).is_some());
        assert!(TileId::new(0, 1, 0).is_none());
        assert!(TileId::new(3, 7, 7).is_some());
        assert!(TileId::new(3, 8, 0).is_none());
        assert!(TileId::new(25, 0, 0).is_none());
    }

    #[test]
    fn bounds_and_projection_agree() {
        let t = TileId::new(1, 0, 0).expect("tile");
        assert_eq!(t.bounds(), [-HALF_WORLD, 0.0, 0.0, HALF_WORLD]);
        let (x, y) = to_mercator(13.0, 55.6);
        let (lon, lat) = to_lonlat(x, y);
        assert!((lon - 13.0).abs() < 1e-9 && (lat - 55.6).abs() < 1e-9);
        // Malmö at zoom 12 lies in column 2195, row 1283 (as any XYZ map names it).
        let z = 12u8;
        let n = f64::from(1u32 << z);
        let col = ((x + HALF_WORLD) / (2.0 * HALF_WORLD) * n).floor();
        let row = ((HALF_WORLD - y) / (2.0 * HALF_WORLD) * n).floor();
        assert_eq!((col, row), (2195.0, 1283.0));
    }
}
