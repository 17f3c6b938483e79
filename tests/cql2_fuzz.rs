//! Property tests (fuzzing) of the CQL2 parsers and evaluator: random token soup, random JSON
//! and random well-formed trees. Nothing may panic; a generated tree printed as CQL2-Text must
//! parse back to itself; binding and evaluating any tree on features with every kind of value
//! (nulls and missing geometry included) must finish without a panic.
//!
//! Each property runs 256 cases by default (part of the test suite). A longer run:
//!     PROPTEST_CASES=50000 cargo test --release --test cql2_fuzz

use chrono::{NaiveDate, TimeZone, Utc};
use hamn::catalog::CatalogEntry;
use hamn::cql2::ast::{Op, SpatialOp, TemporalOp};
use hamn::cql2::{self, Expr, Lang};
use hamn::crs::Crs;
use hamn::engine::Filter;
use hamn::engine::Snapshot;
use hamn::store::{StoredFeature, Value};
use proptest::prelude::*;

const NAMES: &[&str] = &[
    "namn", "platser", "avgift", "laddare", "datum", "tid", "lista", "geometry", "höjd m",
    "no such", "a\"b",
];

fn entry() -> CatalogEntry {
    serde_json::from_value(serde_json::json!({
        "id": "fuzz", "title": "fuzz", "description": null, "keywords": [], "theme": null,
        "publisher": null, "licence": null,
        "source": {"name": "fuzz.geojson", "sha256": "0", "layer": "fuzz", "crs": "EPSG:4326"},
        "attributes": [
            {"name": "namn", "column": "namn", "type": "text"},
            {"name": "platser", "column": "platser", "type": "integer"},
            {"name": "avgift", "column": "avgift", "type": "real"},
            {"name": "laddare", "column": "laddare", "type": "boolean"},
            {"name": "datum", "column": "datum", "type": "date"},
            {"name": "tid", "column": "tid", "type": "datetime"},
            {"name": "lista", "column": "lista", "type": "json"},
            {"name": "höjd m", "column": "hojd_m", "type": "real"}
        ],
        "geometry_types": ["Point", "Polygon"], "id_field": null, "datetime_field": "tid",
        "feature_count": 3, "extent": null, "temporal_extent": null,
        "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
        "zoom": [0, 22], "version": 1
    }))
    .expect("a catalog entry")
}

fn snapshot() -> Snapshot {
    let point = {
        let mut w = vec![1u8, 1, 0, 0, 0];
        w.extend(13.0f64.to_le_bytes());
        w.extend(55.6f64.to_le_bytes());
        w
    };
    let polygon =
        gdal::vector::Geometry::from_wkt("POLYGON((13 55, 13.1 55, 13.1 55.1, 13 55.1, 13 55))")
            .and_then(|g| g.wkb())
            .expect("WKB");
    let full = vec![
        Value::Text("Malmö".into()),
        Value::Integer(i64::MAX),
        Value::Real(-0.0),
        Value::Boolean(true),
        Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).expect("date")),
        Value::DateTime(
            Utc.with_ymd_and_hms(2024, 5, 5, 10, 0, 0)
                .single()
                .expect("t")
                .fixed_offset(),
        ),
        Value::Json(Box::new(serde_json::json!([1, 2]))),
        Value::Real(1e300),
    ];
    let features = vec![
        StoredFeature {
            fid: 1,
            id: "1".into(),
            values: full.clone(),
            geometry: Some(point),
        },
        StoredFeature {
            fid: 2,
            id: "2".into(),
            values: vec![Value::Null; 8],
            geometry: None,
        },
        StoredFeature {
            fid: 3,
            id: "3".into(),
            values: full,
            geometry: Some(polygon),
        },
    ];
    Snapshot::build(entry(), features, Default::default())
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        any::<bool>().prop_map(Expr::Bool),
        (-1_000_000i64..1_000_000).prop_map(Expr::Int),
        prop::sample::select(vec![0.5, -2.25, 1e-7, 1e300, 3.0, -0.0]).prop_map(Expr::Real),
        "[a-zA-Zåäö' %_\\\\]{0,8}".prop_map(Expr::Str),
        (2000i32..2030, 1u32..13, 1u32..29)
            .prop_map(|(y, m, d)| Expr::Date(NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default())),
        (0i64..2_000_000_000)
            .prop_map(|s| Expr::Timestamp(Utc.timestamp_opt(s, 0).single().unwrap_or_default())),
        prop::sample::select(NAMES.to_vec()).prop_map(|n| Expr::Property(n.to_string())),
        (-180.0f64..180.0, -90.0f64..90.0)
            .prop_map(|(x, y)| Expr::Geometry(geo::Geometry::Point(geo::Point::new(x, y)))),
        (12.0f64..14.0, 55.0f64..56.0, 0.01f64..1.0).prop_map(|(x, y, d)| Expr::Geometry(
            geo::Geometry::Polygon(
                geo::Rect::new(geo::coord! {x: x, y: y}, geo::coord! {x: x + d, y: y + d})
                    .to_polygon()
            )
        )),
    ]
}

const OPS: &[Op] = &[
    Op::And,
    Op::Or,
    Op::Not,
    Op::Eq,
    Op::Ne,
    Op::Lt,
    Op::Le,
    Op::Gt,
    Op::Ge,
    Op::Like,
    Op::Between,
    Op::In,
    Op::IsNull,
    Op::Casei,
    Op::Accenti,
    Op::Add,
    Op::Sub,
    Op::Mul,
    Op::Div,
    Op::IntDiv,
    Op::Mod,
    Op::Pow,
    Op::Neg,
    Op::Spatial(SpatialOp::Intersects),
    Op::Spatial(SpatialOp::Within),
    Op::Spatial(SpatialOp::Touches),
    Op::Spatial(SpatialOp::Disjoint),
    Op::Temporal(TemporalOp::During),
    Op::Temporal(TemporalOp::After),
    Op::Temporal(TemporalOp::Overlaps),
];

