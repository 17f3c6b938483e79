//! The command line: `hamn serve | ingest | collections | migrate`. Parses arguments, sets up
//! logging and the runtime, and reports errors as one clear line with a non-zero exit.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::catalog::CollectionId;
use crate::config::{Config, GlobalArgs, StoreConfig};
use crate::ingest::{self, reader::ReadOptions, IngestOptions, MetaOptions};
use crate::store::postgis::PostgisStore;
use crate::store::IngestMode;

#[derive(Debug, Parser)]
#[command(
    name = "hamn",
    version,
    about = "Open geodata API server: ingest municipal datasets, serve OGC API Features"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server. With --demo-data DIR and an empty store, loads the demo data first.
    Serve(Box<ServeArgs>),
    /// Load a dataset (any vector format GDAL reads) into a collection, atomically.
    Ingest(Box<IngestArgs>),
    /// List, show or delete collections.
    Collections {
        #[command(subcommand)]
        action: CollectionsAction,
    },
    /// Apply pending database migrations (also done at start-up). Safe to run twice.
    Migrate,
    /// The themes hamn ships (shared schemas for data from many publishers): list, or show one.
    Themes {
        #[command(subcommand)]
        action: ThemesAction,
    },
    /// Tokens for the admin API: create (printed once), list, revoke.
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum ThemesAction {
    /// One line per theme: id, version, title, conformsTo.
    List,
    /// A theme's attributes: name, type, required, code list, description.
    Show { id: String },
}

