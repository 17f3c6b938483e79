//! `/metrics` in the Prometheus text format: request counts and latency by route pattern and
//! status (counted by the `Measure` middleware; the pattern, not the path, so the label set
//! stays bounded whatever clients ask for), and figures read at scrape time from the engine
//! (collections, memory, refreshes, snapshot builds), the tile cache, the heavy-work pool and
//! the process. Written by hand: a few counters and one histogram do not need a metrics crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

use super::AppState;

static NEXT_REQUEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    /// Requests at or below each bound (not cumulative here; summed when written).
    buckets: [u64; BUCKETS.len()],
}

/// Request counts and latencies by (route pattern, method, status).
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let mut all = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = all
            .entry((route.to_string(), method.to_string(), status))
            .or_default();
        s.count += 1;
        s.sum += seconds;
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            s.buckets[i] += 1;
        }
    }

    fn write_requests(&self, out: &mut String) {
        let all = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.push_str("# HELP hamn_http_requests_total HTTP requests answered, by route pattern, method and status.\n# TYPE hamn_http_requests_total counter\n");
        for ((route, method, status), s) in all.iter() {
            let _ = writeln!(
                out,
                "hamn_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {}",
                label(route),
                label(method),
                s.count
            );
        }
        out.push_str("# HELP hamn_http_request_duration_seconds Time to the response head, by route pattern, method and status.\n# TYPE hamn_http_request_duration_seconds histogram\n");
        for ((route, method, status), s) in all.iter() {
            let labels = format!(
                "route=\"{}\",method=\"{}\",status=\"{status}\"",
                label(route),
                label(method)
            );
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "hamn_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "hamn_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "hamn_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "hamn_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
    }
}

/// A label value as the text format wants it.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// Resident memory of the process, from /proc (Linux); 0 elsewhere.
fn resident_bytes() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    pages * 4096.0
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut out = String::with_capacity(8192);
    state.metrics.write_requests(&mut out);
    let engine = &state.engine;
    let served = engine.list();
    let one = |v: f64| vec![(String::new(), v)];
    let per_collection = |f: &dyn Fn(&dyn crate::engine::Source) -> f64| {
        served
            .iter()
            .map(|s| {
                (
                    format!("collection=\"{}\"", label(s.entry().id.as_str())),
                    f(s.as_ref()),
                )
            })
            .collect::<Vec<_>>()
    };
    metric(
        &mut out,
        "hamn_collection_features",
        "gauge",
        "Features served per collection.",
        &per_collection(&|s| s.entry().feature_count as f64),
    );
    metric(
        &mut out,
        "hamn_collection_memory_bytes",
        "gauge",
        "Estimated heap bytes of each collection's current snapshot.",
        &per_collection(&|s| s.summary().memory_bytes as f64),
    );
    metric(
        &mut out,
        "hamn_collection_engine",
        "gauge",
        "The engine serving each collection (1): memory, or postgis (from its table).",
        &served
            .iter()
            .map(|s| {
                (
                    format!(
                        "collection=\"{}\",engine=\"{}\"",
                        label(s.entry().id.as_str()),
                        s.engine().name()
                    ),
                    1.0,
                )
            })
            .collect::<Vec<_>>(),
    );
    metric(
        &mut out,
        "hamn_collection_version",
        "gauge",
        "Version served per collection.",
        &per_collection(&|s| s.version() as f64),
    );
    metric(
        &mut out,
        "hamn_collections_unavailable",
        "gauge",
        "Collections in the catalog not served at their catalog version.",
        &one(engine.failures().len() as f64),
    );
    metric(
        &mut out,
        "hamn_cursor_versions_held",
        "gauge",
        "Replaced versions still held for paging cursors.",
        &one(engine.previous_versions().len() as f64),
    );
    let status = engine.status();
    metric(
        &mut out,
        "hamn_refresh_failures_total",
        "counter",
        "Refreshes that could not read the store's catalog.",
        &one(status.failures_total as f64),
    );
    metric(
        &mut out,
        "hamn_refresh_last_success_timestamp_seconds",
        "gauge",
        "When the store's catalog was last read (Unix time).",
        &one(status.last_ok.map_or(0.0, |t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        })),
    );
    metric(
        &mut out,
        "hamn_snapshot_builds_total",
        "counter",
        "Snapshots built since start.",
        &one(status.builds_total as f64),
    );
    metric(
        &mut out,
        "hamn_snapshot_build_seconds_total",
        "counter",
        "Time spent building snapshots (reading the store included).",
        &one(status.build_seconds_total),
    );
    {
        use std::sync::atomic::Ordering::Relaxed;
        let h = &state.heavy;
        metric(
            &mut out,
            "hamn_heavy_requests_admitted",
            "gauge",
            "Heavy requests running or waiting now.",
            &one(h.admitted() as f64),
        );
        for (name, help, v) in [
            (
                "hamn_heavy_requests_completed_total",
                "Heavy requests finished.",
                &h.completed,
            ),
            (
                "hamn_heavy_requests_rejected_total",
                "Heavy requests refused with 503: too many running or waiting.",
                &h.rejected,
            ),
            (
                "hamn_heavy_requests_timed_out_total",
                "Heavy requests stopped at their deadline (503).",
                &h.timed_out,
            ),
        ] {
            metric(
                &mut out,
                name,
                "counter",
                help,
                &one(v.load(Relaxed) as f64),
            );
        }
    }
    let (hits, misses, bytes) = state.tiles.stats();
    metric(
        &mut out,
        "hamn_tile_cache_hits_total",
        "counter",
        "Tiles answered from the cache.",
        &one(hits as f64),
    );
    metric(
        &mut out,
        "hamn_tile_cache_misses_total",
        "counter",
        "Tiles encoded because the cache did not hold them.",
        &one(misses as f64),
    );
    metric(
        &mut out,
        "hamn_tile_cache_bytes",
        "gauge",
        "Bytes of encoded tiles in the cache.",
        &one(bytes as f64),
    );
    metric(
        &mut out,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory of the hamn process.",
        &one(resident_bytes()),
    );
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(out)
}

