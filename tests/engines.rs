//! The two engines side by side: one `hamn serve` holds every demo collection in memory, the
//! other (`--max-features 0`) serves every one from its PostGIS table, both on the same store.
//! The same requests — pages walked by their links, boxes, filters of every kind, sorts,
//! property selections, other CRSs and encodings, single features, tiles — must get the same
//! answers: byte for byte (after the server's own address and the time stamp), tiles
//! included, thinned ones among them (`--tile-max-features 40`).

mod common;

use std::collections::BTreeMap;

use common::{fetch, postgis, start, Server};
use geozero::mvt::{Message, Tile};
use serde_json::Value;

/// Waits until `s` serves `n` collections (any number above 0 when `n` is `None`) and has
/// none it cannot serve; returns how many it serves.
fn wait_serving(s: &Server, n: Option<u64>) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let resp = fetch(&format!("{}/ready", s.base));
        if resp.status() == 200 {
            let doc: Value = resp.into_json().expect("JSON");
            let served = doc["collections"].as_u64().unwrap_or(0);
            let settled = doc["unavailable"] == 0 && served > 0;
            if settled && n.is_none_or(|n| n == served) {
                return served;
            }
        }
        assert!(std::time::Instant::now() < deadline, "not ready");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A response as comparable text: status, the headers that carry content, and the body with
/// the server's address and the time stamp taken out.
fn answer(base: &str, path: &str) -> String {
    let resp = fetch(&format!("{base}{path}"));
    let status = resp.status();
    let mut head = String::new();
    for h in [
        "content-type",
        "ogc-numbermatched",
        "ogc-numberreturned",
        "link",
        "content-crs",
    ] {
        if let Some(v) = resp.header(h) {
            head.push_str(&format!("{h}: {}\n", v.replace(base, "BASE")));
        }
    }
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    let text = match String::from_utf8(body) {
        Ok(t) => t.replace(base, "BASE"),
        Err(e) => format!("{:?}", e.into_bytes()),
    };
    // The time stamp of a page: when it was written, not what it holds.
    let text = match text.find("\"timeStamp\":\"") {
        Some(at) => {
            let end = text[at + 13..]
                .find('"')
                .map_or(text.len(), |e| at + 13 + e + 1);
            format!("{}{}", &text[..at], &text[end..])
        }
        None => text,
    };
    format!("{status}\n{head}\n{text}")
}

fn same(memory: &Server, sql: &Server, path: &str) -> String {
    let a = answer(&memory.base, path);
    let b = answer(&sql.base, path);
    if a != b {
        let at = a
            .char_indices()
            .zip(b.chars())
            .find(|((_, x), y)| x != y)
            .map_or(a.len().min(b.len()), |((i, _), _)| i);
        let part = |t: &str| -> String {
            t.chars()
                .skip(t[..at.min(t.len())].chars().count().saturating_sub(300))
                .take(800)
                .collect()
        };
        panic!(
            "{path}: the engines differ at byte {at}\n--- memory ---\n…{}\n--- postgis ---\n…{}",
            part(&a),
            part(&b)
        );
    }
    a
}

/// A collection document, or the list of them, without the lengths of its download links:
/// each server builds its files when it gets to them (the memory engine's at once, the
/// PostGIS engine's at the first request), so a length may be there on one side only.
fn without_lengths(mut doc: Value) -> Value {
    fn strip(c: &mut Value) {
        if let Some(links) = c["links"].as_array_mut() {
            for l in links.iter_mut().filter(|l| l["rel"] == "enclosure") {
                if let Some(l) = l.as_object_mut() {
                    l.remove("length");
                }
            }
        }
    }
    match doc["collections"].as_array_mut() {
        Some(all) => all.iter_mut().for_each(strip),
        None => strip(&mut doc),
    }
    doc
}

fn same_document(memory: &Server, sql: &Server, path: &str) {
    let (sa, a) = common::get(&format!("{}{path}", memory.base));
    let (sb, b) = common::get(&format!("{}{path}", sql.base));
    let a = without_lengths(a).to_string().replace(&memory.base, "BASE");
    let b = without_lengths(b).to_string().replace(&sql.base, "BASE");
    assert_eq!((sa, a), (sb, b), "{path}");
}

