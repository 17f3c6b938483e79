//! The admin API under `/admin`: collections (create, describe, delete), uploads, source
//! URLs, catalogs to harvest, and the jobs that do the work. Every call needs a bearer token
//! (`auth`); what a token may do is its scope. Documented in its own OpenAPI document
//! (`/admin/api`), apart from the public OGC one.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::{quote, ApiError, AppState};
use crate::auth::{AuthError, Scope, TokenRecord, Tokens};
use crate::catalog::{CollectionId, Description, EngineChoice};
use crate::publish::records::{JobRecord, SourceDoc};
use crate::publish::{PublishError, Publisher, UploadOptions};
use crate::store::{IngestMode, StoreError};
use crate::theme::{SourceOrg, Theme};

/// What the admin API needs besides the read API's state.
#[derive(Clone)]
pub struct Admin {
    pub publisher: Arc<Publisher>,
    pub tokens: Arc<Tokens>,
}

/// The admin OpenAPI document, kept as a file so it is reviewed like code.
const OPENAPI: &str = include_str!("../../openapi/admin.json");

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::NotFound(m) => ApiError::NotFound(m),
            PublishError::Conflict(m) => ApiError::Conflict(m),
            PublishError::BadRequest(m) => ApiError::BadRequest(m),
            PublishError::Store(e) => store_error(e),
            PublishError::Io(m) => ApiError::Internal(StoreError::Task(m)),
        }
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(id) => ApiError::NotFound(format!("no collection {id}")),
        StoreError::AlreadyExists(id) => {
            ApiError::Conflict(format!("collection {id} exists already"))
        }
        other => ApiError::Internal(other),
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid => ApiError::Unauthorized(e.to_string()),
            AuthError::TooManyFailures(s) => ApiError::TooManyRequests {
                message: e.to_string(),
                retry_after: s,
            },
            AuthError::Forbidden(_) => ApiError::Forbidden(e.to_string()),
            AuthError::Store(s) => ApiError::Internal(s),
        }
    }
}

fn admin(state: &AppState) -> Result<&Admin, ApiError> {
    state
        .admin
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this server has no admin API".into()))
}

/// The token of the request: `Authorization: Bearer <token>`.
async fn caller(req: &HttpRequest, state: &AppState) -> Result<TokenRecord, ApiError> {
    let admin = admin(state)?;
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or(AuthError::Missing)?;
    let client = state.origin.client_ip(req);
    let record = admin.tokens.verify(token, client).await?;
    if !record.scope.may_publish() {
        return Err(AuthError::Forbidden(format!(
            "use the admin API: it is a key for the read API ({})",
            record.scope
        ))
        .into());
    }
    Ok(record)
}

fn need_admin(token: &TokenRecord) -> Result<(), ApiError> {
    if token.scope.is_admin() {
        Ok(())
    } else {
        Err(AuthError::Forbidden(format!(
            "do this: it needs the admin scope (this token has {})",
            token.scope
        ))
        .into())
    }
}

fn need_write(token: &TokenRecord, id: &CollectionId) -> Result<(), ApiError> {
    if token.scope.may_write(id) {
        return Ok(());
    }
    let message = match token.scope.source_org() {
        // A municipality's token for a shared theme collection: not the whole of it.
        Some(org) if token.scope.may_write_part(id, org) => format!(
            "change collection {id} as a whole: it may change source {org}'s part of it only \
             (POST /admin/themes/{id}/sources/{org}/upload)"
        ),
        _ => format!("change collection {id} (this token has {})", token.scope),
    };
    Err(AuthError::Forbidden(message).into())
}

/// May the token upload or remove publisher `org`'s part of the theme collection `id`?
fn need_part(token: &TokenRecord, id: &CollectionId, org: &SourceOrg) -> Result<(), ApiError> {
    if token.scope.may_write_part(id, org) {
        Ok(())
    } else {
        Err(AuthError::Forbidden(format!(
            "change source {org}'s part of {id} (this token has {})",
            token.scope
        ))
        .into())
    }
}

fn collection_id(raw: &str) -> Result<CollectionId, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "collection id {}: use a-z, 0-9 and '-', starting with a letter, at most 48",
            quote(raw)
        ))
    })
}

