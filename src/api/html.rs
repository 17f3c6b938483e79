//! HTML pages for people with a browser: the same resources as the JSON API, rendered on the
//! server with no scripts and nothing fetched from elsewhere. Features are drawn as an inline
//! SVG so a page shows where they are without a map library (the tile map comes later).

use actix_web::http::header;
use actix_web::HttpResponse;
use serde_json::Value as Json;

use crate::catalog::CatalogEntry;
use crate::engine::snapshot::{Feature, Geom};

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72rem;margin:1.5rem auto;padding:0 1rem;color:#222}\
a{color:#0b5cad}table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;vertical-align:top}\
th{background:#f4f4f4}nav{margin-bottom:1rem}code{background:#f3f3f3;padding:0 .2rem}svg{border:1px solid #ccc;background:#f8fbff}\
.muted{color:#666}";

/// A whole page around `body`, with a breadcrumb trail.
pub fn page(title: &str, crumbs: &[(&str, String)], body: &str) -> HttpResponse {
    let nav: Vec<String> = crumbs
        .iter()
        .map(|(name, href)| format!("<a href=\"{}\">{}</a>", escape(href), escape(name)))
        .collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} – hamn</title><style>{STYLE}</style></head><body><nav>{}</nav><h1>{}</h1>{body}\
         <p class=\"muted\">Also as <a href=\"?f=json\">JSON</a>.</p></body></html>",
        escape(title),
        nav.join(" › "),
        escape(title)
    );
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(html)
}

pub fn landing(base: &str, map: &str) -> HttpResponse {
    page(
        "hamn",
        &[],
        &format!(
            "<p>Open geodata from Swedish municipalities, served as OGC API – Features.</p><ul>\
             <li><a href=\"{base}/collections\">Collections</a></li>\
             <li><a href=\"{base}/api.html\">API documentation</a> (<a href=\"{base}/api\">OpenAPI 3.0</a>)</li>\
             <li><a href=\"{base}/conformance\">Conformance classes</a></li>\
             <li><a href=\"{base}/tiles/WebMercatorQuad/tilejson.json\">TileJSON of all collections</a> (for MapLibre, QGIS)</li></ul>{map}"
        ),
    )
}

pub fn collections(entries: &[&CatalogEntry], base: &str) -> HttpResponse {
    let rows: String = entries
        .iter()
        .map(|e| {
            format!(
                "<tr><td><a href=\"{base}/collections/{id}\">{title}</a><br><code>{id}</code></td><td>{theme}</td>\
                 <td>{publisher}</td><td>{count}</td><td>{licence}</td></tr>",
                id = e.id,
                title = escape(&e.meta.title),
                theme = escape(e.meta.theme.as_deref().unwrap_or("")),
                publisher = escape(e.meta.publisher.as_deref().unwrap_or("")),
                count = e.feature_count,
                licence = escape(e.meta.licence.as_deref().unwrap_or("")),
            )
        })
        .collect();
    page(
        "Collections",
        &[("hamn", format!("{base}/"))],
        &format!("<table><tr><th>collection</th><th>theme</th><th>publisher</th><th>features</th><th>licence</th></tr>{rows}</table>"),
    )
}

pub fn collection(e: &CatalogEntry, base: &str, map: &str) -> HttpResponse {
    let id = &e.id;
    let attrs: String = e
        .attributes
        .iter()
        .map(|a| {
            format!(
                "<tr><td><code>{}</code></td><td>{:?}</td></tr>",
                escape(&a.name),
                a.kind
            )
        })
        .collect();
    let extent = e.extent.map_or("unknown".to_string(), |b| {
        format!(
            "{:.5}, {:.5} – {:.5}, {:.5} (lon/lat)",
            b.0[0], b.0[1], b.0[2], b.0[3]
        )
    });
    let temporal = e.temporal_extent.map_or(String::new(), |[a, b]| {
        format!(
            "<tr><th>time</th><td>{} – {}</td></tr>",
            a.date_naive(),
            b.date_naive()
        )
    });
    let body = format!(
        "<p>{desc}</p>{map}<table>\
         <tr><th>features</th><td><a href=\"{base}/collections/{id}/items\">{count}</a></td></tr>\
         <tr><th>publisher</th><td>{publisher}</td></tr><tr><th>licence</th><td>{licence}</td></tr>\
         <tr><th>theme</th><td>{theme}</td></tr><tr><th>keywords</th><td>{keywords}</td></tr>\
         <tr><th>extent</th><td>{extent}</td></tr>{temporal}\
         <tr><th>source</th><td>{source} ({crs}), SHA-256 <code>{sha}</code></td></tr>\
         <tr><th>geometry</th><td>{types}</td></tr><tr><th>version</th><td>{version}, updated {updated}</td></tr></table>\
         <h2>Attributes</h2><table><tr><th>name</th><th>type</th></tr>{attrs}</table>\
         <p><a href=\"{base}/collections/{id}/items\">Browse the features</a> · \
         <a href=\"{base}/collections/{id}/queryables\">queryables</a></p>",
        desc = escape(e.meta.description.as_deref().unwrap_or("")),
        count = e.feature_count,
        publisher = escape(e.meta.publisher.as_deref().unwrap_or("")),
        licence = escape(e.meta.licence.as_deref().unwrap_or("")),
        theme = escape(e.meta.theme.as_deref().unwrap_or("")),
        keywords = escape(&e.meta.keywords.join(", ")),
        source = escape(&e.source.name),
        crs = escape(&e.source.crs),
        sha = escape(&e.source.sha256),
        types = escape(&e.geometry_types.join(", ")),
        version = e.version,
        updated = e.updated.format("%Y-%m-%d %H:%M UTC"),
    );
    page(
        &e.meta.title,
        &[
            ("hamn", format!("{base}/")),
            ("Collections", format!("{base}/collections")),
        ],
        &body,
    )
}

/// An SVG drawing of features, fitted to their extent (equirectangular, corrected for latitude).
fn svg(features: &[&Feature]) -> String {
    let mut b = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for f in features {
        let Some(g) = &f.geometry else { continue };
        use geo::CoordsIter;
        for c in g.to_geo().coords_iter() {
            b = [b[0].min(c.x), b[1].min(c.y), b[2].max(c.x), b[3].max(c.y)];
        }
    }
    if !b[0].is_finite() {
        return String::new();
    }
    let k = ((b[1] + b[3]) / 2.0).to_radians().cos().max(0.1);
    let (w, h) = (((b[2] - b[0]) * k).max(1e-9), (b[3] - b[1]).max(1e-9));
    let scale = 640.0 / w.max(h);
    let (width, height) = ((w * scale).max(40.0) + 20.0, (h * scale).max(40.0) + 20.0);
    let px = |x: f64, y: f64| ((x - b[0]) * k * scale + 10.0, (b[3] - y) * scale + 10.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\">"
    );
    for f in features {
        let Some(g) = &f.geometry else { continue };
        let title = format!("<title>{}</title>", escape(&f.id));
        match g {
            Geom::Point(x, y) => {
                let (cx, cy) = px(*x, *y);
                out.push_str(&format!("<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"3\" fill=\"#d9480f\">{title}</circle>"));
            }
            Geom::Shape(shape) => {
                let mut d = String::new();
                let mut ring = |coords: &mut dyn Iterator<Item = geo::Coord<f64>>, close: bool| {
                    for (i, c) in coords.enumerate() {
                        let (x, y) = px(c.x, c.y);
                        d.push_str(&format!("{}{x:.1} {y:.1} ", if i == 0 { "M" } else { "L" }));
                    }
                    if close {
                        d.push('Z');
                    }
                };
                let mut polygons = false;
                use geo::CoordsIter;
                match shape.as_ref() {
                    geo::Geometry::Polygon(p) => {
                        polygons = true;
                        ring(&mut p.exterior().coords().copied(), true);
                        for r in p.interiors() {
                            ring(&mut r.coords().copied(), true);
                        }
                    }
                    geo::Geometry::MultiPolygon(mp) => {
                        polygons = true;
                        for p in mp {
                            ring(&mut p.exterior().coords().copied(), true);
                            for r in p.interiors() {
                                ring(&mut r.coords().copied(), true);
                            }
                        }
                    }
                    geo::Geometry::LineString(l) => ring(&mut l.coords().copied(), false),
                    geo::Geometry::MultiLineString(ml) => {
                        for l in ml {
                            ring(&mut l.coords().copied(), false);
                        }
                    }
                    other => {
                        for c in other.coords_iter() {
                            let (x, y) = px(c.x, c.y);
                            d.push_str(&format!("M{x:.1} {y:.1} l0.1 0 "));
                        }
                    }
                }
                let style = if polygons {
                    "fill=\"#1971c2\" fill-opacity=\"0.35\" stroke=\"#1971c2\" fill-rule=\"evenodd\""
                } else {
                    "fill=\"none\" stroke=\"#1971c2\" stroke-width=\"1.5\""
                };
                out.push_str(&format!("<path d=\"{d}\" {style}>{title}</path>"));
            }
        }
    }
    out.push_str("</svg>");
    out
}

pub struct ItemsPage<'a> {
    pub entry: &'a CatalogEntry,
    pub features: Vec<&'a Feature>,
    pub matched: usize,
    pub next: Option<String>,
    pub prev: Option<String>,
}

