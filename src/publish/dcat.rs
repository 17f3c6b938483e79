//! Reading a DCAT-AP(-SE) catalog to find what hamn can ingest.
//!
//! A municipality describes its open data in DCAT: an EntryScape catalog
//! (`…/store/{ctx}/metadata/{entry}?recursive=dcat`), dataportal.se or data.europa.eu. This
//! module is the pure part of harvesting one: the bytes of an RDF document in ([`parse`]), out
//! the datasets with their metadata and, per dataset, the distribution to download ([`choose`])
//! or the reason it is skipped ([`Skip`]). Downloading and scheduling are the harvest job's.
//!
//! The RDF is read with Oxigraph's parsers (`oxrdfio`), never by matching strings, so RDF/XML,
//! Turtle, N-Triples and JSON-LD give the same result. The triples are indexed by subject once;
//! every entity is then read with lookups, and entities shared between datasets (a publisher, a
//! distribution) are built once, so a big catalog costs time in proportion to its size.
//!
//! Nothing in the document is trusted: parsing is lenient about malformed IRIs (one bad download
//! URL must not make a whole catalog unreadable), and every URL handed on is checked here to be
//! an absolute http(s) IRI; texts and lists are truncated to the limits below.

use std::collections::{HashMap, HashSet};
use std::fmt;

use oxrdf::{NamedNode, NamedNodeRef, NamedOrBlankNode, Term};
use serde::Serialize;

/// Larger documents are refused with [`DcatError::TooLarge`] (the caller limits downloads too).
pub const MAX_INPUT_BYTES: usize = 20 * 1024 * 1024;
/// At most this many datasets are read from one document; the rest are counted in
/// [`Catalog::omitted_datasets`].
pub const MAX_DATASETS: usize = 10_000;
/// Titles (of catalogs, datasets, distributions and services) and names are cut to this many
/// characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Descriptions are cut to this many characters.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// At most this many keywords are kept for a dataset …
pub const MAX_KEYWORDS: usize = 50;
/// … each cut to this many characters.
pub const MAX_KEYWORD_CHARS: usize = 100;
/// Lists of IRIs (themes, conformsTo, endpoint URLs) keep at most this many entries.
const MAX_LIST: usize = 100;
/// At most this many distributions are read for one dataset.
const MAX_DISTRIBUTIONS_PER_DATASET: usize = 100;
/// At most this many distributions are read over the whole document (datasets may share them).
const MAX_DISTRIBUTIONS_TOTAL: usize = 100_000;
/// A URL longer than this is not usable; other IRIs and short values are cut to it.
const MAX_URL_CHARS: usize = 4096;
/// Formats, identifiers and licences are cut to this many characters.
const MAX_VALUE_CHARS: usize = 500;

// Vocabulary.
const RDF_TYPE: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/1999/02/22-rdf-syntax-ns#type");
const RDF_VALUE: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/1999/02/22-rdf-syntax-ns#value");
const RDFS_LABEL: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/2000/01/rdf-schema#label");
const SKOS_PREF_LABEL: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/2004/02/skos/core#prefLabel");
const FOAF_NAME: NamedNodeRef<'_> = NamedNodeRef::new_unchecked("http://xmlns.com/foaf/0.1/name");
const DCT_TITLE: NamedNodeRef<'_> = NamedNodeRef::new_unchecked("http://purl.org/dc/terms/title");
const DCT_DESCRIPTION: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://purl.org/dc/terms/description");
const DCT_PUBLISHER: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://purl.org/dc/terms/publisher");
const DCT_LICENSE: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://purl.org/dc/terms/license");
const DCT_IDENTIFIER: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://purl.org/dc/terms/identifier");
const DCT_CONFORMS_TO: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://purl.org/dc/terms/conformsTo");
const DCT_FORMAT: NamedNodeRef<'_> = NamedNodeRef::new_unchecked("http://purl.org/dc/terms/format");
const DCT_SOURCE: NamedNodeRef<'_> = NamedNodeRef::new_unchecked("http://purl.org/dc/terms/source");
const DCT_HAS_PART: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://purl.org/dc/terms/hasPart");
const DCAT_CATALOG: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#Catalog");
const DCAT_DATASET_CLASS: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#Dataset");
const DCAT_DATASET: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#dataset");
const DCAT_DISTRIBUTION: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#distribution");
const DCAT_ACCESS_URL: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#accessURL");
const DCAT_DOWNLOAD_URL: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#downloadURL");
const DCAT_MEDIA_TYPE: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#mediaType");
const DCAT_ACCESS_SERVICE: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#accessService");
const DCAT_ENDPOINT_URL: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#endpointURL");
const DCAT_ENDPOINT_DESCRIPTION: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#endpointDescription");
const DCAT_SERVES_DATASET: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#servesDataset");
const DCAT_THEME: NamedNodeRef<'_> = NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#theme");
const DCAT_KEYWORD: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#keyword");
const DCAT_LANDING_PAGE: NamedNodeRef<'_> =
    NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#landingPage");

const EU_FILE_TYPE: &str = "publications.europa.eu/resource/authority/file-type/";
const IANA_MEDIA_TYPE: &str = "www.iana.org/assignments/media-types/";
const INSPIRE_MEDIA_TYPE: &str = "inspire.ec.europa.eu/media-types/";

/// The RDF serialisations a catalog can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RdfFormat {
    RdfXml,
    Turtle,
    NTriples,
    JsonLd,
}

impl RdfFormat {
    /// From a Content-Type (parameters ignored) and/or a file name (or URL path); the
    /// Content-Type wins when it names an RDF format. None if neither says.
    ///
    /// `application/json` counts as JSON-LD and `application/xml` as RDF/XML: in a DCAT
    /// harvest nothing else is expected. `text/plain` says nothing. EntryScape's
    /// `application/rdf+json` (RDF/JSON) is not a format these parsers read: None.
    pub fn guess(content_type: Option<&str>, file_name: Option<&str>) -> Option<Self> {
        if let Some(content_type) = content_type {
            let from_type = match super::fetch::essence(content_type).as_str() {
                "application/rdf+xml" | "application/xml" | "text/xml" => Some(Self::RdfXml),
                "text/turtle" | "application/x-turtle" | "application/turtle" => Some(Self::Turtle),
                "application/n-triples" | "text/n-triples" => Some(Self::NTriples),
                "application/ld+json" | "application/json" => Some(Self::JsonLd),
                _ => None,
            };
            if from_type.is_some() {
                return from_type;
            }
        }
        let name = file_name?;
        // A URL or path: the last segment, without query or fragment.
        let name = name.split(['?', '#']).next().unwrap_or_default();
        let name = name.rsplit('/').next().unwrap_or_default();
        let (_, extension) = name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "rdf" | "xml" | "owl" => Some(Self::RdfXml),
            "ttl" => Some(Self::Turtle),
            "nt" => Some(Self::NTriples),
            "jsonld" | "json" => Some(Self::JsonLd),
            _ => None,
        }
    }

    /// From the first bytes, when [`guess`](Self::guess) says nothing: an XML declaration,
    /// doctype, comment or element (`<?xml`, `<rdf:RDF`) is RDF/XML, `{` or `[` is JSON-LD, and
    /// anything else Turtle (N-Triples is a subset of Turtle, so `<http://…> <…> <…> .` is read
    /// as Turtle too).
    pub fn sniff(bytes: &[u8]) -> Self {
        let bytes = strip_bom(bytes);
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        let head = &bytes[start..];
        match head.first() {
            Some(b'{' | b'[') => Self::JsonLd,
            Some(b'<') => match head.get(1) {
                Some(b'?' | b'!') => Self::RdfXml,
                Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                    // `<rdf:RDF …>` is an element; `<http://…>` an IRI in Turtle.
                    let token_end = head
                        .iter()
                        .position(|b| b.is_ascii_whitespace() || *b == b'>')
                        .unwrap_or(head.len());
                    if head[..token_end].windows(3).any(|w| w == b"://") {
                        Self::Turtle
                    } else {
                        Self::RdfXml
                    }
                }
                _ => Self::Turtle,
            },
            _ => Self::Turtle,
        }
    }

    fn oxrdfio(self) -> oxrdfio::RdfFormat {
        match self {
            Self::RdfXml => oxrdfio::RdfFormat::RdfXml,
            Self::Turtle => oxrdfio::RdfFormat::Turtle,
            Self::NTriples => oxrdfio::RdfFormat::NTriples,
            Self::JsonLd => oxrdfio::RdfFormat::JsonLd {
                profile: oxrdfio::JsonLdProfileSet::empty(),
            },
        }
    }
}

impl fmt::Display for RdfFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RdfXml => "RDF/XML",
            Self::Turtle => "Turtle",
            Self::NTriples => "N-Triples",
            Self::JsonLd => "JSON-LD",
        })
    }
}

/// Why a document could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum DcatError {
    /// The document is not valid in the format it was read as. `line` is 1-based, when the
    /// parser knows it (the RDF/XML parser does not).
    #[error("{format} syntax error{}: {message}", line.map(|l| format!(" on line {l}")).unwrap_or_default())]
    Syntax {
        format: RdfFormat,
        line: Option<u64>,
        message: String,
    },
    /// The document parsed but describes no `dcat:Dataset`.
    #[error("the document describes no dcat:Dataset")]
    NoDatasets,
    /// The document is larger than [`MAX_INPUT_BYTES`].
    #[error("the document is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// The base IRI given by the caller is not an absolute IRI.
    #[error("the base IRI {iri:?} is not valid: {message}")]
    InvalidBaseIri { iri: String, message: String },
}

/// What a document says: the (main) catalog, if any, and every dataset in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    /// `dcterms:title` of the catalog (language as for datasets); None without a catalog.
    pub title: Option<String>,
    /// `foaf:name` of the catalog's `dcterms:publisher`.
    pub publisher: Option<String>,
    /// `dcterms:license` of the catalog (mandatory in DCAT-AP-SE).
    pub licence: Option<String>,
    /// Every `dcat:Dataset`, in document order, at most [`MAX_DATASETS`].
    pub datasets: Vec<Dataset>,
    /// How many datasets beyond [`MAX_DATASETS`] were left out.
    pub omitted_datasets: usize,
}

