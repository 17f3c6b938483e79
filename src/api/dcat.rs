//! `/datasets/dcat`: the served collections as a DCAT-AP-SE catalog, the document dataportal.se
//! harvests (its default harvest source is `http://<organisation>.se/datasets/dcat`).
//!
//! One `dcat:Catalog`, one `dcat:Dataset` per served collection (IRI: the collection's URL),
//! each with a GeoJSON distribution (the items) and a vector-tile distribution (TileJSON/MVT),
//! both `dcat:accessService` the one `dcat:DataService` that is this API. Every resource has an
//! IRI (dataportal.se refuses blank nodes for catalogs, datasets, distributions, publishers and
//! contact points; hamn uses none at all, so the graph is the same in every serialisation).
//! The catalog's own settings (publisher, contact point, licence …) come from `hamn serve`'s
//! `--dcat-*` flags and are checked once, at start-up, by [`CatalogSettings::new`].
//!
//! Written with Oxigraph's serialisers (`oxrdfio`): RDF/XML (the default: the only format the
//! harvester names), Turtle, JSON-LD and N-Triples.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use oxrdf::{Literal, NamedNode, Term, Triple};
use oxrdfio::{RdfFormat, RdfSerializer};

use super::params::Params;
use super::{base_url, etag_check, not_modified, quote, ApiError, AppState, CONFORMANCE};
use crate::catalog::{CatalogEntry, LANGUAGES};
use crate::config::DcatArgs;
use crate::engine::Served;

/// Where the catalog is served (the path dataportal.se assumes).
pub const PATH: &str = "/datasets/dcat";
/// The default licence of the catalog: CC0 1.0, in its canonical form.
pub const CC0: &str = "http://creativecommons.org/publicdomain/zero/1.0/";
/// The default publisher type.
pub const LOCAL_AUTHORITY: &str = "http://purl.org/adms/publishertype/LocalAuthority";
const ADMS_TYPE: &str = "http://purl.org/adms/publishertype/";
/// The EU data-theme vocabulary (the theme taxonomy DCAT-AP-SE uses).
pub const DATA_THEME: &str = "http://publications.europa.eu/resource/authority/data-theme";
/// REST as an architectural style (what DCAT-AP-SE puts in a DataService's `dcterms:type`).
pub const REST: &str = "http://www.wikidata.org/entity/Q749568";

mod ns {
    pub const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
    pub const DCAT: &str = "http://www.w3.org/ns/dcat#";
    pub const DCT: &str = "http://purl.org/dc/terms/";
    pub const FOAF: &str = "http://xmlns.com/foaf/0.1/";
    pub const VCARD: &str = "http://www.w3.org/2006/vcard/ns#";
    pub const XSD: &str = "http://www.w3.org/2001/XMLSchema#";
    pub const GSP: &str = "http://www.opengis.net/ont/geosparql#";
}

fn term(ns: &str, local: &str) -> NamedNode {
    NamedNode::new_unchecked(format!("{ns}{local}"))
}

/// The catalog's settings, checked: what [`graph`] needs besides the collections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSettings {
    pub title: Option<String>,
    pub title_en: Option<String>,
    pub description: Option<String>,
    pub description_en: Option<String>,
    pub publisher: Option<String>,
    /// Ten digits.
    pub publisher_orgnr: Option<String>,
    pub publisher_type: String,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    /// A canonical licence URI.
    pub licence: String,
    /// A language tag (`sv`) and its IRI in the EU language vocabulary.
    pub language: (&'static str, &'static str),
}

impl Default for CatalogSettings {
    /// What `new` makes of no settings at all: an incomplete catalog (see [`Self::missing`]).
    fn default() -> Self {
        Self {
            title: None,
            title_en: None,
            description: None,
            description_en: None,
            publisher: None,
            publisher_orgnr: None,
            publisher_type: LOCAL_AUTHORITY.into(),
            contact_name: None,
            contact_email: None,
            licence: CC0.into(),
            language: LANGUAGES[0],
        }
    }
}

