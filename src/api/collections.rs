//! `/collections`, `/collections/{id}` and `/collections/{id}/schema`, `/queryables` and
//! `/sortables`: the catalog as OGC API – Features collection documents and JSON Schema.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value as Json};

use super::cache::Kind;
use super::common::{fxhash, source};
use super::params::Params;
use super::{
    base_url, etag_check, negotiate, not_modified, ApiError, AppState, Format, CRS84, GEOJSON,
    JSON, SCHEMA_JSON,
};
use crate::catalog::{AttrType, CatalogEntry};
use crate::download::Format as DownloadFormat;
use crate::engine::Source;
use crate::search::{fold, Document, Query, Score};

/// The bulk downloads of a collection version, with their lengths once built.
pub fn enclosures(state: &AppState, s: &dyn Source) -> Vec<(DownloadFormat, Option<u64>)> {
    DownloadFormat::ALL
        .into_iter()
        .map(|f| (f, state.downloads.length(s.entry(), f)))
        .collect()
}

/// An OGC API – Features collection document for a catalog entry, with `enclosure` links to
/// its bulk downloads (`length` once built).
pub fn collection_json(
    entry: &CatalogEntry,
    base: &str,
    enclosures: &[(DownloadFormat, Option<u64>)],
) -> Json {
    let id = &entry.id;
    let mut doc = json!({
        "id": id,
        "title": entry.meta.title,
        "description": entry.meta.description,
        "keywords": entry.meta.keywords,
        "itemType": "feature",
        "crs": crate::crs::Crs::all_uris(),
        "storageCrs": CRS84,
        "itemCount": entry.feature_count,
        "version": entry.version,
        "theme": entry.meta.theme,
        "publisher": entry.meta.publisher,
        "license": entry.meta.licence,
        "source": {"name": entry.source.name, "sha256": entry.source.sha256, "crs": entry.source.crs, "layer": entry.source.layer},
        "geometryTypes": entry.geometry_types,
        "created": entry.created,
        "updated": entry.updated,
        "links": [
            {"href": format!("{base}/collections/{id}"), "rel": "self", "type": JSON, "title": "This collection"},
            {"href": format!("{base}/collections/{id}/items"), "rel": "items", "type": GEOJSON, "title": "Features"},
            {"href": format!("{base}/collections/{id}/schema"), "rel": "http://www.opengis.net/def/rel/ogc/1.0/schema", "type": SCHEMA_JSON, "title": "Schema of the features"},
            {"href": format!("{base}/collections/{id}/queryables"), "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "type": SCHEMA_JSON, "title": "Queryable attributes"},
            {"href": format!("{base}/collections/{id}/sortables"), "rel": "http://www.opengis.net/def/rel/ogc/1.0/sortables", "type": SCHEMA_JSON, "title": "Sortable attributes"},
            {"href": format!("{base}/collections/{id}/tiles"), "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "type": JSON, "title": "Vector tiles"},
            {"href": format!("{base}/collections/{id}/tiles/WebMercatorQuad/tilejson.json"), "rel": "describedby", "type": JSON, "title": "TileJSON for MapLibre"},
        ],
    });
    // The features in each other encoding, as rel=items links of their media types.
    if let Some(links) = doc["links"].as_array_mut() {
        let at = 2;
        for (n, e) in crate::formats::Encoding::ALL.iter().enumerate() {
            links.insert(
                at + n,
                json!({"href": format!("{base}/collections/{id}/items?f={}", e.name()), "rel": "items", "type": e.media_type(), "title": format!("Features as {}", e.title())}),
            );
        }
    }
    if let Some(links) = doc["links"].as_array_mut() {
        for (f, length) in enclosures {
            let mut link = json!({
                "href": format!("{base}/collections/{id}/download/{}?v={}", f.name(), entry.version),
                "rel": "enclosure",
                "type": f.media_type(),
                "title": format!("All features as {} (version {})", f.title(), entry.version),
            });
            if let Some(n) = length {
                link["length"] = json!(n);
            }
            links.push(link);
        }
    }
    let mut extent = serde_json::Map::new();
    if let Some(b) = entry.extent {
        extent.insert("spatial".into(), json!({"bbox": [b.0], "crs": CRS84}));
    }
    if let Some([a, b]) = entry.temporal_extent {
        extent.insert(
            "temporal".into(),
            json!({"interval": [[a, b]], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}),
        );
    }
    if !extent.is_empty() {
        doc["extent"] = Json::Object(extent);
    }
    doc
}

/// A mark of which downloads are built, for ETags: a document gains `length`s as they are.
fn built_mark(enclosures: &[(DownloadFormat, Option<u64>)]) -> String {
    enclosures
        .iter()
        .map(|(f, n)| if n.is_some() { f.name() } else { "" })
        .collect::<Vec<_>>()
        .join("")
}

/// The query parameters of `/collections`.
const LIST_PARAMS: &[&str] = &["f", "q", "bbox", "theme"];

/// What `/collections` was asked to find: `q` (see `crate::search`), `bbox` (the extent
/// intersects it; CRS84, as on items, an antimeridian box is two) and `theme` (equal, case
/// ignored). An empty value is no filter, so an HTML form's empty fields change nothing.
pub struct Search {
    q: Option<Query>,
    bbox: Option<Vec<[f64; 4]>>,
    theme: Option<String>,
}

impl Search {
    pub fn parse(params: &Params) -> Result<Self, ApiError> {
        let given = |name: &str| params.get(name).filter(|v| !v.trim().is_empty());
        let q = match given("q") {
            Some(q) => Query::parse(q).map_err(|e| ApiError::BadRequest(e.to_string()))?,
            None => None,
        };
        let bbox = given("bbox")
            .map(|b| super::query::parse_bbox(b, None))
            .transpose()?;
        let theme = given("theme").map(|t| fold(t.trim()));
        Ok(Self { q, bbox, theme })
    }

    /// Whether anything filters the list.
    pub fn active(&self) -> bool {
        self.q.is_some() || self.bbox.is_some() || self.theme.is_some()
    }

    /// The entries that match, best first (by `q`, then title), or all in catalog order when
    /// there is no `q`.
    pub fn run<'a>(&self, entries: &[&'a CatalogEntry]) -> Vec<&'a CatalogEntry> {
        let mut hits: Vec<(Score, String, &CatalogEntry)> = entries
            .iter()
            .filter(|e| match &self.theme {
                Some(t) => e
                    .meta
                    .theme
                    .as_deref()
                    .is_some_and(|th| fold(th.trim()) == *t),
                None => true,
            })
            .filter(|e| match &self.bbox {
                Some(boxes) => e.extent.is_some_and(|x| {
                    let [w, s, ea, n] = x.0;
                    boxes
                        .iter()
                        .any(|b| w <= b[2] && ea >= b[0] && s <= b[3] && n >= b[1])
                }),
                None => true,
            })
            .filter_map(|e| {
                let score = match &self.q {
                    Some(q) => q.score(&Document::new(
                        &e.meta.title,
                        &e.meta.keywords,
                        e.meta.description.as_deref(),
                    ))?,
                    None => Score::default(),
                };
                Some((score, fold(&e.meta.title), *e))
            })
            .collect();
        if self.q.is_some() {
            hits.sort_by(|a, b| {
                b.0.cmp(&a.0)
                    .then_with(|| a.1.cmp(&b.1))
                    .then_with(|| a.2.id.cmp(&b.2.id))
            });
        }
        hits.into_iter().map(|(_, _, e)| e).collect()
    }
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), LIST_PARAMS)?;
    let format = negotiate(&req, params.get("f"))?;
    let search = Search::parse(&params)?;
    let base = base_url(&req)?;
    let all = state.engine.list();
    let entries: Vec<&CatalogEntry> = all.iter().map(|s| s.entry()).collect();
    let found = search.run(&entries);
    if format == Format::Html {
        return Ok(super::html::collections(
            &found,
            entries.len(),
            &super::html::SearchForm {
                q: params.get("q").unwrap_or(""),
                bbox: params.get("bbox").unwrap_or(""),
                theme: params.get("theme").unwrap_or(""),
                themes: themes(&entries),
                json: format!(
                    "{base}/collections?{}",
                    params.rebuild(&["f"], &[("f", "json".into())])
                ),
            },
            &base,
        ));
    }
    let tag: String = all
        .iter()
        .map(|s| {
            format!(
                "{}.{}{}",
                s.entry().id,
                s.version(),
                built_mark(&enclosures(&state, s.as_ref()))
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let query = params.rebuild(&[], &[]);
    let (etag, fresh) = etag_check(&req, &format!("c{:x}", fxhash(&format!("{tag}?{query}"))));
    if fresh {
        return Ok(not_modified(&etag));
    }
    let self_href = if query.is_empty() {
        format!("{base}/collections")
    } else {
        format!("{base}/collections?{query}")
    };
    let mut body = json!({
        "links": [{"href": self_href, "rel": "self", "type": JSON}],
        "collections": found.iter().map(|e| {
            let files = all
                .iter()
                .find(|s| s.entry().id == e.id)
                .map(|s| enclosures(&state, s.as_ref()))
                .unwrap_or_default();
            collection_json(e, &base, &files)
        }).collect::<Vec<_>>(),
    });
    if search.active() {
        body["numberMatched"] = json!(found.len());
        body["numberReturned"] = json!(found.len());
    }
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, JSON))
        .insert_header((header::ETAG, etag));
    let modified = all.iter().map(|s| s.entry().updated).max();
    state.cache.apply(&mut resp, Kind::Document, modified);
    Ok(resp.body(body.to_string()))
}

