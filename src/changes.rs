//! What changed in a collection from one version to the next: worked out after each ingest by
//! comparing the two versions' features (ids, and a hash of each feature's attributes and
//! geometry), kept in the store as one record per version (the last `KEEP` per collection),
//! and chained to answer "what changed since version V" (`/collections/{id}/changes`).
//!
//! A record names the version it starts from. Versions that no record leads from — older than
//! what is kept, or skipped because another ingest committed meanwhile — cannot be answered:
//! the API says 410 and the client reads the whole collection again.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogEntry, CollectionId};
use crate::store::{RecordKind, Store, StoredFeature};

/// Changes a collection's metadata (a new version with the same features) and records that
/// nothing in its features changed, so clients' chains of changes go on through it.
pub async fn describe(
    store: &dyn Store,
    id: &CollectionId,
    meta: crate::catalog::Description,
    engine: Option<crate::catalog::EngineChoice>,
) -> crate::store::Result<CatalogEntry> {
    let d = store.set_description(id, meta, engine).await?;
    let change = Change {
        from: d.previous_version,
        to: d.entry.version,
        at: d.entry.updated,
        added: Vec::new(),
        updated: Vec::new(),
        removed: Vec::new(),
        whole: false,
    };
    put(store, id, &change).await;
    Ok(d.entry)
}

/// Records kept per collection.
pub const KEEP: usize = 20;
/// Most ids one record lists; a change larger than this says `whole` instead (read it all).
pub const MAX_IDS: usize = 50_000;
/// Largest version (in features) compared feature by feature: comparing reads both versions
/// whole, which for larger collections would cost the ingest more than it is worth. Their
/// changes are recorded as `whole`, and clients read them again.
pub const MAX_COMPARED: u64 = 250_000;

/// The change from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub from: i64,
    pub to: i64,
    /// When `to` was committed.
    pub at: DateTime<Utc>,
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    /// Too many features changed to list: a client reads the whole collection.
    #[serde(default)]
    pub whole: bool,
}

fn key(id: &CollectionId, to: i64) -> String {
    // Zero-padded, so the records of a collection sort by version.
    format!("{id}@{to:019}")
}

/// A feature's content: its attributes by name and its geometry, so a new column order alone
/// is no change.
fn fingerprint(entry: &CatalogEntry, f: &StoredFeature) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut named: Vec<(&str, String)> = entry
        .attributes
        .iter()
        .zip(&f.values)
        .map(|(a, v)| (a.name.as_str(), v.to_json().to_string()))
        .collect();
    named.sort();
    named.hash(&mut h);
    f.geometry.hash(&mut h);
    h.finish()
}

/// The features of a version, by id, as fingerprints.
pub fn fingerprints(entry: &CatalogEntry, features: &[StoredFeature]) -> HashMap<String, u64> {
    features
        .iter()
        .map(|f| (f.id.clone(), fingerprint(entry, f)))
        .collect()
}

/// The change between two versions' fingerprints.
pub fn compare(
    from: i64,
    old: &HashMap<String, u64>,
    new_entry: &CatalogEntry,
    new: &HashMap<String, u64>,
) -> Change {
    let mut added = Vec::new();
    let mut updated = Vec::new();
    let mut removed = Vec::new();
    for (id, h) in new {
        match old.get(id) {
            None => added.push(id.clone()),
            Some(o) if o != h => updated.push(id.clone()),
            Some(_) => {}
        }
    }
    for id in old.keys() {
        if !new.contains_key(id) {
            removed.push(id.clone());
        }
    }
    added.sort();
    updated.sort();
    removed.sort();
    let whole = added.len() + updated.len() + removed.len() > MAX_IDS;
    if whole {
        added.clear();
        updated.clear();
        removed.clear();
    }
    Change {
        from,
        to: new_entry.version,
        at: new_entry.updated,
        added,
        updated,
        removed,
        whole,
    }
}

/// The state of a collection before an ingest, for [`record`] after it.
pub struct Before {
    pub version: i64,
    /// `None`: too large to compare ([`MAX_COMPARED`]).
    pub fingerprints: Option<HashMap<String, u64>>,
}

/// Reads the collection as it is (its features' fingerprints); `None` when it does not exist
/// yet (everything the ingest stores is then added).
pub async fn before(store: &dyn Store, id: &CollectionId) -> Option<Before> {
    let entry = store.get(id).await.ok().flatten()?;
    if entry.feature_count > MAX_COMPARED {
        return Some(Before {
            version: entry.version,
            fingerprints: None,
        });
    }
    match store.read(id).await {
        Ok((entry, features)) => Some(Before {
            version: entry.version,
            fingerprints: Some(fingerprints(&entry, &features)),
        }),
        Err(_) => None,
    }
}

/// After a commit that made `version`: reads it, compares it with `before`, stores the change
/// and drops records beyond [`KEEP`]. Failures are logged, not returned: the ingest itself
/// succeeded, and a missing record only means clients behind it read the whole collection.
pub async fn record(store: &dyn Store, id: &CollectionId, before: Option<Before>, version: i64) {
    let too_large = |e: &CatalogEntry| Change {
        from: before.as_ref().map_or(0, |b| b.version),
        to: e.version,
        at: e.updated,
        added: Vec::new(),
        updated: Vec::new(),
        removed: Vec::new(),
        whole: true,
    };
    let large = match store.get(id).await {
        Ok(Some(e)) if e.version == version => {
            let old_too_large = before.as_ref().is_some_and(|b| b.fingerprints.is_none());
            (e.feature_count > MAX_COMPARED || old_too_large).then(|| too_large(&e))
        }
        _ => None,
    };
    if let Some(change) = large {
        put(store, id, &change).await;
        return;
    }
    let (entry, features) = match store.read(id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(collection = %id, error = %e, "changes not recorded: cannot read the new version");
            return;
        }
    };
    if entry.version != version {
        // Another ingest committed meanwhile: this version's change cannot be told apart.
        tracing::info!(collection = %id, version, "changes not recorded: a newer version came first");
        return;
    }
    let (from, old) = match before {
        Some(b) => (b.version, b.fingerprints.unwrap_or_default()),
        None => (0, HashMap::new()),
    };
    let change = compare(from, &old, &entry, &fingerprints(&entry, &features));
    put(store, id, &change).await;
}

