//! The HTTP API (actix-web): OGC API – Features Part 1 over the in-memory engine. Owns request
//! parsing, content negotiation, caching headers and the one mapping from errors to HTTP
//! responses (`ApiError`); it never talks SQL or GDAL itself.

pub mod access_log;
pub mod admin;
mod admin_html;
pub mod cache;
pub mod changes;
mod collections;
mod common;
pub mod dcat;
mod download;
pub mod heavy;
mod html;
mod items;
mod jsonfg;
pub mod keys;
pub mod map;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod params;
mod query;
pub mod tiles;

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use crate::engine::Engine;
pub use crate::formats::Encoding;
use crate::store::StoreError;

/// Media types, exactly as clients compare them.
pub const GEOJSON: &str = "application/geo+json";
pub const JSON: &str = "application/json";
pub const OPENAPI: &str = "application/vnd.oai.openapi+json;version=3.0";
pub const SCHEMA_JSON: &str = "application/schema+json";
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

/// Limits of the items endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub default_limit: usize,
    pub max_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default_limit: 10,
            max_limit: 10_000,
        }
    }
}

pub struct AppState {
    pub engine: Arc<Engine>,
    pub limits: Limits,
    pub tiles: crate::tiles::TileCache,
    pub tile_options: crate::tiles::TileOptions,
    /// Where links point: `--public-url`, or the request's host (see `origin`).
    pub origin: origin::Origin,
    pub metrics: Arc<metrics::Metrics>,
    /// Where requests that must look at many features run (see `heavy`).
    pub heavy: Arc<heavy::HeavyPool>,
    /// `/ready` fails when the catalog was last read longer ago than this (None: never on
    /// staleness alone, since serving from memory goes on while the store is away).
    pub ready_max_age: Option<std::time::Duration>,
    /// The publishing side (`/admin`); None serves the read API alone.
    pub admin: Option<admin::Admin>,
    /// API keys for the read API (see `keys`); None or mode off: open.
    pub read_keys: Option<Arc<keys::ReadKeys>>,
    /// The settings of the DCAT-AP-SE catalog at `/datasets/dcat` (see `dcat`).
    pub dcat: Arc<dcat::CatalogSettings>,
    /// A MapLibre style URL the maps draw under the collections instead of the offline
    /// background (`--basemap-style`; see `map`).
    pub basemap_style: Option<String>,
    /// How long responses may be cached (`--cache-max-age`, `--tile-max-age`; see `cache`).
    pub cache: cache::CachePolicy,
    /// Each collection's bulk downloads (see `crate::download`).
    pub downloads: Arc<crate::download::Downloads>,
}

/// Every error a handler can return, with its status. The body is always
/// `{"code": "...", "description": "..."}`; internal details go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotAcceptable(String),
    /// A resource that existed and will not again (a paging cursor's version); `restart` is
    /// where to begin anew.
    #[error("{message}")]
    Gone { message: String, restart: String },
    /// Known but not servable now (a collection whose data cannot be read); clients may retry.
    #[error("{0}")]
    Unavailable(String),
    /// Too much heavy work under way, or this request's took too long (`heavy`).
    #[error("{0}")]
    Overloaded(String),
    /// Asked for a version newer than this instance has loaded (a cursor another instance
    /// issued, moments after an ingest): it will be here within the refresh.
    #[error("{0}")]
    NotYet(String),
    /// No credentials, or credentials that are not valid (401 with WWW-Authenticate).
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Too many attempts; retry after the seconds given.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("internal error")]
    Internal(#[from] StoreError),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Gone { .. } => StatusCode::GONE,
            ApiError::Unavailable(_) | ApiError::Overloaded(_) | ApiError::NotYet(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            ApiError::NotFound(_) => "NotFound",
            ApiError::BadRequest(_) => "InvalidParameterValue",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::Gone { .. } => "Gone",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::Overloaded(_) => "Overloaded",
            ApiError::NotYet(_) => "NotYetLoaded",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::Conflict(_) => "Conflict",
            ApiError::PayloadTooLarge(_) => "PayloadTooLarge",
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                "ServerError"
            }
        };
        let mut body = json!({
            "code": code,
            "description": self.to_string(),
        });
        if let ApiError::Gone { restart, .. } = self {
            body["links"] = json!([{"href": restart, "rel": "first", "type": GEOJSON, "title": "Start the walk again"}]);
        }
        let mut resp = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unavailable(_) => {
                resp.insert_header((header::RETRY_AFTER, "30"));
            }
            ApiError::Overloaded(_) => {
                resp.insert_header((header::RETRY_AFTER, "2"));
            }
            ApiError::NotYet(_) => {
                resp.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::Unauthorized(_) => {
                resp.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"hamn admin\""));
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                resp.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            _ => {}
        }
        resp.json(body)
    }
}

