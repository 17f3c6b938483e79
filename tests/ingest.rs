//! Ingest against both stores: every format, counts and values, reprojection accuracy,
//! append/replace/unchanged, and atomicity when an ingest fails.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use hamn::ingest::{IngestError, IngestOptions, Outcome};
use hamn::store::{IngestMode, StoreError};

fn opts(path: String, id: &str) -> IngestOptions {
    IngestOptions {
        collection: Some(common::id(id)),
        ..IngestOptions::new(path)
    }
}

struct Case {
    id: &'static str,
    path: String,
    count: u64,
    tweak: fn(&mut IngestOptions),
    /// An attribute and a value some feature must have.
    value: (&'static str, serde_json::Value),
}

fn cases() -> Vec<Case> {
    use serde_json::json;
    fn none(_: &mut IngestOptions) {}
    vec![
        Case {
            id: "geojson-bare-array",
            path: data("parking/malmo_miljoparkering.geojson"),
            count: 2261,
            tweak: none,
            value: (
                "copy_value",
                json!("Parkering  förbjuden klockan 08.00 - 12.00  den 9:e i månaden."),
            ),
        },
        Case {
            id: "geojson-mixed",
            path: data("parking/copenhagen_osm_parking_areas.geojson"),
            count: 597,
            tweak: none,
            value: ("name", json!("Det Grønne P-hus")),
        },
        Case {
            id: "csv-bom",
            path: data("bathing/harryda_badplatser.csv"),
            count: 9,
            tweak: none,
            value: ("name", json!("Frökens udde")),
        },
        Case {
            id: "csv-gtfs-txt",
            path: data("transit/xtrafik_gtfs_stops.txt"),
            count: 6562,
            tweak: |o| o.id_field = Some("stop_id".into()),
            value: ("stop_name", json!("Harmånger torget")),
        },
        Case {
            id: "gml",
            path: data("properties/viborg_matrikel_jordstykker.gml"),
            count: 24,
            tweak: none,
            value: ("ejerlavsnavn", json!("Viborg Markjorder")),
        },
        Case {
            id: "gpkg-3008",
            path: fixture("malmo_miljoparkering_sweref99_1330.gpkg"),
            count: 2261,
            tweak: none,
            value: ("day", json!("7")),
        },
        Case {
            id: "shp-zip-3006",
            path: fixture("hav_active_bathing_waters_sweref99tm.zip"),
            count: 2684,
            tweak: none,
            value: ("KMN_NAMN", json!("Landskrona")),
        },
        Case {
            id: "kml",
            path: fixture("traffic_counts.kml"),
            count: 150,
            tweak: none,
            value: ("vag", json!("Inre Ringvägen")),
        },
        Case {
            id: "flatgeobuf",
            path: fixture("traffic_counts.fgb"),
            count: 150,
            tweak: none,
            value: ("matpunkt_id", json!("MLM-0001")),
        },
        Case {
            id: "csv-excel-3008",
            path: fixture("swedish_excel_3008.csv"),
            count: 8,
            tweak: |o| o.read.source_crs = Some("EPSG:3008".into()),
            value: ("Väg", json!("Inre Ringvägen")),
        },
        Case {
            id: "csv-wkt-3006",
            path: fixture("wkt_3006.csv"),
            count: 8,
            tweak: |o| o.read.source_crs = Some("EPSG:3006".into()),
            value: ("namn", json!("Inre Ringvägen")),
        },
    ]
}

#[tokio::test]
async fn every_format_is_read_with_its_counts_and_values() {
    for store in each_store().await {
        for case in cases() {
            let mut o = opts(case.path.clone(), case.id);
            (case.tweak)(&mut o);
            let reports = store
                .ingest(&o)
                .await
                .unwrap_or_else(|e| panic!("{} {}: {e}", store.kind, case.id));
            assert_eq!(reports.len(), 1);
            assert_eq!(reports[0].stored, case.count, "{} {}", store.kind, case.id);
            let entry = store
                .store
                .get(&id(case.id))
                .await
                .expect("get")
                .expect("entry");
            assert_eq!(entry.feature_count, case.count);
            let features = store.features(case.id).await;
            assert_eq!(
                features.len() as u64,
                case.count,
                "{} {}",
                store.kind,
                case.id
            );
            let (name, want) = &case.value;
            assert!(
                features
                    .iter()
                    .any(|f| &attr(&entry.attributes, f, name) == want),
                "{} {}: no feature with {name} = {want}",
                store.kind,
                case.id
            );
            let ids: HashSet<&str> = features.iter().map(|f| f.id.as_str()).collect();
            assert_eq!(ids.len() as u64, case.count, "feature ids must be unique");
            let extent = entry.extent.expect("extent").0;
            assert!(
                extent[0] >= -180.0
                    && extent[2] <= 180.0
                    && extent[1] >= -90.0
                    && extent[3] <= 90.0
            );
        }
    }
}

#[tokio::test]
async fn catalog_records_source_schema_and_extents() {
    for store in each_store().await {
        let mut o = opts(
            data("synthetic/traffic_counts_malmo_lund_synthetic.geojson"),
            "traffic",
        );
        o.id_field = Some("matpunkt_id".into());
        o.meta.publisher = Some("Malmö stad".into());
        o.meta.keywords = vec!["trafik".into(), "ÅDT".into()];
        store.ingest(&o).await.expect("ingest");
        let e = store.entry("traffic").await;
        assert_eq!(e.source.name, "traffic_counts_malmo_lund_synthetic.geojson");
        assert_eq!(e.source.sha256.len(), 64);
        assert_eq!(e.source.crs, "EPSG:4326");
        assert_eq!(e.meta.publisher.as_deref(), Some("Malmö stad"));
        assert_eq!(e.meta.keywords, ["trafik", "ÅDT"]);
        // The one date attribute is picked up for the temporal extent.
        assert_eq!(e.datetime_field.as_deref(), Some("matdatum"));
        let [t0, t1] = e.temporal_extent.expect("temporal extent");
        assert_eq!(t0.format("%F").to_string(), "2023-01-04");
        assert_eq!(t1.format("%F").to_string(), "2024-12-27");
        assert_eq!(e.geometry_types, ["Point"]);
        let f = store.features("traffic").await;
        assert!(f.iter().any(|f| f.id == "MLM-0001"));
        let adt = e.attributes.iter().find(|a| a.name == "adt").expect("adt");
        assert_eq!(adt.kind, hamn::catalog::AttrType::Integer);
        assert!(e.version > 0);
    }
}

/// Points read from a file in a Swedish CRS must land where the WGS 84 original has them,
/// to the centimetre.
#[tokio::test]
async fn reprojection_from_sweref_is_exact_to_a_centimetre() {
    let control: HashMap<String, (f64, f64)> = serde_json::from_str::<HashMap<String, [f64; 2]>>(
        &std::fs::read_to_string(fixture("control_points.json")).expect("control points"),
    )
    .expect("json")
    .into_iter()
    .map(|(k, v)| (k, (v[0], v[1])))
    .collect();
    for store in each_store().await {
        // EPSG:3008 written surveyor-style (X = northing), decimal commas, Windows-1252.
        let mut o = opts(fixture("swedish_excel_3008.csv"), "excel");
        o.read.source_crs = Some("EPSG:3008".into());
        let r = store.ingest(&o).await.expect("ingest");
        assert!(
            r[0].warnings.iter().any(|w| w.contains("swapped")),
            "{:?}",
            r[0].warnings
        );
        let mut o = opts(fixture("wkt_3006.csv"), "wkt");
        o.read.source_crs = Some("EPSG:3006".into());
        store.ingest(&o).await.expect("ingest");
        for (coll, id_attr) in [("excel", "Mätpunkt"), ("wkt", "id")] {
            let entry = store.entry(coll).await;
            for f in store.features(coll).await {
                let key = attr(&entry.attributes, &f, id_attr);
                let want = control[key.as_str().expect("id")];
                let got = vertices(f.geometry.as_deref().expect("geometry"))[0];
                assert!(
                    metres(got, want) < 0.01,
                    "{coll} {key}: {got:?} vs {want:?}"
                );
            }
        }

        // Every vertex of Malmö's lines in EPSG:3008 against the WGS 84 original.
        store
            .ingest(&opts(
                fixture("malmo_miljoparkering_sweref99_1330.gpkg"),
                "m3008",
            ))
            .await
            .expect("ingest");
        store
            .ingest(&opts(data("parking/malmo_miljoparkering.geojson"), "m4326"))
            .await
            .expect("ingest");
        let a = store.features("m3008").await;
        let b = store.features("m4326").await;
        assert_eq!(a.len(), b.len());
        let mut worst: f64 = 0.0;
        for (fa, fb) in a.iter().zip(&b) {
            let (va, vb) = (
                vertices(fa.geometry.as_deref().expect("g")),
                vertices(fb.geometry.as_deref().expect("g")),
            );
            assert_eq!(va.len(), vb.len());
            for (p, q) in va.iter().zip(&vb) {
                worst = worst.max(metres(*p, *q));
            }
        }
        // The GeoJSON original has 6 decimals (about 6 cm); the round trip must not add to that.
        assert!(
            worst < 0.07,
            "{}: worst vertex off by {worst} m",
            store.kind
        );
    }
}

#[tokio::test]
async fn unchanged_source_is_skipped_unless_forced() {
    for store in each_store().await {
        let path = data("bathing/harryda_badplatser.csv");
        let first = store
            .ingest(&opts(path.clone(), "bad"))
            .await
            .expect("ingest");
        let mut again = opts(path.clone(), "bad");
        again.mode = IngestMode::Replace;
        let second = store.ingest(&again).await.expect("ingest");
        assert_eq!(second[0].outcome, Outcome::Unchanged);
        assert_eq!(second[0].version, first[0].version);
        again.force = true;
        let third = store.ingest(&again).await.expect("ingest");
        assert_eq!(third[0].outcome, Outcome::Stored);
        assert!(third[0].version > first[0].version);
    }
}

#[tokio::test]
async fn append_adds_features_and_merges_schemas() {
    for store in each_store().await {
        store
            .ingest(
                &opts(fixture("wkt_3006.csv"), "app")
                    .tap(|o| o.read.source_crs = Some("EPSG:3006".into())),
            )
            .await
            .expect("ingest");
        let before = store.features("app").await;
        let mut o = opts(data("bathing/harryda_badplatser.csv"), "app");
        o.mode = IngestMode::Append;
        let r = store.ingest(&o).await.expect("append");
        assert_eq!(r[0].feature_count, 8 + 9);
        let after = store.features("app").await;
        assert_eq!(after.len(), 17);
        for (a, b) in after.iter().zip(&before) {
            assert_eq!(
                (a.fid, &a.id, &a.geometry),
                (b.fid, &b.id, &b.geometry),
                "{}",
                store.kind
            );
            assert_eq!(
                &a.values[..b.values.len()],
                &b.values[..],
                "{}: existing values kept",
                store.kind
            );
            assert!(a.values[b.values.len()..]
                .iter()
                .all(|v| *v == hamn::store::Value::Null));
        }
        let fids: Vec<i64> = after.iter().map(|f| f.fid).collect();
        assert_eq!(fids, (1..=17).collect::<Vec<_>>());
        let ids: HashSet<&str> = after.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids.len(), 17);
        let e = store.entry("app").await;
        assert!(
            e.attributes.iter().any(|a| a.name == "namn")
                && e.attributes.iter().any(|a| a.name == "name")
        );

        // A type conflict is refused and changes nothing.
        let dir = tempfile::tempdir().expect("tempdir");
        let clash = dir.path().join("clash.csv");
        std::fs::write(&clash, "namn,lon,lat\n5,13.0,55.6\n").expect("write");
        let mut o2 = opts(clash.display().to_string(), "app");
        o2.mode = IngestMode::Append;
        let err = store.ingest(&o2).await.expect_err("type clash");
        assert!(
            matches!(err, IngestError::Store(StoreError::Incompatible(_))),
            "{err}"
        );
        assert_eq!(store.features("app").await, after);
    }
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}
impl Tap for IngestOptions {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[tokio::test]
async fn a_failing_replace_leaves_the_previous_version_intact() {
    for store in each_store().await {
        let mut o = opts(
            data("synthetic/traffic_counts_malmo_lund_synthetic.geojson"),
            "tc",
        );
        o.id_field = Some("matpunkt_id".into());
        store.ingest(&o).await.expect("ingest");
        let entry = store.entry("tc").await;
        let features = store.features("tc").await;

        // Duplicate ids: discovered only after every row was loaded.
        let dir = tempfile::tempdir().expect("tempdir");
        let dup = dir.path().join("dup.csv");
        std::fs::write(
            &dup,
            "matpunkt_id,lon,lat\nA,13.0,55.6\nB,13.1,55.6\nA,13.2,55.6\n",
        )
        .expect("write");
        let mut bad = opts(dup.display().to_string(), "tc");
        bad.mode = IngestMode::Replace;
        bad.id_field = Some("matpunkt_id".into());
        let err = store.ingest(&bad).await.expect_err("duplicate ids");
        assert!(
            matches!(err, IngestError::Store(StoreError::DuplicateId(ref v)) if v == "A"),
            "{err}"
        );

        // A Shapefile cut off halfway: GDAL fails at feature 1341 of 2684.
        let shp_dir = tempfile::tempdir().expect("tempdir");
        let zip =
            std::fs::File::open(fixture("hav_active_bathing_waters_sweref99tm.zip")).expect("zip");
        zip::ZipArchive::new(zip)
            .expect("zip")
            .extract(shp_dir.path())
            .expect("unzip");
        let shp = shp_dir
            .path()
            .join("hav_active_bathing_waters_sweref99tm.shp");
        let bytes = std::fs::read(&shp).expect("read");
        std::fs::write(&shp, &bytes[..bytes.len() / 2]).expect("truncate");
        let mut bad = opts(shp.display().to_string(), "tc");
        bad.mode = IngestMode::Replace;
        let err = store.ingest(&bad).await.expect_err("corrupt");
        assert!(
            matches!(err, IngestError::CorruptSource { row: 1341, .. }),
            "{err}"
        );

        assert_eq!(
            store.store.get(&id("tc")).await.expect("get"),
            Some(entry.clone()),
            "{}",
            store.kind
        );
        assert_eq!(store.features("tc").await, features);
        if store.kind == "postgis" {
            assert_eq!(
                data_tables(&store).await,
                1,
                "no half-loaded table left behind"
            );
        }
    }
}

#[tokio::test]
async fn concurrent_replaces_of_one_collection_each_commit_whole() {
    for store in each_store().await {
        store
            .ingest(&opts(data("bathing/harryda_badplatser.csv"), "race"))
            .await
            .expect("ingest");
        let a = {
            let mut o = opts(
                data("synthetic/traffic_counts_malmo_lund_synthetic.geojson"),
                "race",
            );
            o.mode = IngestMode::Replace;
            o
        };
        let b = {
            let mut o = opts(data("parking/copenhagen_osm_parking_areas.geojson"), "race");
            o.mode = IngestMode::Replace;
            o
        };
        let (ra, rb) = tokio::join!(store.ingest(&a), store.ingest(&b));
        ra.expect("first");
        rb.expect("second");
        let e = store.entry("race").await;
        let n = store.features("race").await.len() as u64;
        assert!(n == 150 || n == 597, "{n}");
        assert_eq!(e.feature_count, n);
        if store.kind == "postgis" {
            assert_eq!(data_tables(&store).await, 1);
        }
    }
}

#[tokio::test]
async fn features_without_geometry_and_messy_values_are_kept() {
    for store in each_store().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("messy.geojson");
        std::fs::write(
            &p,
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","properties":{"namn":"Ystad","n":1},"geometry":null},
              {"type":"Feature","properties":{"namn":"Åhus"},"geometry":{"type":"Point","coordinates":[14.29,55.92]}},
              {"type":"Feature","properties":{"n":3},"geometry":{"type":"Polygon","coordinates":[[[13,55],[13.1,55.1],[13.1,55],[13,55.1],[13,55]]]}}
            ]}"#,
        )
        .expect("write");
        let r = store
            .ingest(&opts(p.display().to_string(), "messy"))
            .await
            .expect("ingest");
        assert_eq!(r[0].stored, 3);
        // The bow-tie polygon is repaired, and the report says which feature.
        assert_eq!(r[0].repaired.len(), 1);
        assert_eq!(r[0].repaired[0].0, 3);
        assert!(r[0].warnings.iter().any(|w| w.contains("no geometry")));
        let e = store.entry("messy").await;
        let f = store.features("messy").await;
        assert!(f[0].geometry.is_none());
        // A property a feature does not have is null, not 0 or "".
        assert_eq!(attr(&e.attributes, &f[1], "n"), serde_json::Value::Null);
        assert_eq!(attr(&e.attributes, &f[2], "namn"), serde_json::Value::Null);
        assert_eq!(attr(&e.attributes, &f[1], "namn"), "Åhus");
    }
}