/// Stores a change and prunes the collection's old ones; failures are logged.
async fn put(store: &dyn Store, id: &CollectionId, change: &Change) {
    let version = change.to;
    let doc = match serde_json::to_value(change) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(collection = %id, error = %e, "changes not recorded");
            return;
        }
    };
    if let Err(e) = store
        .put_record(RecordKind::Change, &key(id, version), &doc)
        .await
    {
        tracing::warn!(collection = %id, error = %e, "changes not recorded");
        return;
    }
    if let Err(e) = prune(store, id).await {
        tracing::warn!(collection = %id, error = %e, "old change records not pruned");
    }
}

async fn prune(store: &dyn Store, id: &CollectionId) -> crate::store::Result<()> {
    let prefix = format!("{id}@");
    let mut keys: Vec<String> = store
        .list_records_with_prefix(RecordKind::Change, &prefix)
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    if keys.len() > KEEP {
        let drop: Vec<String> = keys[..keys.len() - KEEP].to_vec();
        store.delete_records(RecordKind::Change, &drop).await?;
    }
    Ok(())
}

/// The changes of a collection that are kept, oldest first.
pub async fn kept(store: &dyn Store, id: &CollectionId) -> crate::store::Result<Vec<Change>> {
    let prefix = format!("{id}@");
    let mut out: Vec<Change> = store
        .list_records_with_prefix(RecordKind::Change, &prefix)
        .await?
        .into_iter()
        .filter_map(|(_, doc)| serde_json::from_value(doc).ok())
        .collect();
    out.sort_by_key(|c| c.to);
    Ok(out)
}

/// What changed from `since` to `current`, net: a feature added and removed again is not
/// listed; one removed and added again is updated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Net {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
}

/// Why a `since` cannot be answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Unknown {
    /// No kept record leads from that version to the current one.
    NoChain,
    /// A step on the way changed too much to list.
    TooMany,
}

/// Walks the kept records from `since` to `current`.
pub fn since(changes: &[Change], since: i64, current: i64) -> Result<Net, Unknown> {
    if since == current {
        return Ok(Net::default());
    }
    let by_from: HashMap<i64, &Change> = changes.iter().map(|c| (c.from, c)).collect();
    // id → (existed at `since`, exists now, changed on the way)
    let mut state: BTreeMap<String, (bool, bool, bool)> = BTreeMap::new();
    let mut at = since;
    let mut steps = 0;
    while at != current {
        let Some(c) = by_from.get(&at) else {
            return Err(Unknown::NoChain);
        };
        if c.whole {
            return Err(Unknown::TooMany);
        }
        for id in &c.added {
            let e = state.entry(id.clone()).or_insert((false, false, false));
            e.1 = true;
        }
        for id in &c.updated {
            let e = state.entry(id.clone()).or_insert((true, true, false));
            e.1 = true;
            e.2 = true;
        }
        for id in &c.removed {
            let e = state.entry(id.clone()).or_insert((true, true, false));
            e.1 = false;
        }
        at = c.to;
        steps += 1;
        if steps > changes.len() {
            return Err(Unknown::NoChain);
        }
    }
    let mut net = Net::default();
    for (id, (existed, exists, _)) in state {
        match (existed, exists) {
            (false, true) => net.added.push(id),
            (true, false) => net.removed.push(id),
            // Removed and added again counts as updated, as does an update.
            (true, true) => net.updated.push(id),
            (false, false) => {}
        }
    }
    Ok(net)
}

/// The version current at `t`: the last kept change committed at or before it.
pub fn version_at(changes: &[Change], t: DateTime<Utc>) -> Option<i64> {
    changes.iter().filter(|c| c.at <= t).map(|c| c.to).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(from: i64, to: i64, a: &[&str], u: &[&str], r: &[&str]) -> Change {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        Change {
            from,
            to,
            at: Utc::now(),
            added: v(a),
            updated: v(u),
            removed: v(r),
            whole: false,
        }
    }

    #[test]
    fn chains_are_netted() {
        let cs = vec![
            change(3, 7, &["a", "b"], &["x"], &["y"]),
            change(7, 9, &["y"], &["a"], &["b", "z"]),
        ];
        let net = since(&cs, 3, 9).expect("chain");
        assert_eq!(net.added, ["a"]);
        assert_eq!(net.updated, ["x", "y"]);
        assert_eq!(net.removed, ["z"]);
        let net = since(&cs, 7, 9).expect("one step");
        assert_eq!(
            (net.added, net.updated, net.removed),
            (
                vec!["y".to_string()],
                vec!["a".to_string()],
                vec!["b".to_string(), "z".to_string()]
            )
        );
        assert_eq!(since(&cs, 9, 9), Ok(Net::default()));
        assert_eq!(since(&cs, 5, 9), Err(Unknown::NoChain));
        let mut big = cs.clone();
        big[1].whole = true;
        assert_eq!(since(&big, 3, 9), Err(Unknown::TooMany));
    }
}