/// Parses a JSON body strictly (unknown fields are refused: a typo must not pass silently).
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the JSON body does not fit: {e}")))
}

/// A JSON request body, at most 1 MiB (read here, not by an extractor, so that every error
/// is one of ours, with a JSON body).
async fn small_body(mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    const MAX: usize = 1 << 20;
    let mut out = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the request body broke off: {e}")))?;
        if out.len() + chunk.len() > MAX {
            return Err(ApiError::PayloadTooLarge(
                "a JSON body here is at most 1 MiB".into(),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn no_store(mut resp: HttpResponse) -> HttpResponse {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

fn ok(value: serde_json::Value) -> HttpResponse {
    no_store(HttpResponse::Ok().json(value))
}

fn accepted(job: &JobRecord, base: &str) -> HttpResponse {
    no_store(
        HttpResponse::Accepted()
            .insert_header((header::LOCATION, format!("{base}/admin/jobs/{}", job.id)))
            .json(job),
    )
}

async fn whoami(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    Ok(ok(json!({
        "id": token.id,
        "name": token.name,
        "scope": token.scope,
        "created": token.created,
    })))
}

async fn openapi(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let base = super::base_url(&req)?;
    let mut doc: serde_json::Value = serde_json::from_str(OPENAPI)
        .map_err(|e| ApiError::Internal(StoreError::Task(format!("openapi/admin.json: {e}"))))?;
    doc["servers"] = json!([{"url": base}]);
    Ok(HttpResponse::Ok()
        .content_type(super::OPENAPI)
        .body(doc.to_string()))
}

/// `GET /admin/collections`: every collection with its source and its last job.
async fn list_collections(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let publisher = &admin(&state)?.publisher;
    let entries = publisher.store().list().await.map_err(store_error)?;
    let sources = publisher.sources().await?;
    let jobs = publisher.jobs().await?;
    let none: [(String, SourceDoc); 0] = [];
    let out: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            // Every collection is listed (the read API shows them all anyway), but a source
            // URL (which may carry a key of its own) and jobs only to who may write it.
            if token.scope.may_write(&e.id) {
                collection_view(&state, e, &sources, &jobs)
            } else {
                collection_view(&state, e, &none, &[])
            }
        })
        .collect();
    Ok(ok(json!({ "collections": out })))
}

/// A collection as the admin API shows it (list, create, PATCH): its metadata, counts,
/// versions stored and served, its source and its last job.
fn collection_view(
    state: &AppState,
    e: &crate::catalog::CatalogEntry,
    sources: &[(String, SourceDoc)],
    jobs: &[JobRecord],
) -> serde_json::Value {
    let source = sources.iter().find_map(|(_, s)| match s {
        SourceDoc::Url(u) if u.collection == e.id => Some(u),
        _ => None,
    });
    let last_job = jobs.iter().find(|j| j.kind.collection() == Some(&e.id));
    let served = state.engine.get(&e.id);
    json!({
        "id": e.id,
        "title": e.meta.title,
        "description": e.meta.description,
        "keywords": e.meta.keywords,
        "theme": e.meta.theme,
        "publisher": e.meta.publisher,
        "licence": e.meta.licence,
        "conformsTo": e.meta.conforms_to,
        "language": e.meta.language,
        "featureCount": e.feature_count,
        "version": e.version,
        "servedVersion": served.as_ref().map(|s| s.version()),
        "engine": served.as_ref().map(|s| s.engine().name()),
        "engineChoice": e.engine,
        "updated": e.updated,
        "sourceFile": e.source.name,
        "source": source,
        "lastJob": last_job,
    })
}

/// The view of one collection just changed.
async fn view_of(
    state: &AppState,
    e: &crate::catalog::CatalogEntry,
) -> Result<serde_json::Value, ApiError> {
    let publisher = &admin(state)?.publisher;
    let sources = publisher.sources().await?;
    let jobs: Vec<JobRecord> = publisher
        .jobs()
        .await?
        .into_iter()
        .filter(|j| j.kind.collection() == Some(&e.id))
        .take(1)
        .collect();
    Ok(collection_view(state, e, &sources, &jobs))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewCollection {
    id: String,
    title: Option<String>,
    description: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    theme: Option<String>,
    publisher: Option<String>,
    licence: Option<String>,
    #[serde(default)]
    conforms_to: Vec<String>,
    language: Option<String>,
}

/// A language tag (sv, en …) as given, checked.
fn language(value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .map(|l| {
            crate::catalog::language_tag(&l)
                .map(str::to_string)
                .map_err(ApiError::BadRequest)
        })
        .transpose()
}

fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::BadRequest(format!(
            "{field}: at most {max} characters"
        ))),
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => Err(
            ApiError::BadRequest(format!("{field}: control characters are not allowed")),
        ),
        other => Ok(other
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())),
    }
}

