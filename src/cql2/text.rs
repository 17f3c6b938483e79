//! CQL2-Text: a hand-written lexer and recursive-descent parser into [`Expr`]. Errors carry
//! the character position they refer to; nesting is bounded so hostile input cannot exhaust
//! the stack.

use geo::{Coord, Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};

use super::ast::{Expr, Op};
use super::{parse_date, parse_timestamp, Cql2Error, MAX_DEPTH, MAX_LIST};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unquoted word: a keyword or a property name.
    Word(String),
    /// A `"double-quoted"` property name.
    Quoted(String),
    Str(String),
    Num(String),
    Sym(&'static str),
    End,
}

struct Lexed {
    tok: Tok,
    /// Character (not byte) offset, for messages.
    at: usize,
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | ':')
}

fn lex(input: &str) -> Result<Vec<Lexed>, Cql2Error> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = if is_word_start(c) {
            let s = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            Tok::Word(chars[s..i].iter().collect())
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let s = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                let mut j = i + 1;
                if j < chars.len() && matches!(chars[j], '+' | '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            Tok::Num(chars[s..i].iter().collect())
        } else if c == '\'' || c == '"' {
            // '' inside a string (and "" inside a quoted name) stands for the quote itself.
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(Cql2Error::at(
                            if c == '\'' {
                                "string is not closed with '"
                            } else {
                                "quoted name is not closed with \""
                            },
                            at,
                        ))
                    }
                    Some(&q) if q == c => {
                        if chars.get(i + 1) == Some(&c) {
                            s.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            if c == '\'' {
                Tok::Str(s)
            } else {
                Tok::Quoted(s)
            }
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                "<>" => Some("<>"),
                "<=" => Some("<="),
                ">=" => Some(">="),
                "!=" => Some("<>"),
                _ => None,
            };
            if let Some(s) = sym {
                i += 2;
                Tok::Sym(s)
            } else {
                i += 1;
                Tok::Sym(match c {
                    '(' => "(",
                    ')' => ")",
                    '[' => "[",
                    ']' => "]",
                    ',' => ",",
                    '=' => "=",
                    '<' => "<",
                    '>' => ">",
                    '+' => "+",
                    '-' => "-",
                    '*' => "*",
                    '/' => "/",
                    '%' => "%",
                    '^' => "^",
                    _ => return Err(Cql2Error::at(format!("unexpected character {c:?}"), at)),
                })
            }
        };
        out.push(Lexed { tok, at });
    }
    out.push(Lexed {
        tok: Tok::End,
        at: chars.len(),
    });
    Ok(out)
}

const RESERVED: &[&str] = &[
    "AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "IS", "NULL", "DIV", "TRUE", "FALSE",
];

const GEOMETRY_WORDS: &[&str] = &[
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
    "GEOMETRYCOLLECTION",
];

/// Parses CQL2-Text.
pub fn parse(input: &str) -> Result<Expr, Cql2Error> {
    let toks = lex(input)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.expr()?;
    match &p.peek().tok {
        Tok::End => Ok(e),
        _ => Err(p.unexpected("the end of the filter or AND/OR")),
    }
}

struct Parser {
    toks: Vec<Lexed>,
    pos: usize,
    depth: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("{w:?}"),
        Tok::Quoted(w) => format!("\"{w}\""),
        Tok::Str(s) => format!("string '{}'", s.chars().take(40).collect::<String>()),
        Tok::Num(n) => format!("number {n}"),
        Tok::Sym(s) => format!("'{s}'"),
        Tok::End => "the end of the filter".into(),
    }
}

impl Parser {
    fn peek(&self) -> &Lexed {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> &Lexed {
        let i = self.pos.min(self.toks.len() - 1);
        self.pos += 1;
        &self.toks[i]
    }

    fn unexpected(&self, wanted: &str) -> Cql2Error {
        let l = self.peek();
        Cql2Error::at(
            format!("expected {wanted}, found {}", describe(&l.tok)),
            l.at,
        )
    }

    fn enter(&mut self, by: usize) -> Result<(), Cql2Error> {
        self.depth += by;
        if self.depth > MAX_DEPTH {
            return Err(Cql2Error::at(
                format!("the filter nests deeper than {MAX_DEPTH} levels"),
                self.peek().at,
            ));
        }
        Ok(())
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(&self.peek().tok, Tok::Sym(x) if *x == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let yes = self.is_sym(s);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), Cql2Error> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{s}'")))
        }
    }

