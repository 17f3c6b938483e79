//! The catalog: what hamn knows about each collection (its record), independent of where the
//! features are stored. Owns the collection id rules, the attribute schema and the extents.
//! It does not read or write storage; the stores persist these types.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether a feature id is served as a JSON number: digits only, no leading zero, fewer than
/// 16 of them (so that it is exact in every client's doubles). Every other id is a string.
pub fn id_is_integer(id: &str) -> bool {
    !id.is_empty()
        && id.len() < 16
        && id.bytes().all(|b| b.is_ascii_digit())
        && !(id.len() > 1 && id.starts_with('0'))
}

/// The kinds of feature ids a version serves ([`id_is_integer`]): for the JSON Schema type of
/// `id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdKinds {
    pub integers: bool,
    pub strings: bool,
}

impl IdKinds {
    pub fn add(&mut self, id: &str) {
        if id_is_integer(id) {
            self.integers = true;
        } else {
            self.strings = true;
        }
    }

    /// Both kinds seen: no further id can change the answer.
    pub fn complete(&self) -> bool {
        self.integers && self.strings
    }
}

/// Longest collection id. Kept well under PostgreSQL's 63-byte identifier limit because the
/// PostGIS store derives table names from it (`<id>_v<version>`).
pub const MAX_ID_LEN: usize = 48;

/// A collection id: a URL-safe slug (`a-z`, `0-9`, `-`, starting with a letter). Holding one
/// proves the string is safe in a URL path, a file name and (quoted) a SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CollectionId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid collection id {0:?}: use 1-{MAX_ID_LEN} characters a-z, 0-9 and '-', starting with a letter")]
pub struct InvalidCollectionId(pub String);

impl CollectionId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Makes an id from free text such as a file or layer name: lowercases, folds å/ä/ö and
    /// other Latin letters to ASCII, and turns everything else into single dashes.
    pub fn slugify(text: &str) -> Result<Self, InvalidCollectionId> {
        let mut out = String::new();
        for c in text.chars().flat_map(char::to_lowercase) {
            let folded: &str = match c {
                'å' | 'ä' | 'à' | 'á' | 'â' | 'ã' => "a",
                'ö' | 'ø' | 'ó' | 'ò' | 'ô' | 'õ' => "o",
                'æ' => "ae",
                'é' | 'è' | 'ê' | 'ë' => "e",
                'ü' | 'ú' | 'ù' | 'û' => "u",
                'í' | 'ì' | 'î' | 'ï' => "i",
                'ç' => "c",
                'ñ' => "n",
                'ß' => "ss",
                _ => "",
            };
            if !folded.is_empty() {
                out.push_str(folded);
            } else if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        let trimmed = out.trim_matches('-');
        let mut id = trimmed.to_string();
        if id.starts_with(|c: char| c.is_ascii_digit()) {
            id.insert_str(0, "c-");
        }
        id.truncate(MAX_ID_LEN);
        let id = id.trim_end_matches('-').to_string();
        id.parse()
    }
}

impl FromStr for CollectionId {
    type Err = InvalidCollectionId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ID_LEN
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(InvalidCollectionId(s.chars().take(80).collect()))
        }
    }
}

impl TryFrom<String> for CollectionId {
    type Error = InvalidCollectionId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CollectionId> for String {
    fn from(id: CollectionId) -> Self {
        id.0
    }
}

impl fmt::Display for CollectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The type of an attribute as stored and served. Deliberately few: each maps to one PostgreSQL
/// type, one GeoPackage field type and one JSON Schema type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    Integer,
    Real,
    Text,
    Boolean,
    Date,
    DateTime,
    /// Lists and other structured values, kept as JSON.
    Json,
}

impl AttrType {
    pub fn sql_type(self) -> &'static str {
        match self {
            AttrType::Integer => "bigint",
            AttrType::Real => "double precision",
            AttrType::Text => "text",
            AttrType::Boolean => "boolean",
            AttrType::Date => "date",
            AttrType::DateTime => "timestamptz",
            AttrType::Json => "jsonb",
        }
    }

    pub fn is_temporal(self) -> bool {
        matches!(self, AttrType::Date | AttrType::DateTime)
    }
}

