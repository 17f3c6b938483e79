//! Evaluates a bound CQL2 predicate ([`crate::cql2::bind::Predicate`]) on the in-memory
//! features of one snapshot.
//!
//! Evaluation follows SQL's three-valued logic, as PostGIS does: a comparison with a missing
//! value is unknown, `NOT unknown` is unknown, and only features for which the filter is true
//! match. Text is ordered (`<`, `>`, `BETWEEN`) by the snapshot's collation, as PostgreSQL
//! orders it under a collation; `=`, `<>`, `IN` and `LIKE` compare text exactly.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use geo::{Contains, Intersects};

use super::snapshot::{Feature, Geom, ValueRef};
use crate::catalog::CatalogEntry;
use crate::collation::Collation;
use crate::cql2::ast::{Expr, Op, SpatialOp, TemporalOp};
use crate::cql2::bind::{
    self, compile_like, fold_text, midnight, relate, End, LikeToken, Literal, Pattern, Predicate,
    Scalar, Time,
};
use crate::cql2::Cql2Error;
use crate::crs::Crs;

/// A filter bound to one collection, ready to test features.
#[derive(Debug)]
pub struct Filter {
    pred: Predicate,
    envelope: Option<[f64; 4]>,
    /// The order of text for `<`, `<=`, `>`, `>=` and `BETWEEN`.
    collation: Collation,
}

/// A value met while evaluating.
#[derive(Debug, Clone)]
enum V<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(Cow<'a, str>),
    Bool(bool),
    Time(DateTime<Utc>),
    Json,
}

/// `%`/`_` matching with single-star backtracking: linear for one `%`, at worst
/// (text × pattern) steps, never exponential.
fn like_match(text: &str, pat: &[LikeToken]) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(LikeToken::One) => {
                t += 1;
                p += 1;
            }
            Some(LikeToken::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(LikeToken::Any) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p.min(pat.len())..].iter().all(|x| *x == LikeToken::Any)
}

/// The relation `op` of a feature's geometry to `lit`. Most features are points: they are
/// decided without building a `geo` geometry or a DE-9IM matrix where a cheaper test is exact.
fn spatial(op: SpatialOp, f: &Geom, lit: &Literal) -> Option<bool> {
    if let Geom::Point(x, y) = f {
        let p = geo::Point::new(*x, *y);
        // Outside the literal's envelope a point can only be disjoint from it.
        if lit.rect.is_none_or(|r| !r.intersects(&p)) {
            return Some(op == SpatialOp::Disjoint);
        }
        match (op, &lit.geometry) {
            (SpatialOp::Intersects, g) => return Some(g.intersects(&p)),
            (SpatialOp::Disjoint, g) => return Some(!g.intersects(&p)),
            (SpatialOp::Within, geo::Geometry::Polygon(g)) => return Some(g.contains(&p)),
            (SpatialOp::Within, geo::Geometry::MultiPolygon(g)) => return Some(g.contains(&p)),
            _ => {}
        }
        return relate(op, &geo::Geometry::Point(p), lit);
    }
    match f {
        Geom::Shape(g) => relate(op, g, lit),
        Geom::Point(..) => relate(op, &f.to_geo(), lit),
    }
}

/// The value of `s` for the feature `f`.
fn value<'f>(s: &'f Scalar, f: &'f Feature) -> V<'f> {
    match s {
        Scalar::Int(i) => V::Int(*i),
        Scalar::Real(r) => V::Real(*r),
        Scalar::Text(t) => V::Text(Cow::Borrowed(t)),
        Scalar::Bool(b) => V::Bool(*b),
        Scalar::Time(t) => V::Time(*t),
        Scalar::Attr(i) => match f.value(*i) {
            None | Some(ValueRef::Null) => V::Null,
            Some(ValueRef::Integer(i)) => V::Int(i),
            Some(ValueRef::Real(r)) => V::Real(r),
            Some(ValueRef::Text(t)) => V::Text(Cow::Borrowed(t)),
            Some(ValueRef::Boolean(b)) => V::Bool(b),
            Some(ValueRef::Date(d)) => V::Time(midnight(d)),
            Some(ValueRef::DateTime(t)) => V::Time(t.with_timezone(&Utc)),
            Some(ValueRef::Json(_)) => V::Json,
        },
        Scalar::Neg(x) => match value(x, f) {
            V::Int(i) => i.checked_neg().map_or(V::Real(-(i as f64)), V::Int),
            V::Real(r) => V::Real(-r),
            _ => V::Null,
        },
        Scalar::Arith(op, a, b) => arith(*op, value(a, f), value(b, f)),
        Scalar::Fold(fold, x) => match value(x, f) {
            V::Text(Cow::Borrowed(t)) => V::Text(fold_text(t, *fold)),
            V::Text(Cow::Owned(t)) => V::Text(Cow::Owned(fold_text(&t, *fold).into_owned())),
            other => other,
        },
    }
}

