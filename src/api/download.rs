//! `/collections/{id}/download/{format}`: a collection's bulk download (see `crate::download`),
//! with single byte ranges (RFC 9110 §14) so a broken download resumes where it stopped.
//!
//! With `v=` equal to the version served, the URL never names other bytes: `immutable`. Without
//! `v=`, the current version's file, revalidated by its ETag. With another `v=`, a redirect to
//! the current one (the old file is deleted once no cursor can walk that version). The ETag is
//! strong (a digest of the file's bytes), as `If-Range` requires: a resume whose bytes changed
//! since gets the whole new file, never a splice of two versions.

use std::io::SeekFrom;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::cache::Kind;
use super::common::source;
use super::params::Params;
use super::{base_url, quote, ApiError, AppState};
use crate::download::{DownloadError, Format};

pub async fn download(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let s = source(&state, &id)?;
    let format = Format::from_name(&name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no download {} of {}: there are {}",
            quote(&name),
            s.entry().id,
            Format::ALL.map(Format::name).join(" and ")
        ))
    })?;
    let q = Params::parse(req.query_string(), &["v"])?;
    let version = s.version();
    let kind = match q.get("v") {
        None => Kind::Document,
        Some(v) if v == version.to_string() => Kind::Versioned,
        Some(v) => {
            if v.parse::<i64>().is_err() {
                return Err(ApiError::BadRequest(format!(
                    "v={}: a version number",
                    quote(v)
                )));
            }
            let url = format!(
                "{}/collections/{}/download/{}?v={version}",
                base_url(&req)?,
                s.entry().id,
                format.name()
            );
            return Ok(HttpResponse::Found()
                .insert_header((header::LOCATION, url))
                .insert_header((header::CACHE_CONTROL, "no-cache"))
                .finish());
        }
    };
    let built = state.downloads.get(&s, format).await.map_err(|e| match e {
        DownloadError::Superseded => {
            ApiError::Unavailable(format!("{e}; ask again for the new version"))
        }
        DownloadError::Failed(_) => ApiError::Unavailable(e.to_string()),
    })?;
    let etag = format!("\"{}\"", built.digest);
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::ETAG, etag.clone()))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}-v{version}.{}\"",
                s.entry().id,
                format.name()
            ),
        ));
    state.cache.apply(&mut resp, kind, Some(s.entry().updated));
    if if_none_match(&req, &etag) {
        return Ok(resp
            .status(actix_web::http::StatusCode::NOT_MODIFIED)
            .finish());
    }
    // Served as they are: compressing would make `length` and byte ranges mean other bytes.
    resp.insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header((header::CONTENT_TYPE, format.media_type()));
    let total = built.length;
    let range = match req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        Some(r) if if_range(&req, &etag) => parse_range(r, total),
        _ => Range::Whole,
    };
    let (start, len) = match range {
        Range::Whole => (0, total),
        Range::Part { start, end } => {
            resp.status(actix_web::http::StatusCode::PARTIAL_CONTENT)
                .insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes {start}-{end}/{total}"),
                ));
            (start, end - start + 1)
        }
        Range::Unsatisfiable => {
            return Ok(resp
                .status(actix_web::http::StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{total}")))
                .insert_header((header::CONTENT_TYPE, super::JSON))
                .body(
                    serde_json::json!({
                        "code": "RangeNotSatisfiable",
                        "description": format!("the file has {total} bytes"),
                    })
                    .to_string(),
                ));
        }
    };
    let mut file = tokio::fs::File::open(&built.path).await.map_err(|e| {
        tracing::warn!(path = %built.path.display(), error = %e, "cannot open a download");
        // Deleted from under us (an operator, another instance sharing the directory): built
        // again for the next request.
        state.downloads.forget(s.entry(), format);
        ApiError::Unavailable("the file is being prepared; ask again".into())
    })?;
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the file cannot be read now: {e}")))?;
    let body = stream::try_unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        let mut buf = vec![0u8; left.min(256 * 1024) as usize];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the download file is shorter than its length",
            ));
        }
        buf.truncate(n);
        Ok(Some((bytes::Bytes::from(buf), (file, left - n as u64))))
    });
    Ok(resp.body(actix_web::body::SizedStream::new(len, Box::pin(body))))
}

/// True when `If-None-Match` lists `etag` (weak comparison, as RFC 9110 says for it) or `*`.
fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        })
}

/// True when a `Range` may be honoured: no `If-Range`, or one naming `etag` exactly (strong
/// comparison). A date in `If-Range` is not trusted: the file's bytes are named by the tag.
fn if_range(req: &HttpRequest, etag: &str) -> bool {
    match req
        .headers()
        .get(header::IF_RANGE)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => true,
        Some(v) => v.trim() == etag,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// No range, or one not worth honouring (several ranges, a malformed header): the whole
    /// file, as RFC 9110 lets a server answer.
    Whole,
    /// Bytes `start` to `end`, both included.
    Part {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

/// A `Range` header of one byte range (`bytes=10-99`, `bytes=10-`, `bytes=-100`) over a file
/// of `total` bytes.
fn parse_range(header: &str, total: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let number = |t: &str| -> Option<u64> {
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    match (a.is_empty(), number(a), number(b)) {
        // The last `n` bytes.
        (true, _, Some(n)) => {
            if n == 0 || total == 0 {
                Range::Unsatisfiable
            } else {
                Range::Part {
                    start: total.saturating_sub(n),
                    end: total - 1,
                }
            }
        }
        (false, Some(start), end) if b.is_empty() || end.is_some() => {
            if start >= total {
                return Range::Unsatisfiable;
            }
            let end = end.map_or(total - 1, |e| e.min(total - 1));
            if end < start {
                // `last-byte-pos` before `first-byte-pos`: invalid, so ignored.
                return Range::Whole;
            }
            Range::Part { start, end }
        }
        _ => Range::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("bytes=0-99", Range::Part { start: 0, end: 99 })]
    #[case("bytes=10-", Range::Part { start: 10, end: 999 })]
    #[case("bytes=-100", Range::Part { start: 900, end: 999 })]
    #[case("bytes=-5000", Range::Part { start: 0, end: 999 })]
    #[case("bytes=990-5000", Range::Part { start: 990, end: 999 })]
    #[case("bytes=1000-", Range::Unsatisfiable)]
    #[case("bytes=-0", Range::Unsatisfiable)]
    #[case("bytes=5-2", Range::Whole)]
    #[case("bytes=0-1,5-6", Range::Whole)]
    #[case("items=0-1", Range::Whole)]
    #[case("bytes=a-b", Range::Whole)]
    #[case("bytes=+1-2", Range::Whole)]
    #[case("bytes=", Range::Whole)]
    fn ranges(#[case] header: &str, #[case] want: Range) {
        assert_eq!(parse_range(header, 1000), want);
    }
}
