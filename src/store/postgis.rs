//! The PostGIS store: catalog in `hamn.collections`, one table per collection version in
//! schema `hamn_data`, migrations from `migrations/`.
//!
//! Atomicity comes from PostgreSQL's transactional DDL: an ingest creates its new table, loads
//! it with binary COPY, indexes it, points the catalog row at it and drops the old table — all
//! in one transaction. A failed or killed ingest rolls back whole (the new table included), so
//! there is nothing to clean up and readers never see a half-loaded collection.
//!
//! Commits `NOTIFY hamn_catalog`; `watch` listens for it on a connection of its own, so every
//! instance on the database refreshes at once.

use std::pin::Pin;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use super::value::Ewkb;
use super::{
    Described, IngestMode, IngestPlan, IngestSink, RecordKind, Result, Row, Store, StoreError,
    StoredFeature, Value,
};
use crate::catalog::{
    AttrType, Attribute, Bbox, CatalogEntry, CollectionId, Description, IdKinds, SourceInfo,
};

/// The migrations, in order. Plain SQL files; each runs once, in its own transaction.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_catalog",
        include_str!("../../migrations/0001_catalog.sql"),
    ),
    ("0002_zoom", include_str!("../../migrations/0002_zoom.sql")),
    (
        "0003_records",
        include_str!("../../migrations/0003_records.sql"),
    ),
    (
        "0004_language",
        include_str!("../../migrations/0004_language.sql"),
    ),
    (
        "0005_changes",
        include_str!("../../migrations/0005_changes.sql"),
    ),
    (
        "0006_cql2_arithmetic",
        include_str!("../../migrations/0006_cql2_arithmetic.sql"),
    ),
    (
        "0007_engine",
        include_str!("../../migrations/0007_engine.sql"),
    ),
    (
        "0008_table_ids",
        include_str!("../../migrations/0008_table_ids.sql"),
    ),
];

/// Key of the advisory lock that serialises migrations between processes.
const MIGRATION_LOCK: i64 = 0x6861_6d6e_0001;

/// Channel on which committed ingests are announced (`<id>:<version>`), so other server
/// instances can reload.
pub const NOTIFY_CHANNEL: &str = "hamn_catalog";

pub struct PostgisStore {
    pool: Pool,
    /// For the LISTEN connection of `watch`, which must be a session of its own (a pooled
    /// connection goes back to the pool between uses).
    url: std::sync::Arc<str>,
}

/// Runs a transaction on a task of its own. A request's future can be dropped at any await
/// (the client went away); a transaction begun with BEGIN and dropped there would go back to
/// the pool still open, holding its locks. Spawned, it runs to COMMIT or ROLLBACK whatever the
/// caller does.
async fn spawned<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(work)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

fn pool_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Pool(e.to_string())
}

/// Quotes an SQL identifier. Identifiers hamn uses are already restricted (collection ids and
/// sanitised column names), so this is defence in depth, not the only guard.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A data table's name, schema included, quoted.
pub fn table_ref(table: &str) -> String {
    format!("hamn_data.{}", quote_ident(table))
}

/// Each row's thinning priority (`tiles::mvt::priority` of its fid), stored as a generated
/// column, so that a tile with far more candidates than it may show can read them one range of
/// priority at a time, each range with a partial spatial index of its own: it stops after the
/// ranges that hold enough, instead of reading every candidate to sort them (the ranges and
/// their indexes: [`priority_level`], [`level_index`]).
pub const PRIORITY_COLUMN: &str = "hamn_prio";

/// How many equal ranges of priority ("levels") a data table has a partial index for.
/// Sixteen: a tile with 1.7 times the candidates it may show reads ten sixteenths of them;
/// more levels cut closer, but each is an index scan and a plan of its own.
pub const PRIORITY_LEVELS: usize = 16;

/// The priorities `[lo, hi)` of level `j` (priorities are 31-bit, `0..2^31`).
pub fn priority_level(j: usize) -> (i64, i64) {
    let width = (1_i64 << 31) / PRIORITY_LEVELS as i64;
    let j = j as i64;
    (j * width, (j + 1) * width)
}

/// The (unquoted) name of level `j`'s partial index on `table`.
pub fn level_index(table: &str, j: usize) -> String {
    format!("{table}_p{j}")
}

