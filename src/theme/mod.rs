//! Themes: the national specifications for municipal open data (badplatser, lekplatser …) and
//! the models chosen for parking and EV charging, shipped with hamn as TOML files in
//! `src/theme/specs/` (the README there cites each one), and the mapping of one publisher's
//! file into the theme's collection, which every publisher of the theme shares.
//!
//! A theme collection has one schema: `source` (who published the feature: a municipality code
//! or an organisation number), `source_id` (the publisher's own id of it), then the theme's
//! attributes in the specification's order. Its feature ids are `<source>:<source_id>`, so two
//! publishers never collide. Ingest replaces one publisher's features whole and leaves the
//! others' alone (the store's `IngestPlan::replacing`).

pub mod mapping;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::catalog::AttrType;
pub use mapping::{Mapper, Mapping};

/// The attribute every theme collection carries for its publisher.
pub const SOURCE: &str = "source";
/// The attribute every theme collection carries for the publisher's own id of a feature.
pub const SOURCE_ID: &str = "source_id";

/// The specification files, compiled in.
const SPECS: &[(&str, &str)] = &[
    ("badplatser.toml", include_str!("specs/badplatser.toml")),
    ("laddplatser.toml", include_str!("specs/laddplatser.toml")),
    ("parkering.toml", include_str!("specs/parkering.toml")),
];

