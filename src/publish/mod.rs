//! Publishing: getting data into hamn over HTTP (uploads, source URLs on a schedule, DCAT
//! catalogs), as background jobs.
//!
//! A job is an ingest (of an upload, or of a source URL that changed) or a harvest. Jobs run
//! on tokio tasks of their own, at most `concurrency` at a time, so a client that disconnects
//! does not stop one. Each job is a record in the store, written when it is queued, starts
//! and ends; its progress between is read live. An ingest is atomic as ever: a job that
//! fails, is cancelled, or is cut short by a restart changes nothing. At start-up, jobs the
//! last process left queued or running are marked failed, and the spool of uploads is
//! emptied. A scheduler checks the sources every few seconds and queues a refresh of each
//! one that is due.

pub mod dcat;
pub mod fetch;
pub mod oapif;
pub mod records;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;

use crate::catalog::{CollectionId, Description};
use crate::ingest::{self, IngestError, IngestOptions, IngestWatch, MetaOptions, Outcome};
use crate::store::{IngestMode, RecordKind, Store, StoreError};
use records::{
    CatalogSource, HarvestItem, JobKind, JobRecord, JobState, LayerReport, Progress, Protocol,
    SourceDoc, UrlSource,
};

#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Jobs running at once; more wait in the queue.
    pub concurrency: usize,
    /// Where uploads and downloads wait for their ingest (emptied at start-up).
    pub spool_dir: PathBuf,
    pub max_upload_bytes: u64,
    pub fetch: fetch::FetchPolicy,
    /// The shortest refresh interval a source may ask for.
    pub min_interval: Duration,
    /// How often the scheduler looks for sources that are due.
    pub tick: Duration,
    /// Finished jobs kept (the oldest are forgotten at start-up).
    pub keep_jobs: usize,
    pub allow_any_gdal_driver: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            concurrency: 2,
            spool_dir: std::env::temp_dir().join("hamn-spool"),
            max_upload_bytes: 1 << 30,
            fetch: fetch::FetchPolicy::default(),
            min_interval: Duration::from_secs(60),
            tick: Duration::from_secs(5),
            keep_jobs: 1000,
            allow_any_gdal_driver: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("spool: {0}")]
    Io(String),
}

/// Options of an upload's ingest that a publisher may set.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    pub mode: IngestMode,
    pub layer: Option<String>,
    pub source_crs: Option<String>,
    pub id_field: Option<String>,
    pub encoding: Option<String>,
    /// One publisher's part of a theme collection (the collection is the theme's): mapped
    /// into the theme and replacing that publisher's part only; `mode` and `id_field` are not
    /// used (the mapping has the id column).
    pub theme: Option<ingest::ThemeIngest>,
}

/// A file received and written to the spool, waiting for its job.
pub struct Spooled {
    dir: tempfile::TempDir,
    pub file_name: String,
    pub bytes: u64,
}

impl Spooled {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(&self.file_name)
    }
}

enum Work {
    Upload(Spooled, Box<UploadOptions>),
    Refresh(CollectionId),
    Harvest(String),
}

struct Live {
    record: JobRecord,
    watch: IngestWatch,
    /// The source record this job works for (so the scheduler does not queue it twice).
    source_key: Option<String>,
}

pub struct Publisher {
    store: Arc<dyn Store>,
    options: PublishOptions,
    live: Mutex<HashMap<String, Live>>,
    permits: Arc<tokio::sync::Semaphore>,
    /// Jobs finished since the records were last pruned to `keep_jobs`.
    finished: std::sync::atomic::AtomicUsize,
}

/// Finished jobs between prunings of the job records (scheduled checks of many sources add
/// thousands a day; each pruning reads them all once).
const PRUNE_EVERY: usize = 50;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_doc<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Task(format!("serialising a record: {e}")))
}

/// Job ids sort by creation: milliseconds since 1970, then random digits against collisions.
fn new_job_id() -> String {
    let mut r = [0u8; 3];
    let _ = getrandom::fill(&mut r);
    format!(
        "j{:013}{}",
        Utc::now().timestamp_millis().max(0),
        hex::encode(r)
    )
}