#[tokio::test]
async fn multi_layer_sources_become_one_collection_per_layer() {
    for store in each_store().await {
        let all = store
            .ingest(&IngestOptions::new(fixture("multi_layer.gpkg")))
            .await
            .expect("ingest");
        let ids: Vec<String> = all.iter().map(|r| r.collection.to_string()).collect();
        assert_eq!(ids, ["multi-layer-matpunkter", "multi-layer-badplatser"]);
        assert_eq!(store.features("multi-layer-matpunkter").await.len(), 150);
        assert_eq!(store.features("multi-layer-badplatser").await.len(), 9);
        let mut one = opts(fixture("multi_layer.gpkg"), "bara-bad");
        one.layer = Some("badplatser".into());
        let r = store.ingest(&one).await.expect("one layer");
        assert_eq!(r.len(), 1);
        let e = store.entry("bara-bad").await;
        assert_eq!(e.source.layer, "badplatser");
        assert_eq!(e.feature_count, 9);
    }
}

#[tokio::test]
async fn latin1_shapefile_without_cpg_is_read_right() {
    for store in each_store().await {
        let r = store
            .ingest(&opts(fixture("latin1_no_cpg.zip"), "latin1"))
            .await
            .expect("ingest");
        assert!(
            r[0].warnings.iter().any(|w| w.contains("not UTF-8")),
            "{:?}",
            r[0].warnings
        );
        let e = store.entry("latin1").await;
        let f = store.features("latin1").await;
        assert!(
            f.iter()
                .any(|f| attr(&e.attributes, f, "vag") == "Inre Ringvägen"),
            "{}",
            store.kind
        );
        // Saying the encoding explicitly gives the same text and no guess.
        let mut o = opts(fixture("latin1_no_cpg.zip"), "latin1-explicit");
        o.encoding = Some("ISO-8859-1".into());
        let r = store.ingest(&o).await.expect("ingest");
        assert!(!r[0].warnings.iter().any(|w| w.contains("not UTF-8")));
        let f2 = store.features("latin1-explicit").await;
        assert_eq!(
            f.iter().map(|f| &f.values).collect::<Vec<_>>(),
            f2.iter().map(|f| &f.values).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn rows_that_cannot_be_placed_are_rejected_and_listed() {
    for store in each_store().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("punkter.csv");
        // Row 2 has a longitude out of range; row 4 has only one coordinate.
        std::fs::write(
            &p,
            "namn,lon,lat\nLund,13.19,55.70\nFel,513.0,55.7\nMalmö,13.0,55.6\nHalv,13.1,\n",
        )
        .expect("write");
        let r = store
            .ingest(&opts(p.display().to_string(), "punkter"))
            .await
            .expect("ingest");
        assert_eq!((r[0].read, r[0].stored), (4, 2));
        let rows: Vec<u64> = r[0].rejected.iter().map(|(n, _)| *n).collect();
        assert_eq!(rows, [2, 4]);
        assert!(r[0].rejected[0].1.contains("outside WGS 84"));
        let text = r[0].to_string();
        assert!(
            text.contains("rejected feature 2") && text.contains("rejected feature 4"),
            "{text}"
        );
        assert_eq!(store.features("punkter").await.len(), 2);
    }
}

#[tokio::test]
async fn datetime_field_is_checked() {
    let store = embedded();
    let mut o = opts(
        data("synthetic/traffic_counts_malmo_lund_synthetic.geojson"),
        "t",
    );
    o.datetime_field = Some("vag".into());
    let err = store.ingest(&o).await.expect_err("not a date");
    assert!(err.to_string().contains("not a date"), "{err}");
    o.datetime_field = Some("matdatum".into());
    store.ingest(&o).await.expect("ingest");
    let e = store.entry("t").await;
    assert_eq!(e.datetime_field.as_deref(), Some("matdatum"));
}

#[tokio::test]
async fn titles_made_from_file_names_follow_the_file_given_ones_stay() {
    let store = embedded();
    store
        .ingest(&opts(data("bathing/harryda_badplatser.csv"), "t"))
        .await
        .expect("ingest");
    let mut o = opts(fixture("wkt_3006.csv"), "t");
    o.mode = IngestMode::Replace;
    o.read.source_crs = Some("EPSG:3006".into());
    store.ingest(&o).await.expect("replace");
    let e = store.entry("t").await;
    assert_eq!(
        e.meta.title, "wkt_3006",
        "a made-up title follows the new file"
    );
    o.meta.title = Some("Mätpunkter".into());
    o.force = true;
    store.ingest(&o).await.expect("replace");
    let mut o2 = opts(data("bathing/harryda_badplatser.csv"), "t");
    o2.mode = IngestMode::Replace;
    store.ingest(&o2).await.expect("replace");
    let e = store.entry("t").await;
    assert_eq!(e.meta.title, "Mätpunkter", "a given title stays");
}

/// GDAL picks the OGR VRT driver by content, whatever the file is called, and a VRT reads the
/// files (or URLs) it names: a downloaded `x.csv` could publish a file of the server's.
#[tokio::test]
async fn a_vrt_named_csv_or_geojson_is_refused_and_nothing_is_stored() {
    const SECRET: &str = "HEMLIGT-7f3a9c";
    for store in each_store().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret.csv");
        std::fs::write(&secret, format!("namn,lon,lat\n{SECRET},13.0,55.6\n")).expect("write");
        let vrt = format!(
            "<OGRVRTDataSource><OGRVRTLayer name=\"leak\">\
             <SrcDataSource>{}</SrcDataSource><SrcLayer>secret</SrcLayer>\
             </OGRVRTLayer></OGRVRTDataSource>\n",
            secret.display()
        );
        for name in ["x.csv", "x.geojson"] {
            let p = dir.path().join(name);
            std::fs::write(&p, &vrt).expect("write");
            let err = store
                .ingest(&opts(p.display().to_string(), "leak"))
                .await
                .expect_err("a VRT must be refused");
            assert!(
                matches!(&err, IngestError::RefusedDriver { driver, .. } if driver == "OGR_VRT"),
                "{} {name}: {err}",
                store.kind
            );
        }
        assert!(store.store.list().await.expect("list").is_empty());
        match &store.dir {
            Some(d) => assert!(
                !contains_bytes(d.path(), SECRET.as_bytes()),
                "secret on disk"
            ),
            None => assert_eq!(data_tables(&store).await, 0),
        }

        // The operator's option lifts the list, and shows what the refusal prevented.
        let mut o = opts(dir.path().join("x.csv").display().to_string(), "leak");
        o.allow_any_gdal_driver = true;
        store.ingest(&o).await.expect("allowed by the operator");
        let e = store.entry("leak").await;
        let f = store.features("leak").await;
        assert_eq!(attr(&e.attributes, &f[0], "namn"), SECRET);
    }
}

/// Files of the allowed formats whose names say nothing GDAL goes by are still opened.
#[tokio::test]
async fn allowed_formats_open_under_the_driver_list() {
    let store = embedded();
    let dir = tempfile::tempdir().expect("tempdir");
    // GeoJSON content under a .json name and a GeoPackage without its extension.
    let json = dir.path().join("punkter.json");
    std::fs::write(
        &json,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"n":1},"geometry":{"type":"Point","coordinates":[13.0,55.6]}}]}"#,
    )
    .expect("write");
    let gpkg = dir.path().join("matpunkter.dat");
    std::fs::copy(fixture("malmo_miljoparkering_sweref99_1330.gpkg"), &gpkg).expect("copy");
    for (p, id, n) in [(json, "punkter", 1), (gpkg, "gpkg-dat", 2261)] {
        let r = store
            .ingest(&opts(p.display().to_string(), id))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(r[0].stored, n);
    }
}

