//! `/datasets/dcat` end to end: `hamn serve` with the demo data and the catalog settings as
//! flags; the document is read back with Oxigraph's parsers (every serialisation gives the same
//! graph) and checked against DCAT-AP-SE's mandatory classes and properties (2.2.0 and 3.0.1,
//! the stricter where they differ) and dataportal.se's harvesting rules (no blank nodes, absolute
//! IRIs, language tags, canonical licence URIs).

mod common;

use std::collections::BTreeSet;

use common::*;
use oxrdf::{Graph, NamedNode, NamedNodeRef, Term, TermRef};
use oxrdfio::{RdfFormat, RdfParser};

const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const DCAT: &str = "http://www.w3.org/ns/dcat#";
const DCT: &str = "http://purl.org/dc/terms/";
const FOAF: &str = "http://xmlns.com/foaf/0.1/";
const VCARD: &str = "http://www.w3.org/2006/vcard/ns#";

const ORGNR: &str = "2120001439";

fn iri(s: &str) -> NamedNode {
    NamedNode::new(s).expect("IRI")
}

fn fetch_as(url: &str, accept: Option<&str>) -> ureq::Response {
    let mut req = ureq::get(url);
    if let Some(a) = accept {
        req = req.set("Accept", a);
    }
    match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    }
}

fn parse(body: &[u8], format: RdfFormat) -> Graph {
    let mut g = Graph::new();
    for t in RdfParser::from_format(format).for_slice(body) {
        let t = t.expect("a valid triple");
        g.insert(&oxrdf::Triple::from(t));
    }
    g
}

/// The catalog at `url` in one serialisation (by `f=` and by Accept, which must agree).
fn graph(url: &str, f: &str, media: &str, format: RdfFormat) -> Graph {
    let resp = fetch(&format!("{url}?f={f}"));
    assert_eq!(resp.status(), 200, "f={f}");
    assert_eq!(resp.content_type(), media, "f={f}");
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut body).expect("body");
    let by_accept = fetch_as(url, Some(media));
    assert_eq!(by_accept.status(), 200);
    assert_eq!(by_accept.content_type(), media);
    let g = parse(&body, format);
    assert!(g.len() > 100, "f={f}: {} triples", g.len());
    g
}

struct Check<'a> {
    g: &'a Graph,
    problems: Vec<String>,
}

impl Check<'_> {
    fn objects(&self, s: &NamedNode, p: &str) -> Vec<Term> {
        self.g
            .objects_for_subject_predicate(s, NamedNodeRef::new_unchecked(p))
            .map(TermRef::into_owned)
            .collect()
    }

    fn of_type(&self, class: &str) -> Vec<NamedNode> {
        self.g
            .subjects_for_predicate_object(
                NamedNodeRef::new_unchecked(RDF_TYPE),
                NamedNodeRef::new_unchecked(class),
            )
            .map(|s| match s {
                oxrdf::NamedOrBlankNodeRef::NamedNode(n) => n.into_owned(),
                oxrdf::NamedOrBlankNodeRef::BlankNode(b) => {
                    panic!("a blank node {b} is a {class}")
                }
            })
            .collect()
    }

    /// `p` of `s` between `min` and `max` times (inclusive).
    fn count(&mut self, s: &NamedNode, p: &str, min: usize, max: usize) -> Vec<Term> {
        let o = self.objects(s, p);
        if o.len() < min || o.len() > max {
            self.problems
                .push(format!("{s} has {} {p} (want {min}..={max})", o.len()));
        }
        o
    }

    /// A text: language-tagged, not empty.
    fn texts(&mut self, s: &NamedNode, p: &str, min: usize) {
        for o in self.count(s, p, min, usize::MAX) {
            match o {
                Term::Literal(l) if l.language().is_some() && !l.value().trim().is_empty() => {}
                other => self
                    .problems
                    .push(format!("{s} {p} {other}: not a language-tagged text")),
            }
        }
    }

    fn named(&mut self, s: &NamedNode, p: &str, min: usize, max: usize) -> Vec<NamedNode> {
        let mut out = Vec::new();
        for o in self.count(s, p, min, max) {
            match o {
                Term::NamedNode(n) => out.push(n),
                other => self.problems.push(format!("{s} {p} {other}: not an IRI")),
            }
        }
        out
    }

    fn typed(&mut self, n: &NamedNode, classes: &[&str]) {
        let types: Vec<Term> = self.objects(n, RDF_TYPE);
        if !classes
            .iter()
            .any(|c| types.contains(&Term::NamedNode(iri(c))))
        {
            self.problems
                .push(format!("{n} is none of {classes:?} (types {types:?})"));
        }
    }
}