impl PostgisStore {
    /// Connects (lazily, through a pool) and runs pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let (config, tls) = super::tls::connector(url)?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Waiting for a free connection is bounded too: past it, the caller gets an error
        // (a 5xx or a failed refresh, retried) rather than a request that never ends.
        let pool = Pool::builder(manager)
            .max_size(16)
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(15)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(pool_err)?;
        let store = Self {
            pool,
            url: url.into(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A pool for the PostGIS engine's reads, of its own so that a burst of heavy reads cannot
    /// take the connections that ingests and the catalog need, and with a per-statement time
    /// limit: PostgreSQL itself cancels a query that runs past it.
    /// `url` names a replica; `None` is this store's database.
    pub fn read_pool(
        &self,
        url: Option<&str>,
        statement_timeout: std::time::Duration,
        size: usize,
    ) -> Result<Pool> {
        let (mut config, tls) = super::tls::connector(url.unwrap_or(&self.url))?;
        // Named, so an operator (and the replica test) can see where the reads go.
        config.application_name("hamn-read");
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Set on each new connection rather than as the startup parameter `options`, which
        // PgBouncer refuses ("unsupported startup parameter: options"): this way the engine
        // works through PgBouncer in session pooling too.
        // JIT and parallel query are for long analytical statements; the engine's are short
        // and many run at once. Planned with its values (a prepared statement's first five
        // runs, and every run of a tile's statement, whose generic plan PostgreSQL estimates
        // far costlier and never picks), a dense tile of 10M points cost enough for JIT, which
        // then took 52 ms of a 165 ms query, and eight such queries at once ran at half the
        // rate with parallel workers, the cores being busy anyway.
        let setup = format!(
            "SET statement_timeout = {}; SET default_transaction_read_only = on; \
             SET jit = off; SET max_parallel_workers_per_gather = 0",
            statement_timeout.as_millis().max(1)
        );
        Pool::builder(manager)
            .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
                let setup = setup.clone();
                Box::pin(async move {
                    client
                        .batch_execute(&setup)
                        .await
                        .map_err(deadpool_postgres::HookError::Backend)
                })
            }))
            .max_size(size.max(1))
            .wait_timeout(Some(statement_timeout))
            .create_timeout(Some(std::time::Duration::from_secs(15)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(pool_err)
    }

    /// Another handle on the same pool, for work that must finish on its own.
    fn detached(&self) -> PostgisStore {
        PostgisStore {
            pool: self.pool.clone(),
            url: self.url.clone(),
        }
    }

    /// The delete, in one transaction (run detached: see `spawned`).
    async fn delete_txn(&self, id: &CollectionId) -> Result<()> {
        let client = self.client().await?;
        client.batch_execute("BEGIN").await?;
        let deleted = async {
            lock_collection(&client, id).await?;
            let table: Option<String> = client
                .query_opt(
                    "DELETE FROM hamn.collections WHERE id = $1 RETURNING data_table",
                    &[&id.as_str()],
                )
                .await?
                .map(|r| r.get(0));
            let Some(table) = table else {
                return Err(StoreError::NotFound(id.clone()));
            };
            drop_data_table(&client, &table).await?;
            client
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&NOTIFY_CHANNEL, &format!("{id}:deleted")],
                )
                .await?;
            client.batch_execute("COMMIT").await?;
            Ok(())
        };
        let result = deleted.await;
        if result.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        result
    }

    /// The metadata change, in one transaction (run detached: see `spawned`).
    async fn set_description_txn(
        &self,
        id: &CollectionId,
        meta: Description,
        engine: Option<crate::catalog::EngineChoice>,
    ) -> Result<Described> {
        let client = self.client().await?;
        client.batch_execute("BEGIN").await?;
        let updated = async {
            lock_collection(&client, id).await?;
            // Under the collection's lock no ingest commits: this is the version replaced.
            let previous_version: i64 = client
                .query_opt(
                    "SELECT version FROM hamn.collections WHERE id = $1",
                    &[&id.as_str()],
                )
                .await?
                .map(|r| r.get(0))
                .ok_or_else(|| StoreError::NotFound(id.clone()))?;
            let n = client
                .execute(
                    "UPDATE hamn.collections SET title = $2, description = $3, keywords = $4, \
                     theme = $5, publisher = $6, licence = $7, conforms_to = $8, language = $9, \
                     engine = $10, version = nextval('hamn.version_seq'), updated = now() \
                     WHERE id = $1",
                    &[
                        &id.as_str(),
                        &meta.title,
                        &meta.description,
                        &meta.keywords,
                        &meta.theme,
                        &meta.publisher,
                        &meta.licence,
                        &meta.conforms_to,
                        &meta.language,
                        &engine.map(|e| e.as_str()),
                    ],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(id.clone()));
            }
            let (entry, _) = current(&client, id, false)
                .await?
                .ok_or_else(|| StoreError::NotFound(id.clone()))?;
            client
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&NOTIFY_CHANNEL, &format!("{id}:{}", entry.version)],
                )
                .await?;
            client.batch_execute("COMMIT").await?;
            Ok(Described {
                previous_version,
                entry,
            })
        };
        let result = updated.await;
        if result.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        result
    }

    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
            other => pool_err(other),
        })
    }

    /// Applies migrations not yet applied. Safe to run twice and from several processes at
    /// once: a session advisory lock serialises them, and each migration is recorded in the
    /// same transaction that applies it.
    pub async fn migrate(&self) -> Result<Vec<&'static str>> {
        let client = self.client().await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let result = apply_migrations(&client).await;
        // Unlock even when a migration failed; the session lock would otherwise live on in the pool.
        let unlock = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        let applied = result?;
        unlock?;
        Ok(applied)
    }
}