/// True when some file under `dir` holds `needle`.
fn contains_bytes(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).expect("read dir").any(|e| {
        let path = e.expect("entry").path();
        if path.is_dir() {
            contains_bytes(&path, needle)
        } else {
            let bytes = std::fs::read(&path).expect("read");
            bytes.windows(needle.len()).any(|w| w == needle)
        }
    })
}

/// Surveyors' GML and GeoPackage carry arcs (CircularString, CompoundCurve, CurvePolygon,
/// MultiSurface); GeoJSON, vector tiles and the engine know only straight segments, so arcs are
/// linearised at ingest instead of being served as null.
#[tokio::test]
async fn curved_geometries_are_linearised_on_the_arc() {
    // Arcs of a circle of 100 m around a point in Malmö, in SWEREF 99 TM.
    const CENTRE: (f64, f64) = (374_000.0, 6_164_000.0);
    let curves = [
        (
            "CIRCULARSTRING (374000 6164100,374100 6164000,374000 6163900)",
            "LineString",
        ),
        (
            "CURVEPOLYGON (CIRCULARSTRING (373900 6164000,374100 6164000,373900 6164000))",
            "Polygon",
        ),
        (
            "COMPOUNDCURVE (CIRCULARSTRING (373900 6164000,374000 6164100,374100 6164000),\
             (374100 6164000,374100 6163900))",
            "LineString",
        ),
        (
            "MULTISURFACE (CURVEPOLYGON (CIRCULARSTRING (373900 6164000,374100 6164000,\
             373900 6164000)))",
            "MultiPolygon",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sources = Vec::new();
    for (driver, file, options) in [
        ("GPKG", "kurvor.gpkg", &[][..]),
        ("GML", "kurvor.gml", &["FORMAT=GML3"][..]),
    ] {
        let path = dir.path().join(file);
        write_curves(driver, &path, options, curves.map(|(wkt, _)| wkt));
        sources.push(path);
    }
    // The stored vertices are moved back to SWEREF 99 TM, where the arc is a circle.
    let mut wgs84 = gdal::spatial_ref::SpatialRef::from_epsg(4326).expect("EPSG:4326");
    wgs84.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    let sweref = gdal::spatial_ref::SpatialRef::from_epsg(3006).expect("EPSG:3006");
    let to_sweref = gdal::spatial_ref::CoordTransform::new(&wgs84, &sweref).expect("transform");
    let from_centre = |(x, y): (f64, f64)| {
        let (mut xs, mut ys) = ([x], [y]);
        to_sweref
            .transform_coords(&mut xs, &mut ys, &mut [])
            .expect("to SWEREF 99 TM");
        // EPSG:3006 is northing, easting in GDAL's authority order.
        (ys[0] - CENTRE.0).hypot(xs[0] - CENTRE.1)
    };

    for store in each_store().await {
        for source in &sources {
            let name = source.display().to_string();
            let r = store
                .ingest(&opts(name.clone(), "kurvor"))
                .await
                .unwrap_or_else(|e| panic!("{} {name}: {e}", store.kind));
            assert!(
                r[0].warnings
                    .iter()
                    .any(|w| w.contains("4 curved geometries")),
                "{} {name}: {:?}",
                store.kind,
                r[0].warnings
            );
            let e = store.entry("kurvor").await;
            assert!(
                !e.geometry_types.iter().any(|t| t.contains("Curve")
                    || t.contains("Surface")
                    || t.contains("Circular")),
                "{:?}",
                e.geometry_types
            );
            let features = store.features("kurvor").await;
            assert_eq!(features.len(), curves.len());
            for (f, (wkt, kind)) in features.iter().zip(curves) {
                let wkb = f
                    .geometry
                    .as_deref()
                    .unwrap_or_else(|| panic!("{wkt}: no geometry"));
                let served = hamn::engine::snapshot::geometry_from_wkb(wkb)
                    .unwrap_or_else(|| panic!("{} {name} {wkt}: served as null", store.kind));
                let served_kind = match served {
                    geo::Geometry::LineString(_) => "LineString",
                    geo::Geometry::Polygon(_) => "Polygon",
                    geo::Geometry::MultiPolygon(_) => "MultiPolygon",
                    _ => "other",
                };
                assert_eq!(served_kind, kind, "{wkt}");
                let on_arc: Vec<f64> = vertices(wkb)
                    .into_iter()
                    .map(from_centre)
                    .filter(|d| (d - 100.0).abs() < 0.01)
                    .collect();
                // GDAL's default step is 4 degrees: 45 segments on a half circle.
                assert!(
                    on_arc.len() > 40,
                    "{wkt}: {} vertices on the arc",
                    on_arc.len()
                );
            }
            store
                .store
                .delete(&id("kurvor"))
                .await
                .expect("delete between sources");
        }
    }
}

/// Writes one layer in EPSG:3006 holding the given WKT geometries.
fn write_curves(driver: &str, path: &std::path::Path, options: &[&str], wkts: [&str; 4]) {
    use gdal::vector::LayerAccess;
    let mut ds = gdal::DriverManager::get_driver_by_name(driver)
        .expect("driver")
        .create_vector_only(path)
        .expect("create");
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(3006).expect("EPSG:3006");
    let mut layer = ds
        .create_layer(gdal::vector::LayerOptions {
            name: "kurvor",
            srs: Some(&srs),
            ty: gdal::vector::OGRwkbGeometryType::wkbUnknown,
            options: Some(options),
        })
        .expect("layer");
    for wkt in wkts {
        let g = gdal::vector::Geometry::from_wkt(wkt).expect("WKT");
        layer.create_feature(g).expect("feature");
    }
}

/// An append holds the collection from its start, a replace takes it at its commit: both must
/// take their locks in one order, or each waits for the other and PostgreSQL aborts one with
/// a deadlock.
#[tokio::test]
async fn concurrent_appends_and_replaces_of_one_collection_all_commit() {
    const SMALL: usize = 9;
    const LARGE: usize = 6562;
    for store in each_store().await {
        store
            .ingest(&opts(data("bathing/harryda_badplatser.csv"), "mix"))
            .await
            .expect("create");
        for round in 0..10u64 {
            let mut append = opts(data("transit/xtrafik_gtfs_stops.txt"), "mix");
            append.mode = IngestMode::Append;
            append.force = true;
            let mut replace = opts(data("bathing/harryda_badplatser.csv"), "mix");
            replace.mode = IngestMode::Replace;
            replace.force = true;
            // Staggered, so that over the rounds the replace commits before, during and after
            // the append's load.
            let delay = std::time::Duration::from_millis(round * 20);
            let (a, r) = tokio::join!(store.ingest(&append), async {
                tokio::time::sleep(delay).await;
                store.ingest(&replace).await
            });
            a.unwrap_or_else(|e| panic!("{} round {round}: append: {e:?}", store.kind));
            r.unwrap_or_else(|e| panic!("{} round {round}: replace: {e:?}", store.kind));
            let e = store.entry("mix").await;
            let n = store.features("mix").await.len();
            assert_eq!(e.feature_count, n as u64, "{} round {round}", store.kind);
            // The replace last (its rows only), or the append after it (both).
            assert!(
                n == SMALL || n == SMALL + LARGE,
                "{} round {round}: {n} features",
                store.kind
            );
            if store.kind == "postgis" {
                assert_eq!(data_tables(&store).await, 1, "round {round}");
            }
        }
    }
}

/// A second handle on a test store, shareable with an engine.
async fn shared(ts: &TestStore) -> std::sync::Arc<dyn hamn::store::Store> {
    match (&ts.url, &ts.dir) {
        (Some(url), _) => std::sync::Arc::new(
            hamn::store::postgis::PostgisStore::connect(url)
                .await
                .expect("connect"),
        ),
        (None, Some(dir)) => std::sync::Arc::new(
            hamn::store::embedded::EmbeddedStore::open(dir.path()).expect("open"),
        ),
        (None, None) => unreachable!("a test store has a URL or a directory"),
    }
}

/// A refresh that races ingests builds each snapshot from one version: the catalog entry it
/// serves is the one its rows were read for (a list-then-read refresh could pair one version's
/// schema with the next version's rows). Replaces alternate between a narrow and a wide schema
/// while the engine refreshes in a loop; every snapshot seen must be whole and consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_racing_ingests_builds_each_snapshot_from_one_version() {
    for ts in each_store().await {
        let store = shared(&ts).await;
        let files = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, wide: bool| {
            let features: Vec<serde_json::Value> = (0..400)
                .map(|i| {
                    let props = if wide {
                        serde_json::json!({"z1": i, "z2": "x", "z3": 1.5, "z4": true, "z5": "y", "a": i})
                    } else {
                        serde_json::json!({"a": i})
                    };
                    serde_json::json!({"type": "Feature", "properties": props,
                        "geometry": {"type": "Point", "coordinates": [13.0 + f64::from(i) * 1e-4, 55.6]}})
                })
                .collect();
            let path = files.path().join(name);
            std::fs::write(
                &path,
                serde_json::json!({"type": "FeatureCollection", "features": features}).to_string(),
            )
            .expect("write");
            path.display().to_string()
        };
        let (narrow, wide) = (write("narrow.geojson", false), write("wide.geojson", true));
        ts.ingest(&opts(narrow.clone(), "race"))
            .await
            .expect("create");
        let engine =
            hamn::engine::Engine::start(store.clone(), Default::default(), Default::default())
                .await
                .expect("engine");
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for round in 0..12 {
                    let file = if round % 2 == 0 { &wide } else { &narrow };
                    let o = opts(file.clone(), "race").tap(|o| {
                        o.mode = IngestMode::Replace;
                        o.force = true;
                    });
                    hamn::ingest::ingest(store.as_ref(), &o)
                        .await
                        .expect("replace");
                }
            })
        };
        let mut seen = HashSet::new();
        while !writer.is_finished() {
            engine.refresh().await.expect("refresh");
            let s = engine.get(&id("race")).expect("served");
            let s = s.snapshot().expect("held in memory").clone();
            let width = s.entry.attributes.len();
            assert!(width == 1 || width == 6, "{}", ts.kind);
            assert_eq!(
                s.features.len() as u64,
                s.entry.feature_count,
                "{}",
                ts.kind
            );
            for f in &s.features {
                assert_eq!(f.values().len(), width, "{}: v{}", ts.kind, s.version());
            }
            seen.insert(s.version());
        }
        writer.await.expect("writer");
        assert!(
            seen.len() > 1,
            "{}: the refreshes saw only {seen:?}",
            ts.kind
        );
    }
}

