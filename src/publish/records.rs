//! The documents the publishing side keeps in the store: jobs with their reports, and
//! sources (a URL refreshed on a schedule, or a DCAT catalog harvested on one).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{CollectionId, Description};
use crate::ingest::IngestReport;
use crate::store::IngestMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    /// A new version was committed.
    Succeeded,
    /// The source had not changed (HTTP 304, or the same SHA-256); nothing was done.
    Unchanged,
    /// Nothing was changed; `error` says why.
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_finished(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum JobKind {
    /// A file sent to `/admin/collections/{id}/upload`.
    Upload {
        collection: CollectionId,
        mode: IngestMode,
        #[serde(rename = "fileName")]
        file_name: String,
        bytes: u64,
    },
    /// A file sent to `/admin/themes/{theme}/sources/{org}/upload`: one publisher's part of a
    /// theme collection, replacing that publisher's part before.
    #[serde(rename = "theme-upload")]
    ThemeUpload {
        collection: CollectionId,
        theme: String,
        /// The publisher whose part it is.
        source: crate::theme::SourceOrg,
        #[serde(rename = "fileName")]
        file_name: String,
        bytes: u64,
    },
    /// A check of a collection's source URL (and an ingest when it changed).
    Refresh {
        collection: CollectionId,
        url: String,
    },
    /// Reading a DCAT catalog and registering a source per dataset it offers.
    Harvest { catalog: String },
}

impl JobKind {
    pub fn collection(&self) -> Option<&CollectionId> {
        match self {
            JobKind::Upload { collection, .. }
            | JobKind::ThemeUpload { collection, .. }
            | JobKind::Refresh { collection, .. } => Some(collection),
            JobKind::Harvest { .. } => None,
        }
    }

    /// The publisher whose part of a theme collection the job is about, if it is one.
    pub fn source(&self) -> Option<&crate::theme::SourceOrg> {
        match self {
            JobKind::ThemeUpload { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Features written to the store so far.
    pub written: u64,
    /// Features in the source, when its format says.
    pub total: Option<u64>,
}

/// One feature the ingest repaired or rejected, with its number in the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureNote {
    pub feature: u64,
    pub reason: String,
}

/// The ingest report of one layer, as the API shows it (the first 100 repairs, rejections and
/// features kept that do not fit a theme; the counts are whole).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerReport {
    pub collection: CollectionId,
    pub changed: bool,
    pub version: i64,
    pub read: u64,
    pub stored: u64,
    pub repaired_count: u64,
    pub rejected_count: u64,
    pub repaired: Vec<FeatureNote>,
    pub rejected: Vec<FeatureNote>,
    /// A theme ingest's features kept although they do not fit the theme (with `strict`
    /// they are rejected instead). Absent from records made before themes.
    #[serde(default)]
    pub unfit_count: u64,
    #[serde(default)]
    pub unfit: Vec<FeatureNote>,
    pub warnings: Vec<String>,
    pub feature_count: u64,
    pub seconds: f64,
}

const LISTED: usize = 100;

impl From<&IngestReport> for LayerReport {
    fn from(r: &IngestReport) -> Self {
        let notes = |list: &[(u64, String)]| {
            list.iter()
                .take(LISTED)
                .map(|(feature, reason)| FeatureNote {
                    feature: *feature,
                    reason: reason.clone(),
                })
                .collect()
        };
        Self {
            collection: r.collection.clone(),
            changed: r.outcome == crate::ingest::Outcome::Stored,
            version: r.version,
            read: r.read,
            stored: r.stored,
            repaired_count: r.repaired.len() as u64,
            rejected_count: r.rejected.len() as u64,
            repaired: notes(&r.repaired),
            rejected: notes(&r.rejected),
            unfit_count: r.unfit.len() as u64,
            unfit: notes(&r.unfit),
            warnings: r.warnings.clone(),
            feature_count: r.feature_count,
            seconds: r.seconds,
        }
    }
}

/// What a harvest did with one dataset of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HarvestItem {
    pub dataset: String,
    pub title: String,
    /// `scheduled` (a source was registered or updated and a refresh queued), `skipped`, or
    /// `gone` (harvested before from this catalog, no longer in it; kept).
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<CollectionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    pub id: String,
    #[serde(flatten)]
    pub kind: JobKind,
    pub state: JobState,
    /// The id of the token that asked for it (`scheduler` for scheduled refreshes).
    pub requested_by: String,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub progress: Progress,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<LayerReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub harvest: Vec<HarvestItem>,
    /// Why it failed, or what was unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a source URL is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// A file, downloaded whole (with a conditional GET).
    #[default]
    File,
    /// A collection of an OGC API – Features server, read page by page.
    OgcApiFeatures,
}

/// A collection's data at a URL, fetched again every `interval_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UrlSource {
    pub collection: CollectionId,
    pub url: String,
    #[serde(default)]
    pub protocol: Protocol,
    pub interval_seconds: u64,
    /// Metadata to give the collection on each ingest (from a harvested catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Description>,
    /// The catalog this source was harvested from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harvested_from: Option<String>,
    /// The catalog's URI of the dataset this source was harvested for (a later harvest keeps
    /// feeding the same collection when the title changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The file extension the catalog's format implies (`csv`, `geojson` …): given to the
    /// download when its URL and Content-Type say nothing (`…/store/2/resource/27`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
    #[serde(default)]
    pub last_changed: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub checks: Checks,
}

