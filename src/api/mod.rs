//! The HTTP API (actix-web). For now: the landing page, health, and the collection catalog as
//! OGC API – Features collection documents. Owns request parsing and the one mapping from
//! errors to HTTP responses (`ApiError`); it never talks SQL or GDAL itself.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Value as Json};

use crate::catalog::{CatalogEntry, CollectionId};
use crate::store::{Store, StoreError};

pub struct AppState {
    pub store: Arc<dyn Store>,
}

/// Every error a handler can return, with its status. The body is always
/// `{"code": "...", "description": "..."}`; internal details go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error")]
    Internal(#[from] StoreError),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            ApiError::NotFound(_) => "NotFound",
            ApiError::BadRequest(_) => "InvalidParameterValue",
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                "ServerError"
            }
        };
        HttpResponse::build(self.status_code()).json(json!({
            "code": code,
            "description": self.to_string(),
        }))
    }
}

fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

async fn landing(req: HttpRequest) -> HttpResponse {
    let base = base_url(&req);
    HttpResponse::Ok().json(json!({
        "title": "hamn",
        "description": "Open geodata from Swedish municipalities",
        "links": [
            {"href": format!("{base}/"), "rel": "self", "type": "application/json", "title": "This document"},
            {"href": format!("{base}/collections"), "rel": "data", "type": "application/json", "title": "Collections"},
            {"href": format!("{base}/health"), "rel": "status", "type": "application/json", "title": "Health"},
        ]
    }))
}

async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let collections = state.store.list().await?.len();
    Ok(HttpResponse::Ok().json(json!({
        "status": "ok",
        "store": state.store.kind(),
        "collections": collections,
    })))
}

/// An OGC API – Features collection document for a catalog entry.
pub fn collection_json(entry: &CatalogEntry, base: &str) -> Json {
    let id = &entry.id;
    let mut doc = json!({
        "id": id,
        "title": entry.meta.title,
        "description": entry.meta.description,
        "keywords": entry.meta.keywords,
        "itemType": "feature",
        "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
        "storageCrs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
        "itemCount": entry.feature_count,
        "version": entry.version,
        "theme": entry.meta.theme,
        "publisher": entry.meta.publisher,
        "license": entry.meta.licence,
        "source": {"name": entry.source.name, "sha256": entry.source.sha256, "crs": entry.source.crs, "layer": entry.source.layer},
        "geometryTypes": entry.geometry_types,
        "attributes": entry.attributes.iter().map(|a| json!({"name": a.name, "type": a.kind})).collect::<Vec<_>>(),
        "created": entry.created,
        "updated": entry.updated,
        "links": [
            {"href": format!("{base}/collections/{id}"), "rel": "self", "type": "application/json"},
        ],
    });
    let mut extent = serde_json::Map::new();
    if let Some(b) = entry.extent {
        extent.insert(
            "spatial".into(),
            json!({"bbox": [b.0], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}),
        );
    }
    if let Some([a, b]) = entry.temporal_extent {
        extent.insert("temporal".into(), json!({"interval": [[a, b]], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}));
    }
    if !extent.is_empty() {
        doc["extent"] = Json::Object(extent);
    }
    doc
}

async fn collections(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&req);
    let list = state.store.list().await?;
    Ok(HttpResponse::Ok().json(json!({
        "links": [{"href": format!("{base}/collections"), "rel": "self", "type": "application/json"}],
        "collections": list.iter().map(|e| collection_json(e, &base)).collect::<Vec<_>>(),
    })))
}

async fn collection(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let raw = path.into_inner();
    // An id that is not a valid slug cannot name a collection: 404, without touching the store.
    let not_found = || {
        ApiError::NotFound(format!(
            "no collection {:?}",
            raw.chars().take(80).collect::<String>()
        ))
    };
    let id: CollectionId = raw.parse().map_err(|_| not_found())?;
    let entry = state.store.get(&id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(collection_json(&entry, &base_url(&req))))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no resource at {}",
        req.path().chars().take(200).collect::<String>()
    )))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(landing))
        .route("/health", web::get().to(health))
        .route("/collections", web::get().to(collections))
        .route("/collections/{id}", web::get().to(collection))
        .default_service(web::to(not_found));
}