/// One `dcat:Dataset`: what hamn makes one collection of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataset {
    /// The IRI, or `_:label` for a blank node.
    pub uri: String,
    /// `dcterms:identifier`.
    pub identifier: Option<String>,
    /// `dcterms:title`: Swedish, else untagged, else English, else any other language, machine
    /// translations (`xx-t-sv-t0-mtec`) last; the URI if there is no title at all.
    pub title: String,
    /// `dcterms:description`, language chosen as for the title.
    pub description: Option<String>,
    /// The language of the title, when it is tagged with one hamn knows (not a machine
    /// translation).
    pub language: Option<String>,
    /// `foaf:name` of the dataset's `dcterms:publisher`, else of the catalog's.
    pub publisher: Option<String>,
    /// `dcterms:license` of the dataset, else of its chosen distribution ([`choose`]), else of
    /// the catalog that lists it (else of the main catalog).
    pub licence: Option<String>,
    /// `dcat:theme` IRIs.
    pub themes: Vec<String>,
    /// `dcat:keyword`s in one language, chosen as for the title.
    pub keywords: Vec<String>,
    /// `dcterms:conformsTo` IRIs, e.g. `https://dataportal.se/specifications/badplatser/1.0`.
    pub conforms_to: Vec<String>,
    /// `dcat:landingPage`.
    pub landing_page: Option<String>,
    /// `dcat:distribution`s, in document order.
    pub distributions: Vec<Distribution>,
    /// `dcat:DataService`s that declare `dcat:servesDataset` this dataset.
    pub services: Vec<DataService>,
}

/// One `dcat:Distribution`: a file or an API through which a dataset is available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Distribution {
    /// The IRI, or `_:label` for a blank node.
    pub uri: String,
    /// `dcterms:title`, language chosen as for datasets.
    pub title: Option<String>,
    /// `dcat:accessURL`: the first usable (absolute http(s)) one, else the first as given.
    pub access_url: Option<String>,
    /// `dcat:downloadURL`: the first usable one, else the first as given.
    pub download_url: Option<String>,
    /// `dcterms:format` as given: a literal (an IANA media type in DCAT-AP-SE) or an IRI (EU
    /// file-type NAL, IANA media-type IRI); for a blank node, its `rdf:value` or label.
    pub format: Option<String>,
    /// `dcat:mediaType`, as `format`.
    pub media_type: Option<String>,
    /// `dcterms:license`.
    pub licence: Option<String>,
    /// `dcterms:conformsTo` IRIs.
    pub conforms_to: Vec<String>,
    /// `dcterms:source`: for an EntryScape rowstore API, the distribution it was made from.
    pub source: Option<String>,
    /// The `dcat:accessService`, if any.
    pub access_service: Option<DataService>,
}

/// A `dcat:DataService`: an API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataService {
    /// The IRI, or `_:label` for a blank node.
    pub uri: String,
    /// `dcterms:title`.
    pub title: Option<String>,
    /// `dcat:endpointURL`s, as given.
    pub endpoint_urls: Vec<String>,
    /// `dcat:endpointDescription` (an OpenAPI document, a GetCapabilities URL).
    pub endpoint_description: Option<String>,
    /// `dcterms:conformsTo` IRIs (e.g. OGC API Features conformance classes).
    pub conforms_to: Vec<String>,
}

/// What kind of file a chosen distribution is, in hamn's order of preference (declaration
/// order: `GeoPackage < FlatGeobuf < … < Csv`). All are read by hamn's ingest (GDAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SourceKind {
    GeoPackage,
    FlatGeobuf,
    GeoJson,
    /// A zip archive holding a shapefile (.shp, .shx, .dbf and usually .prj).
    ZippedShapefile,
    Gml,
    /// KML, or KMZ (zipped KML).
    Kml,
    /// CSV with coordinate columns (the national specifications' CSVs have latitude/longitude).
    Csv,
}

impl SourceKind {
    /// A file name extension for the download, so that GDAL recognises it (KMZ is named .kml
    /// here: the distribution does not always say which of the two it is).
    pub fn extension(self) -> &'static str {
        match self {
            Self::GeoPackage => "gpkg",
            Self::FlatGeobuf => "fgb",
            Self::GeoJson => "geojson",
            Self::ZippedShapefile => "zip",
            Self::Gml => "gml",
            Self::Kml => "kml",
            Self::Csv => "csv",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::GeoPackage => "GeoPackage",
            Self::FlatGeobuf => "FlatGeobuf",
            Self::GeoJson => "GeoJSON",
            Self::ZippedShapefile => "zipped Shapefile",
            Self::Gml => "GML",
            Self::Kml => "KML",
            Self::Csv => "CSV",
        })
    }
}

/// The distribution of a dataset to ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// An absolute http(s) URL: the distribution's `dcat:downloadURL` if usable, else its
    /// `dcat:accessURL`.
    pub url: String,
    pub kind: SourceKind,
    /// The [`Distribution::uri`] chosen.
    pub distribution: String,
}

/// Why a dataset has nothing for hamn to ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Skip {
    /// The dataset has no distribution (and no data service).
    NoDistributions,
    /// No distribution, or none in a format hamn reads, has an absolute http(s) URL that is a
    /// file (an EntryScape rowstore API is not one).
    NoUrl,
    /// The distributions have URLs, but none in a format hamn reads; `formats` lists what they
    /// say they are (`dcterms:format`, else `dcat:mediaType`).
    NotSpatial { formats: Vec<String> },
    /// The data is only available through a service hamn recognises but does not harvest yet:
    /// `kind` is "OGC API Features" or "WFS", `url` the endpoint (or the access URL).
    ServiceNotSupported { kind: String, url: String },
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDistributions => f.write_str("The dataset has no distributions to download."),
            Self::NoUrl => f.write_str(
                "None of the dataset's distributions has an absolute http(s) URL of a file in a \
                 format hamn can ingest.",
            ),
            Self::NotSpatial { formats } if formats.is_empty() => f.write_str(
                "None of the dataset's distributions is in a format hamn can ingest (no format \
                 is given).",
            ),
            Self::NotSpatial { formats } => write!(
                f,
                "None of the dataset's distributions is in a format hamn can ingest (formats \
                 given: {}).",
                formats.join(", ")
            ),
            Self::ServiceNotSupported { kind, url } => write!(
                f,
                "The dataset is only available through a {kind} service ({url}), which hamn \
                 does not harvest yet."
            ),
        }
    }
}

