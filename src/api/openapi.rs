//! The OpenAPI 3.0 document (`/api`) and its offline HTML rendering (`/api.html`). Built with
//! utoipa's builders from the collections being served: besides the generic paths, each
//! collection gets its concrete items path listing its attributes as query parameters — that is
//! how QGIS and GDAL learn which `?name=value` filters they may send.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value as Json};
use utoipa::openapi::path::{
    OperationBuilder, ParameterBuilder, ParameterIn, PathItemBuilder, PathItemType,
};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApiBuilder, PathsBuilder, Required, ResponseBuilder,
    ServerBuilder,
};

use super::params::Params;
use super::{base_url, negotiate, ApiError, AppState, Limits, GEOJSON, JSON, OPENAPI, SCHEMA_JSON};
use crate::catalog::AttrType;
use crate::engine::Snapshot;

fn string_param(name: &str, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(SchemaType::String)))
}

fn path_param(name: &str, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(SchemaType::String)))
}

fn attribute_param(name: &str, kind: AttrType) -> ParameterBuilder {
    let (ty, format) = match kind {
        AttrType::Integer => (
            SchemaType::Integer,
            Some(SchemaFormat::KnownFormat(KnownFormat::Int64)),
        ),
        AttrType::Real => (
            SchemaType::Number,
            Some(SchemaFormat::KnownFormat(KnownFormat::Double)),
        ),
        AttrType::Boolean => (SchemaType::Boolean, None),
        AttrType::Date => (
            SchemaType::String,
            Some(SchemaFormat::KnownFormat(KnownFormat::Date)),
        ),
        AttrType::DateTime => (
            SchemaType::String,
            Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)),
        ),
        AttrType::Text | AttrType::Json => (SchemaType::String, None),
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(format!(
            "Only features whose {name} equals this value"
        )))
        .schema(Some(ObjectBuilder::new().schema_type(ty).format(format)))
}

fn response(description: &str, content_type: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content(content_type, ContentBuilder::new().build())
}

fn get(
    id: &str,
    summary: &str,
    content_type: &str,
    params: Vec<ParameterBuilder>,
) -> utoipa::openapi::PathItem {
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .response("200", response(summary, content_type))
        .response(
            "400",
            response("Bad request (JSON {code, description})", JSON),
        )
        .response("404", response("Not found", JSON))
        .response("406", response("Not acceptable", JSON));
    for p in params {
        op = op.parameter(p);
    }
    PathItemBuilder::new()
        .operation(PathItemType::Get, op)
        .build()
}

fn tms_param() -> ParameterBuilder {
    let ids: Vec<&str> = crate::tiles::tms::Tms::ALL.iter().map(|t| t.id()).collect();
    ParameterBuilder::new()
        .name("tileMatrixSetId")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(
            "WebMercatorQuad (what MapLibre, Leaflet and QGIS use) or SWEREF99TM (the grid of \
             Lantmäteriet's map services, EPSG:3006)",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .enum_values(Some(ids)),
        ))
}

fn tile_params(dataset: bool) -> Vec<ParameterBuilder> {
    let mut params = vec![
        tms_param(),
        path_param("tileMatrix", "Zoom level"),
        path_param("tileRow", "Row, from the top"),
        path_param("tileCol", "Column, from the left"),
        string_param("filter", "CQL2 filter, as on items"),
        string_param("filter-lang", "cql2-text (default) or cql2-json"),
        string_param(
            "filter-crs",
            "CRS of geometry literals in the filter (CRS84 by default)",
        ),
    ];
    if dataset {
        params.push(collections_param());
    }
    params
}

fn collections_param() -> ParameterBuilder {
    string_param(
        "collections",
        "Comma-separated collection ids, one layer each (default: all)",
    )
}

/// A vector tile: 200 with the tile, 204 when no feature shows in it.
fn tile_get(id: &str, summary: &str, params: Vec<ParameterBuilder>) -> utoipa::openapi::PathItem {
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .response("200", response(summary, super::tiles::MVT))
        .response(
            "204",
            ResponseBuilder::new().description("No feature shows in this tile"),
        )
        .response(
            "400",
            response("Bad request (JSON {code, description})", JSON),
        )
        .response(
            "404",
            response(
                "Outside the tile matrix set or the collection's zoom range",
                JSON,
            ),
        );
    for p in params {
        op = op.parameter(p);
    }
    PathItemBuilder::new()
        .operation(PathItemType::Get, op)
        .build()
}