async fn apply_migrations(client: &Object) -> Result<Vec<&'static str>> {
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS hamn;
             CREATE TABLE IF NOT EXISTS hamn.schema_migrations (
                 name text PRIMARY KEY,
                 applied timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let done: Vec<String> = client
        .query("SELECT name FROM hamn.schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for (name, sql) in MIGRATIONS {
        if done.iter().any(|d| d == name) {
            continue;
        }
        let run = async {
            client.batch_execute("BEGIN").await?;
            client.batch_execute(sql).await?;
            client
                .execute(
                    "INSERT INTO hamn.schema_migrations (name) VALUES ($1)",
                    &[name],
                )
                .await?;
            client.batch_execute("COMMIT").await
        };
        if let Err(source) = run.await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(StoreError::Migration {
                name: (*name).to_string(),
                source,
            });
        }
        tracing::info!(migration = name, "applied migration");
        applied.push(*name);
    }
    Ok(applied)
}

const ENTRY_COLUMNS: &str = "id, title, description, keywords, theme, publisher, licence, \
    source_name, source_sha256, source_layer, source_crs, attributes, geometry_types, id_field, \
    datetime_field, feature_count, extent, temporal_start, temporal_end, created, updated, \
    version, data_table, min_zoom, max_zoom, conforms_to, language, engine";

fn entry_from_row(row: &tokio_postgres::Row) -> Result<(CatalogEntry, String)> {
    let corrupt = |reason: String| StoreError::CorruptCatalog {
        path: "hamn.collections".into(),
        reason,
    };
    let id: String = row.get("id");
    let id: CollectionId = id.parse().map_err(|e| corrupt(format!("{e}")))?;
    let attributes: serde_json::Value = row.get("attributes");
    let attributes: Vec<Attribute> = serde_json::from_value(attributes)
        .map_err(|e| corrupt(format!("attributes of {id}: {e}")))?;
    let extent: Option<Vec<f64>> = row.get("extent");
    let extent = extent.and_then(|e| <[f64; 4]>::try_from(e).ok()).map(Bbox);
    let t0: Option<DateTime<Utc>> = row.get("temporal_start");
    let t1: Option<DateTime<Utc>> = row.get("temporal_end");
    let feature_count: i64 = row.get("feature_count");
    let entry = CatalogEntry {
        id,
        meta: Description {
            title: row.get("title"),
            description: row.get("description"),
            keywords: row.get("keywords"),
            theme: row.get("theme"),
            publisher: row.get("publisher"),
            licence: row.get("licence"),
            conforms_to: row.get("conforms_to"),
            language: row.get("language"),
        },
        source: SourceInfo {
            name: row.get("source_name"),
            sha256: row.get("source_sha256"),
            layer: row.get("source_layer"),
            crs: row.get("source_crs"),
        },
        attributes,
        geometry_types: row.get("geometry_types"),
        id_field: row.get("id_field"),
        datetime_field: row.get("datetime_field"),
        feature_count: u64::try_from(feature_count).unwrap_or(0),
        extent,
        temporal_extent: t0.zip(t1).map(|(a, b)| [a, b]),
        created: row.get("created"),
        updated: row.get("updated"),
        zoom: {
            let (a, b): (i16, i16) = (row.get("min_zoom"), row.get("max_zoom"));
            crate::catalog::ZoomRange::new(
                u8::try_from(a).unwrap_or(0),
                u8::try_from(b).unwrap_or(22),
            )
            .unwrap_or_default()
        },
        engine: row
            .get::<_, Option<String>>("engine")
            .and_then(|e| crate::catalog::EngineChoice::parse(&e)),
        version: row.get("version"),
    };
    Ok((entry, row.get("data_table")))
}

async fn current(
    client: &Object,
    id: &CollectionId,
    lock: bool,
) -> Result<Option<(CatalogEntry, String)>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM hamn.collections WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = client.query_opt(&sql, &[&id.as_str()]).await?;
    row.as_ref().map(entry_from_row).transpose()
}

/// Takes the transaction-scoped advisory lock on `id`. Every writer of a collection takes it
/// before it locks the catalog row, so writers queue in one order: an append (which holds the
/// row from its start) and a replace (which took the advisory lock at its commit) each waited
/// for the other's lock, and PostgreSQL aborted one of them as a deadlock. The advisory lock
/// also serialises the first commits of a new collection, which has no row to lock yet.
async fn lock_collection(client: &Object, id: &CollectionId) -> Result<()> {
    client
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&id.as_str()],
        )
        .await?;
    Ok(())
}

