//! OGC API – Features over HTTP against a running `hamn serve`: documents, items and their
//! filters checked against the stored data, paging, caching, and bad requests.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value as Json;

fn ids(doc: &Json) -> Vec<String> {
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| match &f["id"] {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn link(doc: &Json, rel: &str) -> Option<String> {
    doc["links"].as_array()?.iter().find(|l| l["rel"] == rel)?["href"]
        .as_str()
        .map(str::to_string)
}

/// Follows `next` links from `url`, returning every feature id in order.
fn walk(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(url.to_string());
    while let Some(u) = next {
        let (status, doc) = get(&u);
        assert_eq!(status, 200, "{u}");
        out.extend(ids(&doc));
        next = link(&doc, "next");
        assert!(out.len() < 100_000, "runaway paging");
    }
    out
}

#[test]
fn documents_clients_depend_on() {
    let (s, _dir) = demo_server();
    let (status, landing) = get(&format!("{}/", s.base));
    assert_eq!(status, 200);
    let rel = |r: &str| {
        landing["links"]
            .as_array()
            .expect("links")
            .iter()
            .find(|l| l["rel"] == r)
            .cloned()
    };
    assert_eq!(
        rel("service-desc").expect("service-desc")["type"],
        "application/vnd.oai.openapi+json;version=3.0"
    );
    assert!(rel("data").is_some() && rel("conformance").is_some() && rel("service-doc").is_some());

    let (_, conf) = get(&format!("{}/conformance", s.base));
    let classes: Vec<&str> = conf["conformsTo"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    for c in ["core", "geojson", "oas30"] {
        assert!(
            classes.iter().any(|x| x.ends_with(&format!("/conf/{c}"))),
            "{c}"
        );
    }

    let resp = fetch(&format!("{}/api", s.base));
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.oai.openapi+json;version=3.0")
    );
    let api: Json = resp.into_json().expect("json");
    assert!(api["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.0")));
    assert_eq!(
        api["components"]["parameters"]["limit"]["schema"]["default"],
        10
    );
    assert_eq!(
        api["components"]["parameters"]["limit"]["schema"]["maximum"],
        10000
    );
    let params = api["paths"]["/collections/traffic-counts-malmo-lund-synthetic/items"]["get"]
        ["parameters"]
        .as_array()
        .expect("concrete items path");
    let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
    for n in ["bbox", "datetime", "limit", "kommun", "adt", "matdatum"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let html = fetch(&format!("{}/api.html", s.base));
    assert!(html.content_type().starts_with("text/html"));
    let text = html.into_string().expect("html");
    assert!(
        text.contains("/collections/traffic-counts-malmo-lund-synthetic/items")
            && !text.contains("<script")
    );

    // The committed document is the one the server makes for the demo data.
    let committed: Json = serde_json::from_str(
        &std::fs::read_to_string(repo().join("openapi/openapi.json"))
            .expect("openapi/openapi.json"),
    )
    .expect("json");
    let mut served = api.clone();
    served["servers"][0]["url"] = Json::String("http://localhost:8080".into());
    if std::env::var("HAMN_UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(
            repo().join("openapi/openapi.json"),
            serde_json::to_string_pretty(&served).expect("json") + "\n",
        )
        .expect("write");
    } else {
        assert!(committed == served, "openapi/openapi.json is stale: run HAMN_UPDATE_OPENAPI=1 cargo test --test features documents");
    }
    // tests/openapi.rs checks that the committed document is valid OpenAPI 3.0.

    let (status, q) = get(&format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic/queryables",
        s.base
    ));
    assert_eq!(status, 200);
    assert_eq!(q["properties"]["adt"]["type"], "integer");
    assert_eq!(q["properties"]["matdatum"]["format"], "date");
    assert_eq!(q["properties"]["kommun"]["type"], "string");
    // A spatial queryable has a format and no type or $ref (Part 3, get-queryables-response).
    let geometry = q["properties"]["geometry"].as_object().expect("geometry");
    assert_eq!(geometry["format"], "geometry-point");
    assert!(!geometry.contains_key("$ref") && !geometry.contains_key("type"));
    assert!(
        q["properties"].get("id").is_none(),
        "filters cannot name the id"
    );
}