/// Shortens user input quoted back in an error message.
pub fn quote(s: &str) -> String {
    let short: String = s.chars().filter(|c| !c.is_control()).take(80).collect();
    format!("{short:?}")
}

/// The base of every link in a response (see `origin`); a 400 when the headers it would come
/// from are not a plain host and scheme.
pub fn base_url(req: &HttpRequest) -> Result<String, ApiError> {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => state.origin.base(req),
        None => origin::Origin::default().base(req),
    }
}

/// The representations hamn serves for a resource, chosen by `f=` or else `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
    /// Features in another encoding (items and single items only; see `formats`).
    Encoded(Encoding),
}

impl Format {
    /// A short mark for ETags, so two representations of one resource never share one.
    pub fn tag(self) -> &'static str {
        match self {
            Format::Json => "j",
            Format::Html => "h",
            Format::Encoded(e) => e.tag(),
        }
    }
}

/// Content negotiation: `f=json` (or `geojson`) / `f=html`, else `Accept`: HTML when the client
/// lists text/html before any JSON type (browsers do), JSON otherwise. A request that accepts
/// neither is answered 406.
pub fn negotiate(req: &HttpRequest, f: Option<&str>) -> Result<Format, ApiError> {
    negotiate_among(req, f, &[])
}

/// Content negotiation for a resource that is also offered in the `encodings` (features): by
/// `f=` (an encoding's name or media type), else the first media type in `Accept` that names
/// one of them, HTML or JSON.
pub fn negotiate_among(
    req: &HttpRequest,
    f: Option<&str>,
    encodings: &[Encoding],
) -> Result<Format, ApiError> {
    let offered = |e: Option<Encoding>| e.filter(|e| encodings.contains(e));
    if let Some(f) = f {
        return match f {
            "json" | "geojson" | "application/json" | "application/geo+json" => Ok(Format::Json),
            "html" | "text/html" => Ok(Format::Html),
            other => match offered(Encoding::from_f(other)) {
                Some(e) => Ok(Format::Encoded(e)),
                None => Err(ApiError::BadRequest(format!(
                    "unknown format f={}: this server offers json, html{} here",
                    quote(other),
                    encodings
                        .iter()
                        .map(|e| format!(", {}", e.name()))
                        .collect::<String>()
                ))),
            },
        };
    }
    let accept = accept_header(req);
    for media in media_types(accept) {
        match media {
            "text/html" | "application/xhtml+xml" => return Ok(Format::Html),
            ""
            | "*/*"
            | "application/*"
            | "application/json"
            | "application/geo+json"
            | "application/schema+json"
            | "application/vnd.oai.openapi+json" => return Ok(Format::Json),
            other => {
                if let Some(e) = offered(Encoding::from_media_type(other)) {
                    return Ok(Format::Encoded(e));
                }
            }
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "cannot answer Accept: {}; this server offers application/json, application/geo+json{} and text/html here",
        quote(accept),
        encodings
            .iter()
            .map(|e| format!(", {}", e.media_type()))
            .collect::<String>()
    )))
}

/// The request's `Accept` header (`*/*` when it has none or it is not text).
pub fn accept_header(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*")
}

/// The media types an `Accept` header lists, in its order, without parameters (q-values are
/// not weighed: clients list what they prefer first).
pub fn media_types(accept: &str) -> impl Iterator<Item = &str> {
    accept
        .split(',')
        .map(|part| part.split(';').next().unwrap_or("").trim())
}

/// An ETag from the parts that make the response what it is; answers 304 when it matches.
pub fn etag_check(req: &HttpRequest, tag: &str) -> (String, bool) {
    let etag = format!("W/\"{tag}\"");
    let matched = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    (etag, matched)
}

pub fn not_modified(etag: &str) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag.to_string()))
        .finish()
}

fn json_response(body: serde_json::Value, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .body(body.to_string())
}

