//! `/collections/{id}/items` and `/collections/{id}/items/{featureId}`: features as GeoJSON
//! (or JSON-FG, see `jsonfg`), paged by an opaque cursor that pins the collection version it
//! started on, and the same pages and features in the encodings of `formats` (CSV, GeoJSON text
//! sequences, NDJSON, FlatGeobuf), chosen by `f` or `Accept`, streamed a chunk at a time, with
//! their paging in `Link` and `OGC-Number*` headers. The query itself is parsed in `query`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use super::common::{encode_error, engine_error, fxhash, page, source};
use super::jsonfg::{jsonfg_feature, jsonfg_root, profile, Profile, JSONFG};
use super::params::Params;
use super::query::{parse_items, response_crs, Cursor, ITEM_PARAMS};
use super::{
    base_url, etag_check, negotiate_among, not_modified, quote, ApiError, AppState, Format,
    GEOJSON, JSON,
};
use crate::catalog::CatalogEntry;
use crate::crs::Crs;
use crate::engine::snapshot::Feature;
use crate::engine::{Features, Served, Start};
use crate::formats::{self, Chunks, Encoding, Layer};

/// A feature's JSON in the response CRS: the pre-encoded text for CRS84 with all properties,
/// else encoded anew.
fn encode(
    entry: &CatalogEntry,
    f: &Feature,
    crs: Crs,
    selected: Option<&[usize]>,
) -> Result<String, ApiError> {
    formats::feature_geojson(entry, f, crs, selected)
        .map(|json| json.into_owned())
        .map_err(encode_error)
}

/// The snapshot an items request walks: the current one, or the version its cursor began on.
/// A cursor whose version is no longer held (replaced twice since, or the server restarted) is
/// answered 410 with a link that starts the same walk again on the current version, rather
/// than continued on other data.
fn walked(req: &HttpRequest, state: &AppState, current: Served) -> Result<Served, ApiError> {
    let Some(raw) = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(current);
    };
    let c = Cursor::decode(&raw)?;
    if c.version == current.version() {
        return Ok(current);
    }
    if let Some(s) = state.engine.get_version(&current.entry().id, c.version) {
        return Ok(s);
    }
    // Behind a load balancer, another instance may have loaded an ingest this one has not
    // yet: its cursor is not gone but early.
    if c.version > current.version() {
        return Err(ApiError::NotYet(format!(
            "this cursor walks version {} of {}, which this instance has not loaded yet (it serves version {}); ask again in a moment",
            c.version,
            current.entry().id,
            current.version()
        )));
    }
    let rest: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(req.query_string().as_bytes()).filter(|(k, _)| k != "cursor"),
        )
        .finish();
    let items_url = format!(
        "{}/collections/{}/items",
        base_url(req)?,
        current.entry().id
    );
    Err(ApiError::Gone {
        message: format!(
            "this cursor walks version {} of {}, which is no longer served (it is now at version {}); start the walk again",
            c.version,
            current.entry().id,
            current.version()
        ),
        restart: if rest.is_empty() {
            items_url
        } else {
            format!("{items_url}?{rest}")
        },
    })
}

fn link(href: String, rel: &str, ty: &str) -> serde_json::Value {
    serde_json::json!({"href": href, "rel": rel, "type": ty})
}

