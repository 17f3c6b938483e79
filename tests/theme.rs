//! Theme collections: files from several publishers mapped into one shared schema, each
//! publisher's part replaced or removed whole while the others stay; what does not fit the theme
//! reported per feature (kept, or rejected with --strict); the collection served with the
//! theme's schema. On both stores.

mod common;

use std::collections::BTreeMap;

use common::*;
use hamn::ingest::{self, IngestOptions, ThemeIngest};
use hamn::store::Value;
use hamn::theme::{self, Mapping};

const HARRYDA: &str = "1401";
const HAV: &str = "202100-6420";

fn theme_opts(file: &str, source: &str, mapping: Mapping) -> IngestOptions {
    let mut o = IngestOptions::new(file);
    o.theme = Some(ThemeIngest {
        theme: theme::find("badplatser").expect("badplatser theme"),
        source: source.parse().expect("source org"),
        mapping,
    });
    o
}

fn hav_mapping() -> Mapping {
    Mapping {
        id_field: Some("nutsCode".into()),
        map: BTreeMap::from([
            ("NAMN".to_string(), "name".to_string()),
            ("nutsCode".to_string(), "hov_ref".to_string()),
        ]),
        ..Mapping::default()
    }
}

/// The value of attribute `name` of a feature, as JSON.
fn value(
    entry: &hamn::catalog::CatalogEntry,
    f: &hamn::store::StoredFeature,
    name: &str,
) -> serde_json::Value {
    let i = entry
        .attributes
        .iter()
        .position(|a| a.name == name)
        .unwrap_or_else(|| panic!("no attribute {name}"));
    f.values[i].to_json()
}

fn by_source(
    entry: &hamn::catalog::CatalogEntry,
    features: &[hamn::store::StoredFeature],
) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for f in features {
        let s = value(entry, f, "source");
        *n.entry(s.as_str().unwrap_or("?").to_string()).or_insert(0) += 1;
    }
    n
}

