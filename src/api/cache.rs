//! Cache rules: how long browsers and shared caches (CDNs, reverse proxies) may keep each kind
//! of response, and the validators they revalidate with.
//!
//! - A URL that names a version (a tile with `v=` equal to its collections' current version,
//!   a committed asset with `v=` equal to its content hash) never changes: `immutable`, a year.
//!   TileJSON documents write tile URLs with `v=`, so maps fetch each tile once per version.
//! - Everything else may change with the next ingest. It is kept `--cache-max-age` seconds
//!   (tiles without a matching `v=`: `--tile-max-age`), 0 by default: a cache revalidates each
//!   time with the ETag (and `Last-Modified`, the commit time of the version), which costs a
//!   304 and no body.

use actix_web::http::header;
use actix_web::HttpResponseBuilder;
use chrono::{DateTime, Utc};

/// A year, the longest `max-age` caches are asked to honour (RFC 9111 practice).
const YEAR: u32 = 31_536_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CachePolicy {
    /// Seconds documents (landing page, collections, items, queryables …) may be kept
    /// without revalidation.
    pub max_age: u32,
    /// Seconds a tile requested without a current `v=` may be kept without revalidation.
    pub tile_max_age: u32,
}

/// What a response is, for its cache rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Document,
    Tile,
    /// Addressed by version: the same URL never gets other content.
    Versioned,
}

impl CachePolicy {
    pub fn cache_control(&self, kind: Kind) -> String {
        let short = |s: u32| {
            if s == 0 {
                "no-cache".to_string()
            } else {
                format!("public, max-age={s}")
            }
        };
        match kind {
            Kind::Document => short(self.max_age),
            Kind::Tile => short(self.tile_max_age),
            Kind::Versioned => format!("public, max-age={YEAR}, immutable"),
        }
    }

    /// Sets `Cache-Control`, and `Last-Modified` when the content's commit time is known.
    pub fn apply(
        &self,
        resp: &mut HttpResponseBuilder,
        kind: Kind,
        modified: Option<DateTime<Utc>>,
    ) {
        resp.insert_header((header::CACHE_CONTROL, self.cache_control(kind)));
        if let Some(t) = modified {
            resp.insert_header((header::LAST_MODIFIED, http_date(t)));
        }
    }
}

/// An HTTP date (RFC 9110 IMF-fixdate).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_per_kind() {
        let p = CachePolicy::default();
        assert_eq!(p.cache_control(Kind::Document), "no-cache");
        assert_eq!(p.cache_control(Kind::Tile), "no-cache");
        assert_eq!(
            p.cache_control(Kind::Versioned),
            "public, max-age=31536000, immutable"
        );
        let p = CachePolicy {
            max_age: 30,
            tile_max_age: 600,
        };
        assert_eq!(p.cache_control(Kind::Document), "public, max-age=30");
        assert_eq!(p.cache_control(Kind::Tile), "public, max-age=600");
    }

    #[test]
    fn http_dates() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T04:05:06Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("time");
        assert_eq!(http_date(t), "Tue, 01 Dec 2026 04:05:06 GMT");
    }
}