/// The themes of `entries`, each once, sorted (the HTML form's choices).
pub fn themes(entries: &[&CatalogEntry]) -> Vec<String> {
    let mut t: Vec<String> = entries
        .iter()
        .filter_map(|e| e.meta.theme.clone())
        .collect();
    t.sort();
    t.dedup();
    t
}

pub async fn one(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let s = source(&state, &path)?;
    let q = Params::parse(req.query_string(), &["f"])?;
    if negotiate(&req, q.get("f"))? == Format::Html {
        let base = base_url(&req)?;
        let tilejson = super::map::collection_tilejson(&base, &s.entry().id);
        return Ok(super::html::collection(
            s.entry(),
            &base,
            super::map::block(&super::map::MapView {
                layers: std::slice::from_ref(&s),
                tilejson: &tilejson,
                base: &base,
                basemap: state.basemap_style.as_deref(),
                highlight: None,
            }),
        ));
    }
    let enclosures = enclosures(&state, s.as_ref());
    let (etag, fresh) = etag_check(
        &req,
        &format!(
            "{}-v{}{}",
            s.entry().id,
            s.version(),
            built_mark(&enclosures)
        ),
    );
    if fresh {
        return Ok(not_modified(&etag));
    }
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::CONTENT_TYPE, JSON))
        .insert_header((header::ETAG, etag));
    state
        .cache
        .apply(&mut resp, Kind::Document, Some(s.entry().updated));
    Ok(resp.body(collection_json(s.entry(), &base_url(&req)?, &enclosures).to_string()))
}