#[tokio::test]
async fn publishers_share_a_theme_collection_and_each_replaces_only_its_part() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A third publisher far from the others, to see the extent follow the parts.
    let stockholm = tmp.path().join("stockholm.csv");
    std::fs::write(
        &stockholm,
        "id,name,latitude,longitude,toilet\nS1,Långholmen,59.3200,18.0300,ja\nS2,Smedsuddsbadet,59.3230,18.0180,nej\n",
    )
    .expect("write");
    let stockholm = stockholm.display().to_string();
    for store in each_store().await {
        let kind = store.kind;
        let r = store
            .ingest(&theme_opts(
                &data("bathing/harryda_badplatser.csv"),
                HARRYDA,
                Mapping::default(),
            ))
            .await
            .expect("Härryda");
        assert_eq!((r[0].stored, r[0].feature_count), (9, 9), "{kind}");
        assert_eq!(r[0].collection.as_str(), "badplatser");
        assert!(
            r[0].warnings
                .iter()
                .any(|w| w.contains("9 features have an empty place_id")),
            "{kind}: {:?}",
            r[0].warnings
        );
        let only_harryda = store.entry("badplatser").await.extent.expect("extent");

        let r = store
            .ingest(&theme_opts(
                &data("bathing/hav_active_bathing_waters.geojson"),
                HAV,
                hav_mapping(),
            ))
            .await
            .expect("HaV");
        assert_eq!((r[0].stored, r[0].feature_count), (2684, 2693), "{kind}");
        assert!(
            r[0].warnings
                .iter()
                .any(|w| w.contains("left out: KMN_NAMN")),
            "{kind}: {:?}",
            r[0].warnings
        );

        let entry = store.entry("badplatser").await;
        let names: Vec<&str> = entry.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            &names[..4],
            ["source", "source_id", "place_id", "name"],
            "{kind}"
        );
        assert_eq!(
            names.len(),
            2 + 40,
            "{kind}: the theme's 40 attributes and two of hamn's"
        );
        assert_eq!(
            entry.meta.conforms_to,
            ["https://dataportal.se/specifications/badplatser/1.0"]
        );
        assert_eq!(entry.meta.title, "Badplatser");
        let features = store.features("badplatser").await;
        assert_eq!(
            by_source(&entry, &features),
            BTreeMap::from([(HARRYDA.to_string(), 9), (HAV.to_string(), 2684)]),
            "{kind}"
        );
        let frokens = features
            .iter()
            .find(|f| value(&entry, f, "name") == "Frökens udde")
            .expect("Frökens udde");
        assert_eq!(frokens.id, "1401:1", "{kind}: numbered in file order");
        assert_eq!(value(&entry, frokens, "postcode"), "435 35");
        assert!(frokens.geometry.is_some());
        let hav = features
            .iter()
            .find(|f| f.id == "202100-6420:SE0441273000000001")
            .unwrap_or_else(|| panic!("{kind}: HaV feature by nutsCode"));
        assert_eq!(value(&entry, hav, "hov_ref"), "SE0441273000000001");
        assert_eq!(value(&entry, hav, "source_id"), "SE0441273000000001");
        let hav_before: Vec<_> = features
            .iter()
            .filter(|f| f.id.starts_with("202100-6420:"))
            .cloned()
            .collect();

        // Härryda publishes again, fewer sites: its part is replaced whole, HaV's untouched.
        let fewer = tmp.path().join(format!("harryda-{kind}.csv"));
        let text = std::fs::read_to_string(data("bathing/harryda_badplatser.csv")).expect("read");
        std::fs::write(&fewer, text.lines().take(4).collect::<Vec<_>>().join("\n")).expect("write");
        let r = store
            .ingest(&theme_opts(
                &fewer.display().to_string(),
                HARRYDA,
                Mapping::default(),
            ))
            .await
            .expect("Härryda again");
        assert_eq!((r[0].stored, r[0].feature_count), (3, 2687), "{kind}");
        let entry = store.entry("badplatser").await;
        let features = store.features("badplatser").await;
        assert_eq!(by_source(&entry, &features)[HARRYDA], 3, "{kind}");
        let hav_after: Vec<_> = features
            .iter()
            .filter(|f| f.id.starts_with("202100-6420:"))
            .cloned()
            .collect();
        assert_eq!(
            hav_after, hav_before,
            "{kind}: another publisher's part changed"
        );

        // HaV leaves; the extent is Härryda's again once Stockholm comes and goes.
        let (_, removed) = ingest::remove_source(
            store.store.as_ref(),
            &id("badplatser"),
            &HAV.parse().expect("org"),
        )
        .await
        .expect("remove HaV");
        assert_eq!(removed, 2684, "{kind}");
        store
            .ingest(&theme_opts(&stockholm, "0180", Mapping::default()))
            .await
            .expect("Stockholm");
        let both = store.entry("badplatser").await.extent.expect("extent");
        assert!(both.0[3] > 59.3 && both.0[2] > 18.0, "{kind}: {both:?}");
        let (entry, _) = ingest::remove_source(
            store.store.as_ref(),
            &id("badplatser"),
            &"0180".parse().expect("org"),
        )
        .await
        .expect("remove Stockholm");
        assert_eq!(entry.feature_count, 3, "{kind}");
        let e = entry.extent.expect("extent");
        assert!(
            e.0[3] < 58.0 && e.0[2] < 13.0,
            "{kind}: extent kept Stockholm: {e:?}"
        );
        assert!(
            e.0[0] >= only_harryda.0[0] && e.0[3] <= only_harryda.0[3],
            "{kind}"
        );
        assert_eq!(entry.geometry_types, ["Point"], "{kind}");
        let err = ingest::remove_source(
            store.store.as_ref(),
            &id("badplatser"),
            &"0180".parse().expect("org"),
        )
        .await
        .expect_err("nothing left to remove");
        assert!(
            err.to_string().contains("no features of source 0180"),
            "{err}"
        );
        if kind == "postgis" {
            assert_eq!(
                data_tables(&store).await,
                1,
                "a replaced version's table was left behind"
            );
        }
    }
}

/// Two publishers' first parts arriving at once, before the theme collection exists (two
/// municipalities uploading over the admin API): the second waits for the first, and both parts
/// are kept. Each round starts from no collection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_parts_arriving_together_are_both_kept() {
    for store in each_store().await {
        let kind = store.kind;
        for round in 0..3 {
            let harryda = theme_opts(
                &data("bathing/harryda_badplatser.csv"),
                HARRYDA,
                Mapping::default(),
            );
            let hav = theme_opts(
                &data("bathing/hav_active_bathing_waters.geojson"),
                HAV,
                hav_mapping(),
            );
            let (a, b) = tokio::join!(store.ingest(&harryda), store.ingest(&hav));
            a.unwrap_or_else(|e| panic!("{kind} round {round}: Härryda: {e}"));
            b.unwrap_or_else(|e| panic!("{kind} round {round}: HaV: {e}"));
            let entry = store.entry("badplatser").await;
            let features = store.features("badplatser").await;
            assert_eq!(
                by_source(&entry, &features),
                BTreeMap::from([(HARRYDA.to_string(), 9), (HAV.to_string(), 2684)]),
                "{kind} round {round}"
            );
            assert_eq!(entry.feature_count, features.len() as u64, "{kind}");
            store
                .store
                .delete(&"badplatser".parse().expect("id"))
                .await
                .expect("delete");
        }
    }
}