impl CatalogSettings {
    /// Checks the settings: an organisationsnummer of 10 digits (a `-` after the sixth is
    /// allowed), an e-mail address of the usual shape, http(s) URIs, a known language, and no
    /// empty texts. The error names the setting.
    pub fn new(args: DcatArgs) -> Result<Self, String> {
        fn text(name: &str, v: Option<String>) -> Result<Option<String>, String> {
            match v.map(|s| s.trim().to_string()) {
                Some(s) if s.is_empty() => Err(format!("--{name} is empty")),
                Some(s) if s.chars().any(|c| c.is_control() && c != '\n') => {
                    Err(format!("--{name} contains control characters"))
                }
                other => Ok(other),
            }
        }
        let publisher_orgnr = match text("dcat-publisher-orgnr", args.publisher_orgnr)? {
            None => None,
            Some(raw) => {
                let digits: String = match raw.split_once('-') {
                    Some((a, b)) if a.len() == 6 => format!("{a}{b}"),
                    _ => raw.clone(),
                };
                if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "--dcat-publisher-orgnr {}: an organisationsnummer is 10 digits (e.g. 2120001439)",
                        quote(&raw)
                    ));
                }
                Some(digits)
            }
        };
        let contact_email = match text("dcat-contact-email", args.contact_email)? {
            None => None,
            Some(e) => {
                let e = e.strip_prefix("mailto:").unwrap_or(&e).to_string();
                if !valid_email(&e) || NamedNode::new(format!("mailto:{e}")).is_err() {
                    return Err(format!(
                        "--dcat-contact-email {}: not an e-mail address (name@example.se)",
                        quote(&e)
                    ));
                }
                Some(e)
            }
        };
        let publisher_type =
            text("dcat-publisher-type", args.publisher_type)?.unwrap_or(LOCAL_AUTHORITY.into());
        if !http_uri(&publisher_type) {
            return Err(format!(
                "--dcat-publisher-type {}: not an http(s) URI (e.g. {LOCAL_AUTHORITY})",
                quote(&publisher_type)
            ));
        }
        let licence = match text("dcat-licence", args.licence)? {
            None => CC0.to_string(),
            Some(l) => licence_uri(&l).ok_or_else(|| {
                format!(
                    "--dcat-licence {}: neither an http(s) URI nor a known SPDX id (CC0-1.0, CC-BY-4.0 …)",
                    quote(&l)
                )
            })?,
        };
        let lang = text("dcat-language", args.language)?.unwrap_or("sv".into());
        let language = LANGUAGES
            .iter()
            .find(|(tag, _)| tag.eq_ignore_ascii_case(&lang))
            .copied()
            .ok_or_else(|| {
                format!(
                    "--dcat-language {}: use one of {}",
                    quote(&lang),
                    LANGUAGES.map(|(t, _)| t).join(", ")
                )
            })?;
        Ok(Self {
            title: text("dcat-title", args.title)?,
            title_en: text("dcat-title-en", args.title_en)?,
            description: text("dcat-description", args.description)?,
            description_en: text("dcat-description-en", args.description_en)?,
            publisher: text("dcat-publisher", args.publisher)?,
            publisher_orgnr,
            publisher_type,
            contact_name: text("dcat-contact-name", args.contact_name)?,
            contact_email,
            licence,
            language,
        })
    }

    /// Settings without which the catalog does not meet DCAT-AP-SE (flag names).
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.publisher.is_none() {
            out.push("--dcat-publisher");
        }
        if self.contact_email.is_none() {
            out.push("--dcat-contact-email");
        }
        out
    }
}

/// `local@domain.tld`: one `@`, letters, digits and `._+-` before it, letters, digits, `.` and
/// `-` after it with a dot in the domain. Stricter than RFC 5322, so that `mailto:` + the address
/// is always a valid IRI.
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "._+-".contains(c));
    let domain_ok = !domain.is_empty()
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    local_ok
        && domain_ok
        && domain.contains('.')
        && !domain.starts_with(['.', '-'])
        && !domain.ends_with(['.', '-'])
        && e.len() <= 254
}

/// An absolute http(s) IRI with a host, as Oxigraph reads it.
pub fn http_uri(s: &str) -> bool {
    (s.starts_with("http://") || s.starts_with("https://"))
        && s.len() > "https://".len()
        && NamedNode::new(s).is_ok()
        && !s.contains(char::is_whitespace)
}

/// A licence as the canonical URI dataportal.se expects: an SPDX id mapped to its Creative
/// Commons or Open Data Commons URI; a Creative Commons URL made canonical (http, no `www.`,
/// no `deed.sv` or `legalcode`, a trailing slash); any other http(s) URI kept. None for
/// anything else (free text such as "Not stated").
pub fn licence_uri(licence: &str) -> Option<String> {
    let l = licence.trim();
    let lower = l.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("cc-") {
        // SPDX: CC-BY-4.0, CC-BY-SA-4.0, CC-BY-NC-ND-3.0 …
        let (kind, version) = rest.rsplit_once('-')?;
        let kinds = ["by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd"];
        let version_ok = ["1.0", "2.0", "2.5", "3.0", "4.0"].contains(&version);
        return (kinds.contains(&kind) && version_ok)
            .then(|| format!("http://creativecommons.org/licenses/{kind}/{version}/"));
    }
    let spdx = match lower.as_str() {
        "cc0-1.0" | "cc0" => Some(CC0),
        "pddl-1.0" => Some("http://opendatacommons.org/licenses/pddl/1.0/"),
        "odc-by-1.0" => Some("http://opendatacommons.org/licenses/by/1.0/"),
        "odbl-1.0" => Some("http://opendatacommons.org/licenses/odbl/1.0/"),
        _ => None,
    };
    if let Some(uri) = spdx {
        return Some(uri.to_string());
    }
    if !http_uri(l) {
        return None;
    }
    let without_scheme = l
        .strip_prefix("https://")
        .or_else(|| l.strip_prefix("http://"))
        .unwrap_or(l);
    let host_and_path = without_scheme
        .strip_prefix("www.")
        .unwrap_or(without_scheme);
    if let Some(path) = host_and_path.strip_prefix("creativecommons.org/") {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts
            .last()
            .is_some_and(|p| p.starts_with("deed") || p.starts_with("legalcode"))
        {
            parts.pop();
        }
        return Some(format!("http://creativecommons.org/{}/", parts.join("/")));
    }
    Some(l.to_string())
}