pub async fn items(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let current = source(&state, &path)?;
    // The cursor chooses the version first; everything else in the request is then read against
    // that version's attributes, so a cursor never applies one version's columns to another's.
    let s = walked(&req, &state, current)?;
    let entry = s.entry();
    let attrs = entry.attributes.clone();
    let q = Params::parse_with(req.query_string(), ITEM_PARAMS, |n| {
        attrs.iter().any(|a| a.name == n)
    })?;
    let format = negotiate_among(&req, q.get("f"), &Encoding::ALL)?;
    let profile = profile(&q, format)?;
    let r = parse_items(&q, s.as_ref(), &state)?;
    if !r.query.sort.is_empty()
        && r.cursor
            .is_some_and(|c| !matches!(c.start, Start::Offset(_)))
    {
        return Err(ApiError::BadRequest(
            "this cursor comes from an unsorted walk; start again without it to sort".into(),
        ));
    }
    let start = match (r.cursor, r.offset) {
        (Some(c), _) => c.start,
        (None, Some(o)) => Start::Offset(o),
        (None, None) => Start::Offset(0),
    };
    // HTML and JSON are different representations: never one ETag for both.
    let (etag, fresh) = etag_check(
        &req,
        &format!(
            "{}-v{}-{:x}-{}",
            entry.id,
            s.version(),
            // The collation decides a sorted or filtered page: a restart with another one
            // must not answer 304 to a page cached before it.
            fxhash(&format!("{}#{}", req.query_string(), s.collation().name())),
            format.tag()
        ),
    );
    if fresh {
        return Ok(not_modified(&etag));
    }
    let page = page(&state, &s, &r.query, start, r.limit).await?;

    let base = base_url(&req)?;
    let items_url = format!("{base}/collections/{}/items", entry.id);
    // A link to another page (`extra`: its cursor or offset) in the format `f` (None: the
    // format this request named, if it named one).
    let with = |extra: &[(&str, String)], f: Option<&str>| {
        let mut drop = vec!["cursor", "offset"];
        let mut add = extra.to_vec();
        if let Some(f) = f {
            drop.push("f");
            add.push(("f", f.to_string()));
        }
        let qs = q.rebuild(&drop, &add);
        if qs.is_empty() {
            items_url.clone()
        } else {
            format!("{items_url}?{qs}")
        }
    };
    let self_href = if req.query_string().is_empty() {
        items_url.clone()
    } else {
        format!("{items_url}?{}", req.query_string())
    };
    let mut links = vec![
        link(self_href, "self", GEOJSON),
        link(
            format!("{base}/collections/{}", entry.id),
            "collection",
            JSON,
        ),
    ];
    // This page in each other encoding (same query, cursor and offset).
    links.extend(alternates(&items_url, &q, "This page"));
    let use_offsets = matches!(start, Start::Offset(_)) && r.offset.is_some();
    // A sorted walk cannot resume after a fid: its cursor holds a position instead.
    let sorted = !r.query.sort.is_empty();
    let at = |position: usize| {
        let c = Cursor {
            version: s.version(),
            start: Start::Offset(position),
        };
        vec![("cursor", c.encode())]
    };
    let returned = page.features.len();
    let next = page
        .has_more
        .then(|| match (use_offsets, page.features.last()) {
            (true, _) => vec![("offset", (page.first_position + returned).to_string())],
            (false, _) if sorted => at(page.first_position + returned),
            (false, Some(last)) => {
                let c = Cursor {
                    version: s.version(),
                    start: Start::After(last.fid),
                };
                vec![("cursor", c.encode())]
            }
            (false, None) => vec![],
        });
    let prev = page
        .has_prev
        .then(|| match (use_offsets, page.features.first()) {
            (true, _) => vec![(
                "offset",
                page.first_position.saturating_sub(r.limit).to_string(),
            )],
            (false, _) if sorted => at(page.first_position.saturating_sub(r.limit)),
            (false, Some(first)) => {
                let c = Cursor {
                    version: s.version(),
                    start: Start::Before(first.fid),
                };
                vec![("cursor", c.encode())]
            }
            (false, None) => vec![(
                "offset",
                page.first_position.saturating_sub(r.limit).to_string(),
            )],
        });
    // The Link header names pages in the format of this response: FlatGeobuf and CSV have no
    // place for links of their own.
    let (header_f, header_type) = match format {
        Format::Encoded(e) => (Some(e.name()), e.media_type()),
        _ => (None, GEOJSON),
    };
    let mut header_links = Vec::new();
    for (rel, extra) in [("next", &next), ("prev", &prev)] {
        if let Some(extra) = extra {
            let href = with(extra, header_f);
            header_links.push(format!("<{href}>; rel=\"{rel}\"; type=\"{header_type}\""));
            links.push(link(with(extra, None), rel, GEOJSON));
        }
    }

    if format == Format::Html {
        let href = |rel: &str| {
            links
                .iter()
                .find(|l| l["rel"] == rel)
                .and_then(|l| l["href"].as_str())
                .map(str::to_string)
        };
        let features: Vec<&Feature> = page.features.iter().collect();
        let map = super::map::block(&super::map::MapView {
            layers: std::slice::from_ref(&s),
            tilejson: &super::map::collection_tilejson(&base, &entry.id),
            base: &base,
            basemap: state.basemap_style.as_deref(),
            highlight: Some(&features),
        });
        return Ok(super::html::items(
            &super::html::ItemsPage {
                entry,
                features,
                matched: page.matched,
                next: href("next"),
                prev: href("prev"),
            },
            &base,
            map,
        ));
    }

    let matched = page.matched;
    if let Format::Encoded(e) = format {
        let layer = Layer::new(entry, r.selected.as_deref(), r.crs, page.features.iter());
        let encoder = formats::encoder(e, entry, layer, r.selected.clone());
        let body = encoded_stream(entry, page.features.clone(), encoder)?;
        let mut resp = HttpResponse::Ok();
        resp.insert_header((header::CONTENT_TYPE, e.content_type()))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.{}\"", entry.id, e.extension()),
            ))
            .insert_header(("Content-Crs", format!("<{}>", r.crs.uri())))
            .insert_header(("OGC-NumberReturned", returned.to_string()))
            .insert_header((header::ETAG, etag));
        if let Some(n) = matched {
            resp.insert_header(("OGC-NumberMatched", n.to_string()));
        }
        state
            .cache
            .apply(&mut resp, super::cache::Kind::Document, Some(entry.updated));
        if !header_links.is_empty() {
            resp.insert_header((header::LINK, header_links.join(", ")));
        }
        return Ok(resp.streaming(body));
    }

    let mut tail = String::with_capacity(256);
    tail.push(']');
    if let Some(n) = matched {
        tail.push_str(",\"numberMatched\":");
        tail.push_str(&n.to_string());
    }
    tail.push_str(",\"numberReturned\":");
    tail.push_str(&returned.to_string());
    tail.push_str(",\"timeStamp\":");
    tail.push_str(
        &serde_json::Value::String(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .to_string(),
    );
    tail.push_str(",\"links\":");
    tail.push_str(&serde_json::Value::Array(links).to_string());
    tail.push('}');
    const HEAD: &str = "{\"type\":\"FeatureCollection\",\"features\":[";
    // Pre-encoded features are streamed as they are, a chunk at a time, so a page of thousands
    // is never one string in memory; other CRSs, property selections and JSON-FG re-encode
    // (and can fail with a 400, so they are encoded before the response starts).
    let body = if r.crs == Crs::Crs84 && r.selected.is_none() && profile == Profile::Plain {
        Body::Stream(feature_stream(page.features.clone(), HEAD, tail))
    } else {
        let mut body = String::with_capacity(64 + returned * 256);
        if profile == Profile::Plain {
            body.push_str(HEAD);
        } else {
            body.push_str("{\"type\":\"FeatureCollection\",");
            body.push_str(&jsonfg_root(entry, r.crs, &base));
            body.push_str(",\"features\":[");
        }
        for (n, f) in page.features.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(&match profile {
                Profile::Plain => encode(entry, f, r.crs, r.selected.as_deref())?,
                _ => jsonfg_feature(entry, f, r.crs, r.selected.as_deref(), profile)?,
            });
        }
        body.push_str(&tail);
        Body::Whole(body)
    };

    let mut resp = HttpResponse::Ok();
    let media = if profile == Profile::Plain {
        GEOJSON
    } else {
        JSONFG
    };
    resp.insert_header((header::CONTENT_TYPE, media))
        .insert_header(("Content-Crs", format!("<{}>", r.crs.uri())))
        .insert_header(("OGC-NumberReturned", returned.to_string()))
        .insert_header((header::ETAG, etag));
    if let Some(n) = matched {
        resp.insert_header(("OGC-NumberMatched", n.to_string()));
    }
    state
        .cache
        .apply(&mut resp, super::cache::Kind::Document, Some(entry.updated));
    if !header_links.is_empty() {
        resp.insert_header((header::LINK, header_links.join(", ")));
    }
    Ok(match body {
        Body::Whole(text) => resp.body(text),
        Body::Stream(stream) => resp.streaming(stream),
    })
}