/// `/collections/{id}/schema` (OGC API – Features Part 5 = Common Part 3): linked from the
/// collection, the conformance classes declared, and the property schemas the same as in
/// queryables and sortables.
#[test]
fn the_schema_describes_each_property() {
    let (s, _dir) = demo_server();
    let (_, conf) = get(&format!("{}/conformance", s.base));
    for c in [
        "schemas",
        "advanced-property-roles",
        "returnables-and-receivables",
        "queryables",
        "sortables",
    ] {
        let uri = format!("http://www.opengis.net/spec/ogcapi-common-3/1.0/conf/{c}");
        assert!(
            conf["conformsTo"]
                .as_array()
                .expect("list")
                .contains(&Json::String(uri.clone())),
            "{uri}"
        );
    }

    let collection = format!("{}/collections/traffic-counts-malmo-lund-synthetic", s.base);
    let (_, doc) = get(&collection);
    let link = doc["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/schema")
        .expect("schema link");
    assert_eq!(link["type"], "application/schema+json");
    let resp = ureq::get(link["href"].as_str().expect("href"))
        .set("Accept", "application/schema+json")
        .call()
        .expect("schema");
    assert_eq!(resp.content_type(), "application/schema+json");
    let etag = resp.header("etag").expect("ETag").to_string();
    let schema: Json = resp.into_json().expect("json");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["$id"], format!("{collection}/schema"));
    assert_eq!(schema["type"], "object");
    let props = schema["properties"].as_object().expect("properties");
    assert_eq!(props["id"]["x-ogc-role"], "id");
    assert_eq!(props["id"]["type"], "string", "matpunkt_id values");
    assert_eq!(props["geometry"]["x-ogc-role"], "primary-geometry");
    assert_eq!(props["geometry"]["format"], "geometry-point");
    assert!(props["geometry"].get("type").is_none());
    assert_eq!(props["matdatum"]["x-ogc-role"], "primary-instant");
    assert_eq!(props["matdatum"]["type"], "string");
    assert_eq!(props["matdatum"]["format"], "date");
    assert_eq!(props["adt"]["type"], "integer");
    assert_eq!(props["andel_tung"]["type"], "number");
    // Every property but the geometry has a type; one id, one primary geometry and instant.
    for (name, p) in props {
        assert!(name == "geometry" || p.get("type").is_some(), "{name}: {p}");
    }
    for role in ["id", "primary-geometry", "primary-instant"] {
        assert_eq!(
            props.values().filter(|p| p["x-ogc-role"] == role).count(),
            1,
            "{role}"
        );
    }
    // Queryables and sortables describe their properties as the schema does.
    for (name, without) in [
        ("queryables", &["id"][..]),
        ("sortables", &["id", "geometry"]),
    ] {
        let (status, other) = get(&format!("{collection}/{name}"));
        assert_eq!(status, 200);
        let listed = other["properties"].as_object().expect("properties");
        for (k, p) in props {
            if without.contains(&k.as_str()) {
                assert!(listed.get(k).is_none(), "{name} lists {k}");
            } else {
                assert_eq!(&listed[k], p, "{name}: {k}");
            }
        }
    }
    // 304 for the ETag it gave; f=json is accepted.
    let again = ureq::get(&format!("{collection}/schema?f=json"))
        .set("If-None-Match", &etag)
        .call()
        .expect("conditional");
    assert_eq!(again.status(), 304);
    let (status, _) = get(&format!("{}/collections/nowhere/schema", s.base));
    assert_eq!(status, 404);

    // A theme collection: the theme's descriptions and formats; mixed geometry types.
    let (_, bad) = get(&format!("{}/collections/badplatser/schema", s.base));
    let props = bad["properties"].as_object().expect("properties");
    assert_eq!(props["name"]["description"], "Badplatsens namn");
    assert_eq!(props["visit_url"]["format"], "uri");
    assert_eq!(props["toilet"]["type"], "boolean");
    assert_eq!(props["updated"]["format"], "date");
    assert_eq!(props["id"]["type"], "string", "ids are source:source_id");
    let (_, mixed) = get(&format!(
        "{}/collections/noise-malmo-lund-synthetic/schema",
        s.base
    ));
    assert_eq!(
        mixed["properties"]["geometry"]["format"],
        "geometry-polygon-or-multipolygon"
    );
    assert_eq!(mixed["properties"]["id"]["type"], "integer");
}

/// The types GDAL's OAPIF driver gives a collection's fields are those its schema declares:
/// dates as Date, integers as Integer, not strings. GDAL 3.6 (Debian 12's) does not read the
/// Part 5 schema (it follows only a `describedBy` link to a JSON Schema of a GeoJSON feature);
/// it takes the types from the first page of features, which for this collection agree.
#[test]
fn gdal_reads_the_declared_types() {
    assert!(
        ogr_available(),
        "ogrinfo (gdal-bin) is needed: scripts/deps.sh installs it"
    );
    let (s, _dir) = demo_server();
    let id = "traffic-counts-malmo-lund-synthetic";
    let (_, schema) = get(&format!("{}/collections/{id}/schema", s.base));
    let o = std::process::Command::new("ogrinfo")
        .args(["-ro", "-so", &format!("OAPIF:{}", s.base), id])
        .output()
        .expect("ogrinfo");
    let text = String::from_utf8_lossy(&o.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(|t| t.split(" (").next().unwrap_or(t).to_string())
    };
    assert_eq!(field("matdatum").as_deref(), Some("Date"), "{text}");
    for (name, p) in schema["properties"].as_object().expect("properties") {
        if name == "geometry" || name == "id" {
            continue;
        }
        let want: &[&str] = match (p["type"].as_str(), p["format"].as_str()) {
            (Some("integer"), _) => &["Integer", "Integer64"],
            (Some("number"), _) => &["Real"],
            (Some("boolean"), _) => &["Integer(Boolean)"],
            (Some("string"), Some("date")) => &["Date"],
            (Some("string"), Some("date-time")) => &["DateTime"],
            (Some("string"), _) => &["String"],
            _ => continue,
        };
        let got = field(name);
        assert!(
            got.as_deref().is_some_and(|g| want.contains(&g)),
            "{name}: GDAL reads {got:?}, the schema says {p}\n{text}"
        );
    }
}