impl Publisher {
    /// Marks jobs a previous process left unfinished as failed, empties the spool, and starts
    /// the scheduler.
    pub async fn start(
        store: Arc<dyn Store>,
        options: PublishOptions,
    ) -> Result<Arc<Self>, PublishError> {
        let mut jobs: Vec<JobRecord> = Vec::new();
        for (key, doc) in store.list_records(RecordKind::Job).await? {
            match serde_json::from_value::<JobRecord>(doc) {
                Ok(j) => jobs.push(j),
                Err(e) => tracing::warn!(job = %key, error = %e, "unreadable job record skipped"),
            }
        }
        for job in jobs.iter_mut().filter(|j| !j.state.is_finished()) {
            job.state = JobState::Failed;
            job.finished = Some(Utc::now());
            job.message = Some(
                "interrupted: hamn stopped before the job finished; nothing was changed".into(),
            );
            store
                .put_record(RecordKind::Job, &job.id, &to_doc(job)?)
                .await?;
            tracing::warn!(job = %job.id, "job interrupted by a restart marked failed");
        }
        let mut ids: Vec<String> = jobs.into_iter().map(|j| j.id).collect();
        prune(store.as_ref(), &mut ids, options.keep_jobs, &HashSet::new()).await?;
        let spool = &options.spool_dir;
        if spool.exists() {
            std::fs::remove_dir_all(spool)
                .map_err(|e| PublishError::Io(format!("emptying {}: {e}", spool.display())))?;
        }
        std::fs::create_dir_all(spool)
            .map_err(|e| PublishError::Io(format!("creating {}: {e}", spool.display())))?;
        let publisher = Arc::new(Self {
            permits: Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1))),
            store,
            options,
            live: Mutex::new(HashMap::new()),
            finished: std::sync::atomic::AtomicUsize::new(0),
        });
        let weak = Arc::downgrade(&publisher);
        let tick = publisher.options.tick;
        tokio::spawn(async move { schedule(weak, tick).await });
        Ok(publisher)
    }

    pub fn options(&self) -> &PublishOptions {
        &self.options
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A place in the spool for one uploaded file; `file_name` must already be safe.
    pub fn spool(&self, file_name: &str) -> Result<(Spooled, PathBuf), PublishError> {
        let dir = tempfile::Builder::new()
            .prefix("upload-")
            .tempdir_in(&self.options.spool_dir)
            .map_err(|e| PublishError::Io(e.to_string()))?;
        let path = dir.path().join(file_name);
        Ok((
            Spooled {
                dir,
                file_name: file_name.to_string(),
                bytes: 0,
            },
            path,
        ))
    }

    async fn save(&self, record: &JobRecord) -> Result<(), StoreError> {
        self.store
            .put_record(RecordKind::Job, &record.id, &to_doc(record)?)
            .await
    }

    /// Queues a job; None when `source_key` already has one queued or running. The check and
    /// the reservation are one step under the lock, so two callers (the scheduler and a
    /// refresh asked for by hand) cannot both queue one.
    async fn enqueue(
        self: &Arc<Self>,
        kind: JobKind,
        by: &str,
        work: Work,
        source_key: Option<String>,
    ) -> Result<Option<JobRecord>, PublishError> {
        let record = JobRecord {
            id: new_job_id(),
            kind,
            state: JobState::Queued,
            requested_by: by.to_string(),
            created: Utc::now(),
            started: None,
            finished: None,
            progress: Progress::default(),
            report: Vec::new(),
            harvest: Vec::new(),
            message: None,
        };
        let watch = IngestWatch::default();
        {
            let mut live = lock(&self.live);
            if let Some(key) = &source_key {
                if live.values().any(|l| l.source_key.as_ref() == Some(key)) {
                    return Ok(None);
                }
            }
            live.insert(
                record.id.clone(),
                Live {
                    record: record.clone(),
                    watch: watch.clone(),
                    source_key,
                },
            );
        }
        if let Err(e) = self.save(&record).await {
            lock(&self.live).remove(&record.id);
            return Err(e.into());
        }
        let me = self.clone();
        let id = record.id.clone();
        tokio::spawn(me.run_boxed(id, work, watch));
        Ok(Some(record))
    }

    /// `run` behind a named future type: a harvest job queues refresh jobs, so `run` reaches
    /// `enqueue`, which spawns `run`; the box breaks that cycle of opaque types.
    fn run_boxed(
        self: Arc<Self>,
        id: String,
        work: Work,
        watch: IngestWatch,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(self.run(id, work, watch))
    }

    /// The job queued or running for a source, if any.
    fn live_job(&self, source_key: &str) -> Option<JobRecord> {
        lock(&self.live)
            .values()
            .find(|l| l.source_key.as_deref() == Some(source_key))
            .map(|l| l.record.clone())
    }

    fn busy(&self, source_key: &str) -> bool {
        lock(&self.live)
            .values()
            .any(|l| l.source_key.as_deref() == Some(source_key))
    }

    async fn run(self: Arc<Self>, id: String, work: Work, watch: IngestWatch) {
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        // Under the lock, so a cancel sees the job either queued (and ends it itself) or
        // running (and leaves the ending to the work, which sees the flag).
        let started = {
            let mut live = lock(&self.live);
            match live.get_mut(&id) {
                Some(l) if !l.watch.cancel.load(Ordering::Relaxed) => {
                    l.record.state = JobState::Running;
                    l.record.started = Some(Utc::now());
                    Some(l.record.clone())
                }
                _ => None,
            }
        };
        let Some(started) = started else { return };
        if let Err(e) = self.save(&started).await {
            tracing::warn!(job = %id, error = %e, "could not record that a job started");
        }
        let work = async {
            match work {
                Work::Upload(spooled, opts) => {
                    self.run_upload(&started, spooled, *opts, &watch).await
                }
                Work::Refresh(collection) => self.run_refresh(&id, &collection, &watch).await,
                Work::Harvest(key) => self.run_harvest(&id, &key, &watch).await,
            }
        };
        // A panic in a job must not leave it "running" (and its source busy) until a restart.
        let outcome = std::panic::AssertUnwindSafe(work)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!(job = %id, "a job panicked");
                Err("the job stopped on an internal error (see the server's log)".into())
            });
        self.finish(&id, outcome, &watch).await;
    }

    async fn finish(&self, id: &str, outcome: Result<Done, String>, watch: &IngestWatch) {
        let record = {
            let mut live = lock(&self.live);
            let Some(mut l) = live.remove(id) else { return };
            let r = &mut l.record;
            r.finished = Some(Utc::now());
            r.progress = progress(watch);
            match outcome {
                Ok(done) => {
                    r.state = done.state;
                    r.message = done.message;
                    r.report = done.report;
                    r.harvest = done.harvest;
                }
                Err(_) if watch.cancel.load(Ordering::Relaxed) => {
                    r.state = JobState::Cancelled;
                    r.message = Some("cancelled; nothing was changed".into());
                }
                Err(message) => {
                    r.state = JobState::Failed;
                    r.message = Some(message);
                }
            }
            l.record
        };
        tracing::info!(job = %record.id, state = ?record.state, message = record.message.as_deref().unwrap_or(""), "job finished");
        if let Err(e) = self.save(&record).await {
            tracing::error!(job = %record.id, error = %e, "could not record a finished job");
        }
        if self.finished.fetch_add(1, Ordering::Relaxed) + 1 >= PRUNE_EVERY {
            self.finished.store(0, Ordering::Relaxed);
            if let Err(e) = self.prune_jobs().await {
                tracing::warn!(error = %e, "could not prune old job records");
            }
        }
    }

    /// Forgets the oldest finished jobs beyond `keep_jobs`.
    async fn prune_jobs(&self) -> Result<(), StoreError> {
        let mut ids: Vec<String> = self
            .store
            .list_records(RecordKind::Job)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let live: HashSet<String> = lock(&self.live).keys().cloned().collect();
        prune(self.store.as_ref(), &mut ids, self.options.keep_jobs, &live).await
    }

    /// Every job the store remembers, newest first, the unfinished ones with live progress.
    pub async fn jobs(&self) -> Result<Vec<JobRecord>, PublishError> {
        let mut out: Vec<JobRecord> = Vec::new();
        for (_, doc) in self.store.list_records(RecordKind::Job).await? {
            if let Ok(j) = serde_json::from_value::<JobRecord>(doc) {
                out.push(j);
            }
        }
        let live = lock(&self.live);
        for job in out.iter_mut() {
            if let Some(l) = live.get(&job.id) {
                *job = l.record.clone();
                job.progress = progress(&l.watch);
            }
        }
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }

    pub async fn job(&self, id: &str) -> Result<JobRecord, PublishError> {
        if let Some(l) = lock(&self.live).get(id) {
            let mut r = l.record.clone();
            r.progress = progress(&l.watch);
            return Ok(r);
        }
        let doc = self
            .store
            .get_record(RecordKind::Job, id)
            .await?
            .ok_or_else(|| PublishError::NotFound(format!("no job {}", crate::api::quote(id))))?;
        serde_json::from_value(doc)
            .map_err(|e| PublishError::Store(StoreError::Task(format!("job {id}: {e}"))))
    }

    /// Stops a job: a queued one at once, a running one before its commit. A finished job
    /// cannot be cancelled.
    pub async fn cancel(&self, id: &str) -> Result<JobRecord, PublishError> {
        // None: not live (finished, or unknown); Some(Some(_)): it was queued and is removed
        // here, so `run` will not start it; Some(None): it runs and will see the flag.
        let found = {
            let mut live = lock(&self.live);
            match live.get(id) {
                None => None,
                Some(l) => {
                    l.watch.cancel.store(true, Ordering::Relaxed);
                    if l.record.state == JobState::Queued {
                        Some(live.remove(id))
                    } else {
                        Some(None)
                    }
                }
            }
        };
        match found {
            None => {
                let job = self.job(id).await?;
                Err(PublishError::Conflict(format!(
                    "job {id} has finished ({:?}); there is nothing to cancel",
                    job.state
                )))
            }
            Some(Some(l)) => {
                let mut record = l.record;
                record.state = JobState::Cancelled;
                record.finished = Some(Utc::now());
                record.message = Some("cancelled before it started; nothing was changed".into());
                self.save(&record).await?;
                // The source counts as checked, or the scheduler would queue it again at once.
                if let Some(key) = &l.source_key {
                    let checks = checks(id, &Err(String::new()), &l.watch);
                    self.record_check(key, None, checks, None).await;
                }
                Ok(record)
            }
            Some(None) => self.job(id).await,
        }
    }

    /// Asks every job of a collection to stop (before a delete: a refresh that went on would
    /// bring the collection back).
    pub fn cancel_collection(&self, id: &CollectionId) {
        for l in lock(&self.live).values() {
            if l.record.kind.collection() == Some(id) {
                l.watch.cancel.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Records how a check of a source went, on the source as it is now: it may have been
    /// deleted (it stays deleted) or pointed at another URL meanwhile (then the old URL's
    /// results, `url` given, are not its). Validators are stored only when given.
    async fn record_check(
        &self,
        key: &str,
        url: Option<&str>,
        checks: records::Checks,
        validators: Option<(Option<String>, Option<String>)>,
    ) {
        let doc = match self.source_doc(key).await {
            Ok(Some(doc)) => doc,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(source = %key, error = %e, "could not read a source to record a check");
                return;
            }
        };
        let updated = match doc {
            SourceDoc::Url(mut u) if url.is_none_or(|url| u.url == url) => {
                if checks.last_state == Some(JobState::Succeeded) {
                    u.last_changed = checks.last_checked;
                }
                if let Some((etag, last_modified)) = validators {
                    u.etag = etag;
                    u.last_modified = last_modified;
                }
                u.checks = checks;
                SourceDoc::Url(u)
            }
            SourceDoc::Catalog(mut c) if url.is_none_or(|url| c.url == url) => {
                c.checks = checks;
                SourceDoc::Catalog(c)
            }
            _ => return,
        };
        if let Err(e) = self.put_source(key, &updated).await {
            tracing::warn!(source = %key, error = %e, "could not record a check");
        }
    }

    /// Queues the ingest of an uploaded file.
    pub async fn upload(
        self: &Arc<Self>,
        collection: CollectionId,
        spooled: Spooled,
        opts: UploadOptions,
        by: &str,
    ) -> Result<JobRecord, PublishError> {
        let kind = match &opts.theme {
            None => JobKind::Upload {
                collection,
                mode: opts.mode,
                file_name: spooled.file_name.clone(),
                bytes: spooled.bytes,
            },
            Some(t) => JobKind::ThemeUpload {
                collection,
                theme: t.theme.id.clone(),
                source: t.source.clone(),
                file_name: spooled.file_name.clone(),
                bytes: spooled.bytes,
            },
        };
        self.enqueue(kind, by, Work::Upload(spooled, Box::new(opts)), None)
            .await?
            .ok_or_else(|| PublishError::Conflict("the upload was not queued".into()))
    }

    async fn run_upload(
        &self,
        job: &JobRecord,
        spooled: Spooled,
        opts: UploadOptions,
        watch: &IngestWatch,
    ) -> Result<Done, String> {
        let Some(collection) = job.kind.collection().cloned() else {
            return Err("an upload job without a collection".into());
        };
        let path = spooled.path();
        let options = IngestOptions {
            collection: Some(collection),
            layer: opts.layer,
            mode: opts.mode,
            read: ingest::reader::ReadOptions {
                source_crs: opts.source_crs,
                ..Default::default()
            },
            id_field: opts.id_field,
            encoding: opts.encoding,
            allow_any_gdal_driver: self.options.allow_any_gdal_driver,
            watch: Some(watch.clone()),
            theme: opts.theme,
            ..IngestOptions::new(path.display().to_string())
        };
        let result = ingest::ingest(self.store.as_ref(), &options).await;
        drop(spooled);
        done_from(result)
    }

    pub async fn sources(&self) -> Result<Vec<(String, SourceDoc)>, PublishError> {
        let mut out = Vec::new();
        for (key, doc) in self.store.list_records(RecordKind::Source).await? {
            match serde_json::from_value::<SourceDoc>(doc) {
                Ok(s) => out.push((key, s)),
                Err(e) => tracing::warn!(source = %key, error = %e, "unreadable source record"),
            }
        }
        Ok(out)
    }

    pub async fn url_source(&self, id: &CollectionId) -> Result<Option<UrlSource>, PublishError> {
        Ok(
            match self
                .store
                .get_record(RecordKind::Source, id.as_str())
                .await?
            {
                Some(doc) => match serde_json::from_value::<SourceDoc>(doc) {
                    Ok(SourceDoc::Url(s)) => Some(s),
                    _ => None,
                },
                None => None,
            },
        )
    }

    fn check_url(&self, url: &str) -> Result<(), PublishError> {
        let ok = url.len() <= 2000
            && (url.starts_with("https://") || url.starts_with("http://"))
            && !url.chars().any(|c| c.is_control() || c == ' ');
        if ok {
            Ok(())
        } else {
            Err(PublishError::BadRequest(format!(
                "url {}: give an absolute http:// or https:// URL",
                crate::api::quote(url)
            )))
        }
    }

    fn check_interval(&self, seconds: u64) -> Result<(), PublishError> {
        let min = self.options.min_interval.as_secs();
        if seconds < min || seconds > 366 * 86_400 {
            return Err(PublishError::BadRequest(format!(
                "intervalSeconds {seconds}: give {min} to {} (a year)",
                366 * 86_400
            )));
        }
        Ok(())
    }

    /// Registers (or changes) a collection's source URL and queues a refresh now.
    pub async fn set_source(
        self: &Arc<Self>,
        collection: CollectionId,
        url: String,
        protocol: Protocol,
        interval_seconds: u64,
        by: &str,
    ) -> Result<(UrlSource, Option<JobRecord>), PublishError> {
        self.check_url(&url)?;
        self.check_interval(interval_seconds)?;
        if protocol == Protocol::OgcApiFeatures {
            oapif::items_url(&url).map_err(PublishError::BadRequest)?;
        }
        let old = self.url_source(&collection).await?;
        let source = UrlSource {
            meta: old.as_ref().and_then(|o| o.meta.clone()),
            protocol,
            ..UrlSource::new(collection.clone(), url, interval_seconds, old.as_ref())
        };
        self.put_source(collection.as_str(), &SourceDoc::Url(source.clone()))
            .await?;
        // The scheduler may have queued the first check already (the source is due at once):
        // then that job is the answer.
        let job = match self.refresh(&collection, by).await? {
            Some(job) => Some(job),
            None => self.live_job(collection.as_str()),
        };
        Ok((source, job))
    }

    async fn put_source(&self, key: &str, doc: &SourceDoc) -> Result<(), StoreError> {
        self.store
            .put_record(RecordKind::Source, key, &to_doc(doc)?)
            .await
    }

    pub async fn delete_source(&self, key: &str) -> Result<bool, PublishError> {
        Ok(self.store.delete_record(RecordKind::Source, key).await?)
    }

    /// Queues a check of a collection's source now; None when one is already queued or running.
    pub async fn refresh(
        self: &Arc<Self>,
        collection: &CollectionId,
        by: &str,
    ) -> Result<Option<JobRecord>, PublishError> {
        let Some(source) = self.url_source(collection).await? else {
            return Err(PublishError::NotFound(format!(
                "collection {collection} has no source URL"
            )));
        };
        if self.busy(collection.as_str()) {
            return Ok(None);
        }
        let kind = JobKind::Refresh {
            collection: collection.clone(),
            url: source.url,
        };
        self.enqueue(
            kind,
            by,
            Work::Refresh(collection.clone()),
            Some(collection.to_string()),
        )
        .await
    }

    async fn run_refresh(
        &self,
        job_id: &str,
        collection: &CollectionId,
        watch: &IngestWatch,
    ) -> Result<Done, String> {
        let mut source = match self.url_source(collection).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(format!("collection {collection} has no source any more")),
            Err(e) => return Err(e.to_string()),
        };
        let result = self.refresh_once(&mut source, collection, watch).await;
        let validators = Some((source.etag.clone(), source.last_modified.clone()));
        self.record_check(
            collection.as_str(),
            Some(&source.url),
            checks(job_id, &result, watch),
            validators,
        )
        .await;
        result
    }

    async fn refresh_once(
        &self,
        source: &mut UrlSource,
        collection: &CollectionId,
        watch: &IngestWatch,
    ) -> Result<Done, String> {
        // What the ingest reads; it stays on disk until `got` is dropped.
        let got = match source.protocol {
            Protocol::File => {
                // Validators are sent only while the collection exists: after a delete (or
                // a failed first ingest) the file must come whole.
                let exists = self
                    .store
                    .get(collection)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some();
                let cond = if exists {
                    fetch::Conditional {
                        etag: source.etag.clone(),
                        last_modified: source.last_modified.clone(),
                    }
                } else {
                    fetch::Conditional::default()
                };
                let fetched = fetch::fetch(
                    &self.options.fetch,
                    &source.url,
                    &cond,
                    &self.options.spool_dir,
                    &watch.cancel,
                )
                .await
                .map_err(|e| e.to_string())?;
                let download = match fetched {
                    fetch::Fetched::NotModified => {
                        return Ok(Done::unchanged(format!(
                            "{} answered 304 Not Modified",
                            source.url
                        )))
                    }
                    fetch::Fetched::File(d) => d,
                };
                let path = with_extension(&download.path, source.format.as_deref())
                    .map_err(|e| format!("renaming the download: {e}"))?;
                Got::File(path, download)
            }
            // Pages carry no validators worth keeping: whether the data changed is told
            // by the SHA-256 of what was read.
            Protocol::OgcApiFeatures => {
                let items = oapif::download(
                    &self.options.fetch,
                    &source.url,
                    &self.options.spool_dir,
                    &watch.cancel,
                )
                .await?;
                Got::Items(items)
            }
        };
        let path = match &got {
            Got::File(path, _) => path.clone(),
            Got::Items(items) => items.path.clone(),
        };
        let meta = source.meta.clone().unwrap_or_default();
        let options = IngestOptions {
            collection: Some(collection.clone()),
            mode: IngestMode::Replace,
            meta: MetaOptions {
                title: Some(meta.title).filter(|t| !t.is_empty()),
                description: meta.description,
                keywords: meta.keywords,
                theme: meta.theme,
                publisher: meta.publisher,
                licence: meta.licence,
                conforms_to: meta.conforms_to,
                language: meta.language,
            },
            allow_any_gdal_driver: self.options.allow_any_gdal_driver,
            watch: Some(watch.clone()),
            ..IngestOptions::new(path.display().to_string())
        };
        let result = ingest::ingest(self.store.as_ref(), &options).await;
        // Validators are kept only once the file is in (or known the same): a failed ingest
        // must be retried in full next time, not answered 304.
        if let (Ok(_), Got::File(_, download)) = (&result, &got) {
            source.etag = download.etag.clone();
            source.last_modified = download.last_modified.clone();
        }
        drop(got);
        done_from(result)
    }

    /// Registers a DCAT catalog, harvested now and every `interval_seconds`.
    pub async fn set_catalog(
        self: &Arc<Self>,
        url: String,
        interval_seconds: u64,
        prefix: String,
        by: &str,
    ) -> Result<(String, CatalogSource, Option<JobRecord>), PublishError> {
        self.check_url(&url)?;
        self.check_interval(interval_seconds)?;
        if !prefix.is_empty()
            && (prefix.len() > 20
                || !prefix.starts_with(|c: char| c.is_ascii_lowercase())
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        {
            return Err(PublishError::BadRequest(format!(
                "prefix {}: up to 20 of a-z, 0-9 and '-', starting with a letter",
                crate::api::quote(&prefix)
            )));
        }
        let key = records::catalog_key(&url);
        let source = CatalogSource {
            url,
            interval_seconds,
            prefix,
            checks: Default::default(),
        };
        self.put_source(&key, &SourceDoc::Catalog(source.clone()))
            .await?;
        let job = match self.harvest(&key, by).await? {
            Some(job) => Some(job),
            None => self.live_job(&key),
        };
        Ok((key, source, job))
    }

    pub async fn harvest(
        self: &Arc<Self>,
        key: &str,
        by: &str,
    ) -> Result<Option<JobRecord>, PublishError> {
        let Some(SourceDoc::Catalog(c)) = self.source_doc(key).await? else {
            return Err(PublishError::NotFound(format!(
                "no catalog {}",
                crate::api::quote(key)
            )));
        };
        if self.busy(key) {
            return Ok(None);
        }
        self.enqueue(
            JobKind::Harvest { catalog: c.url },
            by,
            Work::Harvest(key.to_string()),
            Some(key.to_string()),
        )
        .await
    }

    async fn source_doc(&self, key: &str) -> Result<Option<SourceDoc>, PublishError> {
        Ok(
            match self.store.get_record(RecordKind::Source, key).await? {
                Some(doc) => serde_json::from_value(doc).ok(),
                None => None,
            },
        )
    }

    async fn run_harvest(
        self: &Arc<Self>,
        job_id: &str,
        key: &str,
        watch: &IngestWatch,
    ) -> Result<Done, String> {
        let Ok(Some(SourceDoc::Catalog(catalog))) = self.source_doc(key).await else {
            return Err("the catalog was removed before its harvest began".into());
        };
        let result = self.harvest_once(&catalog, watch).await;
        // Written on the catalog as it is now: its interval or prefix may have changed.
        self.record_check(
            key,
            Some(&catalog.url),
            checks(job_id, &result, watch),
            None,
        )
        .await;
        result
    }

    async fn harvest_once(
        self: &Arc<Self>,
        catalog: &CatalogSource,
        watch: &IngestWatch,
    ) -> Result<Done, String> {
        let policy = fetch::FetchPolicy {
            max_bytes: self
                .options
                .fetch
                .max_bytes
                .min(dcat::MAX_INPUT_BYTES as u64),
            ..self.options.fetch.clone()
        };
        let fetched = fetch::fetch(
            &policy,
            &catalog.url,
            &fetch::Conditional::default(),
            &self.options.spool_dir,
            &watch.cancel,
        )
        .await
        .map_err(|e| e.to_string())?;
        let fetch::Fetched::File(download) = fetched else {
            return Ok(Done::unchanged("the catalog answered 304".into()));
        };
        let bytes = tokio::fs::read(&download.path)
            .await
            .map_err(|e| format!("reading the downloaded catalog: {e}"))?;
        let format = dcat::RdfFormat::guess(
            download.content_type.as_deref(),
            Some(download.file_name.as_str()),
        )
        .unwrap_or_else(|| dcat::RdfFormat::sniff(&bytes));
        let parsed = dcat::parse(&bytes, format, Some(download.final_url.as_str()))
            .map_err(|e| format!("{}: {e}", catalog.url))?;
        drop(download);

        let mut items = Vec::new();
        let mut taken: HashSet<CollectionId> = HashSet::new();
        let existing: HashMap<String, SourceDoc> = self
            .sources()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        for ds in &parsed.datasets {
            let mut item = HarvestItem {
                dataset: ds.uri.clone(),
                title: ds.title.clone(),
                outcome: "skipped".into(),
                collection: None,
                url: None,
                reason: None,
                job: None,
            };
            match self
                .harvest_dataset(catalog, ds, &mut taken, &existing)
                .await
            {
                Ok((id, url, job)) => {
                    item.outcome = "scheduled".into();
                    item.collection = Some(id);
                    item.url = Some(url);
                    item.job = job;
                }
                Err(reason) => item.reason = Some(reason),
            }
            items.push(item);
        }
        let scheduled = items.iter().filter(|i| i.outcome == "scheduled").count();
        let skipped = items.len() - scheduled;
        // Sources this catalog made whose dataset has left it: reported, not deleted (a
        // catalog that is briefly incomplete must not take data down).
        let listed: HashSet<&str> = parsed.datasets.iter().map(|d| d.uri.as_str()).collect();
        let mut gone = 0;
        for source in existing.values() {
            let SourceDoc::Url(u) = source else { continue };
            let Some(uri) = u.dataset.as_deref() else {
                continue;
            };
            if u.harvested_from.as_deref() == Some(catalog.url.as_str())
                && !listed.contains(uri)
                && !taken.contains(&u.collection)
            {
                gone += 1;
                items.push(HarvestItem {
                    dataset: uri.to_string(),
                    title: u.meta.as_ref().map(|m| m.title.clone()).unwrap_or_default(),
                    outcome: "gone".into(),
                    collection: Some(u.collection.clone()),
                    url: Some(u.url.clone()),
                    reason: Some(format!(
                        "no longer in the catalog; collection {} and its source are kept \
                         (DELETE /admin/collections/{} removes both)",
                        u.collection, u.collection
                    )),
                    job: None,
                });
            }
        }
        Ok(Done {
            state: JobState::Succeeded,
            message: Some(format!(
                "{} datasets in the catalog: {scheduled} scheduled, {skipped} skipped{}",
                scheduled + skipped,
                if gone > 0 {
                    format!("; {gone} harvested before are no longer in it")
                } else {
                    String::new()
                }
            )),
            report: Vec::new(),
            harvest: items,
        })
    }

    /// Registers (or updates) the source of one harvested dataset and queues its refresh.
    async fn harvest_dataset(
        self: &Arc<Self>,
        catalog: &CatalogSource,
        ds: &dcat::Dataset,
        taken: &mut HashSet<CollectionId>,
        existing: &HashMap<String, SourceDoc>,
    ) -> Result<(CollectionId, String, Option<String>), String> {
        let (url, protocol, format) = match dcat::choose(ds) {
            Ok(choice) => (
                choice.url,
                Protocol::File,
                Some(choice.kind.extension().to_string()),
            ),
            // A collection of an OGC API Features server is read page by page, when the
            // catalog names the collection (a landing page alone does not say which one).
            Err(skip @ dcat::Skip::ServiceNotSupported { .. }) => match ogc_collection(ds) {
                Some(url) => (url, Protocol::OgcApiFeatures, None),
                None => return Err(skip.to_string()),
            },
            Err(skip) => return Err(skip.to_string()),
        };
        // The collection this dataset fed before, whatever its title is now.
        let before = stable_uri(&ds.uri).and_then(|uri| {
            existing.values().find_map(|s| match s {
                SourceDoc::Url(u)
                    if u.harvested_from.as_deref() == Some(catalog.url.as_str())
                        && u.dataset.as_deref() == Some(uri)
                        && !taken.contains(&u.collection) =>
                {
                    Some(u.collection.clone())
                }
                _ => None,
            })
        });
        let id = match before {
            Some(id) => id,
            None => {
                let base = CollectionId::slugify(&format!("{}{}", catalog.prefix, ds.title))
                    .map_err(|_| "no collection id can be made from its title".to_string())?;
                // Two datasets of one catalog with the same title get -2, -3 …
                let mut id = base.clone();
                let mut n = 2;
                while taken.contains(&id) {
                    id = CollectionId::slugify(&format!("{base}-{n}"))
                        .map_err(|_| "no collection id can be made from its title".to_string())?;
                    n += 1;
                }
                id
            }
        };
        match existing.get(id.as_str()) {
            // Cannot be (catalog keys have an underscore no collection id has); refused all
            // the same, since it would replace a catalog's registration.
            Some(SourceDoc::Catalog(_)) => {
                return Err(format!("{id} is the key of a catalog"));
            }
            Some(SourceDoc::Url(s))
                if s.harvested_from.as_deref() != Some(catalog.url.as_str()) =>
            {
                return Err(format!(
                    "collection {id} is already fed by another source ({})",
                    s.url
                ))
            }
            None if self
                .store
                .get(&id)
                .await
                .map_err(|e| e.to_string())?
                .is_some() =>
            {
                return Err(format!(
                    "a collection {id} exists that was not harvested from this catalog"
                ));
            }
            _ => {}
        }
        taken.insert(id.clone());
        let meta = Description {
            title: ds.title.clone(),
            description: ds.description.clone(),
            keywords: ds.keywords.clone(),
            theme: ds.themes.first().cloned(),
            publisher: ds.publisher.clone(),
            licence: ds.licence.clone(),
            conforms_to: ds.conforms_to.clone(),
            language: ds.language.clone(),
        };
        let old = match existing.get(id.as_str()) {
            Some(SourceDoc::Url(s)) => Some(s.clone()),
            _ => None,
        };
        let source = UrlSource {
            meta: Some(meta.clone()),
            harvested_from: Some(catalog.url.clone()),
            dataset: stable_uri(&ds.uri).map(str::to_string),
            format,
            protocol,
            ..UrlSource::new(
                id.clone(),
                url.clone(),
                catalog.interval_seconds,
                old.as_ref(),
            )
        };
        self.put_source(id.as_str(), &SourceDoc::Url(source))
            .await
            .map_err(|e| e.to_string())?;
        // New metadata reaches a collection whose data is unchanged too.
        if let Ok(Some(entry)) = self.store.get(&id).await {
            if entry.meta != meta {
                crate::changes::describe(self.store.as_ref(), &id, meta, entry.engine)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let job = self
            .refresh(&id, "harvest")
            .await
            .map_err(|e| e.to_string())?;
        Ok((id, url, job.map(|j| j.id)))
    }

    /// Queues a refresh or harvest of every source that is due.
    async fn schedule_due(self: &Arc<Self>) {
        let sources = match self.sources().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler: cannot read the sources");
                return;
            }
        };
        let now = Utc::now();
        for (key, source) in sources {
            let due = source.last_checked().is_none_or(|t| {
                now.signed_duration_since(t).num_seconds() >= source.interval() as i64
            });
            if !due || self.busy(&key) {
                continue;
            }
            let queued = match &source {
                SourceDoc::Url(s) => self.refresh(&s.collection, "scheduler").await,
                SourceDoc::Catalog(_) => self.harvest(&key, "scheduler").await,
            };
            if let Err(e) = queued {
                tracing::warn!(source = %key, error = %e, "scheduler: cannot queue a refresh");
            }
        }
    }
}

/// Deletes the oldest job records (ids sort by creation) beyond `keep`, never a live one.
async fn prune(
    store: &dyn Store,
    ids: &mut [String],
    keep: usize,
    live: &HashSet<String>,
) -> Result<(), StoreError> {
    if ids.len() <= keep {
        return Ok(());
    }
    ids.sort();
    let old: Vec<String> = ids[..ids.len() - keep]
        .iter()
        .filter(|id| !live.contains(*id))
        .cloned()
        .collect();
    store.delete_records(RecordKind::Job, &old).await
}

async fn schedule(publisher: Weak<Publisher>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let Some(p) = publisher.upgrade() else { return };
        p.schedule_due().await;
    }
}

