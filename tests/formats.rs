//! Items and single items as CSV, GeoJSON text sequences, NDJSON and FlatGeobuf: GDAL's
//! ogr2ogr reads each back with the features, values and geometries of the GeoJSON page
//! (against a running `hamn serve` with the demo data), and in-process requests check the
//! headers, CSV escaping, empty pages and negotiation.

mod common;

use actix_web::test as actix_test;
use actix_web::{web, App};
use common::*;
use serde_json::Value as Json;

/// (f, file extension GDAL knows, media type)
const FORMATS: [(&str, &str, &str); 4] = [
    ("csv", "csv", "text/csv"),
    ("jsonseq", "geojsons", "application/geo+json-seq"),
    ("ndjson", "geojsonl", "application/ndjson"),
    ("fgb", "fgb", "application/flatgeobuf"),
];

/// A response's headers (ureq's body can be read only once) and body.
struct Got {
    headers: std::collections::HashMap<String, String>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or_default()
    }
}

/// A successful GET: headers and body.
fn body(url: &str) -> (Got, Vec<u8>) {
    let (status, got, bytes) = raw(url, "GET", &[]);
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&bytes));
    (got, bytes)
}

/// ogr2ogr reads `bytes` (as a file with the extension `ext`) and writes GeoJSON.
fn ogr_read(bytes: &[u8], ext: &str, options: &[&str]) -> Json {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(format!("page.{ext}"));
    std::fs::write(&path, bytes).expect("write");
    let o = std::process::Command::new("ogr2ogr")
        .args(["-f", "GeoJSON", "/vsistdout/"])
        .arg(&path)
        .args(options)
        .output()
        .expect("ogr2ogr (gdal-bin) is needed: scripts/deps.sh installs it");
    assert!(
        o.status.success(),
        "ogr2ogr {ext}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("GeoJSON from ogr2ogr")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

/// A value of the GeoJSON page and the value GDAL read back from another format: numbers
/// within 1e-9, dates also as date-times at midnight (FlatGeobuf has only date-times), and in
/// CSV, which GDAL reads as text, their text (a missing value is an empty field).
fn same_value(want: &Json, got: &Json) -> bool {
    match (want, got) {
        (Json::Null, Json::Null) => true,
        (Json::Null, Json::String(s)) => s.is_empty(),
        (Json::Number(a), Json::Number(b)) => close(
            a.as_f64().unwrap_or(f64::NAN),
            b.as_f64().unwrap_or(f64::NAN),
        ),
        (Json::Number(a), Json::String(b)) => b
            .parse::<f64>()
            .is_ok_and(|b| close(a.as_f64().unwrap_or(f64::NAN), b)),
        (Json::Bool(a), Json::String(b)) => a.to_string() == *b,
        (Json::String(a), Json::String(b)) => {
            a == b || (a.len() == 10 && *b == format!("{a}T00:00:00"))
        }
        (Json::Array(_) | Json::Object(_), Json::String(b)) => {
            serde_json::from_str::<Json>(b).is_ok_and(|b| b == *want)
        }
        // GDAL's GeoJSON writer turns a text that is JSON into that JSON.
        (Json::String(a), Json::Array(_) | Json::Object(_)) => {
            serde_json::from_str::<Json>(a).is_ok_and(|a| a == *got)
        }
        (a, b) => a == b,
    }
}

/// A geometry's coordinates, flattened.
fn coords(g: &Json, out: &mut Vec<(f64, f64)>) {
    match g {
        Json::Array(a) if a.first().is_some_and(Json::is_number) => out.push((
            a[0].as_f64().unwrap_or(f64::NAN),
            a[1].as_f64().unwrap_or(f64::NAN),
        )),
        Json::Array(a) => a.iter().for_each(|x| coords(x, out)),
        _ => {}
    }
}

fn geometry_coords(g: &Json) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    if let Some(parts) = g["geometries"].as_array() {
        for p in parts {
            coords(&p["coordinates"], &mut out);
        }
    } else {
        coords(&g["coordinates"], &mut out);
    }
    out
}

/// The same geometry: the same kind (a multi geometry of one part as its part) and the same
/// coordinates, `swap`ped when the format writes easting first and the page northing first.
fn same_geometry(want: &Json, got: &Json, swap: bool) -> Result<(), String> {
    if want.is_null() || got.is_null() {
        return if want.is_null() && got.is_null() {
            Ok(())
        } else {
            Err(format!("{want} / {got}"))
        };
    }
    let kind = |g: &Json| {
        g["type"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("Multi")
            .to_string()
    };
    if kind(want) != kind(got) {
        return Err(format!("type {} / {}", want["type"], got["type"]));
    }
    let (a, b) = (geometry_coords(want), geometry_coords(got));
    if a.len() != b.len() {
        return Err(format!("{} / {} vertices", a.len(), b.len()));
    }
    for (p, q) in a.iter().zip(&b) {
        let q = if swap { (q.1, q.0) } else { *q };
        if !(close(p.0, q.0) && close(p.1, q.1)) {
            return Err(format!("vertex {p:?} / {q:?}"));
        }
    }
    Ok(())
}

fn id_text(id: &Json) -> String {
    match id {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn ogr_reads_every_format_back_with_the_features_of_the_geojson_page() {
    let (s, _dir) = demo_server();
    // Points with dates and numbers; polygons, multipolygons and points with texts.
    for (collection, points) in [
        ("traffic-counts-malmo-lund-synthetic", true),
        ("copenhagen-osm-parking", false),
    ] {
        for crs in [None, Some("EPSG:3006")] {
            let query = match crs {
                None => "limit=50".to_string(),
                Some(c) => format!("limit=50&crs={c}"),
            };
            let items = format!("{}/collections/{collection}/items?{query}", s.base);
            let (status, page) = get(&items);
            assert_eq!(status, 200);
            let want = page["features"].as_array().expect("features");
            assert_eq!(want.len(), 50);
            let attributes: Vec<String> = want[0]["properties"]
                .as_object()
                .expect("properties")
                .keys()
                .cloned()
                .collect();
            let id_column = if attributes.iter().any(|a| a == "id") {
                "_id"
            } else {
                "id"
            };
            for (f, ext, media) in FORMATS {
                let what = format!("{collection} {f} {crs:?}");
                let (resp, bytes) = body(&format!("{items}&f={f}"));
                assert!(
                    resp.content_type().starts_with(media),
                    "{what}: {}",
                    resp.content_type()
                );
                assert_eq!(resp.header("OGC-NumberReturned"), Some("50"), "{what}");
                assert_eq!(
                    resp.header("OGC-NumberMatched").map(str::to_string),
                    page["numberMatched"].as_u64().map(|n| n.to_string()),
                    "{what}"
                );
                let next = resp.header("Link").expect("a Link to the next page");
                assert!(
                    next.contains(&format!("f={f}")) && next.contains("rel=\"next\""),
                    "{what}: {next}"
                );
                if f == "jsonseq" || f == "ndjson" {
                    // Each record is the page's feature, exactly.
                    let text = String::from_utf8(bytes.clone()).expect("UTF-8");
                    let records: Vec<Json> = text
                        .split_terminator('\n')
                        .map(|r| {
                            let r = if f == "jsonseq" {
                                r.strip_prefix('\u{1e}').expect("RS before each record")
                            } else {
                                r
                            };
                            serde_json::from_str(r).expect("a JSON record")
                        })
                        .collect();
                    assert_eq!(records, *want, "{what}");
                }
                let options: Vec<&str> = match (f, points) {
                    ("csv", true) => vec![
                        "-oo",
                        "X_POSSIBLE_NAMES=x",
                        "-oo",
                        "Y_POSSIBLE_NAMES=y",
                        "-oo",
                        "KEEP_GEOM_COLUMNS=NO",
                    ],
                    ("csv", false) => vec![
                        "-oo",
                        "GEOM_POSSIBLE_NAMES=wkt",
                        "-oo",
                        "KEEP_GEOM_COLUMNS=NO",
                    ],
                    _ => vec![],
                };
                let read = ogr_read(&bytes, ext, &options);
                let got = read["features"].as_array().expect("features read back");
                assert_eq!(got.len(), want.len(), "{what}");
                // WKT, CSV x/y and FlatGeobuf are easting first; GeoJSON follows the CRS.
                let swap = crs.is_some() && (f == "csv" || f == "fgb");
                for (w, g) in want.iter().zip(got) {
                    let id = id_text(&w["id"]);
                    if f == "csv" || f == "fgb" {
                        assert_eq!(
                            g["properties"][id_column].as_str(),
                            Some(id.as_str()),
                            "{what}: id"
                        );
                    }
                    for a in &attributes {
                        let (wv, gv) = (&w["properties"][a], &g["properties"][a]);
                        assert!(same_value(wv, gv), "{what} {id} {a}: {wv} / {gv}");
                    }
                    if let Err(e) = same_geometry(&w["geometry"], &g["geometry"], swap) {
                        panic!("{what} {id}: {e}");
                    }
                }
                if f == "fgb" {
                    // The header carries the CRS and the count.
                    let dir = tempfile::tempdir().expect("tempdir");
                    let path = dir.path().join("page.fgb");
                    std::fs::write(&path, &bytes).expect("write");
                    let o = std::process::Command::new("ogrinfo")
                        .args(["-ro", "-so", "-al"])
                        .arg(&path)
                        .output()
                        .expect("ogrinfo");
                    let info = String::from_utf8_lossy(&o.stdout);
                    assert!(info.contains("Feature Count: 50"), "{what}: {info}");
                    let epsg = if crs.is_some() { "3006" } else { "4326" };
                    assert!(
                        info.contains(&format!("ID[\"EPSG\",{epsg}]")),
                        "{what}: {info}"
                    );
                }
            }
        }
    }
}

/// The collection document's enclosure links, once both have their `length` (the files are
/// built in the background after the version is served).
fn enclosures(base: &str, collection: &str) -> Vec<(String, String, u64)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (status, doc) = get(&format!("{base}/collections/{collection}"));
        assert_eq!(status, 200);
        let links: Vec<&Json> = doc["links"]
            .as_array()
            .expect("links")
            .iter()
            .filter(|l| l["rel"] == "enclosure")
            .collect();
        assert_eq!(links.len(), 2, "{collection}: {doc}");
        if links.iter().all(|l| l["length"].is_u64()) {
            return links
                .iter()
                .map(|l| {
                    (
                        l["href"].as_str().expect("href").to_string(),
                        l["type"].as_str().expect("type").to_string(),
                        l["length"].as_u64().expect("length"),
                    )
                })
                .collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{collection}: downloads not built in time"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A request that does not follow redirects, with extra headers: (status, headers, body).
fn raw(url: &str, method: &str, headers: &[(&str, &str)]) -> (u16, Got, Vec<u8>) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| {
            let v = resp.header(&n)?.to_string();
            Some((n.to_ascii_lowercase(), v))
        })
        .collect();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes).expect("body");
    (status, Got { headers }, bytes)
}

/// Each collection's bulk downloads (FlatGeobuf, GeoPackage): ogr2ogr reads every feature of
/// the collection back with its values and geometry; byte ranges, validators and versions.
#[test]
fn bulk_downloads_hold_the_whole_collection_and_resume_by_range() {
    let (s, dir) = demo_server();
    for collection in [
        "traffic-counts-malmo-lund-synthetic",
        "copenhagen-osm-parking",
        "harryda-badplatser",
    ] {
        let (status, all) = get(&format!(
            "{}/collections/{collection}/items?limit=10000",
            s.base
        ));
        assert_eq!(status, 200);
        let want = all["features"].as_array().expect("features");
        assert_eq!(Some(want.len() as u64), all["numberMatched"].as_u64());
        let mut attributes: Vec<String> = Vec::new();
        for f in want {
            for k in f["properties"].as_object().expect("properties").keys() {
                if !attributes.contains(k) {
                    attributes.push(k.clone());
                }
            }
        }
        let id_column = if attributes.iter().any(|a| a == "id") {
            "_id"
        } else {
            "id"
        };
        for (href, media, length) in enclosures(&s.base, collection) {
            let what = format!("{collection} {media}");
            let (status, resp, bytes) = raw(&href, "GET", &[]);
            assert_eq!(status, 200, "{what}");
            assert_eq!(resp.content_type(), media, "{what}");
            assert_eq!(bytes.len() as u64, length, "{what}");
            assert_eq!(
                resp.header("Cache-Control"),
                Some("public, max-age=31536000, immutable"),
                "{what}"
            );
            assert!(resp
                .header("Content-Disposition")
                .is_some_and(|d| d.starts_with("attachment; filename=")));
            let etag = resp.header("ETag").expect("an ETag").to_string();
            assert!(etag.starts_with('"'), "{what}: a strong ETag, {etag}");

            let ext = if media.contains("flatgeobuf") {
                "fgb"
            } else {
                "gpkg"
            };
            let read = ogr_read(&bytes, ext, &[]);
            let got = read["features"].as_array().expect("features read back");
            assert_eq!(got.len(), want.len(), "{what}");
            // FlatGeobuf's index orders features along a Hilbert curve: matched by id.
            let by_id: std::collections::HashMap<&str, &Json> = got
                .iter()
                .map(|g| (g["properties"][id_column].as_str().unwrap_or_default(), g))
                .collect();
            assert_eq!(by_id.len(), want.len(), "{what}: ids read back");
            for w in want {
                let id = id_text(&w["id"]);
                let g = by_id
                    .get(id.as_str())
                    .unwrap_or_else(|| panic!("{what}: {id} not read back"));
                for a in &attributes {
                    let (wv, gv) = (&w["properties"][a], &g["properties"][a]);
                    assert!(same_value(wv, gv), "{what} {id} {a}: {wv} / {gv}");
                }
                if let Err(e) = same_geometry(&w["geometry"], &g["geometry"], false) {
                    panic!("{what} {id}: {e}");
                }
            }

            // A resumed download: the bytes asked for, while the file is the same.
            let (status, resp, part) = raw(&href, "GET", &[("Range", "bytes=100-199")]);
            assert_eq!(status, 206, "{what}");
            assert_eq!(part, bytes[100..200], "{what}");
            assert_eq!(
                resp.header("Content-Range").map(str::to_string),
                Some(format!("bytes 100-199/{length}"))
            );
            let (status, _, part) = raw(
                &href,
                "GET",
                &[("Range", "bytes=-10"), ("If-Range", etag.as_str())],
            );
            assert_eq!((status, part.as_slice()), (206, &bytes[bytes.len() - 10..]));
            // Another file's tag in If-Range: the whole file, not a splice of two.
            let (status, _, whole) = raw(
                &href,
                "GET",
                &[("Range", "bytes=0-9"), ("If-Range", "\"other\"")],
            );
            assert_eq!((status, whole.len() as u64), (200, length), "{what}");
            let (status, resp, _) = raw(&href, "GET", &[("Range", &format!("bytes={length}-"))]);
            assert_eq!(status, 416, "{what}");
            assert_eq!(
                resp.header("Content-Range").map(str::to_string),
                Some(format!("bytes */{length}"))
            );
            let (status, _, none) = raw(&href, "GET", &[("If-None-Match", etag.as_str())]);
            assert_eq!((status, none.len()), (304, 0), "{what}");
            let (status, resp, none) = raw(&href, "HEAD", &[]);
            assert_eq!(status, 200);
            assert!(none.is_empty());
            assert_eq!(
                resp.header("Content-Length").map(str::to_string),
                Some(length.to_string())
            );
            // Without v=: the current file, revalidated.
            let plain = href.split('?').next().expect("path").to_string();
            let (status, resp, again) = raw(&plain, "GET", &[]);
            assert_eq!((status, again == bytes), (200, true), "{what}");
            assert_eq!(resp.header("Cache-Control"), Some("no-cache"));
        }
    }

    // Bad requests are clear 4xx with a JSON body.
    let base = format!("{}/collections/harryda-badplatser/download", s.base);
    for (url, want) in [
        (format!("{base}/zip"), 404),
        (format!("{base}/fgb?v=soon"), 400),
        (format!("{base}/fgb?format=x"), 400),
        (format!("{}/collections/nothing/download/fgb", s.base), 404),
    ] {
        let (status, resp, body) = raw(&url, "GET", &[]);
        assert_eq!(status, want, "{url}");
        assert!(resp.content_type().starts_with("application/json"), "{url}");
        let doc: Json = serde_json::from_slice(&body).expect("a JSON error");
        assert!(doc["description"].is_string(), "{url}: {doc}");
    }

    // A new version gets new files; the old version's URL leads to the new one.
    let old = enclosures(&s.base, "harryda-badplatser");
    let o = hamn_cmd()
        .args(["--data-dir", &dir.path().display().to_string()])
        .args([
            "collections",
            "edit",
            "harryda-badplatser",
            "--title",
            "Badplatser i Härryda",
        ])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let new = loop {
        let new = enclosures(&s.base, "harryda-badplatser");
        if new[0].0 != old[0].0 {
            break new;
        }
        assert!(std::time::Instant::now() < deadline, "no new version");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let (status, resp, _) = raw(&old[0].0, "GET", &[]);
    assert_eq!(status, 302);
    assert_eq!(resp.header("Location"), Some(new[0].0.as_str()));
    let (status, _, bytes) = raw(&new[1].0, "GET", &[]);
    assert_eq!((status, bytes.len() as u64), (200, new[1].2));
}

/// A restart reuses the files of the current versions (same bytes, not rebuilt) and sweeps
/// what is stale or unfinished, leaving files it did not make alone.
#[test]
fn a_restart_reuses_current_downloads_and_sweeps_the_rest() {
    let (s, dir) = demo_server();
    let before = enclosures(&s.base, "harryda-badplatser");
    let downloads = dir.path().join("downloads");
    let listing = || -> std::collections::BTreeMap<String, std::time::SystemTime> {
        std::fs::read_dir(&downloads)
            .expect("downloads/ in the store's directory")
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().and_then(|m| m.modified()).expect("mtime"),
                )
            })
            .collect()
    };
    // This collection's files (others may still be being built).
    let built: std::collections::BTreeMap<String, std::time::SystemTime> = listing()
        .into_iter()
        .filter(|(n, _)| n.starts_with("harryda-badplatser-v") && !n.contains(".partial."))
        .collect();
    assert_eq!(built.len(), 2, "{built:?}");
    drop(s);
    for junk in [
        "harryda-badplatser-v0-000000000000.fgb",
        "gone-v3-0123456789ab.gpkg",
        "harryda-badplatser-v9-0123456789ab.partial.fgb",
        "notes.txt",
    ] {
        std::fs::write(downloads.join(junk), b"x").expect("write");
    }
    let s = start(
        &["--data-dir".to_string(), dir.path().display().to_string()],
        &["--refresh-seconds", "1"],
    );
    let after = enclosures(&s.base, "harryda-badplatser");
    let path = |e: &[(String, String, u64)]| -> Vec<(String, u64)> {
        e.iter()
            .map(|(href, _, n)| {
                (
                    href.split("/collections/")
                        .nth(1)
                        .unwrap_or_default()
                        .to_string(),
                    *n,
                )
            })
            .collect()
    };
    assert_eq!(path(&before), path(&after));
    let now = listing();
    for (name, mtime) in &built {
        assert_eq!(now.get(name), Some(mtime), "{name} reused as it was");
    }
    for junk in [
        "harryda-badplatser-v0-000000000000.fgb",
        "gone-v3-0123456789ab.gpkg",
        "harryda-badplatser-v9-0123456789ab.partial.fgb",
    ] {
        assert!(!now.contains_key(junk), "{junk} swept");
    }
    assert!(
        now.contains_key("notes.txt"),
        "a file hamn did not make stays"
    );
}