/// JSON Schema type of an attribute type. JSON attributes are lists (ingest makes them from
/// OGR's list fields only), so they are arrays of values of no declared type.
pub fn schema_of(kind: AttrType) -> Json {
    match kind {
        AttrType::Integer => json!({"type": "integer"}),
        AttrType::Real => json!({"type": "number"}),
        AttrType::Text => json!({"type": "string"}),
        AttrType::Boolean => json!({"type": "boolean"}),
        AttrType::Date => json!({"type": "string", "format": "date"}),
        AttrType::DateTime => json!({"type": "string", "format": "date-time"}),
        AttrType::Json => json!({"type": "array"}),
    }
}

/// The `format` of a spatial property holding `types` (the collection's geometry types, as
/// GeoJSON names them): `geometry-` and the one type, a pair such as Point and MultiPoint as
/// `geometry-point-or-multipoint`, anything else (none, several, curves) `geometry-any`
/// (OGC API – Features Part 5 / Common Part 3, /req/schemas/properties C).
pub fn geometry_format(types: &[String]) -> String {
    let simple = |t: &str| match t {
        "Point" | "MultiPoint" | "LineString" | "MultiLineString" | "Polygon" | "MultiPolygon"
        | "GeometryCollection" => Some(t.to_lowercase()),
        _ => None,
    };
    let mut sorted: Vec<&str> = types.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let name = match sorted.as_slice() {
        [one] => simple(one),
        ["MultiPoint", "Point"] => Some("point-or-multipoint".into()),
        ["LineString", "MultiLineString"] => Some("linestring-or-multilinestring".into()),
        ["MultiPolygon", "Polygon"] => Some("polygon-or-multipolygon".into()),
        _ => None,
    };
    format!("geometry-{}", name.as_deref().unwrap_or("any"))
}