fn texts(field: &str, values: Vec<String>, max: usize) -> Result<Vec<String>, ApiError> {
    if values.len() > 100 {
        return Err(ApiError::BadRequest(format!("{field}: at most 100")));
    }
    values
        .into_iter()
        .map(|v| text(field, Some(v), max))
        .filter_map(|r| r.transpose())
        .collect()
}

/// `POST /admin/collections`: an empty collection with its metadata, to upload into or to
/// give a source URL.
async fn create_collection(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let new: NewCollection = body(&small_body(payload).await?)?;
    let id = collection_id(&new.id)?;
    need_write(&token, &id)?;
    let meta = Description {
        title: text("title", new.title, 200)?.unwrap_or_else(|| id.to_string()),
        description: text("description", new.description, 10_000)?,
        keywords: texts("keywords", new.keywords, 100)?,
        theme: text("theme", new.theme, 200)?,
        publisher: text("publisher", new.publisher, 200)?,
        licence: text("licence", new.licence, 200)?,
        conforms_to: texts("conformsTo", new.conforms_to, 500)?,
        language: language(new.language)?,
    };
    let store = admin(&state)?.publisher.store().clone();
    let entry = crate::ingest::create_empty(store.as_ref(), &id, meta)
        .await
        .map_err(|e| match e {
            crate::ingest::IngestError::Store(s) => store_error(s),
            other => ApiError::BadRequest(other.to_string()),
        })?;
    let base = super::base_url(&req)?;
    let view = view_of(&state, &entry).await?;
    Ok(no_store(
        HttpResponse::Created()
            .insert_header((header::LOCATION, format!("{base}/collections/{id}")))
            .json(view),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MetaPatch {
    title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    keywords: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    theme: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    publisher: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    licence: Option<Option<String>>,
    conforms_to: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    language: Option<Option<String>>,
    /// `memory`, `postgis` or `auto` (the size and `--memory-budget` decide).
    engine: Option<String>,
}

/// A field that is absent (keep), null (clear) or a value (set).
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /admin/collections/{id}`: change metadata; the features stay.
async fn patch_collection(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let id = collection_id(&path)?;
    need_write(&token, &id)?;
    let patch: MetaPatch = body(&small_body(payload).await?)?;
    let store = admin(&state)?.publisher.store().clone();
    let entry = store
        .get(&id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("no collection {id}")))?;
    let mut meta = entry.meta;
    if let Some(t) = text("title", patch.title, 200)? {
        meta.title = t;
    }
    if let Some(v) = patch.description {
        meta.description = text("description", v, 10_000)?;
    }
    if let Some(v) = patch.keywords {
        meta.keywords = texts("keywords", v, 100)?;
    }
    if let Some(v) = patch.theme {
        meta.theme = text("theme", v, 200)?;
    }
    if let Some(v) = patch.publisher {
        meta.publisher = text("publisher", v, 200)?;
    }
    if let Some(v) = patch.licence {
        meta.licence = text("licence", v, 200)?;
    }
    if let Some(v) = patch.conforms_to {
        meta.conforms_to = texts("conformsTo", v, 500)?;
    }
    if let Some(v) = patch.language {
        meta.language = language(v)?;
    }
    let engine = match patch.engine.as_deref() {
        None => entry.engine,
        Some("auto") => None,
        Some(other) => Some(EngineChoice::parse(other).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "engine: {other:?} is not one of \"memory\", \"postgis\", \"auto\""
            ))
        })?),
    };
    if engine == Some(EngineChoice::Postgis) && store.postgis().is_none() {
        return Err(ApiError::BadRequest(
            "engine \"postgis\" needs a PostGIS store: the embedded store has no SQL engine, \
             and serves every collection from memory"
                .into(),
        ));
    }
    let entry = crate::changes::describe(store.as_ref(), &id, meta, engine)
        .await
        .map_err(store_error)?;
    Ok(ok(view_of(&state, &entry).await?))
}

/// `DELETE /admin/collections/{id}`: the collection, its data and its source.
async fn delete_collection(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    need_admin(&token)?;
    let id = collection_id(&path)?;
    let publisher = &admin(&state)?.publisher;
    // The source first, and its running jobs stopped: otherwise the scheduler, or a refresh
    // under way, could bring the collection back.
    publisher.delete_source(id.as_str()).await?;
    publisher.cancel_collection(&id);
    publisher.store().delete(&id).await.map_err(store_error)?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UploadQuery {
    mode: Option<IngestMode>,
    file_name: Option<String>,
    layer: Option<String>,
    source_crs: Option<String>,
    id_field: Option<String>,
    encoding: Option<String>,
}

/// `POST /admin/collections/{id}/upload`: a file as the raw body (name in `fileName`) or as
/// the `file` part of multipart/form-data. Streamed to the spool with a size limit, then
/// ingested by a job (202 with the job).
async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let id = collection_id(&path)?;
    need_write(&token, &id)?;
    let q: UploadQuery = serde_urlencoded_strict(req.query_string())?;
    let publisher = admin(&state)?.publisher.clone();
    let mode = q.mode.unwrap_or(IngestMode::Replace);
    if mode == IngestMode::Create
        && publisher
            .store()
            .get(&id)
            .await
            .map_err(store_error)?
            .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "collection {id} exists already: upload with mode=replace or mode=append"
        )));
    }
    let spooled = receive_upload(&req, payload, &publisher, q.file_name.as_deref()).await?;
    let job = publisher
        .upload(
            id,
            spooled,
            UploadOptions {
                mode,
                layer: q.layer,
                source_crs: q.source_crs,
                id_field: q.id_field,
                encoding: q.encoding,
                theme: None,
            },
            &token.id,
        )
        .await?;
    Ok(accepted(&job, &super::base_url(&req)?))
}

/// The file of an upload: the raw body, named by `fileName`, or the `file` part of
/// multipart/form-data; streamed to the spool with the server's size limit.
async fn receive_upload(
    req: &HttpRequest,
    payload: web::Payload,
    publisher: &Publisher,
    file_name: Option<&str>,
) -> Result<crate::publish::Spooled, ApiError> {
    let limit = publisher.options().max_upload_bytes;
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        receive_multipart(req, payload, publisher, file_name, limit).await
    } else {
        let name = file_name.ok_or_else(|| {
            ApiError::BadRequest(
                "give the file's name with ?fileName=parkering.geojson (its extension tells the format), or send multipart/form-data".into(),
            )
        })?;
        receive(payload, publisher, name, limit).await
    }
}

/// `GET /admin/themes`: the themes hamn ships, with their attributes (what a publisher's
/// columns may be mapped to).
async fn list_themes(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller(&req, &state).await?;
    let themes: Vec<serde_json::Value> = crate::theme::themes()
        .values()
        .map(|t| {
            let attributes: Vec<serde_json::Value> = t
                .attributes
                .iter()
                .map(|a| {
                    json!({
                        "name": a.name,
                        "type": a.kind,
                        "required": a.required,
                        "codes": a.codes,
                        "format": a.format,
                        "description": a.description,
                    })
                })
                .collect();
            json!({
                "id": t.id,
                "title": t.title,
                "titleEn": t.title_en,
                "description": t.description,
                "descriptionEn": t.description_en,
                "version": t.version,
                "conformsTo": t.conforms_to,
                "specification": t.specification,
                "geometry": t.geometry,
                "idAttribute": t.id_attribute,
                "attributes": attributes,
            })
        })
        .collect();
    Ok(ok(json!({ "themes": themes })))
}

/// The theme, its collection and the publisher of a `/admin/themes/{theme}/sources/{org}`
/// path, once the token is found to may change that part.
fn part(
    token: &TokenRecord,
    theme: &str,
    org: &str,
) -> Result<(&'static Theme, CollectionId, SourceOrg), ApiError> {
    let theme = crate::theme::find(theme).map_err(|_| {
        ApiError::NotFound(format!(
            "no theme {} (themes: {})",
            quote(theme),
            crate::theme::themes()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let org: SourceOrg = org.parse().map_err(ApiError::BadRequest)?;
    let id = collection_id(&theme.id)?;
    need_part(token, &id, &org)?;
    Ok((theme, id, org))
}

/// A collection with the theme's id that is not the theme's (made by an ordinary upload):
/// a part cannot go into it, nor come out of it.
async fn check_theme_collection(
    publisher: &Publisher,
    theme: &Theme,
    id: &CollectionId,
) -> Result<Option<crate::catalog::CatalogEntry>, ApiError> {
    let entry = publisher.store().get(id).await.map_err(store_error)?;
    if let Some(e) = &entry {
        if !e.meta.conforms_to.contains(&theme.conforms_to) {
            return Err(ApiError::Conflict(format!(
                "collection {id} exists and is not the theme's collection (it does not \
                 conform to {})",
                theme.conforms_to
            )));
        }
    }
    Ok(entry)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PartQuery {
    file_name: Option<String>,
    map: Option<String>,
    id_field: Option<String>,
    strict: Option<String>,
    layer: Option<String>,
    source_crs: Option<String>,
    encoding: Option<String>,
}

/// `POST /admin/themes/{theme}/sources/{org}/upload`: one publisher's file into the theme's
/// collection, replacing that publisher's part and no other (received as any upload, then
/// ingested by a job).
async fn upload_part(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let (theme, id, org) = part(&token, &path.0, &path.1)?;
    let q: PartQuery = serde_urlencoded_strict(req.query_string())?;
    let mut mapping = crate::theme::Mapping {
        id_field: q.id_field.filter(|f| !f.trim().is_empty()),
        strict: match q.strict.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "strict={}: give true or false",
                    quote(other)
                )))
            }
        },
        ..Default::default()
    };
    if let Some(pairs) = &q.map {
        let bad = |e: String| {
            ApiError::BadRequest(format!(
                "map={}: {}",
                quote(pairs),
                e.trim_start_matches("--map ")
            ))
        };
        for (from, to) in crate::theme::Mapping::parse_pairs(pairs).map_err(bad)? {
            mapping.map.insert(from, to);
        }
        mapping.check(theme).map_err(bad)?;
    }
    let publisher = admin(&state)?.publisher.clone();
    check_theme_collection(&publisher, theme, &id).await?;
    let spooled = receive_upload(&req, payload, &publisher, q.file_name.as_deref()).await?;
    let job = publisher
        .upload(
            id,
            spooled,
            UploadOptions {
                mode: IngestMode::Append,
                layer: q.layer,
                source_crs: q.source_crs,
                id_field: None,
                encoding: q.encoding,
                theme: Some(crate::ingest::ThemeIngest {
                    theme,
                    source: org,
                    mapping,
                }),
            },
            &token.id,
        )
        .await?;
    Ok(accepted(&job, &super::base_url(&req)?))
}

/// `DELETE /admin/themes/{theme}/sources/{org}`: that publisher's part of the theme
/// collection; the other publishers' parts stay.
async fn delete_part(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let (theme, id, org) = part(&token, &path.0, &path.1)?;
    let publisher = admin(&state)?.publisher.clone();
    if check_theme_collection(&publisher, theme, &id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(format!(
            "the theme {} has no collection yet (nothing was uploaded to it)",
            theme.id
        )));
    }
    let (entry, removed) = crate::ingest::remove_source(publisher.store().as_ref(), &id, &org)
        .await
        .map_err(|e| match e {
            crate::ingest::IngestError::Store(s) => store_error(s),
            // The one refusal left: the collection has no features of this publisher.
            crate::ingest::IngestError::Options(m) => ApiError::NotFound(m),
            other => ApiError::Internal(StoreError::Task(other.to_string())),
        })?;
    Ok(ok(json!({
        "theme": theme.id,
        "collection": id,
        "source": org,
        "removed": removed,
        "featureCount": entry.feature_count,
        "version": entry.version,
    })))
}

fn serde_urlencoded_strict<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        if map.insert(k.clone(), json!(v)).is_some() {
            return Err(ApiError::BadRequest(format!(
                "parameter {} is given twice",
                quote(&k)
            )));
        }
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| ApiError::BadRequest(format!("query parameters: {e}")))
}

fn safe_name(name: &str) -> Result<String, ApiError> {
    crate::publish::safe_file_name(name).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "file name {}: it needs an extension that says the format (.geojson, .zip, .gpkg, .csv …)",
            quote(name)
        ))
    })
}

async fn write_chunks<S, E>(
    mut stream: S,
    file: &mut tokio::fs::File,
    limit: u64,
) -> Result<u64, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut written: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the upload broke off: {e}")))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "the file is larger than this server takes ({} MiB)",
                limit >> 20
            )));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::Internal(StoreError::Task(format!("spool: {e}"))))?;
    }
    file.flush()
        .await
        .map_err(|e| ApiError::Internal(StoreError::Task(format!("spool: {e}"))))?;
    if written == 0 {
        return Err(ApiError::BadRequest("the upload is empty".into()));
    }
    Ok(written)
}

async fn receive(
    payload: web::Payload,
    publisher: &Publisher,
    name: &str,
    limit: u64,
) -> Result<crate::publish::Spooled, ApiError> {
    let name = safe_name(name)?;
    let (mut spooled, path) = publisher.spool(&name)?;
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::Internal(StoreError::Task(format!("spool: {e}"))))?;
    spooled.bytes = write_chunks(payload, &mut file, limit).await?;
    Ok(spooled)
}

async fn receive_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    publisher: &Publisher,
    name: Option<&str>,
    limit: u64,
) -> Result<crate::publish::Spooled, ApiError> {
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload.into_inner());
    while let Some(part) = parts.next().await {
        let part = part.map_err(|e| ApiError::BadRequest(format!("multipart/form-data: {e}")))?;
        let (field, file_name) = match part.content_disposition() {
            Some(cd) => (
                cd.get_name().map(str::to_string),
                cd.get_filename().map(str::to_string),
            ),
            None => (None, None),
        };
        if field.as_deref() != Some("file") {
            continue;
        }
        let chosen = name.map(str::to_string).or(file_name).ok_or_else(|| {
            ApiError::BadRequest("the file part has no filename; give ?fileName=".into())
        })?;
        let chosen = safe_name(&chosen)?;
        let (mut spooled, path) = publisher.spool(&chosen)?;
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| ApiError::Internal(StoreError::Task(format!("spool: {e}"))))?;
        spooled.bytes = write_chunks(part, &mut file, limit).await?;
        return Ok(spooled);
    }
    Err(ApiError::BadRequest(
        "multipart/form-data without a part named \"file\"".into(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SourceBody {
    url: String,
    /// `file` (default): download the file; `ogc-api-features`: read the collection at `url`
    /// page by page.
    #[serde(default)]
    protocol: crate::publish::records::Protocol,
    interval_seconds: Option<u64>,
}

const DEFAULT_INTERVAL: u64 = 3600;

/// `PUT /admin/collections/{id}/source`: fetch the collection from this URL now and every
/// `intervalSeconds` (conditional GET: an unchanged file costs one request).
async fn put_source(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let id = collection_id(&path)?;
    need_write(&token, &id)?;
    let b: SourceBody = body(&small_body(payload).await?)?;
    let publisher = admin(&state)?.publisher.clone();
    let (source, job) = publisher
        .set_source(
            id,
            b.url,
            b.protocol,
            b.interval_seconds.unwrap_or(DEFAULT_INTERVAL),
            &token.id,
        )
        .await?;
    Ok(ok(json!({ "source": source, "job": job })))
}

async fn get_source(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let id = collection_id(&path)?;
    need_write(&token, &id)?;
    let source = admin(&state)?
        .publisher
        .url_source(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("collection {id} has no source URL")))?;
    Ok(ok(serde_json::to_value(source).unwrap_or_default()))
}

async fn delete_source(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let id = collection_id(&path)?;
    need_write(&token, &id)?;
    let publisher = &admin(&state)?.publisher;
    if publisher.url_source(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "collection {id} has no source URL"
        )));
    }
    publisher.delete_source(id.as_str()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /admin/collections/{id}/refresh`: check the source now.
async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let id = collection_id(&path)?;
    need_write(&token, &id)?;
    let publisher = admin(&state)?.publisher.clone();
    match publisher.refresh(&id, &token.id).await? {
        Some(job) => Ok(accepted(&job, &super::base_url(&req)?)),
        None => Err(ApiError::Conflict(format!(
            "a refresh of {id} is queued or running already"
        ))),
    }
}

async fn list_sources(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let sources = admin(&state)?.publisher.sources().await?;
    let out: Vec<serde_json::Value> = sources
        .into_iter()
        // A write token sees its collections' sources; catalogs are the admin's.
        .filter(|(_, s)| match s {
            SourceDoc::Url(u) => token.scope.may_write(&u.collection),
            SourceDoc::Catalog(_) => token.scope.is_admin(),
        })
        .map(|(key, s)| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["key"] = json!(key);
            v
        })
        .collect();
    Ok(ok(json!({ "sources": out })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CatalogBody {
    url: String,
    interval_seconds: Option<u64>,
    #[serde(default)]
    prefix: String,
}

/// `POST /admin/catalogs`: harvest a DCAT catalog now and every `intervalSeconds`.
async fn post_catalog(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    need_admin(&token)?;
    let b: CatalogBody = body(&small_body(payload).await?)?;
    let publisher = admin(&state)?.publisher.clone();
    let (key, catalog, job) = publisher
        .set_catalog(
            b.url,
            b.interval_seconds.unwrap_or(86_400),
            b.prefix,
            &token.id,
        )
        .await?;
    let mut resp = HttpResponse::Accepted();
    if let Some(j) = &job {
        resp.insert_header((
            header::LOCATION,
            format!("{}/admin/jobs/{}", super::base_url(&req)?, j.id),
        ));
    }
    Ok(no_store(resp.json(
        json!({ "key": key, "catalog": catalog, "job": job }),
    )))
}

fn catalog_key(raw: &str) -> Result<String, ApiError> {
    let hex = raw.strip_prefix("catalog_").unwrap_or_default();
    if hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::NotFound(format!("no catalog {}", quote(raw))))
    }
}

async fn harvest_now(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    need_admin(&token)?;
    let key = catalog_key(&path)?;
    let publisher = admin(&state)?.publisher.clone();
    match publisher.harvest(&key, &token.id).await? {
        Some(job) => Ok(accepted(&job, &super::base_url(&req)?)),
        None => Err(ApiError::Conflict(
            "a harvest of this catalog is queued or running already".into(),
        )),
    }
}

async fn delete_catalog(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    need_admin(&token)?;
    let key = catalog_key(&path)?;
    if !admin(&state)?.publisher.delete_source(&key).await? {
        return Err(ApiError::NotFound(format!("no catalog {}", quote(&key))));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Jobs a token may see: all for admin, its collections' for a write token, and its
/// publisher's parts' for a token limited to one.
fn visible(token: &TokenRecord, job: &JobRecord) -> bool {
    match &token.scope {
        Scope::Admin => true,
        Scope::Write(_) | Scope::Read { .. } => job.kind.collection().is_some_and(|c| {
            token.scope.may_write(c)
                || job
                    .kind
                    .source()
                    .is_some_and(|org| token.scope.may_write_part(c, org))
        }),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    collection: Option<String>,
    state: Option<String>,
    #[serde(default, deserialize_with = "query_number")]
    limit: Option<usize>,
}

/// A number in a query string: every value there arrives as text (see
/// `serde_urlencoded_strict`), so `usize` alone would refuse `limit=10`.
fn query_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{}: give a whole number", quote(&text))))
}

async fn list_jobs(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let q: JobsQuery = serde_urlencoded_strict(req.query_string())?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let jobs: Vec<JobRecord> = admin(&state)?
        .publisher
        .jobs()
        .await?
        .into_iter()
        .filter(|j| visible(&token, j))
        .filter(|j| {
            q.collection
                .as_deref()
                .is_none_or(|c| j.kind.collection().is_some_and(|id| id.as_str() == c))
        })
        .filter(|j| {
            q.state.as_deref().is_none_or(|s| {
                serde_json::to_value(j.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    == Some(s.to_string())
            })
        })
        .take(limit)
        .collect();
    Ok(ok(json!({ "jobs": jobs })))
}

fn job_id(raw: &str) -> Result<&str, ApiError> {
    if raw.len() <= 40 && raw.starts_with('j') && raw.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(raw)
    } else {
        Err(ApiError::NotFound(format!("no job {}", quote(raw))))
    }
}

async fn get_job(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let job = admin(&state)?.publisher.job(job_id(&path)?).await?;
    if !visible(&token, &job) {
        return Err(ApiError::NotFound(format!("no job {}", quote(&path))));
    }
    Ok(ok(serde_json::to_value(job).unwrap_or_default()))
}

async fn cancel_job(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let token = caller(&req, &state).await?;
    let publisher = &admin(&state)?.publisher;
    let id = job_id(&path)?;
    let job = publisher.job(id).await?;
    if !visible(&token, &job) {
        return Err(ApiError::NotFound(format!("no job {}", quote(id))));
    }
    let job = publisher.cancel(id).await?;
    Ok(ok(serde_json::to_value(job).unwrap_or_default()))
}

async fn admin_page(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let base = super::base_url(&req)?;
    Ok(super::admin_html::page(&base))
}

/// A resource with the given method routes; OPTIONS and other methods answered as elsewhere.
fn methods(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path)
        .route(
            web::route()
                .guard(actix_web::guard::Options())
                .to(move || async move {
                    HttpResponse::NoContent()
                        .insert_header((header::ALLOW, allow))
                        .finish()
                }),
        )
        .default_service(web::to(move |req: HttpRequest| async move {
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, allow))
                .json(json!({
                    "code": "MethodNotAllowed",
                    "description": format!("{} is not allowed here; use {allow}", req.method()),
                }))
        }))
}

/// GET, and HEAD answered by the same handler (actix sends HEAD's headers without the body):
/// every resource here that allows GET says HEAD in its Allow header too.
fn get() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{delete, patch, post, put};
    cfg.service(methods("/admin", "GET, HEAD, OPTIONS").route(get().to(admin_page)))
        .service(methods("/admin/api", "GET, HEAD, OPTIONS").route(get().to(openapi)))
        .service(methods("/admin/whoami", "GET, HEAD, OPTIONS").route(get().to(whoami)))
        .service(
            methods("/admin/collections", "GET, HEAD, POST, OPTIONS")
                .route(get().to(list_collections))
                .route(post().to(create_collection)),
        )
        .service(
            methods("/admin/collections/{id}", "PATCH, DELETE, OPTIONS")
                .route(patch().to(patch_collection))
                .route(delete().to(delete_collection)),
        )
        .service(
            methods("/admin/collections/{id}/upload", "POST, OPTIONS").route(post().to(upload)),
        )
        .service(
            methods(
                "/admin/collections/{id}/source",
                "GET, HEAD, PUT, DELETE, OPTIONS",
            )
            .route(get().to(get_source))
            .route(put().to(put_source))
            .route(delete().to(delete_source)),
        )
        .service(
            methods("/admin/collections/{id}/refresh", "POST, OPTIONS").route(post().to(refresh)),
        )
        .service(methods("/admin/themes", "GET, HEAD, OPTIONS").route(get().to(list_themes)))
        .service(
            methods("/admin/themes/{theme}/sources/{org}", "DELETE, OPTIONS")
                .route(delete().to(delete_part)),
        )
        .service(
            methods(
                "/admin/themes/{theme}/sources/{org}/upload",
                "POST, OPTIONS",
            )
            .route(post().to(upload_part)),
        )
        .service(methods("/admin/sources", "GET, HEAD, OPTIONS").route(get().to(list_sources)))
        .service(methods("/admin/catalogs", "POST, OPTIONS").route(post().to(post_catalog)))
        .service(
            methods("/admin/catalogs/{key}", "DELETE, OPTIONS").route(delete().to(delete_catalog)),
        )
        .service(
            methods("/admin/catalogs/{key}/harvest", "POST, OPTIONS").route(post().to(harvest_now)),
        )
        .service(methods("/admin/jobs", "GET, HEAD, OPTIONS").route(get().to(list_jobs)))
        .service(methods("/admin/jobs/{id}", "GET, HEAD, OPTIONS").route(get().to(get_job)))
        .service(methods("/admin/jobs/{id}/cancel", "POST, OPTIONS").route(post().to(cancel_job)));
}
