//! Optional API keys for the read API, with a quota per key. Off by default: the read API is
//! open. With `--read-keys optional`, a request that shows a key is held to the key's quota
//! and others are served as before; with `required`, a request without a valid key gets 401.
//! A key is a token of scope `read` (`hamn tokens create --read-key --per-minute N`), shown
//! as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Admin and write tokens are
//! accepted as keys without a quota. `/admin`, `/health`, `/ready` and CORS preflights are
//! never asked for one.
//!
//! The quota is a token bucket per key: `per_minute` requests in a burst, refilled evenly;
//! past it, 429 with `Retry-After`. Every answer to a keyed request says `RateLimit-Limit` and
//! `RateLimit-Remaining`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use super::{ApiError, AppState};
use crate::auth::{AuthError, Scope, Tokens};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyMode {
    /// No keys: the read API is open to all, unlimited.
    Off,
    /// Keys are optional: a request with one is held to its quota.
    Optional,
    /// Every read request needs a valid key.
    Required,
}

pub struct ReadKeys {
    pub mode: KeyMode,
    pub tokens: Arc<Tokens>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl ReadKeys {
    pub fn new(mode: KeyMode, tokens: Arc<Tokens>) -> Self {
        Self {
            mode,
            tokens,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the key's bucket: Ok(remaining) or Err(seconds to wait).
    fn take(&self, key_id: &str, per_minute: u32) -> Result<u32, u64> {
        let capacity = f64::from(per_minute.max(1));
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (level, then) = map.get(key_id).copied().unwrap_or((capacity, now));
        let level = (level + now.duration_since(then).as_secs_f64() * per_second).min(capacity);
        if level < 1.0 {
            map.insert(key_id.to_string(), (level, now));
            return Err(((1.0 - level) / per_second).ceil().max(1.0) as u64);
        }
        map.insert(key_id.to_string(), (level - 1.0, now));
        Ok((level - 1.0).floor() as u32)
    }
}

fn exempt(req: &ServiceRequest) -> bool {
    let path = req.path();
    req.method() == actix_web::http::Method::OPTIONS
        || path == "/admin"
        || path.starts_with("/admin/")
        || path == "/health"
        || path == "/ready"
}

fn presented(req: &ServiceRequest) -> Option<String> {
    let h = req.headers();
    if let Some(k) = h.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim().to_string());
    }
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|k| k.trim().to_string())
}

/// The middleware (`middleware::from_fn`).
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let Some(keys) = state.read_keys.as_ref().filter(|k| k.mode != KeyMode::Off) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if exempt(&req) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let refuse = |req: ServiceRequest, e: ApiError| {
        let resp = e.error_response();
        Ok(req.into_response(resp).map_into_right_body())
    };
    let Some(key) = presented(&req) else {
        if keys.mode == KeyMode::Required {
            return refuse(req, ApiError::Unauthorized(
                "this server asks for an API key: send X-API-Key: <key> or Authorization: Bearer <key>".into(),
            ));
        }
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let client = state.origin.client_ip(req.request());
    let record = match keys.tokens.verify_cached(&key, client).await {
        Ok(r) => r,
        Err(AuthError::Invalid | AuthError::Missing) => {
            return refuse(
                req,
                ApiError::Unauthorized("the API key is not valid".into()),
            )
        }
        Err(e) => return refuse(req, e.into()),
    };
    let per_minute = match record.scope {
        Scope::Read { per_minute } => per_minute,
        // Publishers' tokens read without a quota.
        Scope::Admin | Scope::Write(_) => return Ok(next.call(req).await?.map_into_left_body()),
    };
    match keys.take(&record.id, per_minute) {
        Ok(remaining) => {
            let mut resp = next.call(req).await?;
            let h = resp.headers_mut();
            h.insert(
                header::HeaderName::from_static("ratelimit-limit"),
                HeaderValue::from(per_minute),
            );
            h.insert(
                header::HeaderName::from_static("ratelimit-remaining"),
                HeaderValue::from(remaining),
            );
            Ok(resp.map_into_left_body())
        }
        Err(wait) => refuse(
            req,
            ApiError::TooManyRequests {
                message: format!(
                    "this key's quota is {per_minute} requests a minute; try again in {wait} s"
                ),
                retry_after: wait,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_refills() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::embedded::EmbeddedStore::open(dir.path()).expect("store");
        let keys = ReadKeys::new(KeyMode::Required, Arc::new(Tokens::new(Arc::new(store))));
        for want in (0..3).rev() {
            assert_eq!(keys.take("k", 3), Ok(want));
        }
        // 3 a minute: one back every 20 s.
        assert!(matches!(keys.take("k", 3), Err(s) if (19..=20).contains(&s)));
        assert_eq!(keys.take("other", 3), Ok(2), "keys have their own buckets");
    }
}
