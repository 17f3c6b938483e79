//! One publisher's file into a theme: which source column feeds which theme attribute (by the
//! same name, or as `--map` / a mapping file says), the conversion of each value to the theme's
//! type, and the checks (required values, code lists, formats, geometry type) whose failures
//! are reported per feature: the feature is rejected under `--strict`, kept with a warning
//! otherwise.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use serde::Deserialize;

use super::{Format, SourceOrg, Theme, ThemeAttribute, ThemeType, SOURCE, SOURCE_ID};
use crate::catalog::{sanitise_columns, AttrType, Attribute};
use crate::ingest::reader::{Shape, Shaped};
use crate::store::Value;

/// How one publisher's files map into a theme: given on the command line, in a small TOML file
/// per source, or both (the command line wins).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub theme: Option<String>,
    pub source: Option<String>,
    /// The source column holding the publisher's own id of each feature [default: the theme's
    /// id attribute, mapped; else the feature's number in the file].
    pub id_field: Option<String>,
    /// Reject features that do not fit the theme, instead of keeping them with a warning.
    #[serde(default)]
    pub strict: bool,
    /// Source column → theme attribute.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// Per theme attribute: the publisher's value → the theme's code.
    #[serde(default)]
    pub codes: BTreeMap<String, BTreeMap<String, String>>,
}

impl Mapping {
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("mapping file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("mapping file {}: {e}", path.display()))
    }