/// What a source records of the job that just checked it.
fn checks(job_id: &str, result: &Result<Done, String>, watch: &IngestWatch) -> records::Checks {
    let (state, message) = match result {
        Ok(done) => (done.state, done.message.clone()),
        Err(m) if watch.cancel.load(Ordering::Relaxed) => (JobState::Cancelled, Some(m.clone())),
        Err(m) => (JobState::Failed, Some(m.clone())),
    };
    records::Checks {
        last_checked: Some(Utc::now()),
        last_state: Some(state),
        last_message: message,
        last_job: Some(job_id.to_string()),
    }
}

fn progress(watch: &IngestWatch) -> Progress {
    let total = watch.total.load(Ordering::Relaxed);
    Progress {
        written: watch.written.load(Ordering::Relaxed),
        total: (total > 0).then_some(total),
    }
}

/// What a refresh read: a downloaded file (under the name the ingest should see), or the
/// items of an OGC API Features collection.
enum Got {
    File(PathBuf, fetch::Download),
    Items(oapif::Items),
}

/// How a job ended well.
struct Done {
    state: JobState,
    message: Option<String>,
    report: Vec<LayerReport>,
    harvest: Vec<HarvestItem>,
}

impl Done {
    fn unchanged(message: String) -> Self {
        Self {
            state: JobState::Unchanged,
            message: Some(message),
            report: Vec::new(),
            harvest: Vec::new(),
        }
    }
}