fn arith<'a>(op: Op, a: V<'a>, b: V<'a>) -> V<'a> {
    let real = |v: &V| match v {
        V::Int(i) => Some(*i as f64),
        V::Real(r) => Some(*r),
        _ => None,
    };
    if let (V::Int(x), V::Int(y)) = (&a, &b) {
        let (x, y) = (*x, *y);
        let exact = match op {
            Op::Add => x.checked_add(y),
            Op::Sub => x.checked_sub(y),
            Op::Mul => x.checked_mul(y),
            Op::IntDiv => x.checked_div(y),
            Op::Mod => x.checked_rem(y),
            _ => None,
        };
        if let Some(v) = exact {
            return V::Int(v);
        }
        if matches!(op, Op::IntDiv | Op::Mod) {
            // Division by zero has no value.
            return V::Null;
        }
    }
    let (Some(x), Some(y)) = (real(&a), real(&b)) else {
        return V::Null;
    };
    let v = match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div if y != 0.0 => x / y,
        Op::IntDiv if y != 0.0 => (x / y).trunc(),
        Op::Mod if y != 0.0 => x % y,
        Op::Pow => x.powf(y),
        _ => return V::Null,
    };
    if v.is_finite() {
        V::Real(v)
    } else {
        V::Null
    }
}