/// An INTERVAL end: a date, a timestamp, a property or open.
fn time_end() -> impl Strategy<Value = Option<Box<Expr>>> {
    prop::option::of(
        prop_oneof![
            (2000i32..2030, 1u32..13, 1u32..29).prop_map(|(y, m, d)| Expr::Date(
                NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
            )),
            (0i64..2_000_000_000).prop_map(|s| Expr::Timestamp(
                Utc.timestamp_opt(s, 0).single().unwrap_or_default()
            )),
            prop::sample::select(vec!["datum", "tid", "namn"])
                .prop_map(|n| Expr::Property(n.to_string())),
        ]
        .prop_map(Box::new),
    )
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        (
            prop::sample::select(OPS.to_vec()),
            prop::collection::vec(inner, 1..4),
            prop::option::of((time_end(), time_end())),
        )
            .prop_map(|(op, mut args, interval)| {
                let (least, most) = op.arity();
                while args.len() < least {
                    args.push(Expr::Bool(true));
                }
                args.truncate(most.min(3));
                match op {
                    // Negation of a number literal reads back as the negative literal.
                    Op::Neg => Expr::Op(op, vec![Expr::Property("platser".into())]),
                    Op::In => {
                        let first = args.remove(0);
                        Expr::Op(op, vec![first, Expr::List(args)])
                    }
                    Op::Temporal(_) => match interval {
                        Some((a, b)) => Expr::Op(op, vec![args.remove(0), Expr::Interval(a, b)]),
                        None => Expr::Op(op, args),
                    },
                    _ => Expr::Op(op, args),
                }
            })
    })
}

/// Tokens and fragments the text parser has to cope with in any order.
fn soup() -> impl Strategy<Value = String> {
    let tokens = prop::sample::select(vec![
        "(",
        ")",
        ",",
        "'",
        "\"",
        "=",
        "<>",
        "<",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "^",
        "%",
        "AND",
        "OR",
        "NOT",
        "LIKE",
        "BETWEEN",
        "IN",
        "IS",
        "NULL",
        "DIV",
        "TRUE",
        "DATE",
        "TIMESTAMP",
        "INTERVAL",
        "BBOX",
        "POINT",
        "POLYGON",
        "MULTIPOINT",
        "GEOMETRYCOLLECTION",
        "Z",
        "S_INTERSECTS",
        "T_DURING",
        "CASEI",
        "ACCENTI",
        "namn",
        "platser",
        "geometry",
        "1",
        "-2.5",
        "1e999",
        "'x'",
        "'..'",
        "'2024-01-01'",
        "\"höjd m\"",
        "ö",
        ";",
        "\u{0}",
        "å",
    ]);
    prop::collection::vec(tokens, 0..60).prop_map(|t| t.join(" "))
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "and",
            "=",
            "in",
            "s_intersects",
            "t_during",
            "like",
            "x",
            "..",
            "2024-01-01",
            "Point"
        ])
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            (
                prop::sample::select(vec![
                    "op",
                    "args",
                    "property",
                    "date",
                    "timestamp",
                    "interval",
                    "bbox",
                    "type",
                    "coordinates"
                ]),
                inner.clone(),
                prop::sample::select(vec!["op", "args", "property", "bbox"]),
                inner
            )
                .prop_map(|(k1, v1, k2, v2)| serde_json::json!({ k1: v1, k2: v2 })),
        ]
    })
}

proptest! {
    #[test]
    fn printed_trees_parse_back_to_themselves(e in arb_expr()) {
        let text = e.to_string();
        let back = cql2::parse(&text, Lang::Text);
        prop_assert_eq!(back.as_ref().ok(), Some(&e), "{} → {:?}", text, back);
    }

    #[test]
    fn binding_and_evaluating_never_panics(e in arb_expr()) {
        let s = snapshot();
        if let Ok(filter) = Filter::bind(&e, &s.entry, Crs::Crs84, s.collation()) {
            for f in &s.features {
                let _ = filter.matches(f);
            }
            let _ = filter.envelope();
        }
        let _ = Filter::bind(&e, &s.entry, Crs::Epsg(3006), s.collation());
    }

    #[test]
    fn token_soup_never_panics(text in soup()) {
        let s = snapshot();
        if let Ok(e) = cql2::parse(&text, Lang::Text) {
            if let Ok(filter) = Filter::bind(&e, &s.entry, Crs::Crs84, s.collation()) {
                for f in &s.features {
                    let _ = filter.matches(f);
                }
            }
        }
    }

    #[test]
    fn random_json_never_panics(v in arb_json()) {
        let s = snapshot();
        if let Ok(e) = cql2::parse(&v.to_string(), Lang::Json) {
            if let Ok(filter) = Filter::bind(&e, &s.entry, Crs::Crs84, s.collation()) {
                for f in &s.features {
                    let _ = filter.matches(f);
                }
            }
        }
    }

    #[test]
    fn any_string_never_panics(text in "\\PC{0,300}") {
        let _ = cql2::parse(&text, Lang::Text);
        let _ = cql2::parse(&text, Lang::Json);
    }
}