#[tokio::test]
async fn items_match_the_stored_data() {
    let (s, dir) = demo_server();
    let store = hamn::store::embedded::EmbeddedStore::open(dir.path()).expect("store");
    use hamn::store::Store;
    let entry = store
        .get(&id("traffic-counts-malmo-lund-synthetic"))
        .await
        .expect("get")
        .expect("entry");
    let stored = store.features(&entry.id).await.expect("features");
    let url = format!("{}/collections/{}/items", s.base, entry.id);

    let (_, first) = get(&url);
    assert_eq!(first["numberReturned"], 10, "default limit");
    assert_eq!(first["numberMatched"], stored.len());
    assert_eq!(first["type"], "FeatureCollection");
    assert!(first["timeStamp"].as_str().is_some());

    let kommun = entry
        .attributes
        .iter()
        .position(|a| a.name == "kommun")
        .expect("kommun");
    let datum = entry
        .attributes
        .iter()
        .position(|a| a.name == "matdatum")
        .expect("matdatum");
    let lonlat =
        |f: &hamn::store::StoredFeature| vertices(f.geometry.as_deref().expect("point"))[0];

    // bbox against a brute-force scan of the stored points.
    for bbox in [
        [12.95, 55.55, 13.05, 55.62],
        [13.1, 55.65, 13.3, 55.75],
        [0.0, 0.0, 1.0, 1.0],
    ] {
        let want: HashSet<String> = stored
            .iter()
            .filter(|f| {
                let (x, y) = lonlat(f);
                x >= bbox[0] && x <= bbox[2] && y >= bbox[1] && y <= bbox[3]
            })
            .map(|f| f.id.clone())
            .collect();
        let got: HashSet<String> = walk(&format!(
            "{url}?limit=7&bbox={},{},{},{}",
            bbox[0], bbox[1], bbox[2], bbox[3]
        ))
        .into_iter()
        .collect();
        assert_eq!(got, want, "bbox {bbox:?}");
    }

    // datetime (a closed interval of dates) and an attribute filter, together.
    let want: HashSet<String> = stored
        .iter()
        .filter(|f| matches!(&f.values[kommun], hamn::store::Value::Text(k) if k == "Lund"))
        .filter(|f| match &f.values[datum] {
            hamn::store::Value::Date(d) => {
                d.to_string().as_str() >= "2024-01-01" && d.to_string().as_str() <= "2024-06-30"
            }
            _ => false,
        })
        .map(|f| f.id.clone())
        .collect();
    assert!(!want.is_empty());
    let got: HashSet<String> = walk(&format!(
        "{url}?kommun=Lund&datetime=2024-01-01/2024-06-30&limit=5"
    ))
    .into_iter()
    .collect();
    assert_eq!(got, want);
    let (_, doc) = get(&format!("{url}?datetime=../2023-12-31&limit=1"));
    let before_2024 = stored
        .iter()
        .filter(|f| matches!(&f.values[datum], hamn::store::Value::Date(d) if d.to_string().as_str() <= "2023-12-31"))
        .count();
    assert_eq!(doc["numberMatched"], before_2024);

    // properties= returns only the named attributes.
    let (_, doc) = get(&format!("{url}?properties=adt,vag&limit=3"));
    for f in doc["features"].as_array().expect("features") {
        let keys: Vec<&String> = f["properties"].as_object().expect("props").keys().collect();
        assert_eq!(keys, ["adt", "vag"]);
    }

    // A single feature by id, with the stored values.
    let f = &stored[3];
    let (status, doc) = get(&format!("{url}/{}", f.id));
    assert_eq!(status, 200);
    assert_eq!(doc["id"], f.id.as_str());
    assert_eq!(doc["properties"]["kommun"], f.values[kommun].to_json());
    assert!(link(&doc, "self").is_some() && link(&doc, "collection").is_some());

    // Lines: every returned feature's geometry comes near the box; none that intersect is missing.
    let lines = format!("{}/collections/malmo-miljoparkering/items", s.base);
    let (_, all) = get(&format!("{lines}?limit=10000"));
    assert_eq!(all["numberReturned"], 2261);
    let (_, some) = get(&format!("{lines}?limit=10000&bbox=12.99,55.59,13.0,55.6"));
    let n = some["numberReturned"].as_u64().expect("n");
    assert!(n > 0 && n < 2261, "{n}");
}

#[test]
fn paging_walks_every_feature_once_and_back() {
    let (s, _dir) = demo_server();
    let url = format!("{}/collections/xtrafik-gtfs-stops/items", s.base);
    let all = walk(&format!("{url}?limit=1000"));
    assert_eq!(all.len(), 6562);
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        6562,
        "no feature twice"
    );
    // Offsets give the same order.
    let (_, page) = get(&format!("{url}?limit=500&offset=1000"));
    assert_eq!(ids(&page), all[1000..1500]);
    let prev = link(&page, "prev").expect("prev");
    let (_, before) = get(&prev);
    assert_eq!(ids(&before), all[500..1000]);
    // A prev cursor leads back to the page before.
    let (_, p1) = get(&format!("{url}?limit=100"));
    let (_, p2) = get(&link(&p1, "next").expect("next"));
    let (_, back) = get(&link(&p2, "prev").expect("prev"));
    assert_eq!(ids(&back), ids(&p1));
    // Every query parameter survives into the next link.
    let (_, doc) = get(&format!(
        "{url}?limit=2&bbox=16.0,60.0,17.5,61.0&location_type=1"
    ));
    let next = link(&doc, "next").expect("next");
    assert!(
        next.contains("bbox=16.0%2C60.0%2C17.5%2C61.0")
            && next.contains("location_type=1")
            && next.contains("limit=2"),
        "{next}"
    );
    // A limit above the maximum is clamped, not refused.
    let (status, doc) = get(&format!("{url}?limit=1000000"));
    assert_eq!(status, 200);
    assert_eq!(doc["numberReturned"], 6562);
}

