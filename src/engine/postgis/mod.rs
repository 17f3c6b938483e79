//! The PostGIS engine: serves a collection straight from its table in PostGIS, for
//! collections too large for memory (`--max-features`). `compile` turns a bound query (boxes,
//! time, attribute equality, a CQL2 predicate, sort keys) into SQL whose every value is a bind
//! parameter.
//!
//! Rows come back as the memory engine's [`Feature`]s, and every encoding is then written by
//! the code that writes the memory engine's, vector tiles included: the two engines give the
//! same bytes for the same data, which is what the differential tests hold them to.
//! PostgreSQL selects and thins (a tile's candidates in the memory engine's priority order,
//! `tiles::mvt::priority`, computed in SQL), Rust encodes. (PostgreSQL's `ST_AsGeoJSON`
//! writes numbers its own way, 9 decimals at most, and `ST_AsMVT` clips and rounds its own
//! way, so documents or tiles assembled by PostgreSQL would differ from the memory engine's.)
//!
//! Reads go to the streaming replicas given (`--database-replica-url`) in turn, else to the
//! primary. A version is opened on the primary, which always has the table of the catalog's
//! current version; a replica that has not replayed that version yet answers "no such table",
//! and the read is then made on the primary instead: a lagging replica never serves a version
//! it lacks, and never holds a new version back.
//!
//! Paging is by keyset on `hamn_fid` (the primary key): a `next` cursor reads the rows after
//! the last one it saw, at the same cost on page 1 and page 10,000. Sorted walks page by
//! offset, as the memory engine's do. `numberMatched` is counted only up to `count_limit`
//! rows, and left out beyond: a page never costs a count of a whole large table.

pub mod compile;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;

use super::snapshot::{geometry_from_wkb, Feature, Geom, Query, Start, ValueRef};
use super::source::{EngineError, EngineKind, Features, IdKinds, Page, Source, Summary};
use crate::catalog::{AttrType, CatalogEntry};
use crate::collation::Collation;
use crate::store::postgis::{
    level_index, priority_level, quote_ident, read_value, table_id_kinds, table_ref,
    PRIORITY_COLUMN, PRIORITY_LEVELS,
};
use crate::store::Value;
use crate::tiles::mvt::{self, TileOptions};
use crate::tiles::tms::TileId;

/// How the PostGIS engine reads.
#[derive(Debug, Clone, Copy)]
pub struct PostgisOptions {
    /// Longest one statement may run; PostgreSQL cancels it after that (a 503 to the client).
    pub statement_timeout: Duration,
    /// `numberMatched` is counted up to this many rows and left out above.
    pub count_limit: usize,
    /// Connections of the read pool.
    pub pool_size: usize,
}

impl Default for PostgisOptions {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(30),
            count_limit: 100_000,
            pool_size: 16,
        }
    }
}

/// Where the PostGIS engine reads: the primary's read pool, and the replicas', taken in turn.
#[derive(Clone)]
pub struct Readers {
    primary: Pool,
    replicas: Arc<[Pool]>,
    turn: Arc<AtomicUsize>,
}