/// The EU data theme of a collection's theme: an IRI of the vocabulary as it is, a known word
/// (English or Swedish: parking, trafik, bathing, miljö …) as its theme, else None.
pub fn data_theme(theme: &str) -> Option<String> {
    let t = theme.trim();
    if let Some(code) = t
        .strip_prefix(DATA_THEME)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        return (!code.is_empty() && code.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .then(|| format!("{DATA_THEME}/{code}"));
    }
    let word = t.to_lowercase();
    let code = match word.as_str() {
        "parking" | "parkering" | "laddplatser" | "charging" | "traffic" | "trafik" | "transit"
        | "transport" | "kollektivtrafik" | "public transport" | "roads" | "vägar" | "gator"
        | "cykel" | "cycling" => "TRAN",
        "bathing" | "bad" | "badplatser" | "badvatten" | "environment" | "miljö" | "noise"
        | "buller" | "nature" | "natur" | "naturvård" | "water" | "vatten" | "climate"
        | "klimat" => "ENVI",
        "health" | "hälsa" | "vård" => "HEAL",
        "education" | "utbildning" | "skola" | "schools" | "culture" | "kultur" | "sport"
        | "idrott" | "fritid" | "leisure" | "playgrounds" | "lekplatser" => "EDUC",
        "energy" | "energi" => "ENER",
        "economy" | "ekonomi" | "näringsliv" => "ECON",
        "population" | "befolkning" | "society" | "samhälle" | "social" => "SOCI",
        "government" | "förvaltning" | "public sector" | "offentlig sektor" => "GOVE",
        "planning" | "planering" | "building" | "bygga" | "regions" | "cities" | "stad"
        | "samhällsplanering" | "property" | "fastighet" => "REGI",
        "agriculture" | "jordbruk" | "fishing" | "fiske" | "forestry" | "skog" | "food"
        | "livsmedel" => "AGRI",
        "justice" | "rättsväsende" | "safety" | "säkerhet" => "JUST",
        "science" | "vetenskap" | "technology" | "teknik" => "TECH",
        "international" | "internationellt" => "INTR",
        _ => return None,
    };
    Some(format!("{DATA_THEME}/{code}"))
}

/// The ADMS publisher type of a publisher known only by name, when the name says it (a
/// "kommun" or "stad", a "region", a national agency, an "AB"); None when it does not.
pub fn publisher_type_of(name: &str) -> Option<String> {
    let n = name.to_lowercase();
    let words: Vec<&str> = n
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    let kind = if has("kommun") || has("stad") || n.ends_with("kommun") {
        "LocalAuthority"
    } else if has("ab") || has("aktiebolag") {
        "Company"
    } else if has("region") || has("landsting") || has("länsstyrelsen") {
        "RegionalAuthority"
    } else if words.iter().any(|w| {
        w.ends_with("myndigheten")
            || w.ends_with("verket")
            || w.ends_with("styrelsen")
            || w.ends_with("inspektionen")
            || w.ends_with("institutet")
    }) {
        "NationalAuthority"
    } else {
        return None;
    };
    Some(format!("{ADMS_TYPE}{kind}"))
}

/// Triples, built with a check of every IRI made from outside input.
struct Builder {
    triples: Vec<Triple>,
    lang: &'static str,
    /// Objects of `dcterms:conformsTo`, typed `dcterms:Standard` at the end (DCAT-AP-SE's
    /// forms pick conformsTo values by that type).
    standards: std::collections::BTreeSet<String>,
}

impl Builder {
    fn iri(s: &str) -> Result<NamedNode, String> {
        NamedNode::new(s).map_err(|e| format!("not an IRI {s:?}: {e}"))
    }

    fn add(&mut self, s: &NamedNode, p: NamedNode, o: impl Into<Term>) {
        self.triples.push(Triple::new(s.clone(), p, o));
    }

    fn a(&mut self, s: &NamedNode, class: NamedNode) {
        self.add(s, term(ns::RDF, "type"), class);
    }

    fn text(&mut self, s: &NamedNode, p: NamedNode, text: &str, lang: &str) {
        self.add(
            s,
            p,
            Literal::new_language_tagged_literal_unchecked(text, lang),
        );
    }