/// What a CQL2 text literal of `v` is.
fn literal(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(format!("'{}'", s.replace('\'', "''"))),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Requests that exercise one collection, made from its own data.
fn requests(base: &str, id: &str) -> Vec<String> {
    let items = format!("/collections/{id}/items");
    let (_, page) = common::get(&format!("{base}{items}?limit=200"));
    let features = page["features"].as_array().cloned().unwrap_or_default();
    let (_, queryables) = common::get(&format!("{base}/collections/{id}/queryables"));
    let props: Vec<(String, String)> = queryables["properties"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v["type"].as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![
        format!("{items}?limit=7"),
        format!("{items}?limit=5&offset=11"),
        format!("{items}?limit=3&f=csv"),
        format!("{items}?limit=4&f=jsonfg"),
        format!("{items}?limit=3&f=fgb"),
        format!("{items}?limit=3&f=ndjson"),
        format!("{items}?limit=5&crs={}", enc("http://www.opengis.net/def/crs/EPSG/0/3006")),
        format!("{items}?limit=5&filter={}", enc("S_INTERSECTS(geometry, POLYGON((12.9 55.5, 13.3 55.5, 13.3 55.8, 12.9 55.8, 12.9 55.5)))")),
        format!("{items}?filter={}", enc("geometry IS NULL")),
    ];
    if let Some(b) = page["features"]
        .as_array()
        .and_then(|f| f.first())
        .and_then(|f| f["geometry"]["coordinates"].as_array().cloned())
        .and_then(|c| Some((c.first()?.as_f64()?, c.get(1)?.as_f64()?)))
    {
        let (x, y) = b;
        out.push(format!(
            "{items}?limit=50&bbox={},{},{},{}",
            x - 0.2,
            y - 0.2,
            x + 0.2,
            y + 0.2
        ));
    }
    for f in features.iter().take(3) {
        let fid = match &f["id"] {
            Value::String(s) => enc(s),
            other => other.to_string(),
        };
        out.push(format!("/collections/{id}/items/{fid}"));
        out.push(format!("/collections/{id}/items/{fid}?f=csv"));
    }
    let mut names: Vec<String> = Vec::new();
    for (name, kind) in &props {
        if name == "geometry" || name == "id" {
            continue;
        }
        names.push(name.clone());
        let quoted = format!("\"{name}\"");
        // A value the data has, and one from further on.
        let values: Vec<&Value> = features
            .iter()
            .map(|f| &f["properties"][name])
            .filter(|v| !v.is_null())
            .collect();
        out.push(format!(
            "{items}?limit=5&filter={}",
            enc(&format!("{quoted} IS NULL"))
        ));
        out.push(format!(
            "{items}?limit=5&filter={}",
            enc(&format!("{quoted} IS NOT NULL"))
        ));
        if kind != "object" && kind != "array" {
            out.push(format!("{items}?limit=9&sortby={}", enc(name)));
            out.push(format!("{items}?limit=9&sortby=-{}", enc(name)));
        }
        let Some(v) = values.get(values.len() / 2).and_then(|v| literal(v)) else {
            continue;
        };
        for op in ["=", "<>", "<", ">="] {
            out.push(format!(
                "{items}?limit=10&filter={}",
                enc(&format!("{quoted} {op} {v}"))
            ));
        }
        out.push(format!(
            "{items}?limit=10&filter={}",
            enc(&format!("NOT ({quoted} = {v}) OR {quoted} IS NULL"))
        ));
        if kind == "string" {
            if let Some(Value::String(s)) = values.first() {
                let start: String = s.chars().take(2).collect();
                out.push(format!(
                    "{items}?limit=10&filter={}",
                    enc(&format!("{quoted} LIKE '{}%'", start.replace('\'', "''")))
                ));
                out.push(format!(
                    "{items}?limit=10&filter={}",
                    enc(&format!(
                        "CASEI({quoted}) = CASEI('{}')",
                        s.to_uppercase().replace('\'', "''")
                    ))
                ));
                out.push(format!(
                    "{items}?limit=10&filter={}",
                    enc(&format!(
                        "ACCENTI({quoted}) LIKE ACCENTI('%{}%')",
                        start.replace('\'', "''")
                    ))
                ));
            }
        }
        if kind == "number" || kind == "integer" {
            out.push(format!(
                "{items}?limit=10&filter={}",
                enc(&format!("{quoted} * 2 BETWEEN 0 AND {v} * 3"))
            ));
        }
        // Equality as a query parameter.
        if let Some(Value::String(s)) = values.first() {
            out.push(format!("{items}?limit=5&{}={}", enc(name), enc(s)));
        }
    }
    if names.len() >= 2 {
        out.push(format!(
            "{items}?limit=5&properties={},{}",
            enc(&names[0]),
            enc(&names[1])
        ));
        out.push(format!(
            "{items}?limit=6&sortby={},-{}",
            enc(&names[1]),
            enc(&names[0])
        ));
    }
    out
}

/// Follows `next` from `start` for `pages` pages on both servers, comparing each, then walks
/// back by `prev` from the last.
fn walk(memory: &Server, sql: &Server, start: &str, pages: usize) {
    let mut path = start.to_string();
    let mut last = String::new();
    for _ in 0..pages {
        let text = same(memory, sql, &path);
        last = path.clone();
        let doc: Value = match text.split_once("\n\n") {
            Some((_, body)) => serde_json::from_str(body).unwrap_or(Value::Null),
            None => Value::Null,
        };
        let next = doc["links"].as_array().and_then(|l| {
            l.iter()
                .find(|l| l["rel"] == "next")
                .and_then(|l| l["href"].as_str())
                .map(|h| h.replace("BASE", ""))
        });
        match next {
            Some(n) => path = n,
            None => break,
        }
    }
    let text = same(memory, sql, &last);
    let doc: Value = text
        .split_once("\n\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    if let Some(prev) = doc["links"].as_array().and_then(|l| {
        l.iter()
            .find(|l| l["rel"] == "prev")
            .and_then(|l| l["href"].as_str())
            .map(|h| h.replace("BASE", ""))
    }) {
        same(memory, sql, &prev);
    }
}

/// A tile's features, layer by layer (id, geometry type, tags): what differs, when two tiles
/// do.
fn tile_features(bytes: &[u8]) -> BTreeMap<String, Vec<String>> {
    let tile = Tile::decode(bytes).expect("an MVT tile");
    let mut out = BTreeMap::new();
    for layer in tile.layers {
        let mut features: Vec<String> = layer
            .features
            .iter()
            .map(|f| {
                let mut tags: Vec<String> = f
                    .tags
                    .chunks(2)
                    .map(|kv| {
                        let key = &layer.keys[kv[0] as usize];
                        let v = &layer.values[kv[1] as usize];
                        let v = v
                            .string_value
                            .clone()
                            .or(v.double_value.map(|d| d.to_string()))
                            .or(v.int_value.map(|i| i.to_string()))
                            .or(v.bool_value.map(|b| b.to_string()))
                            .unwrap_or_else(|| format!("{v:?}"));
                        format!("{key}={v}")
                    })
                    .collect();
                tags.sort();
                format!("{:?} {:?} {}", f.id, f.r#type, tags.join(";"))
            })
            .collect();
        features.sort();
        out.insert(layer.name.clone(), features);
    }
    out
}

fn tile(base: &str, path: &str) -> (u16, Vec<u8>) {
    let resp = fetch(&format!("{base}{path}"));
    let status = resp.status();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    (status, body)
}

/// The same tile from both servers, byte for byte.
fn same_tile(memory: &Server, sql: &Server, path: &str) -> bool {
    let (a, b) = (tile(&memory.base, path), tile(&sql.base, path));
    if a != b {
        let features = |(status, body): &(u16, Vec<u8>)| {
            let all = if *status == 200 {
                tile_features(body)
            } else {
                BTreeMap::new()
            };
            all.into_iter()
                .flat_map(|(l, fs)| fs.into_iter().map(move |f| format!("{l}: {f}")))
                .collect::<std::collections::BTreeSet<_>>()
        };
        let (fa, fb) = (features(&a), features(&b));
        panic!(
            "{path}: the engines differ ({} and {} bytes)\n--- memory only ---\n{:#?}\n--- postgis only ---\n{:#?}",
            a.1.len(),
            b.1.len(),
            fa.difference(&fb).collect::<Vec<_>>(),
            fb.difference(&fa).collect::<Vec<_>>()
        );
    }
    a.0 == 200
}

/// Tile x/y of lon/lat at zoom z (WebMercatorQuad).
fn tile_of(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor();
    let r = lat.to_radians();
    let y = ((1.0 - (r.tan() + 1.0 / r.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
    (x as u32, y as u32)
}

#[test]
fn both_engines_answer_alike() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(store) = rt.block_on(postgis()) else {
        eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
        return;
    };
    // The thinning order, computed in SQL by the PostGIS engine, is the memory engine's.
    rt.block_on(async {
        let client = common::sql(&store).await;
        let sql = format!(
            "SELECT hamn_fid, {} FROM (SELECT generate_series(1, 200000)::bigint AS hamn_fid \
             UNION ALL SELECT unnest(ARRAY[2147483647, 2147483648, 1099511627776, 9007199254740993]::bigint[])) f",
            hamn::tiles::mvt::priority_sql()
        );
        let rows = client.query(&sql, &[]).await.expect("priorities");
        assert_eq!(rows.len(), 200_004);
        for r in rows {
            let (fid, p): (i64, i64) = (r.get(0), r.get(1));
            assert_eq!(p, hamn::tiles::mvt::priority(fid), "priority of fid {fid}");
        }
    });
    let args = store.args();
    let memory = start(&args, &["--tile-max-features", "40"]);
    // The demo data is loaded once the server listens: wait for all of it (it is not served
    // until whole), then for the other server to serve as many.
    let mut n = wait_serving(&memory, None);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(2));
        let now = wait_serving(&memory, None);
        if now == n {
            break;
        }
        n = now;
    }
    let sql = start(
        &args,
        &[
            "--no-demo",
            "--max-features",
            "0",
            "--tile-max-features",
            "40",
        ],
    );
    wait_serving(&sql, Some(n));

    let (_, list) = common::get(&format!("{}/collections", memory.base));
    let ids: Vec<String> = list["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    assert!(ids.len() >= 5, "the demo collections: {ids:?}");
    same_document(&memory, &sql, "/collections");
    let mut compared = 0;
    let mut tiles = 0;
    for id in &ids {
        same_document(&memory, &sql, &format!("/collections/{id}"));
        // The FlatGeobuf download, written from each engine's features (FlatGeobuf holds no
        // time stamp): the same bytes.
        let fgb = |s: &Server| {
            let r = fetch(&format!("{}/collections/{id}/download/fgb", s.base));
            assert_eq!(r.status(), 200, "{id}: the FlatGeobuf download");
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes).expect("body");
            bytes
        };
        let (a, b) = (fgb(&memory), fgb(&sql));
        assert!(
            a.len() > 100,
            "{id}: a FlatGeobuf file of {} bytes",
            a.len()
        );
        assert!(a == b, "{id}: the engines' FlatGeobuf files differ");
        for doc in ["queryables", "sortables", "schema"] {
            same(&memory, &sql, &format!("/collections/{id}/{doc}"));
        }
        for path in requests(&memory.base, id) {
            same(&memory, &sql, &path);
            compared += 1;
        }
        walk(
            &memory,
            &sql,
            &format!("/collections/{id}/items?limit=9"),
            4,
        );
        walk(
            &memory,
            &sql,
            &format!("/collections/{id}/items?limit=9&sortby=-id"),
            3,
        );
        // Tiles over the collection's core area, zoom 6 to 15.
        let (_, doc) = common::get(&format!(
            "{}/collections/{id}/tiles/WebMercatorQuad/tilejson.json",
            memory.base
        ));
        let b: Vec<f64> = doc["bounds"]
            .as_array()
            .map(|b| b.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        if b.len() == 4 {
            let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
            for z in [6u8, 9, 12, 15] {
                let (x, y) = tile_of(cx, cy, z);
                let path = format!("/collections/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}");
                if same_tile(&memory, &sql, &path) {
                    tiles += 1;
                }
                compared += 1;
            }
        }
    }
    eprintln!(
        "{compared} requests answered alike by both engines over {} collections ({tiles} tiles with features)",
        ids.len()
    );
    assert!(tiles >= 5, "only {tiles} tiles had features");
    let (_, doc) = common::get(&format!("{}/collections/{}", sql.base, ids[0]));
    assert!(
        doc.get("engine").is_none(),
        "the OGC document names no engine"
    );
}

/// Writes `features` as a GeoJSON file in `dir` and ingests it as collection `id` with
/// `extra` arguments.
fn ingest_features(
    store: &common::TestStore,
    dir: &std::path::Path,
    id: &str,
    features: Vec<Value>,
    extra: &[&str],
) {
    let file = dir.join(format!("{id}.geojson"));
    std::fs::write(
        &file,
        serde_json::json!({"type": "FeatureCollection", "features": features}).to_string(),
    )
    .expect("write");
    let o = store
        .hamn()
        .args(["ingest", &file.display().to_string(), "-c", id])
        .args(extra)
        .output()
        .expect("ingest");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A read pool on `store`'s database, as `hamn serve` makes it.
async fn read_pool(store: &common::TestStore) -> deadpool_postgres::Pool {
    let url = store.url.clone().expect("a PostGIS store");
    hamn::store::postgis::PostgisStore::connect(&url)
        .await
        .expect("connect")
        .read_pool(None, std::time::Duration::from_secs(30), 2)
        .expect("read pool")
}

/// The PostGIS engine's source of `entry`, which must be current.
async fn open_postgis(
    pool: deadpool_postgres::Pool,
    entry: hamn::catalog::CatalogEntry,
) -> hamn::engine::postgis::PostgisSource {
    use hamn::engine::postgis::{PostgisOptions, PostgisSource, Readers};
    PostgisSource::open(
        Readers::new(pool, Vec::new()),
        entry,
        PostgisOptions::default(),
        hamn::collation::Collation::default(),
    )
    .await
    .expect("open")
    .expect("the current version")
}

/// The memory engine's source of `entry` (collection `id` of `store`), as the server builds it.
async fn open_memory(
    store: &common::TestStore,
    id: &str,
    entry: hamn::catalog::CatalogEntry,
) -> hamn::engine::MemorySource {
    use hamn::engine::{MemorySource, Snapshot};
    let collation = hamn::collation::Collation::default();
    MemorySource::new(Snapshot::build(entry, store.features(id).await, collation))
}

/// The tile of `tms` at zoom `z` that holds the place `lon`, `lat`: from the level's first
/// tile and its span.
fn tile_holding(
    tms: hamn::tiles::tms::Tms,
    z: u8,
    lon: f64,
    lat: f64,
) -> Option<hamn::tiles::tms::TileId> {
    let first = hamn::tiles::tms::TileId::new(tms, z, 0, 0)?;
    let (px, py) = tms.project(lon, lat);
    let [l, _, _, t] = first.bounds();
    let (x, y) = ((px - l) / first.span(), (t - py) / first.span());
    hamn::tiles::tms::TileId::new(tms, z, x.floor() as u32, y.floor() as u32)
}

/// A collection served from PostGIS has its bulk downloads too, built at the first request
/// from its table in batches (60,001 features: more than one batch), whole: ogrinfo counts
/// every feature and every id once, and finds the first and last values.
#[test]
fn a_postgis_collection_has_its_downloads() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(store) = rt.block_on(postgis()) else {
        eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let features: Vec<Value> = (0..60_001)
        .map(|n| {
            serde_json::json!({"type": "Feature", "properties": {"n": n}, "geometry":
                {"type": "Point", "coordinates": [12.4 + f64::from(n % 1000) / 500.0, 55.3 + f64::from(n / 1000) / 60.0]}})
        })
        .collect();
    ingest_features(
        &store,
        dir.path(),
        "punkter",
        features,
        &["--engine", "postgis", "--force", "--mode", "replace"],
    );
    let s = start(&store.args(), &["--no-demo"]);
    wait_serving(&s, Some(1));
    let enclosures = || -> Vec<Value> {
        let (_, doc) = common::get(&format!("{}/collections/punkter", s.base));
        doc["links"]
            .as_array()
            .expect("links")
            .iter()
            .filter(|l| l["rel"] == "enclosure")
            .cloned()
            .collect()
    };
    let links = enclosures();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(
        links.iter().all(|l| l.get("length").is_none()),
        "not built before it is asked for: {links:?}"
    );
    for ext in ["fgb", "gpkg"] {
        let r = fetch(&format!("{}/collections/punkter/download/{ext}", s.base));
        assert_eq!(r.status(), 200, "{ext}");
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes).expect("body");
        let path = dir.path().join(format!("punkter.{ext}"));
        std::fs::write(&path, &bytes).expect("write");
        let o = std::process::Command::new("ogrinfo")
            .args(["-ro", "-q", "-dialect", "OGRSQL", "-sql"])
            .arg("SELECT COUNT(*), COUNT(DISTINCT id), MIN(n), MAX(n) FROM punkter")
            .arg(&path)
            .output()
            .expect("ogrinfo (gdal-bin) is needed: scripts/deps.sh installs it");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        let values: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_once(" = ").map(|(_, v)| v.trim()))
            .collect();
        assert_eq!(values, ["60001", "60001", "0", "60000"], "{ext}: {out}");
    }
    let links = enclosures();
    assert!(
        links
            .iter()
            .all(|l| l["length"].as_u64().is_some_and(|n| n > 0)),
        "built: {links:?}"
    );
}

/// Ingest notes the kinds of a table's ids and its first id (`hamn.table_ids`), so that the
/// PostGIS engine opens a version without scanning every id; an append, whose table also holds
/// the rows it copied, reads them back from the table. A table without a note (ingested before
/// there were notes) is scanned when opened, with the same answer.
#[test]
fn ingest_notes_the_kinds_of_ids() {
    use hamn::engine::Source;

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let Some(store) = postgis().await else {
            eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let ingest = |ids: &[&str], mode: &str| {
            let features: Vec<Value> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    serde_json::json!({"type": "Feature", "properties": {"nr": id},
                        "geometry": {"type": "Point", "coordinates": [13.0 + i as f64 / 100.0, 55.6]}})
                })
                .collect();
            ingest_features(
                &store,
                dir.path(),
                "nummer",
                features,
                &["--id-field", "nr", "--mode", mode, "--force"],
            );
        };
        let pool = read_pool(&store).await;
        let client = common::sql(&store).await;
        let opened = |entry| {
            let pool = pool.clone();
            async move {
                let source = open_postgis(pool, entry).await;
                let s = source.summary();
                (s.ids.integers, s.ids.strings, s.example_id.clone())
            }
        };
        let noted = || async {
            let entry = store.entry("nummer").await;
            let row = client
                .query_one(
                    "SELECT i.integers, i.strings, i.example_id FROM hamn.collections c \
                     JOIN hamn.table_ids i USING (data_table) WHERE c.id = 'nummer'",
                    &[],
                )
                .await
                .expect("a note on the current table");
            let note: (bool, bool, Option<String>) = (row.get(0), row.get(1), row.get(2));
            (entry, note)
        };

        ingest(&["7", "12", "30"], "replace");
        let (entry, note) = noted().await;
        assert_eq!(note, (true, false, Some("7".into())));
        assert_eq!(opened(entry).await, note);

        ingest(&["007", "x-1"], "append");
        let (entry, note) = noted().await;
        assert_eq!(note, (true, true, Some("7".into())), "the kept rows count");
        assert_eq!(opened(entry.clone()).await, note);

        // One note per live table: the replaced tables' notes went with them.
        let notes: i64 = client
            .query_one(
                "SELECT count(*) FROM hamn.table_ids WHERE data_table LIKE 'nummer%'",
                &[],
            )
            .await
            .expect("count")
            .get(0);
        assert_eq!(notes, 1);

        // A table from before the notes: the engine reads its ids.
        client
            .execute("DELETE FROM hamn.table_ids WHERE data_table LIKE 'nummer%'", &[])
            .await
            .expect("delete the note");
        assert_eq!(opened(entry).await, (true, true, Some("7".into())));
    });
}