/// What a new token may do: exactly one of these.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArgs {
    /// Everything under /admin: collections, uploads, sources, catalogs, all jobs.
    #[arg(long)]
    admin: bool,
    /// Only upload to, set the source and metadata of these collections (comma-separated).
    #[arg(long, value_delimiter = ',')]
    collections: Vec<CollectionId>,
    /// A key for the read API (see serve --read-keys), with a quota (--per-minute).
    #[arg(long)]
    read_key: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokensAction {
    /// Make a token and print it (once: only a salted hash is kept).
    Create {
        /// What the token is for, e.g. "Lund GIS, nightly export".
        #[arg(long)]
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// With --read-key: requests a minute it may make (a burst of as many, refilled evenly).
        #[arg(long, default_value_t = 600)]
        per_minute: u32,
        /// With --collections naming theme collections: only this publisher's part of them (a
        /// municipality code such as 1281, or an organisation number), uploaded or removed
        /// over /admin/themes/{theme}/sources/{org}; nothing else of those collections.
        #[arg(long)]
        source_org: Option<crate::theme::SourceOrg>,
    },
    /// One line per token: id, scope, created, revoked, name. Never the token itself.
    List,
    /// Revoke a token by its id (the 12 hex digits after `hamn_`); it stops working at once.
    Revoke { id: String },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "HAMN_BIND")]
    pub bind: Option<String>,
    /// Directory with demo.toml (the repository's `data`), loaded into the store if it is empty.
    /// Without it no demo data is loaded.
    #[arg(long, env = "HAMN_DEMO_DATA")]
    pub demo_data: Option<PathBuf>,
    /// Do not load demo data, even into an empty store.
    #[arg(long)]
    pub no_demo: bool,
    /// Largest collection (in features) served from memory. On PostGIS, larger ones are served
    /// from their tables by the PostGIS engine (0: every collection); on the embedded store they
    /// are refused with a log line.
    #[arg(long, env = "HAMN_MAX_FEATURES", default_value_t = 5_000_000)]
    pub max_features: u64,
    /// Memory the in-memory snapshots may take together, e.g. `8G`, `512M` (bytes, or K, M, G,
    /// T with an optional `iB`/`B`, powers of 1024). Collections are taken into memory
    /// smallest first while an estimate of each (from its table's size) fits; the rest are
    /// served by the PostGIS engine. Needs a PostGIS store. Versions held for cursors
    /// (--cursor-grace-seconds) and the tile cache come on top. [default: no budget]
    #[arg(long, env = "HAMN_MEMORY_BUDGET", value_parser = parse_bytes)]
    pub memory_budget: Option<u64>,
    /// A streaming replica of the database (repeatable, or comma-separated): the PostGIS
    /// engine's reads go to the replicas in turn; ingests, the catalog and notifications stay on
    /// the primary. A read of a version the replica has not replayed yet goes to the primary.
    #[arg(
        long = "database-replica-url",
        env = "HAMN_DATABASE_REPLICA_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub database_replica_urls: Vec<String>,
    /// PostGIS engine: longest one query may run before PostgreSQL cancels it (the client gets 503).
    #[arg(long, env = "HAMN_STATEMENT_TIMEOUT_SECONDS", default_value_t = 30)]
    pub statement_timeout_seconds: u64,
    /// PostGIS engine: `numberMatched` is counted up to this many features and left out above.
    #[arg(long, env = "HAMN_COUNT_LIMIT", default_value_t = 100_000)]
    pub count_limit: usize,
    /// Largest page of items; a larger `limit` is clamped to it.
    #[arg(long, env = "HAMN_MAX_LIMIT", default_value_t = 10_000)]
    pub max_limit: usize,
    /// Seconds between checks of the store for new collection versions (PostGIS also notifies at once).
    #[arg(long, env = "HAMN_REFRESH_SECONDS", default_value_t = 5)]
    pub refresh_seconds: u64,
    /// Memory for encoded vector tiles, in MiB (0: no tile cache).
    #[arg(long, env = "HAMN_TILE_CACHE_MB", default_value_t = 256)]
    pub tile_cache_mb: u64,
    /// Most features in one layer of one tile; a denser tile shows a sample fixed per feature
    /// (a hash of it), so a feature kept in one tile is kept in its neighbours too.
    #[arg(long, env = "HAMN_TILE_MAX_FEATURES", default_value_t = 10_000)]
    pub tile_max_features: usize,
    /// Log every request (one line each, target `access`). Costs some throughput under load.
    #[arg(long, env = "HAMN_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,
    /// Seconds a replaced collection version stays held for paging cursors walking it (memory
    /// for both versions meanwhile); after that its cursors get 410.
    #[arg(long, env = "HAMN_CURSOR_GRACE_SECONDS", default_value_t = 900)]
    pub cursor_grace_seconds: u64,
    /// `/ready` answers 503 when the store's catalog could not be read for this many seconds
    /// (0: never on that alone; hamn keeps serving from memory while the store is away).
    #[arg(long, env = "HAMN_READY_MAX_REFRESH_AGE", default_value_t = 0)]
    pub ready_max_refresh_age: u64,
    /// Heavy requests (filters or sorts over many features, counting large boxes, uncached
    /// tiles over many features) running at once, off the HTTP workers [default: cores].
    #[arg(long, env = "HAMN_HEAVY_CONCURRENCY")]
    pub heavy_concurrency: Option<usize>,
    /// Heavy requests waiting for a turn; one more gets 503 with Retry-After [default: 4 × cores].
    #[arg(long, env = "HAMN_HEAVY_QUEUE")]
    pub heavy_queue: Option<usize>,
    /// A request that must look at more features than this is heavy.
    #[arg(long, env = "HAMN_HEAVY_THRESHOLD", default_value_t = 50_000)]
    pub heavy_threshold: usize,
    /// Longest a heavy request may take (waiting included); past it, it stops and gets 503.
    #[arg(long, env = "HAMN_REQUEST_DEADLINE_SECONDS", default_value_t = 30)]
    pub request_deadline_seconds: u64,
    /// Order of text for sortby and <, >, BETWEEN in filters: a BCP 47 locale (sv, en, und
    /// for CLDR's root order …) or `bytes` (UTF-8 byte order). Equality stays exact.
    #[arg(long, env = "HAMN_COLLATION", default_value = crate::collation::DEFAULT)]
    pub collation: crate::collation::Collation,
    /// Worker threads for HTTP [default: one per core].
    #[arg(long, env = "HAMN_WORKERS")]
    pub workers: Option<usize>,
    /// The URL clients reach this server at (https://geodata.example.se or with a path prefix):
    /// the base of every link. Without it, links use the request's Host header.
    #[arg(long, env = "HAMN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Addresses or networks of reverse proxies whose X-Forwarded-Proto/-Host and Forwarded
    /// headers are believed (comma-separated: 127.0.0.1,10.0.0.0/8). Others' are ignored.
    #[arg(long, env = "HAMN_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// API keys for the read API: off (open to all), optional (a key's quota applies to
    /// requests that show one), required (401 without a valid key). Keys: `hamn tokens create
    /// --read-key --per-minute N`.
    #[arg(long, env = "HAMN_READ_KEYS", value_enum, default_value = "off")]
    pub read_keys: crate::api::keys::KeyMode,
    /// Serve no admin API (/admin): publishing only through `hamn ingest`.
    #[arg(long, env = "HAMN_NO_ADMIN")]
    pub no_admin: bool,
    /// Ingest jobs (uploads, refreshes, harvests) running at once; more wait in a queue.
    #[arg(long, env = "HAMN_JOBS", default_value_t = 2)]
    pub jobs: usize,
    /// Largest upload, in MiB.
    #[arg(long, env = "HAMN_MAX_UPLOAD_MB", default_value_t = 1024)]
    pub max_upload_mb: u64,
    /// Where uploads and downloads wait for their ingest; emptied at start-up [default: `spool`
    /// in the embedded store's directory, else a new temporary directory].
    #[arg(long, env = "HAMN_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Hosts source URLs and catalogs may be fetched from (comma-separated; `*.example.se`
    /// for subdomains) [default: any host on a public address].
    #[arg(long, env = "HAMN_FETCH_ALLOW_HOSTS", value_delimiter = ',')]
    pub fetch_allow_hosts: Vec<String>,
    /// Non-public networks that may be fetched from anyway (comma-separated CIDR, e.g. a
    /// municipal intranet 10.20.0.0/16). Loopback, private and link-local are refused otherwise.
    #[arg(long, env = "HAMN_FETCH_ALLOW_NETWORKS", value_delimiter = ',')]
    pub fetch_allow_networks: Vec<ipnet::IpNet>,
    /// Largest file fetched from a source URL, in MiB.
    #[arg(long, env = "HAMN_FETCH_MAX_MB", default_value_t = 1024)]
    pub fetch_max_mb: u64,
    /// Longest a fetch may take, in seconds (connecting, waiting and downloading).
    #[arg(long, env = "HAMN_FETCH_TIMEOUT_SECONDS", default_value_t = 600)]
    pub fetch_timeout_seconds: u64,
    /// Shortest refresh interval a source or catalog may ask for, in seconds.
    #[arg(long, env = "HAMN_MIN_REFRESH_SECONDS", default_value_t = 60)]
    pub min_refresh_seconds: u64,
    /// How often the scheduler looks for sources that are due, in seconds.
    #[arg(long, env = "HAMN_SCHEDULE_SECONDS", default_value_t = 5)]
    pub schedule_seconds: u64,
    /// A MapLibre style (an http or https URL of its style.json) the maps draw under the
    /// collections instead of the offline background of land and borders. Browsers fetch it and
    /// whatever it names (tiles, fonts) themselves, so it suits deployments with internet.
    #[arg(long, env = "HAMN_BASEMAP_STYLE")]
    pub basemap_style: Option<String>,
    /// Seconds browsers and CDNs may keep a document (landing page, collections, items …)
    /// without asking again; 0: they revalidate each time with the ETag (a 304 when unchanged).
    #[arg(long, env = "HAMN_CACHE_MAX_AGE", default_value_t = 0)]
    pub cache_max_age: u32,
    /// The same for a tile requested without its current version (`v=`, which the TileJSON's
    /// tile URLs carry and which makes a tile immutable).
    #[arg(long, env = "HAMN_TILE_MAX_AGE", default_value_t = 0)]
    pub tile_max_age: u32,
    /// Where the bulk downloads (each collection's FlatGeobuf and GeoPackage file, built once
    /// per version) are kept [default: `downloads` in the embedded store's directory; with
    /// PostGIS a temporary directory of the process]. One directory per instance.
    #[arg(long, env = "HAMN_DOWNLOAD_DIR")]
    pub download_dir: Option<std::path::PathBuf>,
    /// The DCAT-AP-SE catalog at /datasets/dcat.
    #[command(flatten)]
    pub dcat: crate::config::DcatArgs,
}