/// The schema documents of a collection (OGC API – Features Part 5 = Common Part 3, Schemas):
/// each lists some of the same property schemas.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SchemaKind {
    /// `/schema`, what a feature holds ("returnables"): the feature id, the geometry and every
    /// attribute.
    Schema,
    /// What filters may name: the geometry and every attribute.
    Queryables,
    /// What `sortby` may name: attributes with an order.
    Sortables,
}

impl SchemaKind {
    fn path(self) -> &'static str {
        match self {
            SchemaKind::Schema => "schema",
            SchemaKind::Queryables => "queryables",
            SchemaKind::Sortables => "sortables",
        }
    }
}

/// How the feature ids of a collection are served (see `engine::snapshot::id_json`): the JSON
/// Schema type of the `id` member.
fn id_type(s: &dyn Source) -> Json {
    let ids = s.summary().ids;
    match (ids.integers, ids.strings) {
        // No features: without an id attribute, ids are sequence numbers.
        (false, false) => json!(if s.entry().id_field.is_none() {
            "integer"
        } else {
            "string"
        }),
        (true, false) => json!("integer"),
        (false, true) => json!("string"),
        (true, true) => json!(["integer", "string"]),
    }
}

/// The property schemas of a collection that a `kind` of document lists, in the order a
/// feature shows them. One function for all three documents, so a property is described the
/// same in each: its JSON Schema type (or a spatial `format`), its title, a theme collection's
/// description, code list and format, its role (`x-ogc-role`: `id`, `primary-geometry`,
/// `primary-instant`) and its place in the feature (`x-ogc-propertySeq`, the same in every
/// document).
fn property_schemas(s: &dyn Source, kind: SchemaKind) -> serde_json::Map<String, Json> {
    let entry = s.entry();
    // A theme collection's attributes carry the theme's descriptions, code lists and formats.
    let theme = crate::theme::by_conformance(&entry.meta.conforms_to);
    let mut props = serde_json::Map::new();
    let mut seq = 0;
    let mut next_seq = || {
        seq += 1;
        seq
    };
    // The feature id is the `id` member of a GeoJSON feature. An attribute called `id` that is
    // not where the ids come from would clash with it, so then the id is not listed.
    let id_attribute = entry.attributes.iter().find(|a| a.name == "id");
    if id_attribute.is_none() {
        let n = next_seq();
        if kind == SchemaKind::Schema {
            let description = match (&entry.id_field, theme) {
                (Some(f), _) => format!("The feature id: the value of {f}"),
                (None, Some(_)) => format!(
                    "The feature id: {} and {}, as {0}:{1}",
                    crate::theme::SOURCE,
                    crate::theme::SOURCE_ID
                ),
                (None, None) => "The feature id: a number given to each feature at ingest".into(),
            };
            props.insert(
                "id".into(),
                json!({
                    "title": "id",
                    "description": description,
                    "type": id_type(s),
                    "readOnly": true,
                    "x-ogc-role": "id",
                    "x-ogc-propertySeq": n,
                }),
            );
        }
    }
    let n = next_seq();
    if kind != SchemaKind::Sortables {
        // A spatial property has no `type` and no `$ref` (Part 3 /req/queryables/
        // get-queryables-response D, Part 5 /req/schemas/properties B).
        props.insert(
            "geometry".into(),
            json!({
                "title": "geometry",
                "format": geometry_format(&entry.geometry_types),
                "x-ogc-role": "primary-geometry",
                "x-ogc-propertySeq": n,
            }),
        );
    }
    for a in &entry.attributes {
        let n = next_seq();
        if kind == SchemaKind::Sortables && !super::query::sortable(a.kind) {
            continue;
        }
        let mut schema = schema_of(a.kind);
        schema["title"] = Json::String(a.name.clone());
        if let Some(t) = theme.and_then(|t| t.attribute(&a.name)) {
            if t.kind.attr_type() == a.kind {
                if !t.description.is_empty() {
                    schema["description"] = Json::String(t.description.clone());
                }
                if !t.codes.is_empty() {
                    schema["enum"] = json!(t.codes);
                }
                if let Some(f) = t.format.and_then(crate::theme::Format::json_schema) {
                    schema["format"] = Json::String(f.into());
                }
            }
        } else if theme.is_some() && a.name == crate::theme::SOURCE {
            schema["description"] = Json::String(
                "The publisher: a municipality code (four digits) or an organisation number".into(),
            );
        } else if theme.is_some() && a.name == crate::theme::SOURCE_ID {
            schema["description"] = Json::String("The publisher's own id of the feature".into());
        }
        if id_attribute.is_some_and(|i| std::ptr::eq(i, a))
            && entry.id_field.as_deref() == Some("id")
            && matches!(a.kind, AttrType::Integer | AttrType::Text)
        {
            schema["x-ogc-role"] = json!("id");
        } else if entry.datetime_field.as_deref() == Some(a.name.as_str()) && a.kind.is_temporal() {
            schema["x-ogc-role"] = json!("primary-instant");
        }
        schema["x-ogc-propertySeq"] = json!(n);
        props.insert(a.name.clone(), schema);
    }
    props
}

