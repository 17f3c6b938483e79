//! OGC API – Tiles (vector tiles in WebMercatorQuad and SWEREF99TM), TileJSON 3.0 and plain XYZ
//! URLs: per collection (`/collections/{id}/tiles/…`) and for the whole dataset with one layer
//! per collection (`/tiles/…?collections=a,b`). An empty tile is answered `204 No Content`.
//! TileJSON describes Web Mercator tiles only (it has no way to name another grid), so it is
//! offered for WebMercatorQuad.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value as Json};

use super::common::{engine_error, fxhash, source};
use super::params::Params;
use super::{base_url, etag_check, not_modified, quote, ApiError, AppState, JSON};
use crate::catalog::{AttrType, CollectionId, ZoomRange};
use crate::engine::Lookup;
use crate::engine::{Query, Served};
use crate::tiles::tms::{self, TileId, Tms};

pub const MVT: &str = "application/vnd.mapbox-vector-tile";

fn check_tms(tms: &str) -> Result<Tms, ApiError> {
    Tms::parse(tms).ok_or_else(|| {
        let ids: Vec<&str> = Tms::ALL.iter().map(|t| t.id()).collect();
        ApiError::NotFound(format!(
            "no tile matrix set {}; this server offers {}",
            quote(tms),
            ids.join(" and ")
        ))
    })
}

/// TileJSON is for WebMercatorQuad tiles only.
fn check_tilejson_tms(tms: &str) -> Result<(), ApiError> {
    match check_tms(tms)? {
        Tms::WebMercatorQuad => Ok(()),
        other => Err(ApiError::NotFound(format!(
            "TileJSON describes WebMercatorQuad tiles only; {} tiles are described by their \
             tileset document, without /tilejson.json",
            other.id()
        ))),
    }
}

/// The levels of `tms` at which a collection with zoom range `zoom` has tiles.
fn levels(tms: Tms, zoom: ZoomRange) -> Option<(u8, u8)> {
    let mut inside = (0..=tms.max_level()).filter(|&l| zoom.contains(tms.web_mercator_zoom(l)));
    let first = inside.next()?;
    Some((first, inside.next_back().unwrap_or(first)))
}

fn json(body: Json) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, JSON))
        .body(body.to_string())
}

pub async fn tile_matrix_sets(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Params::parse(req.query_string(), &["f"])?;
    let base = base_url(&req)?;
    let sets: Vec<Json> = Tms::ALL
        .iter()
        .map(|t| {
            let mut set = json!({
                "id": t.id(),
                "title": t.title(),
                "links": [{"href": format!("{base}/tileMatrixSets/{}", t.id()), "rel": "self", "type": JSON}],
            });
            if let Some(uri) = t.uri() {
                set["uri"] = json!(uri);
            }
            set
        })
        .collect();
    Ok(json(json!({ "tileMatrixSets": sets })))
}

pub async fn tile_matrix_set(
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(req.query_string(), &["f"])?;
    Ok(json(check_tms(&path)?.definition()))
}

/// The collections a dataset request names (`collections=a,b`), or all.
fn chosen(state: &AppState, q: &Params) -> Result<Vec<Served>, ApiError> {
    match q.get("collections") {
        None => Ok(state.engine.list()),
        Some(list) => {
            // Each collection once: a repeated name would draw (and cost) its layer twice.
            let mut seen = std::collections::HashSet::new();
            list.split(',')
                .filter(|s| !s.is_empty() && seen.insert(*s))
                .map(|raw| {
                    let id: CollectionId = raw.parse().map_err(|_| {
                        ApiError::BadRequest(format!("collections: no collection {}", quote(raw)))
                    })?;
                    match state.engine.lookup(&id) {
                        Lookup::Served(s) => Ok(s),
                        Lookup::Unavailable(why) => Err(ApiError::Unavailable(format!(
                            "collection {id} is not available: {why}"
                        ))),
                        Lookup::Missing => Err(ApiError::BadRequest(format!(
                            "collections: no collection {}",
                            quote(raw)
                        ))),
                    }
                })
                .collect()
        }
    }
}