/// Reads a DCAT document: its (main) catalog and every `dcat:Dataset` in it, whether listed by
/// a catalog with `dcat:dataset` or not (EntryScape's `?recursive=dcat` on a dataset entry
/// gives a dataset without a catalog). IRIs and blank nodes both work for every entity;
/// relative IRIs are resolved against `base_iri` (typically the URL the document came from)
/// when given, and are otherwise left relative, so not usable as URLs.
pub fn parse(
    bytes: &[u8],
    format: RdfFormat,
    base_iri: Option<&str>,
) -> Result<Catalog, DcatError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(DcatError::TooLarge {
            size: bytes.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let mut parser = oxrdfio::RdfParser::from_format(format.oxrdfio()).lenient();
    if let Some(base) = base_iri {
        parser = parser
            .with_base_iri(base)
            .map_err(|e| DcatError::InvalidBaseIri {
                iri: clip(base, MAX_URL_CHARS),
                message: e.to_string(),
            })?;
    }
    let mut graph = Graph::default();
    for quad in parser.for_slice(strip_bom(bytes)) {
        let quad = quad.map_err(|e| {
            let mut message = clip(&e.to_string(), MAX_VALUE_CHARS);
            if format == RdfFormat::JsonLd && message.contains("remote context") {
                message = format!("the @context is remote, and is not fetched ({message})");
            }
            DcatError::Syntax {
                format,
                line: e.location().map(|l| l.start.line + 1),
                message,
            }
        })?;
        graph.add(quad.subject, quad.predicate, quad.object);
    }
    Reader::new(&graph).catalog()
}

/// Chooses the distribution of `dataset` to ingest: the most preferred [`SourceKind`]
/// (GeoPackage, FlatGeobuf, GeoJSON, zipped Shapefile, GML, KML, CSV), the first in document
/// order among equals, at its `dcat:downloadURL` if usable, else its `dcat:accessURL`.
///
/// The kind comes from `dcterms:format` and `dcat:mediaType` (literal or IRI: IANA media types,
/// the EU file-type NAL, free text such as "GeoJSON"), else from the URL's extension. A zip is
/// a shapefile only when the title, format or URL says shp/shape; `application/json` is GeoJSON
/// only when the URL ends `.geojson` or the title says GeoJSON. EntryScape rowstore APIs
/// (`…/rowstore/dataset/…`) are never chosen: their source CSV is. OGC API Features and WFS
/// endpoints are recognised and reported ([`Skip::ServiceNotSupported`]) when no file exists.
pub fn choose(dataset: &Dataset) -> Result<Choice, Skip> {
    let mut best: Option<Choice> = None;
    let mut service: Option<(&'static str, String)> = None;
    let mut kind_without_url = false;
    let mut any_usable_url = false;
    let mut formats: Vec<String> = Vec::new();
    for distribution in &dataset.distributions {
        if let Some(given) = distribution
            .format
            .as_ref()
            .or(distribution.media_type.as_ref())
        {
            if !formats.contains(given) {
                formats.push(given.clone());
            }
        }
        // A service distribution may still have a download URL of a file (a bulk download);
        // its access URL is the API.
        let found_service = distribution_service(distribution);
        let urls = if found_service.is_some() {
            [&distribution.download_url, &None]
        } else {
            [&distribution.download_url, &distribution.access_url]
        };
        let urls = urls
            .into_iter()
            .flatten()
            .filter(|url| usable_url(url) && !is_rowstore(url) && !is_service_url(url));
        let (mut found_url, mut found_file) = (false, false);
        for url in urls {
            found_url = true;
            any_usable_url = true;
            if let Some(kind) = file_kind(distribution, url) {
                found_file = true;
                if best.as_ref().is_none_or(|b| kind < b.kind) {
                    best = Some(Choice {
                        url: url.clone(),
                        kind,
                        distribution: distribution.uri.clone(),
                    });
                }
                break;
            }
        }
        if let Some(found) = found_service {
            if !found_file {
                service.get_or_insert(found);
            }
        } else if !found_url && metadata_kind(distribution).is_some() {
            kind_without_url = true;
        }
    }
    if let Some(choice) = best {
        return Ok(choice);
    }
    for data_service in &dataset.services {
        if let Some(found) = service_kind(data_service, &[], &[]) {
            service.get_or_insert(found);
        }
    }
    if let Some((kind, url)) = service {
        return Err(Skip::ServiceNotSupported {
            kind: kind.to_owned(),
            url,
        });
    }
    if dataset.distributions.is_empty() {
        Err(Skip::NoDistributions)
    } else if kind_without_url || !any_usable_url {
        Err(Skip::NoUrl)
    } else {
        Err(Skip::NotSpatial { formats })
    }
}

// ---------------------------------------------------------------------------------------------
// Format recognition.

/// What a format string or a URL extension says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    Kind(SourceKind),
    /// A zip archive: a shapefile only with a hint.
    Zip,
    /// Plain JSON: GeoJSON only with a hint.
    Json,
    /// A WFS (EU file-type NAL `WFS_SRVC`).
    Wfs,
}

/// Classifies a `dcterms:format` or `dcat:mediaType` value: a media type (literal or IANA IRI,
/// parameters ignored), an EU file-type NAL IRI or free text, case-insensitively.
fn format_hint(value: &str) -> Option<Hint> {
    let value = value.trim().to_ascii_lowercase();
    let without_scheme = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .unwrap_or(&value);
    if let Some(code) = without_scheme.strip_prefix(EU_FILE_TYPE) {
        return match code.trim_end_matches('/') {
            "geojson" => Some(Hint::Kind(SourceKind::GeoJson)),
            "gpkg" => Some(Hint::Kind(SourceKind::GeoPackage)),
            "shp" => Some(Hint::Kind(SourceKind::ZippedShapefile)),
            "kml" | "kmz" => Some(Hint::Kind(SourceKind::Kml)),
            "gml" => Some(Hint::Kind(SourceKind::Gml)),
            "csv" => Some(Hint::Kind(SourceKind::Csv)),
            "zip" => Some(Hint::Zip),
            "json" => Some(Hint::Json),
            "wfs_srvc" => Some(Hint::Wfs),
            _ => None,
        };
    }
    let media = without_scheme
        .strip_prefix(IANA_MEDIA_TYPE)
        .or_else(|| without_scheme.strip_prefix(INSPIRE_MEDIA_TYPE))
        .unwrap_or(&value);
    let media = media.split(';').next().unwrap_or_default().trim();
    match media {
        "application/geopackage+sqlite3"
        | "application/geopackage+vnd.sqlite3"
        | "gpkg"
        | "geopackage" => Some(Hint::Kind(SourceKind::GeoPackage)),
        "application/flatgeobuf" | "flatgeobuf" | "fgb" => Some(Hint::Kind(SourceKind::FlatGeobuf)),
        "application/geo+json" | "application/vnd.geo+json" | "geojson" | "geo+json" => {
            Some(Hint::Kind(SourceKind::GeoJson))
        }
        "application/x-shapefile"
        | "application/x-esri-shape"
        | "application/vnd.shp"
        | "shp"
        | "shape"
        | "shapefile"
        | "esri shapefile"
        | "shape (zip)"
        | "shp (zip)" => Some(Hint::Kind(SourceKind::ZippedShapefile)),
        "application/gml+xml" | "gml" => Some(Hint::Kind(SourceKind::Gml)),
        "application/vnd.google-earth.kml+xml"
        | "application/vnd.google-earth.kmz"
        | "kml"
        | "kmz" => Some(Hint::Kind(SourceKind::Kml)),
        "text/csv" | "application/csv" | "csv" => Some(Hint::Kind(SourceKind::Csv)),
        "application/zip" | "application/x-zip-compressed" | "application/x-zip" | "zip" => {
            Some(Hint::Zip)
        }
        "application/json" | "json" => Some(Hint::Json),
        _ => None,
    }
}

/// Classifies a URL by the extension of its path.
fn extension_hint(url: &str) -> Option<Hint> {
    let path = url_path(url).to_ascii_lowercase();
    let (_, extension) = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .rsplit_once('.')?;
    match extension {
        "gpkg" => Some(Hint::Kind(SourceKind::GeoPackage)),
        "fgb" => Some(Hint::Kind(SourceKind::FlatGeobuf)),
        "geojson" => Some(Hint::Kind(SourceKind::GeoJson)),
        "gml" => Some(Hint::Kind(SourceKind::Gml)),
        "kml" | "kmz" => Some(Hint::Kind(SourceKind::Kml)),
        "csv" => Some(Hint::Kind(SourceKind::Csv)),
        "zip" => Some(Hint::Zip),
        "json" => Some(Hint::Json),
        _ => None,
    }
}

/// The hints of a distribution's format and media type: a definite kind (the most preferred,
/// if they disagree) before a zip or JSON needing a hint.
fn metadata_hint(distribution: &Distribution) -> Option<Hint> {
    let hints: Vec<Hint> = [&distribution.format, &distribution.media_type]
        .into_iter()
        .flatten()
        .filter_map(|value| format_hint(value))
        .collect();
    let kind = hints
        .iter()
        .filter_map(|h| match h {
            Hint::Kind(kind) => Some(*kind),
            _ => None,
        })
        .min();
    kind.map(Hint::Kind)
        .or_else(|| hints.iter().copied().find(|h| *h == Hint::Zip))
        .or_else(|| hints.iter().copied().find(|h| *h == Hint::Json))
}

/// The kind a distribution's metadata alone gives (for telling "no URL" from "not spatial").
fn metadata_kind(distribution: &Distribution) -> Option<SourceKind> {
    match metadata_hint(distribution)? {
        Hint::Kind(kind) => Some(kind),
        Hint::Zip if shapefile_hint(distribution, None) => Some(SourceKind::ZippedShapefile),
        Hint::Json if geojson_hint(distribution, None) => Some(SourceKind::GeoJson),
        _ => None,
    }
}

/// The kind of file the distribution is at `url`: from its format and media type, else from
/// the URL's extension.
fn file_kind(distribution: &Distribution, url: &str) -> Option<SourceKind> {
    let hint = match metadata_hint(distribution) {
        Some(hint) => hint,
        None => extension_hint(url)?,
    };
    match hint {
        Hint::Kind(kind) => Some(kind),
        Hint::Zip if shapefile_hint(distribution, Some(url)) => Some(SourceKind::ZippedShapefile),
        Hint::Json if geojson_hint(distribution, Some(url)) => Some(SourceKind::GeoJson),
        _ => None,
    }
}

fn mentions_shapefile(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    text.contains("shp") || text.contains("shape")
}

fn shapefile_hint(distribution: &Distribution, url: Option<&str>) -> bool {
    [
        &distribution.title,
        &distribution.format,
        &distribution.media_type,
    ]
    .into_iter()
    .flatten()
    .any(|text| mentions_shapefile(text))
        || url.is_some_and(|url| {
            url_path(url).to_ascii_lowercase().ends_with(".zip") && mentions_shapefile(url)
        })
}

fn geojson_hint(distribution: &Distribution, url: Option<&str>) -> bool {
    distribution
        .title
        .as_ref()
        .is_some_and(|t| t.to_ascii_lowercase().contains("geojson"))
        || url.is_some_and(|url| url_path(url).to_ascii_lowercase().ends_with(".geojson"))
}

/// An OGC API Features or WFS service behind a distribution: its kind and URL.
fn distribution_service(distribution: &Distribution) -> Option<(&'static str, String)> {
    let urls: Vec<&String> = [&distribution.access_url, &distribution.download_url]
        .into_iter()
        .flatten()
        .collect();
    let formats: Vec<&String> = [&distribution.format, &distribution.media_type]
        .into_iter()
        .flatten()
        .collect();
    let access_url = || {
        urls.iter()
            .find(|u| usable_url(u))
            .or(urls.first())
            .map(|u| (*u).clone())
            .unwrap_or_default()
    };
    if let Some(data_service) = &distribution.access_service {
        if let Some((kind, url)) = service_kind(data_service, &distribution.conforms_to, &urls) {
            return Some((kind, if url.is_empty() { access_url() } else { url }));
        }
        // DCAT-AP-SE's form for an OGC API Features collection: format application/geo+json
        // through a data service, without a download URL.
        let geojson = metadata_hint(distribution) == Some(Hint::Kind(SourceKind::GeoJson));
        if geojson && distribution.download_url.is_none() {
            let url = first_usable(&data_service.endpoint_urls).unwrap_or_else(access_url);
            return Some(("OGC API Features", url));
        }
    }
    let kind = service_markers(&distribution.conforms_to, &urls, &formats)?;
    Some((kind, access_url()))
}

/// An OGC API Features or WFS service: its kind and endpoint URL (empty if it has none).
/// `more_conforms_to` and `more_urls` come from a distribution that uses it.
fn service_kind(
    data_service: &DataService,
    more_conforms_to: &[String],
    more_urls: &[&String],
) -> Option<(&'static str, String)> {
    let conforms_to: Vec<String> = data_service
        .conforms_to
        .iter()
        .chain(more_conforms_to)
        .cloned()
        .collect();
    let urls: Vec<&String> = data_service
        .endpoint_urls
        .iter()
        .chain(more_urls.iter().copied())
        .collect();
    let kind = service_markers(&conforms_to, &urls, &[])?;
    let url = first_usable(&data_service.endpoint_urls)
        .or_else(|| data_service.endpoint_urls.first().cloned())
        .unwrap_or_default();
    Some((kind, url))
}

/// OGC API Features: a conformance class of it, or a URL with a `/collections` path. WFS: a
/// conformsTo naming WFS, the EU NAL `WFS_SRVC` format, or a URL with `service=WFS`.
fn service_markers(
    conforms_to: &[String],
    urls: &[&String],
    formats: &[&String],
) -> Option<&'static str> {
    let lower = |s: &String| s.to_ascii_lowercase();
    if conforms_to
        .iter()
        .map(lower)
        .any(|c| c.contains("ogcapi-features") || c.contains("ogc-api-features"))
    {
        return Some("OGC API Features");
    }
    if conforms_to
        .iter()
        .map(lower)
        .any(|c| c.contains("/wfs") || c.contains("iso 19142"))
        || formats.iter().any(|f| format_hint(f) == Some(Hint::Wfs))
        || urls
            .iter()
            .map(|u| lower(u))
            .any(|u| u.contains("service=wfs"))
    {
        return Some("WFS");
    }
    if urls.iter().any(|u| is_service_url(u)) {
        return Some("OGC API Features");
    }
    None
}

/// An OGC API Features collection (a `/collections` path) or a WFS request: no file.
fn is_service_url(url: &str) -> bool {
    let path = url_path(url).to_ascii_lowercase();
    path.contains("/collections/")
        || path.trim_end_matches('/').ends_with("/collections")
        || url.to_ascii_lowercase().contains("service=wfs")
}

// ---------------------------------------------------------------------------------------------
// URLs and text.

