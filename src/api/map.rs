//! The map viewer: MapLibre GL JS (committed under `assets/maplibre-gl/` with its licence and
//! served from here; nothing comes from a CDN) drawing collections as vector tiles from this
//! server over a background (Natural Earth's land and borders, committed under `assets/world/`,
//! or a configured `--basemap-style`), with a layer list, a popup of the clicked feature's
//! attributes, and the view fitted to where the features are. Items and feature pages draw
//! their own features highlighted over the collection's tiles.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::ApiError;
use crate::engine::snapshot::{Feature, Geom};
use crate::engine::Served;
use maud::{html, Markup, PreEscaped};

const MAPLIBRE_JS: &[u8] = include_bytes!("../../assets/maplibre-gl/maplibre-gl.js");
const MAPLIBRE_CSS: &[u8] = include_bytes!("../../assets/maplibre-gl/maplibre-gl.css");
const MAPLIBRE_LICENSE: &[u8] = include_bytes!("../../assets/maplibre-gl/LICENSE.txt");
const VIEWER_JS: &str = include_str!("map.js");
const WORLD_GEOJSON: &[u8] = include_bytes!("../../assets/world/world.geojson");
const WORLD_README: &[u8] = include_bytes!("../../assets/world/README.txt");

/// A hash of every committed asset: pages link assets with `?v=` of it, so a browser or CDN
/// keeps each for a year and an upgrade's new files have new URLs.
pub fn assets_version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let mut all = Vec::new();
        for part in [
            MAPLIBRE_JS,
            MAPLIBRE_CSS,
            MAPLIBRE_LICENSE,
            VIEWER_JS.as_bytes(),
            WORLD_GEOJSON,
            WORLD_README,
        ] {
            all.extend_from_slice(part);
        }
        format!(
            "{:x}",
            super::common::fxhash(&String::from_utf8_lossy(&all))
        )
    });
    &VERSION
}

/// `/assets/{dir}/{file}`: the committed MapLibre build, the viewer's script and the offline
/// background. With `?v=` of the current [`assets_version`] immutable; else a day.
pub async fn asset(
    req: actix_web::HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<super::AppState>,
) -> Result<HttpResponse, ApiError> {
    let (dir, file) = path.into_inner();
    let (body, ty): (&'static [u8], &str) = match (dir.as_str(), file.as_str()) {
        ("maplibre-gl", "maplibre-gl.js") => (MAPLIBRE_JS, "text/javascript; charset=utf-8"),
        ("maplibre-gl", "maplibre-gl.css") => (MAPLIBRE_CSS, "text/css; charset=utf-8"),
        ("maplibre-gl", "LICENSE.txt") => (MAPLIBRE_LICENSE, "text/plain; charset=utf-8"),
        ("maplibre-gl", "viewer.js") => (VIEWER_JS.as_bytes(), "text/javascript; charset=utf-8"),
        ("world", "world.geojson") => (WORLD_GEOJSON, super::GEOJSON),
        ("world", "README.txt") => (WORLD_README, "text/plain; charset=utf-8"),
        _ => {
            return Err(ApiError::NotFound(format!(
                "no asset {}",
                super::quote(&format!("{dir}/{file}"))
            )))
        }
    };
    let versioned = form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, v)| k == "v" && v == assets_version());
    let cache = if versioned {
        state.cache.cache_control(super::cache::Kind::Versioned)
    } else {
        "public, max-age=86400".to_string()
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, ty))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(body))
}

/// A `--basemap-style` that is not an http(s) URL.
#[derive(Debug, thiserror::Error)]
#[error("basemap style {0:?}: give the http or https URL of a MapLibre style (its style.json)")]
pub struct BasemapStyleError(String);

/// The configured basemap style, checked: an absolute http or https URL (empty: none).
pub fn basemap_style(given: Option<String>) -> Result<Option<String>, BasemapStyleError> {
    let Some(given) = given
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    match reqwest::Url::parse(&given) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Some(given)),
        _ => Err(BasemapStyleError(given)),
    }
}