#[tokio::test]
async fn what_does_not_fit_the_theme_is_reported_per_feature_and_strict_rejects_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("lund.csv");
    std::fs::write(
        &file,
        "id,namn,latitude,longitude,toilet,visit_url,updated,email\n\
         L1,Högevallsbadet,55.7010,13.2050,ja,https://lund.se/bad,2024-06-01,bad@lund.se\n\
         L2,,55.7020,13.2060,nej,,,\n\
         L3,Klostersågen,55.7030,13.2070,kanske,,,\n\
         L4,Habo,55.7040,13.2080,,lund.se/habo,,\n\
         L5,Dalby,55.7050,13.2090,1,,igår,inte-en-adress\n",
    )
    .expect("write");
    let file = file.display().to_string();
    let mapping = |strict| Mapping {
        map: BTreeMap::from([("namn".to_string(), "name".to_string())]),
        id_field: Some("id".into()),
        strict,
        ..Mapping::default()
    };
    for store in each_store().await {
        let kind = store.kind;
        let r = store
            .ingest(&theme_opts(&file, "1281", mapping(false)))
            .await
            .expect("kept with warnings");
        let r = &r[0];
        assert_eq!((r.stored, r.rejected.len()), (5, 0), "{kind}");
        let unfit: Vec<(u64, &str)> = r.unfit.iter().map(|(n, w)| (*n, w.as_str())).collect();
        assert_eq!(
            unfit,
            [
                (2, "name: required value missing"),
                (3, "toilet: \"kanske\" is not yes or no (true/false, ja/nej, 1/0) (stored empty)"),
                (4, "visit_url: \"lund.se/habo\" is not a web address (http or https) (stored empty)"),
                (5, "updated: \"igår\" is not a date (YYYY-MM-DD) (stored empty)"),
                (5, "email: \"inte-en-adress\" is not an e-mail address (stored empty)"),
            ],
            "{kind}"
        );
        assert!(
            r.to_string().contains("kept but not fitting the theme 5"),
            "{r}"
        );
        let entry = store.entry("badplatser").await;
        let features = store.features("badplatser").await;
        let f = |id: &str| {
            features
                .iter()
                .find(|f| f.id == id)
                .unwrap_or_else(|| panic!("{kind}: {id}"))
        };
        assert_eq!(value(&entry, f("1281:L1"), "toilet"), true);
        assert_eq!(value(&entry, f("1281:L1"), "updated"), "2024-06-01");
        assert_eq!(value(&entry, f("1281:L2"), "toilet"), false);
        assert_eq!(
            value(&entry, f("1281:L3"), "toilet"),
            serde_json::Value::Null
        );
        assert_eq!(value(&entry, f("1281:L5"), "toilet"), true);
        assert!(matches!(f("1281:L3").values[0], Value::Text(ref s) if s == "1281"));

        // Strict: the four that do not fit are rejected, and Lund's part is the one left.
        let r = store
            .ingest(&theme_opts(&file, "1281", mapping(true)))
            .await
            .expect("strict");
        let r = &r[0];
        assert_eq!(
            (r.stored, r.rejected.len(), r.unfit.len()),
            (1, 4, 0),
            "{kind}"
        );
        assert_eq!(
            r.rejected[0],
            (
                2,
                "does not fit the theme badplatser: name: required value missing".to_string()
            )
        );
        assert_eq!(r.feature_count, 1, "{kind}");
    }
}