/// The PostGIS engine's pages use the table's indexes, as `EXPLAIN` shows for the very
/// statements it runs: a small box goes through the GiST index on `geom` (also inside a CQL2
/// filter), the next page after a cursor too, never a scan of the whole table.
#[test]
fn postgis_pages_use_the_indexes() {
    use hamn::engine::{Filter, Query, Start};

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let Some(store) = postgis().await else {
            eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
            return;
        };
        // 40,000 points over Skåne, from a fixed generator.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let features: Vec<Value> = (0..40_000)
            .map(|n| {
                serde_json::json!({"type": "Feature", "properties": {"n": n}, "geometry":
                    {"type": "Point", "coordinates": [12.4 + next() * 2.2, 55.3 + next() * 1.2]}})
            })
            .collect();
        ingest_features(&store, dir.path(), "punkter", features, &[]);

        let entry = store.entry("punkter").await;
        let collation = hamn::collation::Collation::default();
        let source = open_postgis(read_pool(&store).await, entry.clone()).await;
        let client = common::sql(&store).await;
        let explain = |q: Query, start: Start| {
            let (sql, params) = source.page_statement(&q, start, 10).expect("statement");
            let client = &client;
            async move {
                let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let rows = client
                    .query(&format!("EXPLAIN {sql}"), &refs)
                    .await
                    .expect("explain");
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        let small_box = Query {
            bbox: vec![[13.0, 55.6, 13.02, 55.61]],
            ..Query::default()
        };
        let expr = hamn::cql2::parse(
            "S_INTERSECTS(geometry, POLYGON((13.0 55.6, 13.02 55.6, 13.02 55.61, 13.0 55.6))) AND n > 5",
            hamn::cql2::Lang::Text,
        )
        .expect("parses");
        let filter = Filter::bind(&expr, &entry, hamn::crs::Crs::Crs84, &collation).expect("binds");
        let filtered = Query {
            filter: Some(std::sync::Arc::new(filter)),
            ..Query::default()
        };
        for (what, q, start) in [
            ("a small box", small_box.clone(), Start::Offset(0)),
            ("the page after a cursor", small_box, Start::After(20_000)),
            ("a CQL2 S_INTERSECTS", filtered, Start::Offset(0)),
        ] {
            let plan = explain(q, start).await;
            assert!(
                plan.contains("_geom") && !plan.contains("Seq Scan"),
                "{what}: the GiST index is not used:\n{plan}"
            );
        }
    });
}

