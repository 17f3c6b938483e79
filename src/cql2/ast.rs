//! The one syntax tree both CQL2 encodings parse into. It says what was written, not whether
//! it makes sense for a collection: names and types are checked when it is bound to one
//! (see `bind`). Operators are an enum with their arity, so neither parser can build a call
//! with the wrong number of arguments.

use chrono::{DateTime, NaiveDate, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Bool(bool),
    /// Integers are kept apart from reals so that large ids compare exactly.
    Int(i64),
    Real(f64),
    Str(String),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
    /// `INTERVAL(a, b)`: each end a date, a timestamp, a property or open (`None`, `'..'`).
    Interval(Option<Box<Expr>>, Option<Box<Expr>>),
    /// A geometry literal (WKT, GeoJSON or `BBOX`) in the coordinates as written: the
    /// filter's CRS, not yet CRS84.
    Geometry(geo::Geometry<f64>),
    Property(String),
    /// A list: only as the second argument of `IN`.
    List(Vec<Expr>),
    Op(Op, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    And,
    Or,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    Between,
    In,
    IsNull,
    Casei,
    Accenti,
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Mod,
    Pow,
    /// Unary minus (CQL2-JSON writes `{"op": "-", "args": [x]}` … or `-1 * x`).
    Neg,
    Spatial(SpatialOp),
    Temporal(TemporalOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpatialOp {
    Intersects,
    Disjoint,
    Contains,
    Within,
    Equals,
    Touches,
    Crosses,
    Overlaps,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporalOp {
    After,
    Before,
    Contains,
    Disjoint,
    During,
    Equals,
    FinishedBy,
    Finishes,
    Intersects,
    Meets,
    MetBy,
    OverlappedBy,
    Overlaps,
    StartedBy,
    Starts,
}

/// How many arguments an operator takes: `(least, most)`.
impl Op {
    pub fn arity(self) -> (usize, usize) {
        match self {
            Op::And | Op::Or => (2, usize::MAX),
            Op::Not | Op::IsNull | Op::Casei | Op::Accenti | Op::Neg => (1, 1),
            Op::Between => (3, 3),
            _ => (2, 2),
        }
    }

    /// The operator's name in CQL2-JSON (`"op"`), also used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::And => "and",
            Op::Or => "or",
            Op::Not => "not",
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Like => "like",
            Op::Between => "between",
            Op::In => "in",
            Op::IsNull => "isNull",
            Op::Casei => "casei",
            Op::Accenti => "accenti",
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
            Op::IntDiv => "div",
            Op::Mod => "%",
            Op::Pow => "^",
            Op::Neg => "-",
            Op::Spatial(s) => match s {
                SpatialOp::Intersects => "s_intersects",
                SpatialOp::Disjoint => "s_disjoint",
                SpatialOp::Contains => "s_contains",
                SpatialOp::Within => "s_within",
                SpatialOp::Equals => "s_equals",
                SpatialOp::Touches => "s_touches",
                SpatialOp::Crosses => "s_crosses",
                SpatialOp::Overlaps => "s_overlaps",
            },
            Op::Temporal(t) => match t {
                TemporalOp::After => "t_after",
                TemporalOp::Before => "t_before",
                TemporalOp::Contains => "t_contains",
                TemporalOp::Disjoint => "t_disjoint",
                TemporalOp::During => "t_during",
                TemporalOp::Equals => "t_equals",
                TemporalOp::FinishedBy => "t_finishedBy",
                TemporalOp::Finishes => "t_finishes",
                TemporalOp::Intersects => "t_intersects",
                TemporalOp::Meets => "t_meets",
                TemporalOp::MetBy => "t_metBy",
                TemporalOp::OverlappedBy => "t_overlappedBy",
                TemporalOp::Overlaps => "t_overlaps",
                TemporalOp::StartedBy => "t_startedBy",
                TemporalOp::Starts => "t_starts",
            },
        }
    }

    /// A function-style operator by name, case-insensitively: the spatial and temporal
    /// predicates, `CASEI` and `ACCENTI` (CQL2-Text calls them like functions; CQL2-JSON
    /// names every operator this way).
    pub fn function(name: &str) -> Option<Op> {
        const ALL: &[Op] = &[
            Op::Casei,
            Op::Accenti,
            Op::Spatial(SpatialOp::Intersects),
            Op::Spatial(SpatialOp::Disjoint),
            Op::Spatial(SpatialOp::Contains),
            Op::Spatial(SpatialOp::Within),
            Op::Spatial(SpatialOp::Equals),
            Op::Spatial(SpatialOp::Touches),
            Op::Spatial(SpatialOp::Crosses),
            Op::Spatial(SpatialOp::Overlaps),
            Op::Temporal(TemporalOp::After),
            Op::Temporal(TemporalOp::Before),
            Op::Temporal(TemporalOp::Contains),
            Op::Temporal(TemporalOp::Disjoint),
            Op::Temporal(TemporalOp::During),
            Op::Temporal(TemporalOp::Equals),
            Op::Temporal(TemporalOp::FinishedBy),
            Op::Temporal(TemporalOp::Finishes),
            Op::Temporal(TemporalOp::Intersects),
            Op::Temporal(TemporalOp::Meets),
            Op::Temporal(TemporalOp::MetBy),
            Op::Temporal(TemporalOp::OverlappedBy),
            Op::Temporal(TemporalOp::Overlaps),
            Op::Temporal(TemporalOp::StartedBy),
            Op::Temporal(TemporalOp::Starts),
        ];
        ALL.iter()
            .copied()
            .find(|op| op.name().eq_ignore_ascii_case(name))
    }

    /// Any operator by its CQL2-JSON name.
    pub fn json(name: &str) -> Option<Op> {
        const SYMBOLS: &[Op] = &[
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
            Op::Add,
            Op::Sub,
            Op::Mul,
            Op::Div,
            Op::IntDiv,
            Op::Mod,
            Op::Pow,
        ];
        SYMBOLS
            .iter()
            .copied()
            .find(|op| op.name() == name)
            .or_else(|| Op::function(name))
    }
}

/// CQL2-Text for a tree, fully parenthesised, so that parsing it gives the same tree back
/// for any tree the text parser can build (the fuzz tests check exactly that; a JSON
/// `{"op": "-", "args": [5]}` reads back as the literal -5).
impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expr::Bool(b) => write!(f, "{}", if *b { "TRUE" } else { "FALSE" }),
            Expr::Int(i) => write!(f, "{i}"),
            // `{:?}` keeps a decimal point or exponent, so a real never reads back as an integer.
            Expr::Real(r) => write!(f, "{r:?}"),
            Expr::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Expr::Date(d) => write!(f, "DATE('{d}')"),
            Expr::Timestamp(t) => write!(
                f,
                "TIMESTAMP('{}')",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            Expr::Interval(a, b) => {
                let end = |e: &Option<Box<Expr>>| {
                    e.as_ref().map_or("'..'".to_string(), |e| e.to_string())
                };
                write!(f, "INTERVAL({}, {})", end(a), end(b))
            }
            Expr::Geometry(g) => write_wkt(f, g),
            Expr::Property(p) => write!(f, "\"{}\"", p.replace('"', "\"\"")),
            Expr::List(items) => {
                write!(f, "(")?;
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{x}")?;
                }
                write!(f, ")")
            }
            Expr::Op(op, args) => {
                let infix = |f: &mut std::fmt::Formatter<'_>, word: &str| {
                    write!(f, "(")?;
                    for (i, a) in args.iter().enumerate() {
                        if i > 0 {
                            write!(f, " {word} ")?;
                        }
                        write!(f, "{a}")?;
                    }
                    write!(f, ")")
                };
                match op {
                    Op::And => infix(f, "AND"),
                    Op::Or => infix(f, "OR"),
                    Op::Not => write!(f, "(NOT ({}))", args[0]),
                    Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => infix(f, op.name()),
                    Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod | Op::Pow => {
                        infix(f, op.name())
                    }
                    Op::IntDiv => infix(f, "DIV"),
                    Op::Like => infix(f, "LIKE"),
                    Op::In => write!(f, "({} IN {})", args[0], args[1]),
                    Op::Between => write!(f, "({} BETWEEN {} AND {})", args[0], args[1], args[2]),
                    Op::IsNull => write!(f, "({} IS NULL)", args[0]),
                    Op::Neg => write!(f, "(-({}))", args[0]),
                    Op::Casei | Op::Accenti | Op::Spatial(_) | Op::Temporal(_) => {
                        write!(f, "{}(", op.name().to_uppercase())?;
                        for (i, a) in args.iter().enumerate() {
                            if i > 0 {
                                write!(f, ", ")?;
                            }
                            write!(f, "{a}")?;
                        }
                        write!(f, ")")
                    }
                }
            }
        }
    }
}