/// What names the content of the layers' tiles: the collection's version for one, a hash of
/// every id and version for several. A tile URL with `v=` equal to it is immutable.
fn version_tag(layers: &[Served]) -> String {
    match layers {
        [one] => one.version().to_string(),
        _ => format!(
            "{:x}",
            fxhash(
                &layers
                    .iter()
                    .map(|s| format!("{}.{}", s.entry().id, s.version()))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        ),
    }
}

fn tile_template(base: &str, collection: Option<&str>, query: &str) -> String {
    let tms = Tms::WebMercatorQuad.id();
    let path = match collection {
        Some(id) => format!("{base}/collections/{id}/tiles/{tms}/{{z}}/{{y}}/{{x}}"),
        None => format!("{base}/tiles/{tms}/{{z}}/{{y}}/{{x}}"),
    };
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

fn field_type(kind: AttrType) -> &'static str {
    match kind {
        AttrType::Integer | AttrType::Real => "Number",
        AttrType::Boolean => "Boolean",
        _ => "String",
    }
}

/// Union of the collections' extents (the world when none has one).
fn bounds(layers: &[Served]) -> [f64; 4] {
    let mut b: Option<[f64; 4]> = None;
    for s in layers {
        if let Some(e) = s.entry().extent {
            let e = e.0;
            b = Some(match b {
                None => e,
                Some(a) => [
                    a[0].min(e[0]),
                    a[1].min(e[1]),
                    a[2].max(e[2]),
                    a[3].max(e[3]),
                ],
            });
        }
    }
    let [w, s, e, n] = b.unwrap_or([-180.0, -tms::MAX_LAT, 180.0, tms::MAX_LAT]);
    [
        w.max(-180.0),
        s.max(-tms::MAX_LAT),
        e.min(180.0),
        n.min(tms::MAX_LAT),
    ]
}

/// A zoom at which `b` fits roughly in one 512-pixel view.
fn fit_zoom(b: [f64; 4]) -> u8 {
    let span = (b[2] - b[0]).max((b[3] - b[1]) * 1.6).max(1e-6);
    ((360.0 / span).log2().floor() as i32).clamp(0, 16) as u8
}

fn tilejson(layers: &[Served], base: &str, collection: Option<&str>, query: &str) -> Json {
    let b = bounds(layers);
    let name = match (collection, layers.first()) {
        (Some(_), Some(s)) => s.entry().meta.title.clone(),
        _ => "hamn".to_string(),
    };
    let attribution: Vec<String> = layers
        .iter()
        .filter_map(|s| {
            s.entry()
                .meta
                .publisher
                .clone()
                .map(|p| match &s.entry().meta.licence {
                    Some(l) => format!("{p} ({l})"),
                    None => p,
                })
                // MapLibre shows attribution as HTML: publisher texts come from ingest options
                // and catalogs, so they are escaped like any page text.
                .map(|text| maud::html! { (text) }.into_string())
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let minzoom = layers
        .iter()
        .map(|s| s.entry().zoom.min())
        .min()
        .unwrap_or(0);
    let maxzoom = layers
        .iter()
        .map(|s| s.entry().zoom.max())
        .max()
        .unwrap_or(22);
    json!({
        "tilejson": "3.0.0",
        "name": name,
        "scheme": "xyz",
        "tiles": [tile_template(base, collection, &{
            let v = format!("v={}", version_tag(layers));
            if query.is_empty() { v } else { format!("{query}&{v}") }
        })],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": b,
        "center": [(b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, fit_zoom(b).clamp(minzoom, maxzoom)],
        "attribution": attribution.join("; "),
        "vector_layers": layers.iter().map(|s| {
            let fields: serde_json::Map<String, Json> = s.entry().attributes.iter()
                .map(|a| (a.name.clone(), Json::String(field_type(a.kind).to_string())))
                .collect();
            json!({
                "id": s.entry().id,
                "description": s.entry().meta.title,
                "minzoom": s.entry().zoom.min(),
                "maxzoom": s.entry().zoom.max(),
                "fields": fields,
                "geometry_types": s.entry().geometry_types,
            })
        }).collect::<Vec<_>>(),
    })
}

fn tileset(
    layers: &[Served],
    base: &str,
    collection: Option<&str>,
    tms: Tms,
    max_features: usize,
) -> Json {
    let id = tms.id();
    let here = match collection {
        Some(c) => format!("{base}/collections/{c}/tiles/{id}"),
        None => format!("{base}/tiles/{id}"),
    };
    let b = bounds(layers);
    let mut links = vec![
        json!({"href": here, "rel": "self", "type": JSON}),
        json!({"href": format!("{base}/tileMatrixSets/{id}"), "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": JSON}),
        json!({"href": format!("{here}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"), "rel": "item", "type": MVT, "templated": true}),
    ];
    if tms == Tms::WebMercatorQuad {
        links.push(json!({"href": format!("{here}/tilejson.json"), "rel": "describedby", "type": JSON, "title": "TileJSON"}));
    }
    // A layer is listed for the levels where it has tiles; one with none in this set is left out.
    let layers: Vec<Json> = layers
        .iter()
        .filter_map(|s| {
            let (min, max) = levels(tms, s.entry().zoom)?;
            Some(json!({
                "id": s.entry().id,
                "title": s.entry().meta.title,
                "dataType": "vector",
                "geometryType": s.entry().geometry_types.first().map(|g| g.to_lowercase()).unwrap_or_default(),
                "minTileMatrix": min.to_string(),
                "maxTileMatrix": max.to_string(),
                // Not an OGC member: what a client needs to know to read a dense tile right.
                "hamn:maxFeaturesPerTile": max_features,
                "hamn:thinned": s.entry().feature_count > max_features as u64,
            }))
        })
        .collect();
    let mut doc = json!({
        "title": collection.map_or("All collections".to_string(), |c| format!("{c} as vector tiles")),
        "dataType": "vector",
        "crs": tms.crs(),
        "boundingBox": {"lowerLeft": [b[0], b[1]], "upperRight": [b[2], b[3]], "crs": crate::crs::CRS84},
        "layers": layers,
        "links": links,
        "description": format!(
            "A tile holds at most {max_features} features of each layer. Where more fall in a tile \
             (low zoom levels of large collections), it keeps a sample spread over the tile, the \
             same features in every tile, and drops the rest; zoom in, or use the items API, \
             for all of them."
        ),
    });
    if let Some(uri) = tms.uri() {
        doc["tileMatrixSetURI"] = json!(uri);
    }
    doc
}

/// The tilesets list; a collection's leaves out the sets in which its zoom range has no level.
fn tilesets(base: &str, collection: Option<(&str, ZoomRange)>) -> Json {
    let here = match collection {
        Some((id, _)) => format!("{base}/collections/{id}/tiles"),
        None => format!("{base}/tiles"),
    };
    let sets: Vec<Json> = Tms::ALL
        .iter()
        .filter(|&&t| collection.is_none_or(|(_, zoom)| levels(t, zoom).is_some()))
        .map(|t| {
            let id = t.id();
            let mut set = json!({
                "title": id,
                "dataType": "vector",
                "crs": t.crs(),
                "links": [
                    {"href": format!("{here}/{id}"), "rel": "self", "type": JSON},
                    {"href": format!("{base}/tileMatrixSets/{id}"), "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": JSON},
                    {"href": format!("{here}/{id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"), "rel": "item", "type": MVT, "templated": true},
                ],
            });
            if let Some(uri) = t.uri() {
                set["tileMatrixSetURI"] = json!(uri);
            }
            set
        })
        .collect();
    json!({
        "links": [{"href": here, "rel": "self", "type": JSON}],
        "tilesets": sets,
    })
}

pub async fn collection_tilesets(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let s = source(&state, &path)?;
    Params::parse(req.query_string(), &["f"])?;
    Ok(json(tilesets(
        &base_url(&req)?,
        Some((s.entry().id.as_str(), s.entry().zoom)),
    )))
}

pub async fn collection_tileset(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, tms) = path.into_inner();
    let s = source(&state, &id)?;
    let tms = check_tms(&tms)?;
    Params::parse(req.query_string(), &["f"])?;
    if levels(tms, s.entry().zoom).is_none() {
        return Err(ApiError::NotFound(format!(
            "{} has no {} tiles at its zoom range {} to {}",
            s.entry().id,
            tms.id(),
            s.entry().zoom.min(),
            s.entry().zoom.max()
        )));
    }
    Ok(json(tileset(
        std::slice::from_ref(&s),
        &base_url(&req)?,
        Some(s.entry().id.as_str()),
        tms,
        state.tile_options.max_features,
    )))
}

pub async fn collection_tilejson(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, tms) = path.into_inner();
    let s = source(&state, &id)?;
    check_tilejson_tms(&tms)?;
    let q = Params::parse(req.query_string(), &["filter", "filter-lang", "filter-crs"])?;
    // A filter given here is checked now and passed on to every tile URL.
    tile_queries(&q, std::slice::from_ref(&s))?;
    Ok(json(tilejson(
        std::slice::from_ref(&s),
        &base_url(&req)?,
        Some(s.entry().id.as_str()),
        &q.rebuild(&[], &[]),
    )))
}

pub async fn dataset_tilesets(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Params::parse(req.query_string(), &["f"])?;
    Ok(json(tilesets(&base_url(&req)?, None)))
}

pub async fn dataset_tileset(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tms = check_tms(&path)?;
    let q = Params::parse(req.query_string(), &["f", "collections"])?;
    Ok(json(tileset(
        &chosen(&state, &q)?,
        &base_url(&req)?,
        None,
        tms,
        state.tile_options.max_features,
    )))
}

pub async fn dataset_tilejson(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_tilejson_tms(&path)?;
    let q = Params::parse(
        req.query_string(),
        &["collections", "filter", "filter-lang", "filter-crs"],
    )?;
    let layers = chosen(&state, &q)?;
    tile_queries(&q, &layers)?;
    let query = q.rebuild(&[], &[]);
    Ok(json(tilejson(&layers, &base_url(&req)?, None, &query)))
}

/// Query parameters a tile request takes: a CQL2 filter as on items.
/// `v`: the version the URL was made for (see `version_tag`).
const TILE_PARAMS: &[&str] = &["f", "filter", "filter-lang", "filter-crs", "v"];
const DATASET_TILE_PARAMS: &[&str] = &[
    "f",
    "collections",
    "filter",
    "filter-lang",
    "filter-crs",
    "v",
];

/// Parses `{z}/{y}/{x}`: not a number is 400; outside the tile matrix set is 404.
fn tile_id(tms: Tms, z: &str, y: &str, x: &str) -> Result<TileId, ApiError> {
    let name = tms.id();
    let num = |name: &str, v: &str| -> Result<u32, ApiError> {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::BadRequest(format!(
                "{name} {}: expected a whole number",
                quote(v)
            )));
        }
        v.parse::<u32>()
            .map_err(|_| ApiError::NotFound(format!("{name} {} is outside {}", quote(v), tms.id())))
    };
    let (zv, yv, xv) = (
        num("tileMatrix", z)?,
        num("tileRow", y)?,
        num("tileCol", x)?,
    );
    u8::try_from(zv)
        .ok()
        .and_then(|z| TileId::new(tms, z, xv, yv))
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "tile {zv}/{yv}/{xv} is outside {name} (levels 0 to {})",
                tms.max_level()
            ))
        })
}

