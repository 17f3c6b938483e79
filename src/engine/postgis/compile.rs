//! Compiles a bound query (boxes, `datetime`, attribute equality, a CQL2 [`Predicate`], sort
//! keys) to a SQL condition and an `ORDER BY` on one collection's table. Every value a client
//! gave goes in as a bind parameter with an explicit type (`$3::float8`); the SQL text holds
//! only quoted column names, operators and the collation the server was started with.
//!
//! The SQL means what `engine::filter` means on the memory engine, case by case: SQL's own
//! three-valued logic (which the memory evaluator follows), exact equality of text, order of
//! text by the ICU collation of the same locale, dates as their midnight UTC, numbers compared
//! across integer and real, a result that is not finite (overflow, division by zero, `0 ^ -1`)
//! as a missing value. What PostgreSQL still refuses (integer arithmetic past `numeric`'s
//! 131,072 digits, a LIKE pattern ending in its escape character) comes back as a 400 (see
//! `PostgisSource`).
//!
//! The SQL grows with the filter, never faster: each operand appears once in what is made of
//! it, except `BETWEEN`'s value (twice) and the ends of a temporal relation (instants and
//! attributes, which do not nest).

use std::fmt::Write;

use crate::catalog::{AttrType, CatalogEntry};
use crate::collation::Collation;
use crate::cql2::ast::{Op, SpatialOp, TemporalOp};
use crate::cql2::bind::{End, Fold, LikeToken, Pattern, Predicate, Scalar, Time};
use crate::engine::snapshot::{Equals, Query, SortKey};
use crate::store::postgis::quote_ident;
use crate::store::Value;

/// Parameters of one statement, in $n order.
pub type Params = Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>;

/// A query this engine cannot run on this database, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// The PostgreSQL collations a query may need, looked up once when a version is opened.
#[derive(Debug, Clone, Default)]
pub struct Collations {
    /// Orders text as the server's `--collation` does (`"sv-x-icu"`, or `"C"` for bytes).
    pub order: Option<String>,
    /// ICU's root locale, for case folding of every script (`lower` under a libc "C" locale
    /// folds ASCII only).
    pub root: Option<String>,
}

impl Collations {
    /// The PostgreSQL collation name for `c`: ICU collations are imported by `initdb` under
    /// the locale's tag with `-x-icu`; bytes are the "C" collation.
    pub fn wanted(c: &Collation) -> String {
        match c.name() {
            "bytes" => "C".to_string(),
            name => format!("{name}-x-icu"),
        }
    }

    fn order(&self, c: &str) -> Result<&str, Unsupported> {
        self.order.as_deref().ok_or_else(|| {
            Unsupported(format!(
                "PostgreSQL has no collation {c:?}, which orders text as this server does; \
                 compare text with = or LIKE, or serve the collection from memory"
            ))
        })
    }
}

/// The condition every row of `q` meets, as SQL; values are pushed onto `params`.
pub fn condition(
    q: &Query,
    entry: &CatalogEntry,
    collations: &Collations,
    collation: &Collation,
    params: &mut Params,
) -> Result<String, Unsupported> {
    let mut c = Compiler {
        entry,
        collations,
        collation,
        params,
    };
    let mut parts = Vec::new();
    if !q.bbox.is_empty() {
        let boxes: Vec<String> = q.bbox.iter().map(|b| c.envelope(b)).collect();
        parts.push(format!("({})", boxes.join(" OR ")));
    }
    if let (Some((from, to)), Some(name)) = (q.datetime, &entry.datetime_field) {
        // As the memory engine: a feature without an instant is outside every interval.
        let instant = entry
            .attributes
            .iter()
            .position(|a| &a.name == name)
            .and_then(|i| c.instant_column(i));
        match instant {
            None => parts.push("FALSE".into()),
            Some(t) => {
                let mut tests = vec![format!("{t} IS NOT NULL")];
                if let Some(from) = from {
                    tests.push(format!("{t} >= {}", c.param(from, "timestamptz")));
                }
                if let Some(to) = to {
                    tests.push(format!("{t} <= {}", c.param(to, "timestamptz")));
                }
                parts.push(format!("({})", tests.join(" AND ")));
            }
        }
    }
    for e in &q.equals {
        parts.push(c.equals(e));
    }
    if let Some(filter) = &q.filter {
        // Only rows for which the filter is true: unknown is left out, as by WHERE.
        parts.push(c.predicate(filter.predicate())?);
    }
    Ok(if parts.is_empty() {
        "TRUE".into()
    } else {
        parts.join(" AND ")
    })
}