/// `hamn ingest --engine` chooses the engine per collection, whatever its size, and the
/// choice stays across re-ingests until `--engine auto`; the admin API changes it without an
/// ingest (`PATCH … {"engine": …}`); operators see which engine serves
/// each collection (/metrics, the admin API), the OGC documents do not. The embedded store
/// refuses `--engine postgis`.
#[test]
fn an_operator_chooses_the_engine() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(store) = rt.block_on(postgis()) else {
        eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
        return;
    };
    let file = common::data("bathing/hav_active_bathing_waters.geojson");
    let ingest = |extra: &[&str]| {
        let o = store
            .hamn()
            .args([
                "ingest", &file, "-c", "valda", "--force", "--mode", "replace",
            ])
            .args(extra)
            .output()
            .expect("ingest");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ingest(&["--engine", "postgis"]);
    let s = start(&store.args(), &["--no-demo"]);
    let token = common::make_token(&store.args(), &["--admin"]);
    let engine_of = |want: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let metrics = fetch(&format!("{}/metrics", s.base))
                .into_string()
                .unwrap_or_default();
            let line =
                format!("hamn_collection_engine{{collection=\"valda\",engine=\"{want}\"}} 1");
            if metrics.lines().any(|l| l == line) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not served by {want}: {}",
                metrics
                    .lines()
                    .filter(|l| l.starts_with("hamn_collection_engine"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let admin: Value = ureq::get(&format!("{}/admin/collections", s.base))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .expect("admin collections")
            .into_json()
            .expect("JSON");
        let view = admin["collections"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == "valda"))
            .cloned()
            .expect("valda in the admin list");
        assert_eq!(view["engine"], want, "{view}");
        view["engineChoice"].clone()
    };
    assert_eq!(engine_of("postgis"), "postgis");
    let (status, page) = common::get(&format!("{}/collections/valda/items?limit=2", s.base));
    assert_eq!(status, 200);
    assert_eq!(page["features"].as_array().map(Vec::len), Some(2));
    let (_, doc) = common::get(&format!("{}/collections/valda", s.base));
    assert!(
        !doc.to_string().contains("postgis"),
        "the OGC document names the engine: {doc}"
    );
    // Kept across a re-ingest that does not say, dropped by --engine auto.
    ingest(&[]);
    assert_eq!(engine_of("postgis"), "postgis");
    ingest(&["--engine", "auto"]);
    assert_eq!(engine_of("memory"), Value::Null);

    // The admin API moves it without an ingest, and back; a wrong name is a 400.
    let patch =
        |body: Value| match ureq::request("PATCH", &format!("{}/admin/collections/valda", s.base))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(body)
        {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("PATCH: {e}"),
        };
    assert_eq!(patch(serde_json::json!({"engine": "postgis"})), 200);
    assert_eq!(engine_of("postgis"), "postgis");
    let (status, page) = common::get(&format!("{}/collections/valda/items?limit=2", s.base));
    assert_eq!(
        (status, page["features"].as_array().map(Vec::len)),
        (200, Some(2))
    );
    assert_eq!(patch(serde_json::json!({"title": "Valda badplatser"})), 200);
    assert_eq!(
        engine_of("postgis"),
        "postgis",
        "a metadata change kept the choice"
    );
    assert_eq!(patch(serde_json::json!({"engine": "sql"})), 400);
    assert_eq!(patch(serde_json::json!({"engine": "auto"})), 200);
    assert_eq!(engine_of("memory"), Value::Null);

    // The embedded store has no SQL engine.
    let embedded = common::embedded();
    let o = embedded
        .hamn()
        .args(["ingest", &file, "-c", "valda", "--engine", "postgis"])
        .output()
        .expect("ingest");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("embedded store"), "{err}");
}