    /// A text in the catalog's language.
    fn local(&mut self, s: &NamedNode, p: NamedNode, text: &str) {
        let lang = self.lang;
        self.text(s, p, text, lang);
    }

    fn link(&mut self, s: &NamedNode, p: NamedNode, iri: &str) -> Result<(), String> {
        let o = Self::iri(iri)?;
        self.add(s, p, o);
        Ok(())
    }

    fn conforms(&mut self, s: &NamedNode, standard: &str) -> Result<(), String> {
        self.link(s, term(ns::DCT, "conformsTo"), standard)?;
        self.standards.insert(standard.to_string());
        Ok(())
    }

    fn typed(&mut self, s: &NamedNode, p: NamedNode, value: String, datatype: NamedNode) {
        self.add(s, p, Literal::new_typed_literal(value, datatype));
    }
}

fn datetime(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A stable fragment for an agent known by name: its slug and a hash of the exact name (two
/// names with one slug still get two IRIs).
fn agent_fragment(name: &str) -> String {
    let slug = crate::catalog::CollectionId::slugify(name)
        .map(String::from)
        .unwrap_or_else(|_| "agent".into());
    let hash = super::common::fxhash(name) as u32;
    format!("publisher-{slug}-{hash:08x}")
}

/// The catalog as triples: settings, the collections served (in id order) and the base URL.
pub fn graph(
    settings: &CatalogSettings,
    collections: &[Served],
    base: &str,
    downloads: &crate::download::Downloads,
) -> Result<Vec<Triple>, String> {
    let dcat = |l: &str| term(ns::DCAT, l);
    let dct = |l: &str| term(ns::DCT, l);
    let foaf = |l: &str| term(ns::FOAF, l);
    let vcard = |l: &str| term(ns::VCARD, l);
    let xsd = |l: &str| term(ns::XSD, l);
    let mut g = Builder {
        triples: Vec::new(),
        lang: settings.language.0,
        standards: Default::default(),
    };
    let doc = format!("{base}{PATH}");
    let catalog = Builder::iri(&format!("{doc}#catalog"))?;
    let service = Builder::iri(&format!("{doc}#api"))?;
    let openapi = format!("{base}/api");
    g.a(&catalog, dcat("Catalog"));

    // The catalog's publisher and contact point.
    let publisher = match &settings.publisher {
        None => None,
        Some(name) => {
            let iri = match &settings.publisher_orgnr {
                Some(nr) => format!("http://dataportal.se/organisation/SE{nr}"),
                None => format!("{doc}#publisher"),
            };
            let p = Builder::iri(&iri)?;
            g.a(&p, foaf("Agent"));
            g.a(&p, foaf("Organization"));
            g.local(&p, foaf("name"), name);
            g.link(&p, dct("type"), &settings.publisher_type)?;
            if let Some(nr) = &settings.publisher_orgnr {
                g.add(&p, dct("identifier"), Literal::new_simple_literal(nr));
            }
            Some((name.clone(), p))
        }
    };
    let contact = match (&settings.contact_email, &settings.contact_name) {
        (None, _) => None,
        (Some(email), name) => {
            let c = Builder::iri(&format!("{doc}#contact"))?;
            g.a(&c, vcard("Organization"));
            let name = name
                .clone()
                .or(settings.publisher.clone())
                .unwrap_or_else(|| email.clone());
            g.local(&c, vcard("fn"), &name);
            g.link(&c, vcard("hasEmail"), &format!("mailto:{email}"))?;
            Some(c)
        }
    };

    // The catalog.
    let title = settings
        .title
        .clone()
        .unwrap_or_else(|| match &settings.publisher {
            Some(p) => format!("Öppna geodata från {p}"),
            None => "Öppna geodata".into(),
        });
    g.local(&catalog, dct("title"), &title);
    let mut description = settings
        .description
        .clone()
        .unwrap_or_else(|| "Geodata som OGC API – Features och vektortiler (hamn).".to_string());
    let missing = settings.missing();
    if !missing.is_empty() {
        description.push_str(&format!(
            " [Ofullständig katalog: serverns inställningar {} saknas, så katalogen uppfyller inte DCAT-AP-SE.]",
            missing.join(", ")
        ));
    }
    g.local(&catalog, dct("description"), &description);
    if let Some(t) = &settings.title_en {
        g.text(&catalog, dct("title"), t, "en");
    }
    if let Some(d) = &settings.description_en {
        g.text(&catalog, dct("description"), d, "en");
    }
    if let Some((_, p)) = &publisher {
        g.add(&catalog, dct("publisher"), p.clone());
    }
    g.link(&catalog, dct("license"), &settings.licence)?;
    g.link(&catalog, dct("language"), settings.language.1)?;
    g.link(&catalog, foaf("homepage"), &format!("{base}/"))?;
    g.link(&catalog, dcat("themeTaxonomy"), DATA_THEME)?;
    g.add(&catalog, dcat("service"), service.clone());
    if let Some(latest) = collections.iter().map(|s| s.entry().updated).max() {
        g.typed(
            &catalog,
            dct("modified"),
            datetime(&latest),
            xsd("dateTime"),
        );
    }

    // The API.
    g.a(&service, dcat("DataService"));
    g.local(&service, dct("title"), &format!("{title} (OGC API)"));
    g.local(
        &service,
        dct("description"),
        "OGC API – Features (GeoJSON) och OGC API – Tiles (Mapbox-vektortiler) för katalogens datamängder.",
    );
    g.link(&service, dcat("endpointURL"), &format!("{base}/"))?;
    g.link(&service, dcat("endpointDescription"), &openapi)?;
    g.link(&service, dct("type"), REST)?;
    g.add(
        &service,
        dct("format"),
        Literal::new_simple_literal(super::GEOJSON),
    );
    for c in CONFORMANCE {
        g.conforms(&service, c)?;
    }
    g.link(&service, dct("license"), &settings.licence)?;
    if let Some((_, p)) = &publisher {
        g.add(&service, dct("publisher"), p.clone());
    }
    if let Some(c) = &contact {
        g.add(&service, dcat("contactPoint"), c.clone());
    }

    // Agents named by collections, each described once.
    let mut agents: BTreeMap<String, NamedNode> = BTreeMap::new();
    for s in collections {
        let dataset = dataset(
            &mut g,
            settings,
            s.entry(),
            base,
            &service,
            &openapi,
            downloads,
        )?;
        g.add(&catalog, dcat("dataset"), dataset.clone());
        g.add(&service, dcat("servesDataset"), dataset.clone());
        if let Some(c) = &contact {
            g.add(&dataset, dcat("contactPoint"), c.clone());
        }
        // The collection's own publisher when it is known what kind it is (DCAT-AP-SE 3.0.1
        // wants a publisher type); else the catalog's, with the name as the creator.
        let own = s.entry().meta.publisher.as_deref().map(str::trim);
        let own = own.filter(|n| !n.is_empty());
        match (own, &publisher) {
            (Some(name), Some((catalog_name, p))) if name == catalog_name => {
                g.add(&dataset, dct("publisher"), p.clone());
            }
            (Some(name), catalog_publisher) => {
                let kind = publisher_type_of(name);
                let agent = match agents.get(name) {
                    Some(a) => a.clone(),
                    None => {
                        let a = Builder::iri(&format!("{doc}#{}", agent_fragment(name)))?;
                        g.a(&a, foaf("Agent"));
                        g.local(&a, foaf("name"), name);
                        if let Some(k) = &kind {
                            g.link(&a, dct("type"), k)?;
                        }
                        agents.insert(name.to_string(), a.clone());
                        a
                    }
                };
                match (kind, catalog_publisher) {
                    (None, Some((_, p))) => {
                        g.add(&dataset, dct("publisher"), p.clone());
                        g.add(&dataset, dct("creator"), agent);
                    }
                    _ => g.add(&dataset, dct("publisher"), agent),
                }
            }
            (None, Some((_, p))) => g.add(&dataset, dct("publisher"), p.clone()),
            (None, None) => {}
        }
    }
    let api_doc = Builder::iri(&openapi)?;
    g.local(&api_doc, dct("title"), "API-beskrivning (OpenAPI 3.0)");
    for standard in std::mem::take(&mut g.standards) {
        let s = Builder::iri(&standard)?;
        g.a(&s, dct("Standard"));
    }
    Ok(grouped(g.triples))
}

/// The triples with each subject's together, subjects in the order they first appear (the
/// catalog first), so that Turtle and RDF/XML describe each resource in one block.
fn grouped(triples: Vec<Triple>) -> Vec<Triple> {
    let mut first: std::collections::HashMap<oxrdf::NamedOrBlankNode, usize> =
        std::collections::HashMap::new();
    for (i, t) in triples.iter().enumerate() {
        first.entry(t.subject.clone()).or_insert(i);
    }
    let mut keyed: Vec<(usize, Triple)> = triples
        .into_iter()
        .map(|t| (first.get(&t.subject).copied().unwrap_or(0), t))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, t)| t).collect()
}