impl Readers {
    pub fn new(primary: Pool, replicas: Vec<Pool>) -> Self {
        Self {
            primary,
            replicas: replicas.into(),
            turn: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Bytes of `entry`'s table on the primary (heap and TOAST, without indexes), for the
    /// memory budget's estimate; `None` once the catalog has moved past this version.
    pub async fn table_bytes(&self, entry: &CatalogEntry) -> Result<Option<u64>, EngineError> {
        let client = self.primary.get().await.map_err(pool_error)?;
        let row = client
            .query_opt(
                "SELECT pg_table_size(to_regclass('hamn_data.' || quote_ident(data_table))) \
                 FROM hamn.collections WHERE id = $1 AND version = $2",
                &[&entry.id.as_str(), &entry.version],
            )
            .await
            .map_err(|e| EngineError::Database(format!("PostGIS: {e}")))?;
        Ok(row
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .map(|b| b.max(0) as u64))
    }

    /// The pool for the next read, and whether it is a replica.
    fn next(&self) -> (&Pool, bool) {
        if self.replicas.is_empty() {
            return (&self.primary, false);
        }
        let n = self.turn.fetch_add(1, Ordering::Relaxed) % self.replicas.len();
        (&self.replicas[n], true)
    }
}

/// `Feature::new` (with its GeoJSON) or `Feature::without_json` (for tiles).
type MakeFeature = fn(&CatalogEntry, i64, &str, &[Value], Option<geo::Geometry<f64>>) -> Feature;

/// One collection version served from its table.
pub struct PostgisSource {
    entry: CatalogEntry,
    /// The quoted, schema-qualified data table of this version.
    table: String,
    readers: Readers,
    options: PostgisOptions,
    collation: Collation,
    summary: Summary,
    /// `hamn_fid, hamn_id, ST_AsBinary(geom), <attribute columns>`.
    columns: String,
    /// The collations queries on text need, as this database has them.
    collations: compile::Collations,
    /// A tile's thinning order: the stored priority column where the table has one, else
    /// the same priority computed from `hamn_fid` (tables from before it was stored).
    priority: String,
    /// Where the features are, for guessing which tiles to read by priority level; `None`
    /// for a table without the levels' indexes.
    crowd: Option<Crowd>,
}

/// A sample of a table's envelope centres, to guess before asking whether a tile holds far
/// more candidates than it may show. Reading such a tile one priority level at a time stops
/// once enough are found (z12 tiles of 10M points: 1.6-1.9 times faster); for a tile that is
/// not capped every level is read, sixteen statements where one would do (small tiles: eight
/// times slower). So the guess decides, and a wrong one costs time, never a different tile.
struct Crowd {
    centres: rstar::RTree<[f64; 2]>,
    /// Rows of the table per sampled centre.
    scale: f64,
}

impl Crowd {
    /// Whether about `n` or more features have their centre inside `b` (west, south, east,
    /// north).
    fn at_least(&self, b: &[f64; 4], n: usize) -> bool {
        let sampled = ((n as f64 / self.scale).ceil() as usize).max(1);
        let area = rstar::AABB::from_corners([b[0], b[1]], [b[2], b[3]]);
        self.centres.locate_in_envelope(&area).take(sampled).count() >= sampled
    }
}

/// PostgreSQL's `percentile_disc(p)` of `sorted` (ascending, not empty).
fn percentile_disc(sorted: &[f64], p: f64) -> f64 {
    let at = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[at - 1]
}

/// Whether the collection moved on (its table was dropped by a newer version), else the error.
fn db_error(e: tokio_postgres::Error, entry: &CatalogEntry, timeout: Duration) -> EngineError {
    match e.code() {
        Some(&SqlState::UNDEFINED_TABLE) => EngineError::Changed(entry.id.to_string()),
        Some(&SqlState::QUERY_CANCELED) => EngineError::Timeout(timeout.as_secs()),
        // Class 22, data exception: arithmetic in a filter that leaves float8's range, a LIKE
        // pattern ending in its escape character. The query's doing, not the server's.
        Some(c) if c.code().starts_with("22") => EngineError::Unsupported(format!(
            "PostgreSQL cannot evaluate this query on this collection: {}",
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string())
        )),
        _ => EngineError::Database(format!("PostGIS: {e}")),
    }
}

async fn run(
    client: &deadpool_postgres::Object,
    sql: &str,
    params: &compile::Params,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    client.query(&statement, &refs).await
}

fn pool_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::Database(format!("no PostGIS connection: {e}"))
}