/// What a map shows.
pub struct MapView<'a> {
    /// The collections drawn from the server's vector tiles.
    pub layers: &'a [Served],
    /// The TileJSON of those tiles.
    pub tilejson: &'a str,
    /// The base of this server's links.
    pub base: &'a str,
    /// A MapLibre style URL drawn instead of the offline background (`--basemap-style`).
    pub basemap: Option<&'a str>,
    /// The page's own features (items and feature pages): drawn highlighted over the tiles,
    /// which are dimmed to context, with the view fitted to them. Those without geometry are
    /// left out.
    pub highlight: Option<&'a [&'a Feature]>,
}

/// The TileJSON of one collection's tiles.
pub fn collection_tilejson(base: &str, id: &crate::catalog::CollectionId) -> String {
    format!("{base}/collections/{id}/tiles/WebMercatorQuad/tilejson.json")
}

/// The smallest lon/lat box around the features' geometries.
fn extent(features: &[&Feature]) -> Option<[f64; 4]> {
    use geo::CoordsIter;
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut grow = |x: f64, y: f64| b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
    for f in features {
        match &f.geometry {
            None => {}
            Some(Geom::Point(x, y)) => grow(*x, *y),
            Some(Geom::Shape(g)) => g.coords_iter().for_each(|c| grow(c.x, c.y)),
        }
    }
    b.iter().all(|v| v.is_finite()).then_some(b)
}

fn union(a: Option<[f64; 4]>, b: [f64; 4]) -> [f64; 4] {
    match a {
        None => b,
        Some(a) => [
            a[0].min(b[0]),
            a[1].min(b[1]),
            a[2].max(b[2]),
            a[3].max(b[3]),
        ],
    }
}

/// Writes JSON for the body of a script element: `<` as \u003c, so no value in it (a title,
/// an attribute) can close the script or open another. The only unescaped values of any page.
fn script_json(json: &str) -> PreEscaped<String> {
    PreEscaped(json.replace('<', "\\u003c"))
}

