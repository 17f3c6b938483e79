//! Vector tiles over HTTP: decoded and checked against the stored features (nothing missing,
//! nothing outside the buffered tile, rings wound as MVT wants), read by GDAL's MVT driver,
//! TileJSON and tile matrix set documents, caching, bad tile addresses, and the map page in
//! headless Chromium.

mod common;

use std::collections::HashSet;

use common::*;
use geo::Intersects;
use geozero::mvt::{Message, Tile};
use hamn::tiles::tms::Tms;
use hamn::tiles::TileId;
use serde_json::Value as Json;

fn tile_bytes(url: &str) -> (u16, Vec<u8>) {
    let resp = fetch(url);
    let status = resp.status();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("read");
    (status, body)
}

/// A decoded MVT geometry: its type and its rings/lines/points in tile coordinates.
struct Decoded {
    kind: i32,
    parts: Vec<Vec<(i64, i64)>>,
}

/// Decodes MVT geometry commands (MoveTo 1, LineTo 2, ClosePath 7; zigzag parameters).
fn decode(kind: i32, cmds: &[u32]) -> Decoded {
    let zig = |v: u32| i64::from((v >> 1) as i32 ^ -((v & 1) as i32));
    let (mut x, mut y) = (0i64, 0i64);
    let mut parts: Vec<Vec<(i64, i64)>> = Vec::new();
    let mut i = 0;
    while i < cmds.len() {
        let (id, count) = (cmds[i] & 7, cmds[i] >> 3);
        i += 1;
        match id {
            1 | 2 => {
                for _ in 0..count {
                    x += zig(cmds[i]);
                    y += zig(cmds[i + 1]);
                    i += 2;
                    if id == 1 {
                        parts.push(Vec::new());
                    }
                    if let Some(p) = parts.last_mut() {
                        p.push((x, y));
                    }
                }
            }
            7 => {}
            other => panic!("unknown command {other}"),
        }
    }
    Decoded { kind, parts }
}

fn ring_area(r: &[(i64, i64)]) -> i64 {
    let n = r.len();
    (0..n)
        .map(|i| r[i].0 * r[(i + 1) % n].1 - r[(i + 1) % n].0 * r[i].1)
        .sum::<i64>()
}

/// A feature thinner than one unit of the tile grid can collapse when quantised (a point, or a
/// line for a sliver polygon such as street-side parking); it is dropped as degenerate, as
/// PostGIS's ST_AsMVTGeom drops it. Everything else must be in the tile.
fn below_one_unit(g: &geo::Geometry<f64>, tile: TileId) -> bool {
    use geo::{Area, BoundingRect, MapCoords};
    if matches!(g, geo::Geometry::Point(_)) {
        return false;
    }
    let unit = tile.span() / 4096.0;
    let m = g.map_coords(|c| {
        let (x, y) = tile.project(c.x, c.y);
        geo::coord! { x: x / unit, y: y / unit }
    });
    let Some(b) = m.bounding_rect() else {
        return true;
    };
    let (w, h) = (b.width(), b.height());
    match g {
        // Average width: area over the longest extent.
        geo::Geometry::Polygon(_) | geo::Geometry::MultiPolygon(_) => {
            m.unsigned_area() / w.max(h).max(1e-9) < 1.5
        }
        _ => w < 1.0 && h < 1.0,
    }
}

/// Where PROJ (through GDAL, as the API's `crs=` uses it, independent of the tile code's own
/// projection formulas) puts a longitude/latitude in `tile`'s CRS, as (easting, northing).
fn proj_en(tile: TileId, lon: f64, lat: f64) -> (f64, f64) {
    let (code, northing_first) = match tile.tms() {
        Tms::WebMercatorQuad => (3857, false),
        Tms::Sweref99Tm => (3006, true),
    };
    let p = geo::Geometry::Point(geo::Point::new(lon, lat));
    let Ok(geo::Geometry::Point(q)) = hamn::crs::from_crs84(&p, hamn::crs::Crs::Epsg(code)) else {
        panic!("PROJ cannot project {lon} {lat} to EPSG:{code}");
    };
    if northing_first {
        (q.y(), q.x())
    } else {
        (q.x(), q.y())
    }
}

/// The tile of `tms` at `z` holding a longitude/latitude.
fn tile_at(tms: Tms, z: u8, lon: f64, lat: f64) -> TileId {
    let probe = TileId::new(tms, z, 0, 0).expect("tile 0/0");
    let [left, _, _, top] = probe.bounds();
    let (e, n) = proj_en(probe, lon, lat);
    let x = ((e - left) / probe.span()).floor() as u32;
    let y = ((top - n) / probe.span()).floor() as u32;
    TileId::new(tms, z, x, y).expect("tile in range")
}

