//! Binds a parsed filter to one collection and evaluates it on its features in memory.
//!
//! Binding resolves every property name against the collection's queryables (an unknown name
//! is an error naming it), checks operand types once, moves geometry literals into CRS84 and
//! pre-compiles LIKE patterns, so evaluating a feature does no lookups and no parsing.
//! Evaluation follows SQL's three-valued logic, as PostGIS does: a comparison with a missing
//! value is unknown, `NOT unknown` is unknown, and only features for which the filter is true
//! match. Text is ordered (`<`, `>`, `BETWEEN`) by the snapshot's collation, as PostgreSQL
//! orders it under a collation; `=`, `<>`, `IN` and `LIKE` compare text exactly.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use geo::{BoundingRect, Contains, Intersects, Relate};

use super::ast::{Expr, Op, SpatialOp, TemporalOp};
use super::Cql2Error;
use crate::catalog::{AttrType, CatalogEntry};
use crate::collation::Collation;
use crate::crs::{self, Crs};
use crate::engine::snapshot::{Feature, Geom};
use crate::store::Value;

/// The name the geometry goes by in filters (as in `/queryables`).
pub const GEOMETRY: &str = "geometry";

/// A filter bound to one collection, ready to test features.
#[derive(Debug)]
pub struct Filter {
    pred: Pred,
    envelope: Option<[f64; 4]>,
    /// The order of text for `<`, `<=`, `>`, `>=` and `BETWEEN`.
    collation: Collation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Num,
    Text,
    Bool,
    Time,
    /// Lists and other structured values: only `IS NULL` applies.
    Json,
}

#[derive(Debug)]
enum Pred {
    Const(Option<bool>),
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    Cmp(Op, Scalar, Scalar),
    Between(Scalar, Scalar, Scalar),
    In(Scalar, Vec<Scalar>),
    Like(Scalar, Pattern),
    IsNull(Scalar),
    GeometryIsNull,
    /// A spatial relation of the feature's geometry with itself: unknown without one.
    ItsOwnGeometry(bool),
    Truth(Scalar),
    Spatial(SpatialOp, Literal),
    Temporal(TemporalOp, Time, Time),
}

#[derive(Debug)]
enum Pattern {
    Fixed(Vec<P>),
    Computed(Scalar),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum P {
    Char(char),
    One,
    Any,
}

#[derive(Debug)]
enum Scalar {
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
    Time(DateTime<Utc>),
    Attr(usize),
    Arith(Op, Box<Scalar>, Box<Scalar>),
    Neg(Box<Scalar>),
    Fold(Fold, Box<Scalar>),
}

#[derive(Debug, Clone, Copy)]
enum Fold {
    Case,
    Accent,
}

/// A geometry literal in CRS84 with its envelope (the feature's geometry is the other side).
#[derive(Debug)]
struct Literal {
    geometry: geo::Geometry<f64>,
    rect: Option<geo::Rect<f64>>,
}

/// One side of a temporal predicate: an instant or an interval; ends may be attributes.
#[derive(Debug)]
enum Time {
    Instant(End),
    Interval(End, End),
}

#[derive(Debug)]
enum End {
    Fixed(DateTime<Utc>),
    Attr(usize),
    Open,
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

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

struct Binder<'a> {
    entry: &'a CatalogEntry,
    crs: Crs,
}

fn bad(message: impl Into<String>) -> Cql2Error {
    Cql2Error {
        message: message.into(),
        position: None,
    }
}

impl Binder<'_> {
    fn attribute(&self, name: &str) -> Result<(usize, AttrType), Cql2Error> {
        self.entry
            .attributes
            .iter()
            .position(|a| a.name == name)
            .map(|i| (i, self.entry.attributes[i].kind))
            .ok_or_else(|| {
                bad(format!(
                    "no queryable {name:?} in collection {}; see /collections/{}/queryables",
                    self.entry.id, self.entry.id
                ))
            })
    }

    fn is_geometry(&self, e: &Expr) -> bool {
        matches!(e, Expr::Property(p) if p == GEOMETRY
            && !self.entry.attributes.iter().any(|a| a.name == GEOMETRY))
    }