#[async_trait]
impl Store for PostgisStore {
    fn kind(&self) -> &'static str {
        "postgis"
    }

    fn postgis(&self) -> Option<&PostgisStore> {
        Some(self)
    }

    fn watch(&self, changed: tokio::sync::mpsc::Sender<()>) {
        tokio::spawn(listen(self.url.to_string(), changed));
    }

    async fn list(&self) -> Result<Vec<CatalogEntry>> {
        let client = self.client().await?;
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM hamn.collections ORDER BY id");
        client
            .query(&sql, &[])
            .await?
            .iter()
            .map(|r| entry_from_row(r).map(|(e, _)| e))
            .collect()
    }

    async fn get(&self, id: &CollectionId) -> Result<Option<CatalogEntry>> {
        let client = self.client().await?;
        Ok(current(&client, id, false).await?.map(|(e, _)| e))
    }

    async fn delete(&self, id: &CollectionId) -> Result<()> {
        let (store, id) = (self.detached(), id.clone());
        spawned(async move { store.delete_txn(&id).await }).await
    }

    async fn set_description(
        &self,
        id: &CollectionId,
        meta: Description,
        engine: Option<crate::catalog::EngineChoice>,
    ) -> Result<Described> {
        let (store, id) = (self.detached(), id.clone());
        spawned(async move { store.set_description_txn(&id, meta, engine).await }).await
    }

    async fn put_record(&self, kind: RecordKind, key: &str, doc: &serde_json::Value) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO hamn.records (kind, key, doc) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, key) DO UPDATE SET doc = EXCLUDED.doc, updated = now()",
                &[&kind.as_str(), &key, doc],
            )
            .await?;
        Ok(())
    }

    async fn get_record(&self, kind: RecordKind, key: &str) -> Result<Option<serde_json::Value>> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT doc FROM hamn.records WHERE kind = $1 AND key = $2",
                &[&kind.as_str(), &key],
            )
            .await?
            .map(|r| r.get(0)))
    }

    async fn list_records(&self, kind: RecordKind) -> Result<Vec<(String, serde_json::Value)>> {
        let client = self.client().await?;
        Ok(client
            .query(
                "SELECT key, doc FROM hamn.records WHERE kind = $1 ORDER BY key",
                &[&kind.as_str()],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn list_records_with_prefix(
        &self,
        kind: RecordKind,
        prefix: &str,
    ) -> Result<Vec<(String, serde_json::Value)>> {
        // starts_with rather than LIKE: a prefix holding % or _ matches itself only.
        let client = self.client().await?;
        Ok(client
            .query(
                "SELECT key, doc FROM hamn.records WHERE kind = $1 AND starts_with(key, $2) ORDER BY key",
                &[&kind.as_str(), &prefix],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    async fn delete_record(&self, kind: RecordKind, key: &str) -> Result<bool> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "DELETE FROM hamn.records WHERE kind = $1 AND key = $2",
                &[&kind.as_str(), &key],
            )
            .await?
            > 0)
    }

    async fn delete_records(&self, kind: RecordKind, keys: &[String]) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM hamn.records WHERE kind = $1 AND key = ANY($2)",
                &[&kind.as_str(), &keys],
            )
            .await?;
        Ok(())
    }

    async fn begin_ingest(&self, plan: IngestPlan) -> Result<Box<dyn IngestSink>> {
        let client = self.client().await?;
        client.batch_execute("BEGIN").await?;
        let mut sink = PgSink {
            client: Some(client),
            plan,
            attributes: Vec::new(),
            previous: None,
            table: String::new(),
            writer: None,
            first_fid: 1,
            ids: IdKinds::default(),
            first_id: None,
        };
        sink.start().await?;
        Ok(Box::new(sink))
    }

    async fn read(&self, id: &CollectionId) -> Result<(CatalogEntry, Vec<StoredFeature>)> {
        let client = self.client().await?;
        let Some((entry, table)) = current(&client, id, false).await? else {
            return Err(StoreError::NotFound(id.clone()));
        };
        match read_rows(&client, &entry, &table).await {
            Ok(rows) => Ok((entry, rows)),
            // The entry names its table. A replace that commits after the catalog read drops
            // it (its DROP waits for a SELECT already running, so only this gap matters): read
            // again. If the catalog still names it, it was dropped by hand: that is an error.
            Err(StoreError::Postgres(e))
                if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
            {
                match current(&client, id, false).await? {
                    Some((_, now)) if now == table => Err(StoreError::CorruptCatalog {
                        path: format!("hamn.collections ({id})"),
                        reason: format!("its data table hamn_data.{table} does not exist"),
                    }),
                    _ => Err(StoreError::Changed(id.clone())),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// All rows of a collection version's table, in `fid` order, streamed row by row: a large
/// collection is never held twice (as rows and as features).
async fn read_rows(
    client: &Object,
    entry: &CatalogEntry,
    table: &str,
) -> Result<Vec<StoredFeature>> {
    let cols: String = entry
        .attributes
        .iter()
        .map(|a| format!(", {}", quote_ident(&a.column)))
        .collect();
    let sql = format!(
        "SELECT hamn_fid, hamn_id, ST_AsBinary(geom){cols} FROM {} ORDER BY hamn_fid",
        table_ref(table)
    );
    let rows = client.query_raw(&sql, std::iter::empty::<i32>()).await?;
    futures_util::pin_mut!(rows);
    let mut out = Vec::with_capacity(usize::try_from(entry.feature_count).unwrap_or(0));
    while let Some(r) = futures_util::TryStreamExt::try_next(&mut rows).await? {
        let values = entry
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| read_value(&r, i + 3, a.kind))
            .collect::<Result<Vec<_>>>()?;
        out.push(StoredFeature {
            fid: r.try_get(0)?,
            id: r.try_get(1)?,
            geometry: r.try_get(2)?,
            values,
        });
    }
    Ok(out)
}

/// Column `idx` of `row` as a value of an attribute of type `kind`.
pub fn read_value(row: &tokio_postgres::Row, idx: usize, kind: AttrType) -> Result<Value> {
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
    Ok(match kind {
        AttrType::Integer => opt(row.try_get::<_, Option<i64>>(idx)?, Value::Integer),
        AttrType::Real => opt(row.try_get::<_, Option<f64>>(idx)?, Value::Real),
        AttrType::Text => opt(row.try_get::<_, Option<String>>(idx)?, Value::Text),
        AttrType::Boolean => opt(row.try_get::<_, Option<bool>>(idx)?, Value::Boolean),
        AttrType::Date => opt(row.try_get::<_, Option<NaiveDate>>(idx)?, Value::Date),
        AttrType::DateTime => opt(row.try_get::<_, Option<DateTime<Utc>>>(idx)?, |t| {
            Value::DateTime(t.fixed_offset())
        }),
        AttrType::Json => opt(row.try_get::<_, Option<serde_json::Value>>(idx)?, |j| {
            Value::Json(Box::new(j))
        }),
    })
}

/// Drops a version's data table and what `hamn.table_ids` says of it.
async fn drop_data_table(client: &Object, table: &str) -> Result<()> {
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {}", table_ref(table)))
        .await?;
    client
        .execute(
            "DELETE FROM hamn.table_ids WHERE data_table = $1",
            &[&table],
        )
        .await?;
    Ok(())
}

/// The kinds of ids in a data table and its first id, read from the table itself (one pass
/// over it): for a table whose ingest did not see every row, and for tables from before
/// `hamn.table_ids`. The pattern is [`crate::catalog::id_is_integer`]'s rule.
pub async fn table_id_kinds(
    client: &tokio_postgres::Client,
    table: &str,
) -> std::result::Result<(IdKinds, Option<String>), tokio_postgres::Error> {
    let t = table_ref(table);
    let row = client
        .query_one(
            &format!(
                "SELECT coalesce(bool_or(hamn_id ~ '^(0|[1-9][0-9]{{0,14}})$'), false), \
                        coalesce(bool_or(hamn_id !~ '^(0|[1-9][0-9]{{0,14}})$'), false), \
                        (SELECT hamn_id FROM {t} ORDER BY hamn_fid LIMIT 1) \
                 FROM {t}"
            ),
            &[],
        )
        .await?;
    Ok((
        IdKinds {
            integers: row.get(0),
            strings: row.get(1),
        },
        row.get(2),
    ))
}

/// An ingest in progress: one connection, one open transaction, one COPY.
struct PgSink {
    /// `None` only after commit; dropping the sink with a client still here aborts the ingest.
    client: Option<Object>,
    plan: IngestPlan,
    attributes: Vec<Attribute>,
    previous: Option<(CatalogEntry, String)>,
    table: String,
    writer: Option<Pin<Box<BinaryCopyInWriter>>>,
    first_fid: i64,
    /// The kinds of the ids written, and the first of them (rows come in fid order).
    ids: IdKinds,
    first_id: Option<String>,
}

impl Drop for PgSink {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // The transaction is still open. Take the connection out of the pool and close it:
            // the server then rolls back, dropping the half-loaded table with it.
            drop(Object::take(client));
        }
    }
}

impl PgSink {
    fn client(&self) -> Result<&Object> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Task("ingest already committed".into()))
    }

    async fn start(&mut self) -> Result<()> {
        let id = self.plan.id.clone();
        let client = self.client()?;
        // Appends hold the collection from the start, so two appends cannot both copy the
        // same old version and lose each other's rows: the advisory lock first, then the
        // catalog row, the order every writer uses.
        let lock = self.plan.mode == IngestMode::Append;
        if lock {
            lock_collection(client, &id).await?;
        }
        let previous = current(client, &id, lock).await?;
        if self.plan.mode == IngestMode::Create && previous.is_some() {
            return Err(StoreError::AlreadyExists(id));
        }
        self.attributes = match (&previous, self.plan.mode) {
            (Some((old, _)), IngestMode::Append) => {
                super::merge_attributes(&old.attributes, &self.plan.attributes)?
            }
            _ => self.plan.attributes.clone(),
        };
        let client = self.client()?;
        let mut first_fid = 1;
        let version: i64 = client
            .query_one("SELECT nextval('hamn.version_seq')", &[])
            .await?
            .get(0);
        let table = format!("{id}_v{version}");
        let columns: String = self
            .attributes
            .iter()
            .map(|a| format!(", {} {}", quote_ident(&a.column), a.kind.sql_type()))
            .collect();
        client
            .batch_execute(&format!(
                "CREATE TABLE {} (hamn_fid bigint NOT NULL, hamn_id text NOT NULL, \
                 geom geometry(Geometry, 4326), \
                 {PRIORITY_COLUMN} integer GENERATED ALWAYS AS ({}) STORED{columns})",
                table_ref(&table),
                crate::tiles::mvt::priority_sql()
            ))
            .await?;
        let mut previous = previous;
        if let (Some((old, old_table)), IngestMode::Append) = (&mut previous, self.plan.mode) {
            let cols: String = old
                .attributes
                .iter()
                .map(|a| format!(", {}", quote_ident(&a.column)))
                .collect();
            let copy = format!(
                "INSERT INTO {} (hamn_fid, hamn_id, geom{cols}) SELECT hamn_fid, hamn_id, geom{cols} FROM {}",
                table_ref(&table),
                table_ref(old_table)
            );
            let leave_out = self.plan.replacing.as_ref().and_then(|m| {
                old.attributes
                    .iter()
                    .find(|a| a.name == m.attribute && a.kind == AttrType::Text)
                    .map(|a| (a.column.clone(), m.value.clone()))
            });
            match &leave_out {
                Some((column, value)) => {
                    client
                        .execute(
                            &format!("{copy} WHERE {} IS DISTINCT FROM $1", quote_ident(column)),
                            &[value],
                        )
                        .await?;
                }
                None => client.batch_execute(&copy).await?,
            }
            if self.plan.replacing.is_some() {
                kept_stats(client, &table, old).await?;
            }
            let max: Option<i64> = client
                .query_one(
                    &format!("SELECT max(hamn_fid) FROM {}", table_ref(&table)),
                    &[],
                )
                .await?
                .get(0);
            first_fid = max.unwrap_or(0) + 1;
        }
        let geometry_type = client.prepare("SELECT $1::geometry").await?.params()[0].clone();
        let mut types = vec![Type::INT8, Type::TEXT, geometry_type];
        types.extend(self.attributes.iter().map(|a| sql_param_type(a.kind)));
        let copy_cols: String = self
            .attributes
            .iter()
            .map(|a| format!(", {}", quote_ident(&a.column)))
            .collect();
        let sink = client
            .copy_in(&format!(
                "COPY {} (hamn_fid, hamn_id, geom{copy_cols}) FROM STDIN (FORMAT binary)",
                table_ref(&table)
            ))
            .await?;
        self.writer = Some(Box::pin(BinaryCopyInWriter::new(sink, &types)));
        self.first_fid = first_fid;
        self.table = table;
        self.previous = previous;
        Ok(())
    }
}