/// `--mode` as clap reads it: the store's [`IngestMode`] stays free of the command-line library.
/// The variants' comments are the help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Make a new collection; fail if the id is taken.
    Create,
    /// Replace the collection's features and schema whole.
    Replace,
    /// Add features to the collection (new attributes are added; types must agree).
    Append,
}

impl From<ModeArg> for IngestMode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Create => IngestMode::Create,
            ModeArg::Replace => IngestMode::Replace,
            ModeArg::Append => IngestMode::Append,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// The file to load: GeoJSON, Shapefile (.shp or .zip), GeoPackage, CSV, GML, KML, FlatGeobuf …
    pub file: String,
    /// Collection id (a-z, 0-9, '-') [default: made from the file name].
    #[arg(long, short = 'c')]
    pub collection: Option<CollectionId>,
    /// Layer to load from a multi-layer source [default: every layer, one collection each].
    #[arg(long)]
    pub layer: Option<String>,
    /// create: fail if the collection exists; replace: swap in the new data whole; append: add to it.
    /// (Not with --theme: a theme ingest always replaces the one source's part.)
    #[arg(long, value_enum, default_value = "create", conflicts_with_all = ["theme", "mapping"])]
    pub mode: ModeArg,
    /// Ingest even when the file is unchanged (same SHA-256) since the last ingest.
    #[arg(long)]
    pub force: bool,
    /// CRS of the source when it names none (or to override it), e.g. EPSG:3008.
    #[arg(long)]
    pub source_crs: Option<String>,
    /// Attribute whose values become feature ids (text or integer, unique) [default: the source's FID].
    #[arg(long)]
    pub id_field: Option<String>,
    /// Date/time attribute for the temporal extent [default: the only one, if there is exactly one].
    #[arg(long)]
    pub datetime_field: Option<String>,
    /// CSV: column with X/easting/longitude [default: found by name: x, lon, longitude, E, easting, öst …].
    #[arg(long)]
    pub x_field: Option<String>,
    /// CSV: column with Y/northing/latitude [default: found by name: y, lat, latitude, N, northing, nord …].
    #[arg(long)]
    pub y_field: Option<String>,
    /// CSV: column with WKT geometry [default: found by name: wkt, geom, geometry].
    #[arg(long)]
    pub wkt_field: Option<String>,
    /// Text encoding of a Shapefile without .cpg, or of a CSV (e.g. ISO-8859-1, windows-1252).
    #[arg(long)]
    pub encoding: Option<String>,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Who publishes the data, e.g. "Malmö stad".
    #[arg(long)]
    pub publisher: Option<String>,
    /// Licence, preferably an SPDX id such as CC0-1.0 or CC-BY-4.0.
    #[arg(long)]
    pub licence: Option<String>,
    /// A free category for search and the catalog, e.g. parking, noise, traffic, bathing.
    #[arg(long)]
    pub category: Option<String>,
    /// The language title, description and keywords are written in: sv, en, fi, nb, da, de
    /// [default: the catalog's, --dcat-language].
    #[arg(long)]
    pub language: Option<String>,
    /// Map the file into this theme's shared collection (`hamn themes` lists them), as the
    /// part of the publisher given by --source-org; that publisher's earlier part is replaced
    /// whole, other publishers' parts stay.
    #[arg(long)]
    pub theme: Option<String>,
    /// With --theme: who published the file, as a municipality code (1281) or an
    /// organisation number (212000-1124); stored as `source` on every feature.
    #[arg(long)]
    pub source_org: Option<String>,
    /// With --theme: source columns to theme attributes, "namn=name,beskr=description"
    /// (columns named as the theme's attributes need no mapping).
    #[arg(long)]
    pub map: Option<String>,
    /// With --theme: a TOML file with theme, source, id_field, strict, [map] and [codes.<attribute>]
    /// (the options given here override it).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// With --theme: reject features that do not fit the theme (missing required value, value
    /// not in the code list, wrong type) instead of keeping them with a warning.
    #[arg(long)]
    pub strict: bool,
    /// Comma-separated keywords.
    #[arg(long, value_delimiter = ',')]
    pub keywords: Vec<String>,
    /// URI of a standard the data conforms to (repeatable), e.g. a national specification
    /// such as https://dataportal.se/specifications/badplatser/1.0.
    #[arg(long)]
    pub conforms_to: Vec<String>,
    /// Lowest zoom at which the collection's vector tiles are offered [default: 0, or as before].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=24))]
    pub min_zoom: Option<u8>,
    /// Highest zoom at which the collection's vector tiles are offered [default: 22, or as before].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=24))]
    pub max_zoom: Option<u8>,
    /// Which engine serves the collection: memory (held in memory whatever its size),
    /// postgis (served from its table whatever its size; PostGIS store only) or auto
    /// (--max-features decides) [default: as before, else auto].
    #[arg(long, value_parser = ["auto", "memory", "postgis"])]
    pub engine: Option<String>,
    /// Do not draw a progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum CollectionsAction {
    /// One line per collection: id, features, version, title.
    List,
    /// The full catalog record of one collection, as JSON.
    Show { id: CollectionId },
    /// Delete a collection and its data.
    Delete { id: CollectionId },
    /// Change a collection's metadata (title, description, keywords, category, publisher,
    /// licence, conformsTo); the features stay as they are, the version changes.
    Edit(Box<EditArgs>),
    /// Remove one publisher's features from a theme collection; the others stay.
    RemoveSource {
        id: CollectionId,
        /// The municipality code or organisation number the features were ingested with.
        #[arg(long)]
        source_org: String,
    },
}

