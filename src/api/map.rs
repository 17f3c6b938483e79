//! The map viewer: MapLibre GL JS (committed under `assets/maplibre-gl/` with its licence and
//! served from here; nothing comes from a CDN) drawing collections as vector tiles from this
//! server, with a layer list, a popup of the clicked feature's attributes, and the view fitted
//! to where the features are.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::ApiError;
use crate::engine::Snapshot;
use maud::{html, Markup, PreEscaped};

const MAPLIBRE_JS: &[u8] = include_bytes!("../../assets/maplibre-gl/maplibre-gl.js");
const MAPLIBRE_CSS: &[u8] = include_bytes!("../../assets/maplibre-gl/maplibre-gl.css");
const MAPLIBRE_LICENSE: &[u8] = include_bytes!("../../assets/maplibre-gl/LICENSE.txt");
const VIEWER_JS: &str = include_str!("map.js");

/// `/assets/maplibre-gl/{file}`: the committed MapLibre build.
pub async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (body, ty): (&'static [u8], &str) = match path.as_str() {
        "maplibre-gl.js" => (MAPLIBRE_JS, "text/javascript; charset=utf-8"),
        "maplibre-gl.css" => (MAPLIBRE_CSS, "text/css; charset=utf-8"),
        "LICENSE.txt" => (MAPLIBRE_LICENSE, "text/plain; charset=utf-8"),
        "viewer.js" => (VIEWER_JS.as_bytes(), "text/javascript; charset=utf-8"),
        other => {
            return Err(ApiError::NotFound(format!(
                "no asset {}",
                super::quote(other)
            )))
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, ty))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body))
}

/// The HTML of a map showing `layers` through the TileJSON at `tilejson`.
pub fn block(layers: &[Arc<Snapshot>], tilejson: &str, base: &str) -> Markup {
    let mut fit: Option<[f64; 4]> = None;
    for s in layers {
        if let Some(b) = s.core_bbox {
            fit = Some(match fit {
                None => b,
                Some(a) => [
                    a[0].min(b[0]),
                    a[1].min(b[1]),
                    a[2].max(b[2]),
                    a[3].max(b[3]),
                ],
            });
        }
    }
    let config = json!({
        "tilejson": tilejson,
        "bounds": fit.map(|b| [b[0].max(-180.0), b[1].max(-85.0), b[2].min(180.0), b[3].min(85.0)]),
        "layers": layers.iter().map(|s| json!({
            "id": s.entry.id,
            "title": s.entry.meta.title,
            "types": s.entry.geometry_types,
            "minzoom": s.entry.zoom.min(),
            "maxzoom": s.entry.zoom.max(),
        })).collect::<Vec<_>>(),
    });
    // The one unescaped value of any page: JSON inside a script element. `<` is written as
    // \u003c, so no value in it (a title, an id) can close the script or open another.
    let config = config.to_string().replace('<', "\\u003c");
    html! {
        link rel="stylesheet" href={ (base) "/assets/maplibre-gl/maplibre-gl.css" };
        div style="display:flex;gap:1rem;align-items:flex-start;flex-wrap:wrap" {
            div #map style="flex:1 1 40rem;height:32rem;border:1px solid #ccc" {}
            div #layers style="flex:0 0 16rem;font-size:.9rem" { strong { "Layers" } }
        }
        p.muted {
            "Map: " a href={ (base) "/assets/maplibre-gl/LICENSE.txt" } { "MapLibre GL JS" }
            "; tiles: " a href=(tilejson) { "TileJSON" } "."
        }
        script src={ (base) "/assets/maplibre-gl/maplibre-gl.js" } {}
        script { "window.HAMN_MAP = " (PreEscaped(config)) ";" }
        script src={ (base) "/assets/maplibre-gl/viewer.js" } {}
    }
}