/// The one middleware of the API: gives every response an `X-Request-Id` (the client's, if it
/// sent a sane one, so a log line and a client report can be matched), `Vary: Accept` where the
/// representation was negotiated, counts it into `Metrics` by the route pattern it matched,
/// and (when on) hands the access log its record.
pub struct Measure {
    pub metrics: std::sync::Arc<Metrics>,
    pub access_log: Option<std::sync::Arc<super::access_log::AccessLog>>,
}

impl<S, B> Transform<S, ServiceRequest> for Measure
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = MeasureService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(MeasureService {
            service,
            metrics: self.metrics.clone(),
            access_log: self.access_log.clone(),
        }))
    }
}

pub struct MeasureService<S> {
    service: S,
    metrics: std::sync::Arc<Metrics>,
    access_log: Option<std::sync::Arc<super::access_log::AccessLog>>,
}

impl<S, B> Service<ServiceRequest> for MeasureService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future =
        futures_util::future::LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "{:x}",
                    NEXT_REQUEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                )
            });
        // Methods clients invent would each make a series: the three the API serves, or other.
        let method: &'static str = match req.method().as_str() {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "OPTIONS" => "OPTIONS",
            _ => "other",
        };
        let metrics = self.metrics.clone();
        let access = self.access_log.clone().map(|log| {
            let uri = req.uri();
            let target = match uri.path_and_query() {
                Some(pq) => pq.as_str(),
                None => uri.path(),
            };
            // The request line as sent, bounded: a 32 KiB filter need not be logged whole.
            let cut = (0..=target.len().min(2048))
                .rev()
                .find(|&i| target.is_char_boundary(i))
                .unwrap_or(0);
            (
                log,
                req.peer_addr().map(|a| a.ip()),
                target[..cut].to_string(),
            )
        });
        let fut = self.service.call(req);
        Box::pin(async move {
            let mut res = fut.await?;
            let headers = res.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&id) {
                headers.insert(header::HeaderName::from_static("x-request-id"), v);
            }
            // JSON and HTML documents are chosen by Accept (`negotiate`), so caches must key
            // on it; tiles and assets have one representation and stay cacheable as one.
            let negotiated = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("text/html") || t.contains("json"));
            if negotiated {
                headers.append(header::VARY, HeaderValue::from_static("Accept"));
            }
            // Unmatched paths share one label: their variety is the client's, not ours.
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_string());
            let seconds = started.elapsed().as_secs_f64();
            metrics.observe(&route, method, res.status().as_u16(), seconds);
            if let Some((log, peer, uri)) = access {
                let headers = res.headers();
                log.log(super::access_log::Entry {
                    at: std::time::SystemTime::now(),
                    peer,
                    method,
                    uri,
                    status: res.status().as_u16(),
                    bytes: headers
                        .get(header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok()),
                    seconds,
                    id: Some(id),
                });
            }
            Ok(res)
        })
    }
}