/// What `collections edit` changes: only the options given; an empty value clears a field.
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    pub id: CollectionId,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Comma-separated keywords (replace the old ones; "" clears them).
    #[arg(long)]
    pub keywords: Option<String>,
    /// A free category, e.g. parking.
    #[arg(long)]
    pub category: Option<String>,
    /// The language of title, description and keywords (sv, en …; "" for the catalog's).
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long)]
    pub publisher: Option<String>,
    #[arg(long)]
    pub licence: Option<String>,
    /// Comma-separated URIs of standards the data conforms to ("" clears them).
    #[arg(long)]
    pub conforms_to: Option<String>,
}

impl EditArgs {
    /// The metadata after the edit.
    fn apply(
        &self,
        mut meta: crate::catalog::Description,
    ) -> anyhow::Result<crate::catalog::Description> {
        let text = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_string());
        let list = |v: &Option<String>| {
            v.as_ref().map(|s| {
                s.split(',')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect::<Vec<_>>()
            })
        };
        if let Some(t) = text(&self.title) {
            if t.is_empty() {
                anyhow::bail!("--title cannot be empty: a collection needs a title");
            }
            meta.title = t;
        }
        let optional = |v: &Option<String>, old: Option<String>| match text(v) {
            Some(t) if t.is_empty() => None,
            Some(t) => Some(t),
            None => old,
        };
        meta.description = optional(&self.description, meta.description);
        meta.theme = optional(&self.category, meta.theme);
        meta.publisher = optional(&self.publisher, meta.publisher);
        meta.licence = optional(&self.licence, meta.licence);
        meta.language = match optional(&self.language, meta.language) {
            Some(l) => Some(
                crate::catalog::language_tag(&l)
                    .map_err(anyhow::Error::msg)?
                    .to_string(),
            ),
            None => None,
        };
        if let Some(k) = list(&self.keywords) {
            meta.keywords = k;
        }
        if let Some(c) = list(&self.conforms_to) {
            meta.conforms_to = c;
        }
        Ok(meta)
    }
}

