//! Tile matrix sets (OGC 17-083r4): tile addressing, tile bounds and the projection each is
//! defined on. WebMercatorQuad is what MapLibre, Leaflet and QGIS ask for; SWEREF99TM is the
//! grid of Lantmäteriet's map services (EPSG:3006, origin −1 200 000 E, 8 500 000 N, 4096 m a
//! pixel at level 0 halving to 0.5 m at level 13), so tiles lie over Swedish national base maps
//! in OpenLayers and other clients that take a WMTS-style grid. Both come from the same
//! snapshots: only the projection and the grid differ.

use std::f64::consts::PI;

use serde_json::{json, Value as Json};

use super::tm;

/// Deepest WebMercatorQuad zoom offered.
pub const MAX_ZOOM: u8 = 24;
/// Half the width of the world in EPSG:3857 metres.
pub const HALF_WORLD: f64 = PI * 6_378_137.0;
/// Latitude where Web Mercator's square world ends.
pub const MAX_LAT: f64 = 85.051_128_779_806_59;

/// SWEREF99TM: top-left corner (easting, northing), level-0 cell size, deepest level and the
/// number of level-0 tiles across and down (the grid covers 4 194 304 m each way).
const SWEREF_ORIGIN: (f64, f64) = (-1_200_000.0, 8_500_000.0);
const SWEREF_CELL0: f64 = 4096.0;
const SWEREF_MAX_LEVEL: u8 = 13;
const SWEREF_TILES0: u64 = 4;

/// Map pixels of 0.28 mm, as OGC scale denominators assume.
const PIXEL_METRES: f64 = 0.000_28;

/// A tile matrix set hamn serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tms {
    WebMercatorQuad,
    Sweref99Tm,
}