    /// `--map "namn=name,beskr=description"`.
    pub fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                    Ok((from.trim().to_string(), to.trim().to_string()))
                }
                _ => Err(format!(
                    "--map {pair:?}: write source_column=theme_attribute, pairs separated by commas"
                )),
            })
            .collect()
    }

    /// What can be checked before the source's columns are known (the admin API checks it
    /// when an upload arrives, not in its job): every attribute mapped to is the theme's, none
    /// is fed by two columns, and codes are given only for the theme's code lists.
    pub fn check(&self, theme: &Theme) -> Result<(), String> {
        let mut fed = std::collections::BTreeSet::new();
        for (from, to) in &self.map {
            if theme.attribute(to).is_none() {
                return Err(format!(
                    "{from}={to}: the theme {} has no attribute {to:?} (attributes: {})",
                    theme.id,
                    theme
                        .attributes
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if !fed.insert(to.as_str()) {
                return Err(format!("two columns are mapped to {to:?}"));
            }
        }
        for attr in self.codes.keys() {
            if theme.attribute(attr).is_none_or(|a| a.codes.is_empty()) {
                return Err(format!(
                    "codes for {attr:?}: the theme {} has no code list by that name",
                    theme.id
                ));
            }
        }
        Ok(())
    }
}

/// Where a stored attribute's value comes from.
#[derive(Debug, Clone)]
enum Feed {
    /// The publisher, the same for every feature.
    Source,
    /// The publisher's id of the feature.
    SourceId,
    /// A theme attribute, from this source column (index into the values read), or none.
    Theme(usize, Option<usize>),
    /// An attribute the stored collection has and the theme no longer does.
    Empty,
}

/// A theme and one publisher's layer, ready to reshape each feature (see [`Shape`]).
#[derive(Debug)]
pub struct Mapper {
    theme: &'static Theme,
    source: SourceOrg,
    strict: bool,
    codes: BTreeMap<String, BTreeMap<String, String>>,
    attributes: Vec<Attribute>,
    feeds: Vec<Feed>,
    /// The source column with the publisher's own id.
    id_column: Option<usize>,
    id_column_name: Option<String>,
    /// What the mapping as a whole tells the publisher (columns left out, attributes with no
    /// column), for the ingest report.
    pub warnings: Vec<String>,
    /// Features whose id column was empty, so they were numbered in file order.
    numbered: std::sync::atomic::AtomicU64,
}

fn strip(name: &str) -> &str {
    name.trim_start_matches('\u{feff}').trim()
}

impl Mapper {
    /// `columns`: the source layer's attribute names, in the order their values are read.
    /// `coordinates`: the columns the reader made the geometry from (not reported as left out).
    pub fn new(
        theme: &'static Theme,
        source: SourceOrg,
        mapping: &Mapping,
        columns: &[String],
        coordinates: &[String],
    ) -> Result<Self, String> {
        // What does not depend on the file first (the admin API checks the same on arrival).
        mapping.check(theme).map_err(|e| format!("--map {e}"))?;
        let find = |name: &str| columns.iter().position(|c| strip(c) == strip(name));
        let mut fed: BTreeMap<&str, usize> = BTreeMap::new();
        for (from, to) in &mapping.map {
            let Some(i) = find(from) else {
                return Err(format!(
                    "--map {from}={to}: the source has no column {from:?} (columns: {})",
                    columns
                        .iter()
                        .map(|c| strip(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            if let Some(a) = theme.attribute(to) {
                fed.insert(a.name.as_str(), i);
            }
        }
        // Columns not mapped explicitly feed the theme attribute of the same name, unless
        // that attribute is fed already or the column was mapped elsewhere.
        let explicitly: Vec<usize> = fed.values().copied().collect();
        for a in &theme.attributes {
            if !fed.contains_key(a.name.as_str()) {
                if let Some(i) = find(&a.name).filter(|i| !explicitly.contains(i)) {
                    fed.insert(a.name.as_str(), i);
                }
            }
        }

        let mut names = Vec::new();
        let mut kinds = Vec::new();
        let mut feeds = Vec::new();
        if theme.source_attribute.is_none() {
            names.push(SOURCE.to_string());
            kinds.push(AttrType::Text);
            feeds.push(Feed::Source);
        }
        names.push(SOURCE_ID.to_string());
        kinds.push(AttrType::Text);
        feeds.push(Feed::SourceId);
        for (t, a) in theme.attributes.iter().enumerate() {
            names.push(a.name.clone());
            kinds.push(a.kind.attr_type());
            if theme.source_attribute.as_deref() == Some(a.name.as_str()) {
                feeds.push(Feed::Source);
            } else {
                feeds.push(Feed::Theme(t, fed.get(a.name.as_str()).copied()));
            }
        }
        let attributes = names
            .iter()
            .zip(sanitise_columns(&names, &[]))
            .zip(kinds)
            .map(|((name, column), kind)| Attribute {
                name: name.clone(),
                column,
                kind,
            })
            .collect();

        let id_column = match &mapping.id_field {
            Some(f) => Some(find(f).ok_or_else(|| {
                format!(
                    "--id-field {f}: the source has no such column (columns: {})",
                    columns
                        .iter()
                        .map(|c| strip(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?),
            None => theme
                .id_attribute
                .as_deref()
                .and_then(|a| fed.get(a).copied()),
        };

        let mut warnings = Vec::new();
        let used: Vec<usize> = fed.values().copied().chain(id_column).collect();
        let left_out: Vec<&str> = columns
            .iter()
            .enumerate()
            .filter(|(i, c)| !used.contains(i) && !coordinates.iter().any(|k| strip(k) == strip(c)))
            .map(|(_, c)| strip(c))
            .collect();
        if !left_out.is_empty() {
            warnings.push(format!(
                "columns not in the theme {} and left out: {}",
                theme.id,
                left_out.join(", ")
            ));
        }
        let unfed: Vec<&str> = theme
            .attributes
            .iter()
            .filter(|a| {
                !fed.contains_key(a.name.as_str())
                    && theme.source_attribute.as_deref() != Some(a.name.as_str())
            })
            .map(|a| if a.required { a.name.as_str() } else { "" })
            .filter(|n| !n.is_empty())
            .collect();
        if !unfed.is_empty() {
            warnings.push(format!(
                "required theme attributes with no column in the source (map one with --map): {}",
                unfed.join(", ")
            ));
        }
        if id_column.is_none() {
            warnings.push(
                "no column with the publisher's own ids: features are numbered in file order, \
                 so their ids change if the file's order does (give one with --id-field)"
                    .into(),
            );
        }
        Ok(Self {
            theme,
            source,
            strict: mapping.strict,
            codes: mapping.codes.clone(),
            attributes,
            feeds,
            id_column,
            id_column_name: id_column.map(|i| strip(&columns[i]).to_string()),
            warnings,
            numbered: Default::default(),
        })
    }

    /// The theme collection's attributes, in storage order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// Puts the values in the order of the collection as stored (an older version of the
    /// theme may have had attributes in another order, or ones this one lacks).
    pub fn arrange(&mut self, stored: &[Attribute]) {
        let feeds = stored
            .iter()
            .map(|s| {
                self.attributes
                    .iter()
                    .position(|a| a.name == s.name)
                    .map_or(Feed::Empty, |i| self.feeds[i].clone())
            })
            .collect();
        self.feeds = feeds;
        self.attributes = stored.to_vec();
    }

    /// How many features had an empty id column and were numbered in file order instead.
    pub fn numbered(&self) -> u64 {
        self.numbered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The name of the publisher's id column, if there is one.
    pub fn id_column_name(&self) -> Option<&str> {
        self.id_column_name.as_deref()
    }

    pub fn theme(&self) -> &'static Theme {
        self.theme
    }

    pub fn source(&self) -> &SourceOrg {
        &self.source
    }

    /// One value into the theme attribute's type, checked; `Err` says what is wrong with it.
    fn convert(&self, a: &ThemeAttribute, v: &Value) -> Result<Value, String> {
        let text = match v {
            Value::Null => return Ok(Value::Null),
            Value::Text(s) => {
                let t = s.trim();
                if t.is_empty() {
                    return Ok(Value::Null);
                }
                t.to_string()
            }
            other => json_text(other),
        };
        let bad = |what: &str| Err(format!("{}: {} is not {what}", a.name, quote_value(&text)));
        let value = match a.kind {
            ThemeType::Text => {
                let mut t = text.clone();
                if !a.codes.is_empty() {
                    if let Some(code) = self.codes.get(&a.name).and_then(|m| m.get(&t)) {
                        t = code.clone();
                    }
                    match a
                        .codes
                        .iter()
                        .find(|c| c.to_lowercase() == t.to_lowercase())
                    {
                        Some(c) => t = c.clone(),
                        None => {
                            return Err(format!(
                                "{}: {} is not in the code list ({})",
                                a.name,
                                quote_value(&t),
                                a.codes.join(", ")
                            ))
                        }
                    }
                }
                if let Some(f) = a.format {
                    if !format_ok(f, &t) {
                        return bad(match f {
                            Format::Url => "a web address (http or https)",
                            Format::Email => "an e-mail address",
                            Format::Phone => "a telephone number",
                        });
                    }
                }
                Value::Text(t)
            }
            ThemeType::Integer => match v {
                Value::Integer(i) => Value::Integer(*i),
                Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Integer(*f as i64),
                _ => match text.replace([' ', '\u{a0}'], "").parse::<i64>() {
                    Ok(i) => Value::Integer(i),
                    Err(_) => return bad("a whole number"),
                },
            },
            ThemeType::Real => match v {
                Value::Integer(i) => Value::Real(*i as f64),
                Value::Real(f) => Value::Real(*f),
                _ => match text
                    .replace([' ', '\u{a0}'], "")
                    .replace(',', ".")
                    .parse::<f64>()
                {
                    Ok(f) if f.is_finite() => Value::Real(f),
                    _ => return bad("a number"),
                },
            },
            ThemeType::Boolean => match v {
                Value::Boolean(b) => Value::Boolean(*b),
                Value::Integer(0) => Value::Boolean(false),
                Value::Integer(1) => Value::Boolean(true),
                _ => match text.to_lowercase().as_str() {
                    "true" | "t" | "ja" | "j" | "yes" | "y" | "1" | "sant" | "x" => {
                        Value::Boolean(true)
                    }
                    "false" | "f" | "nej" | "n" | "no" | "0" | "falskt" => Value::Boolean(false),
                    _ => return bad("yes or no (true/false, ja/nej, 1/0)"),
                },
            },
            ThemeType::Date => match v {
                Value::Date(d) => Value::Date(*d),
                Value::DateTime(t) => Value::Date(t.date_naive()),
                _ => match parse_date(&text) {
                    Some(d) => Value::Date(d),
                    None => return bad("a date (YYYY-MM-DD)"),
                },
            },
            ThemeType::Datetime => match v {
                Value::DateTime(t) => Value::DateTime(*t),
                Value::Date(d) => Value::DateTime(midnight_utc(*d)),
                _ => match parse_datetime(&text) {
                    Some(t) => Value::DateTime(t),
                    None => return bad("a date and time (RFC 3339)"),
                },
            },
        };
        Ok(value)
    }
}

impl Shape for Mapper {
    fn shape(
        &self,
        row: u64,
        values: Vec<Value>,
        id: String,
        geometry: Option<&'static str>,
    ) -> Result<Shaped, String> {
        let _ = id;
        let source_id = self
            .id_column
            .and_then(|i| values.get(i))
            .map(|v| match v {
                Value::Text(s) => s.trim().to_string(),
                Value::Null => String::new(),
                other => json_text(other),
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                if self.id_column.is_some() {
                    self.numbered
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                row.to_string()
            });
        let mut problems = Vec::new();
        let mut out = Vec::with_capacity(self.feeds.len());
        for feed in &self.feeds {
            out.push(match feed {
                Feed::Source => Value::Text(self.source.to_string()),
                Feed::Empty => Value::Null,
                Feed::SourceId => Value::Text(source_id.clone()),
                Feed::Theme(t, column) => {
                    let a = &self.theme.attributes[*t];
                    let v = column.and_then(|i| values.get(i)).unwrap_or(&Value::Null);
                    match self.convert(a, v) {
                        Ok(Value::Null) if a.required => {
                            problems.push(format!("{}: required value missing", a.name));
                            Value::Null
                        }
                        Ok(v) => v,
                        Err(why) => {
                            problems.push(format!("{why} (stored empty)"));
                            Value::Null
                        }
                    }
                }
            });
        }
        match geometry {
            Some(g) if !self.theme.geometry.admits(g) => problems.push(format!(
                "the geometry is a {g}; the theme {} wants {}",
                self.theme.id,
                self.theme.geometry.name()
            )),
            None if self.theme.geometry != super::GeometryKind::Any => problems.push(format!(
                "no geometry; the theme {} wants {}",
                self.theme.id,
                self.theme.geometry.name()
            )),
            _ => {}
        }
        if self.strict && !problems.is_empty() {
            let problems: Vec<String> = problems
                .into_iter()
                .map(|p| p.trim_end_matches(" (stored empty)").to_string())
                .collect();
            return Err(format!(
                "does not fit the theme {}: {}",
                self.theme.id,
                problems.join("; ")
            ));
        }
        Ok(Shaped {
            values: out,
            id: format!("{}:{source_id}", self.source),
            problems,
        })
    }
}

fn json_text(v: &Value) -> String {
    match v.to_json() {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A value in a message: quoted, at most 60 characters.
fn quote_value(s: &str) -> String {
    let short: String = s.chars().take(60).collect();
    if short.len() < s.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

fn format_ok(f: Format, s: &str) -> bool {
    match f {
        Format::Url => reqwest::Url::parse(s)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()),
        Format::Email => {
            let mut parts = s.split('@');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(local), Some(domain), None) => {
                    !local.is_empty()
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !s.contains(char::is_whitespace)
                }
                _ => false,
            }
        }
        Format::Phone => {
            s.chars()
                .all(|c| c.is_ascii_digit() || " +-()/".contains(c))
                && s.chars().filter(char::is_ascii_digit).count() >= 5
        }
    }
}

fn midnight_utc(d: NaiveDate) -> DateTime<FixedOffset> {
    d.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .fixed_offset()
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"))
        .ok()
        .or_else(|| parse_datetime(s).map(|t| t.date_naive()))
}

/// RFC 3339, or a date and time without an offset, read as UTC.
fn parse_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok().or_else(|| {
        ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(|t| t.and_utc().fixed_offset())
    })
}