/// Link headers walk a collection in the format asked for, as next links walk the GeoJSON.
#[test]
fn link_headers_walk_every_page_in_the_same_format() {
    let (s, _dir) = demo_server();
    let mut url = Some(format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic/items?f=csv&limit=40&sortby=-adt",
        s.base
    ));
    let mut ids = Vec::new();
    while let Some(u) = url {
        let (resp, bytes) = body(&u);
        assert_eq!(resp.header("OGC-NumberMatched"), Some("150"));
        let text = String::from_utf8(bytes).expect("UTF-8");
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        assert!(lines.next().is_some_and(|h| h.starts_with("id,")));
        ids.extend(lines.map(|l| l.split(',').next().unwrap_or_default().to_string()));
        url = resp.header("Link").and_then(|l| {
            l.split(", ")
                .find(|part| part.contains("rel=\"next\""))
                .and_then(|part| part.split(['<', '>']).nth(1))
                .map(str::to_string)
        });
        assert!(ids.len() <= 150, "runaway paging");
    }
    let (_, all) = get(&format!(
        "{}/collections/traffic-counts-malmo-lund-synthetic/items?limit=150&sortby=-adt",
        s.base
    ));
    let want: Vec<String> = all["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| format!("\"{}\"", id_text(&f["id"])))
        .collect();
    assert_eq!(ids, want);
}