/// The HTML of a map (see `MapView`).
pub fn block(v: &MapView<'_>) -> Markup {
    let mut fit: Option<[f64; 4]> = None;
    for s in v.layers {
        if let Some(b) = s.summary().core_bbox {
            fit = Some(union(fit, b));
        }
    }
    // The page's features: pre-encoded GeoJSON (CRS84, every property), as they are served.
    let highlight = v.highlight.map(|features| {
        let drawn: Vec<&str> = features
            .iter()
            .filter(|f| f.geometry.is_some())
            .map(|f| f.json())
            .collect();
        if let Some(b) = extent(features) {
            fit = Some(b);
        }
        format!(
            "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
            drawn.join(",")
        )
    });
    let config = json!({
        "tilejson": v.tilejson,
        // Drawn without a basemap style, and when that style cannot be had.
        "world": format!("{}/assets/world/world.geojson?v={}", v.base, assets_version()),
        "basemap": v.basemap,
        "bounds": fit.map(|b| [
            b[0].clamp(-180.0, 180.0),
            b[1].clamp(-85.0, 85.0),
            b[2].clamp(-180.0, 180.0),
            b[3].clamp(-85.0, 85.0),
        ]),
        "layers": v.layers.iter().map(|s| json!({
            "id": s.entry().id,
            "title": s.entry().meta.title,
            "types": s.entry().geometry_types,
            "minzoom": s.entry().zoom.min(),
            "maxzoom": s.entry().zoom.max(),
        })).collect::<Vec<_>>(),
        "highlightTitle": match v.highlight {
            Some([_]) => "This feature",
            _ => "Features on this page",
        },
    });
    let base = v.base;
    html! {
        link rel="stylesheet" href={ (base) "/assets/maplibre-gl/maplibre-gl.css?v=" (assets_version()) };
        // Shown by the viewer's script: without JavaScript, no empty box above the table.
        div #map-block style="display:none;gap:1rem;align-items:flex-start;flex-wrap:wrap" {
            div #map style="flex:1 1 40rem;height:32rem;border:1px solid #ccc" {}
            div #layers style="flex:0 0 16rem;font-size:.9rem" { strong { "Layers" } }
        }
        p.muted {
            "Map: " a href={ (base) "/assets/maplibre-gl/LICENSE.txt" } { "MapLibre GL JS" }
            "; tiles: " a href=(v.tilejson) { "TileJSON" }
            @if let Some(style) = v.basemap {
                "; base map: " a href=(style) { "style" }
            } @else {
                "; background: " a href={ (base) "/assets/world/README.txt" } { "Natural Earth" }
            }
            "."
        }
        script src={ (base) "/assets/maplibre-gl/maplibre-gl.js?v=" (assets_version()) } {}
        script {
            "window.HAMN_MAP = " (script_json(&config.to_string())) ";"
            @if let Some(h) = &highlight {
                "\nwindow.HAMN_MAP.highlight = " (script_json(h)) ";"
            }
        }
        script src={ (base) "/assets/maplibre-gl/viewer.js?v=" (assets_version()) } {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(id: &str, geometry: Option<Geom>, json: &str) -> Feature {
        Feature::with_json(1, id, geometry, json)
    }

    #[test]
    fn basemap_styles_are_http_urls() {
        assert_eq!(basemap_style(None).ok(), Some(None));
        assert_eq!(basemap_style(Some("  ".into())).ok(), Some(None));
        let url = "https://tiles.example.se/styles/basic/style.json?key=abc";
        assert_eq!(
            basemap_style(Some(url.into())).ok(),
            Some(Some(url.to_string()))
        );
        for bad in [
            "style.json",
            "/styles/style.json",
            "ftp://example.se/style.json",
            "javascript:alert(1)",
            "http://",
        ] {
            assert!(basemap_style(Some(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn extent_covers_the_geometries_and_skips_features_without() {
        let line = Geom::Shape(Box::new(geo::Geometry::LineString(geo::LineString::from(
            vec![(12.0, 55.0), (13.5, 56.0)],
        ))));
        let a = feature("a", Some(Geom::Point(11.0, 57.0)), "{}");
        let b = feature("b", Some(line), "{}");
        let c = feature("c", None, "{}");
        assert_eq!(extent(&[&a, &b, &c]), Some([11.0, 55.0, 13.5, 57.0]));
        assert_eq!(extent(&[&c]), None);
        assert_eq!(extent(&[]), None);
    }

    /// The page's features go into a script element as they are (with every property): a value
    /// that would close the script stays inside it, escaped. Features without geometry are not
    /// drawn, and the view is fitted to the others.
    #[test]
    fn highlighted_features_are_escaped_for_the_script_and_fitted() {
        let evil = feature(
            "1",
            Some(Geom::Point(12.5, 57.5)),
            r#"{"type":"Feature","id":1,"geometry":{"type":"Point","coordinates":[12.5,57.5]},"properties":{"name":"</script><script>alert(1)</script>"}}"#,
        );
        let bare = feature(
            "2",
            None,
            r#"{"type":"Feature","id":2,"geometry":null,"properties":{}}"#,
        );
        let html = block(&MapView {
            layers: &[],
            tilejson: "http://h/collections/x/tiles/WebMercatorQuad/tilejson.json",
            base: "http://h",
            basemap: None,
            highlight: Some(&[&evil, &bare]),
        })
        .into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains(r#"\u003c/script>\u003cscript>alert(1)\u003c/script>"#));
        let highlight = html
            .split("window.HAMN_MAP.highlight = ")
            .nth(1)
            .and_then(|rest| rest.split(";</script>").next())
            .expect("highlight");
        let highlight: serde_json::Value = serde_json::from_str(highlight).expect("JSON");
        assert_eq!(highlight["features"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            highlight["features"][0]["properties"]["name"],
            "</script><script>alert(1)</script>"
        );
        assert!(html.contains(r#""bounds":[12.5,57.5,12.5,57.5]"#), "{html}");
        assert!(html.contains(&format!(
            r#""world":"http://h/assets/world/world.geojson?v={}""#,
            assets_version()
        )));
        assert!(html.contains(r#""highlightTitle":"Features on this page""#));
    }

    #[test]
    fn a_basemap_style_replaces_the_background_credit() {
        let html = block(&MapView {
            layers: &[],
            tilejson: "http://h/tiles/WebMercatorQuad/tilejson.json",
            base: "http://h",
            basemap: Some("https://maps.example.se/style.json"),
            highlight: None,
        })
        .into_string();
        assert!(html.contains(r#""basemap":"https://maps.example.se/style.json""#));
        assert!(html.contains(r#"<a href="https://maps.example.se/style.json">style</a>"#));
        assert!(!html.contains("window.HAMN_MAP.highlight"));
        assert!(!html.contains("Natural Earth"));
    }
}
