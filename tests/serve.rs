//! `hamn serve` end to end: a fresh embedded store is filled with the demo data on first start
//! and served over HTTP; errors come back as JSON.

mod common;

use common::*;

#[test]
fn first_start_serves_the_demo_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let mut server = start(&args, &[]);
    let manifest = hamn::demo::load_manifest(&repo().join("data")).expect("manifest");
    let (status, doc) = get(&format!("{}/collections", server.base));
    assert_eq!(status, 200);
    let collections = doc["collections"].as_array().expect("collections");
    assert_eq!(
        collections.len(),
        manifest.collection.len(),
        "every demo collection loads"
    );
    let count = |id: &str| {
        collections
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"))["itemCount"]
            .as_u64()
    };
    assert_eq!(count("malmo-miljoparkering"), Some(2261));
    assert_eq!(count("copenhagen-osm-parking"), Some(597));
    for c in collections {
        assert!(c["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            c["extent"]["spatial"]["bbox"][0]
                .as_array()
                .is_some_and(|b| b.len() == 4),
            "{}",
            c["id"]
        );
    }
    for c in collections
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(|s| s.contains("synthetic")))
    {
        assert!(c["title"]
            .as_str()
            .is_some_and(|t| t.to_lowercase().contains("synthetic")));
    }

    let (status, doc) = get(&format!("{}/collections/malmo-miljoparkering", server.base));
    assert_eq!(status, 200);
    assert_eq!(doc["source"]["name"], "malmo_miljoparkering.geojson");
    let (status, doc) = get(&format!("{}/", server.base));
    assert_eq!(status, 200);
    assert!(doc["links"]
        .as_array()
        .is_some_and(|l| l.iter().any(|l| l["rel"] == "data")));

    for bad in [
        "/collections/nope",
        "/collections/Robert%27%3B%20DROP%20TABLE",
        "/collections/%00",
        "/nothing/here",
    ] {
        let (status, doc) = get(&format!("{}{bad}", server.base));
        assert_eq!(status, 404, "{bad}");
        assert_eq!(doc["code"], "NotFound");
        assert!(doc["description"].as_str().is_some());
    }
    let (status, _) = get(&format!("{}/health", server.base));
    assert_eq!(status, 200, "still answering after bad requests");
    assert!(server.child.try_wait().expect("status").is_none());

    // A second start over the same store serves what is there and loads nothing again.
    let versions = |doc: &serde_json::Value| -> Vec<(String, u64)> {
        doc["collections"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or_default().to_string(),
                    c["version"].as_u64().unwrap_or_default(),
                )
            })
            .collect()
    };
    let (_, first) = get(&format!("{}/collections", server.base));
    drop(server);
    let server = start(&args, &[]);
    let (_, second) = get(&format!("{}/collections", server.base));
    assert_eq!(versions(&first), versions(&second));
}

#[tokio::test]
async fn postgis_store_is_served_too() {
    let Some(store) = postgis().await else { return };
    let o = store
        .hamn()
        .args([
            "ingest",
            &data("bathing/harryda_badplatser.csv"),
            "--title",
            "Badplatser",
        ])
        .output()
        .expect("ingest");
    assert!(o.status.success());
    let server = start(&store.args(), &["--no-demo"]);
    let (status, doc) = get(&format!("{}/collections/harryda-badplatser", server.base));
    assert_eq!(status, 200);
    assert_eq!(doc["itemCount"], 9);
    assert_eq!(doc["title"], "Badplatser");
    let (_, health) = get(&format!("{}/health", server.base));
    assert_eq!(health["store"], "postgis");
}
