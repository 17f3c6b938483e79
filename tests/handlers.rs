//! Handler edge cases, in-process (`actix_web::test`, no server process): every bad request
//! is a 4xx with a JSON body `{code, description}` naming what was wrong, and nothing a client
//! sends reaches a 5xx (but a cursor from an instance ahead of this one: 503, retry). Whole-binary tests keep what needs the process (streaming, GDAL
//! round trips, refresh across ingests).

mod common;

use actix_web::test as actix_test;
use actix_web::App;
use common::*;
use serde_json::Value as Json;

/// Three places with a text, an integer, a date and a list, one of them without a geometry.
async fn state() -> (actix_web::web::Data<hamn::api::AppState>, tempfile::TempDir) {
    in_process_state(
        "platser",
        serde_json::json!({
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [13.0, 55.6]},
                 "properties": {"namn": "Ett", "antal": 3, "datum": "2024-05-01", "taggar": ["x", "y"]}},
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [13.5, 55.25]},
                 "properties": {"namn": "Två", "antal": 7, "datum": "2024-06-01", "taggar": []}},
                {"type": "Feature", "geometry": null,
                 "properties": {"namn": "Tre", "antal": null, "datum": null, "taggar": null}},
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

/// `method uri` with `headers`: status, headers, body.
macro_rules! call {
    ($app:expr, $method:expr, $uri:expr, $headers:expr) => {{
        let mut req = actix_test::TestRequest::default().method($method).uri($uri);
        for (k, v) in $headers {
            req = req.insert_header((k, v));
        }
        let resp = actix_test::call_service(&$app, req.to_request()).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = actix_test::read_body(resp).await.to_vec();
        (status, headers, bytes)
    }};
}

const NO_HEADERS: [(&str, &str); 0] = [];

#[actix_web::test]
async fn bad_requests_are_4xx_with_a_json_error_naming_the_problem() {
    let (state, _dir) = state().await;
    let app = app!(state);
    let get = actix_web::http::Method::GET;
    // (uri, status, a word the description must contain)
    let cases: &[(&str, u16, &str)] = &[
        ("/collections/nothing", 404, "nothing"),
        ("/collections/Not%20A%20Slug/items", 404, "collection"),
        ("/collections/platser/items/zzz", 404, "zzz"),
        ("/collections/platser/items?bbox=1,2,3", 400, "bbox"),
        ("/collections/platser/items?bbox=0,91,1,92", 400, "latitude"),
        (
            "/collections/platser/items?bbox-crs=EPSG:3006",
            400,
            "bbox-crs",
        ),
        (
            "/collections/platser/items?bbox=1,2,3,4&bbox-crs=EPSG:9999",
            400,
            "bbox-crs",
        ),
        ("/collections/platser/items?limit=0", 400, "limit"),
        ("/collections/platser/items?limit=ten", 400, "limit"),
        ("/collections/platser/items?offset=-1", 400, "offset"),
        ("/collections/platser/items?cursor=!!!", 400, "cursor"),
        // A cursor of the version served ("1a41"), with an offset as well.
        (
            "/collections/platser/items?cursor=MWE0MQ&offset=1",
            400,
            "cursor",
        ),
        // A cursor of a version newer than this instance has (another instance issued it):
        // not gone but early, 503 with Retry-After.
        (
            "/collections/platser/items?cursor=MTJhNDE",
            503,
            "ask again in a moment",
        ),
        // One of an older version no longer held ("0a41"): gone, with a link to start again.
        (
            "/collections/platser/items?cursor=MGE0MQ",
            410,
            "start the walk again",
        ),
        (
            "/collections/platser/items?datetime=yesterday",
            400,
            "datetime",
        ),
        (
            "/collections/platser/items?datetime=2024-12-31/2024-01-01",
            400,
            "datetime",
        ),
        ("/collections/platser/items?properties=nope", 400, "nope"),
        ("/collections/platser/items?sortby=taggar", 400, "taggar"),
        ("/collections/platser/items?sortby=-", 400, "sortby"),
        ("/collections/platser/items?crs=EPSG:1", 400, "crs"),
        (
            "/collections/platser/items?filter=antal%20%3E",
            400,
            "filter",
        ),
        (
            "/collections/platser/items?filter=ok%C3%A4nd%3D1",
            400,
            "okänd",
        ),
        ("/collections/platser/items?filter=namn%3D1", 400, "filter"),
        (
            "/collections/platser/items?filter-lang=cql2-text",
            400,
            "filter",
        ),
        (
            "/collections/platser/items?filter=antal%3D1&filter-lang=sql",
            400,
            "filter-lang",
        ),
        ("/collections/platser/items?antal=many", 400, "antal"),
        ("/collections/platser/items?unknown=1", 400, "unknown"),
        ("/collections/platser/items?limit=1&limit=2", 400, "limit"),
        ("/collections/platser/items?f=xlsx", 400, "xlsx"),
        ("/collections/platser/items?profile=xml", 400, "profile"),
        (
            "/collections/platser/items?profile=jsonfg&f=csv",
            400,
            "profile",
        ),
        ("/collections/platser/changes", 400, "since"),
        ("/collections/platser/changes?since=ig%C3%A5r", 400, "since"),
        ("/collections/platser/download/zip", 404, "zip"),
        ("/collections/platser/download/fgb?v=soon", 400, "v="),
        ("/collections/platser/tiles/WebMercatorQuad/a/b/c", 400, ""),
        ("/collections/platser/tiles/WebMercatorQuad/2/9/9", 404, ""),
        (
            "/collections/platser/tiles/NoSuchTms/2/1/1",
            404,
            "NoSuchTms",
        ),
        ("/collections/platser/queryables?f=xml", 400, "xml"),
        ("/tileMatrixSets/Nope", 404, "Nope"),
        ("/no/such/path", 404, ""),
    ];
    for (uri, want, word) in cases {
        let (status, h, body) = call!(app, get.clone(), *uri, NO_HEADERS);
        assert_eq!(status, *want, "{uri}: {}", String::from_utf8_lossy(&body));
        let ct = h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            ct.starts_with("application/json") || ct.starts_with("application/problem+json"),
            "{uri}: {ct}"
        );
        let doc: Json = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: {e}"));
        let description = doc["description"].as_str().unwrap_or_default();
        assert!(doc["code"].is_string(), "{uri}: {doc}");
        assert!(
            description.contains(word),
            "{uri}: {description:?} does not name {word:?}"
        );
    }
}