/// One theme, as its specification file says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    pub id: String,
    pub title: String,
    pub title_en: String,
    pub description: String,
    pub description_en: String,
    pub version: String,
    /// The URI datasets following the specification give as `dct:conformsTo`.
    pub conforms_to: String,
    /// The human-readable specification.
    pub specification: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub geometry: GeometryKind,
    /// Coordinate columns of the specification's CSV (WGS 84 degrees).
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    /// A column holding the position as `[longitude,latitude]` (WGS 84), for specifications
    /// that write it so.
    pub position: Option<String>,
    /// The specification's column for the publisher's own id of an object.
    pub id_attribute: Option<String>,
    /// The specification's column naming the publishing organisation.
    pub source_attribute: Option<String>,
    #[serde(rename = "attribute")]
    pub attributes: Vec<ThemeAttribute>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeAttribute {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ThemeType,
    pub format: Option<Format>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: String,
    /// A closed code list: the only values allowed.
    #[serde(default)]
    pub codes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeType {
    Text,
    Integer,
    Real,
    Boolean,
    Date,
    Datetime,
}

impl ThemeType {
    pub fn attr_type(self) -> AttrType {
        match self {
            ThemeType::Text => AttrType::Text,
            ThemeType::Integer => AttrType::Integer,
            ThemeType::Real => AttrType::Real,
            ThemeType::Boolean => AttrType::Boolean,
            ThemeType::Date => AttrType::Date,
            ThemeType::Datetime => AttrType::DateTime,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Url,
    Email,
    Phone,
}

impl Format {
    /// The JSON Schema `format` (phone numbers have none).
    pub fn json_schema(self) -> Option<&'static str> {
        match self {
            Format::Url => Some("uri"),
            Format::Email => Some("email"),
            Format::Phone => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeometryKind {
    Point,
    Line,
    Polygon,
    Any,
}

impl GeometryKind {
    /// Whether a GeoJSON geometry type fits.
    pub fn admits(self, geojson_type: &str) -> bool {
        match self {
            GeometryKind::Any => true,
            GeometryKind::Point => matches!(geojson_type, "Point" | "MultiPoint"),
            GeometryKind::Line => matches!(geojson_type, "LineString" | "MultiLineString"),
            GeometryKind::Polygon => matches!(geojson_type, "Polygon" | "MultiPolygon"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            GeometryKind::Point => "a point",
            GeometryKind::Line => "a line",
            GeometryKind::Polygon => "a polygon",
            GeometryKind::Any => "any geometry",
        }
    }
}

impl Theme {
    pub fn attribute(&self, name: &str) -> Option<&ThemeAttribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// Checks what serde cannot: a usable id, unique names, code lists only on text, formats
    /// only on text, and no clash with the two attributes hamn adds.
    fn check(&self) -> Result<(), String> {
        crate::catalog::CollectionId::from_str(&self.id)
            .map_err(|e| format!("theme id {:?}: {e}", self.id))?;
        let mut seen = std::collections::HashSet::new();
        for a in &self.attributes {
            if !seen.insert(a.name.as_str()) {
                return Err(format!("attribute {} appears twice", a.name));
            }
            if a.name == SOURCE_ID
                || (a.name == SOURCE && self.source_attribute.as_deref() != Some(SOURCE))
            {
                return Err(format!(
                    "attribute {} is the name hamn gives its own",
                    a.name
                ));
            }
            if a.kind != ThemeType::Text && (!a.codes.is_empty() || a.format.is_some()) {
                return Err(format!(
                    "attribute {}: code lists and formats are for text attributes",
                    a.name
                ));
            }
        }
        for (what, name) in [
            ("id_attribute", &self.id_attribute),
            ("source_attribute", &self.source_attribute),
        ] {
            if let Some(n) = name {
                if self.attribute(n).is_none() {
                    return Err(format!("{what} {n} is not among the attributes"));
                }
            }
        }
        if self.latitude.is_some() != self.longitude.is_some() {
            return Err("latitude and longitude come together".into());
        }
        Ok(())
    }
}

/// Every theme hamn ships, by id. A specification that does not parse is a build fault, which
/// the unit tests catch; at run time it is left out with a log line rather than taking the
/// server down.
pub fn themes() -> &'static BTreeMap<String, Theme> {
    static THEMES: LazyLock<BTreeMap<String, Theme>> = LazyLock::new(|| {
        let mut all = BTreeMap::new();
        for (file, text) in SPECS {
            match parse(text) {
                Ok(t) => {
                    all.insert(t.id.clone(), t);
                }
                Err(e) => tracing::error!("theme specification {file}: {e}"),
            }
        }
        all
    });
    &THEMES
}

pub fn parse(text: &str) -> Result<Theme, String> {
    let theme: Theme = toml::from_str(text).map_err(|e| e.to_string())?;
    theme.check()?;
    Ok(theme)
}

/// The theme by id; the error lists the ones there are.
pub fn find(id: &str) -> Result<&'static Theme, String> {
    themes().get(id).ok_or_else(|| {
        format!(
            "no theme {id:?} (themes: {})",
            themes().keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })
}

/// The theme a collection follows, known by its `conformsTo` URI.
pub fn by_conformance(uris: &[String]) -> Option<&'static Theme> {
    themes()
        .values()
        .find(|t| uris.iter().any(|u| u == &t.conforms_to))
}

/// Who published a feature in a theme collection: a municipality code (four digits, e.g. 1281
/// for Lund) or an organisation number (ten digits, written NNNNNN-NNNN), as the national
/// specifications identify publishers. Stored as its text (a token limited to one publisher's
/// part keeps it so), and read back through the same check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SourceOrg(String);

impl TryFrom<String> for SourceOrg {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<SourceOrg> for String {
    fn from(s: SourceOrg) -> String {
        s.0
    }
}

impl SourceOrg {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SourceOrg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
        let only_digits_and_dash = t.chars().all(|c| c.is_ascii_digit() || c == '-');
        match (digits.len(), only_digits_and_dash) {
            (4, true) if t.len() == 4 => Ok(Self(digits)),
            (10, true) if t.len() == 10 || (t.len() == 11 && t.as_bytes()[6] == b'-') => {
                Ok(Self(format!("{}-{}", &digits[..6], &digits[6..])))
            }
            _ => Err(format!(
                "source {:?}: give a municipality code (four digits, e.g. 1281) or an \
                 organisation number (NNNNNN-NNNN, e.g. 212000-1124)",
                t.chars().take(40).collect::<String>()
            )),
        }
    }
}

impl fmt::Display for SourceOrg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn every_shipped_specification_parses_and_checks() {
        assert!(!SPECS.is_empty(), "no theme specifications compiled in");
        for (file, text) in SPECS {
            let t = parse(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(format!("{}.toml", t.id), *file, "file name and id differ");
            assert!(t.conforms_to.starts_with("http"), "{file}: conforms_to");
            assert!(!t.attributes.is_empty(), "{file}: no attributes");
        }
        assert_eq!(themes().len(), SPECS.len(), "theme ids repeat");
    }

    #[rstest]
    #[case("1281", "1281")]
    #[case(" 0114 ", "0114")]
    #[case("2120001124", "212000-1124")]
    #[case("212000-1124", "212000-1124")]
    fn source_orgs(#[case] given: &str, #[case] want: &str) {
        assert_eq!(
            given.parse::<SourceOrg>().map(|s| s.to_string()),
            Ok(want.into())
        );
    }

    #[rstest]
    #[case("")]
    #[case("128")]
    #[case("12811")]
    #[case("Lund")]
    #[case("21200-01124")]
    #[case("1281; DROP TABLE x")]
    fn bad_source_orgs(#[case] given: &str) {
        assert!(given.parse::<SourceOrg>().is_err(), "{given:?} accepted");
    }

    #[test]
    fn a_specification_with_faults_is_refused() {
        let base = r#"
id = "x"
title = "X"
title_en = "X"
description = "d"
description_en = "d"
version = "1.0"
conforms_to = "https://example.org/x/1.0"
specification = "https://example.org/x"
geometry = "point"
"#;
        let ok = format!("{base}[[attribute]]\nname = \"a\"\ntype = \"text\"\ncodes = [\"p\"]\n");
        assert!(parse(&ok).is_ok());
        for bad in [
            format!("{base}[[attribute]]\nname = \"a\"\ntype = \"integer\"\ncodes = [\"1\"]\n"),
            format!("{base}[[attribute]]\nname = \"a\"\ntype = \"text\"\n[[attribute]]\nname = \"a\"\ntype = \"text\"\n"),
            format!("{base}[[attribute]]\nname = \"source_id\"\ntype = \"text\"\n"),
            format!("{base}id_attribute = \"nope\"\n[[attribute]]\nname = \"a\"\ntype = \"text\"\n"),
            format!("{base}colour = \"red\"\n[[attribute]]\nname = \"a\"\ntype = \"text\"\n"),
            format!("{base}[[attribute]]\nname = \"a\"\ntype = \"money\"\n"),
        ] {
            assert!(parse(&bad).is_err(), "accepted:\n{bad}");
        }
    }
}