/// Describes the features an append kept from the old version (count, extent, geometry types,
/// temporal extent) in `entry`, for an ingest that replaces one publisher's part.
async fn kept_stats(client: &Object, table: &str, entry: &mut CatalogEntry) -> Result<()> {
    let t = table_ref(table);
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), ST_XMin(ST_Extent(geom)), ST_YMin(ST_Extent(geom)), \
                 ST_XMax(ST_Extent(geom)), ST_YMax(ST_Extent(geom)) FROM {t}"
            ),
            &[],
        )
        .await?;
    let count: i64 = row.get(0);
    entry.feature_count = u64::try_from(count).unwrap_or(0);
    let corners: [Option<f64>; 4] = [row.get(1), row.get(2), row.get(3), row.get(4)];
    entry.extent = match corners {
        [Some(a), Some(b), Some(c), Some(d)] => Some(Bbox([a, b, c, d])),
        _ => None,
    };
    let types = client
        .query(
            &format!("SELECT DISTINCT ST_GeometryType(geom) FROM {t} WHERE geom IS NOT NULL"),
            &[],
        )
        .await?;
    let mut names: Vec<String> = types
        .iter()
        .filter_map(|r| r.get::<_, Option<String>>(0))
        .map(|n| n.trim_start_matches("ST_").to_string())
        .collect();
    names.sort();
    entry.geometry_types = names;
    let temporal = entry
        .datetime_field
        .as_ref()
        .and_then(|name| entry.attributes.iter().find(|a| &a.name == name))
        .filter(|a| a.kind.is_temporal());
    entry.temporal_extent = match temporal {
        None => None,
        Some(a) => {
            // A date is the instant of its midnight in UTC, as ingest reads it.
            let col = match a.kind {
                AttrType::Date => {
                    format!("({}::timestamp AT TIME ZONE 'UTC')", quote_ident(&a.column))
                }
                _ => quote_ident(&a.column),
            };
            let row = client
                .query_one(&format!("SELECT min({col}), max({col}) FROM {t}"), &[])
                .await?;
            let first: Option<DateTime<Utc>> = row.get(0);
            let last: Option<DateTime<Utc>> = row.get(1);
            first.zip(last).map(|(a, b)| [a, b])
        }
    };
    Ok(())
}

