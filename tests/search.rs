//! Searching `/collections` (q, bbox, theme) against a running `hamn serve` on the demo data:
//! folding and stemming through HTTP, ranking, combinations, the HTML form, and bad values.

mod common;

use common::*;
use serde_json::Value as Json;

fn ids(doc: &Json) -> Vec<String> {
    doc["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The ids `/collections?{query}` answers (200 asserted), and the document.
fn search(base: &str, query: &str) -> (Vec<String>, Json) {
    let url = format!("{base}/collections?{query}");
    let (status, doc) = get(&url);
    assert_eq!(status, 200, "{url}: {doc}");
    (ids(&doc), doc)
}

/// A Skåne box: Malmö and Lund, east of Copenhagen.
const SKANE: &str = "12.8,55.3,14.5,56.0";

#[test]
fn search_collections() {
    let (s, _dir) = demo_server();
    let base = &s.base;

    // No search: every collection, no counts.
    let (all, doc) = search(base, "");
    assert_eq!(all.len(), 9, "{all:?}");
    assert!(doc.get("numberMatched").is_none());
    // Empty values (an HTML form's empty fields) are no filter either.
    let (same, _) = search(base, "q=&bbox=&theme=");
    assert_eq!(same, all);

    // Folding: malmo finds Malmö, all three in their titles, ordered by title.
    let (found, doc) = search(base, "q=malmo");
    assert_eq!(
        found,
        [
            "malmo-miljoparkering",
            "noise-malmo-lund-synthetic",
            "traffic-counts-malmo-lund-synthetic"
        ]
    );
    assert_eq!(doc["numberMatched"], 3);
    assert_eq!(doc["numberReturned"], 3);
    let self_link = doc["links"][0]["href"].as_str().expect("self");
    assert!(self_link.ends_with("/collections?q=malmo"), "{self_link}");
    assert_eq!(search(base, "q=MALM%C3%96").0, found);

    // Stemming: badplats finds Badplatser; the title hit ranks above the keyword hit.
    let (found, _) = search(base, "q=badplats");
    assert_eq!(
        found,
        ["badplatser", "harryda-badplatser", "hav-bathing-waters"]
    );
    assert_eq!(search(base, "q=Badplatserna").0, found);
    // …but a prefix is not a word: badpl finds nothing, and bad only the theme collection
    // that has it as a keyword.
    assert_eq!(search(base, "q=badpl").0, Vec::<String>::new());
    assert_eq!(search(base, "q=bad").0, ["badplatser"]);

    // parkeringar finds the compound miljöparkering.
    let (found, _) = search(base, "q=parkeringar");
    assert_eq!(found, ["malmo-miljoparkering"]);

    // Every word must match; a comma gives alternatives.
    assert_eq!(
        search(base, "q=malmo+buller").0,
        ["noise-malmo-lund-synthetic"]
    );
    assert_eq!(
        sorted(search(base, "q=buller%2Challplatser").0),
        ["noise-malmo-lund-synthetic", "xtrafik-gtfs-stops"]
    );

    // bbox: only the collections whose extent reaches into Skåne (the Sweden-wide bathing
    // waters among them), not Copenhagen, Härryda, Gävleborg or Viborg.
    let (found, doc) = search(base, &format!("bbox={SKANE}"));
    assert_eq!(
        sorted(found),
        [
            "badplatser",
            "hav-bathing-waters",
            "malmo-miljoparkering",
            "noise-malmo-lund-synthetic",
            "traffic-counts-malmo-lund-synthetic"
        ]
    );
    assert_eq!(doc["numberMatched"], 5);
    // A box across the antimeridian is two boxes: this one reaches east only to 11°E, so
    // Viborg (9.4°E) is in and Gävleborg (17°E) out.
    let (found, _) = search(base, "bbox=170,54,11,60");
    assert!(
        !found.contains(&"xtrafik-gtfs-stops".to_string()),
        "{found:?}"
    );
    assert!(
        found.contains(&"viborg-matrikel-jordstykker".to_string()),
        "{found:?}"
    );

    // theme, case ignored.
    assert_eq!(
        sorted(search(base, "theme=Parking").0),
        ["copenhagen-osm-parking", "malmo-miljoparkering"]
    );
    // Combinations.
    assert_eq!(
        search(base, &format!("theme=parking&bbox={SKANE}")).0,
        ["malmo-miljoparkering"]
    );
    assert_eq!(
        search(base, &format!("q=synthetic&theme=noise&bbox={SKANE}")).0,
        ["noise-malmo-lund-synthetic"]
    );

    // No match: an empty list, 200.
    let (found, doc) = search(base, "q=flygplats");
    assert!(found.is_empty());
    assert_eq!(doc["numberMatched"], 0);
    assert_eq!(search(base, "theme=nothing").0, Vec::<String>::new());

    // Bad values: 400 with the JSON error body.
    for bad in [
        "bbox=1,2,3".to_string(),
        "bbox=0,10,1,5".to_string(),
        "bbox=-200,0,1,1".to_string(),
        format!("q={}", "a".repeat(201)),
        format!("q={}", "ord+".repeat(17)),
        "q=x&q=y".to_string(),
        "search=malmo".to_string(),
    ] {
        let (status, doc) = get(&format!("{base}/collections?{bad}"));
        assert_eq!(status, 400, "{bad}");
        assert_eq!(doc["code"], "InvalidParameterValue", "{bad}: {doc}");
    }

    // The conformance class is declared.
    let (_, conf) = get(&format!("{base}/conformance"));
    assert!(conf["conformsTo"]
        .as_array()
        .expect("conformsTo")
        .iter()
        .any(|c| c
            == "http://www.opengis.net/spec/ogcapi-records-1/0.0/conf/local-resources-catalog"));
}

#[test]
fn html_search_form() {
    let (s, _dir) = demo_server();
    let page = |url: &str| {
        let resp = fetch(url);
        assert_eq!(resp.status(), 200, "{url}");
        assert!(resp.content_type().starts_with("text/html"), "{url}");
        resp.into_string().expect("body")
    };
    let landing = page(&format!("{}/?f=html", s.base));
    assert!(
        landing.contains(r#"<form class="search" method="get" action=""#),
        "{landing}"
    );
    assert!(landing.contains(r#"name="q""#));

    let html = page(&format!("{}/collections?f=html&q=badplats&theme=", s.base));
    assert!(html.contains("3 of 9 collections match"), "{html}");
    assert!(html.contains("Badplatser (bathing sites), Härryda kommun"));
    assert!(!html.contains("Miljöparkering (street-cleaning"));
    assert!(html.contains(r#"value="badplats""#));
    assert!(html.contains(r#"<option value="parking">"#));
    assert!(
        html.contains(r#"/collections?q=badplats&amp;theme=&amp;f=json">This search as JSON"#),
        "{html}"
    );

    // Values given back are escaped.
    let html = page(&format!(
        "{}/collections?f=html&q=%3Cscript%3Ex%22%3C%2Fscript%3E",
        s.base
    ));
    assert!(!html.contains("<script>x"), "{html}");
    assert!(
        html.contains("&lt;script&gt;x&quot;&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("No collection matches."));

    let html = page(&format!("{}/collections?f=html&theme=PARKING", s.base));
    assert!(
        html.contains(r#"<option value="parking" selected>"#),
        "{html}"
    );
}