/// Parameters of every items path (besides a collection's attributes).
fn item_params(limits: Limits) -> Vec<ParameterBuilder> {
    vec![
        ParameterBuilder::new()
            .name("limit")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("Features per page; larger values are clamped to the maximum"))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(SchemaType::Integer)
                    .minimum(Some(1.0))
                    .maximum(Some(limits.max_limit as f64))
                    .default(Some(json!(limits.default_limit))),
            )),
        string_param("bbox", "minx,miny,maxx,maxy (or 6 numbers with heights) in CRS84 unless bbox-crs says otherwise"),
        string_param("bbox-crs", "CRS of bbox: CRS84 (default) or EPSG:4326"),
        string_param("datetime", "An instant or interval (start/end, either may be ..) on the collection's date attribute"),
        string_param("properties", "Comma-separated attribute names to return"),
        string_param("crs", "CRS of the response"),
        string_param("cursor", "Opaque position from a next/prev link"),
        string_param(
            "filter",
            "CQL2 filter (OGC API – Features Part 3), e.g. places > 20 AND S_INTERSECTS(geometry, BBOX(12.9,55.5,13.1,55.7))",
        ),
        ParameterBuilder::new()
            .name("filter-lang")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(
                "cql2-text (default) or cql2-json; cql-text, the draft name, is read as cql2-text \
                 (GDAL before 3.7 looks for it here to send filters to the server)",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(SchemaType::String)
                    .enum_values(Some(["cql2-text", "cql2-json", "cql-text"]))
                    .default(Some(json!("cql2-text"))),
            )),
        string_param("filter-crs", "CRS of geometry literals in the filter (CRS84 by default)"),
        string_param("sortby", "Comma-separated attribute names, each optionally prefixed + or -"),
        ParameterBuilder::new()
            .name("offset")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("Features to skip"))
            .schema(Some(ObjectBuilder::new().schema_type(SchemaType::Integer).minimum(Some(0.0)))),
        string_param("f", "Response format: json"),
    ]
}