impl Tms {
    pub const ALL: [Tms; 2] = [Tms::WebMercatorQuad, Tms::Sweref99Tm];

    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    pub fn id(self) -> &'static str {
        match self {
            Tms::WebMercatorQuad => "WebMercatorQuad",
            Tms::Sweref99Tm => "SWEREF99TM",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Tms::WebMercatorQuad => "Google Maps Compatible for the World",
            Tms::Sweref99Tm => "SWEREF 99 TM, the tile grid of Lantmäteriet's map services",
        }
    }

    /// The registered OGC URI; SWEREF99TM has none.
    pub fn uri(self) -> Option<&'static str> {
        match self {
            Tms::WebMercatorQuad => {
                Some("http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad")
            }
            Tms::Sweref99Tm => None,
        }
    }

    pub fn crs(self) -> &'static str {
        match self {
            Tms::WebMercatorQuad => "http://www.opengis.net/def/crs/EPSG/0/3857",
            Tms::Sweref99Tm => "http://www.opengis.net/def/crs/EPSG/0/3006",
        }
    }

    pub fn max_level(self) -> u8 {
        match self {
            Tms::WebMercatorQuad => MAX_ZOOM,
            Tms::Sweref99Tm => SWEREF_MAX_LEVEL,
        }
    }

    /// Tiles across (and down: both grids are square) at `level`.
    fn matrix_size(self, level: u8) -> u64 {
        match self {
            Tms::WebMercatorQuad => 1u64 << level,
            Tms::Sweref99Tm => SWEREF_TILES0 << level,
        }
    }

    /// Width of one pixel of a 256-pixel tile at `level`, in the CRS's metres.
    fn cell_size(self, level: u8) -> f64 {
        match self {
            Tms::WebMercatorQuad => 2.0 * HALF_WORLD / 256.0 / (1u64 << level) as f64,
            Tms::Sweref99Tm => SWEREF_CELL0 / (1u64 << level) as f64,
        }
    }

    /// The grid's top-left corner (easting, northing).
    fn origin(self) -> (f64, f64) {
        match self {
            Tms::WebMercatorQuad => (-HALF_WORLD, HALF_WORLD),
            Tms::Sweref99Tm => SWEREF_ORIGIN,
        }
    }

    /// Longitude/latitude to the CRS's easting and northing.
    pub fn project(self, lon: f64, lat: f64) -> (f64, f64) {
        match self {
            Tms::WebMercatorQuad => to_mercator(lon, lat),
            Tms::Sweref99Tm => tm::forward(lon, lat),
        }
    }

    fn unproject(self, x: f64, y: f64) -> (f64, f64) {
        match self {
            Tms::WebMercatorQuad => to_lonlat(x, y),
            Tms::Sweref99Tm => tm::inverse(x, y),
        }
    }

    /// The longitudes this set's projection takes as they are (Web Mercator: all of them).
    pub fn lon_range(self) -> [f64; 2] {
        match self {
            Tms::WebMercatorQuad => [-180.0, 180.0],
            Tms::Sweref99Tm => tm::LON_RANGE,
        }
    }

    /// The WebMercatorQuad zoom that shows about as much as `level` does, for collections'
    /// zoom ranges (which are WebMercatorQuad zooms). A SWEREF99TM level's pixels are about as
    /// large on the ground as those of the WebMercatorQuad zoom 4.4 deeper at 56° N (Skåne) and
    /// 4.0 deeper at 64° N.
    pub fn web_mercator_zoom(self, level: u8) -> u8 {
        match self {
            Tms::WebMercatorQuad => level,
            Tms::Sweref99Tm => level + 4,
        }
    }

    /// The tile matrix set's definition, as `/tileMatrixSets/{id}` serves it: OGC 17-083r4
    /// (TMS 2.0) JSON, points in the CRS's axis order (EPSG:3006 is northing first).
    pub fn definition(self) -> Json {
        let (left, top) = self.origin();
        let in_axis_order = |e: f64, n: f64| match self {
            Tms::WebMercatorQuad => [e, n],
            Tms::Sweref99Tm => [n, e],
        };
        let origin = in_axis_order(left, top);
        let size = self.cell_size(0) * 256.0 * self.matrix_size(0) as f64;
        let (lower, upper) = (
            in_axis_order(left, top - size),
            in_axis_order(left + size, top),
        );
        let matrices: Vec<Json> = (0..=self.max_level())
            .map(|z| {
                let n = self.matrix_size(z);
                let cell = self.cell_size(z);
                json!({
                    "id": z.to_string(),
                    "scaleDenominator": cell / PIXEL_METRES,
                    "cellSize": cell,
                    "cornerOfOrigin": "topLeft",
                    "pointOfOrigin": origin,
                    "tileWidth": 256,
                    "tileHeight": 256,
                    "matrixWidth": n,
                    "matrixHeight": n,
                })
            })
            .collect();
        let mut doc = json!({
            "id": self.id(),
            "title": self.title(),
            "crs": self.crs(),
            "orderedAxes": match self {
                Tms::WebMercatorQuad => ["E", "N"],
                Tms::Sweref99Tm => ["N", "E"],
            },
            "boundingBox": {
                "lowerLeft": lower,
                "upperRight": upper,
                "crs": self.crs(),
            },
            "tileMatrices": matrices,
        });
        if let Some(uri) = self.uri() {
            doc["uri"] = json!(uri);
            doc["wellKnownScaleSet"] =
                json!("http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible");
        }
        doc
    }
}

/// A tile: its matrix set, level (`tileMatrix`, `z`), column (`x`, `tileCol`) and row (`y`,
/// `tileRow`, counted from the top). Constructed only within the matrix's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileId {
    tms: Tms,
    z: u8,
    x: u32,
    y: u32,
}

impl TileId {
    pub fn new(tms: Tms, z: u8, x: u32, y: u32) -> Option<Self> {
        if z > tms.max_level() {
            return None;
        }
        let n = tms.matrix_size(z);
        (u64::from(x) < n && u64::from(y) < n).then_some(Self { tms, z, x, y })
    }