impl PostgisSource {
    /// Opens `entry`'s version for serving: finds its table and what the documents say of it
    /// (the kinds of ids as ingest noted them, a sample for the core box). `Ok(None)`
    /// when the catalog has moved past this version meanwhile.
    pub async fn open(
        readers: Readers,
        entry: CatalogEntry,
        options: PostgisOptions,
        collation: Collation,
    ) -> Result<Option<Self>, EngineError> {
        let client = readers.primary.get().await.map_err(pool_error)?;
        let timeout = options.statement_timeout;
        let err = |e| db_error(e, &entry, timeout);
        let row = client
            .query_opt(
                "SELECT c.data_table, i.integers, i.strings, i.example_id \
                 FROM hamn.collections c LEFT JOIN hamn.table_ids i USING (data_table) \
                 WHERE c.id = $1 AND c.version = $2",
                &[&entry.id.as_str(), &entry.version],
            )
            .await
            .map_err(err)?;
        let Some(row) = row else { return Ok(None) };
        let data_table: String = row.get(0);
        let table = table_ref(&data_table);
        // A public id is served as a JSON number when it looks like one (`id_is_integer`).
        // Ingest notes which kinds a table holds; a table from before it did is read through.
        let (ids, example_id) = match (row.get(1), row.get(2)) {
            (Some(integers), Some(strings)) => (IdKinds { integers, strings }, row.get(3)),
            _ => table_id_kinds(&client, &data_table).await.map_err(err)?,
        };
        // Where the features are: envelope centres of about 100,000 rows (every row of a
        // smaller table), for the core box and for guessing which tiles are crowded.
        let share = (1e7 / entry.feature_count.max(1) as f64).min(100.0);
        let sample = client
            .query(
                &format!(
                    "SELECT (ST_XMin(geom) + ST_XMax(geom)) / 2, (ST_YMin(geom) + ST_YMax(geom)) / 2 \
                     FROM {table} TABLESAMPLE SYSTEM ({share}) WHERE geom IS NOT NULL"
                ),
                &[],
            )
            .await
            .map_err(err)?;
        // An empty geometry has no envelope: its centre is NULL.
        let centres: Vec<[f64; 2]> = sample
            .iter()
            .filter_map(|r| Some([r.try_get(0).ok()?, r.try_get(1).ok()?]))
            .collect();
        drop(sample);
        // Where most features are: the 1st and 99th percentiles of the centres.
        let core_bbox = (!centres.is_empty()).then(|| {
            let mut xs: Vec<f64> = centres.iter().map(|c| c[0]).collect();
            let mut ys: Vec<f64> = centres.iter().map(|c| c[1]).collect();
            xs.sort_unstable_by(f64::total_cmp);
            ys.sort_unstable_by(f64::total_cmp);
            let pad = 0.005;
            [
                percentile_disc(&xs, 0.01) - pad,
                percentile_disc(&ys, 0.01) - pad,
                percentile_disc(&xs, 0.99) + pad,
                percentile_disc(&ys, 0.99) + pad,
            ]
        });
        // Ingest gives every table the priority column and the levels' indexes; a table
        // from before that has neither.
        let names: Vec<String> = (0..PRIORITY_LEVELS)
            .map(|j| level_index(&data_table, j))
            .collect();
        let levels: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = 'hamn_data' AND c.relname = ANY($1) AND i.indisvalid",
                &[&names],
            )
            .await
            .map_err(err)?
            .get(0);
        let levels = levels == PRIORITY_LEVELS as i64;
        let crowd = (levels && !centres.is_empty()).then(|| Crowd {
            scale: entry.feature_count as f64 / centres.len() as f64,
            centres: rstar::RTree::bulk_load(centres),
        });
        let priority = if levels {
            PRIORITY_COLUMN.to_string()
        } else {
            mvt::priority_sql()
        };
        let wanted = compile::Collations::wanted(&collation);
        let found = client
            .query_one(
                "SELECT bool_or(collname = $1), bool_or(collname = 'und-x-icu') \
                 FROM pg_collation WHERE collname IN ($1, 'und-x-icu')",
                &[&wanted],
            )
            .await
            .map_err(err)?;
        let collations = compile::Collations {
            order: found
                .get::<_, Option<bool>>(0)
                .unwrap_or(false)
                .then_some(wanted),
            root: found
                .get::<_, Option<bool>>(1)
                .unwrap_or(false)
                .then(|| "und-x-icu".to_string()),
        };
        let columns: String = entry
            .attributes
            .iter()
            .map(|a| format!(", {}", quote_ident(&a.column)))
            .collect();
        Ok(Some(Self {
            summary: Summary {
                core_bbox,
                ids,
                example_id,
                memory_bytes: 0,
            },
            columns: format!("hamn_fid, hamn_id, ST_AsBinary(geom){columns}"),
            collations,
            priority,
            crowd,
            entry,
            table,
            readers,
            options,
            collation,
        }))
    }

    /// The first `n` rows matching `condition` in thinning order, read one priority level at
    /// a time (each with its partial index), stopping at the level that completes them: the
    /// same rows as one statement ordered by priority, without reading the levels after.
    /// Each level is a statement of its own rather than a `UNION ALL` under one `LIMIT`,
    /// whose stopping early would rest on `Append` running its branches in order.
    async fn by_level(
        &self,
        condition: &str,
        params: &mut compile::Params,
        n: usize,
    ) -> Result<Vec<tokio_postgres::Row>, EngineError> {
        // The limit is a parameter: one prepared statement per level, whatever it is.
        params.push(Box::new(0_i64));
        let limit = params.len();
        let mut rows = Vec::new();
        for j in 0..PRIORITY_LEVELS {
            let left = n - rows.len();
            params[limit - 1] = Box::new(i64::try_from(left).unwrap_or(i64::MAX));
            let (lo, hi) = priority_level(j);
            let sql = format!(
                "SELECT {} FROM {} WHERE {PRIORITY_COLUMN} >= {lo} AND {PRIORITY_COLUMN} < {hi} \
                 AND ({condition}) ORDER BY {PRIORITY_COLUMN}, hamn_fid LIMIT ${limit}",
                self.columns, self.table
            );
            rows.extend(self.rows(&sql, params).await?);
            if rows.len() >= n {
                break;
            }
        }
        params.pop();
        Ok(rows)
    }

    fn err(&self, e: tokio_postgres::Error) -> EngineError {
        db_error(e, &self.entry, self.options.statement_timeout)
    }

    fn feature(&self, row: &tokio_postgres::Row) -> Result<Feature, EngineError> {
        self.read_feature(row, Feature::new)
    }

    /// A row as `make` builds it: with its GeoJSON for pages and items, without for tiles.
    fn read_feature(
        &self,
        row: &tokio_postgres::Row,
        make: MakeFeature,
    ) -> Result<Feature, EngineError> {
        let bad = |e: crate::store::StoreError| EngineError::Database(e.to_string());
        let get = |e: tokio_postgres::Error| EngineError::Database(e.to_string());
        let values = self
            .entry
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| read_value(row, i + 3, a.kind))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let wkb: Option<Vec<u8>> = row.try_get(2).map_err(get)?;
        let id: String = row.try_get(1).map_err(get)?;
        Ok(make(
            &self.entry,
            row.try_get(0).map_err(get)?,
            &id,
            &values,
            wkb.as_deref().and_then(geometry_from_wkb),
        ))
    }

    /// Runs `sql` with `params` as a prepared statement (kept per connection, so a repeated
    /// query shape is planned once), on a replica if there are any: on the primary when the
    /// replica has not replayed this version's table yet.
    async fn rows(
        &self,
        sql: &str,
        params: &compile::Params,
    ) -> Result<Vec<tokio_postgres::Row>, EngineError> {
        let (pool, replica) = self.readers.next();
        let client = pool.get().await.map_err(pool_error)?;
        match run(&client, sql, params).await {
            Err(e) if replica && e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                drop(client);
                tracing::debug!(collection = %self.entry.id, "the replica lags; reading from the primary");
                let primary = self.readers.primary.get().await.map_err(pool_error)?;
                run(&primary, sql, params).await.map_err(|e| self.err(e))
            }
            result => result.map_err(|e| self.err(e)),
        }
    }

    /// The statement that reads a page (`limit` + 1 rows, to know whether more follow) and
    /// its parameters: by keyset on `hamn_fid` after or before a cursor's feature, by offset
    /// otherwise. Public so that tests can `EXPLAIN` exactly what runs.
    pub fn page_statement(
        &self,
        q: &Query,
        start: Start,
        limit: usize,
    ) -> Result<(String, compile::Params), EngineError> {
        let mut params = compile::Params::new();
        let condition = self.condition(q, &mut params)?;
        let order = compile::order_by(&q.sort, &self.entry, &self.collations, &self.collation)
            .map_err(Self::unsupported)?;
        let take = limit.saturating_add(1);
        let (columns, table) = (&self.columns, &self.table);
        let sql = match start {
            Start::Offset(o) => format!(
                "SELECT {columns} FROM {table} WHERE {condition} ORDER BY {order} LIMIT {take} OFFSET {o}"
            ),
            Start::After(fid) => {
                params.push(Box::new(fid));
                format!(
                    "SELECT {columns} FROM {table} WHERE ({condition}) AND hamn_fid > ${} ORDER BY hamn_fid LIMIT {take}",
                    params.len()
                )
            }
            Start::Before(fid) => {
                params.push(Box::new(fid));
                format!(
                    "SELECT {columns} FROM {table} WHERE ({condition}) AND hamn_fid < ${} ORDER BY hamn_fid DESC LIMIT {take}",
                    params.len()
                )
            }
        };
        Ok((sql, params))
    }

    fn condition(&self, q: &Query, params: &mut compile::Params) -> Result<String, EngineError> {
        compile::condition(q, &self.entry, &self.collations, &self.collation, params)
            .map_err(Self::unsupported)
    }

    fn unsupported(e: compile::Unsupported) -> EngineError {
        EngineError::Unsupported(format!("the PostGIS engine cannot run this query: {e}"))
    }

    /// All matches up to `count_limit`; `None` past it. Free when nothing is tested.
    async fn count(&self, q: &Query, condition: &str, params: &compile::Params) -> Option<usize> {
        if condition == "TRUE" && q.bbox.is_empty() {
            return usize::try_from(self.entry.feature_count).ok();
        }
        let cap = self.options.count_limit;
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {condition} LIMIT {}) c",
            self.table,
            cap + 1
        );
        let rows = self.rows(&sql, params).await.ok()?;
        let n: i64 = rows.first()?.get(0);
        let n = usize::try_from(n).ok()?;
        (n <= cap).then_some(n)
    }
}