impl IngestArgs {
    /// The theme ingest the options ask for, if any: the mapping file first, then the flags.
    fn theme(&self) -> anyhow::Result<Option<ingest::ThemeIngest>> {
        let mut mapping = match &self.mapping {
            Some(path) => crate::theme::Mapping::from_file(path).map_err(anyhow::Error::msg)?,
            None => crate::theme::Mapping::default(),
        };
        let theme_id = self.theme.clone().or_else(|| mapping.theme.clone());
        let Some(theme_id) = theme_id else {
            if self.source_org.is_some() || self.map.is_some() || self.strict {
                anyhow::bail!("--source-org, --map and --strict go with --theme (or a --mapping file naming a theme)");
            }
            return Ok(None);
        };
        let theme = crate::theme::find(&theme_id).map_err(anyhow::Error::msg)?;
        let source = self
            .source_org
            .clone()
            .or_else(|| mapping.source.clone())
            .ok_or_else(|| anyhow::anyhow!("--theme {theme_id}: say whose data it is with --source-org (a municipality code such as 1281, or an organisation number)"))?
            .parse()
            .map_err(anyhow::Error::msg)?;
        if let Some(pairs) = &self.map {
            for (from, to) in
                crate::theme::Mapping::parse_pairs(pairs).map_err(anyhow::Error::msg)?
            {
                mapping.map.insert(from, to);
            }
        }
        if self.id_field.is_some() {
            mapping.id_field = self.id_field.clone();
        }
        mapping.strict |= self.strict;
        Ok(Some(ingest::ThemeIngest {
            theme,
            source,
            mapping,
        }))
    }

    fn options(&self, config: &Config) -> anyhow::Result<IngestOptions> {
        Ok(IngestOptions {
            input: self.file.clone(),
            collection: self.collection.clone(),
            layer: self.layer.clone(),
            mode: self.mode.into(),
            force: self.force,
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
            meta: MetaOptions {
                title: self.title.clone(),
                description: self.description.clone(),
                keywords: self
                    .keywords
                    .iter()
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect(),
                theme: self.category.clone(),
                publisher: self.publisher.clone(),
                licence: self.licence.clone(),
                conforms_to: self.conforms_to.clone(),
                language: self
                    .language
                    .as_deref()
                    .map(crate::catalog::language_tag)
                    .transpose()
                    .map_err(anyhow::Error::msg)?
                    .map(str::to_string),
            },
            zoom: (self.min_zoom, self.max_zoom),
            engine: self
                .engine
                .as_deref()
                .map(crate::catalog::EngineChoice::parse),
            allow_gdal_paths: config.allow_gdal_paths,
            allow_any_gdal_driver: config.allow_any_gdal_driver,
            progress: !self.quiet && std::io::stderr().is_terminal(),
            watch: None,
            theme: self.theme()?,
        })
    }
}

/// Logging to stderr through a background writer thread (lines are queued, and dropped rather
/// than block a request if the queue of 128k lines is full), as text or JSON lines. The guard
/// flushes the queue when it is dropped at exit.
fn init_logging(json: bool) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HAMN_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    guard
}