/// How a source's last check went (all None before the first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checks {
    #[serde(default)]
    pub last_checked: Option<DateTime<Utc>>,
    /// State of the last job: succeeded, unchanged, failed, cancelled.
    #[serde(default)]
    pub last_state: Option<JobState>,
    #[serde(default)]
    pub last_message: Option<String>,
    #[serde(default)]
    pub last_job: Option<String>,
}

impl UrlSource {
    /// A source for `collection` at `url`, keeping what the source it replaces (`old`) knew
    /// of the same URL (validators and checks; a new URL starts unchecked). Metadata and the
    /// harvest fields start empty.
    pub fn new(
        collection: CollectionId,
        url: String,
        interval_seconds: u64,
        old: Option<&UrlSource>,
    ) -> Self {
        let same = old.filter(|o| o.url == url);
        Self {
            collection,
            interval_seconds,
            protocol: Protocol::File,
            meta: None,
            harvested_from: None,
            dataset: None,
            format: None,
            etag: same.and_then(|o| o.etag.clone()),
            last_modified: same.and_then(|o| o.last_modified.clone()),
            last_changed: old.and_then(|o| o.last_changed),
            // A new URL has not been checked: the scheduler takes it up as soon as it can.
            checks: same.map(|o| o.checks.clone()).unwrap_or_default(),
            url,
        }
    }
}

/// A DCAT catalog harvested every `interval_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSource {
    pub url: String,
    pub interval_seconds: u64,
    /// Prefix of the collection ids made for its datasets (e.g. `lund-`).
    #[serde(default)]
    pub prefix: String,
    #[serde(flatten)]
    pub checks: Checks,
}

/// Every source record: stored under the collection id (URL sources) or `catalog_<hash>`
/// (an underscore, which no collection id has, so the two kinds of key never meet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
// Few and short-lived values (a list of sources): not worth a box.
#[allow(clippy::large_enum_variant)]
pub enum SourceDoc {
    Url(UrlSource),
    Catalog(CatalogSource),
}

impl SourceDoc {
    pub fn interval(&self) -> u64 {
        match self {
            SourceDoc::Url(s) => s.interval_seconds,
            SourceDoc::Catalog(c) => c.interval_seconds,
        }
    }

    pub fn last_checked(&self) -> Option<DateTime<Utc>> {
        match self {
            SourceDoc::Url(s) => s.checks.last_checked,
            SourceDoc::Catalog(c) => c.checks.last_checked,
        }
    }
}

/// The record key of a catalog source: a hash, since URLs are long and any text.
pub fn catalog_key(url: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(url.as_bytes());
    format!("catalog_{}", hex::encode(&h[..8]))
}