/// A store that commits a replace between answering `list` and the engine's next read: the
/// race above, made certain.
struct ReplaceAfterList {
    inner: std::sync::Arc<dyn hamn::store::Store>,
    file: String,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl hamn::store::Store for ReplaceAfterList {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    async fn list(&self) -> hamn::store::Result<Vec<hamn::catalog::CatalogEntry>> {
        let listed = self.inner.list().await?;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let o = opts(self.file.clone(), "race").tap(|o| o.mode = IngestMode::Replace);
            hamn::ingest::ingest(self.inner.as_ref(), &o)
                .await
                .expect("replace");
        }
        Ok(listed)
    }
    async fn get(
        &self,
        id: &hamn::catalog::CollectionId,
    ) -> hamn::store::Result<Option<hamn::catalog::CatalogEntry>> {
        self.inner.get(id).await
    }
    async fn delete(&self, id: &hamn::catalog::CollectionId) -> hamn::store::Result<()> {
        self.inner.delete(id).await
    }
    async fn begin_ingest(
        &self,
        plan: hamn::store::IngestPlan,
    ) -> hamn::store::Result<Box<dyn hamn::store::IngestSink>> {
        self.inner.begin_ingest(plan).await
    }
    async fn read(
        &self,
        id: &hamn::catalog::CollectionId,
    ) -> hamn::store::Result<(hamn::catalog::CatalogEntry, Vec<hamn::store::StoredFeature>)> {
        self.inner.read(id).await
    }
    async fn set_description(
        &self,
        id: &hamn::catalog::CollectionId,
        meta: hamn::catalog::Description,
        engine: Option<hamn::catalog::EngineChoice>,
    ) -> hamn::store::Result<hamn::store::Described> {
        self.inner.set_description(id, meta, engine).await
    }
    async fn put_record(
        &self,
        kind: hamn::store::RecordKind,
        key: &str,
        doc: &serde_json::Value,
    ) -> hamn::store::Result<()> {
        self.inner.put_record(kind, key, doc).await
    }
    async fn get_record(
        &self,
        kind: hamn::store::RecordKind,
        key: &str,
    ) -> hamn::store::Result<Option<serde_json::Value>> {
        self.inner.get_record(kind, key).await
    }
    async fn list_records(
        &self,
        kind: hamn::store::RecordKind,
    ) -> hamn::store::Result<Vec<(String, serde_json::Value)>> {
        self.inner.list_records(kind).await
    }
    async fn delete_record(
        &self,
        kind: hamn::store::RecordKind,
        key: &str,
    ) -> hamn::store::Result<bool> {
        self.inner.delete_record(kind, key).await
    }
}