/// The filter (`filter`, `filter-lang`, `filter-crs`) bound to each layer, and the text that
/// names it in cache keys and ETags.
fn tile_queries(q: &Params, layers: &[Served]) -> Result<(Vec<Query>, String), ApiError> {
    if q.get("filter").is_none() && q.get("filter-lang").is_none() && q.get("filter-crs").is_none()
    {
        return Ok((Vec::new(), String::new()));
    }
    let mut queries = Vec::with_capacity(layers.len());
    for s in layers {
        queries.push(Query {
            filter: super::query::parse_filter(q, s.as_ref())?.map(Arc::new),
            ..Query::default()
        });
    }
    let key = q.rebuild(&["f", "collections", "v"], &[]);
    Ok((queries, key))
}

async fn tile_response(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    layers: Vec<Served>,
    tile: TileId,
    (queries, filter_key): (Vec<Query>, String),
    // True when the URL's `v=` names the version served: the response never changes.
    versioned: bool,
) -> Result<HttpResponse, ApiError> {
    let tag: String = layers
        .iter()
        .map(|s| format!("{}.{}", s.entry().id, s.version()))
        .collect::<Vec<_>>()
        .join(",");
    let (etag, fresh) = etag_check(
        req,
        &format!(
            "t{:x}-{}-{}-{}-{}",
            // The collation decides what a filter ordering text matches.
            fxhash(&format!(
                "{tag}?{filter_key}#{}",
                layers.first().map_or("", |s| s.collation().name())
            )),
            tile.tms().id(),
            tile.z(),
            tile.x(),
            tile.y()
        ),
    );
    if fresh {
        return Ok(not_modified(&etag));
    }
    let modified = layers.iter().map(|s| s.entry().updated).max();
    let opts = state.tile_options;
    let area = tile.lonlat_bounds(opts.buffer, opts.extent);
    let estimate: usize = layers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.estimate(&Query {
                bbox: vec![area],
                ..queries.get(i).cloned().unwrap_or_default()
            })
        })
        .sum();
    let bytes = match crate::tiles::cached(&state.tiles, &layers, tile, &filter_key) {
        Some(hit) => hit,
        None if state.heavy.is_heavy(estimate) => {
            let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let queries: Vec<Query> = (0..layers.len())
                .map(|i| Query {
                    cancel: Some(cancel.clone()),
                    ..queries.get(i).cloned().unwrap_or_default()
                })
                .collect();
            let (state, runtime) = (state.clone(), tokio::runtime::Handle::current());
            state
                .heavy
                .clone()
                .run(cancel, move || {
                    runtime.block_on(crate::tiles::render(
                        &state.tiles,
                        &layers,
                        tile,
                        opts,
                        &queries,
                        &filter_key,
                    ))
                })
                .await?
                .map_err(engine_error)?
        }
        None => crate::tiles::render(&state.tiles, &layers, tile, opts, &queries, &filter_key)
            .await
            .map_err(engine_error)?,
    };
    let mut resp = if bytes.is_empty() {
        HttpResponse::NoContent()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::CONTENT_TYPE, MVT))
        .insert_header((header::ETAG, etag));
    let kind = if versioned {
        super::cache::Kind::Versioned
    } else {
        super::cache::Kind::Tile
    };
    state.cache.apply(&mut resp, kind, modified);
    Ok(if bytes.is_empty() {
        resp.finish()
    } else {
        resp.body(bytes)
    })
}

