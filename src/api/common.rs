//! What every handler needs besides its own resource: the collection a path names (404 for
//! an unknown id, 503 for one that cannot be served now) and the hash ETags are made of.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{quote, ApiError, AppState};
use crate::catalog::CollectionId;
use crate::engine::{EngineError, Lookup, Page, Query, Served, Start};

/// The collection a path names, or 404. An id that is not a valid slug cannot name one.
pub fn source(state: &AppState, raw: &str) -> Result<Served, ApiError> {
    let not_found = || ApiError::NotFound(format!("no collection {}", quote(raw)));
    let id: CollectionId = raw.parse().map_err(|_| not_found())?;
    match state.engine.lookup(&id) {
        Lookup::Served(s) => Ok(s),
        Lookup::Unavailable(why) => Err(ApiError::Unavailable(format!(
            "collection {id} is not available: {why}"
        ))),
        Lookup::Missing => Err(not_found()),
    }
}

/// A small, stable, non-cryptographic hash (FNV-1a) for ETags.
pub fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A feature that cannot be written in the requested CRS: the request's fault (a CRS whose
/// area the feature lies far outside of), so a 400 naming the feature.
pub fn encode_error(e: crate::formats::EncodeError) -> ApiError {
    ApiError::BadRequest(format!("feature {}: {}", quote(&e.id), e.message))
}

/// An engine's failure on a valid request: the engine cannot do it (400), or it is passing
/// (503, ask again).
pub fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Unsupported(m) => ApiError::BadRequest(m),
        EngineError::Changed(_) => ApiError::NotYet(e.to_string()),
        EngineError::Timeout(_) => ApiError::Overloaded(e.to_string()),
        EngineError::Database(_) => ApiError::Unavailable(e.to_string()),
    }
}

/// One page of `src`: on a heavy-work thread, under `api::heavy`'s limits and deadline, when
/// the source says the query makes this process look at many features; else here.
pub async fn page(
    state: &AppState,
    src: &Served,
    q: &Query,
    start: Start,
    limit: usize,
) -> Result<Page, ApiError> {
    if !state.heavy.is_heavy(src.estimate(q)) {
        return src.items(q, start, limit).await.map_err(engine_error);
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let query = Query {
        cancel: Some(cancel.clone()),
        ..q.clone()
    };
    let (src, runtime) = (src.clone(), tokio::runtime::Handle::current());
    state
        .heavy
        .run(cancel, move || {
            runtime.block_on(src.items(&query, start, limit))
        })
        .await?
        .map_err(engine_error)
}