    fn pred(&self, e: &Expr) -> Result<Pred, Cql2Error> {
        arity(e)?;
        Ok(match e {
            Expr::Bool(b) => Pred::Const(Some(*b)),
            Expr::Property(_) => {
                let (s, ty) = self.scalar(e)?;
                if ty != Ty::Bool {
                    return Err(bad(format!(
                        "{} is not true/false; compare it with a value",
                        describe(e)
                    )));
                }
                Pred::Truth(s)
            }
            Expr::Op(Op::And, args) => Pred::And(
                args.iter()
                    .map(|a| self.pred(a))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Op(Op::Or, args) => Pred::Or(
                args.iter()
                    .map(|a| self.pred(a))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Op(Op::Not, args) => Pred::Not(Box::new(self.pred(&args[0])?)),
            Expr::Op(op @ (Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge), args) => {
                let (a, b) = self.comparable(&args[0], &args[1], op.name())?;
                Pred::Cmp(*op, a, b)
            }
            Expr::Op(Op::Between, args) => {
                let (v, low) = self.comparable(&args[0], &args[1], "between")?;
                let (_, high) = self.comparable(&args[0], &args[2], "between")?;
                Pred::Between(v, low, high)
            }
            Expr::Op(Op::In, args) => {
                let Expr::List(items) = &args[1] else {
                    return Err(bad("IN takes a list of values"));
                };
                let mut list = Vec::with_capacity(items.len());
                let mut value = None;
                for item in items {
                    let (v, i) = self.comparable(&args[0], item, "in")?;
                    value.get_or_insert(v);
                    list.push(i);
                }
                let value = match value {
                    Some(v) => v,
                    None => {
                        // Still check that the left operand names something real.
                        self.scalar(&args[0])?;
                        return Ok(Pred::Const(Some(false)));
                    }
                };
                Pred::In(value, list)
            }
            Expr::Op(Op::Like, args) => {
                let (v, ty) = self.scalar(&args[0])?;
                let (p, pty) = self.scalar(&args[1])?;
                if ty != Ty::Text || pty != Ty::Text {
                    return Err(bad("LIKE compares text with a text pattern"));
                }
                let pattern = match p {
                    Scalar::Text(t) => Pattern::Fixed(compile_like(&t)),
                    other => Pattern::Computed(other),
                };
                Pred::Like(v, pattern)
            }
            Expr::Op(Op::IsNull, args) => {
                if self.is_geometry(&args[0]) {
                    Pred::GeometryIsNull
                } else {
                    Pred::IsNull(self.scalar(&args[0])?.0)
                }
            }
            Expr::Op(Op::Spatial(op), args) => self.spatial(*op, &args[0], &args[1])?,
            Expr::Op(Op::Temporal(op), args) => {
                Pred::Temporal(*op, self.time(&args[0])?, self.time(&args[1])?)
            }
            other => {
                return Err(bad(format!(
                    "{} is not a condition (true or false)",
                    describe(other)
                )))
            }
        })
    }

    /// Two operands that must be of one type; a string literal against a date/time operand
    /// is read as a date or timestamp (what a person writing `d > '2024-01-01'` means).
    fn comparable(&self, a: &Expr, b: &Expr, op: &str) -> Result<(Scalar, Scalar), Cql2Error> {
        let (sa, ta) = self.scalar(a)?;
        let (sb, tb) = self.scalar(b)?;
        let coerce = |s: Scalar| match s {
            Scalar::Text(t) => super::parse_instant(&t).map(Scalar::Time).ok_or_else(|| {
                bad(format!(
                    "{t:?} is not a date or timestamp; write DATE('YYYY-MM-DD') or TIMESTAMP('…Z')"
                ))
            }),
            other => Ok(other),
        };
        match (ta, tb) {
            (Ty::Json, _) | (_, Ty::Json) => Err(bad(format!(
                "{op}: {} holds lists or objects; only IS NULL applies to it",
                if ta == Ty::Json {
                    describe(a)
                } else {
                    describe(b)
                }
            ))),
            (x, y) if x == y => Ok((sa, sb)),
            (Ty::Time, Ty::Text) => Ok((sa, coerce(sb)?)),
            (Ty::Text, Ty::Time) => Ok((coerce(sa)?, sb)),
            _ => Err(bad(format!(
                "{op}: cannot compare {} ({}) with {} ({})",
                describe(a),
                ty_name(ta),
                describe(b),
                ty_name(tb)
            ))),
        }
    }

    fn scalar(&self, e: &Expr) -> Result<(Scalar, Ty), Cql2Error> {
        arity(e)?;
        Ok(match e {
            Expr::Int(i) => (Scalar::Int(*i), Ty::Num),
            Expr::Real(r) => (Scalar::Real(*r), Ty::Num),
            Expr::Str(s) => (Scalar::Text(s.clone()), Ty::Text),
            Expr::Bool(b) => (Scalar::Bool(*b), Ty::Bool),
            Expr::Date(d) => (Scalar::Time(midnight(*d)), Ty::Time),
            Expr::Timestamp(t) => (Scalar::Time(*t), Ty::Time),
            Expr::Property(name) => {
                if self.is_geometry(e) {
                    return Err(bad(
                        "the geometry is tested with S_INTERSECTS and the other S_* functions",
                    ));
                }
                let (i, kind) = self.attribute(name)?;
                let ty = match kind {
                    AttrType::Integer | AttrType::Real => Ty::Num,
                    AttrType::Text => Ty::Text,
                    AttrType::Boolean => Ty::Bool,
                    AttrType::Date | AttrType::DateTime => Ty::Time,
                    AttrType::Json => Ty::Json,
                };
                (Scalar::Attr(i), ty)
            }
            Expr::Op(Op::Neg, args) => (Scalar::Neg(Box::new(self.number(&args[0])?)), Ty::Num),
            Expr::Op(
                op @ (Op::Add | Op::Sub | Op::Mul | Op::Div | Op::IntDiv | Op::Mod | Op::Pow),
                args,
            ) => (
                Scalar::Arith(
                    *op,
                    Box::new(self.number(&args[0])?),
                    Box::new(self.number(&args[1])?),
                ),
                Ty::Num,
            ),
            Expr::Op(op @ (Op::Casei | Op::Accenti), args) => {
                let (s, ty) = self.scalar(&args[0])?;
                if ty != Ty::Text {
                    return Err(bad(format!("{} takes text", op.name().to_uppercase())));
                }
                let fold = if *op == Op::Casei {
                    Fold::Case
                } else {
                    Fold::Accent
                };
                let s = match s {
                    Scalar::Text(t) => Scalar::Text(fold_text(&t, fold).into_owned()),
                    other => Scalar::Fold(fold, Box::new(other)),
                };
                (s, Ty::Text)
            }
            other => {
                return Err(bad(format!(
                    "{} cannot be compared as a value here",
                    describe(other)
                )))
            }
        })
    }

    fn number(&self, e: &Expr) -> Result<Scalar, Cql2Error> {
        let (s, ty) = self.scalar(e)?;
        if ty != Ty::Num {
            return Err(bad(format!(
                "arithmetic needs numbers; {} is {}",
                describe(e),
                ty_name(ty)
            )));
        }
        Ok(s)
    }

    fn literal(&self, g: &geo::Geometry<f64>) -> Result<Literal, Cql2Error> {
        let geometry = crs::to_crs84(g, self.crs).map_err(|e| bad(e.to_string()))?;
        Ok(Literal {
            rect: geometry.bounding_rect(),
            geometry,
        })
    }

    fn spatial(&self, op: SpatialOp, a: &Expr, b: &Expr) -> Result<Pred, Cql2Error> {
        let (ga, gb) = (self.is_geometry(a), self.is_geometry(b));
        Ok(match (a, b) {
            (_, Expr::Geometry(g)) if ga => Pred::Spatial(op, self.literal(g)?),
            (Expr::Geometry(g), _) if gb => {
                // The feature is always the first operand inside; swap the asymmetric pairs.
                let op = match op {
                    SpatialOp::Within => SpatialOp::Contains,
                    SpatialOp::Contains => SpatialOp::Within,
                    other => other,
                };
                Pred::Spatial(op, self.literal(g)?)
            }
            (Expr::Geometry(x), Expr::Geometry(y)) => {
                let (x, y) = (self.literal(x)?, self.literal(y)?);
                Pred::Const(relate(op, &x.geometry, &y))
            }
            // A geometry equals, intersects, contains and lies within itself; it does not
            // touch, cross, overlap or stand apart from itself.
            _ if ga && gb => Pred::ItsOwnGeometry(matches!(
                op,
                SpatialOp::Intersects | SpatialOp::Equals | SpatialOp::Within | SpatialOp::Contains
            )),
            _ => {
                let wrong = if ga || matches!(a, Expr::Geometry(_)) {
                    b
                } else {
                    a
                };
                return Err(bad(format!(
                    "{}: {} is not a geometry; use the property {GEOMETRY:?} or a WKT/GeoJSON/BBOX literal",
                    Op::Spatial(op).name().to_uppercase(),
                    describe(wrong)
                )));
            }
        })
    }

    fn end(&self, e: &Expr) -> Result<End, Cql2Error> {
        match e {
            Expr::Date(d) => Ok(End::Fixed(midnight(*d))),
            Expr::Timestamp(t) => Ok(End::Fixed(*t)),
            Expr::Property(name) => {
                let (i, kind) = self.attribute(name)?;
                if matches!(kind, AttrType::Date | AttrType::DateTime) {
                    Ok(End::Attr(i))
                } else {
                    Err(bad(format!(
                        "{name:?} is not a date or date-time attribute"
                    )))
                }
            }
            Expr::Str(s) => super::parse_instant(s)
                .map(End::Fixed)
                .ok_or_else(|| bad(format!("{s:?} is not a date or timestamp"))),
            other => Err(bad(format!(
                "{} is not an instant or interval",
                describe(other)
            ))),
        }
    }

    fn time(&self, e: &Expr) -> Result<Time, Cql2Error> {
        match e {
            Expr::Interval(a, b) => {
                let end = |x: &Option<Box<Expr>>| match x {
                    None => Ok(End::Open),
                    Some(x) => self.end(x),
                };
                Ok(Time::Interval(end(a)?, end(b)?))
            }
            other => Ok(Time::Instant(self.end(other)?)),
        }
    }
}

/// Both parsers build operations with the right number of arguments; a tree made another way
/// is checked here, so that binding never indexes past the arguments.
fn arity(e: &Expr) -> Result<(), Cql2Error> {
    if let Expr::Op(op, args) = e {
        let (least, most) = op.arity();
        if args.len() < least || args.len() > most {
            return Err(bad(format!(
                "{} has {} arguments",
                op.name().to_uppercase(),
                args.len()
            )));
        }
    }
    Ok(())
}

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::Num => "a number",
        Ty::Text => "text",
        Ty::Bool => "true/false",
        Ty::Time => "a date/time",
        Ty::Json => "a list or object",
    }
}

