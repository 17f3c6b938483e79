//! `/collections/{id}/changes?since=VERSION|DATETIME`: what changed in a collection since a
//! version (or since the version current at a time), with the added and updated features as
//! they are now and the ids of the removed ones. hamn's own extension (see `crate::changes`).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::common::{engine_error, source};
use super::params::Params;
use super::{base_url, etag_check, not_modified, quote, ApiError, AppState, JSON};
use crate::changes::{self, Unknown};

pub async fn changes(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let s = source(&state, &path)?;
    let q = Params::parse(req.query_string(), &["since", "f"])?;
    if let Some(f) = q.get("f") {
        if f != "json" {
            return Err(ApiError::NotAcceptable(format!(
                "changes are JSON only (f={})",
                quote(f)
            )));
        }
    }
    let id = &s.entry().id;
    let current = s.version();
    let base = base_url(&req)?;
    let url = format!("{base}/collections/{id}/changes");
    let Some(given) = q.get("since") else {
        return Err(ApiError::BadRequest(format!(
            "give since=VERSION (the version you have, e.g. the `version` of your last call; now {current}) or since=DATETIME (RFC 3339)"
        )));
    };
    let kept = changes::kept(state.engine.store().as_ref(), id)
        .await
        .map_err(|e| {
            tracing::warn!(collection = %id, error = %e, "cannot read change records");
            ApiError::Unavailable("the changes cannot be read now".into())
        })?;
    let since = match given.parse::<i64>() {
        Ok(v) if v >= 0 => v,
        Ok(_) => return Err(ApiError::BadRequest("since: a version is 0 or more".into())),
        Err(_) => {
            let t = chrono::DateTime::parse_from_rfc3339(given)
                .map_err(|_| {
                    ApiError::BadRequest(format!(
                        "since={}: a version number or an RFC 3339 date-time",
                        quote(given)
                    ))
                })?
                .with_timezone(&chrono::Utc);
            changes::version_at(&kept, t).ok_or_else(|| gone(&base, id, "that time"))?
        }
    };
    if since > current {
        return Err(ApiError::BadRequest(format!(
            "since={since} is after the version served now ({current})"
        )));
    }
    let (etag, fresh) = etag_check(&req, &format!("{id}-ch{since}-v{current}"));
    if fresh {
        return Ok(not_modified(&etag));
    }
    let net = changes::since(&kept, since, current).map_err(|why| match why {
        Unknown::NoChain => gone(&base, id, &format!("version {since}")),
        Unknown::TooMany => gone(&base, id, &format!("version {since} (too many changed)")),
    })?;
    // The features as served now; an id the store listed but the snapshot lacks is not
    // invented.
    let mut body = String::from("{\"type\":\"FeatureCollection\",\"features\":[");
    let mut first = true;
    for fid in net.added.iter().chain(&net.updated) {
        if let Some(f) = s.item(fid).await.map_err(engine_error)? {
            if !first {
                body.push(',');
            }
            first = false;
            body.push_str(f.json());
        }
    }
    let rest = json!({
        "collection": id,
        "since": since,
        "version": current,
        "added": net.added,
        "updated": net.updated,
        "removed": net.removed,
        "links": [
            {"href": format!("{url}?since={since}"), "rel": "self", "type": JSON},
            {"href": format!("{url}?since={current}"), "rel": "next", "type": JSON,
             "title": "What changes after this version: call this next time"},
            {"href": format!("{base}/collections/{id}"), "rel": "collection", "type": JSON},
        ],
    });
    let rest = rest.to_string();
    body.push_str("],");
    body.push_str(&rest[1..]);
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, super::GEOJSON))
        .insert_header((header::ETAG, etag));
    state.cache.apply(
        &mut resp,
        super::cache::Kind::Document,
        Some(s.entry().updated),
    );
    Ok(resp.body(body))
}

fn gone(base: &str, id: &crate::catalog::CollectionId, what: &str) -> ApiError {
    ApiError::Gone {
        message: format!(
            "the changes of {id} since {what} are not kept (hamn keeps the last {} versions' changes); read the whole collection again",
            changes::KEEP
        ),
        restart: format!("{base}/collections/{id}/items"),
    }
}