fn canonical_licence(l: &NamedNode) -> bool {
    let s = l.as_str();
    if s.contains("creativecommons.org") {
        s.starts_with("http://creativecommons.org/") && s.ends_with('/') && !s.contains("deed")
    } else {
        s.starts_with("http://") || s.starts_with("https://")
    }
}

/// Every DCAT-AP-SE rule the tests know; the problems found.
fn problems(g: &Graph, base: &str, publisher_iri: &str) -> Vec<String> {
    let mut c = Check {
        g,
        problems: Vec::new(),
    };
    // No blank nodes anywhere; every IRI absolute http(s) (or mailto for e-mail).
    for t in g.iter() {
        for term in [t.subject.into(), t.object] {
            match term {
                TermRef::BlankNode(b) => c.problems.push(format!("blank node {b}")),
                TermRef::NamedNode(n) => {
                    let s = n.as_str();
                    if !(s.starts_with("http://")
                        || s.starts_with("https://")
                        || s.starts_with("mailto:"))
                    {
                        c.problems.push(format!("IRI {s} is not absolute http(s)"));
                    }
                }
                _ => {}
            }
        }
    }
    // Whatever something conforms to is a dcterms:Standard (DCAT-AP-SE's forms choose
    // conformsTo values by that type).
    for t in g.triples_for_predicate(NamedNodeRef::new_unchecked(&format!("{DCT}conformsTo"))) {
        if let TermRef::NamedNode(n) = t.object {
            c.typed(&n.into_owned(), &[&format!("{DCT}Standard")]);
        }
    }
    let catalogs = c.of_type(&format!("{DCAT}Catalog"));
    assert_eq!(catalogs.len(), 1, "one catalog");
    let catalog = &catalogs[0];
    assert_eq!(catalog.as_str(), format!("{base}/datasets/dcat#catalog"));
    c.texts(catalog, &format!("{DCT}title"), 1);
    c.texts(catalog, &format!("{DCT}description"), 1);
    let publishers = c.named(catalog, &format!("{DCT}publisher"), 1, 1);
    assert_eq!(
        publishers.first().map(NamedNode::as_str),
        Some(publisher_iri)
    );
    for l in c.named(catalog, &format!("{DCT}license"), 1, 1) {
        assert!(canonical_licence(&l), "catalog licence {l}");
    }
    let datasets = c.named(catalog, &format!("{DCAT}dataset"), 1, usize::MAX);
    let all_datasets = c.of_type(&format!("{DCAT}Dataset"));
    assert_eq!(
        datasets.iter().collect::<BTreeSet<_>>(),
        all_datasets.iter().collect::<BTreeSet<_>>(),
        "the catalog lists every dataset"
    );

    // The API.
    let services = c.of_type(&format!("{DCAT}DataService"));
    assert_eq!(services.len(), 1, "one data service");
    let service = &services[0];
    c.texts(service, &format!("{DCT}title"), 1);
    let endpoints = c.named(service, &format!("{DCAT}endpointURL"), 1, usize::MAX);
    assert_eq!(endpoints, [iri(&format!("{base}/"))]);
    assert_eq!(
        c.named(service, &format!("{DCAT}endpointDescription"), 1, 1),
        [iri(&format!("{base}/api"))]
    );
    c.count(service, &format!("{DCT}format"), 1, 1); // mandatory in 3.0.1
    assert_eq!(
        c.named(service, &format!("{DCT}type"), 1, 1),
        [iri("http://www.wikidata.org/entity/Q749568")]
    );
    let conforms: BTreeSet<String> = c
        .named(service, &format!("{DCT}conformsTo"), 1, usize::MAX)
        .into_iter()
        .map(|n| n.into_string())
        .collect();
    let (_, declared) = get(&format!("{base}/conformance"));
    for uri in declared["conformsTo"].as_array().expect("conformsTo") {
        let uri = uri.as_str().expect("a string");
        assert!(conforms.contains(uri), "the service conforms to {uri}");
    }
    let served: BTreeSet<NamedNode> = c
        .named(service, &format!("{DCAT}servesDataset"), 1, usize::MAX)
        .into_iter()
        .collect();
    assert_eq!(served, all_datasets.iter().cloned().collect());

    // Datasets and their distributions.
    let mut agents = BTreeSet::new();
    let mut contacts = BTreeSet::new();
    for d in &datasets {
        c.texts(d, &format!("{DCT}title"), 1);
        c.texts(d, &format!("{DCT}description"), 1);
        c.texts(d, &format!("{DCAT}keyword"), 1);
        agents.extend(c.named(d, &format!("{DCT}publisher"), 1, 1));
        contacts.extend(c.named(d, &format!("{DCAT}contactPoint"), 1, usize::MAX));
        for theme in c.named(d, &format!("{DCAT}theme"), 0, usize::MAX) {
            assert!(
                theme
                    .as_str()
                    .starts_with("http://publications.europa.eu/resource/authority/data-theme/"),
                "{theme}"
            );
        }
        for place in c.named(d, &format!("{DCT}spatial"), 0, usize::MAX) {
            for bbox in c.count(&place, &format!("{DCAT}bbox"), 1, 1) {
                match bbox {
                    Term::Literal(l) => {
                        assert_eq!(
                            l.datatype().as_str(),
                            "http://www.opengis.net/ont/geosparql#wktLiteral"
                        );
                        assert!(l.value().starts_with("POLYGON(("), "{}", l.value());
                    }
                    other => panic!("bbox {other}"),
                }
            }
        }
        let distributions = c.named(d, &format!("{DCAT}distribution"), 1, usize::MAX);
        for dist in &distributions {
            c.typed(dist, &[&format!("{DCAT}Distribution")]);
            let access = c.named(dist, &format!("{DCAT}accessURL"), 1, 1);
            for a in &access {
                assert_eq!(fetch(a.as_str()).status(), 200, "{a} answers");
            }
            for f in c.count(dist, &format!("{DCT}format"), 1, 1) {
                assert!(
                    matches!(&f, Term::Literal(l) if l.value().contains('/')),
                    "{dist} format {f}: an IANA media type"
                );
            }
            assert_eq!(
                c.named(dist, &format!("{DCAT}accessService"), 1, 1),
                std::slice::from_ref(service)
            );
            assert_eq!(
                c.named(dist, &format!("{DCT}conformsTo"), 1, 1),
                [iri(&format!("{base}/api"))]
            );
            for l in c.named(dist, &format!("{DCT}license"), 0, 1) {
                assert!(canonical_licence(&l), "{dist} licence {l}");
            }
            // A bulk download: downloadURL is its accessURL, its size the file's.
            for u in c.named(dist, &format!("{DCAT}downloadURL"), 0, 1) {
                assert_eq!(std::slice::from_ref(&u), access.as_slice());
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut fetch(u.as_str()).into_reader(), &mut bytes)
                    .expect("the file");
                for n in c.count(dist, &format!("{DCAT}byteSize"), 1, 1) {
                    match &n {
                        Term::Literal(l) => {
                            assert_eq!(
                                l.datatype().as_str(),
                                "http://www.w3.org/2001/XMLSchema#nonNegativeInteger"
                            );
                            assert_eq!(l.value(), bytes.len().to_string(), "{dist}");
                        }
                        other => panic!("byteSize {other}"),
                    }
                }
            }
        }
        let formats: BTreeSet<String> = distributions
            .iter()
            .flat_map(|dist| c.objects(dist, &format!("{DCT}format")))
            .filter_map(|t| match t {
                Term::Literal(l) => Some(l.value().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            formats,
            BTreeSet::from([
                "application/geo+json".to_string(),
                "application/vnd.mapbox-vector-tile".to_string(),
                "application/flatgeobuf".to_string(),
                "application/geopackage+sqlite3".to_string(),
            ])
        );
    }

    // Publishers (3.0.1: a type is mandatory) and contact points.
    agents.extend(publishers);
    for a in &agents {
        c.typed(
            a,
            &[&format!("{FOAF}Agent"), &format!("{FOAF}Organization")],
        );
        c.texts(a, &format!("{FOAF}name"), 1);
        for t in c.named(a, &format!("{DCT}type"), 1, 1) {
            assert!(
                t.as_str()
                    .starts_with("http://purl.org/adms/publishertype/"),
                "{t}"
            );
        }
    }
    assert_eq!(contacts.len(), 1, "one contact point");
    for k in &contacts {
        c.typed(
            k,
            &[
                &format!("{VCARD}Organization"),
                &format!("{VCARD}Individual"),
                &format!("{VCARD}Kind"),
            ],
        );
        c.texts(k, &format!("{VCARD}fn"), 1);
        for e in c.named(k, &format!("{VCARD}hasEmail"), 1, usize::MAX) {
            assert!(e.as_str().starts_with("mailto:"), "{e}");
        }
    }
    c.problems
}

fn super_problems(g: &Graph, base: &str) -> Vec<String> {
    problems(
        g,
        base,
        &format!("http://dataportal.se/organisation/SE{ORGNR}"),
    )
}

#[test]
fn the_catalog_meets_dcat_ap_se_in_every_serialisation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        &["--data-dir".to_string(), dir.path().display().to_string()],
        &[
            "--dcat-publisher",
            "Härryda kommun",
            "--dcat-publisher-orgnr",
            "212000-1439",
            "--dcat-contact-email",
            "geodata@harryda.se",
            "--dcat-title-en",
            "Open geodata from Härryda",
        ],
    );
    let base = &server.base;
    let url = format!("{base}/datasets/dcat");
    // The bulk downloads are built in the background: wait for them, so that the catalog
    // gives every file's byteSize.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, all) = get(&format!("{base}/collections"));
        let pending = all["collections"]
            .as_array()
            .expect("collections")
            .iter()
            .flat_map(|c| c["links"].as_array().cloned().unwrap_or_default())
            .filter(|l| l["rel"] == "enclosure" && !l["length"].is_u64())
            .count();
        if pending == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "downloads not built");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // The default is RDF/XML (what the harvester reads), for no Accept and for */*.
    for accept in [
        None,
        Some("*/*"),
        Some("text/html,application/xml;q=0.9,*/*;q=0.8"),
    ] {
        let r = fetch_as(&url, accept);
        assert_eq!(r.status(), 200);
        assert_eq!(r.content_type(), "application/rdf+xml", "{accept:?}");
    }
    let rdf = graph(&url, "rdf", "application/rdf+xml", RdfFormat::RdfXml);
    let ttl = graph(&url, "ttl", "text/turtle", RdfFormat::Turtle);
    let jsonld = graph(
        &url,
        "jsonld",
        "application/ld+json",
        RdfFormat::JsonLd {
            profile: oxrdfio::JsonLdProfileSet::empty(),
        },
    );
    let nt = graph(&url, "nt", "application/n-triples", RdfFormat::NTriples);
    assert_eq!(rdf, ttl, "RDF/XML and Turtle give the same graph");
    assert_eq!(rdf, jsonld, "RDF/XML and JSON-LD give the same graph");
    assert_eq!(rdf, nt, "RDF/XML and N-Triples give the same graph");

    let problems = problems(
        &rdf,
        base,
        &format!("http://dataportal.se/organisation/SE{ORGNR}"),
    );
    assert!(problems.is_empty(), "{problems:#?}");
    // The checks find what is missing: a dataset without a title, a blank node.
    let dataset = iri(&format!("{base}/collections/harryda-badplatser"));
    let mut broken = rdf.clone();
    let titles: Vec<oxrdf::Triple> = broken
        .triples_for_subject(&dataset)
        .filter(|t| t.predicate.as_str() == format!("{DCT}title"))
        .map(|t| t.into_owned())
        .collect();
    assert!(!titles.is_empty());
    for t in &titles {
        broken.remove(t);
    }
    broken.insert(&oxrdf::Triple::new(
        dataset.clone(),
        iri(&format!("{DCAT}qualifiedRelation")),
        oxrdf::BlankNode::default(),
    ));
    let found = super_problems(&broken, base);
    assert!(
        found.iter().any(|p| p.contains("title")) && found.iter().any(|p| p.contains("blank")),
        "{found:#?}"
    );

    // One dataset per collection, at the collection's URL.
    let (_, collections) = get(&format!("{base}/collections"));
    let ids: Vec<&str> = collections["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    let datasets: BTreeSet<String> = rdf
        .subjects_for_predicate_object(
            NamedNodeRef::new_unchecked(RDF_TYPE),
            NamedNodeRef::new_unchecked("http://www.w3.org/ns/dcat#Dataset"),
        )
        .map(|s| s.to_string().trim_matches(['<', '>']).to_string())
        .collect();
    assert_eq!(
        datasets,
        ids.iter()
            .map(|id| format!("{base}/collections/{id}"))
            .collect::<BTreeSet<_>>()
    );
    // Known words become EU data themes; SPDX ids canonical licence URIs; the English title.
    let ttl_text = fetch(&format!("{url}?f=ttl")).into_string().expect("text");
    for want in [
        "data-theme/TRAN>",
        "data-theme/ENVI>",
        "<http://creativecommons.org/publicdomain/zero/1.0/>",
        "\"Open geodata from Härryda\"@en",
        "\"Härryda kommun\"@sv",
        "a dcterms:PeriodOfTime",
        "dcat:startDate \"",
        // A collection's texts in its own language (the demo's are English), its dct:language;
        // a theme collection's title in Swedish and, from the theme, English.
        "\"Badplatser (bathing sites), Härryda kommun\"@en",
        "\"Badplatser\"@sv",
        "\"Bathing sites\"@en",
        "language/ENG>",
        "language/SWE>",
    ] {
        assert!(ttl_text.contains(want), "{want} in the Turtle");
    }
    assert!(
        !ttl_text.contains("\"Badplatser (bathing sites), Härryda kommun\"@sv"),
        "an English title tagged Swedish"
    );

    // ETag per representation; 304 on a match.
    let first = fetch(&url);
    let etag = first.header("etag").expect("ETag").to_string();
    let again = ureq::get(&url)
        .set("If-None-Match", &etag)
        .call()
        .expect("304 is not an error");
    assert_eq!(again.status(), 304);
    let ttl_etag = fetch(&format!("{url}?f=ttl"))
        .header("etag")
        .expect("ETag")
        .to_string();
    assert_ne!(etag, ttl_etag);
    // CORS for the portal's browser.
    let cors = ureq::get(&url)
        .set("Origin", "https://www.dataportal.se")
        .call()
        .expect("CORS GET");
    assert!(cors.header("access-control-allow-origin").is_some());

    // Strict parameters and negotiation.
    assert_eq!(fetch(&format!("{url}?f=xlsx")).status(), 400);
    assert_eq!(fetch(&format!("{url}?format=ttl")).status(), 400);
    let r = fetch_as(&url, Some("image/png"));
    assert_eq!(r.status(), 406);
    assert!(r.content_type().contains("json"));

    // The landing page links to it.
    let (_, landing) = get(&format!("{base}/"));
    assert!(
        landing["links"]
            .as_array()
            .expect("links")
            .iter()
            .any(|l| l["href"] == url.as_str() && l["rel"] == "describedby"),
        "{landing}"
    );
}