fn sql_param_type(kind: AttrType) -> Type {
    match kind {
        AttrType::Integer => Type::INT8,
        AttrType::Real => Type::FLOAT8,
        AttrType::Text => Type::TEXT,
        AttrType::Boolean => Type::BOOL,
        AttrType::Date => Type::DATE,
        AttrType::DateTime => Type::TIMESTAMPTZ,
        AttrType::Json => Type::JSONB,
    }
}

fn duplicate_or(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        let detail = e
            .as_db_error()
            .and_then(|d| d.detail())
            .unwrap_or_default()
            .to_string();
        // Detail reads "Key (hamn_id)=(value) is duplicated." (index build) or
        // "… already exists." (insert).
        let value = detail
            .split_once(")=(")
            .and_then(|(_, rest)| rest.rsplit_once(") "))
            .map_or(detail.clone(), |(v, _)| v.to_string());
        return StoreError::DuplicateId(value);
    }
    StoreError::Postgres(e)
}

#[async_trait]
impl IngestSink for PgSink {
    fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    fn first_fid(&self) -> i64 {
        self.first_fid
    }

    fn previous(&self) -> Option<&CatalogEntry> {
        self.previous.as_ref().map(|(e, _)| e)
    }

    async fn write(&mut self, rows: Vec<Row>) -> Result<()> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| StoreError::Task("COPY already finished".into()))?;
        for row in &rows {
            self.ids.add(&row.id);
            if self.first_id.is_none() {
                self.first_id = Some(row.id.clone());
            }
            let geom = row.geometry.as_deref().map(Ewkb);
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(row.values.len() + 3);
            params.push(&row.fid);
            params.push(&row.id);
            params.push(&geom);
            params.extend(row.values.iter().map(|v| v as &(dyn ToSql + Sync)));
            writer.as_mut().write(&params).await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, mut entry: CatalogEntry) -> Result<CatalogEntry> {
        if let Some(mut writer) = self.writer.take() {
            writer.as_mut().finish().await?;
        }
        let table = table_ref(&self.table);
        let client = self.client()?;
        let index_name = |suffix: &str| quote_ident(&format!("{}_{suffix}", self.table));
        client
            .batch_execute(&format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} PRIMARY KEY (hamn_fid)",
                index_name("pk")
            ))
            .await?;
        client
            .batch_execute(&format!(
                "CREATE UNIQUE INDEX {} ON {table} (hamn_id)",
                index_name("id")
            ))
            .await
            .map_err(duplicate_or)?;
        let levels: String = (0..PRIORITY_LEVELS)
            .map(|j| {
                let (lo, hi) = priority_level(j);
                format!(
                    "CREATE INDEX {} ON {table} USING gist (geom) \
                     WHERE {PRIORITY_COLUMN} >= {lo} AND {PRIORITY_COLUMN} < {hi}; ",
                    quote_ident(&level_index(&self.table, j))
                )
            })
            .collect();
        client
            .batch_execute(&format!(
                "CREATE INDEX {} ON {table} USING gist (geom); {levels}ANALYZE {table}",
                index_name("geom")
            ))
            .await?;

        // Concurrent ingests of one collection commit one after the other: the last one wins,
        // whole. (An append holds both locks already: a transaction taking a lock it holds
        // does not wait.)
        lock_collection(client, &entry.id).await?;
        let old = current(client, &entry.id, true).await?;
        if self.plan.mode == IngestMode::Create && old.is_some() {
            return Err(StoreError::AlreadyExists(entry.id.clone()));
        }
        let version: i64 = self
            .table
            .rsplit_once("_v")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        entry.version = version;
        entry.attributes = self.attributes.clone();
        entry.updated = Utc::now();
        if let Some((old_entry, _)) = &old {
            entry.created = old_entry.created;
        }
        let attributes = serde_json::to_value(&entry.attributes)
            .map_err(|e| StoreError::Task(format!("serialising attributes: {e}")))?;
        let extent: Option<Vec<f64>> = entry.extent.map(|b| b.0.to_vec());
        let feature_count = i64::try_from(entry.feature_count).unwrap_or(i64::MAX);
        let (t0, t1) = match entry.temporal_extent {
            Some([a, b]) => (Some(a), Some(b)),
            None => (None, None),
        };
        client
            .execute(
                &format!(
                    "INSERT INTO hamn.collections ({ENTRY_COLUMNS}) VALUES \
                     ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28) \
                     ON CONFLICT (id) DO UPDATE SET ({ENTRY_COLUMNS}) = \
                     (EXCLUDED.id, EXCLUDED.title, EXCLUDED.description, EXCLUDED.keywords, EXCLUDED.theme, \
                      EXCLUDED.publisher, EXCLUDED.licence, EXCLUDED.source_name, EXCLUDED.source_sha256, \
                      EXCLUDED.source_layer, EXCLUDED.source_crs, EXCLUDED.attributes, EXCLUDED.geometry_types, \
                      EXCLUDED.id_field, EXCLUDED.datetime_field, EXCLUDED.feature_count, EXCLUDED.extent, \
                      EXCLUDED.temporal_start, EXCLUDED.temporal_end, EXCLUDED.created, EXCLUDED.updated, \
                      EXCLUDED.version, EXCLUDED.data_table, EXCLUDED.min_zoom, EXCLUDED.max_zoom, \
                      EXCLUDED.conforms_to, EXCLUDED.language, EXCLUDED.engine)"
                ),
                &[
                    &entry.id.as_str(),
                    &entry.meta.title,
                    &entry.meta.description,
                    &entry.meta.keywords,
                    &entry.meta.theme,
                    &entry.meta.publisher,
                    &entry.meta.licence,
                    &entry.source.name,
                    &entry.source.sha256,
                    &entry.source.layer,
                    &entry.source.crs,
                    &attributes,
                    &entry.geometry_types,
                    &entry.id_field,
                    &entry.datetime_field,
                    &feature_count,
                    &extent,
                    &t0,
                    &t1,
                    &entry.created,
                    &entry.updated,
                    &entry.version,
                    &self.table,
                    &i16::from(entry.zoom.min()),
                    &i16::from(entry.zoom.max()),
                    &entry.meta.conforms_to,
                    &entry.meta.language,
                    &entry.engine.map(|e| e.as_str()),
                ],
            )
            .await?;
        // An append's table holds rows copied from the old one as well: read its ids back.
        let (ids, first_id) = match self.previous {
            Some(_) if self.plan.mode == IngestMode::Append => {
                table_id_kinds(client, &self.table).await?
            }
            _ => (self.ids, self.first_id.clone()),
        };
        client
            .execute(
                "INSERT INTO hamn.table_ids (data_table, integers, strings, example_id) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (data_table) DO UPDATE SET \
                 (integers, strings, example_id) = \
                 (EXCLUDED.integers, EXCLUDED.strings, EXCLUDED.example_id)",
                &[&self.table, &ids.integers, &ids.strings, &first_id],
            )
            .await?;
        if let Some((_, old_table)) = &old {
            drop_data_table(client, old_table).await?;
        }
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&NOTIFY_CHANNEL, &format!("{}:{}", entry.id, entry.version)],
            )
            .await?;
        client.batch_execute("COMMIT").await?;
        // Committed: give the connection back to the pool instead of closing it.
        self.client = None;
        Ok(entry)
    }
}

/// Forwards `hamn_catalog` notifications; reconnects after a pause when the connection drops.
async fn listen(url: String, tx: tokio::sync::mpsc::Sender<()>) {
    use futures_util::StreamExt;
    loop {
        let connected = match super::tls::connector(&url) {
            Ok((config, tls)) => config.connect(tls).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match connected {
            Ok((client, mut conn)) => {
                let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel();
                let pump = tokio::spawn(async move {
                    let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
                    while let Some(msg) = stream.next().await {
                        match msg {
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                let _ = ntx.send(());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {}", NOTIFY_CHANNEL))
                    .await
                    .is_ok()
                {
                    while nrx.recv().await.is_some() {
                        // A full channel means a refresh is already due.
                        let _ = tx.try_send(());
                    }
                }
                pump.abort();
            }
            Err(e) => tracing::warn!(error = %e, "LISTEN connection failed; retrying"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}