    fn expr(&mut self) -> Result<Expr, Cql2Error> {
        self.enter(1)?;
        let mut terms = vec![self.and()?];
        while self.eat_word("OR") {
            terms.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Expr::Bool(false))
        } else {
            Expr::Op(Op::Or, terms)
        })
    }

    fn and(&mut self) -> Result<Expr, Cql2Error> {
        let mut terms = vec![self.not()?];
        while self.eat_word("AND") {
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Expr::Bool(true))
        } else {
            Expr::Op(Op::And, terms)
        })
    }

    fn not(&mut self) -> Result<Expr, Cql2Error> {
        if self.eat_word("NOT") {
            self.enter(1)?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Op(Op::Not, vec![inner]));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, Cql2Error> {
        let left = self.additive()?;
        let cmp = match &self.peek().tok {
            Tok::Sym("=") => Some(Op::Eq),
            Tok::Sym("<>") => Some(Op::Ne),
            Tok::Sym("<") => Some(Op::Lt),
            Tok::Sym("<=") => Some(Op::Le),
            Tok::Sym(">") => Some(Op::Gt),
            Tok::Sym(">=") => Some(Op::Ge),
            _ => None,
        };
        if let Some(op) = cmp {
            self.pos += 1;
            let right = self.additive()?;
            return Ok(Expr::Op(op, vec![left, right]));
        }
        if self.eat_word("IS") {
            let negated = self.eat_word("NOT");
            if !self.eat_word("NULL") {
                return Err(self.unexpected("NULL"));
            }
            let e = Expr::Op(Op::IsNull, vec![left]);
            return Ok(if negated {
                Expr::Op(Op::Not, vec![e])
            } else {
                e
            });
        }
        let negated = self.eat_word("NOT");
        let e = if self.eat_word("LIKE") {
            let pattern = self.additive()?;
            Expr::Op(Op::Like, vec![left, pattern])
        } else if self.eat_word("BETWEEN") {
            let low = self.additive()?;
            if !self.eat_word("AND") {
                return Err(self.unexpected("AND (of BETWEEN … AND …)"));
            }
            let high = self.additive()?;
            Expr::Op(Op::Between, vec![left, low, high])
        } else if self.eat_word("IN") {
            self.expect_sym("(")?;
            let mut items = Vec::new();
            loop {
                if items.len() == MAX_LIST {
                    return Err(Cql2Error::at(
                        format!("an IN list may hold at most {MAX_LIST} values"),
                        self.peek().at,
                    ));
                }
                items.push(self.additive()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
            self.expect_sym(")")?;
            Expr::Op(Op::In, vec![left, Expr::List(items)])
        } else if negated {
            return Err(self.unexpected("LIKE, BETWEEN or IN after NOT"));
        } else {
            return Ok(left);
        };
        Ok(if negated {
            Expr::Op(Op::Not, vec![e])
        } else {
            e
        })
    }

    fn additive(&mut self) -> Result<Expr, Cql2Error> {
        let mut left = self.multiplicative()?;
        let base = self.depth;
        loop {
            let op = if self.eat_sym("+") {
                Op::Add
            } else if self.eat_sym("-") {
                Op::Sub
            } else {
                break;
            };
            // Each operator in a chain nests the tree one level deeper.
            self.enter(1)?;
            let right = self.multiplicative()?;
            left = Expr::Op(op, vec![left, right]);
        }
        self.depth = base;
        Ok(left)
    }

    fn multiplicative(&mut self) -> Result<Expr, Cql2Error> {
        let mut left = self.power()?;
        let base = self.depth;
        loop {
            let op = if self.eat_sym("*") {
                Op::Mul
            } else if self.eat_sym("/") {
                Op::Div
            } else if self.eat_sym("%") {
                Op::Mod
            } else if self.eat_word("DIV") {
                Op::IntDiv
            } else {
                break;
            };
            self.enter(1)?;
            let right = self.power()?;
            left = Expr::Op(op, vec![left, right]);
        }
        self.depth = base;
        Ok(left)
    }

    fn power(&mut self) -> Result<Expr, Cql2Error> {
        let base = self.unary()?;
        if self.eat_sym("^") {
            self.enter(1)?;
            let exp = self.power()?;
            self.depth -= 1;
            return Ok(Expr::Op(Op::Pow, vec![base, exp]));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<Expr, Cql2Error> {
        if self.eat_sym("-") {
            self.enter(1)?;
            let inner = self.unary()?;
            self.depth -= 1;
            // A negative number literal stays a literal.
            return Ok(match inner {
                Expr::Int(i) => Expr::Int(-i),
                Expr::Real(r) => Expr::Real(-r),
                other => Expr::Op(Op::Neg, vec![other]),
            });
        }
        // A unary plus changes nothing; any number of them is skipped without recursing.
        while self.eat_sym("+") {}
        self.primary()
    }

    fn string(&mut self) -> Result<(String, usize), Cql2Error> {
        let l = self.next();
        let at = l.at;
        match &l.tok {
            Tok::Str(s) => Ok((s.clone(), at)),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("a quoted string"))
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, Cql2Error> {
        let at = self.peek().at;
        let tok = self.next().tok.clone();
        match tok {
            Tok::Num(n) => number(&n, at),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Quoted(name) => Ok(Expr::Property(name)),
            Tok::Sym("(") => {
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Word(w) => self.word(&w, at),
            _ => {
                self.pos -= 1;
                Err(self.unexpected("a value, a property name or '('"))
            }
        }
    }

    fn word(&mut self, w: &str, at: usize) -> Result<Expr, Cql2Error> {
        let upper = w.to_ascii_uppercase();
        match upper.as_str() {
            "TRUE" => return Ok(Expr::Bool(true)),
            "FALSE" => return Ok(Expr::Bool(false)),
            "DATE" | "TIMESTAMP" if self.is_sym("(") => {
                self.pos += 1;
                let (s, sat) = self.string()?;
                self.expect_sym(")")?;
                return instant(&upper, &s, sat);
            }
            "INTERVAL" if self.is_sym("(") => {
                self.pos += 1;
                let a = self.interval_end()?;
                self.expect_sym(",")?;
                let b = self.interval_end()?;
                self.expect_sym(")")?;
                return Ok(Expr::Interval(a.map(Box::new), b.map(Box::new)));
            }
            "BBOX" if self.is_sym("(") => {
                self.pos += 1;
                let mut n = Vec::new();
                loop {
                    n.push(self.signed_number()?);
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym(")")?;
                return bbox(&n)
                    .ok_or_else(|| Cql2Error::at("BBOX takes 4 numbers (or 6 with heights)", at));
            }
            _ => {}
        }
        if GEOMETRY_WORDS.contains(&upper.as_str()) {
            self.enter(1)?;
            let g = self.geometry_body(&upper, at)?;
            self.depth -= 1;
            return Ok(Expr::Geometry(g));
        }
        if self.is_sym("(") {
            let Some(op) = Op::function(w) else {
                return Err(Cql2Error::at(
                    format!("unknown function {w:?}: this server offers CASEI, ACCENTI, S_* and T_* functions"),
                    at,
                ));
            };
            self.pos += 1;
            let mut args = Vec::new();
            if !self.is_sym(")") {
                loop {
                    args.push(self.expr()?);
                    if !self.eat_sym(",") {
                        break;
                    }
                }
            }
            self.expect_sym(")")?;
            return super::check_arity(op, args, Some(at));
        }
        if RESERVED.contains(&upper.as_str()) {
            return Err(Cql2Error::at(
                format!("expected a value or a property name, found keyword {w}"),
                at,
            ));
        }
        Ok(Expr::Property(w.to_string()))
    }

    fn interval_end(&mut self) -> Result<Option<Expr>, Cql2Error> {
        let at = self.peek().at;
        match self.peek().tok.clone() {
            Tok::Str(s) => {
                self.pos += 1;
                if s == ".." {
                    return Ok(None);
                }
                let kind = if s.len() > 10 { "TIMESTAMP" } else { "DATE" };
                instant(kind, &s, at).map(Some)
            }
            _ => {
                let e = self.primary()?;
                match e {
                    Expr::Date(_) | Expr::Timestamp(_) | Expr::Property(_) => Ok(Some(e)),
                    _ => Err(Cql2Error::at(
                        "an INTERVAL end is a date, a timestamp, '..' or a property",
                        at,
                    )),
                }
            }
        }
    }

    fn signed_number(&mut self) -> Result<f64, Cql2Error> {
        let negative = self.eat_sym("-");
        let at = self.peek().at;
        let l = self.next();
        let Tok::Num(n) = &l.tok else {
            self.pos -= 1;
            return Err(self.unexpected("a number"));
        };
        let v: f64 = n
            .parse()
            .map_err(|_| Cql2Error::at(format!("{n} is not a number"), at))?;
        if !v.is_finite() {
            return Err(Cql2Error::at(format!("{n} is out of range"), at));
        }
        Ok(if negative { -v } else { v })
    }

    fn coord(&mut self) -> Result<Coord<f64>, Cql2Error> {
        let x = self.signed_number()?;
        let y = self.signed_number()?;
        // A height, if given, plays no part in two-dimensional predicates.
        if matches!(self.peek().tok, Tok::Num(_)) || self.is_sym("-") {
            self.signed_number()?;
        }
        Ok(Coord { x, y })
    }

    fn coords(&mut self) -> Result<Vec<Coord<f64>>, Cql2Error> {
        self.expect_sym("(")?;
        let mut out = vec![self.coord()?];
        while self.eat_sym(",") {
            out.push(self.coord()?);
        }
        self.expect_sym(")")?;
        Ok(out)
    }

    fn rings(&mut self) -> Result<Polygon<f64>, Cql2Error> {
        let at = self.peek().at;
        self.expect_sym("(")?;
        let mut rings = vec![self.coords()?];
        while self.eat_sym(",") {
            rings.push(self.coords()?);
        }
        self.expect_sym(")")?;
        for r in &rings {
            if r.len() < 4 || r.first() != r.last() {
                return Err(Cql2Error::at(
                    "a polygon ring needs at least 4 positions, the last equal to the first",
                    at,
                ));
            }
        }
        let mut rings = rings.into_iter().map(LineString::new);
        let exterior = rings.next().unwrap_or_else(|| LineString::new(vec![]));
        Ok(Polygon::new(exterior, rings.collect()))
    }

    fn geometry_body(&mut self, kind: &str, at: usize) -> Result<Geometry<f64>, Cql2Error> {
        // `POINT Z (…)`: the Z is allowed and its heights ignored.
        let _ = self.eat_word("Z");
        Ok(match kind {
            "POINT" => {
                self.expect_sym("(")?;
                let c = self.coord()?;
                self.expect_sym(")")?;
                Geometry::Point(Point(c))
            }
            "LINESTRING" => {
                let cs = self.coords()?;
                if cs.len() < 2 {
                    return Err(Cql2Error::at("a LINESTRING needs at least 2 positions", at));
                }
                Geometry::LineString(LineString::new(cs))
            }
            "POLYGON" => Geometry::Polygon(self.rings()?),
            "MULTIPOINT" => {
                self.expect_sym("(")?;
                let mut pts = Vec::new();
                loop {
                    if self.eat_sym("(") {
                        pts.push(Point(self.coord()?));
                        self.expect_sym(")")?;
                    } else {
                        pts.push(Point(self.coord()?));
                    }
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym(")")?;
                Geometry::MultiPoint(MultiPoint(pts))
            }
            "MULTILINESTRING" => {
                self.expect_sym("(")?;
                let mut lines = vec![LineString::new(self.coords()?)];
                while self.eat_sym(",") {
                    lines.push(LineString::new(self.coords()?));
                }
                self.expect_sym(")")?;
                Geometry::MultiLineString(MultiLineString(lines))
            }
            "MULTIPOLYGON" => {
                self.expect_sym("(")?;
                let mut polys = vec![self.rings()?];
                while self.eat_sym(",") {
                    polys.push(self.rings()?);
                }
                self.expect_sym(")")?;
                Geometry::MultiPolygon(MultiPolygon(polys))
            }
            _ => {
                self.expect_sym("(")?;
                let mut parts = Vec::new();
                loop {
                    let wat = self.peek().at;
                    let word = match &self.next().tok {
                        Tok::Word(w) => w.to_ascii_uppercase(),
                        _ => String::new(),
                    };
                    if !GEOMETRY_WORDS.contains(&word.as_str()) {
                        return Err(Cql2Error::at("expected a WKT geometry", wat));
                    }
                    self.enter(1)?;
                    parts.push(self.geometry_body(&word, wat)?);
                    self.depth -= 1;
                    if !self.eat_sym(",") {
                        break;
                    }
                }
                self.expect_sym(")")?;
                Geometry::GeometryCollection(geo::GeometryCollection(parts))
            }
        })
    }
}

fn number(n: &str, at: usize) -> Result<Expr, Cql2Error> {
    if n.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = n.parse::<i64>() {
            return Ok(Expr::Int(i));
        }
    }
    match n.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Expr::Real(v)),
        Ok(_) => Err(Cql2Error::at(format!("number {n} is out of range"), at)),
        Err(_) => Err(Cql2Error::at(format!("{n} is not a number"), at)),
    }
}

fn instant(kind: &str, s: &str, at: usize) -> Result<Expr, Cql2Error> {
    if kind == "DATE" {
        parse_date(s)
            .map(Expr::Date)
            .ok_or_else(|| Cql2Error::at(format!("'{s}' is not a date (YYYY-MM-DD)"), at))
    } else {
        parse_timestamp(s).map(Expr::Timestamp).ok_or_else(|| {
            Cql2Error::at(
                format!("'{s}' is not a timestamp (RFC 3339, e.g. 2024-05-01T12:00:00Z)"),
                at,
            )
        })
    }
}

/// `BBOX(w, s, e, n)` or with heights `BBOX(w, s, zmin, e, n, zmax)`, as a polygon.
pub fn bbox(n: &[f64]) -> Option<Expr> {
    let (w, s, e, no) = match *n {
        [w, s, e, n] => (w, s, e, n),
        [w, s, _, e, n, _] => (w, s, e, n),
        _ => return None,
    };
    let rect =
        |w: f64, e: f64| geo::Rect::new(Coord { x: w, y: s }, Coord { x: e, y: no }).to_polygon();
    // A west edge east of the east edge crosses the antimeridian, as in the `bbox` parameter.
    Some(Expr::Geometry(if w > e {
        Geometry::MultiPolygon(MultiPolygon(vec![rect(w, 180.0), rect(-180.0, e)]))
    } else {
        Geometry::Polygon(rect(w, e))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql2::ast::SpatialOp;

    fn p(s: &str) -> Expr {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn precedence_and_keywords() {
        assert_eq!(
            p("a = 1 OR b = 2 AND NOT c = 3"),
            Expr::Op(
                Op::Or,
                vec![
                    Expr::Op(Op::Eq, vec![Expr::Property("a".into()), Expr::Int(1)]),
                    Expr::Op(
                        Op::And,
                        vec![
                            Expr::Op(Op::Eq, vec![Expr::Property("b".into()), Expr::Int(2)]),
                            Expr::Op(
                                Op::Not,
                                vec![Expr::Op(
                                    Op::Eq,
                                    vec![Expr::Property("c".into()), Expr::Int(3)]
                                )]
                            ),
                        ]
                    ),
                ]
            )
        );
        assert_eq!(
            p("x between 1 and 2 and y is not null"),
            Expr::Op(
                Op::And,
                vec![
                    Expr::Op(
                        Op::Between,
                        vec![Expr::Property("x".into()), Expr::Int(1), Expr::Int(2)]
                    ),
                    Expr::Op(
                        Op::Not,
                        vec![Expr::Op(Op::IsNull, vec![Expr::Property("y".into())])]
                    ),
                ]
            )
        );
        assert_eq!(
            p("a + 2 * 3 ^ 2 > -4"),
            Expr::Op(
                Op::Gt,
                vec![
                    Expr::Op(
                        Op::Add,
                        vec![
                            Expr::Property("a".into()),
                            Expr::Op(
                                Op::Mul,
                                vec![
                                    Expr::Int(2),
                                    Expr::Op(Op::Pow, vec![Expr::Int(3), Expr::Int(2)])
                                ]
                            )
                        ]
                    ),
                    Expr::Int(-4)
                ]
            )
        );
    }

    #[test]
    fn literals_and_functions() {
        assert_eq!(
            p("\"Höjd m\" = 'it''s'"),
            Expr::Op(
                Op::Eq,
                vec![Expr::Property("Höjd m".into()), Expr::Str("it's".into())]
            )
        );
        let Expr::Op(Op::Spatial(SpatialOp::Intersects), args) =
            p("S_INTERSECTS(geometry, POLYGON((13 55, 14 55, 14 56, 13 56, 13 55)))")
        else {
            panic!("not s_intersects")
        };
        assert!(matches!(args[1], Expr::Geometry(Geometry::Polygon(_))));
        assert!(matches!(
            p("s_within(geometry, BBOX(12.9, 55.5, 13.1, 55.7))"),
            Expr::Op(Op::Spatial(SpatialOp::Within), _)
        ));
        assert!(matches!(
            p("T_DURING(d, INTERVAL('2020-01-01', '..'))"),
            Expr::Op(Op::Temporal(_), _)
        ));
        assert!(matches!(
            p("CASEI(name) LIKE casei('lund%')"),
            Expr::Op(Op::Like, _)
        ));
        assert!(matches!(
            p("MULTIPOINT((1 2), (3 4)) = geometry"),
            Expr::Op(Op::Eq, _)
        ));
        assert!(matches!(
            p("GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1))"),
            Expr::Geometry(Geometry::GeometryCollection(_))
        ));
        assert_eq!(
            p("x IN ('a', 'b')"),
            Expr::Op(
                Op::In,
                vec![
                    Expr::Property("x".into()),
                    Expr::List(vec![Expr::Str("a".into()), Expr::Str("b".into())])
                ]
            )
        );
    }

    #[test]
    fn errors_carry_positions() {
        for (bad, at) in [
            ("a = ", 4),
            ("a = 'open", 4),
            ("a == 1", 3),
            ("a = 1 b = 2", 6),
            ("FOO(a)", 0),
            ("a = 1; DROP TABLE x", 5),
            ("a NOT 1", 6),
            ("x = 1e999", 4),
            ("POLYGON((0 0, 1 1))", 7),
            ("a = DATE('2024-13-01')", 9),
        ] {
            let e = parse(bad).expect_err(bad);
            assert_eq!(e.position, Some(at), "{bad}: {e}");
        }
    }

    #[test]
    fn deep_nesting_and_long_chains_are_refused() {
        let deep = format!("{}a = 1{}", "(".repeat(200), ")".repeat(200));
        assert!(parse(&deep).expect_err("deep").message.contains("nests"));
        let nots = format!("{}a = 1", "NOT ".repeat(500));
        assert!(parse(&nots).is_err());
        let chain = format!("a = 1{}", " + 1".repeat(500));
        assert!(parse(&chain).is_err());
        let ands = vec!["a = 1"; 500].join(" AND ");
        assert!(parse(&ands).is_ok(), "a flat AND chain is fine");
        let list = format!("a IN ({})", vec!["1"; 20_000].join(","));
        assert!(parse(&list).expect_err("list").message.contains("IN list"));
        // Unary plus signs are skipped, not recursed into.
        let plus = format!("a = {}1", "+".repeat(30_000));
        assert_eq!(
            parse(&plus).expect("plus"),
            Expr::Op(Op::Eq, vec![Expr::Property("a".into()), Expr::Int(1)])
        );
    }

    #[test]
    fn a_bbox_may_cross_the_antimeridian() {
        assert!(matches!(
            p("S_INTERSECTS(geometry, BBOX(170, -10, -170, 10))"),
            Expr::Op(_, ref args) if matches!(args[1], Expr::Geometry(Geometry::MultiPolygon(ref m)) if m.0.len() == 2)
        ));
    }
}