#[tokio::test]
async fn bad_mappings_are_refused_and_change_nothing() {
    for store in each_store().await {
        let kind = store.kind;
        let harryda = data("bathing/harryda_badplatser.csv");
        store
            .ingest(&theme_opts(&harryda, HARRYDA, Mapping::default()))
            .await
            .expect("first");
        let version = store.entry("badplatser").await.version;
        let hav = data("bathing/hav_active_bathing_waters.geojson");
        for (mapping, words) in [
            (
                Mapping {
                    map: BTreeMap::from([("NAMNET".into(), "name".into())]),
                    ..Mapping::default()
                },
                "the source has no column \"NAMNET\"",
            ),
            (
                Mapping {
                    map: BTreeMap::from([("NAMN".into(), "namn".into())]),
                    ..Mapping::default()
                },
                "the theme badplatser has no attribute \"namn\"",
            ),
            (
                Mapping {
                    map: BTreeMap::from([
                        ("NAMN".into(), "name".into()),
                        ("KMN_NAMN".into(), "name".into()),
                    ]),
                    ..Mapping::default()
                },
                "two columns are mapped to \"name\"",
            ),
            (
                Mapping {
                    id_field: Some("nuts".into()),
                    ..Mapping::default()
                },
                "--id-field nuts: the source has no such column",
            ),
        ] {
            let err = store
                .ingest(&theme_opts(&hav, HAV, mapping))
                .await
                .expect_err(words);
            assert!(err.to_string().contains(words), "{kind}: {err}");
        }
        assert_eq!(store.entry("badplatser").await.version, version, "{kind}");

        // A collection that is not the theme's is not written into.
        let mut plain = IngestOptions::new(harryda.clone());
        plain.collection = Some(id("bad-lund"));
        store.ingest(&plain).await.expect("plain collection");
        let mut o = theme_opts(&harryda, HARRYDA, Mapping::default());
        o.collection = Some(id("bad-lund"));
        let err = store.ingest(&o).await.expect_err("not a theme collection");
        assert!(
            err.to_string()
                .contains("is not a collection of the theme badplatser"),
            "{err}"
        );

        // The command line: the source must be a municipality code or organisation number.
        let out = store
            .hamn()
            .args([
                "ingest",
                &hav,
                "--theme",
                "badplatser",
                "--source-org",
                "HaV",
            ])
            .output()
            .expect("run");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("give a municipality code"), "{stderr}");
        let out = store
            .hamn()
            .args(["ingest", &hav, "--theme", "lekparker", "--source-org", HAV])
            .output()
            .expect("run");
        assert!(String::from_utf8_lossy(&out.stderr)
            .contains("no theme \"lekparker\" (themes: badplatser"));
        assert_eq!(store.entry("badplatser").await.version, version, "{kind}");
    }
}

#[test]
fn a_theme_collection_is_served_with_the_themes_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = vec!["--data-dir".to_string(), dir.path().display().to_string()];
    let mapping = dir.path().join("hav.toml");
    std::fs::write(
        &mapping,
        "theme = \"badplatser\"\nsource = \"202100-6420\"\nid_field = \"nutsCode\"\n[map]\nNAMN = \"name\"\nnutsCode = \"hov_ref\"\n",
    )
    .expect("write");
    for args in [
        vec![
            "ingest".to_string(),
            data("bathing/harryda_badplatser.csv"),
            "--theme".into(),
            "badplatser".into(),
            "--source-org".into(),
            HARRYDA.into(),
        ],
        vec![
            "ingest".to_string(),
            data("bathing/hav_active_bathing_waters.geojson"),
            "--mapping".into(),
            mapping.display().to_string(),
        ],
    ] {
        let out = hamn_cmd().args(&store).args(&args).output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let server = start(&store, &[]);
    let (status, q) = get(&format!(
        "{}/collections/badplatser/queryables",
        server.base
    ));
    assert_eq!(status, 200);
    let props = q["properties"].as_object().expect("properties");
    assert_eq!(props["name"]["description"], "Badplatsens namn");
    assert_eq!(props["visit_url"]["format"], "uri");
    assert_eq!(props["toilet"]["type"], "boolean");
    assert!(props["source"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("municipality code")));
    let (status, page) = get(&format!(
        "{}/collections/badplatser/items?source={HARRYDA}&limit=100",
        server.base
    ));
    assert_eq!(status, 200);
    assert_eq!(page["numberMatched"], 9);
    let (_, page) = get(&format!(
        "{}/collections/badplatser/items?filter=source%3D%27{HAV}%27%20AND%20name%20LIKE%20%27Ribersborg%25%27",
        server.base
    ));
    assert!(page["numberMatched"].as_u64() >= Some(1), "{page}");
    let (status, f) = get(&format!(
        "{}/collections/badplatser/items/1401:1",
        server.base
    ));
    assert_eq!(status, 200);
    assert_eq!(f["properties"]["name"], "Frökens udde");
    assert_eq!(f["properties"]["source"], HARRYDA);
}