/// One attribute of a collection. `name` is what the source called it and what the API shows
/// (å/ä/ö and all); `column` is the sanitised name used in storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub column: String,
    #[serde(rename = "type")]
    pub kind: AttrType,
}

/// Column names hamn reserves in every data table.
pub const RESERVED_COLUMNS: [&str; 3] = ["hamn_fid", "hamn_id", "geom"];

/// Turns source attribute names into distinct storage column names: lowercase, letters (Unicode
/// letters kept, so `höjd` stays `höjd`), digits and `_`, at most 60 bytes, never one of the
/// reserved names. Original names are kept in [`Attribute::name`].
/// `already` lists columns in use (when adding attributes to an existing collection).
pub fn sanitise_columns(names: &[String], already: &[String]) -> Vec<String> {
    let mut taken: Vec<String> = RESERVED_COLUMNS.iter().map(|s| s.to_string()).collect();
    taken.extend(already.iter().cloned());
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let mut base: String = name
            .trim_start_matches('\u{feff}')
            .chars()
            .flat_map(char::to_lowercase)
            .map(|c| if c.is_alphanumeric() { c } else { '_' })
            .collect();
        if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
            base.insert(0, 'f');
        }
        truncate_bytes(&mut base, 56);
        let mut candidate = base.clone();
        let mut n = 2;
        while taken.contains(&candidate) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        taken.push(candidate.clone());
        out.push(candidate);
    }
    out
}

fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// A bounding box in WGS 84 longitude/latitude: `[minx, miny, maxx, maxy]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bbox(pub [f64; 4]);

impl Bbox {
    pub fn empty() -> Option<Self> {
        None
    }

    pub fn expand(acc: Option<Self>, other: [f64; 4]) -> Option<Self> {
        Some(match acc {
            None => Bbox(other),
            Some(Bbox(b)) => Bbox([
                b[0].min(other[0]),
                b[1].min(other[1]),
                b[2].max(other[2]),
                b[3].max(other[3]),
            ]),
        })
    }
}

/// Deepest zoom a collection's tiles may be offered at (WebMercatorQuad ends at 24).
pub const MAX_ZOOM: u8 = 24;

/// Which engine serves a collection, when the operator says (`hamn ingest --engine`): held in
/// memory whatever its size, or served from its table in PostGIS whatever its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    Memory,
    Postgis,
}

impl EngineChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineChoice::Memory => "memory",
            EngineChoice::Postgis => "postgis",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "memory" => Some(EngineChoice::Memory),
            "postgis" => Some(EngineChoice::Postgis),
            _ => None,
        }
    }
}

/// The zoom levels (tile matrices) at which a collection's vector tiles are offered:
/// `min <= max <= MAX_ZOOM`, checked when made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "(u8, u8)", into = "(u8, u8)")]
pub struct ZoomRange {
    min: u8,
    max: u8,
}

impl ZoomRange {
    pub fn new(min: u8, max: u8) -> Result<Self, String> {
        if min <= max && max <= MAX_ZOOM {
            Ok(Self { min, max })
        } else {
            Err(format!(
                "zoom range {min}..{max}: need 0 <= min <= max <= {MAX_ZOOM}"
            ))
        }
    }
    pub fn min(&self) -> u8 {
        self.min
    }
    pub fn max(&self) -> u8 {
        self.max
    }
    pub fn contains(&self, z: u8) -> bool {
        (self.min..=self.max).contains(&z)
    }
}

impl Default for ZoomRange {
    fn default() -> Self {
        Self { min: 0, max: 22 }
    }
}

impl TryFrom<(u8, u8)> for ZoomRange {
    type Error = String;
    fn try_from((min, max): (u8, u8)) -> Result<Self, String> {
        Self::new(min, max)
    }
}

impl From<ZoomRange> for (u8, u8) {
    fn from(z: ZoomRange) -> Self {
        (z.min, z.max)
    }
}

/// Descriptive metadata a publisher gives for a collection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Description {
    pub title: String,
    pub description: Option<String>,
    pub keywords: Vec<String>,
    pub theme: Option<String>,
    pub publisher: Option<String>,
    pub licence: Option<String>,
    /// Standards the data conforms to (URIs: a national specification such as
    /// `https://dataportal.se/specifications/badplatser/1.0`); from a harvested catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conforms_to: Vec<String>,
    /// The language the title, description and keywords are written in (a tag from
    /// [`LANGUAGES`]); `None`: the catalog's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// The languages texts may be tagged with: tag and its IRI in the EU language vocabulary