/// One collection's dataset and distributions; returns the dataset's IRI.
fn dataset(
    g: &mut Builder,
    settings: &CatalogSettings,
    entry: &CatalogEntry,
    base: &str,
    service: &NamedNode,
    openapi: &str,
    downloads: &crate::download::Downloads,
) -> Result<NamedNode, String> {
    let dcat = |l: &str| term(ns::DCAT, l);
    let dct = |l: &str| term(ns::DCT, l);
    let xsd = |l: &str| term(ns::XSD, l);
    let id = &entry.id;
    let url = format!("{base}/collections/{id}");
    let d = Builder::iri(&url)?;
    let meta = &entry.meta;
    g.a(&d, dcat("Dataset"));
    let title = if meta.title.trim().is_empty() {
        id.as_str()
    } else {
        meta.title.trim()
    };
    // The collection's texts in its own language, else the catalog's.
    let lang = meta
        .language
        .as_deref()
        .and_then(|l| LANGUAGES.iter().find(|(tag, _)| *tag == l))
        .copied()
        .unwrap_or(settings.language);
    g.text(&d, dct("title"), title, lang.0);
    g.link(&d, dct("language"), lang.1)?;
    let description = meta
        .description
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(title);
    g.text(&d, dct("description"), description, lang.0);
    // A theme collection whose title and description are still the theme's has them in both
    // Swedish and English: the theme gives both.
    if let Some(t) = crate::theme::by_conformance(&meta.conforms_to) {
        let own = meta.description.as_deref().map(str::trim);
        for (p, sv, en, given) in [
            ("title", &t.title, &t.title_en, Some(title)),
            ("description", &t.description, &t.description_en, own),
        ] {
            if given == Some(sv.as_str()) {
                match lang.0 {
                    "sv" => g.text(&d, dct(p), en, "en"),
                    "en" => g.text(&d, dct(p), sv, "sv"),
                    _ => {}
                }
            }
        }
    }
    g.add(&d, dct("identifier"), Literal::new_simple_literal(&url));
    g.link(&d, dcat("landingPage"), &format!("{url}?f=html"))?;
    for k in &meta.keywords {
        let k = k.trim();
        if !k.is_empty() {
            g.text(&d, dcat("keyword"), k, lang.0);
        }
    }
    if let Some(theme) = meta.theme.as_deref().and_then(data_theme) {
        g.link(&d, dcat("theme"), &theme)?;
    }
    for c in &meta.conforms_to {
        if http_uri(c) {
            g.conforms(&d, c)?;
        }
    }
    g.typed(&d, dct("issued"), datetime(&entry.created), xsd("dateTime"));
    g.typed(
        &d,
        dct("modified"),
        datetime(&entry.updated),
        xsd("dateTime"),
    );
    if let Some(b) = entry.extent {
        let [x0, y0, x1, y1] = b.0;
        let place = Builder::iri(&format!("{url}#extent"))?;
        g.add(&d, dct("spatial"), place.clone());
        g.a(&place, dct("Location"));
        g.typed(
            &place,
            dcat("bbox"),
            format!("POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"),
            term(ns::GSP, "wktLiteral"),
        );
    }
    if let Some([start, end]) = entry.temporal_extent {
        let period = Builder::iri(&format!("{url}#period"))?;
        g.add(&d, dct("temporal"), period.clone());
        g.a(&period, dct("PeriodOfTime"));
        g.typed(
            &period,
            dcat("startDate"),
            datetime(&start),
            xsd("dateTime"),
        );
        g.typed(&period, dcat("endDate"), datetime(&end), xsd("dateTime"));
    }
    let licence = meta.licence.as_deref().and_then(licence_uri);
    let lang = settings.language.0;
    let distributions = [
        (
            "geojson",
            format!("{url}/items"),
            super::GEOJSON,
            if lang == "sv" {
                "Objekten som GeoJSON (OGC API – Features)"
            } else {
                "Features as GeoJSON (OGC API – Features)"
            },
        ),
        (
            "mvt",
            format!("{url}/tiles/WebMercatorQuad/tilejson.json"),
            "application/vnd.mapbox-vector-tile",
            if lang == "sv" {
                "Vektortiler (Mapbox Vector Tiles, TileJSON 3.0 för MapLibre och QGIS)"
            } else {
                "Vector tiles (Mapbox Vector Tiles, TileJSON 3.0 for MapLibre and QGIS)"
            },
        ),
    ];
    // The bulk downloads: one file of the whole collection per format, at a URL that always
    // names the current version (harvesters keep it), with its size once built.
    let files = crate::download::Format::ALL.into_iter().map(|f| {
        let title = match (f, lang == "sv") {
            (crate::download::Format::FlatGeobuf, true) => {
                "Hela datamängden som en FlatGeobuf-fil (med rumsligt index)"
            }
            (crate::download::Format::FlatGeobuf, false) => {
                "The whole dataset as one FlatGeobuf file (with a spatial index)"
            }
            (crate::download::Format::GeoPackage, true) => "Hela datamängden som en GeoPackage-fil",
            (crate::download::Format::GeoPackage, false) => {
                "The whole dataset as one GeoPackage file"
            }
        };
        (
            f.name(),
            format!("{url}/download/{}", f.name()),
            f.media_type(),
            title,
            Some(downloads.length(entry, f)),
        )
    });
    let distributions = distributions
        .into_iter()
        .map(|(key, access, format, title)| (key, access, format, title, None))
        .chain(files);
    for (key, access, format, title, file) in distributions {
        let dist = Builder::iri(&format!("{url}#distribution-{key}"))?;
        g.add(&d, dcat("distribution"), dist.clone());
        g.a(&dist, dcat("Distribution"));
        g.local(&dist, dct("title"), title);
        g.link(&dist, dcat("accessURL"), &access)?;
        if let Some(length) = file {
            g.link(&dist, dcat("downloadURL"), &access)?;
            if let Some(n) = length {
                g.typed(
                    &dist,
                    dcat("byteSize"),
                    n.to_string(),
                    xsd("nonNegativeInteger"),
                );
            }
        }
        g.add(&dist, dct("format"), Literal::new_simple_literal(format));
        g.add(&dist, dcat("accessService"), service.clone());
        g.conforms(&dist, openapi)?;
        if let Some(l) = &licence {
            g.link(&dist, dct("license"), l)?;
        }
    }
    Ok(d)
}

