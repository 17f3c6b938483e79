//! The OpenAPI 3.0 document (`/api`) and its offline HTML rendering (`/api.html`). Built with
//! utoipa's builders from the collections being served: besides the generic paths, each
//! collection gets its concrete items path listing its attributes as query parameters — that is
//! how QGIS and GDAL learn which `?name=value` filters they may send. Each operation declares the
//! status codes, content types and headers it answers with (HTML pages, 304, 410, 503 with
//! Retry-After) and a schema for each JSON body; tests/schemathesis.rs holds the server to it.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value as Json};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathItemBuilder, PathItemType,
};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Ref, SchemaFormat, SchemaType};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApiBuilder, PathsBuilder, RefOr, Required, Response,
    ResponseBuilder, ServerBuilder,
};

use super::params::Params;
use super::{
    base_url, negotiate, ApiError, AppState, Encoding, Limits, GEOJSON, JSON, OPENAPI, SCHEMA_JSON,
};
use crate::catalog::AttrType;
use crate::engine::Served;

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

/// `collectionId`: one of the collections served when the document was made.
fn collection_param(ids: &[&str]) -> ParameterBuilder {
    let mut schema = ObjectBuilder::new().schema_type(SchemaType::String);
    if !ids.is_empty() {
        schema = schema.enum_values(Some(ids.iter().copied()));
    }
    ParameterBuilder::new()
        .name("collectionId")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(
            "Collection id (those served when this document was made)",
        ))
        .schema(Some(schema))
}

/// A tile matrix, row or column: a number (anything else is a 400), 404 outside the set.
fn tile_index_param(name: &str, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::Integer)
                .minimum(Some(0.0)),
        ))
}

/// `f`: the formats a resource offers (`json`, and `html` where there is a page).
fn f_param(html: bool) -> ParameterBuilder {
    let formats: &[&str] = if html { &["json", "html"] } else { &["json"] };
    ParameterBuilder::new()
        .name("f")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(if html {
            "Response format: json, or html for a page (the default follows Accept)"
        } else {
            "Response format: json"
        }))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .enum_values(Some(formats.iter().copied())),
        ))
}

/// `f` on items and single items: JSON, HTML and the feature encodings.
fn f_param_features() -> ParameterBuilder {
    let formats: Vec<&str> = ["json", "html"]
        .into_iter()
        .chain(Encoding::ALL.iter().map(|e| e.name()))
        .collect();
    ParameterBuilder::new()
        .name("f")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(
            "Response format: json (GeoJSON), html, csv, jsonseq (GeoJSON text sequence, RFC \
             8142), ndjson (newline-delimited GeoJSON) or fgb (FlatGeobuf); the default follows \
             Accept",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .enum_values(Some(formats)),
        ))
}

/// Items or a single item also in the feature encodings (`page`: with the paging headers the
/// encodings without links of their own rely on).
/// `profile`: JSON-FG instead of plain GeoJSON.
fn profile_param() -> ParameterBuilder {
    ParameterBuilder::new()
        .name("profile")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(
            "JSON-FG 1.0 instead of plain GeoJSON: jsonfg (in a CRS other than CRS84 the \
             geometry is in place, geometry is null) or jsonfg-plus (CRS84 in geometry too); \
             each feature gets time from the date attribute",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .enum_values(Some(["jsonfg", "jsonfg-plus"])),
        ))
}

fn with_encodings(item: PathItem, page: bool) -> PathItem {
    with_get(item, |op| {
        if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
            // JSON-FG is GeoJSON with more members: the same schema.
            if let Some(geojson) = ok.content.get(GEOJSON).cloned() {
                ok.content.insert(super::jsonfg::JSONFG.into(), geojson);
            }
            for e in Encoding::ALL {
                let mut schema = ObjectBuilder::new().schema_type(SchemaType::String);
                if e == Encoding::FlatGeobuf {
                    schema = schema.format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)));
                }
                ok.content.insert(
                    e.media_type().into(),
                    ContentBuilder::new().schema(schema).build(),
                );
            }
            ok.headers.insert(
                "Content-Crs".into(),
                string_header("The CRS of the coordinates, as <URI>"),
            );
            if page {
                let count = |description: &str| {
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(SchemaType::Integer))
                        .description(Some(description))
                        .build()
                };
                ok.headers.insert(
                    "OGC-NumberMatched".into(),
                    count("Features that match the query (numberMatched)"),
                );
                ok.headers.insert(
                    "OGC-NumberReturned".into(),
                    count("Features in this response (numberReturned)"),
                );
                ok.headers.insert(
                    "Link".into(),
                    string_header(
                        "The next and previous pages (rel=next, rel=prev), in this response's format",
                    ),
                );
            }
        }
    })
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