pub fn main(cli: Cli) -> ExitCode {
    let _log = init_logging(cli.global.log_format == crate::config::LogFormat::Json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::resolve(&cli.global)?;
    match cli.command {
        Command::Migrate => match &config.store {
            StoreConfig::Postgis { url } => {
                let store = PostgisStore::connect(url).await?;
                // `connect` migrated already; a second call reports nothing left to do.
                let again = store.migrate().await?;
                println!(
                    "migrations up to date ({} pending applied now)",
                    again.len()
                );
            }
            StoreConfig::Embedded { dir } => {
                crate::store::embedded::EmbeddedStore::open(dir)?;
                println!("embedded store at {} needs no migrations", dir.display());
            }
        },
        Command::Ingest(args) => {
            let store = config.open_store().await?;
            let options = args.options(&config)?;
            let reports = ingest::ingest(store.as_ref(), &options).await?;
            for r in reports {
                print!("{r}");
            }
        }
        Command::Themes { action } => match action {
            ThemesAction::List => {
                for t in crate::theme::themes().values() {
                    println!(
                        "{}\t{}\t{} ({})\t{}",
                        t.id, t.version, t.title, t.title_en, t.conforms_to
                    );
                }
            }
            ThemesAction::Show { id } => {
                let t = crate::theme::find(&id).map_err(anyhow::Error::msg)?;
                println!(
                    "{} — {} ({}), version {}",
                    t.id, t.title, t.title_en, t.version
                );
                println!(
                    "conformsTo: {}\nspecification: {}",
                    t.conforms_to, t.specification
                );
                if let (Some(lat), Some(lon)) = (&t.latitude, &t.longitude) {
                    println!(
                        "geometry: {:?} (CSV columns {lat}, {lon}, WGS 84)",
                        t.geometry
                    );
                } else {
                    println!("geometry: {:?}", t.geometry);
                }
                for a in &t.attributes {
                    println!(
                        "  {}\t{:?}{}{}\t{}{}",
                        a.name,
                        a.kind,
                        a.format.map(|f| format!(" ({f:?})")).unwrap_or_default(),
                        if a.required { ", required" } else { "" },
                        a.description,
                        if a.codes.is_empty() {
                            String::new()
                        } else {
                            format!(" [codes: {}]", a.codes.join(", "))
                        }
                    );
                }
            }
        },
        Command::Collections { action } => {
            let store = config.open_store().await?;
            match action {
                CollectionsAction::List => {
                    for e in store.list().await? {
                        println!(
                            "{}\t{} features\tv{}\t{}",
                            e.id, e.feature_count, e.version, e.meta.title
                        );
                    }
                }
                CollectionsAction::Show { id } => {
                    let entry = store
                        .get(&id)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("collection '{id}' not found"))?;
                    println!("{}", serde_json::to_string_pretty(&entry)?);
                }
                CollectionsAction::Delete { id } => {
                    store.delete(&id).await?;
                    println!("deleted {id}");
                }
                CollectionsAction::RemoveSource { id, source_org } => {
                    let org: crate::theme::SourceOrg =
                        source_org.parse().map_err(anyhow::Error::msg)?;
                    let (entry, removed) = ingest::remove_source(store.as_ref(), &id, &org).await?;
                    println!(
                        "{}: removed {removed} features of source {org}, version {} ({} features in the collection)",
                        entry.id, entry.version, entry.feature_count
                    );
                }
                CollectionsAction::Edit(edit) => {
                    let entry = store
                        .get(&edit.id)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("collection '{}' not found", edit.id))?;
                    let meta = edit.apply(entry.meta)?;
                    let entry =
                        crate::changes::describe(store.as_ref(), &edit.id, meta, entry.engine)
                            .await?;
                    println!("{}: metadata changed, version {}", entry.id, entry.version);
                }
            }
        }
        Command::Serve(args) => serve(config, *args, cli.global.log_format).await?,
        Command::Tokens { action } => {
            let store: Arc<dyn crate::store::Store> = Arc::from(config.open_store().await?);
            let tokens = crate::auth::Tokens::new(store);
            match action {
                TokensAction::Create {
                    name,
                    scope,
                    per_minute,
                    source_org,
                } => {
                    if source_org.is_some() && scope.collections.is_empty() {
                        anyhow::bail!("--source-org goes with --collections (the theme collections whose part the token may change)");
                    }
                    let scope = if scope.admin {
                        crate::auth::Scope::Admin
                    } else if scope.read_key {
                        crate::auth::Scope::Read {
                            per_minute: per_minute.max(1),
                        }
                    } else {
                        if source_org.is_some() {
                            if let Some(other) = scope
                                .collections
                                .iter()
                                .find(|c| !crate::theme::themes().contains_key(c.as_str()))
                            {
                                anyhow::bail!(
                                    "--source-org limits a token to one publisher's part of theme collections, and {other} is not one (themes: {})",
                                    crate::theme::themes().keys().cloned().collect::<Vec<_>>().join(", ")
                                );
                            }
                        }
                        crate::auth::Scope::Write(crate::auth::WriteScope {
                            collections: scope.collections.into_iter().collect(),
                            source_org,
                        })
                    };
                    let (text, record) = tokens.create(&name, scope).await?;
                    eprintln!(
                        "token {} ({}) made; it is shown this once, keep it secret:",
                        record.id, record.scope
                    );
                    println!("{text}");
                }
                TokensAction::List => {
                    for t in tokens.list().await? {
                        println!(
                            "{}\t{}\tcreated {}\t{}\t{}",
                            t.id,
                            t.scope,
                            t.created.format("%Y-%m-%d %H:%M"),
                            t.revoked
                                .map(|r| format!("revoked {}", r.format("%Y-%m-%d %H:%M")))
                                .unwrap_or_else(|| "active".into()),
                            t.name
                        );
                    }
                }
                TokensAction::Revoke { id } => {
                    if tokens.revoke(&id).await? {
                        println!("revoked {id}");
                    } else {
                        anyhow::bail!("no token {id:?} (see `hamn tokens list`)");
                    }
                }
            }
        }
    }
    Ok(())
}