/// The serialisations offered: `f` value, media type, Oxigraph format.
const FORMATS: [(&str, &str, RdfFormat); 4] = [
    ("rdf", "application/rdf+xml", RdfFormat::RdfXml),
    ("ttl", "text/turtle", RdfFormat::Turtle),
    (
        "jsonld",
        "application/ld+json",
        RdfFormat::JsonLd {
            profile: oxrdfio::JsonLdProfileSet::empty(),
        },
    ),
    ("nt", "application/n-triples", RdfFormat::NTriples),
];

/// `f=rdf|ttl|jsonld|nt`, else the first type of `Accept` that names one (RDF/XML for `*/*`,
/// `application/*`, XML or no Accept at all), else 406.
fn choose(req: &HttpRequest, f: Option<&str>) -> Result<(&'static str, RdfFormat), ApiError> {
    if let Some(f) = f {
        return FORMATS
            .iter()
            .find(|(key, media, _)| f == *key || f == *media)
            .map(|(_, media, format)| (*media, *format))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "unknown format f={}: this catalog is offered as rdf (RDF/XML), ttl (Turtle), jsonld (JSON-LD) and nt (N-Triples)",
                    quote(f)
                ))
            });
    }
    let accept = super::accept_header(req);
    for media in super::media_types(accept) {
        let index = match media {
            ""
            | "*/*"
            | "application/*"
            | "application/rdf+xml"
            | "application/xml"
            | "text/xml" => 0,
            "text/turtle" | "text/*" => 1,
            "application/ld+json" => 2,
            "application/n-triples" => 3,
            _ => continue,
        };
        let (_, m, f) = FORMATS[index];
        return Ok((m, f));
    }
    Err(ApiError::NotAcceptable(format!(
        "cannot answer Accept: {}; this catalog is offered as application/rdf+xml, text/turtle, application/ld+json and application/n-triples",
        quote(accept)
    )))
}