/// A response whose body is `content_type`, described by the schema `schema` of
/// `components/schemas` (see `schemas`).
fn response(description: &str, content_type: &str, schema: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        content_type,
        ContentBuilder::new()
            .schema(Ref::from_schema_name(schema))
            .build(),
    )
}

/// An error: JSON {code, description}.
fn error(description: &str) -> ResponseBuilder {
    response(description, JSON, "exception")
}

fn string_header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(SchemaType::String))
        .description(Some(description))
        .build()
}

fn get(
    id: &str,
    summary: &str,
    content_type: &str,
    schema: &str,
    params: Vec<ParameterBuilder>,
) -> PathItem {
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .response("200", response(summary, content_type, schema))
        .response("400", error("Bad request (JSON {code, description})"))
        .response("404", error("Not found"))
        .response("406", error("Not acceptable"));
    for p in params {
        op = op.parameter(p);
    }
    PathItemBuilder::new()
        .operation(PathItemType::Get, op)
        .build()
}

/// Applies `change` to the GET operation of `item`.
fn with_get(
    mut item: PathItem,
    change: impl FnOnce(&mut utoipa::openapi::path::Operation),
) -> PathItem {
    if let Some(op) = item.operations.get_mut(&PathItemType::Get) {
        change(op);
    }
    item
}

fn insert_response(op: &mut utoipa::openapi::path::Operation, status: &str, response: Response) {
    op.responses
        .responses
        .insert(status.into(), RefOr::T(response));
}

/// A resource that also has an HTML page (`f=html`, or a browser's Accept).
fn with_html(item: PathItem) -> PathItem {
    with_get(item, |op| {
        if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
            ok.content.insert(
                "text/html".into(),
                ContentBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(SchemaType::String))
                    .build(),
            );
        }
    })
}

/// A resource with an ETag: `If-None-Match` with it (or `*`) is answered 304.
fn with_etag(item: PathItem) -> PathItem {
    with_get(item, |op| {
        op.parameters.get_or_insert_with(Vec::new).push(
            ParameterBuilder::new()
                .name("If-None-Match")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("ETags of representations the client holds"))
                .schema(Some(ObjectBuilder::new().schema_type(SchemaType::String)))
                .build(),
        );
        if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
            ok.headers.insert(
                "ETag".into(),
                string_header("Weak validator of this representation"),
            );
        }
        insert_response(
            op,
            "304",
            ResponseBuilder::new()
                .description("Not modified: If-None-Match named the current ETag")
                .header("ETag", string_header("The current ETag"))
                .build(),
        );
    })
}

/// A resource that may be unavailable for a while: a collection whose data cannot be read
/// now, or (items, tiles) heavy work that is full or past its deadline.
fn with_unavailable(item: PathItem) -> PathItem {
    with_get(item, |op| {
        insert_response(
            op,
            "503",
            error("Unavailable for now (a collection that cannot be read, or too much heavy work); retry after Retry-After seconds")
                .header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(SchemaType::Integer))
                        .description(Some("Seconds to wait"))
                        .build(),
                )
                .build(),
        );
    })
}