#[test]
fn without_a_publisher_the_catalog_says_it_is_incomplete() {
    let (server, _dir) = demo_server();
    let url = format!("{}/datasets/dcat", server.base);
    let r = fetch(&format!("{url}?f=ttl"));
    assert_eq!(r.status(), 200);
    let body = r.into_string().expect("text");
    let g = parse(body.as_bytes(), RdfFormat::Turtle);
    let catalog = iri(&format!("{url}#catalog"));
    let description: Vec<String> = g
        .objects_for_subject_predicate(
            &catalog,
            NamedNodeRef::new_unchecked(&format!("{DCT}description")),
        )
        .map(|t| t.to_string())
        .collect();
    assert!(
        description
            .iter()
            .any(|d| d.contains("Ofullständig") && d.contains("--dcat-publisher")),
        "{description:?}"
    );
}

#[test]
fn bad_catalog_settings_stop_the_server_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (flag, value, says) in [
        ("--dcat-publisher-orgnr", "12345", "10 digits"),
        ("--dcat-contact-email", "geodata at harryda.se", "e-mail"),
        ("--dcat-publisher-type", "LocalAuthority", "http(s) URI"),
        ("--dcat-licence", "fri användning", "SPDX"),
    ] {
        let out = hamn_cmd()
            .args(["--data-dir", &dir.path().display().to_string()])
            .args(["serve", "--bind", "127.0.0.1:0", "--no-admin", flag, value])
            .output()
            .expect("run hamn serve");
        assert!(!out.status.success(), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains(says),
            "{flag} {value}: {stderr}"
        );
    }
}
