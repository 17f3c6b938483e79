//! A collection of an OGC API – Features server as a source: its items read page by page,
//! following `rel=next`, into one GeoJSON Sequence file that the ingest reads like any other
//! file. Every page is fetched through `fetch` (the same address checks, redirects re-checked,
//! the same size and time limits), and a `next` link must stay on the server it started on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::fetch::{self, FetchPolicy, Fetched};

/// Items asked for per page (servers may give fewer; their `next` link says where to go on).
const PAGE: u32 = 1000;
/// More pages than this is a server that never ends its `next` chain.
const MAX_PAGES: u32 = 100_000;
/// The largest page: a page is parsed whole (a thousand features are a few MiB), so one
/// huge page must not take memory in proportion to the whole download's limit.
const MAX_PAGE_BYTES: u64 = 64 << 20;

/// The items of a collection, as one file.
pub struct Items {
    pub path: PathBuf,
    pub pages: u32,
    pub features: u64,
    _dir: tempfile::TempDir,
}

/// The items URL of a collection URL (`…/collections/{id}` or `…/collections/{id}/items`,
/// with any query), or why it is not one.
pub fn items_url(url: &str) -> Result<reqwest::Url, String> {
    let mut u = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let segments: Vec<String> = u
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let n = segments.len();
    let at = segments.iter().rposition(|s| s == "collections");
    let items = match at {
        Some(i) if i + 2 == n => {
            let mut path = segments.clone();
            path.push("items".into());
            path
        }
        Some(i) if i + 3 == n && segments[n - 1] == "items" => segments.clone(),
        _ => {
            return Err(format!(
                "{url} is not the URL of an OGC API Features collection (…/collections/{{id}} \
                 or …/collections/{{id}}/items)"
            ))
        }
    };
    u.set_path(&format!("/{}", items.join("/")));
    if !u.query_pairs().any(|(k, _)| k == "limit") {
        u.query_pairs_mut().append_pair("limit", &PAGE.to_string());
    }
    Ok(u)
}