/// Builds the document for the collections being served.
pub fn document(collections: &[std::sync::Arc<Snapshot>], base: &str, limits: Limits) -> Json {
    let f = || vec![string_param("f", "Response format: json")];
    let mut paths = PathsBuilder::new()
        .path("/", get("getLandingPage", "Landing page", JSON, f()))
        .path(
            "/conformance",
            get("getConformance", "Conformance classes", JSON, f()),
        )
        .path(
            "/collections",
            get("getCollections", "Collections", JSON, f()),
        )
        .path(
            "/collections/{collectionId}",
            get(
                "describeCollection",
                "One collection",
                JSON,
                vec![
                    path_param("collectionId", "Collection id"),
                    string_param("f", "Response format: json"),
                ],
            ),
        )
        .path(
            "/collections/{collectionId}/queryables",
            get(
                "getQueryables",
                "Queryable attributes (JSON Schema)",
                SCHEMA_JSON,
                vec![path_param("collectionId", "Collection id")],
            ),
        )
        .path(
            "/collections/{collectionId}/sortables",
            get(
                "getSortables",
                "Attributes that sortby accepts (JSON Schema)",
                SCHEMA_JSON,
                vec![path_param("collectionId", "Collection id")],
            ),
        )
        .path(
            "/tileMatrixSets",
            get("getTileMatrixSetsList", "Tile matrix sets", JSON, f()),
        )
        .path(
            "/tileMatrixSets/{tileMatrixSetId}",
            get(
                "getTileMatrixSet",
                "A tile matrix set's definition (OGC 17-083r4 JSON)",
                JSON,
                vec![tms_param()],
            ),
        )
        .path(
            "/tiles",
            get(
                "getDatasetVectorTileSetsList",
                "Vector tilesets of all collections",
                JSON,
                f(),
            ),
        )
        .path(
            "/tiles/{tileMatrixSetId}",
            get(
                "getDatasetVectorTileSet",
                "Vector tileset of all (or the chosen) collections",
                JSON,
                vec![tms_param(), collections_param()],
            ),
        )
        .path(
            "/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
            tile_get(
                "getDatasetVectorTile",
                "A Mapbox Vector Tile with one layer per collection",
                tile_params(true),
            ),
        )
        .path(
            "/tiles/WebMercatorQuad/tilejson.json",
            get(
                "getDatasetTileJSON",
                "TileJSON 3.0 for all (or the chosen) collections",
                JSON,
                vec![
                    collections_param(),
                    string_param("filter", "CQL2 filter, passed on to the tile URLs"),
                ],
            ),
        )
        .path(
            "/collections/{collectionId}/tiles",
            get(
                "getCollectionVectorTileSetsList",
                "A collection's vector tilesets",
                JSON,
                vec![path_param("collectionId", "Collection id")],
            ),
        )
        .path(
            "/collections/{collectionId}/tiles/{tileMatrixSetId}",
            get(
                "getCollectionVectorTileSet",
                "A collection's vector tileset",
                JSON,
                vec![path_param("collectionId", "Collection id"), tms_param()],
            ),
        )
        .path(
            "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
            tile_get(
                "getCollectionVectorTile",
                "A Mapbox Vector Tile of one collection",
                std::iter::once(path_param("collectionId", "Collection id"))
                    .chain(tile_params(false))
                    .collect(),
            ),
        )
        .path(
            "/collections/{collectionId}/tiles/WebMercatorQuad/tilejson.json",
            get(
                "getCollectionTileJSON",
                "TileJSON 3.0 of one collection",
                JSON,
                vec![
                    path_param("collectionId", "Collection id"),
                    string_param("filter", "CQL2 filter, passed on to the tile URLs"),
                ],
            ),
        );
    for s in collections {
        let id = s.entry.id.as_str();
        let mut params = item_params(limits);
        for a in &s.entry.attributes {
            if a.kind != AttrType::Json && !super::items::ITEM_PARAMS.contains(&a.name.as_str()) {
                params.push(attribute_param(&a.name, a.kind));
            }
        }
        let mut items = get(
            &format!("getFeatures-{id}"),
            &format!("Features of {}", s.entry.meta.title),
            GEOJSON,
            params,
        );
        if let Some(op) = items.operations.get_mut(&PathItemType::Get) {
            op.responses.responses.insert(
                "410".into(),
                utoipa::openapi::RefOr::T(
                    response(
                        "The cursor's collection version is no longer served (JSON {code, description, links}: the link rel=first starts the walk again)",
                        JSON,
                    )
                    .build(),
                ),
            );
        }
        paths = paths.path(format!("/collections/{id}/items"), items).path(
            format!("/collections/{id}/items/{{featureId}}"),
            get(
                &format!("getFeature-{id}"),
                &format!("One feature of {}", s.entry.meta.title),
                GEOJSON,
                vec![
                    path_param("featureId", "Feature id"),
                    string_param("crs", "CRS of the response"),
                    string_param("f", "Response format: json"),
                ],
            ),
        );
    }
    let doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("hamn")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Open geodata from Swedish municipalities: OGC API – Features and Tiles",
                )),
        )
        .servers(Some([ServerBuilder::new().url(base).build()]))
        .paths(paths)
        .build();
    let mut value = serde_json::to_value(&doc).unwrap_or(Json::Null);
    // utoipa 4 has no `components.parameters`; clients (GDAL, QGIS) size their pages from
    // `components.parameters.limit.schema.default/maximum`, so it is added here.
    let limit = item_params(limits).remove(0).build();
    value["components"]["parameters"]["limit"] = serde_json::to_value(limit).unwrap_or(Json::Null);
    value
}

pub async fn api(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let q = Params::parse(req.query_string(), &["f"])?;
    negotiate(&req, q.get("f"))?;
    let doc = document(&state.engine.list(), &base_url(&req)?, state.limits);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, OPENAPI))
        .body(doc.to_string()))
}

/// The API as a plain HTML page: every path, its parameters and responses. No scripts, no CDN.
pub async fn api_html(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Params::parse(req.query_string(), &[])?;
    let base = base_url(&req)?;
    let doc = document(&state.engine.list(), &base, state.limits);
    let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    Ok(super::html::respond(maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "hamn API" }
                style { "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}\
                    code{background:#f3f3f3;padding:0 .2rem}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}" }
            }
            body {
                h1 { "hamn API" }
                p { "OpenAPI 3.0 document: " a href="api" { "api" } }
                @for (path, item) in &paths {
                    h2 { code { "GET " (path) } }
                    p { (text(&item["get"]["summary"])) }
                    @if let Some(params) = item["get"]["parameters"].as_array().filter(|p| !p.is_empty()) {
                        table {
                            tr { th { "parameter" } th { "in" } th { "type" } th { "description" } }
                            @for p in params {
                                tr {
                                    td { code { (text(&p["name"])) } }
                                    td { (text(&p["in"])) }
                                    td { (text(&p["schema"]["type"])) }
                                    td { (text(&p["description"])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }))
}
