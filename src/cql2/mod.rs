//! CQL2 (OGC API – Features Part 3 filters): CQL2-Text and CQL2-JSON parsed into one typed tree
//! ([`ast::Expr`]) and bound to a collection's queryables as an engine-neutral predicate
//! ([`bind::Predicate`]). Evaluating it is the engine's part (`engine::filter` for the
//! in-memory features); nothing here knows an engine.
//!
//! Hand-written rather than taken from the `cql2` or `ogc-cql2` crates: `cql2` gives a
//! string-typed tree (`op: String`) and pulls in jsonschema, sqlparser and a second `geo`;
//! `ogc-cql2` links GEOS and PROJ and sqlx. Neither bounds nesting. See ARCHITECTURE.md.

pub mod ast;
pub mod bind;
pub mod json;
pub mod text;

use chrono::{DateTime, NaiveDate, Utc};

pub use ast::Expr;
pub use bind::Predicate;

/// Deepest nesting a filter may have; deeper input is refused, not recursed into.
pub const MAX_DEPTH: usize = 64;
/// Most values an `IN` list (or a JSON array) may hold.
pub const MAX_LIST: usize = 1000;
/// Longest filter accepted, in bytes.
pub const MAX_LEN: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", .position.map(|p| format!(" (at character {})", p + 1)).unwrap_or_default())]
pub struct Cql2Error {
    pub message: String,
    /// Character offset (0-based) in CQL2-Text input.
    pub position: Option<usize>,
}

impl Cql2Error {
    fn at(message: impl Into<String>, position: usize) -> Self {
        Self {
            message: message.into(),
            position: Some(position),
        }
    }
}

/// The encodings `filter-lang` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Text,
    Json,
}

impl Lang {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            // `cql-text` is the draft's name, which GDAL before 3.7 sends.
            "cql2-text" | "cql-text" => Some(Lang::Text),
            "cql2-json" => Some(Lang::Json),
            _ => None,
        }
    }
}

/// Parses a filter in either encoding.
pub fn parse(input: &str, lang: Lang) -> Result<Expr, Cql2Error> {
    if input.len() > MAX_LEN {
        return Err(Cql2Error {
            message: format!("the filter is longer than {MAX_LEN} bytes"),
            position: None,
        });
    }
    if input.trim().is_empty() {
        return Err(Cql2Error {
            message: "the filter is empty".into(),
            position: None,
        });
    }
    match lang {
        Lang::Text => text::parse(input),
        Lang::Json => json::parse(input),
    }
}

/// Builds an operation after checking its number of arguments.
fn check_arity(op: ast::Op, args: Vec<Expr>, at: Option<usize>) -> Result<Expr, Cql2Error> {
    let (least, most) = op.arity();
    if args.len() < least || args.len() > most {
        let want = if least == most {
            least.to_string()
        } else {
            format!("at least {least}")
        };
        return Err(Cql2Error {
            message: format!(
                "{} takes {want} argument{}, not {}",
                op.name().to_uppercase(),
                if want == "1" { "" } else { "s" },
                args.len()
            ),
            position: at,
        });
    }
    Ok(Expr::Op(op, args))
}

pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// A date (`YYYY-MM-DD`, as midnight UTC) or an RFC 3339 timestamp: what a string stands for
/// where an instant is expected.
pub(crate) fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if s.len() <= 10 {
        parse_date(s)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    } else {
        parse_timestamp(s)
    }
}

pub(crate) fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