/// A row read for a tile, borrowed from it: what the layer writer takes and nothing more.
/// (Building a `Feature` per row, its packed record and its copies of the text, cost more
/// than writing the row into the tile.)
struct TileRow<'r> {
    fid: i64,
    id: &'r str,
    geometry: Option<Geom>,
    values: &'r [ValueRef<'r>],
}

impl<'r> mvt::TileFeature<'r> for &TileRow<'r> {
    fn fid(&self) -> i64 {
        self.fid
    }

    fn id(&self) -> &str {
        self.id
    }

    fn geometry(&self) -> Option<&Geom> {
        self.geometry.as_ref()
    }

    fn tag_values(&self) -> impl Iterator<Item = ValueRef<'r>> + 'r {
        self.values.iter().copied()
    }
}

fn row_error(e: tokio_postgres::Error) -> EngineError {
    EngineError::Database(e.to_string())
}

/// The JSON attributes' values of `rows` as the memory engine writes them (compact JSON
/// text), row by row: `value_cells` borrows them.
fn json_cells(
    entry: &CatalogEntry,
    rows: &[tokio_postgres::Row],
) -> Result<Vec<String>, EngineError> {
    let columns: Vec<usize> = (entry.attributes.iter().enumerate())
        .filter(|(_, a)| a.kind == AttrType::Json)
        .map(|(i, _)| i + 3)
        .collect();
    let mut out = Vec::new();
    if columns.is_empty() {
        return Ok(out);
    }
    for row in rows {
        for &c in &columns {
            let v: Option<serde_json::Value> = row.try_get(c).map_err(row_error)?;
            out.push(v.map(|v| v.to_string()).unwrap_or_default());
        }
    }
    Ok(out)
}