pub async fn collection_tile(
    req: HttpRequest,
    path: web::Path<(String, String, String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (id, tms, z, y, x) = path.into_inner();
    let s = source(&state, &id)?;
    let tms = check_tms(&tms)?;
    let q = Params::parse(req.query_string(), TILE_PARAMS)?;
    let tile = tile_id(tms, &z, &y, &x)?;
    if !s.entry().zoom.contains(tms.web_mercator_zoom(tile.z())) {
        let range = match levels(tms, s.entry().zoom) {
            Some((min, max)) => format!("at levels {min} to {max} only"),
            None => "at no level".to_string(),
        };
        return Err(ApiError::NotFound(format!(
            "{} has {} tiles {range}",
            s.entry().id,
            tms.id()
        )));
    }
    let layers = vec![s];
    let versioned = q.get("v") == Some(version_tag(&layers).as_str());
    let queries = tile_queries(&q, &layers)?;
    tile_response(&req, &state, layers, tile, queries, versioned).await
}

pub async fn dataset_tile(
    req: HttpRequest,
    path: web::Path<(String, String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (tms, z, y, x) = path.into_inner();
    let tms = check_tms(&tms)?;
    let q = Params::parse(req.query_string(), DATASET_TILE_PARAMS)?;
    let tile = tile_id(tms, &z, &y, &x)?;
    let all = chosen(&state, &q)?;
    let versioned = q.get("v") == Some(version_tag(&all).as_str());
    // Collections outside their zoom range are left out of the tile.
    let layers: Vec<Served> = all
        .into_iter()
        .filter(|s| s.entry().zoom.contains(tms.web_mercator_zoom(tile.z())))
        .collect();
    let queries = tile_queries(&q, &layers)?;
    tile_response(&req, &state, layers, tile, queries, versioned).await
}