    pub fn tms(&self) -> Tms {
        self.tms
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

    /// Width of the tile in metres of its CRS.
    pub fn span(&self) -> f64 {
        self.tms.cell_size(self.z) * 256.0
    }

    /// `[left, bottom, right, top]` in the CRS's metres (easting, northing).
    pub fn bounds(&self) -> [f64; 4] {
        let span = self.span();
        let (x0, y0) = self.tms.origin();
        let left = x0 + f64::from(self.x) * span;
        let top = y0 - f64::from(self.y) * span;
        [left, top - span, left + span, top]
    }

    /// Longitude/latitude to the tile's CRS.
    pub fn project(&self, lon: f64, lat: f64) -> (f64, f64) {
        self.tms.project(lon, lat)
    }

    /// A longitude/latitude box holding the bounds grown by `buffer` units of a tile `extent`
    /// units wide. Web Mercator's is exact. A SWEREF 99 TM tile is curved in longitude and
    /// latitude: its edges are followed in 16 steps each, and the box grown by a tenth of a
    /// step, more than an edge bulges between two steps. (A search box, not a clip: what lies
    /// inside it but outside the tile is clipped away later.)
    pub fn lonlat_bounds(&self, buffer: u32, extent: u32) -> [f64; 4] {
        let [l, b, r, t] = self.buffered(buffer, extent);
        match self.tms {
            Tms::WebMercatorQuad => {
                let (w, s) = to_lonlat(l, b);
                let (e, n) = to_lonlat(r, t);
                [w.max(-180.0), s, e.min(180.0), n]
            }
            Tms::Sweref99Tm => {
                const STEPS: u32 = 16;
                let mut out = [
                    f64::INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NEG_INFINITY,
                ];
                for i in 0..=STEPS {
                    let f = f64::from(i) / f64::from(STEPS);
                    let (x, y) = (l + (r - l) * f, b + (t - b) * f);
                    for (e, n) in [(x, b), (x, t), (l, y), (r, y)] {
                        let (lon, lat) = self.tms.unproject(e, n);
                        out = [
                            out[0].min(lon),
                            out[1].min(lat),
                            out[2].max(lon),
                            out[3].max(lat),
                        ];
                    }
                }
                let pad_x = (out[2] - out[0]) / f64::from(STEPS) / 10.0;
                let pad_y = (out[3] - out[1]) / f64::from(STEPS) / 10.0;
                [
                    (out[0] - pad_x).max(-180.0),
                    (out[1] - pad_y).max(-90.0),
                    (out[2] + pad_x).min(180.0),
                    (out[3] + pad_y).min(90.0),
                ]
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const WMQ: Tms = Tms::WebMercatorQuad;
    const SW: Tms = Tms::Sweref99Tm;

    #[test]
    fn sweref_grid() {
        assert!(TileId::new(SW, 0, 3, 3).is_some());
        assert!(TileId::new(SW, 0, 4, 0).is_none());
        assert!(TileId::new(SW, 13, 32767, 32767).is_some());
        assert!(TileId::new(SW, 13, 32768, 0).is_none());
        assert!(TileId::new(SW, 14, 0, 0).is_none());
        let t = TileId::new(SW, 0, 0, 0).expect("tile");
        assert_eq!(
            t.bounds(),
            [-1_200_000.0, 7_451_424.0, -151_424.0, 8_500_000.0]
        );
        // Malmö (SWEREF 99 TM about 374 000 E, 6 164 000 N) at level 8: 4096 m tiles.
        let (e, n) = SW.project(13.0, 55.6);
        let t = TileId::new(SW, 8, 384, 570).expect("tile");
        let [l, b, r, top] = t.bounds();
        assert!(
            l <= e && e < r && b <= n && n < top,
            "{e} {n} not in {:?}",
            t.bounds()
        );
        // The search box holds every point of the buffered tile.
        let [w, s, east, north] = t.lonlat_bounds(64, 4096);
        let [bl, bb, br, bt] = t.buffered(64, 4096);
        for i in 0..=10 {
            for j in 0..=10 {
                let x = bl + (br - bl) * f64::from(i) / 10.0;
                let y = bb + (bt - bb) * f64::from(j) / 10.0;
                let (lon, lat) = tm::inverse(x, y);
                assert!(w <= lon && lon <= east && s <= lat && lat <= north);
            }
        }
        assert_eq!(Tms::parse("SWEREF99TM"), Some(SW));
        assert_eq!(Tms::parse("sweref99tm"), None);
        assert_eq!(SW.definition()["tileMatrices"][13]["cellSize"], 0.5);
    }

    #[test]
    fn limits() {
        assert!(TileId::new(WMQ, 0, 0, 0).is_some());
        assert!(TileId::new(WMQ, 0, 1, 0).is_none());
        assert!(TileId::new(WMQ, 3, 7, 7).is_some());
        assert!(TileId::new(WMQ, 3, 8, 0).is_none());
        assert!(TileId::new(WMQ, 25, 0, 0).is_none());
    }

    #[test]
    fn bounds_and_projection_agree() {
        let t = TileId::new(WMQ, 1, 0, 0).expect("tile");
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