/// A collection with values CSV must escape, served in-process.
async fn tricky_app_state() -> (web::Data<hamn::api::AppState>, tempfile::TempDir) {
    in_process_state(
        "tricky",
        serde_json::json!({
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [13.0, 55.6]},
                 "properties": {"name": "Say \"hej\", then\nleave", "note": "", "n": 1.5, "count": 3, "open": true}},
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [13.5, 55.25]},
                 "properties": {"name": "plain", "note": null, "n": null, "count": null, "open": false}},
            ]
        }),
    )
    .await
}

macro_rules! app {
    ($state:expr) => {
        actix_test::init_service(
            App::new()
                .app_data($state.clone())
                .configure(hamn::api::configure),
        )
        .await
    };
}

/// GET `uri` (with `Accept` when given): status, headers, body.
macro_rules! call {
    ($app:expr, $uri:expr, $accept:expr $(,)?) => {{
        let mut req = actix_test::TestRequest::get().uri(AsRef::<str>::as_ref(&$uri));
        if let Some(a) = $accept {
            req = req.insert_header(("Accept", a));
        }
        let resp = actix_test::call_service(&$app, req.to_request()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = actix_test::read_body(resp).await.to_vec();
        (status, headers, bytes)
    }};
}

fn header<'a>(h: &'a actix_web::http::header::HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[actix_web::test]
async fn csv_quotes_what_it_must_and_says_what_it_is() {
    let (state, _dir) = tricky_app_state().await;
    let app = app!(state);
    let (status, h, bytes) = call!(app, "/collections/tricky/items?f=csv", None::<&str>);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(
        header(&h, "content-type"),
        "text/csv; charset=utf-8; header=present"
    );
    assert_eq!(header(&h, "OGC-NumberMatched"), "2");
    assert_eq!(header(&h, "OGC-NumberReturned"), "2");
    assert_eq!(
        header(&h, "Content-Crs"),
        "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    );
    assert!(header(&h, "content-disposition").contains("tricky.csv"));
    assert!(header(&h, "etag").ends_with("-csv\""));
    let text = String::from_utf8(bytes).expect("UTF-8 without a BOM");
    assert!(!text.starts_with('\u{feff}'));
    // Attribute order is the collection's; points get x and y.
    let (_, _, doc) = call!(app, "/collections/tricky/items", None::<&str>);
    let doc: Json = serde_json::from_slice(&doc).expect("json");
    let names: Vec<String> = doc["features"][0]["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    let row = |f: &Json| -> Vec<String> {
        names
            .iter()
            .map(|n| match &f["properties"][n] {
                Json::Null => String::new(),
                Json::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
                other => other.to_string(),
            })
            .collect()
    };
    let want = format!(
        "id,{},x,y\r\n0,{},13,55.6\r\n1,{},13.5,55.25\r\n",
        names.join(","),
        row(&doc["features"][0]).join(","),
        row(&doc["features"][1]).join(",")
    );
    assert_eq!(text, want);
    assert!(text.contains("\"Say \"\"hej\"\", then\nleave\""), "{text}");
    assert!(text.contains(",\"\","), "an empty text is quoted: {text}");

    // One feature: the header and its row.
    let (status, h, bytes) = call!(app, "/collections/tricky/items/1?f=csv", None::<&str>);
    assert_eq!(status, 200);
    assert!(header(&h, "content-type").starts_with("text/csv"));
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.ends_with(",13.5,55.25\r\n"), "{text}");
}

#[actix_web::test]
async fn empty_pages_and_negotiation() {
    let (state, _dir) = tricky_app_state().await;
    let app = app!(state);
    let empty = "/collections/tricky/items?bbox=0,0,0.1,0.1";
    let (_, h, bytes) = call!(app, &format!("{empty}&f=csv"), None::<&str>);
    assert_eq!(header(&h, "OGC-NumberReturned"), "0");
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert!(
        text.starts_with("id,") && text.ends_with(",x,y\r\n"),
        "{text}"
    );
    for f in ["jsonseq", "ndjson"] {
        let (status, _, bytes) = call!(app, &format!("{empty}&f={f}"), None::<&str>);
        assert_eq!((status, bytes.len()), (200, 0), "{f}");
    }
    let (status, _, bytes) = call!(app, &format!("{empty}&f=fgb"), None::<&str>);
    assert_eq!(status, 200);
    assert_eq!(&bytes[..8], b"fgb\x03fgb\x00");
    assert!(bytes.len() > 12, "the header follows the magic bytes");

    // Accept chooses as f does; f wins; unknown f is 400; nothing offered is 406.
    for (_, _, media) in FORMATS {
        let (status, h, _) = call!(app, "/collections/tricky/items", Some(media));
        assert_eq!(status, 200);
        assert!(header(&h, "content-type").starts_with(media), "{media}");
        let (_, h, _) = call!(app, "/collections/tricky/items/1", Some(media));
        assert!(header(&h, "content-type").starts_with(media), "{media}");
    }
    let (_, h, _) = call!(
        app,
        "/collections/tricky/items?f=json",
        Some("application/flatgeobuf"),
    );
    assert_eq!(header(&h, "content-type"), "application/geo+json");
    let (status, _, _) = call!(app, "/collections/tricky/items?f=xlsx", None::<&str>);
    assert_eq!(status, 400);
    let (status, _, _) = call!(app, "/collections/tricky/items", Some("image/png"));
    assert_eq!(status, 406);
    // Other resources do not offer feature encodings.
    let (status, _, _) = call!(app, "/collections/tricky?f=csv", None::<&str>);
    assert_eq!(status, 400);

    // The collection links to its features in every encoding, GeoJSON first.
    let (_, _, bytes) = call!(app, "/collections/tricky", None::<&str>);
    let doc: Json = serde_json::from_slice(&bytes).expect("json");
    let items: Vec<&str> = doc["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter(|l| l["rel"] == "items")
        .filter_map(|l| l["type"].as_str())
        .collect();
    let mut want = vec!["application/geo+json"];
    want.extend(FORMATS.iter().map(|f| f.2));
    assert_eq!(items, want);

    // The GeoJSON page and feature link to themselves in every encoding.
    for uri in [
        "/collections/tricky/items?limit=1",
        "/collections/tricky/items/1",
    ] {
        let (_, _, bytes) = call!(app, uri, None::<&str>);
        let doc: Json = serde_json::from_slice(&bytes).expect("json");
        let alternates: Vec<(String, String)> = doc["links"]
            .as_array()
            .expect("links")
            .iter()
            .filter(|l| l["rel"] == "alternate")
            .map(|l| {
                (
                    l["type"].as_str().unwrap_or_default().to_string(),
                    l["href"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for (f, _, media) in FORMATS {
            assert!(
                alternates
                    .iter()
                    .any(|(t, href)| t == media && href.contains(&format!("f={f}"))),
                "{uri}: {media} in {alternates:?}"
            );
        }
    }
}
