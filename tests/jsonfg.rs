//! JSON-FG 1.0 on GeoJSON responses (`profile=jsonfg`, `profile=jsonfg-plus`): the root's
//! conformsTo, featureType and coordRefSys, each feature's `time` and `place`; plain GeoJSON
//! stays the default. Every JSON-FG response is validated against the standard's own JSON
//! Schemas (tests/fixtures/json-fg, offline).

mod common;

use common::*;

const CORE: &str = "http://www.opengis.net/spec/json-fg-1/1.0/conf/core";
const TYPES_SCHEMAS: &str = "http://www.opengis.net/spec/json-fg-1/1.0/conf/types-schemas";

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
    assert_eq!(doc["conformsTo"], serde_json::json!([CORE, TYPES_SCHEMAS]));
    assert_eq!(doc["featureType"], "traffic-counts-malmo-lund-synthetic");
    assert_eq!(doc["geometryDimension"], 0);
    assert_eq!(
        doc["featureSchema"],
        format!(
            "{}/collections/traffic-counts-malmo-lund-synthetic/schema",
            s.base
        )
    );
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
    assert_eq!(one["conformsTo"], serde_json::json!([CORE, TYPES_SCHEMAS]));
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

/// The JSON-FG 1.0 schemas, from tests/fixtures/json-fg, by their `$id`s.
struct Schemas(std::collections::HashMap<String, serde_json::Value>);

impl jsonschema::Retrieve for Schemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
        self.0
            .get(uri.as_str())
            .cloned()
            .ok_or_else(|| format!("no JSON-FG schema {uri} in tests/fixtures/json-fg").into())
    }
}

fn validator(root: &str) -> jsonschema::Validator {
    let dir = repo().join("tests/fixtures/json-fg");
    let mut schemas = std::collections::HashMap::new();
    for e in std::fs::read_dir(&dir).expect("tests/fixtures/json-fg") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "json") {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
            let id = v["$id"].as_str().expect("$id").to_string();
            schemas.insert(id, v);
        }
    }
    let schema = schemas[&format!("https://schemas.opengis.net/json-fg/{root}")].clone();
    jsonschema::options()
        .with_retriever(Schemas(schemas))
        .build(&schema)
        .expect("the JSON-FG schema compiles")
}

/// Pages and features of every demo collection (points, polygons, mixed types, dates), in
/// CRS84 and SWEREF 99 TM, both profiles: valid JSON-FG by the standard's schemas.
#[test]
fn json_fg_responses_validate_against_the_json_fg_schemas() {
    let (s, _dir) = demo_server();
    // A JSON-FG root object: a feature or feature collection with conformsTo naming Core.
    let root = validator("jsonfg-root-object.json");
    let (collection, feature) = (&root, &root);
    let (_, all) = get(&format!("{}/collections", s.base));
    let ids: Vec<String> = all["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    assert!(ids.len() >= 5);
    let mut checked = 0;
    for id in &ids {
        for profile in ["jsonfg", "jsonfg-plus"] {
            for crs in ["", "&crs=EPSG:3006"] {
                let url = format!(
                    "{}/collections/{id}/items?limit=100&profile={profile}{crs}",
                    s.base
                );
                let (status, doc) = get(&url);
                assert_eq!(status, 200, "{url}: {doc}");
                let errors: Vec<String> = collection
                    .iter_errors(&doc)
                    .map(|e| format!("{}: {e}", e.instance_path()))
                    .take(5)
                    .collect();
                assert!(errors.is_empty(), "{url}: {errors:?}");
                let first = doc["features"][0]["id"].clone();
                let fid = match &first {
                    serde_json::Value::String(t) => t.clone(),
                    other => other.to_string(),
                };
                let url = format!(
                    "{}/collections/{id}/items/{}?profile={profile}{crs}",
                    s.base,
                    fid.replace('/', "%2F")
                );
                let (status, one) = get(&url);
                assert_eq!(status, 200, "{url}: {one}");
                let errors: Vec<String> = feature
                    .iter_errors(&one)
                    .map(|e| format!("{}: {e}", e.instance_path()))
                    .take(5)
                    .collect();
                assert!(errors.is_empty(), "{url}: {errors:?}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, ids.len() * 4);

    // The validator is not lenient: plain GeoJSON (no conformsTo) and a broken place fail.
    let (_, plain) = get(&format!("{}/collections/{}/items?limit=2", s.base, ids[0]));
    assert!(
        !root.is_valid(&plain),
        "plain GeoJSON is not a JSON-FG root"
    );
    let (_, mut fg) = get(&format!(
        "{}/collections/{}/items?limit=2&profile=jsonfg&crs=EPSG:3006",
        s.base, ids[0]
    ));
    assert!(root.is_valid(&fg));
    let mut broken = fg.clone();
    broken["features"][0]["place"] = serde_json::json!({"type": "Point", "coordinates": "x"});
    assert!(!root.is_valid(&broken), "a place without coordinates");
    fg["conformsTo"] = serde_json::json!(["http://example.com/other"]);
    assert!(!root.is_valid(&fg), "conformsTo without Core");
}
