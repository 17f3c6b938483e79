//! HTML pages for people with a browser: the same resources as the JSON API, rendered on the
//! server with maud, which escapes every interpolated value unless told otherwise (only the
//! map's configuration script is, and it is escaped for a script body in `map`). Nothing is
//! fetched from elsewhere (but a configured `--basemap-style`). Every page with features has the same map (`map::block`): items and
//! feature pages draw theirs highlighted.

use actix_web::http::header;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};
use serde_json::Value as Json;

use crate::catalog::CatalogEntry;
use crate::engine::snapshot::Feature;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:72rem;margin:1.5rem auto;padding:0 1rem;color:#222}\
a{color:#0b5cad}table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;vertical-align:top}\
th{background:#f4f4f4}nav{margin-bottom:1rem}code{background:#f3f3f3;padding:0 .2rem}\
.muted{color:#666}";

/// An HTML response of `markup`.
pub fn respond(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(markup.into_string())
}

/// A whole page around `body`, with a breadcrumb trail.
pub fn page(title: &str, crumbs: &[(&str, String)], body: Markup) -> HttpResponse {
    respond(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width";
                title { (title) " – hamn" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                nav {
                    @for (i, (name, href)) in crumbs.iter().enumerate() {
                        @if i > 0 { " › " }
                        a href=(href) { (name) }
                    }
                }
                h1 { (title) }
                (body)
                p.muted { "Also as " a href="?f=json" { "JSON" } "." }
            }
        }
    })
}

pub fn landing(base: &str, map: Markup) -> HttpResponse {
    page(
        "hamn",
        &[],
        html! {
            p { "Open geodata from Swedish municipalities, served as OGC API – Features." }
            (search_form(base, &SearchForm { q: "", bbox: "", theme: "", themes: Vec::new(), json: String::new() }, false))
            ul {
                li { a href={ (base) "/collections" } { "Collections" } }
                li {
                    a href={ (base) "/api.html" } { "API documentation" }
                    " (" a href={ (base) "/api" } { "OpenAPI 3.0" } ")"
                }
                li { a href={ (base) "/conformance" } { "Conformance classes" } }
                li {
                    a href={ (base) "/datasets/dcat" } { "DCAT-AP-SE catalog" }
                    " (RDF/XML, for dataportal.se; also "
                    a href={ (base) "/datasets/dcat?f=ttl" } { "Turtle" } ")"
                }
                li {
                    a href={ (base) "/tiles/WebMercatorQuad/tilejson.json" } { "TileJSON of all collections" }
                    " (for MapLibre, QGIS)"
                }
            }
            (map)
        },
    )
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// The values of the collection search form, as the request gave them.
pub struct SearchForm<'a> {
    pub q: &'a str,
    pub bbox: &'a str,
    pub theme: &'a str,
    /// The themes to choose from.
    pub themes: Vec<String>,
    /// This search as JSON (the page's own "Also as JSON" link drops the search).
    pub json: String,
}

/// A plain GET form to `/collections` (no script): words, and on the collections page also
/// a theme and a bounding box.
fn search_form(base: &str, form: &SearchForm<'_>, full: bool) -> Markup {
    html! {
        form.search method="get" action={ (base) "/collections" } role="search" {
            label { "Search collections " input type="search" name="q" value=(form.q) maxlength=(crate::search::MAX_QUERY_CHARS) placeholder="e.g. parkering, badplatser, Malmö"; }
            @if full {
                " "
                label { "theme "
                    select name="theme" {
                        option value="" { "any" }
                        @for t in &form.themes {
                            option value=(t) selected[t.eq_ignore_ascii_case(form.theme)] { (t) }
                        }
                    }
                }
                " "
                label { "bbox " input type="text" name="bbox" value=(form.bbox) size="28" placeholder="west,south,east,north (lon/lat)"; }
            }
            " "
            button type="submit" { "Search" }
        }
    }
}

pub fn collections(
    entries: &[&CatalogEntry],
    total: usize,
    form: &SearchForm<'_>,
    base: &str,
) -> HttpResponse {
    let searched =
        !(form.q.trim().is_empty() && form.bbox.trim().is_empty() && form.theme.trim().is_empty());
    page(
        "Collections",
        &[("hamn", format!("{base}/"))],
        html! {
            (search_form(base, form, true))
            @if searched {
                p.muted {
                    (entries.len()) " of " (total) " collections match. "
                    a href=(form.json) { "This search as JSON" }
                    " · "
                    a href={ (base) "/collections" } { "Show all" }
                }
            }
            @if entries.is_empty() {
                p { "No collection matches." }
            } @else {
                table {
                    tr { th { "collection" } th { "theme" } th { "publisher" } th { "features" } th { "licence" } }
                    @for e in entries {
                        tr {
                            td { a href={ (base) "/collections/" (e.id) } { (e.meta.title) } br; code { (e.id) } }
                            td { (opt(&e.meta.theme)) }
                            td { (opt(&e.meta.publisher)) }
                            td { (e.feature_count) }
                            td { (opt(&e.meta.licence)) }
                        }
                    }
                }
            }
        },
    )
}

pub fn collection(e: &CatalogEntry, base: &str, map: Markup) -> HttpResponse {
    let id = &e.id;
    let extent = e.extent.map_or("unknown".to_string(), |b| {
        format!(
            "{:.5}, {:.5} – {:.5}, {:.5} (lon/lat)",
            b.0[0], b.0[1], b.0[2], b.0[3]
        )
    });
    let body = html! {
        p { (opt(&e.meta.description)) }
        (map)
        table {
            tr { th { "features" } td { a href={ (base) "/collections/" (id) "/items" } { (e.feature_count) } } }
            tr { th { "publisher" } td { (opt(&e.meta.publisher)) } }
            tr { th { "licence" } td { (opt(&e.meta.licence)) } }
            tr { th { "theme" } td { (opt(&e.meta.theme)) } }
            tr { th { "keywords" } td { (e.meta.keywords.join(", ")) } }
            tr { th { "extent" } td { (extent) } }
            @if let Some([a, b]) = e.temporal_extent {
                tr { th { "time" } td { (a.date_naive()) " – " (b.date_naive()) } }
            }
            tr { th { "source" } td { (e.source.name) " (" (e.source.crs) "), SHA-256 " code { (e.source.sha256) } } }
            tr { th { "geometry" } td { (e.geometry_types.join(", ")) } }
            tr { th { "version" } td { (e.version) ", updated " (e.updated.format("%Y-%m-%d %H:%M UTC")) } }
        }
        h2 { "Attributes" }
        table {
            tr { th { "name" } th { "type" } }
            @for a in &e.attributes {
                tr { td { code { (a.name) } } td { (format!("{:?}", a.kind)) } }
            }
        }
        p {
            a href={ (base) "/collections/" (id) "/items" } { "Browse the features" }
            " · "
            a href={ (base) "/collections/" (id) "/queryables" } { "queryables" }
        }
    };
    page(
        &e.meta.title,
        &[
            ("hamn", format!("{base}/")),
            ("Collections", format!("{base}/collections")),
        ],
        body,
    )
}

pub struct ItemsPage<'a> {
    pub entry: &'a CatalogEntry,
    pub features: Vec<&'a Feature>,
    pub matched: Option<usize>,
    pub next: Option<String>,
    pub prev: Option<String>,
}