/// `/datasets/dcat`: the catalog in four RDF serialisations, RDF/XML by default.
fn dcat_catalog() -> PathItem {
    let text = || {
        ContentBuilder::new()
            .schema(ObjectBuilder::new().schema_type(SchemaType::String))
            .build()
    };
    let ok = ResponseBuilder::new()
        .description(
            "The collections as a DCAT-AP-SE catalog (a dcat:Catalog, a dcat:Dataset per \
             collection, a dcat:DataService for this API), the document dataportal.se harvests",
        )
        .content("application/rdf+xml", text())
        .content("text/turtle", text())
        .content(
            "application/ld+json",
            ContentBuilder::new()
                .schema(ObjectBuilder::new().schema_type(SchemaType::Value))
                .build(),
        )
        .content("application/n-triples", text());
    let f = ParameterBuilder::new()
        .name("f")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(
            "Serialisation: rdf (RDF/XML, the default), ttl (Turtle), jsonld (JSON-LD) or nt \
             (N-Triples); without it, Accept chooses",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::String)
                .enum_values(Some(["rdf", "ttl", "jsonld", "nt"])),
        ));
    let op = OperationBuilder::new()
        .operation_id(Some("getDcatCatalog"))
        .summary(Some(
            "DCAT-AP-SE catalog of the collections (for dataportal.se)",
        ))
        .parameter(f)
        .response("200", ok)
        .response("400", error("Bad request (JSON {code, description})"))
        .response("406", error("Not acceptable"));
    with_etag(
        PathItemBuilder::new()
            .operation(PathItemType::Get, op)
            .build(),
    )
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
        tile_index_param("tileMatrix", "Zoom level"),
        tile_index_param("tileRow", "Row, from the top"),
        tile_index_param("tileCol", "Column, from the left"),
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
fn tile_get(id: &str, summary: &str, params: Vec<ParameterBuilder>) -> PathItem {
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .response(
            "200",
            ResponseBuilder::new()
                .description(summary)
                .content(super::tiles::MVT, ContentBuilder::new().build()),
        )
        .response(
            "204",
            ResponseBuilder::new().description("No feature shows in this tile"),
        )
        .response("400", error("Bad request (JSON {code, description})"))
        .response(
            "404",
            error("Outside the tile matrix set or the collection's zoom range"),
        );
    for p in params {
        op = op.parameter(p);
    }
    with_unavailable(with_etag(
        PathItemBuilder::new()
            .operation(PathItemType::Get, op)
            .build(),
    ))
}

/// `/collections/{id}/download/{format}`: a collection's bulk download, with byte ranges.
fn download_get(collection: ParameterBuilder) -> PathItem {
    let mut ok = ResponseBuilder::new()
        .description("The whole collection, one file per version (FlatGeobuf with its spatial index, or GeoPackage)")
        .header("ETag", string_header("Strong validator: a digest of the file's bytes"))
        .header("Accept-Ranges", string_header("bytes"));
    for f in crate::download::Format::ALL {
        ok = ok.content(f.media_type(), ContentBuilder::new().build());
    }
    let op = OperationBuilder::new()
        .operation_id(Some("getBulkDownload"))
        .summary(Some(
            "All features of a collection as one file (the collection's `enclosure` links)",
        ))
        .parameter(collection)
        .parameter(
            ParameterBuilder::new()
                .name("format")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("fgb (FlatGeobuf) or gpkg (GeoPackage)"))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(SchemaType::String)
                        .enum_values(Some(crate::download::Format::ALL.map(|f| f.name()))),
                )),
        )
        .parameter(string_param(
            "v",
            "The version the URL names (as the enclosure links give it): then the response never changes; another version is redirected to the current one",
        ))
        .parameter(
            ParameterBuilder::new()
                .name("Range")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("One byte range (bytes=first-last, first-, -suffix), to resume"))
                .schema(Some(ObjectBuilder::new().schema_type(SchemaType::String))),
        )
        .parameter(
            ParameterBuilder::new()
                .name("If-Range")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("The ETag the resumed part came from: another gives the whole file"))
                .schema(Some(ObjectBuilder::new().schema_type(SchemaType::String))),
        )
        .parameter(
            ParameterBuilder::new()
                .name("If-None-Match")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("ETags of files the client holds"))
                .schema(Some(ObjectBuilder::new().schema_type(SchemaType::String))),
        )
        .response("200", ok)
        .response(
            "206",
            ResponseBuilder::new()
                .description("The byte range asked for")
                .header("Content-Range", string_header("bytes first-last/length")),
        )
        .response(
            "302",
            ResponseBuilder::new()
                .description("v= named another version: the current one's URL")
                .header("Location", string_header("The current version's download")),
        )
        .response("304", ResponseBuilder::new().description("Not modified"))
        .response("400", error("Bad request (JSON {code, description})"))
        .response("404", error("No such collection or format"))
        .response("416", error("The range starts past the end of the file"));
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
        profile_param(),
        ParameterBuilder::new()
            .name("offset")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("Features to skip"))
            .schema(Some(ObjectBuilder::new().schema_type(SchemaType::Integer).minimum(Some(0.0)))),
        f_param_features(),
    ]
}