/// `ORDER BY` for `sort`: as the memory engine sorts, missing values last either way, text by
/// the collation, ties by `hamn_fid`.
pub fn order_by(
    sort: &[SortKey],
    entry: &CatalogEntry,
    collations: &Collations,
    collation: &Collation,
) -> Result<String, Unsupported> {
    let mut out = String::new();
    for k in sort {
        let a = entry
            .attributes
            .get(k.attribute)
            .ok_or_else(|| Unsupported("no such attribute".into()))?;
        let column = quote_ident(&a.column);
        let direction = if k.descending { "DESC" } else { "ASC" };
        match a.kind {
            AttrType::Text => {
                let name = collations.order(&Collations::wanted(collation))?;
                let _ = write!(
                    out,
                    "{column} COLLATE {} {direction} NULLS LAST, ",
                    quote_ident(name)
                );
            }
            AttrType::Json => {
                return Err(Unsupported(format!(
                    "{:?} holds lists or objects, which have no order",
                    a.name
                )))
            }
            _ => {
                let _ = write!(out, "{column} {direction} NULLS LAST, ");
            }
        }
    }
    out.push_str("hamn_fid");
    Ok(out)
}

/// The SQL type of a compiled value. `Int` is exact (`int8`, or `numeric` where integer
/// arithmetic could leave `int8`'s range, as the memory engine's falls back to reals there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Real,
    Text,
    Bool,
    Time,
    Json,
}

struct Compiler<'a> {
    entry: &'a CatalogEntry,
    collations: &'a Collations,
    collation: &'a Collation,
    params: &'a mut Params,
}

/// Combining marks of the scripts in Nordic and European data (Latin, Greek, Cyrillic):
/// ACCENTI removes them after canonical decomposition, as `fold_text` does.
const COMBINING: &str =
    "[\u{0300}-\u{036f}\u{1ab0}-\u{1aff}\u{1dc0}-\u{1dff}\u{20d0}-\u{20ff}\u{fe20}-\u{fe2f}]";

