//! Demo data: the manifest `data/demo.toml` and loading it into an empty store, so a first
//! `hamn serve` has something to show.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::CollectionId;
use crate::ingest::{self, reader::ReadOptions, IngestOptions, IngestReport, MetaOptions};
use crate::store::{IngestMode, Store};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub collection: Vec<DemoCollection>,
    /// Parts of theme collections, ingested after the collections, in order.
    #[serde(default)]
    pub theme: Vec<DemoThemePart>,
}

/// One `[[theme]]` of the manifest: a file mapped into a theme collection as one publisher's
/// part, as `hamn ingest FILE --theme … --source-org … --map …` does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoThemePart {
    pub theme: String,
    pub file: PathBuf,
    pub source: String,
    pub id_field: Option<String>,
    #[serde(default)]
    pub map: std::collections::BTreeMap<String, String>,
    pub publisher: Option<String>,
    pub licence: Option<String>,
}

impl DemoThemePart {
    pub fn ingest_options(&self, dir: &Path) -> Result<IngestOptions, String> {
        let theme = crate::theme::find(&self.theme)?;
        Ok(IngestOptions {
            theme: Some(ingest::ThemeIngest {
                theme,
                source: self.source.parse()?,
                mapping: crate::theme::Mapping {
                    id_field: self.id_field.clone(),
                    map: self.map.clone(),
                    ..Default::default()
                },
            }),
            meta: MetaOptions {
                publisher: self.publisher.clone(),
                licence: self.licence.clone(),
                ..Default::default()
            },
            ..IngestOptions::new(dir.join(&self.file).display().to_string())
        })
    }
}

/// One `[[collection]]` of the manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoCollection {
    pub id: CollectionId,
    pub file: PathBuf,
    pub title: String,
    pub description: Option<String>,
    pub publisher: Option<String>,
    pub licence: Option<String>,
    pub category: Option<String>,
    /// The language of title, description and keywords [default: the catalog's].
    pub language: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub layer: Option<String>,
    pub source_crs: Option<String>,
    pub x_field: Option<String>,
    pub y_field: Option<String>,
    pub wkt_field: Option<String>,
    pub id_field: Option<String>,
    pub datetime_field: Option<String>,
    pub encoding: Option<String>,
    pub min_zoom: Option<u8>,
    pub max_zoom: Option<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
}

pub fn load_manifest(dir: &Path) -> Result<Manifest, DemoError> {
    let path = dir.join("demo.toml");
    let text = std::fs::read_to_string(&path).map_err(|source| DemoError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| DemoError::Parse {
        path: path.display().to_string(),
        source,
    })
}

impl DemoCollection {
    pub fn ingest_options(&self, dir: &Path) -> IngestOptions {
        IngestOptions {
            collection: Some(self.id.clone()),
            layer: self.layer.clone(),
            mode: IngestMode::Replace,
            read: ReadOptions {
                source_crs: self.source_crs.clone(),
                x_field: self.x_field.clone(),
                y_field: self.y_field.clone(),
                wkt_field: self.wkt_field.clone(),
                xy_hint: None,
                position_hint: None,
            },
            id_field: self.id_field.clone(),
            datetime_field: self.datetime_field.clone(),
            encoding: self.encoding.clone(),
            zoom: (self.min_zoom, self.max_zoom),
            meta: MetaOptions {
                title: Some(self.title.clone()),
                description: self.description.clone(),
                keywords: self.keywords.clone(),
                theme: self.category.clone(),
                publisher: self.publisher.clone(),
                licence: self.licence.clone(),
                conforms_to: Vec::new(),
                language: self.language.clone(),
            },
            ..IngestOptions::new(dir.join(&self.file).display().to_string())
        }
    }
}

/// Ingests every demo collection; one that fails is logged and skipped, so a broken file
/// does not keep the server from starting.
pub async fn load(store: &dyn Store, dir: &Path) -> Result<Vec<IngestReport>, DemoError> {
    let manifest = load_manifest(dir)?;
    let mut reports = Vec::new();
    for c in &manifest.collection {
        match ingest::ingest(store, &c.ingest_options(dir)).await {
            Ok(r) => {
                for report in &r {
                    tracing::info!(collection = %report.collection, features = report.feature_count, "demo data loaded");
                }
                reports.extend(r);
            }
            Err(e) => tracing::error!(collection = %c.id, error = %e, "demo data not loaded"),
        }
    }
    for part in &manifest.theme {
        let result = match part.ingest_options(dir) {
            Ok(o) => ingest::ingest(store, &o).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => {
                for report in &r {
                    tracing::info!(collection = %report.collection, source = %part.source, features = report.feature_count, "demo theme part loaded");
                }
                reports.extend(r);
            }
            Err(e) => {
                tracing::error!(theme = %part.theme, source = %part.source, error = %e, "demo theme part not loaded")
            }
        }
    }
    Ok(reports)
}