fn same_server(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The `next` link of a page, resolved against the page's URL.
fn next_link(page: &serde_json::Value, base: &reqwest::Url) -> Option<reqwest::Url> {
    page.get("links")?
        .as_array()?
        .iter()
        .filter(|l| l.get("rel").and_then(|r| r.as_str()) == Some("next"))
        .filter(|l| {
            l.get("type")
                .and_then(|t| t.as_str())
                .is_none_or(|t| t.contains("json"))
        })
        .find_map(|l| l.get("href")?.as_str().and_then(|h| base.join(h).ok()))
}

/// Reads every item of the collection at `url` into a GeoJSON Sequence file in `dir`. The
/// whole download, all pages together, is held to the policy's size and time limits.
pub async fn download(
    policy: &FetchPolicy,
    url: &str,
    dir: &Path,
    cancel: &AtomicBool,
) -> Result<Items, String> {
    let start = items_url(url)?;
    let scratch = tempfile::Builder::new()
        .prefix("oapif-")
        .tempdir_in(dir)
        .map_err(|e| format!("spool: {e}"))?;
    let path = scratch.path().join("items.geojsonl");
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| format!("spool: {e}"))?);
    let started = Instant::now();
    let (mut pages, mut features, mut bytes) = (0u32, 0u64, 0u64);
    let mut next = Some(start.clone());
    while let Some(page_url) = next.take() {
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        if pages >= MAX_PAGES {
            return Err(format!("{start}: more than {MAX_PAGES} pages; stopped"));
        }
        let left = policy
            .timeout
            .checked_sub(started.elapsed())
            .ok_or_else(|| {
                format!(
                    "{start}: not read whole within {} s",
                    policy.timeout.as_secs()
                )
            })?;
        let page_policy = FetchPolicy {
            max_bytes: policy.max_bytes.saturating_sub(bytes).min(MAX_PAGE_BYTES),
            timeout: left,
            ..policy.clone()
        };
        let fetched = fetch::fetch(
            &page_policy,
            page_url.as_str(),
            &fetch::Conditional::default(),
            scratch.path(),
            cancel,
        )
        .await
        .map_err(|e| match e {
            fetch::FetchError::TooLarge { .. }
                if policy.max_bytes.saturating_sub(bytes) > MAX_PAGE_BYTES =>
            {
                format!(
                    "{page_url}: a page larger than {} MiB; ask for smaller pages (limit=) in \
                     the URL",
                    MAX_PAGE_BYTES >> 20
                )
            }
            fetch::FetchError::TooLarge { .. } => format!(
                "{start}: the items are larger than this server takes ({} MiB) in all",
                policy.max_bytes >> 20
            ),
            other => other.to_string(),
        })?;
        let Fetched::File(file) = fetched else {
            return Err(format!(
                "{page_url}: answered 304 to a request without validators"
            ));
        };
        bytes += file.bytes;
        // Parsed on a blocking thread: a page of a thousand features takes a while.
        let page_path = file.path.clone();
        let page: serde_json::Value = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&page_path).map_err(|e| format!("spool: {e}"))?;
            serde_json::from_reader(std::io::BufReader::new(f))
                .map_err(|e| format!("not JSON: {e}"))
        })
        .await
        .map_err(|e| format!("reading a page: {e}"))?
        .map_err(|e| format!("{page_url}: {e}"))?;
        let Some(items) = page.get("features").and_then(|f| f.as_array()) else {
            return Err(format!(
                "{page_url}: not a GeoJSON FeatureCollection (no \"features\")"
            ));
        };
        for item in items {
            serde_json::to_writer(&mut out, item).map_err(|e| format!("spool: {e}"))?;
            out.write_all(b"\n").map_err(|e| format!("spool: {e}"))?;
        }
        features += items.len() as u64;
        pages += 1;
        let base = reqwest::Url::parse(&file.final_url).unwrap_or(page_url);
        next = match next_link(&page, &base) {
            Some(n) if !same_server(&n, &start) => {
                return Err(format!(
                    "{base}: its next link leads to another server ({n}); refused"
                ))
            }
            // An empty page ends the walk even if it links on (some servers do).
            Some(_) if items.is_empty() => None,
            other => other,
        };
    }
    out.flush().map_err(|e| format!("spool: {e}"))?;
    Ok(Items {
        path,
        pages,
        features,
        _dir: scratch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_urls_become_items_urls() {
        for (given, want) in [
            (
                "https://geo.lund.se/ogc/collections/parkering",
                Some("https://geo.lund.se/ogc/collections/parkering/items?limit=1000"),
            ),
            (
                "https://geo.lund.se/ogc/collections/parkering/",
                Some("https://geo.lund.se/ogc/collections/parkering/items?limit=1000"),
            ),
            (
                "https://geo.lund.se/ogc/collections/parkering/items?f=json",
                Some("https://geo.lund.se/ogc/collections/parkering/items?f=json&limit=1000"),
            ),
            (
                "http://x.se/collections/a/items?limit=50",
                Some("http://x.se/collections/a/items?limit=50"),
            ),
            ("https://geo.lund.se/ogc/", None),
            ("https://geo.lund.se/ogc/collections", None),
            ("https://geo.lund.se/ogc/collections/a/items/17", None),
            ("not a url", None),
        ] {
            assert_eq!(
                items_url(given).ok().map(|u| u.to_string()).as_deref(),
                want,
                "{given}"
            );
        }
    }

    #[test]
    fn next_links_are_found_and_resolved() {
        let base =
            reqwest::Url::parse("https://x.se/ogc/collections/a/items?limit=2").expect("url");
        let page = serde_json::json!({"links": [
            {"rel": "self", "href": "items?limit=2"},
            {"rel": "next", "type": "text/html", "href": "items?offset=2&f=html"},
            {"rel": "next", "type": "application/geo+json", "href": "items?offset=2"}
        ]});
        assert_eq!(
            next_link(&page, &base).map(|u| u.to_string()).as_deref(),
            Some("https://x.se/ogc/collections/a/items?offset=2")
        );
        assert_eq!(next_link(&serde_json::json!({"links": []}), &base), None);
        let elsewhere = reqwest::Url::parse("https://evil.example/items").expect("url");
        assert!(!same_server(&elsewhere, &base));
        assert!(same_server(
            &reqwest::Url::parse("https://x.se:443/other").expect("url"),
            &base
        ));
    }
}