#[tokio::test]
async fn an_ingest_between_list_and_read_gives_a_snapshot_of_one_version() {
    use std::sync::Arc;
    for ts in each_store().await {
        let inner = shared(&ts).await;
        let narrow = data("synthetic/traffic_counts_malmo_lund_synthetic.geojson");
        ts.ingest(&opts(narrow.clone(), "race"))
            .await
            .expect("create");
        let racing = Arc::new(ReplaceAfterList {
            inner,
            file: data("bathing/harryda_badplatser.csv"),
            armed: std::sync::atomic::AtomicBool::new(false),
        });
        let engine =
            hamn::engine::Engine::start(racing.clone(), Default::default(), Default::default())
                .await
                .expect("engine");
        // v2 (the same narrow schema) is committed behind the engine's back, so the next list
        // shows a version to build; between that list and the read, v3 (a wide schema) lands.
        let v2 = opts(narrow, "race").tap(|o| {
            o.mode = IngestMode::Replace;
            o.force = true;
        });
        ts.ingest(&v2).await.expect("v2");
        racing
            .armed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        engine.refresh().await.expect("refresh");
        let s = engine.get(&id("race")).expect("served");
        let s = s.snapshot().expect("held in memory").clone();
        let stored = ts.entry("race").await;
        assert_eq!(
            s.version(),
            stored.version,
            "{}: the snapshot is v3's",
            ts.kind
        );
        assert_eq!(s.entry.attributes.len(), stored.attributes.len());
        assert_eq!(
            s.features.len() as u64,
            s.entry.feature_count,
            "{}",
            ts.kind
        );
        for f in &s.features {
            assert_eq!(f.values().len(), s.entry.attributes.len(), "{}", ts.kind);
        }
    }
}