enum Body<S> {
    Whole(String),
    Stream(S),
}

/// Features per chunk of a streamed page: about 100 KB of typical municipal features.
const CHUNK: usize = 256;

/// A page in another encoding, a chunk at a time, each encoded when the connection takes it.
/// The first chunk (the head and up to `formats::CHUNK` features) is encoded before the
/// response starts, so a feature that cannot be written in the requested CRS answers 400 as the
/// GeoJSON page does; one further on can only end the stream early (the client sees a body cut
/// short, and the log says why).
fn encoded_stream(
    entry: &CatalogEntry,
    features: Features,
    encoder: Box<dyn formats::FeatureEncoder>,
) -> Result<impl futures_util::Stream<Item = Result<bytes::Bytes, actix_web::Error>>, ApiError> {
    let collection = entry.id.to_string();
    let mut chunks = Chunks::new(features, encoder);
    let first = chunks.next().transpose().map_err(encode_error)?;
    let rest = chunks.map(move |c| {
        c.map(bytes::Bytes::from).map_err(|e| {
            tracing::error!(collection = %collection, error = %e, "a streamed page stopped early");
            actix_web::error::ErrorInternalServerError(e.to_string())
        })
    });
    Ok(futures_util::stream::iter(
        first
            .map(|b| Ok(bytes::Bytes::from(b)))
            .into_iter()
            .chain(rest),
    ))
}