/// An absolute http(s) IRI with a host, of reasonable length, valid by RFC 3987.
fn usable_url(url: &str) -> bool {
    if url.len() > MAX_URL_CHARS {
        return false;
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    !rest.is_empty() && !rest.starts_with('/') && NamedNode::new(url).is_ok()
}

fn first_usable(urls: &[String]) -> Option<String> {
    urls.iter().find(|u| usable_url(u)).cloned()
}

/// EntryScape's rowstore API, generated from an uploaded CSV: not a file.
fn is_rowstore(url: &str) -> bool {
    url_path(url).contains("/rowstore/dataset/")
}

/// The URL without query and fragment.
fn url_path(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or_default()
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// `text` cut to at most `max` characters.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

/// A one-line text: runs of whitespace (newlines too) as one space.
fn one_line(text: &str, max: usize) -> String {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        if line.len() > max * 4 {
            break;
        }
    }
    clip(&line, max)
}

/// How much a language tag is preferred, lower first: Swedish, untagged, English, any other
/// language, then machine translations (BCP 47 transformed content, `-t-`, as data.europa.eu
/// tags them: `en-t-sv-t0-mtec`), English ones first.
fn language_rank(tag: Option<&str>) -> u8 {
    let Some(tag) = tag.filter(|t| !t.is_empty()) else {
        return 1;
    };
    let tag = tag.to_ascii_lowercase();
    let mut subtags = tag.split('-');
    let primary = subtags.next().unwrap_or_default();
    let transformed = subtags.any(|s| s == "t");
    match (transformed, primary) {
        (false, "sv") => 0,
        (false, "en") => 2,
        (false, _) => 3,
        (true, "sv") => 4,
        (true, "en") => 5,
        (true, _) => 6,
    }
}

// ---------------------------------------------------------------------------------------------
// The graph.

/// The triples of a document, indexed by subject, and the entities found while reading them.
#[derive(Default)]
struct Graph {
    by_subject: HashMap<NamedOrBlankNode, Vec<(NamedNode, Term)>>,
    /// Subjects typed `dcat:Dataset` or listed by `dcat:dataset`, in document order.
    datasets: Vec<NamedOrBlankNode>,
    dataset_set: HashSet<NamedOrBlankNode>,
    /// Subjects typed `dcat:Catalog`, in document order.
    catalogs: Vec<NamedOrBlankNode>,
    catalog_set: HashSet<NamedOrBlankNode>,
    /// The first catalog that lists each dataset.
    catalog_of: HashMap<NamedOrBlankNode, NamedOrBlankNode>,
    /// The data services that declare `dcat:servesDataset` each dataset.
    services_of: HashMap<NamedOrBlankNode, Vec<NamedOrBlankNode>>,
    /// Objects of `dcterms:hasPart` (sub-catalogs).
    parts: HashSet<NamedOrBlankNode>,
}

fn as_node(term: &Term) -> Option<NamedOrBlankNode> {
    match term {
        Term::NamedNode(n) => Some(NamedOrBlankNode::NamedNode(n.clone())),
        Term::BlankNode(b) => Some(NamedOrBlankNode::BlankNode(b.clone())),
        _ => None,
    }
}

/// An entity's IRI, or `_:label` for a blank node.
fn node_id(node: &NamedOrBlankNode) -> String {
    match node {
        NamedOrBlankNode::NamedNode(n) => clip(n.as_str(), MAX_URL_CHARS),
        NamedOrBlankNode::BlankNode(b) => format!("_:{}", clip(b.as_str(), MAX_VALUE_CHARS)),
    }
}

impl Graph {
    fn add(&mut self, subject: NamedOrBlankNode, predicate: NamedNode, object: Term) {
        if predicate.as_ref() == RDF_TYPE {
            if let Term::NamedNode(class) = &object {
                if class.as_ref() == DCAT_DATASET_CLASS {
                    self.add_dataset(&subject);
                } else if class.as_ref() == DCAT_CATALOG && self.catalog_set.insert(subject.clone())
                {
                    self.catalogs.push(subject.clone());
                }
            }
        } else if predicate.as_ref() == DCAT_DATASET {
            if let Some(dataset) = as_node(&object) {
                self.add_dataset(&dataset);
                self.catalog_of
                    .entry(dataset)
                    .or_insert_with(|| subject.clone());
            }
        } else if predicate.as_ref() == DCAT_SERVES_DATASET {
            if let Some(dataset) = as_node(&object) {
                let services = self.services_of.entry(dataset).or_default();
                if !services.contains(&subject) && services.len() < MAX_LIST {
                    services.push(subject.clone());
                }
            }
        } else if predicate.as_ref() == DCT_HAS_PART {
            if let Some(part) = as_node(&object) {
                self.parts.insert(part);
            }
        }
        self.by_subject
            .entry(subject)
            .or_default()
            .push((predicate, object));
    }

    fn add_dataset(&mut self, dataset: &NamedOrBlankNode) {
        if self.dataset_set.insert(dataset.clone()) {
            self.datasets.push(dataset.clone());
        }
    }

    fn objects<'a>(
        &'a self,
        subject: &NamedOrBlankNode,
        predicate: NamedNodeRef<'static>,
    ) -> impl Iterator<Item = &'a Term> + 'a {
        self.by_subject
            .get(subject)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(move |(p, _)| p.as_ref() == predicate)
            .map(|(_, o)| o)
    }

    fn nodes<'a>(
        &'a self,
        subject: &NamedOrBlankNode,
        predicate: NamedNodeRef<'static>,
    ) -> impl Iterator<Item = NamedOrBlankNode> + 'a {
        self.objects(subject, predicate).filter_map(as_node)
    }

    /// The text of `predicate` in the preferred language ([`language_rank`]), with its tag;
    /// literals only, empty ones ignored.
    fn best_text(
        &self,
        subject: &NamedOrBlankNode,
        predicate: NamedNodeRef<'static>,
    ) -> Option<(&str, Option<&str>)> {
        let mut best: Option<(u8, &str, Option<&str>)> = None;
        for term in self.objects(subject, predicate) {
            let Term::Literal(literal) = term else {
                continue;
            };
            let value = literal.value().trim();
            if value.is_empty() {
                continue;
            }
            let rank = language_rank(literal.language());
            if best.is_none_or(|(r, _, _)| rank < r) {
                best = Some((rank, value, literal.language()));
            }
        }
        best.map(|(_, value, tag)| (value, tag))
    }

    /// All texts of `predicate` in the language of the preferred one, in document order.
    fn texts_in_best_language(
        &self,
        subject: &NamedOrBlankNode,
        predicate: NamedNodeRef<'static>,
    ) -> Vec<&str> {
        let Some((_, tag)) = self.best_text(subject, predicate) else {
            return Vec::new();
        };
        let tag = tag.map(str::to_ascii_lowercase);
        self.objects(subject, predicate)
            .filter_map(|term| match term {
                Term::Literal(l) if l.language().map(str::to_ascii_lowercase) == tag => {
                    Some(l.value().trim())
                }
                _ => None,
            })
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// An IRI-valued property as a string: an IRI, or a literal (some catalogs write URLs as
    /// literals); blank nodes are skipped.
    fn iri_values(
        &self,
        subject: &NamedOrBlankNode,
        predicate: NamedNodeRef<'static>,
    ) -> Vec<String> {
        let mut values: Vec<String> = Vec::new();
        for term in self.objects(subject, predicate) {
            let value = match term {
                Term::NamedNode(n) => n.as_str(),
                Term::Literal(l) => l.value().trim(),
                _ => continue,
            };
            if value.is_empty() {
                continue;
            }
            let value = clip(value, MAX_URL_CHARS);
            if !values.contains(&value) {
                values.push(value);
                if values.len() >= MAX_LIST {
                    break;
                }
            }
        }
        values
    }

    /// The first usable URL of `predicate`, else the first as given.
    fn url(&self, subject: &NamedOrBlankNode, predicate: NamedNodeRef<'static>) -> Option<String> {
        let values = self.iri_values(subject, predicate);
        first_usable(&values).or_else(|| values.into_iter().next())
    }

    /// A value that may be an IRI, a literal, or a blank node described by `rdf:value` or a
    /// label (formats, licences, identifiers).
    fn value(
        &self,
        subject: &NamedOrBlankNode,
        predicate: NamedNodeRef<'static>,
    ) -> Option<String> {
        for term in self.objects(subject, predicate) {
            let value = match term {
                Term::NamedNode(n) => Some(n.as_str().to_owned()),
                Term::Literal(l) => Some(l.value().trim().to_owned()),
                Term::BlankNode(_) => as_node(term).and_then(|node| {
                    [
                        RDF_VALUE,
                        RDFS_LABEL,
                        SKOS_PREF_LABEL,
                        DCT_IDENTIFIER,
                        DCT_TITLE,
                    ]
                    .into_iter()
                    .find_map(|p| self.best_text(&node, p))
                    .map(|(v, _)| v.to_owned())
                }),
                #[allow(unreachable_patterns)]
                _ => None,
            };
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                return Some(clip(&value, MAX_VALUE_CHARS));
            }
        }
        None
    }
}

/// Builds the catalog from a graph, each shared entity once.
struct Reader<'g> {
    graph: &'g Graph,
    agent_names: HashMap<NamedOrBlankNode, Option<String>>,
    distributions: HashMap<NamedOrBlankNode, Distribution>,
    services: HashMap<NamedOrBlankNode, DataService>,
    catalog_licences: HashMap<NamedOrBlankNode, Option<String>>,
    distributions_read: usize,
}

impl<'g> Reader<'g> {
    fn new(graph: &'g Graph) -> Self {
        Self {
            graph,
            agent_names: HashMap::new(),
            distributions: HashMap::new(),
            services: HashMap::new(),
            catalog_licences: HashMap::new(),
            distributions_read: 0,
        }
    }

    fn catalog(mut self) -> Result<Catalog, DcatError> {
        let graph = self.graph;
        let datasets: Vec<&NamedOrBlankNode> = graph
            .datasets
            .iter()
            .filter(|d| !graph.catalog_set.contains(*d))
            .collect();
        if datasets.is_empty() {
            return Err(DcatError::NoDatasets);
        }
        // The main catalog: the first that is no other's part.
        let main = graph
            .catalogs
            .iter()
            .find(|c| !graph.parts.contains(*c))
            .or(graph.catalogs.first());
        let title = main
            .and_then(|c| graph.best_text(c, DCT_TITLE))
            .map(|(t, _)| one_line(t, MAX_TITLE_CHARS));
        let publisher = main.and_then(|c| self.publisher(c));
        let licence = main.and_then(|c| self.catalog_licence(c));
        let omitted_datasets = datasets.len().saturating_sub(MAX_DATASETS);
        let datasets = datasets
            .into_iter()
            .take(MAX_DATASETS)
            .map(|d| self.dataset(d, publisher.as_ref(), licence.as_ref()))
            .collect();
        Ok(Catalog {
            title,
            publisher,
            licence,
            datasets,
            omitted_datasets,
        })
    }

