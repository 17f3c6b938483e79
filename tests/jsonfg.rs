//! JSON-FG 1.0 on GeoJSON responses (`profile=jsonfg`, `profile=jsonfg-plus`): the root's
//! conformsTo, featureType and coordRefSys, each feature's `time` and `place`; plain GeoJSON
//! stays the default.

mod common;

use common::*;

const CORE: &str = "http://www.opengis.net/spec/json-fg-1/1.0/conf/core";

#[test]
fn json_fg_on_items_and_items() {
    let (s, _dir) = demo_server();
    let items = format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic/items?limit=3",
        s.base
    );
    let r = fetch(&format!("{items}&profile=jsonfg&crs=EPSG:3006"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_type(), "application/vnd.ogc.fg+json");
    let doc: serde_json::Value = r.into_json().expect("json");
    assert_eq!(doc["conformsTo"], serde_json::json!([CORE]));
    assert_eq!(doc["featureType"], "traffic-counts-malmo-lund-synthetic");
    assert_eq!(
        doc["coordRefSys"],
        "http://www.opengis.net/def/crs/EPSG/0/3006"
    );
    let f = &doc["features"][0];
    assert!(f["geometry"].is_null(), "{f}");
    assert_eq!(f["place"]["type"], "Point");
    // EPSG:3006 is northing first; Malmö lies about 6.16 million metres north.
    let n = f["place"]["coordinates"][0].as_f64().expect("northing");
    assert!((6.0e6..6.3e6).contains(&n), "{f}");
    assert_eq!(f["time"]["date"], f["properties"]["matdatum"], "{f}");
    assert_eq!(doc["features"].as_array().map(Vec::len), Some(3));
    assert!(doc["links"].as_array().is_some_and(|l| !l.is_empty()));

    // jsonfg-plus: CRS84 in geometry as well.
    let (_, plus) = get(&format!("{items}&profile=jsonfg-plus&crs=EPSG:3006"));
    let f = &plus["features"][0];
    assert_eq!(f["geometry"]["type"], "Point");
    let lon = f["geometry"]["coordinates"][0].as_f64().expect("lon");
    assert!((12.0..14.5).contains(&lon), "{f}");
    assert_eq!(f["place"]["type"], "Point");

    // In CRS84 the geometry is GeoJSON's and place is null; no coordRefSys.
    let (_, crs84) = get(&format!("{items}&profile=jsonfg"));
    assert!(crs84.get("coordRefSys").is_none());
    assert!(crs84["features"][0]["place"].is_null());
    assert_eq!(crs84["features"][0]["geometry"]["type"], "Point");

    // Plain GeoJSON by default.
    let (_, plain) = get(&items);
    assert!(plain.get("conformsTo").is_none());
    assert!(plain["features"][0].get("place").is_none());
    assert!(plain["features"][0].get("time").is_none());

    // One feature.
    let id = plain["features"][0]["id"]
        .to_string()
        .trim_matches('"')
        .to_string();
    let (status, one) = get(&format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic/items/{id}?profile=jsonfg&crs=EPSG:3006",
        s.base
    ));
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["conformsTo"], serde_json::json!([CORE]));
    assert_eq!(
        one["coordRefSys"],
        "http://www.opengis.net/def/crs/EPSG/0/3006"
    );
    assert_eq!(one["place"]["type"], "Point");
    assert!(one["geometry"].is_null());
    assert!(one["links"].as_array().is_some_and(|l| !l.is_empty()));

    // Bad profiles.
    assert_eq!(fetch(&format!("{items}&profile=xml")).status(), 400);
    assert_eq!(
        fetch(&format!("{items}&profile=jsonfg&f=csv")).status(),
        400
    );
}