/// Parameters of `/collections`: the search (OGC API – Records, local resources catalog).
fn collection_search_params() -> Vec<ParameterBuilder> {
    vec![
        ParameterBuilder::new()
            .name("q")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(
                "Words to find in collections' titles, keywords and descriptions. Case and accents \
                 are ignored (malmo finds Malmö) and Swedish endings too (parkeringar finds \
                 parkering); a word also finds compounds ending in it (parkering finds \
                 miljöparkering), but not words it merely begins (bad does not find badplatser). \
                 Every word must match; commas separate alternatives. Title matches come first, \
                 then keyword matches, then description matches. Empty: no filter.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(SchemaType::String)
                    .max_length(Some(crate::search::MAX_QUERY_CHARS)),
            )),
        string_param(
            "bbox",
            "minx,miny,maxx,maxy (or 6 numbers with heights) in CRS84: collections whose extent \
             intersects it. West greater than east crosses the antimeridian. Empty: no filter.",
        ),
        string_param(
            "theme",
            "Collections with this theme (case ignored), e.g. parking. Empty: no filter.",
        ),
        f_param(true),
    ]
}

/// Builds the document for the collections being served.
pub fn document(collections: &[Served], base: &str, limits: Limits) -> Json {
    let ids: Vec<&str> = collections.iter().map(|s| s.entry().id.as_str()).collect();
    let collection = || collection_param(&ids);
    let mut paths = PathsBuilder::new()
        .path(
            "/",
            with_html(get(
                "getLandingPage",
                "Landing page",
                JSON,
                "landingPage",
                vec![f_param(true)],
            )),
        )
        .path(
            "/conformance",
            get(
                "getConformance",
                "Conformance classes",
                JSON,
                "confClasses",
                vec![f_param(false)],
            ),
        )
        .path(super::dcat::PATH, dcat_catalog())
        .path(
            "/collections",
            with_etag(with_html(get(
                "getCollections",
                "Collections",
                JSON,
                "collections",
                collection_search_params(),
            ))),
        )
        .path(
            "/collections/{collectionId}",
            with_unavailable(with_etag(with_html(get(
                "describeCollection",
                "One collection",
                JSON,
                "collection",
                vec![collection(), f_param(true)],
            )))),
        )
        .path(
            "/collections/{collectionId}/schema",
            with_unavailable(with_etag(get(
                "getSchema",
                "Schema of the features: id, geometry and attributes with their types and roles (JSON Schema, OGC API – Features Part 5)",
                SCHEMA_JSON,
                "jsonSchema",
                vec![collection(), f_param(false)],
            ))),
        )
        .path(
            "/collections/{collectionId}/queryables",
            with_unavailable(with_etag(get(
                "getQueryables",
                "Queryable attributes (JSON Schema)",
                SCHEMA_JSON,
                "jsonSchema",
                vec![collection(), f_param(false)],
            ))),
        )
        .path(
            "/collections/{collectionId}/sortables",
            with_unavailable(with_etag(get(
                "getSortables",
                "Attributes that sortby accepts (JSON Schema)",
                SCHEMA_JSON,
                "jsonSchema",
                vec![collection(), f_param(false)],
            ))),
        )
        .path(
            "/collections/{collectionId}/changes",
            with_unavailable(with_etag(with_get(
                get(
                    "getChanges",
                    "What changed since a version (hamn's extension): the added and updated features as they are now, and the ids of the added, updated and removed ones",
                    GEOJSON,
                    "featureCollectionGeoJSON",
                    vec![
                        collection(),
                        ParameterBuilder::new()
                            .name("since")
                            .parameter_in(ParameterIn::Query)
                            .required(Required::True)
                            .description(Some(
                                "The version the client has (the `version` of its last call; 0: from the start), or an RFC 3339 date-time",
                            ))
                            .schema(Some(ObjectBuilder::new().schema_type(SchemaType::String))),
                        f_param(false),
                    ],
                ),
                |op| {
                    insert_response(
                        op,
                        "410",
                        error("No kept change leads from that version: read the whole collection again (JSON {code, description, links})")
                            .build(),
                    );
                },
            ))),
        )
        .path(
            "/collections/{collectionId}/download/{format}",
            with_unavailable(download_get(collection())),
        )
        .path(
            "/tileMatrixSets",
            get(
                "getTileMatrixSetsList",
                "Tile matrix sets",
                JSON,
                "tileMatrixSets",
                vec![f_param(false)],
            ),
        )
        .path(
            "/tileMatrixSets/{tileMatrixSetId}",
            get(
                "getTileMatrixSet",
                "A tile matrix set's definition (OGC 17-083r4 JSON)",
                JSON,
                "tileMatrixSet",
                vec![tms_param()],
            ),
        )
        .path(
            "/tiles",
            get(
                "getDatasetVectorTileSetsList",
                "Vector tilesets of all collections",
                JSON,
                "tileSets",
                vec![f_param(false)],
            ),
        )
        .path(
            "/tiles/{tileMatrixSetId}",
            with_unavailable(get(
                "getDatasetVectorTileSet",
                "Vector tileset of all (or the chosen) collections",
                JSON,
                "tileSet",
                vec![tms_param(), collections_param()],
            )),
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
            with_unavailable(get(
                "getDatasetTileJSON",
                "TileJSON 3.0 for all (or the chosen) collections",
                JSON,
                "tileJSON",
                vec![
                    collections_param(),
                    string_param("filter", "CQL2 filter, passed on to the tile URLs"),
                ],
            )),
        )
        .path(
            "/collections/{collectionId}/tiles",
            with_unavailable(get(
                "getCollectionVectorTileSetsList",
                "A collection's vector tilesets",
                JSON,
                "tileSets",
                vec![collection()],
            )),
        )
        .path(
            "/collections/{collectionId}/tiles/{tileMatrixSetId}",
            with_unavailable(get(
                "getCollectionVectorTileSet",
                "A collection's vector tileset",
                JSON,
                "tileSet",
                vec![collection(), tms_param()],
            )),
        )
        .path(
            "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
            tile_get(
                "getCollectionVectorTile",
                "A Mapbox Vector Tile of one collection",
                std::iter::once(collection())
                    .chain(tile_params(false))
                    .collect(),
            ),
        )
        .path(
            "/collections/{collectionId}/tiles/WebMercatorQuad/tilejson.json",
            with_unavailable(get(
                "getCollectionTileJSON",
                "TileJSON 3.0 of one collection",
                JSON,
                "tileJSON",
                vec![
                    collection(),
                    string_param("filter", "CQL2 filter, passed on to the tile URLs"),
                ],
            )),
        );
    for s in collections {
        let id = s.entry().id.as_str();
        let mut params = item_params(limits);
        for a in &s.entry().attributes {
            if a.kind != AttrType::Json && !super::query::ITEM_PARAMS.contains(&a.name.as_str()) {
                params.push(attribute_param(&a.name, a.kind));
            }
        }
        let items = with_get(
            get(
                &format!("getFeatures-{id}"),
                &format!("Features of {}", s.entry().meta.title),
                GEOJSON,
                "featureCollectionGeoJSON",
                params,
            ),
            |op| {
                insert_response(
                    op,
                    "410",
                    error("The cursor's collection version is no longer served (JSON {code, description, links}: the link rel=first starts the walk again)")
                        .build(),
                );
            },
        );
        let mut feature_id = path_param("featureId", "Feature id");
        if let Some(first) = &s.summary().example_id {
            feature_id = feature_id.example(Some(json!(first)));
        }
        paths = paths
            .path(
                format!("/collections/{id}/items"),
                with_unavailable(with_etag(with_encodings(with_html(items), true))),
            )
            .path(
                format!("/collections/{id}/items/{{featureId}}"),
                with_unavailable(with_etag(with_encodings(
                    with_html(get(
                        &format!("getFeature-{id}"),
                        &format!("One feature of {}", s.entry().meta.title),
                        GEOJSON,
                        "featureGeoJSON",
                        vec![
                            feature_id,
                            string_param("crs", "CRS of the response"),
                            profile_param(),
                            f_param_features(),
                        ],
                    )),
                    false,
                ))),
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
    value["components"]["schemas"] = schemas();
    value
}

/// The response bodies, as `components/schemas`: what every client may rely on (the members
/// hamn always sends, their types), not every member. tests/schemathesis.rs checks responses
/// against them.
fn schemas() -> Json {
    let string = || json!({"type": "string"});
    let links = json!({"type": "array", "items": {"$ref": "#/components/schemas/link"}});
    json!({
        "link": {
            "type": "object",
            "required": ["href", "rel"],
            "properties": {
                "href": string(),
                "rel": string(),
                "type": string(),
                "title": string(),
                "templated": {"type": "boolean"},
            },
        },
        "exception": {
            "type": "object",
            "required": ["code", "description"],
            "properties": {
                "code": string(),
                "description": string(),
                "links": links,
            },
        },
        "landingPage": {
            "type": "object",
            "required": ["links"],
            "properties": {"title": string(), "description": string(), "links": links},
        },
        "confClasses": {
            "type": "object",
            "required": ["conformsTo"],
            "properties": {"conformsTo": {"type": "array", "items": string()}},
        },
        "collection": {
            "type": "object",
            "required": ["id", "links"],
            "properties": {
                "id": string(),
                "title": string(),
                "description": string(),
                "links": links,
                "extent": {"type": "object"},
                "itemType": string(),
                "crs": {"type": "array", "items": string()},
                "storageCrs": string(),
                "itemCount": {"type": "integer", "minimum": 0},
            },
        },
        "collections": {
            "type": "object",
            "required": ["links", "collections"],
            "properties": {
                "links": links,
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0},
                "collections": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/collection"},
                },
            },
        },
        "featureGeoJSON": {
            "type": "object",
            "required": ["type", "geometry", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "geometry": {
                    "type": "object",
                    "nullable": true,
                    "required": ["type"],
                    "properties": {
                        "type": {
                            "type": "string",
                            "enum": [
                                "Point", "MultiPoint", "LineString", "MultiLineString",
                                "Polygon", "MultiPolygon", "GeometryCollection",
                            ],
                        },
                    },
                },
                "properties": {"type": "object", "nullable": true},
                "links": links,
            },
        },
        "featureCollectionGeoJSON": {
            "type": "object",
            "required": ["type", "features"],
            "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]},
                "features": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/featureGeoJSON"},
                },
                "numberMatched": {"type": "integer", "minimum": 0},
                "numberReturned": {"type": "integer", "minimum": 0},
                "timeStamp": string(),
                "links": links,
            },
        },
        "jsonSchema": {
            "type": "object",
            "required": ["type", "properties"],
            "properties": {
                "type": {"type": "string", "enum": ["object"]},
                "title": string(),
                "properties": {"type": "object"},
            },
        },
        "tileMatrixSets": {
            "type": "object",
            "required": ["tileMatrixSets"],
            "properties": {
                "tileMatrixSets": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "links"],
                        "properties": {"id": string(), "title": string(), "uri": string(), "links": links},
                    },
                },
            },
        },
        "tileMatrixSet": {
            "type": "object",
            "required": ["id", "crs", "tileMatrices"],
            "properties": {
                "id": string(),
                "title": string(),
                "uri": string(),
                "crs": string(),
                "tileMatrices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "id", "scaleDenominator", "cellSize", "pointOfOrigin",
                            "tileWidth", "tileHeight", "matrixWidth", "matrixHeight",
                        ],
                        "properties": {
                            "id": string(),
                            "scaleDenominator": {"type": "number"},
                            "cellSize": {"type": "number"},
                            "pointOfOrigin": {"type": "array", "items": {"type": "number"}},
                            "tileWidth": {"type": "integer", "minimum": 1},
                            "tileHeight": {"type": "integer", "minimum": 1},
                            "matrixWidth": {"type": "integer", "minimum": 1},
                            "matrixHeight": {"type": "integer", "minimum": 1},
                        },
                    },
                },
            },
        },
        // A tileset document is its tilesets-list entry plus its layers.
        "tileSet": {
            "allOf": [
                {"$ref": "#/components/schemas/tileSetEntry"},
                {
                    "type": "object",
                    "properties": {
                        "layers": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id"],
                                "properties": {"id": string(), "title": string(), "geometryType": string()},
                            },
                        },
                    },
                },
            ],
        },
        "tileSetEntry": {
            "type": "object",
            "required": ["dataType", "crs", "links"],
            "properties": {
                "title": string(),
                "dataType": {"type": "string", "enum": ["vector"]},
                "crs": string(),
                "tileMatrixSetURI": string(),
                "links": links,
            },
        },
        "tileSets": {
            "type": "object",
            "required": ["tilesets", "links"],
            "properties": {
                "links": links,
                "tilesets": {"type": "array", "items": {"$ref": "#/components/schemas/tileSetEntry"}},
            },
        },
        "tileJSON": {
            "type": "object",
            "required": ["tilejson", "tiles", "vector_layers"],
            "properties": {
                "tilejson": string(),
                "name": string(),
                "tiles": {"type": "array", "minItems": 1, "items": string()},
                "minzoom": {"type": "integer", "minimum": 0, "maximum": 30},
                "maxzoom": {"type": "integer", "minimum": 0, "maximum": 30},
                "bounds": {"type": "array", "items": {"type": "number"}},
                "center": {"type": "array", "items": {"type": "number"}},
                "vector_layers": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["id", "fields"],
                        "properties": {
                            "id": string(),
                            "fields": {"type": "object", "additionalProperties": string()},
                        },
                    },
                },
            },
        },
    })
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