async fn landing(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let q = params::Params::parse(req.query_string(), &["f"])?;
    let format = negotiate(&req, q.get("f"))?;
    let base = base_url(&req)?;
    if format == Format::Html {
        let layers = state.engine.list();
        let tilejson = format!("{base}/tiles/WebMercatorQuad/tilejson.json");
        return Ok(html::landing(
            &base,
            map::block(&map::MapView {
                layers: &layers,
                tilejson: &tilejson,
                base: &base,
                basemap: state.basemap_style.as_deref(),
                highlight: None,
            }),
        ));
    }
    Ok(json_response(
        json!({
            "title": "hamn",
            "description": "Open geodata from Swedish municipalities, served as OGC API – Features",
            "links": [
                {"href": format!("{base}/"), "rel": "self", "type": JSON, "title": "This document"},
                {"href": format!("{base}/api"), "rel": "service-desc", "type": OPENAPI, "title": "The API definition (OpenAPI 3.0)"},
                {"href": format!("{base}/api.html"), "rel": "service-doc", "type": "text/html", "title": "The API documentation"},
                {"href": format!("{base}/conformance"), "rel": "conformance", "type": JSON, "title": "Conformance classes"},
                {"href": format!("{base}/collections"), "rel": "data", "type": JSON, "title": "Collections"},
                {"href": format!("{base}/tiles"), "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "type": JSON, "title": "Vector tiles of all collections"},
                {"href": format!("{base}/tileMatrixSets"), "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes", "type": JSON, "title": "Tile matrix sets"},
                {"href": format!("{base}/health"), "rel": "status", "type": JSON, "title": "Health"},
                {"href": format!("{base}{}", dcat::PATH), "rel": "describedby", "type": "application/rdf+xml", "title": "DCAT-AP-SE catalog of the collections (for dataportal.se)"},
            ]
        }),
        JSON,
    ))
}

/// Conformance classes: exactly those the tests exercise.
pub const CONFORMANCE: &[&str] = &[
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    // OGC API – Features Part 5 = Common Part 3, Schemas (23-058r2, approved 2026-04-30): the
    // URIs of its conformance class table, under ogcapi-common-3/1.0. /collections/{id}/schema
    // is the "returnables and receivables" resource (receivables: hamn takes no writes);
    // queryables and sortables are the same property schemas (collections::property_schemas).
    "http://www.opengis.net/spec/ogcapi-common-3/1.0/conf/schemas",
    "http://www.opengis.net/spec/ogcapi-common-3/1.0/conf/advanced-property-roles",
    "http://www.opengis.net/spec/ogcapi-common-3/1.0/conf/returnables-and-receivables",
    "http://www.opengis.net/spec/ogcapi-common-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-common-3/1.0/conf/sortables",
    // The drafts' URI (23-058r1, as ogcapi-features-5 until September 2025), the one QGIS's
    // OAPIF provider looks for before it reads a collection's schema.
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/accent-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    // A draft, declared at 0.0 as ldproxy declares Records drafts: /collections is searched
    // with q and bbox (see collections::Search); datetime, type, ids and externalIds are not
    // offered yet.
    "http://www.opengis.net/spec/ogcapi-records-1/0.0/conf/local-resources-catalog",
    // JSON-FG 1.0 on items and features with profile=jsonfg (tests/jsonfg.rs validates them
    // against the standard's schemas).
    jsonfg::JSONFG_CORE,
    jsonfg::JSONFG_TYPES_SCHEMAS,
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
];

async fn conformance(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = params::Params::parse(req.query_string(), &["f"])?;
    negotiate(&req, q.get("f"))?;
    Ok(json_response(json!({ "conformsTo": CONFORMANCE }), JSON))
}

async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let collections = state.engine.list().len();
    let mut unavailable: Vec<serde_json::Value> = state
        .engine
        .failures()
        .into_iter()
        .map(|(id, f)| {
            json!({
                "id": id,
                "version": f.version,
                "reason": f.reason,
                "attempts": f.attempts,
                "retrying": f.retry,
                "since": chrono::DateTime::<chrono::Utc>::from(f.since).to_rfc3339(),
                "servingOlderVersion": state.engine.get(&id).map(|s| s.version()),
            })
        })
        .collect();
    unavailable.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Ok(HttpResponse::Ok().json(json!({
        "status": "ok",
        "store": state.engine.store().kind(),
        "collections": collections,
        "unavailable": unavailable,
    })))
}