/// Checks one tile of `collection` against the stored features; returns how many it held.
async fn check_tile(s: &Server, dir: &std::path::Path, collection: &str, tile: TileId) -> usize {
    let (z, x, y) = (tile.z(), tile.x(), tile.y());
    use hamn::store::Store;
    let store = hamn::store::embedded::EmbeddedStore::open(dir).expect("store");
    let stored = store.features(&id(collection)).await.expect("features");
    let entry = store
        .get(&id(collection))
        .await
        .expect("catalog")
        .expect("entry");
    let (status, body) = tile_bytes(&format!(
        "{}/collections/{collection}/tiles/{}/{z}/{y}/{x}",
        s.base,
        tile.tms().id()
    ));
    // Everything that crosses the inner 80% of the tile must be there (a feature that only
    // grazes an edge may shrink below a pixel and be dropped, as it should). Tested in the
    // tile's CRS, through PROJ.
    let [l, b, r, t] = tile.bounds();
    let (dx, dy) = ((r - l) * 0.1, (t - b) * 0.1);
    let inner = geo::Rect::new(
        geo::coord! { x: l + dx, y: b + dy },
        geo::coord! { x: r - dx, y: t - dy },
    );
    let in_crs = |g: &geo::Geometry<f64>| {
        use geo::MapCoords;
        g.map_coords(|c| {
            let (e, n) = proj_en(tile, c.x, c.y);
            geo::coord! { x: e, y: n }
        })
    };
    // Only what comes near the tile goes through PROJ (a lon/lat box that holds the tile).
    let [w, so, e, n] = tile.lonlat_bounds(0, 4096);
    let near = geo::Rect::new(geo::coord! { x: w, y: so }, geo::coord! { x: e, y: n });
    let must: HashSet<u64> = stored
        .iter()
        .filter(|f| {
            f.geometry
                .as_deref()
                .and_then(hamn::engine::snapshot::geometry_from_wkb)
                .is_some_and(|g| {
                    use geo::BoundingRect;
                    g.bounding_rect().is_some_and(|b| b.intersects(&near))
                        && in_crs(&g).intersects(&inner)
                        && !below_one_unit(&g, tile)
                })
        })
        .map(|f| f.id.parse::<u64>().unwrap_or(f.fid as u64))
        .collect();
    if status == 204 {
        assert!(
            must.is_empty(),
            "{collection} {z}/{x}/{y}: empty tile but {} features cross it",
            must.len()
        );
        return 0;
    }
    assert_eq!(status, 200);
    let decoded = Tile::decode(body.as_slice()).expect("valid protobuf");
    assert_eq!(decoded.layers.len(), 1);
    let layer = &decoded.layers[0];
    assert_eq!(layer.name, collection);
    assert_eq!(layer.version, 2);
    assert_eq!(layer.extent, Some(4096));
    let ids: HashSet<u64> = layer.features.iter().filter_map(|f| f.id).collect();
    let missing: Vec<&u64> = must.difference(&ids).collect();
    assert!(
        missing.is_empty(),
        "{collection} {z}/{x}/{y}: missing {missing:?}"
    );
    let by_id: std::collections::HashMap<u64, &hamn::store::StoredFeature> = stored
        .iter()
        .map(|f| (f.id.parse::<u64>().unwrap_or(f.fid as u64), f))
        .collect();
    for f in &layer.features {
        assert_eq!(f.tags.len() % 2, 0);
        assert!(f
            .tags
            .iter()
            .step_by(2)
            .all(|k| (*k as usize) < layer.keys.len()));
        // Every attribute with a value is a tag with that value; nulls are left out.
        let source = by_id[&f.id.expect("feature id")];
        let tags: std::collections::HashMap<&str, &geozero::mvt::tile::Value> = f
            .tags
            .chunks(2)
            .map(|kv| {
                (
                    layer.keys[kv[0] as usize].as_str(),
                    &layer.values[kv[1] as usize],
                )
            })
            .collect();
        for (a, v) in entry.attributes.iter().zip(&source.values) {
            let tag = tags.get(a.name.as_str());
            use hamn::store::Value as V;
            let ok = match (v, tag) {
                (V::Null, None) => true,
                (V::Integer(i), Some(t)) => t.int_value == Some(*i),
                (V::Real(r), Some(t)) => t.double_value == Some(*r),
                (V::Boolean(b), Some(t)) => t.bool_value == Some(*b),
                (V::Text(s), Some(t)) => t.string_value.as_deref() == Some(s.as_str()),
                (V::Date(d), Some(t)) => t.string_value.as_deref() == Some(d.to_string().as_str()),
                (V::DateTime(d), Some(t)) => {
                    t.string_value.as_deref() == Some(d.to_rfc3339().as_str())
                }
                (V::Json(_), Some(t)) => t.string_value.is_some(),
                _ => false,
            };
            assert!(
                ok,
                "{collection}: feature {:?} attribute {}: {v:?} vs tag {tag:?}",
                f.id, a.name
            );
        }
        let g = decode(f.r#type.expect("type"), &f.geometry);
        assert!(!g.parts.is_empty());
        // A point is where PROJ puts it, to the grid unit.
        if let (1, Some(bytes)) = (g.kind, source.geometry.as_deref()) {
            if let Some(geo::Geometry::Point(p)) = hamn::engine::snapshot::geometry_from_wkb(bytes)
            {
                let (e, n) = proj_en(tile, p.x(), p.y());
                let unit = tile.span() / 4096.0;
                let (gx, gy) = ((e - l) / unit, (t - n) / unit);
                let (px, py) = g.parts[0][0];
                assert!(
                    (px as f64 - gx).abs() <= 0.51 && (py as f64 - gy).abs() <= 0.51,
                    "{collection} {z}/{x}/{y}: point {:?} at ({px},{py}), PROJ says ({gx:.2},{gy:.2})",
                    f.id
                );
            }
        }
        for part in &g.parts {
            for &(px, py) in part {
                assert!(
                    (-64..=4160).contains(&px) && (-64..=4160).contains(&py),
                    "{collection}: ({px},{py}) outside the buffer"
                );
            }
        }
        match g.kind {
            2 => assert!(g.parts.iter().all(|l| l.len() >= 2), "degenerate line"),
            3 => {
                // The first ring is an exterior: positive area in tile coordinates (clockwise, y down).
                assert!(
                    ring_area(&g.parts[0]) > 0,
                    "exterior ring wound the wrong way"
                );
                assert!(
                    g.parts.iter().all(|r| r.len() >= 3 && ring_area(r) != 0),
                    "degenerate ring"
                );
            }
            _ => {}
        }
    }
    layer.features.len()
}

#[tokio::test]
async fn tiles_hold_every_feature_they_should_and_nothing_else() {
    let (s, dir) = demo_server();
    // Malmö's street lines at several zooms, Copenhagen's parking polygons, Viborg's parcels.
    let mut total = 0;
    for (collection, lon, lat) in [
        ("malmo-miljoparkering", 13.0, 55.6),
        ("copenhagen-osm-parking", 12.57, 55.68),
        ("viborg-matrikel-jordstykker", 9.43, 56.46),
        ("traffic-counts-malmo-lund-synthetic", 13.19, 55.70),
    ] {
        // WebMercatorQuad zooms, and SWEREF99TM levels of about the same scales.
        for (tms, z) in [
            (Tms::WebMercatorQuad, 10u8),
            (Tms::WebMercatorQuad, 12),
            (Tms::WebMercatorQuad, 14),
            (Tms::WebMercatorQuad, 15),
            (Tms::Sweref99Tm, 6),
            (Tms::Sweref99Tm, 8),
            (Tms::Sweref99Tm, 10),
            (Tms::Sweref99Tm, 11),
        ] {
            let tile = tile_at(tms, z, lon, lat);
            total += check_tile(&s, dir.path(), collection, tile).await;
            // And a neighbour, so features crossing tile edges are seen from both sides.
            let next = TileId::new(tms, z, tile.x() + 1, tile.y()).expect("neighbour");
            total += check_tile(&s, dir.path(), collection, next).await;
        }
    }
    assert!(total > 1000, "the tiles held {total} features in all");
}

#[test]
fn gdal_reads_a_tile_and_the_documents_are_right() {
    let (s, _dir) = demo_server();
    let (status, body) = tile_bytes(&format!("{}/tiles/WebMercatorQuad/10/320/548", s.base));
    assert_eq!(status, 200);
    let out = tempfile::tempdir().expect("tempdir");
    let path = out.path().join("tile.mvt");
    std::fs::write(&path, &body).expect("write");
    let ds = gdal::Dataset::open(&path).expect("GDAL opens the tile");
    assert_eq!(ds.driver().short_name(), "MVT");
    let names: Vec<String> = ds
        .layers()
        .map(|l| gdal::vector::LayerAccess::name(&l))
        .collect();
    for l in [
        "malmo-miljoparkering",
        "traffic-counts-malmo-lund-synthetic",
        "noise-malmo-lund-synthetic",
    ] {
        assert!(names.iter().any(|n| n == l), "{l} not in {names:?}");
    }
    // Only the collections asked for.
    let (_, body) = tile_bytes(&format!(
        "{}/tiles/WebMercatorQuad/10/320/548?collections=traffic-counts-malmo-lund-synthetic",
        s.base
    ));
    let decoded = Tile::decode(body.as_slice()).expect("decode");
    assert_eq!(decoded.layers.len(), 1);

    let (_, tj) = get(&format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic/tiles/WebMercatorQuad/tilejson.json",
        s.base
    ));
    assert_eq!(tj["tilejson"], "3.0.0");
    let template = tj["tiles"][0].as_str().expect("template");
    // The tile URLs name the collection's version (immutable tiles; see cache rules).
    let (path, version) = template.split_once("?v=").expect("?v= in the template");
    assert!(path.ends_with("/{z}/{y}/{x}"), "{template}");
    assert!(version.parse::<i64>().is_ok(), "{template}");
    assert_eq!(
        tj["vector_layers"][0]["id"],
        "traffic-counts-malmo-lund-synthetic"
    );
    assert_eq!(tj["vector_layers"][0]["fields"]["adt"], "Number");
    let b = tj["bounds"].as_array().expect("bounds");
    assert!(b[0].as_f64().expect("w") < 13.0 && b[2].as_f64().expect("e") > 13.2);
    let url = template
        .replace("{z}", "10")
        .replace("{y}", "320")
        .replace("{x}", "548");
    assert_eq!(fetch(&url).status(), 200);

    let (_, tms) = get(&format!("{}/tileMatrixSets/WebMercatorQuad", s.base));
    assert_eq!(tms["tileMatrices"].as_array().map(Vec::len), Some(25));
    assert_eq!(tms["tileMatrices"][0]["matrixWidth"], 1);
    // SWEREF99TM as Lantmäteriet's services define it: northing first, 4096 m a pixel at level
    // 0 halving to 0.5 m at level 13.
    let (_, sw) = get(&format!("{}/tileMatrixSets/SWEREF99TM", s.base));
    assert_eq!(sw["crs"], "http://www.opengis.net/def/crs/EPSG/0/3006");
    assert_eq!(sw["orderedAxes"], serde_json::json!(["N", "E"]));
    let m = sw["tileMatrices"].as_array().expect("matrices");
    assert_eq!(m.len(), 14);
    assert_eq!(m[0]["cellSize"], 4096.0);
    assert_eq!(m[13]["cellSize"], 0.5);
    assert_eq!(
        m[0]["pointOfOrigin"],
        serde_json::json!([8_500_000.0, -1_200_000.0])
    );
    assert_eq!(m[0]["matrixWidth"], 4);
    let (_, list) = get(&format!("{}/tileMatrixSets", s.base));
    let ids: Vec<&str> = list["tileMatrixSets"]
        .as_array()
        .expect("sets")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["WebMercatorQuad", "SWEREF99TM"]);
    let (_, sets) = get(&format!("{}/collections/harryda-badplatser/tiles", s.base));
    let sets = sets["tilesets"].as_array().expect("tilesets");
    assert_eq!(sets.len(), 2);
    for set in sets {
        assert!(set["links"]
            .as_array()
            .expect("links")
            .iter()
            .any(|l| l["rel"] == "item"));
    }
    let (_, ts) = get(&format!(
        "{}/collections/harryda-badplatser/tiles/SWEREF99TM",
        s.base
    ));
    assert_eq!(ts["crs"], "http://www.opengis.net/def/crs/EPSG/0/3006");
    assert!(ts["links"]
        .as_array()
        .expect("links")
        .iter()
        .all(|l| l["rel"] != "describedby"));
    // TileJSON cannot name another grid than Web Mercator's.
    let resp = fetch(&format!(
        "{}/collections/harryda-badplatser/tiles/SWEREF99TM/tilejson.json",
        s.base
    ));
    assert_eq!(resp.status(), 404);
    let (_, ts) = get(&format!(
        "{}/collections/harryda-badplatser/tiles/WebMercatorQuad",
        s.base
    ));
    assert_eq!(ts["dataType"], "vector");
    // The OpenAPI document lists the tile paths, with the matrix sets offered.
    let (_, api) = get(&format!("{}/api", s.base));
    let tile = &api["paths"]
        ["/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}"]
        ["get"];
    assert!(tile["responses"]["200"]["content"]
        .get("application/vnd.mapbox-vector-tile")
        .is_some());
    assert!(tile["responses"].get("204").is_some());
    let sets = tile["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "tileMatrixSetId")
        .map(|p| p["schema"]["enum"].clone());
    assert_eq!(
        sets,
        Some(serde_json::json!(["WebMercatorQuad", "SWEREF99TM"]))
    );
    let (_, conf) = get(&format!("{}/conformance", s.base));
    let classes: Vec<&str> = conf["conformsTo"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert!(classes
        .iter()
        .any(|c| c.ends_with("ogcapi-tiles-1/1.0/conf/mvt")));
    let (_, landing) = get(&format!("{}/", s.base));
    assert!(landing["links"]
        .as_array()
        .expect("links")
        .iter()
        .any(|l| l["href"].as_str().is_some_and(|h| h.ends_with("/tiles"))));
}

#[test]
fn bad_tile_addresses_and_empty_tiles() {
    let (s, _dir) = demo_server();
    let t = format!(
        "{}/collections/malmo-miljoparkering/tiles/WebMercatorQuad",
        s.base
    );
    let sw = format!("{}/tiles/SWEREF99TM", s.base);
    for (path, want) in [
        (format!("{t}/25/0/0"), 404),
        (format!("{t}/3/8/0"), 404),
        (format!("{t}/3/0/8"), 404),
        (format!("{t}/99999999999/0/0"), 404),
        (format!("{t}/a/0/0"), 400),
        (format!("{t}/3/-1/0"), 400),
        (format!("{t}/3/0/1.5"), 400),
        (
            format!(
                "{}/collections/malmo-miljoparkering/tiles/NoSuchTMS/0/0/0",
                s.base
            ),
            404,
        ),
        (
            format!("{}/collections/nope/tiles/WebMercatorQuad/0/0/0", s.base),
            404,
        ),
        (
            format!("{}/tiles/WebMercatorQuad/0/0/0?collections=nope", s.base),
            400,
        ),
        (format!("{t}/0/0/0?bogus=1"), 400),
        // SWEREF99TM: 4 tiles across at level 0, 14 levels.
        (format!("{sw}/0/4/0"), 404),
        (format!("{sw}/0/0/4"), 404),
        (format!("{sw}/14/0/0"), 404),
        (format!("{sw}/x/0/0"), 400),
    ] {
        let resp = fetch(&path);
        assert_eq!(resp.status(), want, "{path}");
        assert_eq!(resp.content_type(), "application/json", "{path}");
    }
    // A tile in the sea off Africa has nothing: 204, every time.
    for _ in 0..2 {
        assert_eq!(fetch(&format!("{t}/10/500/500")).status(), 204);
    }
}

#[test]
fn tile_caching_and_versions() {
    let (s, dir) = demo_server();
    // The tile at zoom 10 holding Härryda's bathing sites (about 12.3 E, 57.6 N).
    let (mx, my) = hamn::tiles::tms::to_mercator(12.3, 57.62);
    let half = hamn::tiles::tms::HALF_WORLD;
    let (x, y) = (
        ((mx + half) / (2.0 * half) * 1024.0) as u32,
        ((half - my) / (2.0 * half) * 1024.0) as u32,
    );
    let url = format!(
        "{}/collections/harryda-badplatser/tiles/WebMercatorQuad/10/{y}/{x}",
        s.base
    );
    let first = fetch(&url);
    assert_eq!(first.status(), 200);
    assert_eq!(first.content_type(), "application/vnd.mapbox-vector-tile");
    let etag = first.header("etag").expect("etag").to_string();
    let again = ureq::get(&url)
        .set("If-None-Match", &etag)
        .call()
        .expect("304");
    assert_eq!(again.status(), 304);
    let (_, a) = tile_bytes(&url);
    let (_, b) = tile_bytes(&url);
    assert_eq!(a, b, "a cached tile is the same tile");
    // A new version of the collection gives new tiles and a new ETag.
    let o = hamn_cmd()
        .args([
            "--data-dir",
            &dir.path().display().to_string(),
            "ingest",
            &data("synthetic/traffic_counts_malmo_lund_synthetic.geojson"),
        ])
        .args(["-c", "harryda-badplatser", "--mode", "replace"])
        .output()
        .expect("ingest");
    assert!(o.status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = fetch(&url);
        if r.header("etag") != Some(etag.as_str()) {
            assert_eq!(r.status(), 204, "Härryda's tile has none of the new data");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "tile never changed");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// One map page in headless Chromium (tests/browser/map.js): its report, with the pixels of the
/// map canvas counted by colour (`extra`: more colours to count, {"name": "#rrggbb"}). A
/// screenshot of the page is left in the target directory's browser-screenshots/`name`.png.
fn map_page(url: &str, name: &str, extra: &Json) -> Json {
    let script = repo().join("tests/browser/map.js");
    let modules = repo().join("tests/browser/node_modules/playwright-core");
    assert!(
        modules.exists(),
        "playwright-core is missing: `bash scripts/deps.sh browser` installs it (the test command does)"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(url)
        .arg(extra.to_string())
        .env("HAMN_SCREENSHOT", shots.join(format!("{name}.png")))
        .output()
        .expect("node");
    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{url}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["errors"], serde_json::json!([]), "{url}");
    report
}

/// The share of the map's pixels in the colour `name` (see `map_page`).
fn share(report: &Json, name: &str) -> f64 {
    let total = report["pixels"]["total"].as_f64().unwrap_or(0.0);
    report["pixels"][name].as_f64().unwrap_or(0.0) / total.max(1.0)
}

/// A map's background is drawn: land and sea each cover a good share of it.
fn assert_background(page: &str, report: &Json, sea: bool) {
    let (land_share, sea_share) = (share(report, "land"), share(report, "sea"));
    assert!(
        land_share > 0.15,
        "{page}: land covers {:.1}% of the map, expected more than 15%: {report}",
        land_share * 100.0
    );
    if sea {
        assert!(
            sea_share > 0.05,
            "{page}: sea covers {:.1}% of the map, expected more than 5%: {report}",
            sea_share * 100.0
        );
    }
}

/// The map pages in a real browser: the offline background drawn under the features, tiles
/// requested, features drawn (in the collections' colours, or the page's own highlighted over
/// dimmed tiles), and a click shows attributes.
#[test]
fn map_pages_draw_features_in_a_browser() {
    let (s, _dir) = demo_server();
    let none = serde_json::json!({});
    // Landing and collection pages: every collection in its own colour.
    for (page, name, layer_word) in [
        (format!("{}/?f=html", s.base), "landing", ""),
        (
            format!(
                "{}/collections/traffic-counts-malmo-lund-synthetic?f=html",
                s.base
            ),
            "collection",
            "adt",
        ),
    ] {
        let report = map_page(&page, name, &none);
        assert!(
            report["tiles"].as_u64().is_some_and(|n| n > 0),
            "{page}: no tile requested: {report}"
        );
        assert_eq!(report["tileErrors"], 0, "{page}");
        assert!(
            report["rendered"].as_u64().is_some_and(|n| n > 0),
            "{page}: no feature rendered: {report}"
        );
        assert_background(&page, &report, true);
        assert!(
            report["pixels"]["palette"]
                .as_u64()
                .is_some_and(|n| n > 100),
            "{page}: hardly a pixel in the collections' colours: {report}"
        );
        assert_eq!(
            report["pixels"]["highlight"], 0,
            "{page}: nothing is highlighted here"
        );
        let popup = report["popup"].as_str().unwrap_or_default();
        assert!(
            !popup.is_empty() && popup.contains(layer_word),
            "{page}: popup {popup:?}"
        );
    }
    // Items and feature pages: the page's features highlighted, the collection's tiles dimmed
    // (drawn, but in none of the collection colours).
    for (page, name, sea, title) in [
        (
            format!(
                "{}/collections/copenhagen-osm-parking/items?f=html&limit=20",
                s.base
            ),
            "items",
            true,
            "Features on this page",
        ),
        (
            format!("{}/collections/harryda-badplatser/items/1?f=html", s.base),
            "item",
            false,
            "This feature",
        ),
    ] {
        let report = map_page(&page, name, &none);
        assert!(
            report["tiles"].as_u64().is_some_and(|n| n > 0),
            "{page}: no tile of the collection requested: {report}"
        );
        assert_eq!(report["tileErrors"], 0, "{page}");
        assert_background(&page, &report, sea);
        assert!(
            report["highlighted"].as_u64().is_some_and(|n| n > 0),
            "{page}: the page's features are not on the map: {report}"
        );
        assert!(
            report["pixels"]["highlight"]
                .as_u64()
                .is_some_and(|n| n > 50),
            "{page}: hardly a pixel in the highlight colour: {report}"
        );
        assert_eq!(
            report["pixels"]["palette"], 0,
            "{page}: the collection's tiles are drawn in full colour, not dimmed: {report}"
        );
        let popup = report["popup"].as_str().unwrap_or_default();
        assert!(popup.starts_with(title), "{page}: popup {popup:?}");
    }
}

/// A style.json at a local URL for `--basemap-style`: one background layer in `colour`. Counts
/// the requests it answers.
fn style_server(colour: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/style.json",
        listener.local_addr().expect("address")
    );
    let body = serde_json::json!({
        "version": 8,
        "sources": {},
        "layers": [{"id": "basemap", "type": "background", "paint": {"background-color": colour}}],
    })
    .to_string();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, served)
}

/// With `--basemap-style`, the maps draw that style and the collections on top of it; a style
/// that cannot be had gives the offline background instead of a blank map.
#[test]
fn maps_draw_a_configured_basemap_style_or_fall_back_offline() {
    let (s, dir) = demo_server();
    drop(s);
    let store = ["--data-dir".to_string(), dir.path().display().to_string()];
    let page = "/collections/traffic-counts-malmo-lund-synthetic?f=html";
    let (url, served) = style_server("#3b2f63");
    let with_style = start(&store, &["--basemap-style", &url]);
    let html = ureq::get(&format!("{}{page}", with_style.base))
        .call()
        .expect("page")
        .into_string()
        .expect("text");
    assert!(html.contains(&format!("\"basemap\":\"{url}\"")), "{html}");
    let report = map_page(
        &format!("{}{page}", with_style.base),
        "basemap",
        &serde_json::json!({"basemap": "#3b2f63"}),
    );
    assert!(
        served.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the browser never asked for the style"
    );
    assert!(
        share(&report, "basemap") > 0.5,
        "the basemap style's background is not drawn: {report}"
    );
    assert_eq!(
        report["pixels"]["land"], 0,
        "the offline background is drawn too: {report}"
    );
    assert!(
        report["pixels"]["palette"]
            .as_u64()
            .is_some_and(|n| n > 100),
        "no features over the basemap: {report}"
    );
    drop(with_style);
    // Nothing listens there: the style cannot be had.
    let gone = format!("http://127.0.0.1:{}/style.json", free_port());
    let without = start(&store, &["--basemap-style", &gone]);
    let report = map_page(
        &format!("{}{page}", without.base),
        "basemap-missing",
        &serde_json::json!({}),
    );
    assert_background(page, &report, true);
    assert!(
        report["pixels"]["palette"]
            .as_u64()
            .is_some_and(|n| n > 100),
        "no features over the fallback background: {report}"
    );
    // Not a URL: hamn refuses to start.
    let o = hamn_cmd()
        .args(&store)
        .args(["serve", "--basemap-style", "ftp://example.com/style.json"])
        .output()
        .expect("serve");
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("basemap style"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Per-collection zoom ranges: given at ingest, kept in the catalog, obeyed by tiles and TileJSON.
#[tokio::test]
async fn collections_have_their_own_zoom_ranges() {
    for store in each_store().await {
        let o = store
            .hamn()
            .args([
                "ingest",
                &data("synthetic/traffic_counts_malmo_lund_synthetic.geojson"),
                "-c",
                "zoomed",
            ])
            .args(["--min-zoom", "10", "--max-zoom", "16"])
            .output()
            .expect("ingest");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = store
            .hamn()
            .args([
                "ingest",
                &data("bathing/harryda_badplatser.csv"),
                "--min-zoom",
                "9",
                "--max-zoom",
                "3",
            ])
            .output()
            .expect("ingest");
        assert!(
            !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("zoom range"),
            "min above max is refused"
        );
        let s = start(&store.args(), &["--no-demo"]);
        let (_, tj) = get(&format!(
            "{}/collections/zoomed/tiles/WebMercatorQuad/tilejson.json",
            s.base
        ));
        assert_eq!(
            (tj["minzoom"].as_u64(), tj["maxzoom"].as_u64()),
            (Some(10), Some(16)),
            "{}",
            store.kind
        );
        assert_eq!(tj["vector_layers"][0]["minzoom"], 10);
        let t = format!("{}/collections/zoomed/tiles/WebMercatorQuad", s.base);
        assert_eq!(
            fetch(&format!("{t}/9/160/274")).status(),
            404,
            "below the range"
        );
        assert_eq!(
            fetch(&format!("{t}/17/0/0")).status(),
            404,
            "above the range"
        );
        assert_eq!(fetch(&format!("{t}/10/320/548")).status(), 200);
        // The dataset tile leaves it out below its range.
        assert_eq!(
            fetch(&format!("{}/tiles/WebMercatorQuad/9/160/274", s.base)).status(),
            204
        );
        // SWEREF99TM levels count as the WebMercatorQuad zoom 4 deeper: 10-16 is levels 6-12.
        let (_, ts) = get(&format!("{}/collections/zoomed/tiles/SWEREF99TM", s.base));
        assert_eq!(ts["layers"][0]["minTileMatrix"], "6");
        assert_eq!(ts["layers"][0]["maxTileMatrix"], "12");
        let sw = format!("{}/collections/zoomed/tiles/SWEREF99TM", s.base);
        assert_eq!(fetch(&format!("{sw}/5/71/48")).status(), 404, "below");
        assert_eq!(fetch(&format!("{sw}/13/0/0")).status(), 404, "above");
        assert_eq!(
            fetch(&format!("{sw}/6/142/96")).status(),
            200,
            "Malmö at level 6"
        );
        // Re-ingesting without zoom options keeps the range.
        let o = store
            .hamn()
            .args([
                "ingest",
                &data("synthetic/traffic_counts_malmo_lund_synthetic.geojson"),
                "-c",
                "zoomed",
                "--mode",
                "replace",
                "--force",
            ])
            .output()
            .expect("ingest");
        assert!(o.status.success());
        let e = store
            .store
            .get(&id("zoomed"))
            .await
            .expect("get")
            .expect("entry");
        assert_eq!((e.zoom.min(), e.zoom.max()), (10, 16));
    }
}

/// A shape reaching far beyond SWEREF 99 TM's meridians (here a polygon round the world) is cut
/// to the neighbourhood of the tile before it is projected, so a tile at the far east of the
/// grid, inside the polygon, is covered by it rather than by a shape bent at the projection's
/// limits.
#[test]
fn far_reaching_shapes_in_sweref_tiles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("world.geojson");
    std::fs::write(
        &file,
        r#"{"type": "FeatureCollection", "features": [{"type": "Feature", "id": 1,
            "properties": {"name": "world"},
            "geometry": {"type": "Polygon", "coordinates":
                [[[-179, -80], [179, -80], [179, 80], [-179, 80], [-179, -80]]]}}]}"#,
    )
    .expect("write");
    let store = dir.path().join("store");
    let store_args = ["--data-dir".to_string(), store.display().to_string()];
    let o = hamn_cmd()
        .args(&store_args)
        .args(["ingest", &file.display().to_string(), "-c", "world"])
        .output()
        .expect("ingest");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = start(&store_args, &["--no-demo"]);
    // Level 3 (131 072 m tiles): E 2.47-2.60 M, N 6.93-7.06 M, east of the Urals' latitude.
    for (z, y, x) in [(3, 11, 28), (0, 0, 0), (8, 570, 384)] {
        let (status, body) = tile_bytes(&format!(
            "{}/collections/world/tiles/SWEREF99TM/{z}/{y}/{x}",
            s.base
        ));
        assert_eq!(status, 200, "{z}/{y}/{x}");
        let tile = Tile::decode(body.as_slice()).expect("decode");
        let f = &tile.layers[0].features[0];
        let g = decode(f.r#type.expect("type"), &f.geometry);
        assert_eq!(g.kind, 3);
        let xs = g.parts[0].iter().map(|p| p.0);
        let ys = g.parts[0].iter().map(|p| p.1);
        let (x0, x1) = (xs.clone().min(), xs.max());
        let (y0, y1) = (ys.clone().min(), ys.max());
        assert!(
            x0 <= Some(0) && x1 >= Some(4096) && y0 <= Some(0) && y1 >= Some(4096),
            "{z}/{y}/{x}: the polygon covers only x {x0:?}..{x1:?}, y {y0:?}..{y1:?}"
        );
    }
}