fn describe(e: &Expr) -> String {
    match e {
        Expr::Property(p) => format!("property {p:?}"),
        Expr::Str(s) => format!("'{}'", s.chars().take(40).collect::<String>()),
        Expr::Int(i) => i.to_string(),
        Expr::Real(r) => r.to_string(),
        Expr::Bool(b) => b.to_string(),
        Expr::Date(d) => format!("DATE('{d}')"),
        Expr::Timestamp(t) => format!("TIMESTAMP('{}')", t.to_rfc3339()),
        Expr::Interval(..) => "an INTERVAL".into(),
        Expr::Geometry(_) => "a geometry".into(),
        Expr::List(_) => "a list".into(),
        Expr::Op(op, _) => format!("the result of {}", op.name().to_uppercase()),
    }
}

fn compile_like(pattern: &str) -> Vec<P> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' => {
                if out.last() == Some(&P::Any) {
                    continue;
                }
                P::Any
            }
            '_' => P::One,
            '\\' => P::Char(chars.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    out
}

/// `%`/`_` matching with single-star backtracking: linear for one `%`, at worst
/// (text × pattern) steps, never exponential.
fn like_match(text: &str, pat: &[P]) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(P::One) => {
                t += 1;
                p += 1;
            }
            Some(P::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(P::Any) => {
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
    pat[p.min(pat.len())..].iter().all(|x| *x == P::Any)
}

/// Case folding (CASEI) or accent stripping (ACCENTI), the way PostgreSQL's `lower` and
/// `unaccent` do for the letters Swedish data holds: å, ä, ö, é, ü … lose their marks; æ, ø,
/// ß, ł, đ (which do not decompose) are mapped like `unaccent` maps them.
fn fold_text(s: &str, fold: Fold) -> Cow<'_, str> {
    match fold {
        Fold::Case => {
            if s.chars().any(char::is_uppercase) {
                Cow::Owned(s.to_lowercase())
            } else {
                Cow::Borrowed(s)
            }
        }
        Fold::Accent => {
            if s.is_ascii() {
                return Cow::Borrowed(s);
            }
            use unicode_normalization::char::is_combining_mark;
            use unicode_normalization::UnicodeNormalization;
            let mut out = String::with_capacity(s.len());
            for c in s.nfd() {
                match c {
                    c if is_combining_mark(c) => {}
                    'æ' => out.push_str("ae"),
                    'Æ' => out.push_str("AE"),
                    'ø' => out.push('o'),
                    'Ø' => out.push('O'),
                    'ß' => out.push_str("ss"),
                    'ł' => out.push('l'),
                    'Ł' => out.push('L'),
                    'đ' => out.push('d'),
                    'Đ' => out.push('D'),
                    c => out.push(c),
                }
            }
            Cow::Owned(out)
        }
    }
}

