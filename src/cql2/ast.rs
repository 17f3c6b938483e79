//! The one syntax tree both CQL2 encodings parse into. It says what was written, not whether
//! it makes sense for a collection: names and types are checked when it is bound to one
//! (see `eval`). Operators are an enum with their arity, so neither parser can build a call
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

impl Expr {
    /// Nesting depth of the tree (a literal is 1).
    pub fn depth(&self) -> usize {
        match self {
            Expr::Op(_, args) | Expr::List(args) => {
                1 + args.iter().map(Expr::depth).max().unwrap_or(0)
            }
            Expr::Interval(a, b) => {
                1 + a
                    .as_deref()
                    .map_or(0, Expr::depth)
                    .max(b.as_deref().map_or(0, Expr::depth))
            }
            _ => 1,
        }
    }
}