/// Every row's attribute values in attribute order, one row after another, borrowing the
/// rows' text and `json` (from `json_cells`).
fn value_cells<'r>(
    entry: &CatalogEntry,
    rows: &'r [tokio_postgres::Row],
    json: &'r [String],
) -> Result<Vec<ValueRef<'r>>, EngineError> {
    let mut cells = Vec::with_capacity(rows.len() * entry.attributes.len());
    let mut json = json.iter();
    for row in rows {
        for (i, a) in entry.attributes.iter().enumerate() {
            let c = i + 3;
            let v = match a.kind {
                AttrType::Integer => row
                    .try_get::<_, Option<i64>>(c)
                    .map(|v| v.map(ValueRef::Integer)),
                AttrType::Real => row
                    .try_get::<_, Option<f64>>(c)
                    .map(|v| v.map(ValueRef::Real)),
                AttrType::Text => row
                    .try_get::<_, Option<&str>>(c)
                    .map(|v| v.map(ValueRef::Text)),
                AttrType::Boolean => row
                    .try_get::<_, Option<bool>>(c)
                    .map(|v| v.map(ValueRef::Boolean)),
                AttrType::Date => row
                    .try_get::<_, Option<chrono::NaiveDate>>(c)
                    .map(|v| v.map(ValueRef::Date)),
                AttrType::DateTime => row
                    .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(c)
                    .map(|v| v.map(|t| ValueRef::DateTime(t.fixed_offset()))),
                // Null JSON is an empty text here, and `Null` as everywhere else.
                AttrType::Json => Ok(json
                    .next()
                    .filter(|t| !t.is_empty())
                    .map(|t| ValueRef::Json(t.as_str()))),
            }
            .map_err(row_error)?;
            cells.push(v.unwrap_or(ValueRef::Null));
        }
    }
    Ok(cells)
}

