//! Vector tiles (OGC API – Tiles, TileJSON, XYZ) from the same in-memory snapshots that serve
//! features: the R-tree finds what meets a tile, `mvt` encodes it, and a memory-bounded cache
//! keeps encoded tiles. Cache keys name the versions they were made from, so an ingest makes
//! old entries unreachable at once (they age out under the size bound).

mod geometry;
pub mod mvt;
pub mod tm;
pub mod tms;

use bytes::Bytes;

use crate::engine::{EngineError, Query, Served};
pub use mvt::TileOptions;
pub use tms::TileId;

pub struct TileCache {
    cache: moka::sync::Cache<String, Bytes>,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl TileCache {
    /// A cache holding at most `max_bytes` of encoded tiles (0 turns caching off).
    pub fn new(max_bytes: u64) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|k: &String, v: &Bytes| {
                    u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
                })
                .build(),
            hits: Default::default(),
            misses: Default::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cache.policy().max_capacity() != Some(0)
    }

    /// Hits, misses (since start), and the bytes held now, for /metrics.
    pub fn stats(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.hits.load(Relaxed),
            self.misses.load(Relaxed),
            self.cache.weighted_size(),
        )
    }
}

/// The cache key: every layer's collection and version, the tile, and the filter.
fn key(layers: &[Served], tile: TileId, filter: &str) -> String {
    let mut k = String::new();
    for s in layers {
        k.push_str(s.entry().id.as_str());
        k.push('@');
        k.push_str(&s.version().to_string());
        k.push(',');
    }
    k.push_str(&format!(
        "/{}/{}/{}/{}?{filter}",
        tile.tms().id(),
        tile.z(),
        tile.x(),
        tile.y()
    ));
    k
}

/// Encodes (or takes from the cache) the tile with one layer per snapshot, each layer's
/// features chosen by its query (`queries[i]` for `layers[i]`; missing means all).
/// `filter_key` names the queries in the cache key. An empty result means no feature shows
/// in the tile.
pub async fn render(
    cache: &TileCache,
    layers: &[Served],
    tile: TileId,
    opts: TileOptions,
    queries: &[Query],
    filter_key: &str,
) -> Result<Bytes, EngineError> {
    let k = cache.enabled().then(|| key(layers, tile, filter_key));
    if let Some(k) = &k {
        if let Some(hit) = cache.cache.get(k) {
            cache
                .hits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(hit);
        }
        cache
            .misses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let all = Query::default();
    let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(layers.len());
    for (i, s) in layers.iter().enumerate() {
        if let Some(layer) = s.tile(tile, opts, queries.get(i).unwrap_or(&all)).await? {
            encoded.push(layer);
        }
    }
    let bytes = if encoded.is_empty() {
        Bytes::new()
    } else {
        Bytes::from(mvt::tile_bytes(&encoded))
    };
    // A tile cut short by its request's deadline is thrown away by the caller: never cached.
    if let (Some(k), false) = (k, queries.iter().any(Query::cancelled)) {
        cache.cache.insert(k, bytes.clone());
    }
    Ok(bytes)
}

/// The tile from the cache, if it holds it (a cached tile is cheap whatever its zoom).
pub fn cached(
    cache: &TileCache,
    layers: &[Served],
    tile: TileId,
    filter_key: &str,
) -> Option<Bytes> {
    if !cache.enabled() {
        return None;
    }
    let hit = cache.cache.get(&key(layers, tile, filter_key))?;
    cache
        .hits
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(hit)
}