/// Readiness: the catalog is loaded (always, once the server listens: start-up waits for it)
/// and, when `--ready-max-refresh-age` is set, was read from the store recently enough. The
/// body tells the truth either way: store reachability, the last refresh, its error, and the
/// collections that are not served.
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let status = state.engine.status();
    let age = status
        .last_ok
        .and_then(|t| t.elapsed().ok())
        .map(|d| d.as_secs());
    let stale = match (state.ready_max_age, age) {
        (Some(max), Some(age)) => age > max.as_secs(),
        (Some(_), None) => true,
        (None, _) => false,
    };
    let body = json!({
        "status": if stale { "not ready" } else { "ready" },
        "store": state.engine.store().kind(),
        "storeReachable": status.last_error.is_none(),
        "lastRefresh": status.last_ok.map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
        "lastRefreshAgeSeconds": age,
        "lastError": status.last_error,
        "collections": state.engine.list().len(),
        "unavailable": state.engine.failures().len(),
    });
    let mut resp = if stale {
        HttpResponse::ServiceUnavailable()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no resource at {}",
        quote(req.path())
    )))
}

/// `OPTIONS` on any path: answered directly (never redirected) with what the API allows.
async fn options() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ALLOW, "GET, HEAD, OPTIONS"))
        .finish()
}

/// A resource answering GET and HEAD with `handler`, OPTIONS directly, and other methods 405.
fn resource<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    use actix_web::guard;
    web::resource(path)
        .route(
            web::route()
                .guard(guard::Any(guard::Get()).or(guard::Head()))
                .to(handler),
        )
        .route(web::route().guard(guard::Options()).to(options))
        .default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET, HEAD, OPTIONS"))
        .json(json!({
            "code": "MethodNotAllowed",
            "description": format!("{} is not allowed here; use GET", req.method()),
        }))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    // actix tries resources in order, one pattern match each: the high-volume paths (tiles,
    // items) first, so a tile request is not matched against every other pattern before its own.
    cfg.service(resource(
        "/collections/{id}/tiles/{tms}/{z}/{y}/{x}",
        tiles::collection_tile,
    ))
    .service(resource("/tiles/{tms}/{z}/{y}/{x}", tiles::dataset_tile))
    .service(resource("/collections/{id}/items", items::items))
    .service(resource("/collections/{id}/items/{feature}", items::item))
    .service(resource("/", landing))
    .service(resource("/conformance", conformance))
    .service(resource("/api", openapi::api))
    .service(resource("/api.html", openapi::api_html))
    .service(resource("/health", health))
    .service(resource(dcat::PATH, dcat::catalog))
    .service(resource("/ready", ready))
    .service(resource("/metrics", metrics::metrics))
    .service(resource("/collections", collections::list))
    .service(resource("/collections/{id}", collections::one))
    .service(resource("/collections/{id}/schema", collections::schema))
    .service(resource(
        "/collections/{id}/queryables",
        collections::queryables,
    ))
    .service(resource(
        "/collections/{id}/sortables",
        collections::sortables,
    ))
    .service(resource("/collections/{id}/changes", changes::changes))
    .service(resource(
        "/collections/{id}/download/{format}",
        download::download,
    ))
    .service(resource(
        "/collections/{id}/tiles",
        tiles::collection_tilesets,
    ))
    .service(resource(
        "/collections/{id}/tiles/{tms}",
        tiles::collection_tileset,
    ))
    .service(resource(
        "/collections/{id}/tiles/{tms}/tilejson.json",
        tiles::collection_tilejson,
    ))
    .service(resource("/tiles", tiles::dataset_tilesets))
    .service(resource("/tiles/{tms}", tiles::dataset_tileset))
    .service(resource(
        "/tiles/{tms}/tilejson.json",
        tiles::dataset_tilejson,
    ))
    .service(resource("/assets/{dir}/{file}", map::asset))
    .service(resource("/tileMatrixSets", tiles::tile_matrix_sets))
    .configure(admin::configure)
    .service(resource("/tileMatrixSets/{tms}", tiles::tile_matrix_set))
    .default_service(web::to(not_found_or_options));
}

async fn not_found_or_options(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.method() == actix_web::http::Method::OPTIONS {
        return Ok(options().await);
    }
    not_found(req).await
}