/// `--memory-budget` takes collections into memory smallest first while their estimate (three
/// times the table's bytes) fits, and serves the rest from PostGIS; an operator's
/// `--engine memory` is kept whatever the budget; the embedded store refuses the flag.
#[test]
fn a_memory_budget_sends_the_largest_to_postgis() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(store) = rt.block_on(postgis()) else {
        eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
        return;
    };
    let ingest = |file: &str, id: &str, extra: &[&str]| {
        let o = store
            .hamn()
            .args(["ingest", &common::data(file), "-c", id, "--force"])
            .args(extra)
            .output()
            .expect("ingest");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    ingest("synthetic/noise_malmo_lund_synthetic.geojson", "liten", &[]);
    ingest("parking/malmo_miljoparkering.geojson", "stor", &[]);
    ingest(
        "synthetic/traffic_counts_malmo_lund_synthetic.geojson",
        "vald",
        &["--engine", "memory"],
    );
    let sizes: BTreeMap<String, i64> = rt.block_on(async {
        common::sql(&store)
            .await
            .query(
                "SELECT id, pg_table_size(to_regclass('hamn_data.' || quote_ident(data_table))) \
                 FROM hamn.collections",
                &[],
            )
            .await
            .expect("table sizes")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    });
    let engines = |budget: &str| {
        let s = start(&store.args(), &["--no-demo", "--memory-budget", budget]);
        wait_serving(&s, Some(3));
        let metrics = fetch(&format!("{}/metrics", s.base))
            .into_string()
            .expect("metrics");
        let mut found = BTreeMap::new();
        for line in metrics.lines() {
            let Some(rest) = line.strip_prefix("hamn_collection_engine{collection=\"") else {
                continue;
            };
            let (id, rest) = rest.split_once('"').expect("collection label");
            let engine = rest.split('"').nth(1).expect("engine label");
            found.insert(id.to_string(), engine.to_string());
        }
        found
    };
    let of = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // Room for the small one and half the large one: the small one goes in first.
    let budget = 3 * sizes["liten"] + 3 * sizes["stor"] / 2;
    assert!(sizes["stor"] > 10 * sizes["liten"], "{sizes:?}");
    assert_eq!(
        engines(&budget.to_string()),
        of(&[("liten", "memory"), ("stor", "postgis"), ("vald", "memory")])
    );
    assert_eq!(
        engines("1"),
        of(&[
            ("liten", "postgis"),
            ("stor", "postgis"),
            ("vald", "memory")
        ])
    );
    assert_eq!(
        engines("1T"),
        of(&[("liten", "memory"), ("stor", "memory"), ("vald", "memory")])
    );

    let embedded = common::embedded();
    let mut child = embedded
        .hamn()
        .args(["serve", "--memory-budget", "1G", "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the embedded store served with --memory-budget");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    assert!(!status.success());
    assert!(
        err.contains("--memory-budget needs a PostGIS store"),
        "{err}"
    );
}

/// The PostGIS engine writes a tile straight from its rows, borrowing their values, where
/// the memory engine writes it from its snapshot: both tiles must be the same bytes for every
/// kind of attribute value (text, numbers, booleans, dates, date-times, lists as JSON, SQL
/// nulls), for text and numeric ids, points, lines and polygons and
/// features without geometry, thinned or not, in both tile matrix sets.
#[test]
fn tiles_of_every_kind_of_value_agree() {
    use hamn::catalog::AttrType;
    use hamn::engine::{Query, Source};
    use hamn::tiles::mvt::TileOptions;
    use hamn::tiles::tms::Tms;

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let Some(store) = postgis().await else {
            eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // Lists are JSON attributes (GDAL reads them as string and real lists).
        let extra = [
            serde_json::json!(["a", "ö"]),
            serde_json::json!(["brygga", "bad \"strand\""]),
            serde_json::json!([]),
            Value::Null,
        ];
        let features: Vec<Value> = (0..300u32)
            .map(|n| {
                let (lon, lat) = (13.0 + f64::from(n % 20) / 400.0, 55.6 + f64::from(n / 20) / 800.0);
                let geometry = match n % 10 {
                    0 => Value::Null,
                    1 => serde_json::json!({"type": "LineString",
                        "coordinates": [[lon, lat], [lon + 0.01, lat + 0.004]]}),
                    2 => serde_json::json!({"type": "Polygon", "coordinates": [[[lon, lat],
                        [lon + 0.004, lat], [lon + 0.004, lat + 0.002], [lon, lat]]]}),
                    _ => serde_json::json!({"type": "Point", "coordinates": [lon, lat]}),
                };
                let id = if n % 7 == 0 { format!("B-{n}") } else { n.to_string() };
                let props = serde_json::json!({
                    "nr": id,
                    "namn": if n % 5 == 0 { Value::Null } else { format!("Plats {} å ä ö", n % 13).into() },
                    "antal": n % 17,
                    "andel": f64::from(n) / 8.0,
                    "öppen": n % 3 == 0,
                    "dag": format!("2024-06-{:02}", 1 + n % 28),
                    "tid": format!("2024-06-{:02}T{:02}:30:00+02:00", 1 + n % 28, n % 24),
                    "extra": extra[(n % 4) as usize],
                    "djup": [1.5, f64::from(n) / 4.0],
                });
                serde_json::json!({"type": "Feature", "properties": props, "geometry": geometry})
            })
            .collect();
        ingest_features(&store, dir.path(), "blandat", features, &["--id-field", "nr", "--force"]);

        let entry = store.entry("blandat").await;
        let kinds: Vec<AttrType> = entry.attributes.iter().map(|a| a.kind).collect();
        for kind in [AttrType::Text, AttrType::Integer, AttrType::Real, AttrType::Boolean, AttrType::Date, AttrType::DateTime, AttrType::Json] {
            assert!(kinds.contains(&kind), "no {kind:?} attribute: {:?}", entry.attributes);
        }
        let memory = open_memory(&store, "blandat", entry.clone()).await;
        let sql = open_postgis(read_pool(&store).await, entry).await;

        let mut compared = 0;
        for max_features in [10_000, 25, 3] {
            let opts = TileOptions { max_features, ..TileOptions::default() };
            for tms in Tms::ALL {
                for z in 8..=15u8 {
                    let Some(tile) = tile_holding(tms, z, 13.02, 55.62) else { continue };
                    let q = Query::default();
                    let a = memory.tile(tile, opts, &q).await.expect("memory tile");
                    let b = sql.tile(tile, opts, &q).await.expect("PostGIS tile");
                    assert_eq!(a, b, "{tms:?} {z} (max {max_features}): the engines' tiles differ");
                    compared += usize::from(a.is_some());
                }
            }
        }
        assert!(compared >= 20, "only {compared} tiles had features");
    });
}