/// `head`, the page's pre-encoded features separated by commas, `tail`: one chunk at a time.
fn feature_stream(
    features: Features,
    head: &'static str,
    tail: String,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, actix_web::Error>> {
    let chunks = (0..features.len()).step_by(CHUNK).map(move |from| {
        let to = (from + CHUNK).min(features.len());
        let mut buf = String::with_capacity((to - from) * 320);
        for n in from..to {
            if n > 0 {
                buf.push(',');
            }
            buf.push_str(features.get(n).map_or("null", Feature::json));
        }
        bytes::Bytes::from(buf)
    });
    futures_util::stream::iter(
        std::iter::once(bytes::Bytes::from_static(head.as_bytes()))
            .chain(chunks)
            .chain(std::iter::once(bytes::Bytes::from(tail)))
            .map(Ok),
    )
}

pub async fn item(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (collection, feature) = path.into_inner();
    let s = source(&state, &collection)?;
    let entry = s.entry();
    let q = Params::parse(req.query_string(), &["f", "crs", "profile"])?;
    let format = negotiate_among(&req, q.get("f"), &Encoding::ALL)?;
    let profile = profile(&q, format)?;
    let crs = response_crs(&q)?;
    let f = s.item(&feature).await.map_err(engine_error)?;
    let f = f.as_ref().ok_or_else(|| {
        ApiError::NotFound(format!(
            "no feature {} in collection {}",
            quote(&feature),
            entry.id
        ))
    })?;
    if format == Format::Html {
        let base = base_url(&req)?;
        let map = super::map::block(&super::map::MapView {
            layers: std::slice::from_ref(&s),
            tilejson: &super::map::collection_tilejson(&base, &entry.id),
            base: &base,
            basemap: state.basemap_style.as_deref(),
            highlight: Some(&[f]),
        });
        return Ok(super::html::item(entry, f, &base, map));
    }
    // The query (crs, f) makes the representation too.
    let (etag, fresh) = etag_check(
        &req,
        &format!(
            "{}-v{}-{:x}-{}",
            entry.id,
            s.version(),
            fxhash(&format!("{feature}?{}", req.query_string())),
            format.tag()
        ),
    );
    if fresh {
        return Ok(not_modified(&etag));
    }
    if let Format::Encoded(e) = format {
        let layer = Layer::new(entry, None, crs, std::iter::once(f));
        let mut encoder = formats::encoder(e, entry, layer, None);
        let body = formats::encode_one(encoder.as_mut(), f).map_err(encode_error)?;
        let mut resp = HttpResponse::Ok();
        resp.insert_header((header::CONTENT_TYPE, e.content_type()))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"{}-{}.{}\"",
                    entry.id,
                    file_name_part(f.id()),
                    e.extension()
                ),
            ))
            .insert_header(("Content-Crs", format!("<{}>", crs.uri())))
            .insert_header((header::ETAG, etag));
        state
            .cache
            .apply(&mut resp, super::cache::Kind::Document, Some(entry.updated));
        return Ok(resp.body(body));
    }
    let base = base_url(&req)?;
    let item_url = format!(
        "{base}/collections/{}/items/{}",
        entry.id,
        urlencode(f.id())
    );
    let mut links = vec![
        link(item_url.clone(), "self", GEOJSON),
        link(
            format!("{base}/collections/{}", entry.id),
            "collection",
            JSON,
        ),
    ];
    links.extend(alternates(&item_url, &q, "This feature"));
    let links = serde_json::Value::Array(links);
    // The feature's JSON ends with '}': add the links before it.
    let (json, media) = match profile {
        Profile::Plain => (encode(entry, f, crs, None)?, GEOJSON),
        _ => {
            // A JSON-FG document's root declares its conformance (and CRS).
            let feature = jsonfg_feature(entry, f, crs, None, profile)?;
            (
                format!("{{{},{}", jsonfg_root(entry, crs, &base), &feature[1..]),
                JSONFG,
            )
        }
    };
    let body = format!("{},\"links\":{links}}}", &json[..json.len() - 1]);
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, media))
        .insert_header(("Content-Crs", format!("<{}>", crs.uri())))
        .insert_header((header::ETAG, etag));
    state
        .cache
        .apply(&mut resp, super::cache::Kind::Document, Some(entry.updated));
    Ok(resp.body(body))
}

/// A feature id as part of a file name: letters, digits, `-` and `_` kept, anything else `_`.
fn file_name_part(id: &str) -> String {
    id.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `rel=alternate` links to `url` with the same query in each other encoding.
fn alternates(url: &str, q: &Params, what: &str) -> Vec<serde_json::Value> {
    Encoding::ALL
        .iter()
        .map(|e| {
            let mut l = link(
                format!("{url}?{}", q.rebuild(&["f"], &[("f", e.name().into())])),
                "alternate",
                e.media_type(),
            );
            l["title"] = format!("{what} as {}", e.title()).into();
            l
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