fn done_from(result: Result<Vec<ingest::IngestReport>, IngestError>) -> Result<Done, String> {
    let reports = result.map_err(|e| e.to_string())?;
    let changed = reports.iter().any(|r| r.outcome == Outcome::Stored);
    Ok(Done {
        state: if changed {
            JobState::Succeeded
        } else {
            JobState::Unchanged
        },
        message: (!changed).then(|| "the file is the same as last time (same SHA-256)".into()),
        report: reports.iter().map(LayerReport::from).collect(),
        harvest: Vec::new(),
    })
}

/// The URL of an OGC API Features collection among a dataset's distributions and services.
fn ogc_collection(ds: &dcat::Dataset) -> Option<String> {
    let distributions = ds.distributions.iter().flat_map(|d| {
        let service = d.access_service.iter().flat_map(|s| s.endpoint_urls.iter());
        [&d.access_url, &d.download_url]
            .into_iter()
            .flatten()
            .chain(service)
    });
    let services = ds.services.iter().flat_map(|s| s.endpoint_urls.iter());
    distributions
        .chain(services)
        .find(|u| {
            (u.starts_with("https://") || u.starts_with("http://")) && oapif::items_url(u).is_ok()
        })
        .cloned()
}

/// A dataset URI that names the same dataset in the next harvest: an IRI, not a blank node
/// (whose label the parser makes up anew each time).
fn stable_uri(uri: &str) -> Option<&str> {
    (!uri.starts_with("_:")).then_some(uri)
}