/// A tile with far more candidates than it may show is read one priority level at a time
/// (each level with its partial index) and must come out as the memory engine's tile: 6,000
/// points, caps that take one to several levels and cut inside one, both tile matrix sets.
/// Then the same tiles from the table as it was before ingest stored the priority (no column,
/// no levels): the thinning order computed from the fid instead.
#[test]
fn crowded_tiles_read_by_level_agree() {
    use hamn::engine::{Query, Source};
    use hamn::tiles::mvt::TileOptions;
    use hamn::tiles::tms::Tms;

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let Some(store) = postgis().await else {
            eprintln!("skipped: no PostGIS (HAMN_TEST_DATABASE_URL)");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // Scattered by a fixed sequence (no two points alike), denser towards one corner.
        let features: Vec<Value> = (0..6000u32)
            .map(|n| {
                let a = f64::from(n.wrapping_mul(2_654_435_761) % 10_007) / 10_007.0;
                let b = f64::from(n.wrapping_mul(40_503) % 9_973) / 9_973.0;
                let (lon, lat) = (13.0 + 0.3 * a * a, 55.55 + 0.15 * b * b);
                serde_json::json!({"type": "Feature",
                    "properties": {"n": n, "namn": format!("p{}", n % 97)},
                    "geometry": {"type": "Point", "coordinates": [lon, lat]}})
            })
            .collect();
        ingest_features(&store, dir.path(), "trangsel", features, &["--force"]);
        let entry = store.entry("trangsel").await;
        let memory = open_memory(&store, "trangsel", entry.clone()).await;
        let client = common::sql(&store).await;
        let table: String = client
            .query_one("SELECT data_table FROM hamn.collections WHERE id = 'trangsel'", &[])
            .await
            .expect("table")
            .get(0);
        let levels: Vec<String> = (0..hamn::store::postgis::PRIORITY_LEVELS)
            .map(|j| hamn::store::postgis::level_index(&table, j))
            .collect();
        let level_scans = || async {
            client
                .query_one(
                    "SELECT coalesce(sum(idx_scan), 0)::bigint FROM pg_stat_user_indexes \
                     WHERE schemaname = 'hamn_data' AND indexrelname = ANY($1)",
                    &[&levels],
                )
                .await
                .expect("index statistics")
                .get::<_, i64>(0)
        };
        let compare = |sql: hamn::engine::postgis::PostgisSource| {
            let memory = &memory;
            async move {
                let mut compared = 0;
                for max_features in [1500, 200, 30] {
                    let opts = TileOptions { max_features, ..TileOptions::default() };
                    for tms in Tms::ALL {
                        for z in 7..=14u8 {
                            for (lon, lat) in [(13.01, 55.56), (13.05, 55.58), (13.2, 55.65)] {
                                let Some(tile) = tile_holding(tms, z, lon, lat) else { continue };
                                let q = Query::default();
                                let a = memory.tile(tile, opts, &q).await.expect("memory tile");
                                let b = sql.tile(tile, opts, &q).await.expect("PostGIS tile");
                                assert_eq!(a, b, "{tms:?} {z} at {lon},{lat} (max {max_features}): the engines' tiles differ");
                                compared += usize::from(a.is_some());
                            }
                        }
                    }
                }
                compared
            }
        };
        let before = level_scans().await;
        let pool = read_pool(&store).await;
        let compared = compare(open_postgis(pool.clone(), entry.clone()).await).await;
        assert!(compared >= 60, "only {compared} tiles had features");
        // A backend hands its statistics over when it ends.
        pool.close();
        drop(pool);
        let mut scans = before;
        for _ in 0..50 {
            scans = level_scans().await;
            if scans > before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert!(scans > before, "no tile was read by priority level");

        // A table from before the priority was stored: dropping the column drops the levels.
        client
            .batch_execute(&format!("ALTER TABLE hamn_data.\"{table}\" DROP COLUMN hamn_prio"))
            .await
            .expect("drop the priority");
        let compared = compare(open_postgis(read_pool(&store).await, entry).await).await;
        assert!(compared >= 60, "only {compared} tiles had features");
    });
}