impl Compiler<'_> {
    fn param<T>(&mut self, v: T, ty: &str) -> String
    where
        T: tokio_postgres::types::ToSql + Sync + Send + 'static,
    {
        self.params.push(Box::new(v));
        format!("${}::{ty}", self.params.len())
    }

    fn envelope(&mut self, b: &[f64; 4]) -> String {
        let e = format!(
            "ST_MakeEnvelope({}, {}, {}, {}, 4326)",
            self.param(b[0], "float8"),
            self.param(b[1], "float8"),
            self.param(b[2], "float8"),
            self.param(b[3], "float8")
        );
        format!("ST_Intersects(geom, {e})")
    }

    fn column(&self, i: usize) -> Option<(String, AttrType)> {
        let a = self.entry.attributes.get(i)?;
        Some((quote_ident(&a.column), a.kind))
    }

    /// A date or date-time attribute as an instant: a date is its midnight UTC.
    fn instant_column(&self, i: usize) -> Option<String> {
        let (c, kind) = self.column(i)?;
        match kind {
            AttrType::Date => Some(format!("({c}::timestamp AT TIME ZONE 'UTC')")),
            AttrType::DateTime => Some(c),
            _ => None,
        }
    }

    /// `?name=value`, compared as the memory engine's `equals`: numbers by value, date-times
    /// as instants, text exactly; a value that cannot be of the attribute's type matches none.
    fn equals(&mut self, e: &Equals) -> String {
        let Some((c, kind)) = self.column(e.attribute) else {
            return "FALSE".into();
        };
        match (kind, &e.value) {
            (_, Value::Null) => format!("{c} IS NULL"),
            (AttrType::Integer, Value::Integer(v)) => format!("{c} = {}", self.param(*v, "int8")),
            (AttrType::Integer, Value::Real(v)) => {
                format!("{c}::float8 = {}", self.param(*v, "float8"))
            }
            (AttrType::Real, Value::Real(v)) => format!("{c} = {}", self.param(*v, "float8")),
            (AttrType::Real, Value::Integer(v)) => {
                format!("{c} = {}", self.param(*v as f64, "float8"))
            }
            (AttrType::Text, Value::Text(v)) => format!("{c} = {}", self.param(v.clone(), "text")),
            (AttrType::Boolean, Value::Boolean(v)) => {
                format!("{c} = {}", self.param(*v, "bool"))
            }
            (AttrType::Date, Value::Date(v)) => format!("{c} = {}", self.param(*v, "date")),
            (AttrType::DateTime, Value::DateTime(v)) => format!(
                "{c} = {}",
                self.param(v.with_timezone(&chrono::Utc), "timestamptz")
            ),
            _ => "FALSE".into(),
        }
    }

    fn predicate(&mut self, p: &Predicate) -> Result<String, Unsupported> {
        Ok(match p {
            Predicate::Const(Some(true)) => "TRUE".into(),
            Predicate::Const(Some(false)) => "FALSE".into(),
            Predicate::Const(None) => "NULL::boolean".into(),
            Predicate::And(ps) if ps.is_empty() => "TRUE".into(),
            Predicate::Or(ps) if ps.is_empty() => "FALSE".into(),
            Predicate::And(ps) => self.join(ps, " AND ")?,
            Predicate::Or(ps) => self.join(ps, " OR ")?,
            Predicate::Not(p) => format!("(NOT {})", self.predicate(p)?),
            Predicate::Cmp(op, a, b) => {
                let (a, ta) = self.scalar(a)?;
                let (b, _) = self.scalar(b)?;
                let sql_op = match op {
                    Op::Eq => "=",
                    Op::Ne => "<>",
                    Op::Lt => "<",
                    Op::Le => "<=",
                    Op::Gt => ">",
                    Op::Ge => ">=",
                    other => return Err(Unsupported(format!("{} as a comparison", other.name()))),
                };
                if matches!(op, Op::Eq | Op::Ne) {
                    // Exact for text under any deterministic collation: bytes.
                    format!("({a} {sql_op} {b})")
                } else {
                    let (a, b) = (self.ordered(&a, ta)?, self.ordered(&b, ta)?);
                    format!("({a} {sql_op} {b})")
                }
            }
            Predicate::Between(v, low, high) => {
                let (v, tv) = self.scalar(v)?;
                let (low, _) = self.scalar(low)?;
                let (high, _) = self.scalar(high)?;
                let v = self.ordered(&v, tv)?;
                let (low, high) = (self.ordered(&low, tv)?, self.ordered(&high, tv)?);
                format!("({v} >= {low} AND {v} <= {high})")
            }
            Predicate::In(v, list) => {
                let (v, _) = self.scalar(v)?;
                let items = list
                    .iter()
                    .map(|s| self.scalar(s).map(|(s, _)| s))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("({v} IN ({}))", items.join(", "))
            }
            Predicate::Like(v, pattern) => {
                let (v, _) = self.scalar(v)?;
                let pattern = match pattern {
                    Pattern::Fixed(tokens) => self.param(like_pattern(tokens), "text"),
                    Pattern::Computed(s) => self.scalar(s)?.0,
                };
                // LIKE's escape character is the backslash, as in `compile_like`.
                format!("({v} LIKE {pattern})")
            }
            Predicate::IsNull(s) => format!("({} IS NULL)", self.scalar(s)?.0),
            Predicate::GeometryIsNull => "(geom IS NULL)".into(),
            Predicate::ItsOwnGeometry(holds) => {
                format!("(CASE WHEN geom IS NULL THEN NULL::boolean ELSE {holds} END)")
            }
            Predicate::Truth(s) => format!("({})", self.scalar(s)?.0),
            Predicate::Spatial(op, lit) => {
                let json = geojson::Geometry::from(&lit.geometry).to_string();
                let g = format!(
                    "ST_SetSRID(ST_GeomFromGeoJSON({}), 4326)",
                    self.param(json, "text")
                );
                let f = match op {
                    SpatialOp::Intersects => "ST_Intersects",
                    SpatialOp::Disjoint => "ST_Disjoint",
                    SpatialOp::Contains => "ST_Contains",
                    SpatialOp::Within => "ST_Within",
                    SpatialOp::Equals => "ST_Equals",
                    SpatialOp::Touches => "ST_Touches",
                    SpatialOp::Crosses => "ST_Crosses",
                    SpatialOp::Overlaps => "ST_Overlaps",
                };
                format!("{f}(geom, {g})")
            }
            Predicate::Temporal(op, a, b) => {
                let (s1, e1) = self.span(a)?;
                let (s2, e2) = self.span(b)?;
                let test = temporal(*op, (&s1, &e1), (&s2, &e2));
                // Unknown when an end is missing, whatever the relation (as the memory
                // engine's span() gives up), not decided by the ends that are there.
                format!(
                    "(CASE WHEN {s1} IS NULL OR {e1} IS NULL OR {s2} IS NULL OR {e2} IS NULL \
                     THEN NULL::boolean ELSE {test} END)"
                )
            }
        })
    }

    fn join(&mut self, ps: &[Predicate], sep: &str) -> Result<String, Unsupported> {
        let parts = ps
            .iter()
            .map(|p| self.predicate(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(format!("({})", parts.join(sep)))
    }

    /// An operand of `<`, `>`, `BETWEEN` ready for comparing: text under the collation that
    /// orders it, on every operand (an explicit collation on one side only would clash with
    /// the one a folded operand carries).
    fn ordered(&self, a: &str, ty: Ty) -> Result<String, Unsupported> {
        Ok(if ty == Ty::Text {
            let name = self.collations.order(&Collations::wanted(self.collation))?;
            format!("({a} COLLATE {})", quote_ident(name))
        } else {
            a.to_string()
        })
    }

    fn scalar(&mut self, s: &Scalar) -> Result<(String, Ty), Unsupported> {
        Ok(match s {
            Scalar::Int(i) => (self.param(*i, "int8"), Ty::Int),
            Scalar::Real(r) => (self.param(*r, "float8"), Ty::Real),
            Scalar::Text(t) => (self.param(t.clone(), "text"), Ty::Text),
            Scalar::Bool(b) => (self.param(*b, "bool"), Ty::Bool),
            Scalar::Time(t) => (self.param(*t, "timestamptz"), Ty::Time),
            Scalar::Attr(i) => {
                let (c, kind) = self
                    .column(*i)
                    .ok_or_else(|| Unsupported("no such attribute".into()))?;
                match kind {
                    AttrType::Integer => (c, Ty::Int),
                    AttrType::Real => (c, Ty::Real),
                    AttrType::Text => (c, Ty::Text),
                    AttrType::Boolean => (c, Ty::Bool),
                    AttrType::Date | AttrType::DateTime => (
                        self.instant_column(*i).unwrap_or_else(|| "NULL".into()),
                        Ty::Time,
                    ),
                    AttrType::Json => (c, Ty::Json),
                }
            }
            Scalar::Neg(x) => match self.scalar(x)? {
                (x, Ty::Int) => (format!("(-({x})::numeric)"), Ty::Int),
                (x, _) => (format!("(-({x})::float8)"), Ty::Real),
            },
            Scalar::Arith(op, a, b) => self.arith(*op, a, b)?,
            Scalar::Fold(fold, x) => {
                let (x, _) = self.scalar(x)?;
                let folded = match fold {
                    Fold::Case => {
                        let root = self.collations.root.as_deref().ok_or_else(|| {
                            Unsupported(
                                "PostgreSQL has no ICU collation \"und-x-icu\" for CASEI".into(),
                            )
                        })?;
                        format!("lower(({x}) COLLATE {})", quote_ident(root))
                    }
                    Fold::Accent => {
                        let marks = self.param(COMBINING.to_string(), "text");
                        // fold_text's mappings of letters that do not decompose.
                        format!(
                            "translate(replace(replace(replace(\
                             regexp_replace(normalize(({x}), NFD), {marks}, '', 'g'), \
                             'æ', 'ae'), 'Æ', 'AE'), 'ß', 'ss'), 'øØłŁđĐ', 'oOlLdD')"
                        )
                    }
                };
                // Back to the default collation, so that a comparison around it is ordered
                // by the collation it names, not the one the folding needed.
                (format!("({folded} COLLATE \"default\")"), Ty::Text)
            }
        })
    }

    /// Arithmetic as the memory engine's: integers exactly (in `numeric`, which cannot
    /// overflow where the memory engine would fall back to reals), `/` and anything with a
    /// real in `float8` through the `hamn.cql2_*` functions (migrations/0006), which give no
    /// value where the memory engine's result is not finite instead of raising an error.
    fn arith(&mut self, op: Op, a: &Scalar, b: &Scalar) -> Result<(String, Ty), Unsupported> {
        let (a, ta) = self.scalar(a)?;
        let (b, tb) = self.scalar(b)?;
        let ints = ta == Ty::Int && tb == Ty::Int;
        let real = |f: &str| format!("hamn.cql2_{f}(({a})::float8, ({b})::float8)");
        Ok(match op {
            Op::Add if ints => (format!("(({a})::numeric + ({b})::numeric)"), Ty::Int),
            Op::Sub if ints => (format!("(({a})::numeric - ({b})::numeric)"), Ty::Int),
            Op::Mul if ints => (format!("(({a})::numeric * ({b})::numeric)"), Ty::Int),
            // Truncating, as Rust's integer division; no value for a zero divisor.
            Op::IntDiv if ints => (
                format!("div(({a})::numeric, NULLIF(({b})::numeric, 0))"),
                Ty::Int,
            ),
            // The dividend's sign, as Rust's %.
            Op::Mod if ints => (
                format!("mod(({a})::numeric, NULLIF(({b})::numeric, 0))"),
                Ty::Int,
            ),
            Op::Add => (real("add"), Ty::Real),
            Op::Sub => (real("sub"), Ty::Real),
            Op::Mul => (real("mul"), Ty::Real),
            Op::Div => (real("div"), Ty::Real),
            Op::IntDiv => (format!("trunc({})", real("div")), Ty::Real),
            Op::Mod => (real("mod"), Ty::Real),
            Op::Pow => (real("pow"), Ty::Real),
            other => return Err(Unsupported(format!("{} as arithmetic", other.name()))),
        })
    }

    fn end(&mut self, e: &End, open: &str) -> String {
        match e {
            End::Fixed(t) => self.param(*t, "timestamptz"),
            End::Open => format!("'{open}'::timestamptz"),
            End::Attr(i) => self.instant_column(*i).unwrap_or_else(|| "NULL".into()),
        }
    }

    fn span(&mut self, t: &Time) -> Result<(String, String), Unsupported> {
        Ok(match t {
            Time::Instant(e) => {
                let v = self.end(e, "-infinity");
                (v.clone(), v)
            }
            Time::Interval(a, b) => (self.end(a, "-infinity"), self.end(b, "infinity")),
        })
    }
}

/// A compiled pattern back as text for SQL's LIKE (backslash escapes `%`, `_` and itself).
fn like_pattern(tokens: &[LikeToken]) -> String {
    let mut out = String::new();
    for t in tokens {
        match t {
            LikeToken::Any => out.push('%'),
            LikeToken::One => out.push('_'),
            LikeToken::Char(c) => {
                if matches!(c, '%' | '_' | '\\') {
                    out.push('\\');
                }
                out.push(*c);
            }
        }
    }
    out
}

/// Allen's relations, as `engine::filter::temporal` defines them.
fn temporal(op: TemporalOp, (s1, e1): (&str, &str), (s2, e2): (&str, &str)) -> String {
    match op {
        TemporalOp::After => format!("({s1} > {e2})"),
        TemporalOp::Before => format!("({e1} < {s2})"),
        TemporalOp::Contains => format!("({s1} < {s2} AND {e1} > {e2})"),
        TemporalOp::Disjoint => format!("({e1} < {s2} OR {s1} > {e2})"),
        TemporalOp::During => format!("({s1} > {s2} AND {e1} < {e2})"),
        TemporalOp::Equals => format!("({s1} = {s2} AND {e1} = {e2})"),
        TemporalOp::FinishedBy => format!("({s1} < {s2} AND {e1} = {e2})"),
        TemporalOp::Finishes => format!("({s1} > {s2} AND {e1} = {e2})"),
        TemporalOp::Intersects => format!("({s1} <= {e2} AND {e1} >= {s2})"),
        TemporalOp::Meets => format!("({e1} = {s2})"),
        TemporalOp::MetBy => format!("({s1} = {e2})"),
        TemporalOp::OverlappedBy => format!("({s1} > {s2} AND {s1} < {e2} AND {e1} > {e2})"),
        TemporalOp::Overlaps => format!("({s1} < {s2} AND {e1} > {s2} AND {e1} < {e2})"),
        TemporalOp::StartedBy => format!("({s1} = {s2} AND {e1} > {e2})"),
        TemporalOp::Starts => format!("({s1} = {s2} AND {e1} < {e2})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_round_trip_their_escapes() {
        use crate::cql2::bind::compile_like;
        for p in ["L%", "%und", "L_nd", "50\\%", "a\\_b", "x\\\\y", "%%a"] {
            let tokens = compile_like(p);
            assert_eq!(compile_like(&like_pattern(&tokens)), tokens, "{p}");
        }
    }
}