/// A tile with more candidates than --tile-max-features keeps a sample spread over the whole
/// tile (here, bathing waters from Skåne to Norrbotten at zoom 1), not the first features in
/// id order (which are all in the south), and the tileset says tiles are thinned.
#[test]
fn capped_tiles_keep_a_sample_spread_over_the_tile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = start(
        &["--data-dir".to_string(), dir.path().display().to_string()],
        &["--tile-max-features", "40"],
    );
    let tile = TileId::new(Tms::WebMercatorQuad, 1, 1, 0).expect("tile");
    let (status, body) = tile_bytes(&format!(
        "{}/collections/hav-bathing-waters/tiles/WebMercatorQuad/1/0/1",
        s.base
    ));
    assert_eq!(status, 200);
    let decoded = Tile::decode(body.as_slice()).expect("valid protobuf");
    let layer = &decoded.layers[0];
    assert_eq!(layer.features.len(), 40);
    // Latitudes of the kept points, from their tile coordinates.
    let [_, b, _, t] = tile.bounds();
    let extent = f64::from(layer.extent.unwrap_or(4096));
    let lats: Vec<f64> = layer
        .features
        .iter()
        .map(|f| {
            let p = decode(f.r#type.unwrap_or(0), &f.geometry);
            let (_, gy) = p.parts[0][0];
            let northing = t - (gy as f64) / extent * (t - b);
            (2.0 * (northing / 6_378_137.0).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees()
        })
        .collect();
    let north = lats.iter().copied().fold(f64::MIN, f64::max);
    let south = lats.iter().copied().fold(f64::MAX, f64::min);
    assert!(
        north > 62.0 && south < 58.0,
        "kept points span {south:.1}..{north:.1}: not spread over Sweden"
    );
    // The same tile again, and the sample is the same.
    assert_eq!(
        tile_bytes(&format!(
            "{}/collections/hav-bathing-waters/tiles/WebMercatorQuad/1/0/1",
            s.base
        ))
        .1,
        body
    );
    let (_, doc) = get(&format!(
        "{}/collections/hav-bathing-waters/tiles/WebMercatorQuad",
        s.base
    ));
    assert_eq!(doc["layers"][0]["hamn:maxFeaturesPerTile"], 40);
    assert_eq!(doc["layers"][0]["hamn:thinned"], true);
    assert!(doc["description"]
        .as_str()
        .is_some_and(|d| d.contains("40 features")));
}
