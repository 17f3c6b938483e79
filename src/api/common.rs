//! What every handler needs besides its own resource: the collection a path names (404 for
//! an unknown id, 503 for one that cannot be served now) and the hash ETags are made of.

use std::sync::Arc;

use super::{quote, ApiError, AppState};
use crate::catalog::CollectionId;
use crate::engine::{Lookup, Snapshot};

/// The collection a path names, or 404. An id that is not a valid slug cannot name one.
pub fn snapshot(state: &AppState, raw: &str) -> Result<Arc<Snapshot>, ApiError> {
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