/// `/schema`, `/queryables` or `/sortables`: a JSON Schema 2020-12 of the properties the
/// collection offers for that use. JSON only (`f=html` is answered with JSON too); an ETag
/// from the collection's version.
async fn schema_document(
    req: HttpRequest,
    id: &str,
    state: &AppState,
    kind: SchemaKind,
) -> Result<HttpResponse, ApiError> {
    let s = source(state, id)?;
    let q = Params::parse(req.query_string(), &["f"])?;
    negotiate(&req, q.get("f"))?;
    let base = base_url(&req)?;
    let name = kind.path();
    let (etag, fresh) = etag_check(&req, &format!("{}-v{}-{name}", s.entry().id, s.version()));
    if fresh {
        return Ok(not_modified(&etag));
    }
    let mut body = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("{base}/collections/{}/{name}", s.entry().id),
        "type": "object",
        "title": s.entry().meta.title,
    });
    if kind == SchemaKind::Schema {
        if let Some(d) = s
            .entry()
            .meta
            .description
            .as_deref()
            .filter(|d| !d.is_empty())
        {
            body["description"] = json!(d);
        }
    }
    body["properties"] = Json::Object(property_schemas(s.as_ref(), kind));
    body["additionalProperties"] = json!(false);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, SCHEMA_JSON))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body.to_string()))
}

pub async fn schema(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    schema_document(req, &path, &state, SchemaKind::Schema).await
}

pub async fn queryables(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    schema_document(req, &path, &state, SchemaKind::Queryables).await
}

pub async fn sortables(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    schema_document(req, &path, &state, SchemaKind::Sortables).await
}