fn write_wkt(f: &mut std::fmt::Formatter<'_>, g: &geo::Geometry<f64>) -> std::fmt::Result {
    use geo::Geometry as G;
    fn coords(f: &mut std::fmt::Formatter<'_>, cs: &geo::LineString<f64>) -> std::fmt::Result {
        write!(f, "(")?;
        for (i, c) in cs.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{:?} {:?}", c.x, c.y)?;
        }
        write!(f, ")")
    }
    fn polygon(f: &mut std::fmt::Formatter<'_>, p: &geo::Polygon<f64>) -> std::fmt::Result {
        write!(f, "(")?;
        coords(f, p.exterior())?;
        for r in p.interiors() {
            write!(f, ", ")?;
            coords(f, r)?;
        }
        write!(f, ")")
    }
    fn list<T>(
        f: &mut std::fmt::Formatter<'_>,
        items: &[T],
        each: impl Fn(&mut std::fmt::Formatter<'_>, &T) -> std::fmt::Result,
    ) -> std::fmt::Result {
        write!(f, "(")?;
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            each(f, x)?;
        }
        write!(f, ")")
    }
    match g {
        G::Point(p) => write!(f, "POINT({:?} {:?})", p.x(), p.y()),
        G::LineString(l) => {
            write!(f, "LINESTRING")?;
            coords(f, l)
        }
        G::Polygon(p) => {
            write!(f, "POLYGON")?;
            polygon(f, p)
        }
        G::MultiPoint(m) => {
            write!(f, "MULTIPOINT")?;
            list(f, &m.0, |f, p| write!(f, "({:?} {:?})", p.x(), p.y()))
        }
        G::MultiLineString(m) => {
            write!(f, "MULTILINESTRING")?;
            list(f, &m.0, coords)
        }
        G::MultiPolygon(m) => {
            write!(f, "MULTIPOLYGON")?;
            list(f, &m.0, polygon)
        }
        G::GeometryCollection(c) => {
            write!(f, "GEOMETRYCOLLECTION")?;
            list(f, &c.0, write_wkt)
        }
        G::Rect(r) => write_wkt(f, &G::Polygon(r.to_polygon())),
        G::Triangle(t) => write_wkt(f, &G::Polygon(t.to_polygon())),
        G::Line(l) => write_wkt(
            f,
            &G::LineString(geo::LineString::new(vec![l.start, l.end])),
        ),
    }
}