/// A theme whose coordinate columns have names of their own (the parking schema's Ylat/Xlong)
/// reads them without options; codes are written as the theme writes them; the theme's own
/// publisher column holds the source.
#[tokio::test]
async fn a_themes_coordinate_columns_and_publisher_column_are_used() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("p.csv");
    std::fs::write(
        &file,
        "id,nom,Ylat,Xlong,type_usagers,gratuit,nb_places,hauteur_max,type_ouvrage\n\
         P1,Triangeln,55.5940,13.0000,Tous,nej,450,2.10 m,Ouvrage\n\
         P2,Möllevången,55.5900,13.0080,abonnés,ja,\"1 200\",,enclos_en_surface\n",
    )
    .expect("write");
    for store in each_store().await {
        let kind = store.kind;
        let mut o = IngestOptions::new(file.display().to_string());
        o.theme = Some(ThemeIngest {
            theme: theme::find("parkering").expect("parkering"),
            source: "1280".parse().expect("org"),
            mapping: Mapping::default(),
        });
        let r = store.ingest(&o).await.expect("parking");
        assert_eq!(r[0].stored, 2, "{kind}");
        assert_eq!(
            r[0].unfit,
            [(2, "hauteur_max: required value missing".to_string())],
            "{kind}"
        );
        let entry = store.entry("parkering").await;
        assert_eq!(
            entry.attributes[0].name, "source_id",
            "{kind}: the theme has its own publisher column"
        );
        let features = store.features("parkering").await;
        let p1 = features.iter().find(|f| f.id == "1280:P1").expect("P1");
        assert_eq!(value(&entry, p1, "num_siret"), "1280");
        assert_eq!(value(&entry, p1, "type_usagers"), "tous");
        assert_eq!(value(&entry, p1, "type_ouvrage"), "ouvrage");
        assert_eq!(value(&entry, p1, "gratuit"), false);
        let p2 = features.iter().find(|f| f.id == "1280:P2").expect("P2");
        assert_eq!(value(&entry, p2, "nb_places"), 1200);
        let (x, y) = vertices(p1.geometry.as_deref().expect("geometry"))[0];
        assert!(
            (x - 13.0).abs() < 1e-9 && (y - 55.594).abs() < 1e-9,
            "{kind}: {x} {y}"
        );
        // Its removal leaves an empty collection, not an error.
        let (e, n) = ingest::remove_source(
            store.store.as_ref(),
            &id("parkering"),
            &"1280".parse().expect("org"),
        )
        .await
        .expect("remove");
        assert_eq!((n, e.feature_count, e.extent), (2, 0, None), "{kind}");
    }
}

/// The charging-point schema writes the position as "[lon,lat]" in one column: read as the
/// geometry without options; an unreadable one rejects its feature.
#[tokio::test]
async fn a_position_column_is_the_geometry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("ladd.csv");
    std::fs::write(
        &file,
        "id_pdc_itinerance,nom_station,coordonneesXY,puissance_nominale,prise_type_2\n\
         SE*LUN*E1,Bangatan,\"[13.1910, 55.7050]\",22,true\n\
         SE*LUN*E2,Bangatan,\"[13.1912,55.7051]\",\"50,5\",false\n\
         SE*LUN*E3,Stortorget,nowhere,11,true\n",
    )
    .expect("write");
    for store in each_store().await {
        let kind = store.kind;
        let mut o = IngestOptions::new(file.display().to_string());
        o.theme = Some(ThemeIngest {
            theme: theme::find("laddplatser").expect("laddplatser"),
            source: "1281".parse().expect("org"),
            mapping: Mapping::default(),
        });
        let r = store.ingest(&o).await.expect("charging points");
        assert_eq!((r[0].read, r[0].stored), (3, 2), "{kind}");
        assert!(
            r[0].rejected[0]
                .1
                .contains("unreadable position \"nowhere\""),
            "{kind}: {:?}",
            r[0].rejected
        );
        let entry = store.entry("laddplatser").await;
        let features = store.features("laddplatser").await;
        let e1 = features
            .iter()
            .find(|f| f.id == "1281:SE*LUN*E1")
            .expect("E1");
        let (x, y) = vertices(e1.geometry.as_deref().expect("geometry"))[0];
        assert!(
            (x - 13.191).abs() < 1e-9 && (y - 55.705).abs() < 1e-9,
            "{kind}: {x} {y}"
        );
        let e2 = features
            .iter()
            .find(|f| f.id == "1281:SE*LUN*E2")
            .expect("E2");
        assert_eq!(value(&entry, e2, "puissance_nominale"), 50.5);
        assert_eq!(value(&entry, e2, "prise_type_2"), false);
        assert_eq!(entry.geometry_types, ["Point"]);
    }
}
