//! Query-string parameters: parsed once, strictly. OGC API – Features Part 1 asks servers to
//! reject parameters they do not know (400), so a typo is an error, not a silently ignored filter.

use super::{quote, ApiError};

#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parses `query`, refusing names not in `known` (names for which `extra` returns true are
    /// allowed too: a collection's attributes) and any name given twice.
    pub fn parse_with(
        query: &str,
        known: &[&str],
        extra: impl Fn(&str) -> bool,
    ) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if k.contains('\0') || v.contains('\0') {
                return Err(ApiError::BadRequest(
                    "NUL bytes are not allowed in parameters".into(),
                ));
            }
            if !known.contains(&k.as_ref()) && !extra(&k) {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {}",
                    quote(&k)
                )));
            }
            if pairs.iter().any(|(n, _)| *n == k) {
                return Err(ApiError::BadRequest(format!(
                    "parameter {} given more than once",
                    quote(&k)
                )));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self { pairs })
    }

    pub fn parse(query: &str, known: &[&str]) -> Result<Self, ApiError> {
        Self::parse_with(query, known, |_| false)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The query string again, without `drop`ped names and with `add`ed pairs (for links).
    pub fn rebuild(&self, drop: &[&str], add: &[(&str, String)]) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if !drop.contains(&k.as_str()) {
                s.append_pair(k, v);
            }
        }
        for (k, v) in add {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_names_are_refused() {
        assert!(Params::parse("f=json", &["f"]).is_ok());
        assert!(Params::parse("limt=5", &["limit"]).is_err());
        assert!(Params::parse("limit=5&limit=6", &["limit"]).is_err());
        assert!(Params::parse("limit=%00", &["limit"]).is_err());
        let p = Params::parse_with("namn=Lund&limit=5", &["limit"], |n| n == "namn").expect("ok");
        assert_eq!(p.get("namn"), Some("Lund"));
        assert_eq!(
            p.rebuild(&["limit"], &[("cursor", "x y".into())]),
            "namn=Lund&cursor=x+y"
        );
    }
}