/// Gives a downloaded file the extension its catalog entry implies when it has another (GDAL
/// tells CSV and some others by the name only). The file stays in its download directory.
fn with_extension(path: &Path, ext: Option<&str>) -> std::io::Result<PathBuf> {
    let Some(ext) = ext else {
        return Ok(path.to_path_buf());
    };
    let has = path.extension().is_some_and(|e| {
        let e = e.to_string_lossy().to_ascii_lowercase();
        e == ext || (ext == "kml" && e == "kmz")
    });
    if has {
        return Ok(path.to_path_buf());
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    let renamed = path.with_file_name(name);
    std::fs::rename(path, &renamed)?;
    Ok(renamed)
}

/// A file name from a client, made safe to put in the spool and to show GDAL: letters,
/// digits, `.`, `_` and `-` only, no leading dot, at most 100 characters, the extension kept.
pub fn safe_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    let cleaned = if cleaned.len() > 100 {
        let ext = Path::new(cleaned)
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .filter(|e| e.len() <= 10)
            .unwrap_or_default();
        format!("{}.{ext}", &cleaned[..80])
    } else {
        cleaned.to_string()
    };
    (!cleaned.is_empty() && cleaned.contains('.')).then_some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn old_jobs_are_pruned_but_not_live_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::embedded::EmbeddedStore::open(dir.path()).expect("store");
        let mut ids: Vec<String> = (0..6).map(|i| format!("j{i:013}")).collect();
        for id in &ids {
            store
                .put_record(RecordKind::Job, id, &serde_json::json!({}))
                .await
                .expect("put");
        }
        let live: HashSet<String> = ["j0000000000001".to_string()].into();
        ids.reverse();
        prune(&store, &mut ids, 2, &live).await.expect("prune");
        let left: Vec<String> = store
            .list_records(RecordKind::Job)
            .await
            .expect("list")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(left, ["j0000000000001", "j0000000000004", "j0000000000005"]);
    }

    #[test]
    fn catalog_keys_are_never_collection_ids() {
        let key = records::catalog_key("https://lund.entryscape.net/store/7/metadata/1");
        assert!(key.starts_with("catalog_") && key.len() == 24, "{key}");
        assert!(key.parse::<CollectionId>().is_err());
    }

    #[test]
    fn file_names_are_made_safe() {
        for (given, want) in [
            ("parkering.geojson", Some("parkering.geojson")),
            ("../../etc/passwd.csv", Some("passwd.csv")),
            ("C:\\Users\\x\\badplatser.zip", Some("badplatser.zip")),
            (".hidden.csv", Some("hidden.csv")),
            ("bad plats;rm -rf.csv", Some("bad_plats_rm_-rf.csv")),
            ("Malmö.gpkg", Some("Malm_.gpkg")),
            ("noextension", None),
            ("", None),
            ("...", None),
        ] {
            assert_eq!(safe_file_name(given).as_deref(), want, "{given}");
        }
        let long = format!("{}.geojson", "a".repeat(300));
        let safe = safe_file_name(&long).expect("long name");
        assert!(safe.len() <= 100 && safe.ends_with(".geojson"), "{safe}");
    }
}
