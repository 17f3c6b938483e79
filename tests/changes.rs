//! `/collections/{id}/changes`: what an ingest added, changed and removed, chained over
//! versions (metadata edits included), on both stores; 410 for a version no kept change leads
//! from.

mod common;

use common::*;

fn write(dir: &std::path::Path, name: &str, rows: &[(&str, &str, f64)]) -> String {
    let mut text = String::from("kod,namn,lon,lat\n");
    for (kod, namn, lon) in rows {
        text.push_str(&format!("{kod},{namn},{lon},55.6\n"));
    }
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn changes_since_a_version() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = write(
        tmp.path(),
        "a.csv",
        &[("1", "Ett", 13.0), ("2", "Två", 13.1), ("3", "Tre", 13.2)],
    );
    let b = write(
        tmp.path(),
        "b.csv",
        &[
            ("1", "Ett", 13.0),
            ("2", "Två ändrad", 13.1),
            ("4", "Fyra", 13.4),
        ],
    );
    let other = write(tmp.path(), "other.csv", &[("9", "Nio", 14.0)]);
    for store in each_store().await {
        let kind = store.kind;
        let ingest = |file: &str, id: &str, mode: &str| {
            let out = store
                .hamn()
                .args([
                    "ingest",
                    file,
                    "-c",
                    id,
                    "--id-field",
                    "kod",
                    "--mode",
                    mode,
                ])
                .output()
                .expect("run");
            assert!(
                out.status.success(),
                "{kind}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ingest(&a, "platser", "create");
        let v1 = store.entry("platser").await.version;
        ingest(&other, "annat", "create");
        let gap = store.entry("annat").await.version;
        ingest(&b, "platser", "replace");
        let v3 = store.entry("platser").await.version;

        let server = start(&store.args(), &["--refresh-seconds", "1", "--no-demo"]);
        let url =
            |since: &str| format!("{}/collections/platser/changes?since={since}", server.base);
        let (status, doc) = get(&url(&v1.to_string()));
        assert_eq!(status, 200, "{kind}: {doc}");
        assert_eq!(doc["version"], v3);
        assert_eq!(ids(&doc["added"]), ["4"], "{kind}");
        assert_eq!(ids(&doc["updated"]), ["2"], "{kind}");
        assert_eq!(ids(&doc["removed"]), ["3"], "{kind}");
        // Numeric ids are served as JSON numbers.
        let features: Vec<String> = doc["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|f| f["id"].to_string())
            .collect();
        assert_eq!(features, ["4", "2"], "{kind}");
        assert_eq!(doc["features"][1]["properties"]["namn"], "Två ändrad");
        let next = doc["links"][1]["href"].as_str().expect("next");
        assert!(next.ends_with(&format!("since={v3}")), "{next}");

        // From the start: everything there now, as added.
        let (_, doc) = get(&url("0"));
        assert_eq!(ids(&doc["added"]), ["1", "2", "4"], "{kind}");
        assert!(ids(&doc["removed"]).is_empty());
        // Nothing since now.
        let (_, doc) = get(&url(&v3.to_string()));
        assert!(ids(&doc["added"]).is_empty() && ids(&doc["updated"]).is_empty());
        // A version no change leads from, a future one, nonsense.
        let (status, doc) = get(&url(&gap.to_string()));
        assert_eq!(status, 410, "{kind}: {doc}");
        assert!(doc["description"]
            .as_str()
            .is_some_and(|d| d.contains("read the whole collection")));
        assert_eq!(get(&url(&(v3 + 100).to_string())).0, 400);
        assert_eq!(get(&url("igår")).0, 400);
        assert_eq!(
            get(&format!("{}/collections/platser/changes", server.base)).0,
            400
        );

        // A metadata edit is a version with no changed features: chains go on through it.
        let out = store
            .hamn()
            .args(["collections", "edit", "platser", "--title", "Platser"])
            .output()
            .expect("run");
        assert!(out.status.success());
        let v4 = store.entry("platser").await.version;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let doc = loop {
            let (_, doc) = get(&url(&v1.to_string()));
            if doc["version"] == v4 {
                break doc;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{kind}: the edit was not served"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        assert_eq!(ids(&doc["updated"]), ["2"], "{kind}");
        assert_eq!(ids(&doc["added"]), ["4"], "{kind}");
        let (_, doc) = get(&url(&v3.to_string()));
        assert!(ids(&doc["updated"]).is_empty(), "{kind}: {doc}");

        // Since a time: the version current then.
        let record_times = store
            .store
            .list_records(hamn::store::RecordKind::Change)
            .await
            .expect("records");
        assert!(record_times.len() >= 4, "{kind}: {record_times:?}");
        let at_v1 = record_times
            .iter()
            .find(|(k, _)| k.starts_with("platser@") && k.ends_with(&format!("{v1:019}")))
            .map(|(_, d)| d["at"].as_str().expect("at").to_string())
            .expect("v1's record");
        let (_, doc) = get(&url(&at_v1.replace('+', "%2B")));
        assert_eq!(doc["since"], v1, "{kind}: {doc}");
    }
}