/// The relation `op` between a feature's geometry and a literal; `None` when it cannot be
/// decided. geo's DE-9IM `relate` asserts on some invalid polygons (a self-crossing ring in a
/// user's literal or in the data): such a case is unknown rather than a dead worker.
fn relate(op: SpatialOp, feature: &geo::Geometry<f64>, lit: &Literal) -> Option<bool> {
    let g = &lit.geometry;
    match op {
        SpatialOp::Intersects => Some(feature.intersects(g)),
        SpatialOp::Disjoint => Some(!feature.intersects(g)),
        _ => {
            let m = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| feature.relate(g)))
                .ok()?;
            Some(match op {
                SpatialOp::Contains => m.is_contains(),
                SpatialOp::Within => m.is_within(),
                SpatialOp::Equals => m.is_equal_topo(),
                SpatialOp::Touches => m.is_touches(),
                SpatialOp::Crosses => m.is_crosses(),
                SpatialOp::Overlaps => m.is_overlaps(),
                SpatialOp::Intersects | SpatialOp::Disjoint => m.is_intersects(),
            })
        }
    }
}

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

impl Scalar {
    fn eval<'f>(&'f self, f: &'f Feature) -> V<'f> {
        match self {
            Scalar::Int(i) => V::Int(*i),
            Scalar::Real(r) => V::Real(*r),
            Scalar::Text(t) => V::Text(Cow::Borrowed(t)),
            Scalar::Bool(b) => V::Bool(*b),
            Scalar::Time(t) => V::Time(*t),
            Scalar::Attr(i) => match f.values.get(*i) {
                None | Some(Value::Null) => V::Null,
                Some(Value::Integer(i)) => V::Int(*i),
                Some(Value::Real(r)) => V::Real(*r),
                Some(Value::Text(t)) => V::Text(Cow::Borrowed(t)),
                Some(Value::Boolean(b)) => V::Bool(*b),
                Some(Value::Date(d)) => V::Time(midnight(*d)),
                Some(Value::DateTime(t)) => V::Time(t.with_timezone(&Utc)),
                Some(Value::Json(_)) => V::Json,
            },
            Scalar::Neg(x) => match x.eval(f) {
                V::Int(i) => i.checked_neg().map_or(V::Real(-(i as f64)), V::Int),
                V::Real(r) => V::Real(-r),
                _ => V::Null,
            },
            Scalar::Arith(op, a, b) => arith(*op, a.eval(f), b.eval(f)),
            Scalar::Fold(fold, x) => match x.eval(f) {
                V::Text(Cow::Borrowed(t)) => V::Text(fold_text(t, *fold)),
                V::Text(Cow::Owned(t)) => V::Text(Cow::Owned(fold_text(&t, *fold).into_owned())),
                other => other,
            },
        }
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
        End::Attr(i) => match f.values.get(*i) {
            Some(Value::Date(d)) => Some(midnight(*d)),
            Some(Value::DateTime(t)) => Some(t.with_timezone(&Utc)),
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

impl Pred {
    fn eval(&self, f: &Feature, c: &Collation) -> Option<bool> {
        match self {
            Pred::Const(b) => *b,
            Pred::And(ps) => {
                let mut unknown = false;
                for p in ps {
                    match p.eval(f, c) {
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
            Pred::Or(ps) => {
                let mut unknown = false;
                for p in ps {
                    match p.eval(f, c) {
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
            Pred::Not(p) => p.eval(f, c).map(|b| !b),
            Pred::Cmp(op, a, b) => {
                let (a, b) = (a.eval(f), b.eval(f));
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
            Pred::Between(v, low, high) => {
                let v = v.eval(f);
                let a = compare(&v, &low.eval(f), c).map(|o| o != Ordering::Less);
                let b = compare(&v, &high.eval(f), c).map(|o| o != Ordering::Greater);
                match (a, b) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                }
            }
            Pred::In(v, list) => {
                let v = v.eval(f);
                if matches!(v, V::Null) {
                    return None;
                }
                let mut unknown = false;
                for item in list {
                    match equal(&v, &item.eval(f)) {
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
            Pred::Like(v, pattern) => {
                let V::Text(text) = v.eval(f) else {
                    return None;
                };
                match pattern {
                    Pattern::Fixed(p) => Some(like_match(&text, p)),
                    Pattern::Computed(s) => match s.eval(f) {
                        V::Text(p) => Some(like_match(&text, &compile_like(&p))),
                        _ => None,
                    },
                }
            }
            Pred::IsNull(s) => Some(matches!(s.eval(f), V::Null)),
            Pred::GeometryIsNull => Some(f.geometry.is_none()),
            Pred::Truth(s) => match s.eval(f) {
                V::Bool(b) => Some(b),
                _ => None,
            },
            Pred::Spatial(op, lit) => spatial(*op, f.geometry.as_ref()?, lit),
            Pred::ItsOwnGeometry(holds) => f.geometry.as_ref().map(|_| *holds),
            Pred::Temporal(op, a, b) => Some(temporal(*op, span(a, f)?, span(b, f)?)),
        }
    }

    /// The envelope every match must intersect, if the filter is a conjunction that says so.
    fn envelope(&self) -> Option<[f64; 4]> {
        match self {
            Pred::Spatial(op, lit) if *op != SpatialOp::Disjoint => lit
                .rect
                .map(|r| [r.min().x, r.min().y, r.max().x, r.max().y]),
            Pred::And(ps) => ps.iter().filter_map(Pred::envelope).reduce(|a, b| {
                [
                    a[0].max(b[0]),
                    a[1].max(b[1]),
                    a[2].min(b[2]),
                    a[3].min(b[3]),
                ]
            }),
            _ => None,
        }
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
        let pred = Binder { entry, crs }.pred(expr)?;
        let envelope = pred.envelope();
        Ok(Self {
            pred,
            envelope,
            collation: collation.clone(),
        })
    }

    pub fn matches(&self, f: &Feature) -> bool {
        self.pred.eval(f, &self.collation) == Some(true)
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
        Feature {
            fid: 1,
            id: "1".into(),
            values: vec![Value::Text(name.into())].into_boxed_slice(),
            geometry: None,
            json: "{}".into(),
            instant: None,
        }
    }

    fn holds(filter: &str, name: &str, collation: &str) -> bool {
        let expr = super::super::parse(filter, super::super::Lang::Text).expect("parses");
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
    fn folding_matches_lower_and_unaccent() {
        assert_eq!(fold_text("Ängelholm", Fold::Case), "ängelholm");
        assert_eq!(fold_text("Malmö Ålänning", Fold::Accent), "Malmo Alanning");
        assert_eq!(fold_text("Søren Æble", Fold::Accent), "Soren AEble");
        assert_eq!(fold_text("Lund", Fold::Accent), "Lund");
    }

    #[test]
    fn temporal_relations() {
        let t = |s: &str| super::super::parse_timestamp(s).expect("ts");
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