#[test]
fn a_cursor_finishes_its_walk_while_an_ingest_swaps_the_collection() {
    let (s, dir) = demo_server();
    let url = format!("{}/collections/harryda-badplatser/items?limit=3", s.base);
    let (_, p1) = get(&url);
    let before: Vec<String> = ids(&p1);
    let next = link(&p1, "next").expect("next");
    let version = |s: &Server| {
        get(&format!("{}/collections/harryda-badplatser", s.base)).1["version"]
            .as_i64()
            .expect("v")
    };
    let v0 = version(&s);
    // Replace the collection with other data while the client is between pages.
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
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while version(&s) == v0 {
        assert!(
            std::time::Instant::now() < deadline,
            "server never saw the new version"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let rest = walk(&next);
    let mut walked = before;
    walked.extend(rest);
    assert_eq!(
        walked.len(),
        9,
        "the old version's 9 features, each once: {walked:?}"
    );
    assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 9);
    // A new walk sees the new version.
    let (_, fresh) = get(&url);
    assert_eq!(fresh["numberMatched"], 150);
}

/// A GeoJSON file of points with the given property objects, in a temporary directory.
fn points_file(dir: &std::path::Path, name: &str, props: &[Json]) -> String {
    let features: Vec<Json> = props
        .iter()
        .enumerate()
        .map(|(i, p)| {
            serde_json::json!({"type": "Feature", "id": i + 1, "properties": p,
                "geometry": {"type": "Point", "coordinates": [13.0 + i as f64 * 0.01, 55.6]}})
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(
        &path,
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .expect("write");
    path.display().to_string()
}

/// `hamn ingest FILE -c ID --mode MODE` into the embedded store at `dir`, then waits until the
/// server at `s` serves a version other than the one it had.
fn ingest_and_wait(s: &Server, dir: &std::path::Path, file: &str, id: &str, mode: &str) -> i64 {
    let version = || {
        let (status, doc) = get(&format!("{}/collections/{id}", s.base));
        if status == 200 {
            doc["version"].as_i64()
        } else {
            None
        }
    };
    let before = version();
    let o = hamn_cmd()
        .args(["--data-dir", &dir.display().to_string(), "ingest", file])
        .args(["-c", id, "--mode", mode, "--force"])
        .output()
        .expect("ingest");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = version().filter(|v| Some(*v) != before) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server never saw {id} change"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A cursor walks the version it began on, read with that version's attributes: replaced by a
/// file whose columns lie elsewhere, the walk continues on the old data (it used to index past
/// a feature's values and kill the worker); replaced twice, or after a restart, the cursor is
/// answered 410 with a link that starts the walk again, never continued on other data.
#[test]
fn cursors_are_bound_to_the_version_they_walk() {
    let (s, dir) = demo_server();
    let files = tempfile::tempdir().expect("tempdir");
    let v1: Vec<Json> = (1..=5)
        .map(|i| serde_json::json!({"a": i, "k": i % 2}))
        .collect();
    let v2: Vec<Json> = (1..=3)
        .map(|i| serde_json::json!({"z1": 1, "z2": 2, "z3": 3, "z4": 4, "z5": 5, "a": i * 100}))
        .collect();
    let f1 = points_file(files.path(), "v1.geojson", &v1);
    let f2 = points_file(files.path(), "v2.geojson", &v2);
    ingest_and_wait(&s, dir.path(), &f1, "t", "create");

    let items = format!("{}/collections/t/items", s.base);
    for query in ["limit=2&sortby=-a", "limit=1&k=1", "limit=2&properties=a"] {
        ingest_and_wait(&s, dir.path(), &f1, "t", "replace");
        let (_, p1) = get(&format!("{items}?{query}"));
        let next = link(&p1, "next").unwrap_or_else(|| panic!("{query}: no next link: {p1}"));

        // One replace: the old version is still held, and the walk goes on with its attributes.
        ingest_and_wait(&s, dir.path(), &f2, "t", "replace");
        let (status, p2) = get(&next);
        assert_eq!(status, 200, "{query}: {p2}");
        for f in p2["features"].as_array().expect("features") {
            let a = f["properties"]["a"].as_i64().expect("a");
            assert!(
                (1..=5).contains(&a),
                "{query}: a value of another version: {f}"
            );
            assert!(f["properties"].get("z1").is_none(), "{query}: {f}");
        }

        // A second replace: that version is gone; 410, and the restart link walks the new one.
        ingest_and_wait(&s, dir.path(), &f1, "t", "replace");
        let (status, gone) = get(&next);
        assert_eq!(status, 410, "{query}: {gone}");
        assert_eq!(gone["code"], "Gone");
        let restart = gone["links"][0]["href"].as_str().expect("restart link");
        assert_eq!(gone["links"][0]["rel"], "first");
        assert!(!restart.contains("cursor="), "{restart}");
        let (status, again) = get(restart);
        assert_eq!(status, 200, "{restart}: {again}");
    }

    // An appended column between two pages: the walk keeps the old version's schema.
    let (_, p1) = get(&format!("{items}?limit=2&sortby=a&properties=a"));
    let next = link(&p1, "next").expect("next");
    let extra = points_file(
        files.path(),
        "more.geojson",
        &[serde_json::json!({"b": "ny kolumn", "a": 6})],
    );
    ingest_and_wait(&s, dir.path(), &extra, "t", "append");
    let (status, p2) = get(&next);
    assert_eq!(status, 200, "{p2}");
    assert_eq!(
        p2["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|f| f["properties"]["a"].as_i64().expect("a"))
            .collect::<Vec<_>>(),
        vec![3, 4]
    );

    // A restart: a cursor of the current version still works; one of an older version is 410.
    let (_, now) = get(&format!("{items}?limit=2"));
    let current_next = link(&now, "next").expect("next");
    drop(s);
    let s = start(
        &["--data-dir".to_string(), dir.path().display().to_string()],
        &["--refresh-seconds", "1"],
    );
    let moved = |u: &str| u.replacen(&u[..u.find("/collections").expect("path")], &s.base, 1);
    assert_eq!(get(&moved(&current_next)).0, 200);
    assert_eq!(get(&moved(&next)).0, 410);
}

/// A GET over a plain socket, so Host and forwarded headers are sent exactly as given.
fn raw_get(base: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Host and X-Forwarded-* are client input: without --trusted-proxies forwarded headers are
/// ignored, a Host that is not a host name is a 400, and no page echoes either; behind a
/// trusted proxy its headers make the links; --public-url overrides both.
#[test]
fn host_and_forwarded_headers_cannot_inject_into_links_or_pages() {
    let evil = "x.example\"><script>alert(1)</script>";
    let (s, dir) = demo_server();
    let html = [("Accept", "text/html")];
    let (status, _, body) = raw_get(&s.base, "/", &[html[0], ("X-Forwarded-Host", evil)]);
    assert_eq!(status, 200);
    assert!(
        !body.contains("alert(1)") && !body.contains("x.example"),
        "{body}"
    );
    let addr = s.base.trim_start_matches("http://");
    assert!(body.contains(&format!("href=\"http://{addr}/collections\"")));
    for path in [
        "/",
        "/collections",
        "/collections/harryda-badplatser/items",
        "/api.html",
    ] {
        let (status, head, body) = raw_get(&s.base, path, &[html[0], ("Host", evil)]);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            head.contains("content-type: application/json"),
            "{path}: {head}"
        );
        assert!(!body.contains("<script>"), "{path}: {body}");
    }

    // Representations chosen by Accept: Vary says so, and HTML and JSON never share an ETag.
    let items = "/collections/harryda-badplatser/items?limit=2";
    let (_, json_head, _) = raw_get(&s.base, items, &[]);
    let (_, html_head, _) = raw_get(&s.base, items, &html);
    let header = |head: &str, name: &str| -> Vec<String> {
        head.lines()
            .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
            .collect()
    };
    assert!(
        header(&json_head, "vary")
            .iter()
            .any(|v| v.contains("accept")),
        "{json_head}"
    );
    let etag = header(&json_head, "etag").pop().expect("etag");
    let (status, _, _) = raw_get(&s.base, items, &[html[0], ("If-None-Match", &etag)]);
    assert_eq!(
        status, 200,
        "an HTML request must not get a 304 for the JSON ETag"
    );
    assert!(header(&html_head, "etag").iter().all(|t| *t != etag));

    // A publisher text with markup reaches TileJSON's attribution (HTML for MapLibre) escaped.
    let file = points_file(dir.path(), "p.geojson", &[serde_json::json!({"a": 1})]);
    let o = hamn_cmd()
        .args([
            "--data-dir",
            &dir.path().display().to_string(),
            "ingest",
            &file,
        ])
        .args(["-c", "p", "--publisher", "<img src=x onerror=alert(1)>"])
        .output()
        .expect("ingest");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tilejson = format!(
        "{}/collections/p/tiles/WebMercatorQuad/tilejson.json",
        s.base
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while get(&tilejson).0 != 200 {
        assert!(std::time::Instant::now() < deadline, "p never served");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let attribution = get(&tilejson).1["attribution"]
        .as_str()
        .expect("attribution")
        .to_string();
    assert!(
        attribution.contains("&lt;img") && !attribution.contains('<'),
        "{attribution}"
    );
    drop(s);

    // Behind a trusted proxy its headers make the links, and are checked just the same.
    let store = ["--data-dir".to_string(), dir.path().display().to_string()];
    let s = start(&store, &["--trusted-proxies", "127.0.0.1"]);
    let fwd = [
        ("X-Forwarded-Host", "geodata.lund.se"),
        ("X-Forwarded-Proto", "https"),
    ];
    let (status, _, body) = raw_get(&s.base, "/collections?f=json", &fwd);
    assert_eq!(status, 200);
    assert!(
        body.contains("\"https://geodata.lund.se/collections"),
        "{body}"
    );
    let (status, _, _) = raw_get(&s.base, "/", &[("X-Forwarded-Host", evil)]);
    assert_eq!(status, 400);
    drop(s);

    // A public URL is the base of every link, whatever the request says.
    let s = start(&store, &["--public-url", "https://geodata.skane.se/hamn/"]);
    let (status, _, body) = raw_get(&s.base, "/collections?f=json", &[("Host", evil)]);
    assert_eq!(status, 200);
    assert!(
        body.contains("\"https://geodata.skane.se/hamn/collections"),
        "{body}"
    );
    assert!(!body.contains("x.example"));
    drop(s);
    let bad = hamn_cmd()
        .args(&store)
        .args(["serve", "--public-url", "geodata.skane.se"])
        .output()
        .expect("serve");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--public-url"));
}

#[test]
fn bad_requests_are_clear_4xx_and_the_server_keeps_answering() {
    let (s, _dir) = demo_server();
    let items = format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic/items",
        s.base
    );
    let long_digits = "9".repeat(5000);
    let cases: Vec<(String, u16)> = vec![
        (format!("{items}?bbox=1,2,3,4,5"), 400),
        (format!("{items}?bbox=1,2,3"), 400),
        (format!("{items}?bbox=a,b,c,d"), 400),
        (format!("{items}?bbox=0,91,1,92"), 400),
        (format!("{items}?bbox=-181,0,1,1"), 400),
        (format!("{items}?bbox=0,10,1,5"), 400),
        (format!("{items}?bbox=0,0,1,1&bbox-crs=EPSG:9999"), 400),
        (format!("{items}?limit=0"), 400),
        (format!("{items}?limit=-5"), 400),
        (format!("{items}?limit=ten"), 400),
        (format!("{items}?offset=-1"), 400),
        (format!("{items}?datetime=yesterday"), 400),
        (format!("{items}?datetime=2024-12-31/2024-01-01"), 400),
        (
            format!("{items}?crs=http://www.opengis.net/def/crs/EPSG/0/99999"),
            400,
        ),
        (format!("{items}?colour=red"), 400),
        (format!("{items}?adt=many"), 400),
        (format!("{items}?cursor=not-a-cursor"), 400),
        (format!("{items}?properties=nope"), 400),
        (format!("{items}?f=xml"), 400),
        (format!("{items}?limit=1&limit=2"), 400),
        (format!("{items}?limit=%00"), 400),
        (format!("{}/collections/nope/items", s.base), 404),
        (format!("{items}/no-such-feature"), 404),
        (format!("{items}/1%27%20OR%20%271%27=%271"), 404),
        (format!("{items}/%00"), 404),
        (format!("{items}/{long_digits}"), 404),
        (format!("{}/collections/{long_digits}", s.base), 404),
        (
            format!("{}/collections/..%2F..%2Fetc%2Fpasswd", s.base),
            404,
        ),
    ];
    for (url, want) in cases {
        let resp = fetch(&url);
        assert_eq!(resp.status(), want, "{url}");
        assert_eq!(resp.content_type(), "application/json", "{url}");
        let body: Json = resp.into_json().expect("json");
        assert!(
            body["code"].as_str().is_some() && body["description"].as_str().is_some(),
            "{url}: {body}"
        );
    }
    // Accept that cannot be met.
    let resp = ureq::get(&items).set("Accept", "application/xml").call();
    assert!(matches!(resp, Err(ureq::Error::Status(406, _))));
    // Other methods.
    let resp = ureq::post(&items).call();
    assert!(matches!(resp, Err(ureq::Error::Status(405, _))));
    let (status, _) = get(&format!("{}/health", s.base));
    assert_eq!(status, 200);
}

#[test]
fn http_caching_cors_compression_options() {
    let (s, _dir) = demo_server();
    let url = format!("{}/collections/harryda-badplatser/items?limit=2", s.base);
    let first = fetch(&url);
    let etag = first.header("etag").expect("etag").to_string();
    assert_eq!(first.header("ogc-numbermatched"), Some("9"));
    assert!(first
        .header("link")
        .is_some_and(|l| l.contains("rel=\"next\"")));
    assert_eq!(
        first.header("content-crs"),
        Some("<http://www.opengis.net/def/crs/OGC/1.3/CRS84>")
    );
    assert!(first.header("x-request-id").is_some());
    assert_eq!(first.content_type(), "application/geo+json");
    let again = ureq::get(&url)
        .set("If-None-Match", &etag)
        .call()
        .expect("304 is not an error");
    assert_eq!(again.status(), 304);
    let other = fetch(&format!(
        "{}/collections/harryda-badplatser/items?limit=3",
        s.base
    ));
    assert_ne!(
        other.header("etag"),
        Some(etag.as_str()),
        "a different query has another ETag"
    );

    let cors = ureq::get(&url)
        .set("Origin", "https://example.org")
        .call()
        .expect("ok");
    assert!(cors.header("access-control-allow-origin").is_some());

    let gz = ureq::get(&format!(
        "{}/collections/xtrafik-gtfs-stops/items?limit=1000",
        s.base
    ))
    .set("Accept-Encoding", "gzip")
    .call()
    .expect("ok");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));

    let opt = ureq::request("OPTIONS", &format!("{}/collections", s.base))
        .call()
        .expect("options");
    assert!(opt.status() == 204 || opt.status() == 200);
    assert!(opt.header("allow").is_some_and(|a| a.contains("GET")));
}

fn ogr_available() -> bool {
    std::process::Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// GDAL's OAPIF driver, as QGIS and ogr2ogr users meet the server, on both stores.
#[tokio::test]
async fn gdal_reads_every_collection() {
    assert!(
        ogr_available(),
        "ogrinfo (gdal-bin) is needed: scripts/deps.sh installs it"
    );
    for store in each_store().await {
        for (file, extra) in [
            (
                data("transit/xtrafik_gtfs_stops.txt"),
                vec!["--id-field", "stop_id"],
            ),
            (data("parking/malmo_miljoparkering.geojson"), vec![]),
            (data("parking/copenhagen_osm_parking_areas.geojson"), vec![]),
        ] {
            let o = store
                .hamn()
                .args(["ingest", &file])
                .args(extra)
                .output()
                .expect("ingest");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let s = start(&store.args(), &["--no-demo"]);
        let o = std::process::Command::new("ogrinfo")
            .args(["-ro", "-q", &format!("OAPIF:{}", s.base)])
            .output()
            .expect("ogrinfo");
        let listing = String::from_utf8_lossy(&o.stdout);
        for id in [
            "xtrafik-gtfs-stops",
            "malmo-miljoparkering",
            "copenhagen-osm-parking-areas",
        ] {
            assert!(listing.contains(id), "{}: {listing}", store.kind);
        }
        for (id, count) in [
            ("xtrafik-gtfs-stops", 6562),
            ("malmo-miljoparkering", 2261),
            ("copenhagen-osm-parking-areas", 597),
        ] {
            let o = std::process::Command::new("ogrinfo")
                .args(["-ro", "-so", &format!("OAPIF:{}", s.base), id])
                .output()
                .expect("ogrinfo");
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                text.contains(&format!("Feature Count: {count}")),
                "{} {id}: {text}",
                store.kind
            );
        }
        // ogr2ogr downloads a whole collection over many pages, values intact.
        let out = tempfile::tempdir().expect("tempdir");
        let gpkg = out.path().join("stops.gpkg");
        let o = std::process::Command::new("ogr2ogr")
            .args([
                "-f",
                "GPKG",
                &gpkg.display().to_string(),
                &format!("OAPIF:{}", s.base),
                "xtrafik-gtfs-stops",
                "-oo",
                "PAGE_SIZE=1000",
            ])
            .output()
            .expect("ogr2ogr");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let ds = gdal::Dataset::open(&gpkg).expect("open download");
        let mut layer = ds.layer(0).expect("layer");
        use gdal::vector::LayerAccess;
        assert_eq!(layer.feature_count(), 6562, "{}", store.kind);
        let name_idx = layer.defn().field_index("stop_name").expect("stop_name");
        let names: HashSet<String> = layer
            .features()
            .filter_map(|f| f.field_as_string(name_idx).ok().flatten())
            .collect();
        assert!(names.contains("Harmånger torget") && names.contains("Ockelbo Björklunda"));
        // An attribute filter reaches the server as ?name=value.
        let o = std::process::Command::new("ogrinfo")
            .args([
                "-ro",
                "-so",
                &format!("OAPIF:{}", s.base),
                "xtrafik-gtfs-stops",
                "-where",
                "location_type = 1",
            ])
            .output()
            .expect("ogrinfo");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("Feature Count: 2232"),
            "{}: {text}",
            store.kind
        );
    }
}

/// Part 2: coordinates in SWEREF 99 TM (northing, easting) and EPSG:4326 (latitude, longitude),
/// and bounding boxes given in them, checked against control points computed with gdaltransform.
#[test]
fn coordinates_in_swedish_and_other_crs() {
    let (s, _dir) = demo_server();
    let item = format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic/items/MLM-0001",
        s.base
    );
    // From tests/fixtures/wkt_3006.csv: MLM-0001 is POINT (372129.163 6162346.215) as E N.
    let (e, n) = (372_129.163, 6_162_346.215);
    let resp = fetch(&format!(
        "{item}?crs=http://www.opengis.net/def/crs/EPSG/0/3006"
    ));
    assert_eq!(
        resp.header("content-crs"),
        Some("<http://www.opengis.net/def/crs/EPSG/0/3006>")
    );
    let doc: Json = resp.into_json().expect("json");
    let c = &doc["geometry"]["coordinates"];
    let (first, second) = (c[0].as_f64().expect("n"), c[1].as_f64().expect("e"));
    assert!(
        (first - n).abs() < 0.01 && (second - e).abs() < 0.01,
        "northing first: {c}"
    );

    let control: serde_json::Map<String, Json> = serde_json::from_str(
        &std::fs::read_to_string(fixture("control_points.json")).expect("read"),
    )
    .expect("json");
    let lonlat = &control["MLM-0001"];
    let (_, doc) = get(&format!(
        "{item}?crs=http://www.opengis.net/def/crs/EPSG/0/4326"
    ));
    let c = &doc["geometry"]["coordinates"];
    assert!(
        (c[0].as_f64().expect("lat") - lonlat[1].as_f64().expect("lat")).abs() < 1e-9,
        "latitude first: {c}"
    );
    assert!((c[1].as_f64().expect("lon") - lonlat[0].as_f64().expect("lon")).abs() < 1e-9);

    // A 10 m box in SWEREF 99 TM, northing first, finds the point.
    let items = format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic/items",
        s.base
    );
    let (status, doc) = get(&format!(
        "{items}?bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3006&bbox={},{},{},{}",
        n - 5.0,
        e - 5.0,
        n + 5.0,
        e + 5.0
    ));
    assert_eq!(status, 200);
    assert_eq!(ids(&doc), ["MLM-0001"]);
    // The same box with the axes the wrong way round finds nothing (it lies far away).
    let (status, doc) = get(&format!(
        "{items}?bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3006&bbox={},{},{},{}",
        e - 5.0,
        n - 5.0,
        e + 5.0,
        n + 5.0
    ));
    assert!(status == 400 || doc["numberMatched"] == 0, "{status} {doc}");
    // Pages in another CRS, with the list of offered CRSs on the collection.
    let resp = fetch(&format!("{items}?crs=EPSG:3008&limit=5"));
    assert_eq!(
        resp.header("content-crs"),
        Some("<http://www.opengis.net/def/crs/EPSG/0/3008>")
    );
    let doc: Json = resp.into_json().expect("json");
    assert_eq!(doc["numberReturned"], 5);
    for f in doc["features"].as_array().expect("features") {
        let c = &f["geometry"]["coordinates"];
        assert!(
            c[0].as_f64().is_some_and(|n| n > 6_000_000.0),
            "SWEREF 99 13 30 northing first: {c}"
        );
    }
    let (_, doc) = get(&format!("{items}?crs=EPSG:3006&properties=vag&limit=2"));
    assert!(doc["features"][0]["geometry"]["coordinates"][0]
        .as_f64()
        .is_some_and(|n| n > 6_000_000.0));
    assert_eq!(
        doc["features"][0]["properties"]
            .as_object()
            .map(|p| p.len()),
        Some(1)
    );
    let (_, coll) = get(&format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic",
        s.base
    ));
    let offered: Vec<&str> = coll["crs"]
        .as_array()
        .expect("crs")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    for c in [
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "http://www.opengis.net/def/crs/EPSG/0/3006",
        "http://www.opengis.net/def/crs/EPSG/0/3008",
        "http://www.opengis.net/def/crs/EPSG/0/3857",
    ] {
        assert!(offered.contains(&c), "{c}");
    }
    assert_eq!(
        coll["storageCrs"],
        "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    );
}

/// Pages for a browser: the same resources as HTML, chosen by Accept or f=html, with no scripts.
#[test]
fn html_pages_for_people() {
    let (s, _dir) = demo_server();
    let html = |url: &str, accept: Option<&str>| -> String {
        let mut req = ureq::get(url);
        if let Some(a) = accept {
            req = req.set("Accept", a);
        }
        let resp = req.call().expect("page");
        assert!(resp.content_type().starts_with("text/html"), "{url}");
        let text = resp.into_string().expect("text");
        // Scripts only from this server (the map's MapLibre build): nothing from a CDN.
        for src in text.split("<script src=\"").skip(1) {
            assert!(
                src.starts_with(&s.base),
                "{url}: script from elsewhere: {}",
                &src[..src.len().min(80)]
            );
        }
        assert!(!text.contains("unpkg") && !text.contains("cdn."), "{url}");
        text
    };
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    assert!(html(&format!("{}/", s.base), Some(browser)).contains("/collections\""));
    let list = html(&format!("{}/collections?f=html", s.base), None);
    for title in ["Miljöparkering", "Traffic counts (ÅDT)", "X-Trafik"] {
        assert!(list.contains(title), "{title}");
    }
    let coll = html(
        &format!("{}/collections/harryda-badplatser", s.base),
        Some(browser),
    );
    assert!(coll.contains("CC0") && coll.contains("harryda_badplatser.csv"));
    let items = html(
        &format!(
            "{}/collections/copenhagen-osm-parking/items?f=html&limit=5",
            s.base
        ),
        None,
    );
    // The same map as the collection's, with the page's own features to highlight (their
    // GeoJSON in the page) and the offline background; the table works without the script.
    let highlight = items
        .split("window.HAMN_MAP.highlight = ")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the page's features in the page");
    let highlight: Json = serde_json::from_str(highlight.trim_end_matches(';')).expect("JSON");
    assert_eq!(highlight["type"], "FeatureCollection");
    assert_eq!(highlight["features"].as_array().map(Vec::len), Some(5));
    assert!(
        items.contains("/assets/maplibre-gl/viewer.js")
            && items.contains("/assets/world/world.geojson")
    );
    assert!(!items.contains("<svg"));
    assert_eq!(
        items.matches("<tr><td><a href=").count(),
        5,
        "one row per feature"
    );
    assert!(
        items.contains("f=html") && items.contains(">next</a>"),
        "next page stays HTML"
    );
    let one = html(
        &format!("{}/collections/harryda-badplatser/items/1?f=html", s.base),
        None,
    );
    assert!(
        one.contains("window.HAMN_MAP.highlight = ")
            && one.contains("\"highlightTitle\":\"This feature\"")
    );
    // The map's assets: MapLibre, the viewer, the background and where it comes from.
    for (path, ty) in [
        ("maplibre-gl/maplibre-gl.js", "text/javascript"),
        ("maplibre-gl/viewer.js", "text/javascript"),
        ("world/world.geojson", "application/geo+json"),
        ("world/README.txt", "text/plain"),
    ] {
        let r = fetch(&format!("{}/assets/{path}", s.base));
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.content_type().starts_with(ty),
            "{path}: {}",
            r.content_type()
        );
        assert!(
            r.header("cache-control")
                .is_some_and(|c| c.contains("max-age")),
            "{path}"
        );
    }
    let (_, world) = get(&format!("{}/assets/world/world.geojson", s.base));
    assert_eq!(world["features"][0]["properties"]["kind"], "land");
    for missing in [
        "world/nothing.json",
        "maplibre-gl/world.geojson",
        "other/viewer.js",
    ] {
        assert_eq!(
            fetch(&format!("{}/assets/{missing}", s.base)).status(),
            404,
            "{missing}"
        );
    }
    // JSON stays the default for clients that do not ask for HTML.
    let (status, _) = get(&format!("{}/collections", s.base));
    assert_eq!(status, 200);
}

/// Heavy requests (here every one that tests anything, with --heavy-threshold 0) run on the
/// bounded pool and answer exactly what the inline path answers; streamed pages are whole.
#[test]
fn heavy_requests_answer_as_the_inline_path_does() {
    let (inline, dir) = demo_server();
    let heavy = start(
        &["--data-dir".to_string(), dir.path().display().to_string()],
        &["--heavy-threshold", "0", "--heavy-concurrency", "1"],
    );
    let strip = |mut doc: Json| {
        doc["timeStamp"] = Json::Null;
        doc["links"] = Json::Null;
        doc
    };
    for q in [
        "/collections/traffic-counts-malmo-lund-synthetic/items?filter=adt%20%3E%2020000&limit=1000",
        "/collections/traffic-counts-malmo-lund-synthetic/items?sortby=-adt&limit=7",
        "/collections/malmo-miljoparkering/items?bbox=12.9,55.55,13.1,55.65&limit=10000",
        "/collections/malmo-miljoparkering/items?limit=3000",
        "/collections/hav-bathing-waters/items?bbox=12,55,15,57&crs=http://www.opengis.net/def/crs/EPSG/0/3006",
    ] {
        let (a_status, a) = get(&format!("{}{q}", inline.base));
        let (b_status, b) = get(&format!("{}{q}", heavy.base));
        assert_eq!((a_status, b_status), (200, 200), "{q}");
        assert!(b["numberReturned"].as_u64().is_some_and(|n| n > 0), "{q}");
        assert_eq!(strip(a), strip(b), "{q}");
    }
    for t in [
        "/collections/malmo-miljoparkering/tiles/WebMercatorQuad/12/2196/1280",
        "/tiles/WebMercatorQuad/6/34/19",
    ] {
        let a = fetch(&format!("{}{t}", inline.base));
        let b = fetch(&format!("{}{t}", heavy.base));
        assert_eq!(a.status(), b.status(), "{t}");
        let (mut x, mut y) = (Vec::new(), Vec::new());
        std::io::Read::read_to_end(&mut a.into_reader(), &mut x).expect("read");
        std::io::Read::read_to_end(&mut b.into_reader(), &mut y).expect("read");
        assert_eq!(x, y, "{t}");
    }
    let metrics = fetch(&format!("{}/metrics", heavy.base))
        .into_string()
        .expect("text");
    assert!(metrics
        .lines()
        .any(|l| l.starts_with("hamn_heavy_requests_completed_total ") && !l.ends_with(" 0")));
}