/// The triples in `format`, with the usual prefixes.
pub fn serialize(triples: &[Triple], format: RdfFormat) -> Result<Vec<u8>, String> {
    let mut s = RdfSerializer::from_format(format);
    for (prefix, iri) in [
        ("rdf", ns::RDF),
        ("dcat", ns::DCAT),
        ("dcterms", ns::DCT),
        ("foaf", ns::FOAF),
        ("vcard", ns::VCARD),
        ("xsd", ns::XSD),
        ("gsp", ns::GSP),
    ] {
        if format != RdfFormat::NTriples {
            s = s.with_prefix(prefix, iri).map_err(|e| e.to_string())?;
        }
    }
    let mut w = s.for_writer(Vec::new());
    for t in triples {
        w.serialize_triple(t).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())
}

pub async fn catalog(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = Params::parse(req.query_string(), &["f"])?;
    let (media, format) = choose(&req, q.get("f"))?;
    let base = base_url(&req)?;
    let mut all = state.engine.list();
    all.sort_by(|a, b| a.entry().id.cmp(&b.entry().id));
    // A download's size appears once it is built: that changes the catalog too.
    let versions: String = all
        .iter()
        .map(|s| {
            let built = crate::download::Format::ALL
                .map(|f| u8::from(state.downloads.length(s.entry(), f).is_some()));
            format!("{}.{}.{built:?}", s.entry().id, s.version())
        })
        .collect::<Vec<_>>()
        .join(",");
    // The settings too: a restart with another publisher must not leave caches stale.
    let tag = super::common::fxhash(&format!("{base}|{media}|{versions}|{:?}", state.dcat));
    let (etag, fresh) = etag_check(&req, &format!("d{tag:x}"));
    if fresh {
        return Ok(not_modified(&etag));
    }
    let settings = &state.dcat;
    let body = graph(settings, &all, &base, &state.downloads)
        .and_then(|triples| serialize(&triples, format))
        .map_err(|e| {
            tracing::error!(error = %e, "cannot write the DCAT catalog");
            ApiError::Unavailable("the DCAT catalog cannot be written now".into())
        })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, media))
        .insert_header((header::ETAG, etag))
        .insert_header((header::VARY, "Accept"))
        .insert_header((
            header::CACHE_CONTROL,
            state.cache.cache_control(super::cache::Kind::Document),
        ))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("CC0-1.0", Some(CC0))]
    #[case("cc-by-4.0", Some("http://creativecommons.org/licenses/by/4.0/"))]
    #[case("CC-BY-SA-4.0", Some("http://creativecommons.org/licenses/by-sa/4.0/"))]
    #[case(
        "https://creativecommons.org/licenses/by/4.0/deed.sv",
        Some("http://creativecommons.org/licenses/by/4.0/")
    )]
    #[case("https://www.creativecommons.org/publicdomain/zero/1.0", Some(CC0))]
    #[case("ODbL-1.0", Some("http://opendatacommons.org/licenses/odbl/1.0/"))]
    #[case(
        "https://data.example.se/licens",
        Some("https://data.example.se/licens")
    )]
    #[case("Not stated (HaV open data; unverified)", None)]
    #[case("CC-XX-9.0", None)]
    fn licences(#[case] input: &str, #[case] want: Option<&str>) {
        assert_eq!(licence_uri(input).as_deref(), want);
    }

    #[rstest]
    #[case("parking", Some("TRAN"))]
    #[case("Trafik", Some("TRAN"))]
    #[case("bathing", Some("ENVI"))]
    #[case("miljö", Some("ENVI"))]
    #[case(
        "http://publications.europa.eu/resource/authority/data-theme/HEAL",
        Some("HEAL")
    )]
    #[case(
        "http://publications.europa.eu/resource/authority/data-theme/<x>",
        None
    )]
    #[case("whatever", None)]
    fn themes(#[case] input: &str, #[case] want: Option<&str>) {
        assert_eq!(data_theme(input), want.map(|c| format!("{DATA_THEME}/{c}")));
    }

    #[rstest]
    #[case("Härryda kommun", Some("LocalAuthority"))]
    #[case("Malmö stad, Fastighets- och gatukontoret", Some("LocalAuthority"))]
    #[case("Havs- och vattenmyndigheten (HaV)", Some("NationalAuthority"))]
    #[case("Trafikverket", Some("NationalAuthority"))]
    #[case("Region Gävleborg", Some("RegionalAuthority"))]
    #[case(
        "Samtrafiken i Sverige AB (X-Trafik, Region Gävleborg)",
        Some("Company")
    )]
    #[case("OpenStreetMap contributors", None)]
    fn publisher_types(#[case] name: &str, #[case] want: Option<&str>) {
        assert_eq!(
            publisher_type_of(name),
            want.map(|k| format!("{ADMS_TYPE}{k}"))
        );
    }

    #[test]
    fn settings_are_checked() {
        let ok = CatalogSettings::new(DcatArgs {
            publisher: Some("Härryda kommun".into()),
            publisher_orgnr: Some("212000-1439".into()),
            contact_email: Some("mailto:geodata@harryda.se".into()),
            licence: Some("CC-BY-4.0".into()),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(ok.publisher_orgnr.as_deref(), Some("2120001439"));
        assert_eq!(ok.contact_email.as_deref(), Some("geodata@harryda.se"));
        assert_eq!(ok.licence, "http://creativecommons.org/licenses/by/4.0/");
        assert_eq!(ok.publisher_type, LOCAL_AUTHORITY);
        assert!(ok.missing().is_empty());
        let defaults = CatalogSettings::default();
        assert_eq!(defaults.licence, CC0);
        assert_eq!(defaults.language.0, "sv");
        assert_eq!(
            defaults.missing(),
            ["--dcat-publisher", "--dcat-contact-email"]
        );
        for bad in [
            DcatArgs {
                publisher_orgnr: Some("21200014".into()),
                ..Default::default()
            },
            DcatArgs {
                publisher_orgnr: Some("212000143x".into()),
                ..Default::default()
            },
            DcatArgs {
                contact_email: Some("geodata at harryda.se".into()),
                ..Default::default()
            },
            DcatArgs {
                contact_email: Some("a@b".into()),
                ..Default::default()
            },
            DcatArgs {
                contact_email: Some("<a>@b.se".into()),
                ..Default::default()
            },
            DcatArgs {
                publisher_type: Some("LocalAuthority".into()),
                ..Default::default()
            },
            DcatArgs {
                licence: Some("fri".into()),
                ..Default::default()
            },
            DcatArgs {
                language: Some("klingon".into()),
                ..Default::default()
            },
            DcatArgs {
                title: Some("  ".into()),
                ..Default::default()
            },
        ] {
            assert!(CatalogSettings::new(bad.clone()).is_err(), "{bad:?}");
        }
    }
}