/// A value as a table cell's text.
fn cell(v: Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s,
        other => other.to_string(),
    }
}

pub fn items(p: &ItemsPage<'_>, base: &str, map: Markup) -> HttpResponse {
    let e = p.entry;
    let nav = html! {
        @if let Some(h) = &p.prev { a href=(h) { "previous" } }
        @if p.prev.is_some() && p.next.is_some() { " · " }
        @if let Some(h) = &p.next { a href=(h) { "next" } }
    };
    let body = html! {
        p {
            (p.features.len())
            @if let Some(n) = p.matched { " of " (n) }
            " features. " (nav)
        }
        (map)
        table {
            tr {
                th { "id" }
                @for a in &e.attributes { th { (a.name) } }
            }
            @for f in &p.features {
                tr {
                    td {
                        a href={ (base) "/collections/" (e.id) "/items/" (form_urlencoded::byte_serialize(f.id().as_bytes()).collect::<String>()) } { (f.id()) }
                    }
                    @for v in f.values().iter() { td { (cell(v.to_json())) } }
                }
            }
        }
        p { (nav) }
    };
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
        body,
    )
}

pub fn item(e: &CatalogEntry, f: &Feature, base: &str, map: Markup) -> HttpResponse {
    page(
        &format!("{} {}", e.meta.title, f.id()),
        &[
            ("hamn", format!("{base}/")),
            ("Collections", format!("{base}/collections")),
            (
                e.meta.title.as_str(),
                format!("{base}/collections/{}", e.id),
            ),
            ("features", format!("{base}/collections/{}/items", e.id)),
        ],
        html! {
            (map)
            table {
                @for (a, v) in e.attributes.iter().zip(f.values().iter()) {
                    tr { th { (a.name) } td { (cell(v.to_json())) } }
                }
            }
        },
    )
}