/// The order of two values; unknown (`None`) for a missing value or values of different kinds.
/// Texts go by `collation`, which calls two texts equal only if they are the same text.
fn compare(a: &V, b: &V, collation: &Collation) -> Option<Ordering> {
    match (a, b) {
        (V::Int(x), V::Int(y)) => Some(x.cmp(y)),
        (V::Int(x), V::Real(y)) => (*x as f64).partial_cmp(y),
        (V::Real(x), V::Int(y)) => x.partial_cmp(&(*y as f64)),
        (V::Real(x), V::Real(y)) => x.partial_cmp(y),
        (V::Text(x), V::Text(y)) => Some(collation.compare(x, y)),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
        (V::Time(x), V::Time(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// `=`: exact for text (bytes, not the collator), three-valued like `compare`.
fn equal(a: &V, b: &V) -> Option<bool> {
    compare(a, b, &Collation::BYTES).map(Ordering::is_eq)
}

fn instant_of(e: &End, f: &Feature, open: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match e {
        End::Fixed(t) => Some(*t),
        End::Open => Some(open),
        End::Attr(i) => match f.value(*i) {
            Some(ValueRef::Date(d)) => Some(midnight(d)),
            Some(ValueRef::DateTime(t)) => Some(t.with_timezone(&Utc)),
            _ => None,
        },
    }
}

fn span(t: &Time, f: &Feature) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match t {
        Time::Instant(e) => {
            let v = instant_of(e, f, DateTime::<Utc>::MIN_UTC)?;
            Some((v, v))
        }
        Time::Interval(a, b) => Some((
            instant_of(a, f, DateTime::<Utc>::MIN_UTC)?,
            instant_of(b, f, DateTime::<Utc>::MAX_UTC)?,
        )),
    }
}

/// Allen's interval relations as CQL2 defines the T_* functions (instants are intervals
/// whose ends coincide).
fn temporal(
    op: TemporalOp,
    (s1, e1): (DateTime<Utc>, DateTime<Utc>),
    (s2, e2): (DateTime<Utc>, DateTime<Utc>),
) -> bool {
    match op {
        TemporalOp::After => s1 > e2,
        TemporalOp::Before => e1 < s2,
        TemporalOp::Contains => s1 < s2 && e1 > e2,
        TemporalOp::Disjoint => e1 < s2 || s1 > e2,
        TemporalOp::During => s1 > s2 && e1 < e2,
        TemporalOp::Equals => s1 == s2 && e1 == e2,
        TemporalOp::FinishedBy => s1 < s2 && e1 == e2,
        TemporalOp::Finishes => s1 > s2 && e1 == e2,
        TemporalOp::Intersects => s1 <= e2 && e1 >= s2,
        TemporalOp::Meets => e1 == s2,
        TemporalOp::MetBy => s1 == e2,
        TemporalOp::OverlappedBy => s1 > s2 && s1 < e2 && e1 > e2,
        TemporalOp::Overlaps => s1 < s2 && e1 > s2 && e1 < e2,
        TemporalOp::StartedBy => s1 == s2 && e1 > e2,
        TemporalOp::Starts => s1 == s2 && e1 < e2,
    }
}

/// Whether `pred` holds for the feature `f`: `None` is unknown.
fn decide(pred: &Predicate, f: &Feature, c: &Collation) -> Option<bool> {
    match pred {
        Predicate::Const(b) => *b,
        Predicate::And(ps) => {
            let mut unknown = false;
            for p in ps {
                match decide(p, f, c) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            if unknown {
                None
            } else {
                Some(true)
            }
        }
        Predicate::Or(ps) => {
            let mut unknown = false;
            for p in ps {
                match decide(p, f, c) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
        Predicate::Not(p) => decide(p, f, c).map(|b| !b),
        Predicate::Cmp(op, a, b) => {
            let (a, b) = (value(a, f), value(b, f));
            match op {
                Op::Eq => return equal(&a, &b),
                Op::Ne => return equal(&a, &b).map(|e| !e),
                _ => {}
            }
            let o = compare(&a, &b, c)?;
            Some(match op {
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        Predicate::Between(v, low, high) => {
            let v = value(v, f);
            let a = compare(&v, &value(low, f), c).map(|o| o != Ordering::Less);
            let b = compare(&v, &value(high, f), c).map(|o| o != Ordering::Greater);
            match (a, b) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }
        }
        Predicate::In(v, list) => {
            let v = value(v, f);
            if matches!(v, V::Null) {
                return None;
            }
            let mut unknown = false;
            for item in list {
                match equal(&v, &value(item, f)) {
                    Some(true) => return Some(true),
                    None => unknown = true,
                    _ => {}
                }
            }
            if unknown {
                None
            } else {
                Some(false)
            }
        }
        Predicate::Like(v, pattern) => {
            let V::Text(text) = value(v, f) else {
                return None;
            };
            match pattern {
                Pattern::Fixed(p) => Some(like_match(&text, p)),
                Pattern::Computed(s) => match value(s, f) {
                    V::Text(p) => Some(like_match(&text, &compile_like(&p))),
                    _ => None,
                },
            }
        }
        Predicate::IsNull(s) => Some(matches!(value(s, f), V::Null)),
        Predicate::GeometryIsNull => Some(f.geometry.is_none()),
        Predicate::Truth(s) => match value(s, f) {
            V::Bool(b) => Some(b),
            _ => None,
        },
        Predicate::Spatial(op, lit) => spatial(*op, f.geometry.as_ref()?, lit),
        Predicate::ItsOwnGeometry(holds) => f.geometry.as_ref().map(|_| *holds),
        Predicate::Temporal(op, a, b) => Some(temporal(*op, span(a, f)?, span(b, f)?)),
    }
}

impl Filter {
    /// Binds `expr` to the collection `entry`; geometry literals are in `crs`, text is ordered
    /// by `collation` (the snapshot's).
    pub fn bind(
        expr: &Expr,
        entry: &CatalogEntry,
        crs: Crs,
        collation: &Collation,
    ) -> Result<Self, Cql2Error> {
        let pred = bind::bind(expr, entry, crs)?;
        let envelope = pred.envelope();
        Ok(Self {
            pred,
            envelope,
            collation: collation.clone(),
        })
    }

    pub fn matches(&self, f: &Feature) -> bool {
        decide(&self.pred, f, &self.collation) == Some(true)
    }

    /// The bound predicate, for an engine that compiles it (the PostGIS engine's SQL).
    pub fn predicate(&self) -> &Predicate {
        &self.pred
    }

    /// The order of text this filter was bound with.
    pub fn collation(&self) -> &Collation {
        &self.collation
    }

    /// CRS84 box that every matching feature intersects, for an R-tree pre-filter. An empty
    /// intersection of several boxes comes back with west > east (nothing can match).
    pub fn envelope(&self) -> Option<[f64; 4]> {
        self.envelope
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Value;
    use rstest::rstest;

    /// A collection with one text attribute, `namn`.
    fn names_entry() -> CatalogEntry {
        serde_json::from_value(serde_json::json!({
            "id": "t", "title": "t", "description": null, "keywords": [], "theme": null,
            "publisher": null, "licence": null,
            "source": {"name": "t.geojson", "sha256": "0", "layer": "t", "crs": "EPSG:4326"},
            "attributes": [{"name": "namn", "column": "namn", "type": "text"}],
            "geometry_types": ["Point"], "id_field": null, "datetime_field": null,
            "feature_count": 1, "extent": null, "temporal_extent": null,
            "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
            "zoom": [0, 22], "version": 1
        }))
        .expect("a catalog entry")
    }

    fn named(name: &str) -> Feature {
        Feature::new(&names_entry(), 1, "1", &[Value::Text(name.into())], None)
    }

    fn holds(filter: &str, name: &str, collation: &str) -> bool {
        let expr = crate::cql2::parse(filter, crate::cql2::Lang::Text).expect("parses");
        let collation = Collation::parse(collation).expect("collation");
        Filter::bind(&expr, &names_entry(), Crs::Crs84, &collation)
            .expect("binds")
            .matches(&named(name))
    }

    /// Ordering follows the collation: Swedish puts Å, Ä, Ö after Z and case after letters;
    /// bytes put every capital before every small letter and Ä before Å.
    #[rstest]
    #[case::a_ring_after_z("namn > 'Z'", "Åhus", true, false)]
    #[case::a_ring_before_a_umlaut("namn > 'Ängelholm'", "Åhus", false, true)]
    #[case::small_letters_before_z("namn > 'Z'", "apelsin", false, true)]
    #[case::a_umlaut_after_a_ring("namn < 'Åhus'", "Ängelholm", false, true)]
    #[case::o_umlaut_last("namn >= 'Ängelholm'", "Örkelljunga", true, false)]
    #[case::case_second("namn <= 'apelsin'", "Apelsin", false, true)]
    #[case::digits_by_character("namn < '2'", "10", true, false)]
    #[case::between_z_and_o_umlaut("namn BETWEEN 'Z' AND 'Ö'", "Ängelholm", true, false)]
    #[case::between_a_ring_and_a_umlaut("namn BETWEEN 'Å' AND 'Ä'", "Åhus", true, true)]
    #[case::between_a_and_z("namn BETWEEN 'a' AND 'z'", "Zebra", false, false)]
    #[case::between_a_and_z_upper("namn BETWEEN 'A' AND 'Zz'", "apelsin", true, true)]
    fn text_order(
        #[case] filter: &str,
        #[case] name: &str,
        #[case] swedish: bool,
        #[case] bytes_differ: bool,
    ) {
        assert_eq!(holds(filter, name, "sv"), swedish, "sv: {name} {filter}");
        assert_eq!(
            holds(filter, name, "bytes"),
            swedish != bytes_differ,
            "bytes: {name} {filter}"
        );
    }

    /// Equality never asks the collator: texts it finds equal (NFC and NFD å, an ignorable
    /// soft hyphen) are different texts, and `<>`, `IN` agree.
    #[rstest]
    #[case::same("namn = 'Åhus'", "Åhus", true)]
    #[case::nfd("namn = 'A\u{30a}hus'", "Åhus", false)]
    #[case::soft_hyphen("namn = 'Lu\u{ad}nd'", "Lund", false)]
    #[case::case_differs("namn = 'åhus'", "Åhus", false)]
    #[case::not_equal_nfd("namn <> 'A\u{30a}hus'", "Åhus", true)]
    #[case::in_nfd("namn IN ('A\u{30a}hus', 'Lund')", "Åhus", false)]
    #[case::in_same("namn IN ('Åhus', 'Lund')", "Åhus", true)]
    #[case::nfd_orders_apart("namn < 'A\u{30a}hus' OR namn > 'A\u{30a}hus'", "Åhus", true)]
    fn equality_stays_exact(#[case] filter: &str, #[case] name: &str, #[case] want: bool) {
        for collation in ["sv", "und", "bytes"] {
            assert_eq!(
                holds(filter, name, collation),
                want,
                "{collation}: {filter}"
            );
        }
    }

    #[test]
    fn like_patterns() {
        for (text, pat, want) in [
            ("Lund", "L%", true),
            ("Lund", "%und", true),
            ("Lund", "L_nd", true),
            ("Lund", "l%", false),
            ("Lund", "%", true),
            ("", "%", true),
            ("", "_", false),
            ("50%", "50\\%", true),
            ("500", "50\\%", false),
            ("abcabcabd", "%abc%abd", true),
            ("Malmö C", "%ö%", true),
        ] {
            assert_eq!(
                like_match(text, &compile_like(pat)),
                want,
                "{text} LIKE {pat}"
            );
        }
        // Many % on a long text: bounded work, still correct.
        let long = "a".repeat(5000);
        assert!(!like_match(
            &long,
            &compile_like(&"%a".repeat(100).replace("a%a", "a%b"))
        ));
    }

    #[test]
    fn temporal_relations() {
        let t = |s: &str| crate::cql2::parse_timestamp(s).expect("ts");
        let a = (t("2020-01-01T00:00:00Z"), t("2020-06-01T00:00:00Z"));
        let b = (t("2020-03-01T00:00:00Z"), t("2020-12-01T00:00:00Z"));
        assert!(temporal(TemporalOp::Overlaps, a, b));
        assert!(temporal(TemporalOp::OverlappedBy, b, a));
        assert!(temporal(TemporalOp::Intersects, a, b));
        assert!(!temporal(TemporalOp::During, a, b));
        assert!(temporal(TemporalOp::Meets, (a.0, b.0), (b.0, b.1)));
        assert!(temporal(TemporalOp::Before, (a.0, a.0), (b.0, b.1)));
    }
}
