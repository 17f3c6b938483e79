//! CQL2-JSON into the same [`Expr`] as CQL2-Text. Errors name the JSON path of the part that
//! is wrong (`/args/1/args/0`); nesting is bounded as in the text parser.

use serde_json::Value as Json;

use super::ast::{Expr, Op};
use super::{check_arity, parse_date, parse_timestamp, Cql2Error, MAX_DEPTH, MAX_LIST};

pub fn parse(input: &str) -> Result<Expr, Cql2Error> {
    // serde_json refuses nesting beyond 128 levels by itself, before we see the tree.
    let v: Json = serde_json::from_str(input).map_err(|e| Cql2Error {
        message: format!("not valid JSON: {e}"),
        position: None,
    })?;
    expr(&v, "", 0)
}

fn err(path: &str, message: impl std::fmt::Display) -> Cql2Error {
    let path = if path.is_empty() { "/" } else { path };
    Cql2Error {
        message: format!("at {path}: {message}"),
        position: None,
    }
}

fn expr(v: &Json, path: &str, depth: usize) -> Result<Expr, Cql2Error> {
    if depth > MAX_DEPTH {
        return Err(err(
            path,
            format!("the filter nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    match v {
        Json::Bool(b) => Ok(Expr::Bool(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(Expr::Int(i))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() => Ok(Expr::Real(f)),
                    _ => Err(err(path, format!("number {n} is out of range"))),
                }
            }
        }
        Json::String(s) => Ok(Expr::Str(s.clone())),
        Json::Null => Err(err(path, "null is not a CQL2 value (use isNull)")),
        Json::Array(items) => {
            if items.len() > MAX_LIST {
                return Err(err(
                    path,
                    format!("a list may hold at most {MAX_LIST} values"),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, x)| expr(x, &format!("{path}/{i}"), depth + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(Expr::List)
        }
        Json::Object(o) => {
            if let Some(op) = o.get("op") {
                let name = op
                    .as_str()
                    .ok_or_else(|| err(path, "\"op\" must be a string"))?;
                let Some(Json::Array(raw)) = o.get("args") else {
                    return Err(err(
                        path,
                        format!("operator {name:?} needs an \"args\" array"),
                    ));
                };
                let args = raw
                    .iter()
                    .enumerate()
                    .map(|(i, x)| expr(x, &format!("{path}/args/{i}"), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                let op = match (name, args.len()) {
                    ("-", 1) => Op::Neg,
                    _ => Op::json(name).ok_or_else(|| {
                        err(path, format!("unknown or unsupported operator {name:?}"))
                    })?,
                };
                // `in` takes its list as one array argument.
                if op == Op::In && !matches!(args.get(1), Some(Expr::List(_))) {
                    return Err(err(path, "\"in\" takes a value and an array of values"));
                }
                return check_arity(op, args, None).map_err(|e| err(path, e.message));
            }
            if let Some(p) = o.get("property") {
                return p
                    .as_str()
                    .map(|s| Expr::Property(s.to_string()))
                    .ok_or_else(|| err(path, "\"property\" must be a string"));
            }
            if let Some(d) = o.get("date") {
                return d
                    .as_str()
                    .and_then(parse_date)
                    .map(Expr::Date)
                    .ok_or_else(|| err(path, "\"date\" must be a date string (YYYY-MM-DD)"));
            }
            if let Some(t) = o.get("timestamp") {
                return t
                    .as_str()
                    .and_then(parse_timestamp)
                    .map(Expr::Timestamp)
                    .ok_or_else(|| err(path, "\"timestamp\" must be an RFC 3339 timestamp"));
            }
            if let Some(i) = o.get("interval") {
                let Some([a, b]) = i.as_array().map(Vec::as_slice) else {
                    return Err(err(path, "\"interval\" must be an array of two ends"));
                };
                let end = |x: &Json, k: usize| -> Result<Option<Box<Expr>>, Cql2Error> {
                    let p = format!("{path}/interval/{k}");
                    match x {
                        Json::String(s) if s == ".." => Ok(None),
                        Json::String(s) => parse_date(s)
                            .filter(|_| s.len() <= 10)
                            .map(Expr::Date)
                            .or_else(|| parse_timestamp(s).map(Expr::Timestamp))
                            .map(|e| Some(Box::new(e)))
                            .ok_or_else(|| err(&p, format!("{s:?} is not a date or timestamp"))),
                        other => match expr(other, &p, depth + 1)? {
                            e @ (Expr::Date(_) | Expr::Timestamp(_) | Expr::Property(_)) => {
                                Ok(Some(Box::new(e)))
                            }
                            _ => Err(err(
                                &p,
                                "an interval end is a date, a timestamp, \"..\" or a property",
                            )),
                        },
                    }
                };
                return Ok(Expr::Interval(end(a, 0)?, end(b, 1)?));
            }
            if let Some(b) = o.get("bbox") {
                let n: Option<Vec<f64>> = b
                    .as_array()
                    .map(|a| a.iter().map(Json::as_f64).collect::<Option<Vec<_>>>())
                    .unwrap_or(None);
                return n
                    .as_deref()
                    .and_then(super::text::bbox)
                    .ok_or_else(|| err(path, "\"bbox\" takes 4 numbers (or 6 with heights)"));
            }
            if o.contains_key("type") {
                let g = geojson::Geometry::from_json_value(v.clone())
                    .map_err(|e| err(path, format!("not a GeoJSON geometry: {e}")))?;
                let g: geo::Geometry<f64> = g
                    .try_into()
                    .map_err(|e| err(path, format!("not a usable geometry: {e}")))?;
                return Ok(Expr::Geometry(g));
            }
            Err(err(
                path,
                "expected an operation ({\"op\", \"args\"}), a property, a date, timestamp, interval, bbox or geometry",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql2::ast::SpatialOp;

    #[test]
    fn parses_the_encodings_of_the_spec() {
        let e = parse(r#"{"op":"and","args":[{"op":">","args":[{"property":"places"},20]},{"op":"s_intersects","args":[{"property":"geometry"},{"type":"Point","coordinates":[13.0,55.6]}]}]}"#).expect("json");
        let Expr::Op(Op::And, args) = e else {
            panic!("and")
        };
        assert_eq!(
            args[0],
            Expr::Op(Op::Gt, vec![Expr::Property("places".into()), Expr::Int(20)])
        );
        assert!(matches!(
            args[1],
            Expr::Op(Op::Spatial(SpatialOp::Intersects), _)
        ));
        assert!(matches!(
            parse(r#"{"op":"in","args":[{"property":"k"},["a","b"]]}"#),
            Ok(Expr::Op(Op::In, _))
        ));
        assert!(parse(
            r#"{"op":"t_during","args":[{"property":"d"},{"interval":["2020-01-01","..",]}]}"#
        )
        .is_err());
        assert!(matches!(
            parse(
                r#"{"op":"t_during","args":[{"property":"d"},{"interval":["2020-01-01",".."]}]}"#
            ),
            Ok(Expr::Op(Op::Temporal(_), _))
        ));
        assert!(matches!(
            parse(r#"{"op":"-","args":[{"property":"d"}]}"#),
            Ok(Expr::Op(Op::Neg, _))
        ));
    }

    #[test]
    fn errors_name_the_path() {
        let e = parse(r#"{"op":"and","args":[{"op":"=","args":[1]},true]}"#).expect_err("arity");
        assert!(e.message.contains("/args/0"), "{e}");
        let e = parse(r#"{"op":"frobnicate","args":[]}"#).expect_err("op");
        assert!(e.message.contains("frobnicate"), "{e}");
        let deep = format!(
            "{}true{}",
            r#"{"op":"not","args":["#.repeat(100),
            "]}".repeat(100)
        );
        assert!(parse(&deep).is_err());
    }
}