pub fn items(p: &ItemsPage<'_>, base: &str) -> HttpResponse {
    let e = p.entry;
    let head: String = e
        .attributes
        .iter()
        .map(|a| format!("<th>{}</th>", escape(&a.name)))
        .collect();
    let rows: String = p
        .features
        .iter()
        .map(|f| {
            let cells: String = f
                .values
                .iter()
                .map(|v| match v.to_json() {
                    Json::Null => "<td></td>".to_string(),
                    Json::String(s) => format!("<td>{}</td>", escape(&s)),
                    other => format!("<td>{}</td>", escape(&other.to_string())),
                })
                .collect();
            format!(
                "<tr><td><a href=\"{base}/collections/{}/items/{}\">{}</a></td>{cells}</tr>",
                e.id,
                escape(&form_urlencoded::byte_serialize(f.id.as_bytes()).collect::<String>()),
                escape(&f.id)
            )
        })
        .collect();
    let nav = [("previous", &p.prev), ("next", &p.next)]
        .iter()
        .filter_map(|(name, href)| {
            href.as_ref()
                .map(|h| format!("<a href=\"{}\">{name}</a>", escape(h)))
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let body = format!(
        "<p>{} of {} features. {nav}</p>{}<table><tr><th>id</th>{head}</tr>{rows}</table><p>{nav}</p>",
        p.features.len(),
        p.matched,
        svg(&p.features)
    );
    page(
        &format!("{}: features", e.meta.title),
        &[
            ("hamn", format!("{base}/")),
            ("Collections", format!("{base}/collections")),
            (
                e.meta.title.as_str(),
                format!("{base}/collections/{}", e.id),
            ),
        ],
        &body,
    )
}

pub fn item(e: &CatalogEntry, f: &Feature, base: &str) -> HttpResponse {
    let rows: String = e
        .attributes
        .iter()
        .zip(f.values.iter())
        .map(|(a, v)| {
            let text = match v.to_json() {
                Json::Null => String::new(),
                Json::String(s) => s,
                other => other.to_string(),
            };
            format!(
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(&a.name),
                escape(&text)
            )
        })
        .collect();
    page(
        &format!("{} {}", e.meta.title, f.id),
        &[
            ("hamn", format!("{base}/")),
            ("Collections", format!("{base}/collections")),
            (
                e.meta.title.as_str(),
                format!("{base}/collections/{}", e.id),
            ),
            ("features", format!("{base}/collections/{}/items", e.id)),
        ],
        &format!("{}<table>{rows}</table>", svg(&[f])),
    )
}