#[actix_web::test]
async fn methods_headers_and_validators() {
    let (state, _dir) = state().await;
    let app = app!(state);
    use actix_web::http::Method;

    // Writes are not allowed on the read API: 405 with Allow.
    let (status, h, _) = call!(app, Method::POST, "/collections/platser/items", NO_HEADERS);
    assert_eq!(status, 405);
    assert_eq!(
        h.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, HEAD, OPTIONS")
    );
    // HEAD: the headers of GET (the HTTP/1 layer, not in-process here, drops the body).
    let (status, h, _) = call!(app, Method::HEAD, "/collections/platser/items", NO_HEADERS);
    assert_eq!(status, 200);
    let etag = h
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_string();
    // The ETag revalidates: 304 without a body.
    let (status, _, body) = call!(
        app,
        Method::GET,
        "/collections/platser/items",
        [("If-None-Match", etag.as_str())]
    );
    assert_eq!((status, body.len()), (304, 0));
    // A Host that is not a host name never reaches a link.
    let (status, _, body) = call!(
        app,
        Method::GET,
        "/collections/platser",
        [("Host", "evil.example/<script>")]
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    // An Accept hamn cannot answer: 406 with a JSON body.
    let (status, _, body) = call!(
        app,
        Method::GET,
        "/collections/platser/items",
        [("Accept", "image/png")]
    );
    assert_eq!(status, 406, "{}", String::from_utf8_lossy(&body));
    let doc: Json = serde_json::from_slice(&body).expect("a JSON error");
    assert!(doc["description"].is_string());
}

#[actix_web::test]
async fn messy_data_is_served_not_refused() {
    let (state, _dir) = state().await;
    let app = app!(state);
    let get = actix_web::http::Method::GET;
    // A feature without a geometry is kept: a null geometry, and no place in a bbox.
    let (_, _, body) = call!(app, get.clone(), "/collections/platser/items", NO_HEADERS);
    let all: Json = serde_json::from_slice(&body).expect("json");
    let id_of = |namn: &str| -> String {
        let f = all["features"]
            .as_array()
            .expect("features")
            .iter()
            .find(|f| f["properties"]["namn"] == namn)
            .unwrap_or_else(|| panic!("no {namn}"));
        match &f["id"] {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    let (a, b, c) = (id_of("Ett"), id_of("Två"), id_of("Tre"));
    let (status, _, body) = call!(
        app,
        get.clone(),
        format!("/collections/platser/items/{c}").as_str(),
        NO_HEADERS
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let f: Json = serde_json::from_slice(&body).expect("json");
    assert!(f["geometry"].is_null(), "{f}");
    assert!(f["properties"]["antal"].is_null());
    let (_, _, body) = call!(
        app,
        get.clone(),
        "/collections/platser/items?bbox=12,55,14,56&sortby=-antal",
        NO_HEADERS
    );
    let page: Json = serde_json::from_slice(&body).expect("json");
    let ids: Vec<String> = page["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["id"].to_string().trim_matches('"').to_string())
        .collect();
    assert_eq!(ids, [b.clone(), a.clone()]);
    // Equality on an attribute, a null sorting last, a filter on a list-free attribute.
    let (_, _, body) = call!(
        app,
        get.clone(),
        "/collections/platser/items?sortby=antal",
        NO_HEADERS
    );
    let page: Json = serde_json::from_slice(&body).expect("json");
    let ids: Vec<String> = page["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["id"].to_string().trim_matches('"').to_string())
        .collect();
    assert_eq!(ids, [a, b.clone(), c]);
    let (status, _, body) = call!(
        app,
        get,
        "/collections/platser/items?namn=Tv%C3%A5",
        NO_HEADERS
    );
    assert_eq!(status, 200);
    let page: Json = serde_json::from_slice(&body).expect("json");
    assert_eq!(page["numberMatched"], 1);
    assert_eq!(page["features"][0]["id"].to_string().trim_matches('"'), b);
}