    fn dataset(
        &mut self,
        node: &NamedOrBlankNode,
        catalog_publisher: Option<&String>,
        main_licence: Option<&String>,
    ) -> Dataset {
        let graph = self.graph;
        let uri = node_id(node);
        let best_title = graph.best_text(node, DCT_TITLE);
        let language = best_title
            .and_then(|(_, tag)| tag)
            .filter(|tag| !tag.contains("-t-"))
            .and_then(|tag| crate::catalog::language_tag(tag.split('-').next().unwrap_or(tag)).ok())
            .map(str::to_string);
        let title = best_title
            .map(|(t, _)| one_line(t, MAX_TITLE_CHARS))
            .unwrap_or_else(|| clip(&uri, MAX_TITLE_CHARS));
        let description = graph
            .best_text(node, DCT_DESCRIPTION)
            .map(|(t, _)| clip(t, MAX_DESCRIPTION_CHARS));
        let mut keywords: Vec<String> = Vec::new();
        for keyword in graph.texts_in_best_language(node, DCAT_KEYWORD) {
            let keyword = one_line(keyword, MAX_KEYWORD_CHARS);
            if !keywords.contains(&keyword) {
                keywords.push(keyword);
                if keywords.len() >= MAX_KEYWORDS {
                    break;
                }
            }
        }
        let mut seen = HashSet::new();
        let mut distributions = Vec::new();
        for distribution in graph.nodes(node, DCAT_DISTRIBUTION) {
            if distributions.len() >= MAX_DISTRIBUTIONS_PER_DATASET
                || self.distributions_read >= MAX_DISTRIBUTIONS_TOTAL
            {
                break;
            }
            if seen.insert(distribution.clone()) {
                self.distributions_read += 1;
                distributions.push(self.distribution(&distribution));
            }
        }
        let services = graph
            .services_of
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|s| self.service(s))
            .collect();
        let mut dataset = Dataset {
            uri,
            identifier: graph.value(node, DCT_IDENTIFIER),
            title,
            description,
            language,
            publisher: self.publisher(node).or_else(|| catalog_publisher.cloned()),
            licence: graph.value(node, DCT_LICENSE),
            themes: graph.iri_values(node, DCAT_THEME),
            keywords,
            conforms_to: graph.iri_values(node, DCT_CONFORMS_TO),
            landing_page: graph.url(node, DCAT_LANDING_PAGE),
            distributions,
            services,
        };
        if dataset.licence.is_none() {
            dataset.licence = choose(&dataset)
                .ok()
                .and_then(|choice| {
                    dataset
                        .distributions
                        .iter()
                        .find(|d| d.uri == choice.distribution)
                        .and_then(|d| d.licence.clone())
                })
                .or_else(|| {
                    let catalog = graph.catalog_of.get(node)?.clone();
                    self.catalog_licence(&catalog)
                })
                .or_else(|| main_licence.cloned());
        }
        dataset
    }

    fn distribution(&mut self, node: &NamedOrBlankNode) -> Distribution {
        if let Some(known) = self.distributions.get(node) {
            return known.clone();
        }
        let graph = self.graph;
        let access_service = graph
            .nodes(node, DCAT_ACCESS_SERVICE)
            .next()
            .map(|s| self.service(&s));
        let distribution = Distribution {
            uri: node_id(node),
            title: graph
                .best_text(node, DCT_TITLE)
                .map(|(t, _)| one_line(t, MAX_TITLE_CHARS)),
            access_url: graph.url(node, DCAT_ACCESS_URL),
            download_url: graph.url(node, DCAT_DOWNLOAD_URL),
            format: graph.value(node, DCT_FORMAT),
            media_type: graph.value(node, DCAT_MEDIA_TYPE),
            licence: graph.value(node, DCT_LICENSE),
            conforms_to: graph.iri_values(node, DCT_CONFORMS_TO),
            source: graph
                .nodes(node, DCT_SOURCE)
                .next()
                .map(|s| node_id(&s))
                .or_else(|| graph.value(node, DCT_SOURCE)),
            access_service,
        };
        self.distributions
            .insert(node.clone(), distribution.clone());
        distribution
    }

    fn service(&mut self, node: &NamedOrBlankNode) -> DataService {
        if let Some(known) = self.services.get(node) {
            return known.clone();
        }
        let graph = self.graph;
        let service = DataService {
            uri: node_id(node),
            title: graph
                .best_text(node, DCT_TITLE)
                .map(|(t, _)| one_line(t, MAX_TITLE_CHARS)),
            endpoint_urls: graph.iri_values(node, DCAT_ENDPOINT_URL),
            endpoint_description: graph.url(node, DCAT_ENDPOINT_DESCRIPTION),
            conforms_to: graph.iri_values(node, DCT_CONFORMS_TO),
        };
        self.services.insert(node.clone(), service.clone());
        service
    }

    /// `foaf:name` of the subject's `dcterms:publisher` (or the literal, if one is given).
    fn publisher(&mut self, subject: &NamedOrBlankNode) -> Option<String> {
        let graph = self.graph;
        for term in graph.objects(subject, DCT_PUBLISHER) {
            let name = match term {
                Term::Literal(l) => Some(one_line(l.value(), MAX_TITLE_CHARS)),
                _ => {
                    let Some(agent) = as_node(term) else {
                        continue;
                    };
                    self.agent_names
                        .entry(agent.clone())
                        .or_insert_with(|| {
                            [FOAF_NAME, RDFS_LABEL, SKOS_PREF_LABEL]
                                .into_iter()
                                .find_map(|p| graph.best_text(&agent, p))
                                .map(|(name, _)| one_line(name, MAX_TITLE_CHARS))
                        })
                        .clone()
                }
            };
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                return Some(name);
            }
        }
        None
    }

    fn catalog_licence(&mut self, catalog: &NamedOrBlankNode) -> Option<String> {
        let graph = self.graph;
        self.catalog_licences
            .entry(catalog.clone())
            .or_insert_with(|| graph.value(catalog, DCT_LICENSE))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dcat/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}"))
            .expect("the DCAT fixture is in tests/fixtures/dcat")
    }

    fn turtle(body: &str) -> Catalog {
        let document = format!("{PREFIXES}{body}");
        parse(document.as_bytes(), RdfFormat::Turtle, None).expect("the Turtle snippet parses")
    }

    const PREFIXES: &str = "\
        @prefix dcat: <http://www.w3.org/ns/dcat#> .\n\
        @prefix dct: <http://purl.org/dc/terms/> .\n\
        @prefix foaf: <http://xmlns.com/foaf/0.1/> .\n\
        @prefix ex: <https://kommun.example/> .\n";

    fn only_dataset(catalog: &Catalog) -> &Dataset {
        assert_eq!(catalog.datasets.len(), 1, "{catalog:#?}");
        &catalog.datasets[0]
    }

    fn choice_of(body: &str) -> Result<Choice, Skip> {
        choose(only_dataset(&turtle(body)))
    }

    // --- RdfFormat --------------------------------------------------------------------------

    #[test]
    fn guess_by_content_type_then_file_name() {
        use RdfFormat::*;
        let cases: &[(Option<&str>, Option<&str>, Option<RdfFormat>)] = &[
            (Some("application/rdf+xml"), None, Some(RdfXml)),
            (
                Some("application/rdf+xml; charset=UTF-8"),
                None,
                Some(RdfXml),
            ),
            (Some("Application/RDF+XML"), None, Some(RdfXml)),
            (Some("application/xml"), None, Some(RdfXml)),
            (Some("text/turtle;charset=utf-8"), None, Some(Turtle)),
            (Some("application/n-triples"), None, Some(NTriples)),
            (Some("application/ld+json"), None, Some(JsonLd)),
            (Some("application/json"), Some("x.ttl"), Some(JsonLd)),
            // The type wins over the name when it names a format …
            (Some("text/turtle"), Some("catalog.rdf"), Some(Turtle)),
            // … and the name decides when the type says nothing.
            (
                Some("application/octet-stream"),
                Some("catalog.rdf"),
                Some(RdfXml),
            ),
            (Some("text/plain"), Some("dump.nt"), Some(NTriples)),
            (
                None,
                Some("https://x.example/a/catalog.TTL?x=1#f"),
                Some(Turtle),
            ),
            (None, Some("catalog.jsonld"), Some(JsonLd)),
            (None, Some("catalog.json"), Some(JsonLd)),
            (None, Some("catalog.xml"), Some(RdfXml)),
            (None, Some("catalog"), None),
            (None, Some("https://x.example/dcat.d/catalog"), None),
            (Some("text/html"), None, None),
            (Some("application/rdf+json"), None, None),
            (None, None, None),
        ];
        for (content_type, name, expected) in cases {
            assert_eq!(
                RdfFormat::guess(*content_type, *name),
                *expected,
                "{content_type:?} {name:?}"
            );
        }
    }

    #[test]
    fn sniff_first_bytes() {
        use RdfFormat::*;
        let cases: &[(&[u8], RdfFormat)] = &[
            (b"<?xml version=\"1.0\"?><rdf:RDF/>", RdfXml),
            (b"\xEF\xBB\xBF  \n<?xml version=\"1.0\"?>", RdfXml),
            (
                b"<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"/>",
                RdfXml,
            ),
            (b"<!-- c --><rdf:RDF/>", RdfXml),
            (b"  {\"@context\": {}}", JsonLd),
            (b"[{\"@id\": \"x\"}]", JsonLd),
            (b"@prefix dcat: <http://www.w3.org/ns/dcat#> .", Turtle),
            (b"PREFIX dcat: <http://www.w3.org/ns/dcat#>", Turtle),
            (
                b"<https://x.example/s> <https://x.example/p> \"o\" .",
                Turtle,
            ),
            (b"", Turtle),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                RdfFormat::sniff(bytes),
                *expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    // --- Fixtures ---------------------------------------------------------------------------

    /// DIGG's examples in RDF/XML and Turtle describe the same thing: every field is equal, but
    /// for one difference in DIGG's own files (the RDF/XML publisher name of the mandatory
    /// example ends with a full stop).
    #[test]
    fn digg_examples_same_in_rdfxml_and_turtle() {
        for name in ["obligatoriskt", "rekommenderat"] {
            let base = format!("digg_dcat-ap-se_example_{name}");
            let xml = parse(&fixture(&format!("{base}.rdf")), RdfFormat::RdfXml, None)
                .expect("DIGG's RDF/XML example parses");
            let mut ttl = parse(&fixture(&format!("{base}.ttl")), RdfFormat::Turtle, None)
                .expect("DIGG's Turtle example parses");
            assert_eq!(xml.datasets.len(), 1);
            if name == "obligatoriskt" {
                assert_eq!(ttl.publisher.as_deref(), Some("Exampel organization"));
                assert_eq!(xml.publisher.as_deref(), Some("Exampel organization."));
                ttl.publisher = xml.publisher.clone();
                ttl.datasets[0].publisher = xml.datasets[0].publisher.clone();
            }
            assert_eq!(xml, ttl, "{name}");
        }
    }

    #[test]
    fn digg_recommended_example_fields() {
        let catalog = parse(
            &fixture("digg_dcat-ap-se_example_rekommenderat.ttl"),
            RdfFormat::Turtle,
            None,
        )
        .expect("DIGG's Turtle example parses");
        assert_eq!(
            catalog.title.as_deref(),
            Some("Katalog med rekommenderade fält")
        );
        assert_eq!(catalog.publisher.as_deref(), Some("Exempel organisation"));
        assert_eq!(
            catalog.licence.as_deref(),
            Some("http://creativecommons.org/publicdomain/zero/1.0/")
        );
        let dataset = only_dataset(&catalog);
        assert_eq!(dataset.uri, "https://example.com/dataset1");
        // Swedish before English.
        assert_eq!(dataset.title, "Bibliotek i Sverige");
        assert_eq!(dataset.keywords, ["bibliotek"]);
        assert_eq!(
            dataset.themes,
            ["http://publications.europa.eu/resource/authority/data-theme/EDUC"]
        );
        assert_eq!(dataset.distributions.len(), 2);
        let api = &dataset.distributions[1];
        assert_eq!(api.format.as_deref(), Some("application/json"));
        let service = api
            .access_service
            .as_ref()
            .expect("distribution2 has its data service");
        assert_eq!(service.endpoint_urls, ["http://example.com/api"]);
        assert_eq!(
            service.endpoint_description.as_deref(),
            Some("http://example.com/apidescription")
        );
        // The CSV, at its download URL; the JSON API is no file.
        assert_eq!(
            choose(dataset),
            Ok(Choice {
                url: "http://example.com/download".into(),
                kind: SourceKind::Csv,
                distribution: "https://example.com/distribution1".into(),
            })
        );
    }

    /// The mandatory example has one distribution: an API (accessURL = the data service's
    /// endpoint) without a format, not an OGC API or WFS.
    #[test]
    fn digg_mandatory_example_has_nothing_to_ingest() {
        let catalog = parse(
            &fixture("digg_dcat-ap-se_example_obligatoriskt.ttl"),
            RdfFormat::Turtle,
            None,
        )
        .expect("DIGG's Turtle example parses");
        let dataset = only_dataset(&catalog);
        assert_eq!(dataset.title, "Matvaruaffärer i Sverige");
        assert_eq!(
            dataset.licence.as_deref(),
            Some("http://creativecommons.org/publicdomain/zero/1.0/"),
            "the catalog's licence"
        );
        assert_eq!(choose(dataset), Err(Skip::NotSpatial { formats: vec![] }));
    }

    /// Härryda's "Badplatser" as data.europa.eu re-publishes it: Swedish title among ~25
    /// machine translations, no catalog, no dataset licence; a CSV distribution (CC0, format
    /// text/csv, downloadURL …/store/2/resource/27) and an EntryScape rowstore API distribution
    /// (format application/json, accessURL …/rowstore/dataset/…, dct:source → the CSV).
    #[test]
    fn harryda_record() {
        let catalog = parse(
            &fixture("harryda_badplatser_dataset_via_data.europa.eu.rdf"),
            RdfFormat::RdfXml,
            None,
        )
        .expect("Härryda's record parses");
        assert_eq!(catalog.title, None);
        let dataset = only_dataset(&catalog);
        assert_eq!(
            dataset.uri,
            "http://data.europa.eu/88u/dataset/https-catalog-harryda-se-store-2-resource-8"
        );
        assert_eq!(dataset.title, "Badplatser");
        assert!(
            dataset
                .description
                .as_deref()
                .is_some_and(|d| d.starts_with("Data över offentliga badplatser.")),
            "{:?}",
            dataset.description
        );
        assert_eq!(dataset.publisher.as_deref(), Some("Härryda kommun"));
        assert_eq!(
            dataset.licence.as_deref(),
            Some("http://creativecommons.org/publicdomain/zero/1.0/"),
            "the CSV distribution's licence"
        );
        assert_eq!(
            dataset.conforms_to,
            ["https://dataportal.se/specifications/badplatser/1.0"]
        );
        // The Swedish keywords only (the untagged "Härryda kommun" and English ones are not).
        assert_eq!(dataset.keywords, ["Badplats", "Brygga", "Badplatser"]);
        assert_eq!(dataset.themes.len(), 1);
        assert_eq!(dataset.identifier, None);
        assert_eq!(dataset.distributions.len(), 2);
        let csv = &dataset.distributions[0];
        assert_eq!(csv.title.as_deref(), Some("Badplatser_Harryda"));
        let rowstore = &dataset.distributions[1];
        assert_eq!(
            rowstore.access_url.as_deref(),
            Some(
                "https://catalog.harryda.se/rowstore/dataset/21cffcda-f0aa-471d-9cd3-4630669f6fb1"
            )
        );
        assert_eq!(rowstore.source.as_deref(), Some(csv.uri.as_str()));
        assert_eq!(
            choose(dataset),
            Ok(Choice {
                url: "https://catalog.harryda.se/store/2/resource/27".into(),
                kind: SourceKind::Csv,
                distribution:
                    "http://data.europa.eu/88u/distribution/814b5d1a-d83a-4f80-8fad-ba132322449d"
                        .into(),
            })
        );
    }

    /// Trollhättan's "Kommunala badplatser": a GeoJSON distribution given as
    /// `application/json` (its title says GeoJSON; download URL …/store/1/resource/54, named
    /// badplats_json_thn.json) and a CSV one, both CC0; no conformsTo, untagged publisher name.
    #[test]
    fn trollhattan_record() {
        let catalog = parse(
            &fixture("trollhattan_badplatser_dataset_via_data.europa.eu.rdf"),
            RdfFormat::RdfXml,
            None,
        )
        .expect("Trollhättan's record parses");
        let dataset = only_dataset(&catalog);
        assert_eq!(
            dataset.title,
            "Kommunala badplatser inom Trollhättans kommun"
        );
        assert!(
            dataset
                .description
                .as_deref()
                .is_some_and(|d| d.contains("Koordinatsystemet är WGS84")),
            "{:?}",
            dataset.description
        );
        assert_eq!(dataset.publisher.as_deref(), Some("Trollhättans Stad"));
        assert_eq!(
            dataset.licence.as_deref(),
            Some("http://creativecommons.org/publicdomain/zero/1.0/")
        );
        assert!(dataset.conforms_to.is_empty());
        assert_eq!(
            dataset.landing_page.as_deref(),
            Some("http://www.trollhattan.se")
        );
        assert_eq!(
            dataset.keywords,
            ["Trollhättan", "Fritid", "Bad", "Badplats"]
        );
        let titles: Vec<_> = dataset
            .distributions
            .iter()
            .map(|d| d.title.as_deref())
            .collect();
        assert_eq!(
            titles,
            [
                Some("Kommunala badplatser GeoJSON"),
                Some("Kommunala badplatser CSV")
            ]
        );
        assert_eq!(
            choose(dataset),
            Ok(Choice {
                url: "https://catalog.trollhattan.se/store/1/resource/54".into(),
                kind: SourceKind::GeoJson,
                distribution:
                    "http://data.europa.eu/88u/distribution/07de722a-467d-4afc-b594-b6cb82e0e962"
                        .into(),
            })
        );
    }

    /// The recommended example, converted to JSON-LD with Oxigraph's serializer, reads the same.
    #[test]
    fn json_ld_converted_from_turtle_reads_the_same() {
        let ttl = fixture("digg_dcat-ap-se_example_rekommenderat.ttl");
        let mut serializer =
            oxrdfio::RdfSerializer::from_format(RdfFormat::JsonLd.oxrdfio()).for_writer(Vec::new());
        for quad in oxrdfio::RdfParser::from_format(oxrdfio::RdfFormat::Turtle).for_slice(&ttl) {
            serializer
                .serialize_quad(&quad.expect("the fixture is valid Turtle"))
                .expect("JSON-LD serialises to memory");
        }
        let json = serializer.finish().expect("JSON-LD serialises to memory");
        assert_eq!(RdfFormat::sniff(&json), RdfFormat::JsonLd);
        let from_json = parse(&json, RdfFormat::JsonLd, None).expect("the JSON-LD parses");
        let from_ttl = parse(&ttl, RdfFormat::Turtle, None).expect("the Turtle parses");
        assert_eq!(from_json, from_ttl);
    }

    /// Compact JSON-LD written by hand, with an inline context, as a publisher would.
    #[test]
    fn json_ld_by_hand() {
        let json = r#"{
          "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "title": {"@id": "dct:title", "@container": "@language"},
            "distribution": {"@id": "dcat:distribution", "@type": "@id"},
            "downloadURL": {"@id": "dcat:downloadURL", "@type": "@id"},
            "license": {"@id": "dct:license", "@type": "@id"}
          },
          "@graph": [
            {"@id": "https://kommun.example/catalog", "@type": "dcat:Catalog",
             "license": "http://creativecommons.org/licenses/by/4.0/",
             "dcat:dataset": {"@id": "https://kommun.example/ds/lekplatser"}},
            {"@id": "https://kommun.example/ds/lekplatser", "@type": "dcat:Dataset",
             "title": {"en": "Playgrounds", "sv": "Lekplatser"},
             "dct:publisher": {"foaf:name": "Exempel kommun"},
             "distribution": ["https://kommun.example/dist/1"]},
            {"@id": "https://kommun.example/dist/1", "@type": "dcat:Distribution",
             "dct:format": "application/geo+json",
             "downloadURL": "https://kommun.example/files/lekplatser.json"}
          ]
        }"#;
        let catalog = parse(json.as_bytes(), RdfFormat::JsonLd, None).expect("the JSON-LD parses");
        let dataset = only_dataset(&catalog);
        assert_eq!(dataset.title, "Lekplatser");
        assert_eq!(dataset.publisher.as_deref(), Some("Exempel kommun"));
        assert_eq!(
            dataset.licence.as_deref(),
            Some("http://creativecommons.org/licenses/by/4.0/"),
            "the catalog's licence"
        );
        assert_eq!(
            choose(dataset).map(|c| (c.kind, c.url)),
            Ok((
                SourceKind::GeoJson,
                "https://kommun.example/files/lekplatser.json".into()
            ))
        );
    }

    // --- Choice rules -----------------------------------------------------------------------

    #[test]
    fn geojson_preferred_over_csv() {
        let choice = choice_of(
            "ex:ds a dcat:Dataset ; dct:title \"Utegym\"@sv ;
                 dcat:distribution ex:csv , ex:geojson .
             ex:csv dct:format \"text/csv\" ; dcat:downloadURL <https://kommun.example/u.csv> .
             ex:geojson dct:format \"application/geo+json\" ;
                 dcat:downloadURL <https://kommun.example/u.json> .",
        );
        assert_eq!(
            choice,
            Ok(Choice {
                url: "https://kommun.example/u.json".into(),
                kind: SourceKind::GeoJson,
                distribution: "https://kommun.example/geojson".into(),
            })
        );
    }

    #[test]
    fn preference_order_over_all_kinds() {
        let mut body = String::from("ex:ds a dcat:Dataset ; dcat:distribution ");
        let formats = [
            ("kml", "application/vnd.google-earth.kml+xml"),
            ("gml", "application/gml+xml"),
            ("csv", "text/csv"),
            (
                "shp",
                "http://publications.europa.eu/resource/authority/file-type/SHP",
            ),
            ("geojson", "application/vnd.geo+json"),
            ("fgb", "application/flatgeobuf"),
            ("gpkg", "application/geopackage+sqlite3"),
        ];
        let names: Vec<String> = formats.iter().map(|(n, _)| format!("ex:{n}")).collect();
        body.push_str(&names.join(" , "));
        body.push_str(" .\n");
        for (name, format) in formats {
            body.push_str(&format!(
                "ex:{name} dct:format \"{format}\" ; dcat:downloadURL <https://kommun.example/f/{name}> .\n"
            ));
        }
        let mut catalog = turtle(&body);
        let dataset = &mut catalog.datasets[0];
        let mut chosen = Vec::new();
        while !dataset.distributions.is_empty() {
            let choice = choose(dataset).expect("a file is left");
            chosen.push(choice.kind);
            dataset
                .distributions
                .retain(|d| d.uri != choice.distribution);
        }
        use SourceKind::*;
        assert_eq!(
            chosen,
            [
                GeoPackage,
                FlatGeobuf,
                GeoJson,
                ZippedShapefile,
                Gml,
                Kml,
                Csv
            ]
        );
    }

    #[test]
    fn download_url_preferred_over_access_url() {
        let choice = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dct:format \"text/csv\" ;
                 dcat:accessURL <https://kommun.example/sida-om-data> ;
                 dcat:downloadURL <https://kommun.example/data.csv> .",
        );
        assert_eq!(
            choice.map(|c| c.url),
            Ok("https://kommun.example/data.csv".into())
        );
        // Without a usable download URL, the access URL.
        let choice = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dct:format \"text/csv\" ;
                 dcat:accessURL <https://kommun.example/data.csv> ;
                 dcat:downloadURL <ftp://kommun.example/data.csv> .",
        );
        assert_eq!(
            choice.map(|c| c.url),
            Ok("https://kommun.example/data.csv".into())
        );
    }

    #[test]
    fn eu_nal_and_iana_iris() {
        let cases = [
            (
                "http://publications.europa.eu/resource/authority/file-type/GEOJSON",
                SourceKind::GeoJson,
            ),
            (
                "http://publications.europa.eu/resource/authority/file-type/GPKG",
                SourceKind::GeoPackage,
            ),
            (
                "https://publications.europa.eu/resource/authority/file-type/gml",
                SourceKind::Gml,
            ),
            (
                "http://publications.europa.eu/resource/authority/file-type/KMZ",
                SourceKind::Kml,
            ),
            (
                "http://publications.europa.eu/resource/authority/file-type/CSV",
                SourceKind::Csv,
            ),
            (
                "http://www.iana.org/assignments/media-types/text/csv",
                SourceKind::Csv,
            ),
            (
                "http://www.iana.org/assignments/media-types/application/geo+json",
                SourceKind::GeoJson,
            ),
            (
                "https://www.iana.org/assignments/media-types/application/vnd.google-earth.kml+xml",
                SourceKind::Kml,
            ),
        ];
        for (iri, kind) in cases {
            for property in ["dct:format", "dcat:mediaType"] {
                let choice = choice_of(&format!(
                    "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
                     ex:d {property} <{iri}> ; dcat:downloadURL <https://kommun.example/data> ."
                ));
                assert_eq!(choice.map(|c| c.kind), Ok(kind), "{property} {iri}");
            }
        }
        let dataset_format = turtle(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dct:format <http://publications.europa.eu/resource/authority/file-type/GEOJSON> .",
        );
        assert_eq!(
            dataset_format.datasets[0].distributions[0]
                .format
                .as_deref(),
            Some("http://publications.europa.eu/resource/authority/file-type/GEOJSON"),
            "the format is kept as given"
        );
    }

    #[test]
    fn url_extension_when_the_format_says_nothing() {
        let choice = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dct:format \"application/octet-stream\" ;
                 dcat:downloadURL <https://kommun.example/data/ytor.GPKG?v=2> .",
        );
        assert_eq!(choice.map(|c| c.kind), Ok(SourceKind::GeoPackage));
        let choice = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dcat:downloadURL <https://kommun.example/data/ytor.fgb> .",
        );
        assert_eq!(choice.map(|c| c.kind), Ok(SourceKind::FlatGeobuf));
    }

    #[test]
    fn zip_is_a_shapefile_only_with_a_hint() {
        let zip = |title: &str, url: &str| {
            choice_of(&format!(
                "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
                 ex:d dct:format <http://publications.europa.eu/resource/authority/file-type/ZIP> ;
                     dct:title \"{title}\"@sv ; dcat:downloadURL <{url}> ."
            ))
        };
        assert_eq!(
            zip("Detaljplaner (Shape)", "https://kommun.example/dp.zip").map(|c| c.kind),
            Ok(SourceKind::ZippedShapefile)
        );
        assert_eq!(
            zip("Detaljplaner", "https://kommun.example/shape/dp.zip").map(|c| c.kind),
            Ok(SourceKind::ZippedShapefile)
        );
        assert_eq!(
            zip("Detaljplaner", "https://kommun.example/dp.zip"),
            Err(Skip::NotSpatial {
                formats: vec![
                    "http://publications.europa.eu/resource/authority/file-type/ZIP".into()
                ]
            })
        );
        // A zip by extension alone, with "shape" in the URL.
        let choice = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dcat:downloadURL <https://kommun.example/dp_shape.zip> .",
        );
        assert_eq!(choice.map(|c| c.kind), Ok(SourceKind::ZippedShapefile));
    }

    #[test]
    fn plain_json_needs_a_geojson_hint() {
        let json = |title: &str, url: &str| {
            choice_of(&format!(
                "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
                 ex:d dct:format \"application/json\" ; dct:title \"{title}\"@sv ;
                     dcat:downloadURL <{url}> ."
            ))
        };
        assert_eq!(
            json("Badplatser", "https://kommun.example/bad.json"),
            Err(Skip::NotSpatial {
                formats: vec!["application/json".into()]
            })
        );
        assert_eq!(
            json("Badplatser", "https://kommun.example/bad.geojson").map(|c| c.kind),
            Ok(SourceKind::GeoJson)
        );
        assert_eq!(
            json("Badplatser GeoJSON", "https://kommun.example/bad.json").map(|c| c.kind),
            Ok(SourceKind::GeoJson)
        );
    }

    #[test]
    fn rowstore_api_is_never_chosen() {
        // Even when the rowstore distribution claims text/csv, its source CSV is chosen.
        let choice = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:api , ex:csv .
             ex:api a dcat:Distribution ; dct:format \"text/csv\" ; dct:source ex:csv ;
                 dcat:accessURL <https://catalog.kommun.example/rowstore/dataset/21cffcda-f0aa-471d-9cd3-4630669f6fb1> .
             ex:csv dct:format \"text/csv\" ;
                 dcat:downloadURL <https://catalog.kommun.example/store/2/resource/27> .",
        );
        assert_eq!(
            choice.map(|c| c.url),
            Ok("https://catalog.kommun.example/store/2/resource/27".into())
        );
        // The rowstore alone: nothing to download.
        let alone = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:api .
             ex:api dct:format \"text/csv\" ;
                 dcat:accessURL <https://catalog.kommun.example/rowstore/dataset/21cffcda> .",
        );
        assert_eq!(alone, Err(Skip::NoUrl));
    }

    #[test]
    fn ogc_api_features_and_wfs_are_recognised() {
        // DCAT-AP-SE's form: a collection's items through a data service.
        let ogc = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dct:format \"application/geo+json\" ; dcat:accessService ex:api ;
                 dcat:accessURL <https://geo.kommun.example/ogc/collections/badplatser/items> .
             ex:api a dcat:DataService ; dcat:endpointURL <https://geo.kommun.example/ogc/> .",
        );
        assert_eq!(
            ogc,
            Err(Skip::ServiceNotSupported {
                kind: "OGC API Features".into(),
                url: "https://geo.kommun.example/ogc/".into()
            })
        );
        // The same without a /collections/ path: geo+json through a data service, no download.
        let by_form = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dct:format \"application/geo+json\" ; dcat:accessService ex:api ;
                 dcat:accessURL <https://geo.kommun.example/api/badplatser> .
             ex:api a dcat:DataService ; dcat:endpointURL <https://geo.kommun.example/api/> .",
        );
        assert_eq!(
            by_form,
            Err(Skip::ServiceNotSupported {
                kind: "OGC API Features".into(),
                url: "https://geo.kommun.example/api/".into()
            })
        );
        // By conformance class, on a data service that serves the dataset.
        let by_conformance = choice_of(
            "ex:ds a dcat:Dataset .
             ex:api a dcat:DataService ; dcat:servesDataset ex:ds ;
                 dcat:endpointURL <https://api.kommun.example/> ;
                 dct:conformsTo <http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core> .",
        );
        assert_eq!(
            by_conformance,
            Err(Skip::ServiceNotSupported {
                kind: "OGC API Features".into(),
                url: "https://api.kommun.example/".into()
            })
        );
        let wfs = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dcat:accessURL <https://karta.kommun.example/geoserver/ows?SERVICE=WFS&REQUEST=GetCapabilities> .",
        );
        assert_eq!(
            wfs,
            Err(Skip::ServiceNotSupported {
                kind: "WFS".into(),
                url:
                    "https://karta.kommun.example/geoserver/ows?SERVICE=WFS&REQUEST=GetCapabilities"
                        .into()
            })
        );
        // A bulk download on the service's distribution is a file.
        let bulk = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dcat:accessURL <https://geo.kommun.example/ogc/collections/bad/items> ;
                 dcat:downloadURL <https://geo.kommun.example/dump/bad.gpkg> .",
        );
        assert_eq!(
            bulk.map(|c| (c.kind, c.url)),
            Ok((
                SourceKind::GeoPackage,
                "https://geo.kommun.example/dump/bad.gpkg".into()
            ))
        );
        // An items URL as the download URL is still the service.
        let items = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d .
             ex:d dct:format \"application/geo+json\" ;
                 dcat:downloadURL <https://geo.kommun.example/ogc/collections/bad/items?f=json> .",
        );
        assert_eq!(
            items,
            Err(Skip::ServiceNotSupported {
                kind: "OGC API Features".into(),
                url: "https://geo.kommun.example/ogc/collections/bad/items?f=json".into()
            })
        );
        // A file beats a service.
        let file = choice_of(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:d , ex:csv .
             ex:d dcat:accessURL <https://geo.kommun.example/ogc/collections/bad/items> .
             ex:csv dct:format \"text/csv\" ; dcat:downloadURL <https://kommun.example/bad.csv> .",
        );
        assert_eq!(file.map(|c| c.kind), Ok(SourceKind::Csv));
    }

    #[test]
    fn relative_iris_resolved_against_the_base() {
        let document = format!(
            "{PREFIXES}<ds> a dcat:Dataset ; dct:title \"Lekplatser\"@sv ; dcat:distribution <dist/1> .
             <dist/1> dct:format \"text/csv\" ; dcat:downloadURL <../filer/lekplatser.csv> ."
        );
        let catalog = parse(
            document.as_bytes(),
            RdfFormat::Turtle,
            Some("https://kommun.example/dcat/katalog"),
        )
        .expect("the Turtle parses");
        let dataset = only_dataset(&catalog);
        assert_eq!(dataset.uri, "https://kommun.example/dcat/ds");
        assert_eq!(
            choose(dataset),
            Ok(Choice {
                url: "https://kommun.example/filer/lekplatser.csv".into(),
                kind: SourceKind::Csv,
                distribution: "https://kommun.example/dcat/dist/1".into(),
            })
        );
        // Without a base the IRIs stay relative, and are no URLs.
        let catalog = parse(document.as_bytes(), RdfFormat::Turtle, None).expect("lenient parse");
        assert_eq!(choose(only_dataset(&catalog)), Err(Skip::NoUrl));
        // A base that is no absolute IRI is refused.
        assert!(matches!(
            parse(document.as_bytes(), RdfFormat::Turtle, Some("not a base")),
            Err(DcatError::InvalidBaseIri { .. })
        ));
    }

    #[test]
    fn garbage_iris_do_not_spoil_the_document() {
        let catalog = turtle(
            "ex:ds a dcat:Dataset ; dcat:distribution ex:bad , ex:good .
             ex:bad dct:format \"text/csv\" ; dcat:downloadURL <https://kommun.example/a file.csv> .
             ex:good dct:format \"text/csv\" ; dcat:downloadURL \"https://kommun.example/b.csv\" .",
        );
        let dataset = only_dataset(&catalog);
        assert_eq!(
            dataset.distributions[0].download_url.as_deref(),
            Some("https://kommun.example/a file.csv"),
            "kept as given"
        );
        assert_eq!(
            choose(dataset).map(|c| c.url),
            Ok("https://kommun.example/b.csv".into()),
            "a URL with a space is not used; a literal URL is"
        );
    }

    #[test]
    fn blank_node_datasets_and_distributions() {
        let catalog = turtle(
            "ex:cat a dcat:Catalog ; dct:title \"Kommunens katalog\"@sv ;
                 dct:license <http://creativecommons.org/publicdomain/zero/1.0/> ;
                 dcat:dataset [ a dcat:Dataset ; dct:title \"Toaletter\"@sv ;
                     dct:publisher [ foaf:name \"Kommunen\"@sv ] ;
                     dcat:distribution [ dct:format [ a dct:MediaType ;
                         <http://www.w3.org/1999/02/22-rdf-syntax-ns#value> \"text/csv\" ] ;
                         dcat:downloadURL <https://kommun.example/toaletter.csv> ] ] ,
                 [ dct:title \"Untyped but listed\"@sv ] .",
        );
        assert_eq!(catalog.title.as_deref(), Some("Kommunens katalog"));
        assert_eq!(catalog.datasets.len(), 2);
        let dataset = &catalog.datasets[0];
        assert!(dataset.uri.starts_with("_:"), "{}", dataset.uri);
        assert_eq!(dataset.title, "Toaletter");
        assert_eq!(dataset.publisher.as_deref(), Some("Kommunen"));
        assert_eq!(dataset.distributions[0].format.as_deref(), Some("text/csv"));
        assert!(dataset.distributions[0].uri.starts_with("_:"));
        let choice = choose(dataset).expect("the CSV");
        assert_eq!(choice.distribution, dataset.distributions[0].uri);
        assert_eq!(
            dataset.licence.as_deref(),
            Some("http://creativecommons.org/publicdomain/zero/1.0/")
        );
        assert_eq!(catalog.datasets[1].title, "Untyped but listed");
    }

    #[test]
    fn datasets_are_deduplicated() {
        let catalog = turtle(
            "ex:cat a dcat:Catalog ; dcat:dataset ex:ds , ex:ds .
             ex:ds a dcat:Dataset , dcat:Dataset ; dcat:distribution ex:d , ex:d .
             ex:d dcat:downloadURL <https://kommun.example/a.csv> .
             ex:cat2 a dcat:Catalog ; dcat:dataset ex:ds .",
        );
        let dataset = only_dataset(&catalog);
        assert_eq!(dataset.distributions.len(), 1);
    }

    #[test]
    fn no_distributions() {
        assert_eq!(
            choice_of("ex:ds a dcat:Dataset ; dct:title \"Tomt\"@sv ."),
            Err(Skip::NoDistributions)
        );
        // The title falls back to the URI.
        let catalog = turtle("ex:ds a dcat:Dataset .");
        assert_eq!(only_dataset(&catalog).title, "https://kommun.example/ds");
    }

    #[test]
    fn language_choice() {
        let catalog = turtle(
            "ex:ds a dcat:Dataset ;
                 dct:title \"Bathing places\"@en-t-sv-t0-mtec , \"Badeplätze\"@de , \"Bathing\"@en ;
                 dct:description \"Plain\" , \"English\"@en ;
                 dcat:keyword \"beach\"@en , \"bad\"@sv , \"strand\"@sv-SE-t-en-t0-mtec , \"strand\"@SV , \"x\" .",
        );
        let dataset = only_dataset(&catalog);
        assert_eq!(
            dataset.title, "Bathing",
            "English before another language or a machine translation"
        );
        assert_eq!(
            dataset.description.as_deref(),
            Some("Plain"),
            "untagged before English"
        );
        assert_eq!(
            dataset.keywords,
            ["bad", "strand"],
            "all Swedish keywords, tag case ignored"
        );
        let machine_only = turtle("ex:ds a dcat:Dataset ; dct:title \"Baignade\"@fr-t-sv-t0-mtec , \"Bathing\"@en-t-sv-t0-mtec .");
        assert_eq!(only_dataset(&machine_only).title, "Bathing");
        let ranks: Vec<u8> = [
            Some("sv"),
            None,
            Some("en"),
            Some("fi"),
            Some("en-t-sv-t0-mtec"),
            Some("fi-t-sv-t0-mtec"),
        ]
        .into_iter()
        .map(language_rank)
        .collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
    }

    #[test]
    fn huge_texts_are_truncated() {
        let long_title = "å".repeat(1_000);
        let long_description = "d".repeat(20_000);
        let keywords: Vec<String> = (0..80)
            .map(|i| format!("\"{i}{}\"@sv", "k".repeat(300)))
            .collect();
        let catalog = turtle(&format!(
            "ex:ds a dcat:Dataset ; dct:title \"{long_title}\"@sv ;
                 dct:description \"{long_description}\"@sv ; dcat:keyword {} .",
            keywords.join(" , ")
        ));
        let dataset = only_dataset(&catalog);
        assert_eq!(dataset.title.chars().count(), MAX_TITLE_CHARS);
        assert_eq!(
            dataset.description.as_ref().map(|d| d.chars().count()),
            Some(MAX_DESCRIPTION_CHARS)
        );
        assert_eq!(dataset.keywords.len(), MAX_KEYWORDS);
        assert!(dataset
            .keywords
            .iter()
            .all(|k| k.chars().count() == MAX_KEYWORD_CHARS));
    }

    #[test]
    fn many_datasets_are_capped_and_linear() {
        let mut document = String::from(PREFIXES);
        let count = MAX_DATASETS + 5;
        for i in 0..count {
            document.push_str(&format!(
                "ex:ds{i} a dcat:Dataset ; dct:title \"D {i}\"@sv ; dct:publisher ex:org ; dcat:distribution ex:d{i} .\n\
                 ex:d{i} dct:format \"text/csv\" ; dcat:downloadURL <https://kommun.example/{i}.csv> .\n"
            ));
        }
        document.push_str("ex:org foaf:name \"Kommunen\"@sv .\n");
        let started = std::time::Instant::now();
        let catalog = parse(document.as_bytes(), RdfFormat::Turtle, None).expect("parses");
        assert_eq!(catalog.datasets.len(), MAX_DATASETS);
        assert_eq!(catalog.omitted_datasets, 5);
        assert_eq!(catalog.datasets[9_999].title, "D 9999");
        assert_eq!(
            catalog.datasets[9_999].publisher.as_deref(),
            Some("Kommunen")
        );
        // Quadratic work over 10,000 datasets would take minutes; linear takes well under a
        // second even unoptimised.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    // --- Errors -----------------------------------------------------------------------------

    #[test]
    fn syntax_errors_say_where_and_what() {
        let broken = format!("{PREFIXES}ex:ds a dcat:Dataset ;\n  dct:title \"unterminated .\n");
        match parse(broken.as_bytes(), RdfFormat::Turtle, None) {
            Err(DcatError::Syntax {
                format: RdfFormat::Turtle,
                line: Some(line),
                message,
            }) => {
                assert_eq!(line, 6, "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("expected a Turtle syntax error, got {other:?}"),
        }
        let error = parse(
            b"<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><dcat:Dataset>",
            RdfFormat::RdfXml,
            None,
        )
        .expect_err("an unbound prefix and an unclosed element");
        assert!(
            matches!(
                error,
                DcatError::Syntax {
                    format: RdfFormat::RdfXml,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().starts_with("RDF/XML syntax error: "),
            "{error}"
        );
        // JSON-LD with a remote context: nothing is fetched.
        let remote = br#"{"@context": "https://schema.example/dcat.jsonld", "@id": "x"}"#;
        match parse(remote, RdfFormat::JsonLd, None) {
            Err(DcatError::Syntax {
                format: RdfFormat::JsonLd,
                message,
                ..
            }) => assert!(message.starts_with("the @context is remote"), "{message}"),
            other => panic!("expected a JSON-LD syntax error, got {other:?}"),
        }
    }

    #[test]
    fn too_large_and_empty_documents() {
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        assert!(matches!(
            parse(&big, RdfFormat::Turtle, None),
            Err(DcatError::TooLarge { size, limit: MAX_INPUT_BYTES }) if size == MAX_INPUT_BYTES + 1
        ));
        let exactly = vec![b' '; MAX_INPUT_BYTES];
        assert!(matches!(
            parse(&exactly, RdfFormat::Turtle, None),
            Err(DcatError::NoDatasets)
        ));
        assert!(matches!(
            turtle_err("ex:cat a dcat:Catalog ; dct:title \"Tom\"@sv ."),
            DcatError::NoDatasets
        ));
    }

    fn turtle_err(body: &str) -> DcatError {
        parse(
            format!("{PREFIXES}{body}").as_bytes(),
            RdfFormat::Turtle,
            None,
        )
        .expect_err("the snippet is refused")
    }

    #[test]
    fn skip_reasons_read_as_sentences() {
        let skips = [
            Skip::NoDistributions,
            Skip::NoUrl,
            Skip::NotSpatial { formats: vec![] },
            Skip::NotSpatial {
                formats: vec!["application/json".into(), "text/html".into()],
            },
            Skip::ServiceNotSupported {
                kind: "WFS".into(),
                url: "https://x.example/wfs".into(),
            },
        ];
        for skip in skips {
            let text = skip.to_string();
            assert!(
                text.ends_with('.') && text.starts_with(char::is_uppercase),
                "{text}"
            );
            assert_eq!(text.matches(". ").count(), 0, "one sentence: {text}");
        }
        assert!(Skip::NotSpatial {
            formats: vec!["application/json".into()]
        }
        .to_string()
        .contains("application/json"));
    }
}