/// (what DCAT-AP-SE's dct:language takes).
pub const LANGUAGES: [(&str, &str); 6] = [
    (
        "sv",
        "http://publications.europa.eu/resource/authority/language/SWE",
    ),
    (
        "en",
        "http://publications.europa.eu/resource/authority/language/ENG",
    ),
    (
        "fi",
        "http://publications.europa.eu/resource/authority/language/FIN",
    ),
    (
        "nb",
        "http://publications.europa.eu/resource/authority/language/NOB",
    ),
    (
        "da",
        "http://publications.europa.eu/resource/authority/language/DAN",
    ),
    (
        "de",
        "http://publications.europa.eu/resource/authority/language/DEU",
    ),
];

/// A language as given (`sv`, `EN` …) as its tag in [`LANGUAGES`], or why not.
pub fn language_tag(given: &str) -> Result<&'static str, String> {
    let g = given.trim();
    LANGUAGES
        .iter()
        .find(|(tag, _)| tag.eq_ignore_ascii_case(g))
        .map(|(tag, _)| *tag)
        .ok_or_else(|| {
            format!(
                "language {:?}: use one of {}",
                g.chars().take(20).collect::<String>(),
                LANGUAGES.map(|(t, _)| t).join(", ")
            )
        })
}

/// Where the data came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// File name (never the full local path, which would leak the operator's layout).
    pub name: String,
    pub sha256: String,
    /// The layer read from a multi-layer source.
    pub layer: String,
    /// The CRS the source was in, as `AUTHORITY:CODE` where known, else the CRS name.
    pub crs: String,
}

/// The full catalog record of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub id: CollectionId,
    #[serde(flatten)]
    pub meta: Description,
    pub source: SourceInfo,
    pub attributes: Vec<Attribute>,
    /// Geometry types present (e.g. `["Point", "Polygon"]`); a generic geometry column holds them.
    pub geometry_types: Vec<String>,
    /// The attribute whose values became feature ids, if any (else a sequence number).
    pub id_field: Option<String>,
    pub datetime_field: Option<String>,
    pub feature_count: u64,
    pub extent: Option<Bbox>,
    pub temporal_extent: Option<[DateTime<Utc>; 2]>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// Zoom levels at which the collection is offered as vector tiles.
    #[serde(default)]
    pub zoom: ZoomRange,
    /// The operator's choice of engine; `None` lets `--max-features` decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineChoice>,
    /// Changes with every successful ingest; unique across the store, so it never repeats even
    /// when a collection is deleted and made again (it feeds ETags).
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("Malmö miljöparkering", "malmo-miljoparkering")]
    #[case("hav_active_bathing_waters", "hav-active-bathing-waters")]
    #[case("2024 Bullerkarta", "c-2024-bullerkarta")]
    #[case("Fælles  drift!!", "faelles-drift")]
    fn slugify(#[case] input: &str, #[case] want: &str) {
        assert_eq!(
            CollectionId::slugify(input).map(String::from),
            Ok(want.to_string())
        );
    }

    #[rstest]
    #[case("")]
    #[case("Parking")]
    #[case("1abc")]
    #[case("a b")]
    #[case("a'; drop table x; --")]
    #[case("park\u{0}ing")]
    fn invalid_ids(#[case] input: &str) {
        assert!(input.parse::<CollectionId>().is_err());
    }

    #[test]
    fn slugify_of_nothing_fails() {
        assert!(CollectionId::slugify("???").is_err());
    }

    #[test]
    fn columns_are_distinct_and_keep_swedish_letters() {
        let names = [
            "\u{feff}place_id",
            "Höjd (m)",
            "höjd_m",
            "geom",
            "capacity:disabled",
            "1st",
        ]
        .map(String::from);
        let cols = sanitise_columns(&names, &[]);
        assert_eq!(
            cols,
            [
                "place_id",
                "höjd__m_",
                "höjd_m",
                "geom_2",
                "capacity_disabled",
                "f1st"
            ]
        );
    }
}