async fn serve(
    config: Config,
    args: ServeArgs,
    log_format: crate::config::LogFormat,
) -> anyhow::Result<()> {
    let origin =
        crate::api::origin::Origin::new(args.public_url.as_deref(), &args.trusted_proxies)?;
    let dcat =
        crate::api::dcat::CatalogSettings::new(args.dcat.clone().or(config.file.dcat.clone()))
            .map_err(|e| anyhow::anyhow!("DCAT catalog settings: {e}"))?;
    let missing = dcat.missing();
    if !missing.is_empty() {
        tracing::warn!(
            missing = %missing.join(", "),
            "the DCAT-AP-SE catalog at /datasets/dcat is incomplete (its description says so): dataportal.se needs these settings"
        );
    }
    let basemap_style = crate::api::map::basemap_style(
        args.basemap_style
            .clone()
            .or(config.file.basemap_style.clone()),
    )?;
    let embedded = matches!(config.store, StoreConfig::Embedded { .. });
    if embedded && args.memory_budget.is_some() {
        anyhow::bail!(
            "--memory-budget needs a PostGIS store (--database-url): the embedded store has no \
             SQL engine to serve the collections that do not fit in memory"
        );
    }
    let store: Arc<dyn crate::store::Store> = Arc::from(config.open_store().await?);
    // Demo data only when asked for (scripts/run.sh asks): a production store, embedded or
    // PostGIS, never gets it by surprise, not even when it is empty.
    let asked = args.demo_data.clone().or(config.file.demo_data.clone());
    if let (Some(demo_dir), false) = (asked, args.no_demo) {
        if store.list().await?.is_empty() {
            if demo_dir.join("demo.toml").exists() {
                tracing::info!(dir = %demo_dir.display(), "empty store: loading demo data");
                crate::demo::load(store.as_ref(), &demo_dir).await?;
            } else {
                tracing::warn!(dir = %demo_dir.display(), "empty store and no demo.toml: serving nothing");
            }
        }
    }
    let admin = if args.no_admin {
        None
    } else {
        let spool_dir = match (&args.spool_dir, &config.store) {
            (Some(d), _) => d.clone(),
            (None, StoreConfig::Embedded { dir }) => dir.join("spool"),
            (None, StoreConfig::Postgis { .. }) => {
                // Jobs remove their files when they end; an empty directory may outlive a
                // killed process.
                let dir = tempfile::Builder::new().prefix("hamn-spool-").tempdir()?;
                dir.keep()
            }
        };
        let publisher = crate::publish::Publisher::start(
            store.clone(),
            crate::publish::PublishOptions {
                concurrency: args.jobs.max(1),
                spool_dir,
                max_upload_bytes: args.max_upload_mb.saturating_mul(1 << 20),
                fetch: crate::publish::fetch::FetchPolicy {
                    allowed_hosts: args.fetch_allow_hosts.clone(),
                    allowed_networks: args.fetch_allow_networks.clone(),
                    max_bytes: args.fetch_max_mb.saturating_mul(1 << 20),
                    timeout: std::time::Duration::from_secs(args.fetch_timeout_seconds.max(1)),
                    ..Default::default()
                },
                min_interval: std::time::Duration::from_secs(args.min_refresh_seconds.max(1)),
                tick: std::time::Duration::from_secs(args.schedule_seconds.max(1)),
                allow_any_gdal_driver: config.allow_any_gdal_driver,
                ..Default::default()
            },
        )
        .await?;
        Some(crate::api::admin::Admin {
            publisher,
            tokens: Arc::new(crate::auth::Tokens::new(store.clone())),
        })
    };
    let read_keys = (args.read_keys != crate::api::keys::KeyMode::Off).then(|| {
        Arc::new(crate::api::keys::ReadKeys::new(
            args.read_keys,
            Arc::new(crate::auth::Tokens::new(store.clone())),
        ))
    });
    let bind = args
        .bind
        .or(config.file.bind.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    tracing::info!(collation = args.collation.name(), "text order");
    let engine = crate::engine::Engine::start(
        store,
        crate::engine::EngineOptions {
            max_features: args.max_features,
            memory_budget: args.memory_budget,
            postgis: crate::engine::postgis::PostgisOptions {
                statement_timeout: std::time::Duration::from_secs(
                    args.statement_timeout_seconds.max(1),
                ),
                count_limit: args.count_limit,
                ..Default::default()
            },
            replica_urls: args.database_replica_urls.clone(),
            cursor_grace: std::time::Duration::from_secs(args.cursor_grace_seconds),
            ..Default::default()
        },
        args.collation.clone(),
    )
    .await?;
    engine.watch(std::time::Duration::from_secs(args.refresh_seconds.max(1)));
    // Beside the embedded store's data (removed with it, reused after a restart); for PostGIS
    // a temporary directory of the process unless --download-dir names one.
    let download_dir = match (&args.download_dir, &config.store) {
        (Some(d), _) => Some(d.clone()),
        (None, StoreConfig::Embedded { dir }) => Some(dir.join("downloads")),
        (None, StoreConfig::Postgis { .. }) => None,
    };
    let downloads = Arc::new(
        crate::download::Downloads::new(download_dir.as_deref()).map_err(|e| {
            anyhow::anyhow!(
                "cannot use the download directory {}: {e}",
                download_dir
                    .as_deref()
                    .map_or_else(|| "(temporary)".into(), |d| d.display().to_string())
            )
        })?,
    );
    downloads.watch(engine.clone());
    let limits = crate::api::Limits {
        default_limit: 10,
        max_limit: args.max_limit.max(1),
    };
    let metrics = Arc::new(crate::api::metrics::Metrics::default());
    let state = actix_web::web::Data::new(crate::api::AppState {
        engine,
        limits,
        tiles: crate::tiles::TileCache::new(args.tile_cache_mb.saturating_mul(1 << 20)),
        tile_options: crate::tiles::TileOptions {
            max_features: args.tile_max_features.max(1),
            ..Default::default()
        },
        origin,
        metrics: metrics.clone(),
        heavy: Arc::new(crate::api::heavy::HeavyPool::new({
            let d = crate::api::heavy::HeavyOptions::default();
            crate::api::heavy::HeavyOptions {
                concurrent: args.heavy_concurrency.unwrap_or(d.concurrent),
                queue: args.heavy_queue.unwrap_or(d.queue),
                deadline: std::time::Duration::from_secs(args.request_deadline_seconds.max(1)),
                threshold: args.heavy_threshold,
            }
        })),
        ready_max_age: (args.ready_max_refresh_age > 0)
            .then(|| std::time::Duration::from_secs(args.ready_max_refresh_age)),
        admin,
        read_keys,
        dcat: Arc::new(dcat),
        basemap_style,
        cache: crate::api::cache::CachePolicy {
            max_age: args.cache_max_age,
            tile_max_age: args.tile_max_age,
        },
        downloads,
    });
    // The access log follows HAMN_LOG like every other line (target `access`, level info).
    let access_log = if args.access_log && tracing::enabled!(target: "access", tracing::Level::INFO)
    {
        Some(Arc::new(crate::api::access_log::AccessLog::start(
            log_format == crate::config::LogFormat::Json,
        )?))
    } else {
        None
    };
    let mut server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            // Inside CORS, so a browser sees a refusal (401, 429) with CORS headers.
            .wrap(actix_web::middleware::from_fn(crate::api::keys::check))
            .wrap(
                actix_cors::Cors::default()
                    .allow_any_origin()
                    .allowed_methods(["GET", "HEAD", "OPTIONS"])
                    .allow_any_header()
                    .expose_any_header()
                    .max_age(3600),
            )
            .wrap(actix_web::middleware::Compress::default())
            // Outermost: it times the whole request.
            .wrap(crate::api::metrics::Measure {
                metrics: metrics.clone(),
                access_log: access_log.clone(),
            })
            .configure(crate::api::configure)
    })
    .shutdown_timeout(10)
    // Compressed bodies leave in several writes; without TCP_NODELAY the last one waits for
    // the client's delayed ACK (about 40 ms a response on kept-alive connections).
    .tcp_nodelay(true);
    if let Some(w) = args.workers {
        server = server.workers(w.max(1));
    }
    let server = server
        .bind(&bind)
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    tracing::info!(%bind, store = if embedded { "embedded" } else { "postgis" }, "hamn listening on http://{bind}/");
    server.run().await?;
    Ok(())
}

/// `--memory-budget`'s sizes: bytes, or a number with K, M, G or T (powers of 1024).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 8G, 512M or 1073741824"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        other => return Err(format!("unknown size unit {other:?} (use K, M, G or T)")),
    };
    let bytes = number * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod size_tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_bytes("8G"), Ok(8 << 30));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5k"), Ok(1536));
        assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
        for bad in ["", "G", "8X", "-1G", "0", "1e3M", "99999999999T"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