/// The rows of a tile's statement (`hamn_fid, hamn_id, ST_AsBinary(geom), <attributes>`)
/// with their values from `cells` (`value_cells`), `width` to a row.
fn tile_rows<'r>(
    rows: &'r [tokio_postgres::Row],
    cells: &'r [ValueRef<'r>],
    width: usize,
) -> Result<Vec<TileRow<'r>>, EngineError> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let wkb: Option<&[u8]> = row.try_get(2).map_err(row_error)?;
            Ok(TileRow {
                fid: row.try_get(0).map_err(row_error)?,
                id: row.try_get(1).map_err(row_error)?,
                geometry: wkb.and_then(geometry_from_wkb).map(Geom::from_geo),
                values: cells.get(i * width..(i + 1) * width).unwrap_or(&[]),
            })
        })
        .collect()
}

#[async_trait]
impl Source for PostgisSource {
    fn entry(&self) -> &CatalogEntry {
        &self.entry
    }

    fn engine(&self) -> EngineKind {
        EngineKind::Postgis
    }

    fn collation(&self) -> &Collation {
        &self.collation
    }

    fn summary(&self) -> &Summary {
        &self.summary
    }

    /// PostgreSQL does the work, under its own statement time limit.
    fn estimate(&self, _q: &Query) -> usize {
        0
    }

    async fn items(&self, q: &Query, start: Start, limit: usize) -> Result<Page, EngineError> {
        let (sql, params) = self.page_statement(q, start, limit)?;
        let reverse = matches!(start, Start::Before(_));
        let rows = self.rows(&sql, &params).await?;
        let more = rows.len() > limit;
        let mut features = rows
            .iter()
            .take(limit)
            .map(|r| self.feature(r))
            .collect::<Result<Vec<_>, _>>()?;
        if reverse {
            features.reverse();
        }
        // The count's statement has the condition's parameters only (no cursor's fid).
        let mut condition_params = compile::Params::new();
        let condition = self.condition(q, &mut condition_params)?;
        let (first_position, has_more, has_prev, known) = match start {
            Start::Offset(o) => (o, more, o > 0, (o == 0 && !more).then_some(features.len())),
            // The cursor came from a page whose last feature matched: there are features before.
            Start::After(_) => (0, more, true, None),
            Start::Before(_) => (0, true, more, None),
        };
        let matched = match known {
            Some(n) => Some(n),
            None => self.count(q, &condition, &condition_params).await,
        };
        // An offset past the end starts where the matches end (its `prev` link leads back to
        // the last page), as on the memory engine.
        let first_position = match (start, matched) {
            (Start::Offset(o), Some(n)) => o.min(n),
            _ => first_position,
        };
        Ok(Page {
            matched,
            features: Features::owned(features),
            first_position,
            has_more,
            has_prev,
        })
    }