/// A replaced version is held for cursors for the grace period only, then freed by the
/// refresh task (not by whoever held it last, such as a request); one a request still holds
/// waits for that request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_versions_are_held_for_the_grace_period_then_freed() {
    let ts = embedded();
    let store: std::sync::Arc<dyn hamn::store::Store> = std::sync::Arc::new(
        hamn::store::embedded::EmbeddedStore::open(ts.dir.as_ref().expect("dir").path())
            .expect("open"),
    );
    let file = data("synthetic/traffic_counts_malmo_lund_synthetic.geojson");
    ts.ingest(&opts(file.clone(), "g")).await.expect("create");
    let grace = std::time::Duration::from_millis(800);
    let engine = hamn::engine::Engine::start(
        store,
        hamn::engine::EngineOptions {
            cursor_grace: grace,
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .expect("engine");
    let replace = opts(file, "g").tap(|o| {
        o.mode = IngestMode::Replace;
        o.force = true;
    });

    let v1 = engine.get(&id("g")).expect("v1");
    let v1_version = v1.version();
    let v1_weak = std::sync::Arc::downgrade(&v1);
    drop(v1);
    ts.ingest(&replace).await.expect("v2");
    engine.refresh().await.expect("refresh");
    assert!(
        engine.get_version(&id("g"), v1_version).is_some(),
        "held for cursors"
    );
    assert_eq!(engine.previous_versions().len(), 1);

    tokio::time::sleep(grace).await;
    engine.refresh().await.expect("refresh");
    assert!(
        engine.get_version(&id("g"), v1_version).is_none(),
        "past the grace period"
    );
    assert!(engine.previous_versions().is_empty());
    assert!(v1_weak.upgrade().is_none(), "freed by the refresh");

    // A request still holding v2 when it expires: not freed under it; freed after.
    let v2 = engine.get(&id("g")).expect("v2");
    let v2_weak = std::sync::Arc::downgrade(&v2);
    ts.ingest(&replace).await.expect("v3");
    engine.refresh().await.expect("refresh");
    tokio::time::sleep(grace).await;
    engine.refresh().await.expect("refresh");
    assert!(engine.previous_versions().is_empty());
    assert_eq!(
        v2.snapshot().expect("held in memory").features.len(),
        150,
        "still whole for its holder"
    );
    drop(v2);
    assert!(
        v2_weak.upgrade().is_some(),
        "the graveyard keeps it until a refresh"
    );
    engine.refresh().await.expect("refresh");
    assert!(v2_weak.upgrade().is_none());
}