    async fn item(&self, id: &str) -> Result<Option<Feature>, EngineError> {
        let params: compile::Params = vec![Box::new(id.to_string())];
        let sql = format!(
            "SELECT {} FROM {} WHERE hamn_id = $1",
            self.columns, self.table
        );
        let rows = self.rows(&sql, &params).await?;
        rows.first().map(|r| self.feature(r)).transpose()
    }

    async fn batch(&self, after: Option<i64>, limit: usize) -> Result<Features, EngineError> {
        let params: compile::Params = vec![Box::new(after.unwrap_or(i64::MIN))];
        let sql = format!(
            "SELECT {} FROM {} WHERE hamn_fid > $1 ORDER BY hamn_fid LIMIT {limit}",
            self.columns, self.table
        );
        let rows = self.rows(&sql, &params).await?;
        // A download file is written from ids, values and geometry: no GeoJSON.
        let features = rows
            .iter()
            .map(|r| self.read_feature(r, Feature::without_json))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Features::owned(features))
    }

    /// The tile's candidates as the memory engine's `mvt::layer` takes them (all, in fid
    /// order, when they are no more than `max`; else the first in priority order, more
    /// rounds while too few of them show), encoded by the same writer.
    async fn tile(
        &self,
        tile: TileId,
        opts: TileOptions,
        q: &Query,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let mut q = q.clone();
        q.bbox = vec![tile.lonlat_bounds(opts.buffer, opts.extent)];
        let mut params = compile::Params::new();
        let condition = self.condition(&q, &mut params)?;
        let max = opts.max_features;
        // Each round is a statement that reads every candidate: the first asks for the margin
        // its shapes need. A point misses the tile only in the outermost unit of the buffer,
        // a thin ring, so a collection of points needs far less than shapes that vanish.
        let points = self.entry.geometry_types.iter().all(|t| t == "Point");
        let mut k = if points {
            max + max / 64 + 1
        } else {
            mvt::first_round(max)
        };
        loop {
            // By level only when the guess is well past the cap: a tile with 1.5 times the
            // candidates it reads stops after eleven levels of sixteen.
            let crowded = q.plain()
                && self
                    .crowd
                    .as_ref()
                    .is_some_and(|c| c.at_least(&q.bbox[0], k.saturating_add(k / 2)));
            let rows = if crowded {
                self.by_level(&condition, &mut params, k.saturating_add(1))
                    .await?
            } else {
                let sql = format!(
                    "SELECT {} FROM {} WHERE {condition} ORDER BY {}, hamn_fid LIMIT {}",
                    self.columns,
                    self.table,
                    self.priority,
                    k.saturating_add(1)
                );
                self.rows(&sql, &params).await?
            };
            let json = json_cells(&self.entry, &rows)?;
            let cells = value_cells(&self.entry, &rows, &json)?;
            let mut features = tile_rows(&rows, &cells, self.entry.attributes.len())?;
            if features.len() <= max {
                features.sort_unstable_by_key(|f| f.fid);
            }
            let more = features.len() > k;
            features.truncate(k);
            let out =
                mvt::write_layer(&self.entry, tile, opts, &q, features.len(), features.iter());
            let full = out.as_ref().is_some_and(|(_, n)| *n >= max);
            if full || !more {
                return Ok(out.map(|(layer, _)| layer));
            }
            k = k.saturating_mul(2);
        }
    }
}
