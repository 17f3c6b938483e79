//! Who may publish: bearer tokens for the admin API, their scopes, and a limit on failed
//! attempts per client address.
//!
//! A token is `hamn_<id>_<secret>`: the id (12 hex digits) finds the record, the secret (32
//! random bytes, base64url) proves possession. The store keeps only a random salt and
//! SHA-256(salt ‖ secret): a 256-bit random secret needs no slow password hash, and a leaked
//! records table gives nobody a token. The whole token is shown once, at creation, and never
//! logged. Comparison is constant-time. The public read API needs no token.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::catalog::CollectionId;
use crate::store::{RecordKind, Store, StoreError};
use crate::theme::SourceOrg;

const PREFIX: &str = "hamn_";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything under `/admin`: collections, uploads, sources, harvests, every job.
    Admin,
    /// Uploads, sources and metadata of the named collections only (no creating others, no
    /// harvests, no deleting); or, limited to one publisher, only that publisher's part of
    /// the theme collections named.
    Write(WriteScope),
    /// A key for the read API (when the operator asks for keys), with its quota; nothing
    /// under `/admin`.
    Read {
        #[serde(rename = "perMinute")]
        per_minute: u32,
    },
}

/// The collections a write token may change, and whether only one publisher's part of them.
///
/// Stored as before parts existed when there is no limit (`{"write": ["parking"]}`), and as
/// `{"write": {"collections": […], "sourceOrg": "1281"}}` with one: a hamn from before reads
/// no limited token as an unlimited one, it refuses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "WriteRepr", into = "WriteRepr")]
pub struct WriteScope {
    pub collections: BTreeSet<CollectionId>,
    /// Only this publisher's part of the theme collections among `collections` (upload it,
    /// remove it), and nothing else of them.
    pub source_org: Option<SourceOrg>,
}

impl WriteScope {
    /// Every part and all else of these collections.
    pub fn collections(collections: impl IntoIterator<Item = CollectionId>) -> Self {
        Self {
            collections: collections.into_iter().collect(),
            source_org: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WriteRepr {
    Collections(BTreeSet<CollectionId>),
    Part {
        collections: BTreeSet<CollectionId>,
        #[serde(rename = "sourceOrg")]
        source_org: SourceOrg,
    },
}

impl From<WriteRepr> for WriteScope {
    fn from(r: WriteRepr) -> Self {
        match r {
            WriteRepr::Collections(collections) => Self {
                collections,
                source_org: None,
            },
            WriteRepr::Part {
                collections,
                source_org,
            } => Self {
                collections,
                source_org: Some(source_org),
            },
        }
    }
}

impl From<WriteScope> for WriteRepr {
    fn from(w: WriteScope) -> Self {
        match w.source_org {
            None => WriteRepr::Collections(w.collections),
            Some(source_org) => WriteRepr::Part {
                collections: w.collections,
                source_org,
            },
        }
    }
}

impl Scope {
    pub fn is_admin(&self) -> bool {
        matches!(self, Scope::Admin)
    }

    /// May this token change the data or metadata of `id` as a whole? Not a token limited to
    /// one publisher's part: it must not replace the collection every publisher shares.
    pub fn may_write(&self, id: &CollectionId) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Write(w) => w.source_org.is_none() && w.collections.contains(id),
            Scope::Read { .. } => false,
        }
    }

    /// May this token upload or remove publisher `org`'s part of the theme collection `id`?
    pub fn may_write_part(&self, id: &CollectionId, org: &SourceOrg) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Write(w) => {
                w.collections.contains(id) && w.source_org.as_ref().is_none_or(|s| s == org)
            }
            Scope::Read { .. } => false,
        }
    }

    /// The one publisher whose parts this token is limited to, if it is.
    pub fn source_org(&self) -> Option<&SourceOrg> {
        match self {
            Scope::Write(w) => w.source_org.as_ref(),
            Scope::Admin | Scope::Read { .. } => None,
        }
    }

    /// May this token use the admin API at all (read keys may not)?
    pub fn may_publish(&self) -> bool {
        !matches!(self, Scope::Read { .. })
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::Write(w) => {
                let ids: Vec<&str> = w.collections.iter().map(|i| i.as_str()).collect();
                write!(f, "write:{}", ids.join(","))?;
                match &w.source_org {
                    Some(org) => write!(f, " (source {org}'s part only)"),
                    None => Ok(()),
                }
            }
            Scope::Read { per_minute } => write!(f, "read:{per_minute}/min"),
        }
    }
}

/// A token as stored: never the secret itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    salt: String,
    hash: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub revoked: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "this needs a token: send Authorization: Bearer <token> (made with `hamn tokens create`)"
    )]
    Missing,
    #[error("the token is not valid")]
    Invalid,
    #[error("too many failed attempts from this address; try again in {0} s")]
    TooManyFailures(u64),
    #[error("this token may not {0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| StoreError::Task(format!("no randomness from the system: {e}")))?;
    Ok(buf)
}

fn digest(salt: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret);
    h.finalize().into()
}

/// Splits `hamn_<id>_<secret>`; None for anything else.
fn split(token: &str) -> Option<(&str, Vec<u8>)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != ID_BYTES * 2 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret)
        .ok()?;
    (secret.len() == SECRET_BYTES).then_some((id, secret))
}

/// Failed attempts per client address: a token bucket of 10, refilled one every 6 s. Only
/// failures take from it. An address that has run out is refused before its token is looked
/// at, a good one too (for up to 6 s): answering a good token then would tell a guesser when
/// it had guessed right, at full speed.
struct Failures {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

const BURST: f64 = 10.0;
const REFILL: Duration = Duration::from_secs(6);
/// Addresses remembered at most; the oldest are forgotten first (a flood of addresses must
/// not grow memory without bound).
const MAX_ADDRESSES: usize = 10_000;

impl Failures {
    fn level(entry: (f64, Instant), now: Instant) -> f64 {
        let refilled = now.duration_since(entry.1).as_secs_f64() / REFILL.as_secs_f64();
        (entry.0 + refilled).min(BURST)
    }

    /// Seconds to wait when the address has no attempts left.
    fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let level = Self::level(*map.get(&ip)?, now);
        (level < 1.0).then(|| ((1.0 - level) * REFILL.as_secs_f64()).ceil() as u64)
    }

    fn record(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ADDRESSES && !map.contains_key(&ip) {
            map.retain(|_, e| Self::level(*e, now) < BURST);
            if map.len() >= MAX_ADDRESSES {
                if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.1).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let level = map.get(&ip).map_or(BURST, |e| Self::level(*e, now));
        map.insert(ip, ((level - 1.0).max(0.0), now));
    }
}

/// The tokens of one store.
pub struct Tokens {
    store: Arc<dyn Store>,
    failures: Failures,
    /// Read keys recently found good, by the SHA-256 of the key: the read API would otherwise
    /// ask the store on every request. A revoked key stops working within `KEY_CACHE`.
    recent: moka::sync::Cache<[u8; 32], TokenRecord>,
}

/// How long a read key found good is believed without asking the store again.
pub const KEY_CACHE: Duration = Duration::from_secs(10);

impl Tokens {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            failures: Failures {
                buckets: Mutex::new(HashMap::new()),
            },
            recent: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(KEY_CACHE)
                .build(),
        }
    }

    /// `verify` for the read API: a key found good within `KEY_CACHE` is not looked up again.
    /// The admin API uses `verify` itself, so a revoked token is refused there at once.
    pub async fn verify_cached(
        &self,
        presented: &str,
        client: Option<IpAddr>,
    ) -> Result<TokenRecord, AuthError> {
        let key: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        if let Some(record) = self.recent.get(&key) {
            return Ok(record);
        }
        let record = self.verify(presented, client).await?;
        self.recent.insert(key, record.clone());
        Ok(record)
    }

    /// Makes a token; returns its whole text (to be shown once) and the stored record.
    pub async fn create(
        &self,
        name: &str,
        scope: Scope,
    ) -> Result<(String, TokenRecord), AuthError> {
        let id = hex::encode(random::<ID_BYTES>()?);
        let secret = random::<SECRET_BYTES>()?;
        let salt = random::<16>()?;
        let record = TokenRecord {
            id: id.clone(),
            name: name.chars().filter(|c| !c.is_control()).take(100).collect(),
            scope,
            salt: hex::encode(salt),
            hash: hex::encode(digest(&salt, &secret)),
            created: Utc::now(),
            revoked: None,
        };
        let doc = serde_json::to_value(&record)
            .map_err(|e| StoreError::Task(format!("serialising a token: {e}")))?;
        self.store.put_record(RecordKind::Token, &id, &doc).await?;
        let text = format!(
            "{PREFIX}{id}_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        Ok((text, record))
    }

    pub async fn list(&self) -> Result<Vec<TokenRecord>, AuthError> {
        let mut out = Vec::new();
        for (key, doc) in self.store.list_records(RecordKind::Token).await? {
            match serde_json::from_value::<TokenRecord>(doc) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(token = %key, error = %e, "unreadable token record skipped")
                }
            }
        }
        out.sort_by_key(|t| t.created);
        Ok(out)
    }

    /// Revokes by id (the 12 hex digits after `hamn_`); false when there is no such token.
    /// The record stays, marked, so `list` shows what was revoked and when.
    pub async fn revoke(&self, id: &str) -> Result<bool, AuthError> {
        let Some(doc) = self.store.get_record(RecordKind::Token, id).await? else {
            return Ok(false);
        };
        let mut record: TokenRecord = serde_json::from_value(doc)
            .map_err(|e| StoreError::Task(format!("reading token {id}: {e}")))?;
        if record.revoked.is_none() {
            record.revoked = Some(Utc::now());
        }
        let doc = serde_json::to_value(&record)
            .map_err(|e| StoreError::Task(format!("serialising a token: {e}")))?;
        self.store.put_record(RecordKind::Token, id, &doc).await?;
        Ok(true)
    }

    /// Checks a presented token. Each failure from `client` counts against its allowance;
    /// with none left the answer is `TooManyFailures` before the token is even looked at.
    pub async fn verify(
        &self,
        presented: &str,
        client: Option<IpAddr>,
    ) -> Result<TokenRecord, AuthError> {
        if let Some(wait) = client.and_then(|ip| self.failures.blocked(ip)) {
            return Err(AuthError::TooManyFailures(wait));
        }
        let found = self.check(presented).await?;
        match found {
            Some(record) => Ok(record),
            None => {
                if let Some(ip) = client {
                    self.failures.record(ip);
                }
                Err(AuthError::Invalid)
            }
        }
    }

    async fn check(&self, presented: &str) -> Result<Option<TokenRecord>, AuthError> {
        let Some((id, secret)) = split(presented.trim()) else {
            return Ok(None);
        };
        let Some(doc) = self.store.get_record(RecordKind::Token, id).await? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_value::<TokenRecord>(doc) else {
            return Ok(None);
        };
        let (Ok(salt), Ok(want)) = (hex::decode(&record.salt), hex::decode(&record.hash)) else {
            return Ok(None);
        };
        let got = digest(&salt, &secret);
        let equal: bool = got.as_slice().ct_eq(want.as_slice()).into();
        Ok((equal && record.revoked.is_none()).then_some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    fn tokens() -> (tempfile::TempDir, Tokens) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path()).expect("store");
        (dir, Tokens::new(Arc::new(store)))
    }

    #[tokio::test]
    async fn a_token_works_until_revoked_and_only_its_secret_is_stored() {
        let (dir, tokens) = tokens();
        let (text, record) = tokens.create("ci", Scope::Admin).await.expect("create");
        assert!(text.starts_with("hamn_"));
        let ok = tokens.verify(&text, None).await.expect("valid");
        assert_eq!(ok.id, record.id);
        let on_disk = std::fs::read_to_string(dir.path().join("records.json")).expect("records");
        // Everything after `hamn_<id>_` (base64url has underscores of its own).
        let secret = text.splitn(3, '_').nth(2).expect("secret");
        assert_eq!(secret.len(), 43, "{text}");
        assert!(!on_disk.contains(secret), "the secret must not be stored");
        assert!(tokens.revoke(&record.id).await.expect("revoke"));
        assert!(matches!(
            tokens.verify(&text, None).await,
            Err(AuthError::Invalid)
        ));
        assert!(!tokens.revoke("000000000000").await.expect("revoke unknown"));
        let listed = tokens.list().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert!(listed[0].revoked.is_some());
    }

    #[tokio::test]
    async fn wrong_and_malformed_tokens_are_refused() {
        let (_dir, tokens) = tokens();
        let (text, _) = tokens.create("x", Scope::Admin).await.expect("create");
        let mut wrong = text.clone();
        // Change one character of the secret (keeping it valid base64url).
        let last = wrong.pop().expect("char");
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        for bad in [
            wrong.as_str(),
            "",
            "hamn_",
            "hamn_zz_zz",
            "Bearer x",
            &text[..text.len() - 1],
            &text.replace("hamn_", "hamn_0"),
        ] {
            assert!(
                matches!(tokens.verify(bad, None).await, Err(AuthError::Invalid)),
                "{bad:?} must be refused"
            );
        }
    }

    #[tokio::test]
    async fn failures_from_one_address_are_limited_and_others_are_not() {
        let (_dir, tokens) = tokens();
        let (good, _) = tokens.create("x", Scope::Admin).await.expect("create");
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..10 {
            assert!(matches!(
                tokens.verify("nope", Some(a)).await,
                Err(AuthError::Invalid)
            ));
        }
        // The eleventh attempt is refused before it is checked, even with a good token.
        assert!(matches!(
            tokens.verify(&good, Some(a)).await,
            Err(AuthError::TooManyFailures(s)) if (1..=6).contains(&s)
        ));
        assert!(tokens.verify(&good, Some(b)).await.is_ok());
    }

    #[test]
    fn scopes() {
        let parking: CollectionId = "parking".parse().expect("id");
        let noise: CollectionId = "noise".parse().expect("id");
        let write = Scope::Write(WriteScope::collections([parking.clone()]));
        assert!(write.may_write(&parking));
        assert!(!write.may_write(&noise));
        assert!(!write.is_admin());
        assert!(Scope::Admin.may_write(&noise));
        assert_eq!(write.to_string(), "write:parking");
        let json = serde_json::to_string(&write).expect("json");
        assert_eq!(json, r#"{"write":["parking"]}"#);
        assert_eq!(
            serde_json::to_string(&Scope::Admin).expect("json"),
            r#""admin""#
        );
    }

    #[test]
    fn a_scope_limited_to_one_publisher_writes_only_its_parts() {
        let bad: CollectionId = "badplatser".parse().expect("id");
        let lund: SourceOrg = "1281".parse().expect("org");
        let harryda: SourceOrg = "1401".parse().expect("org");
        let part = Scope::Write(WriteScope {
            collections: [bad.clone()].into(),
            source_org: Some(lund.clone()),
        });
        assert!(part.may_write_part(&bad, &lund));
        assert!(!part.may_write_part(&bad, &harryda));
        assert!(
            !part.may_write(&bad),
            "a part token replaced the whole collection"
        );
        assert!(!part.may_write_part(&"lekplatser".parse().expect("id"), &lund));
        assert_eq!(part.source_org(), Some(&lund));
        assert_eq!(
            part.to_string(),
            "write:badplatser (source 1281's part only)"
        );
        let json = serde_json::to_string(&part).expect("json");
        assert_eq!(
            json,
            r#"{"write":{"collections":["badplatser"],"sourceOrg":"1281"}}"#
        );
        assert_eq!(serde_json::from_str::<Scope>(&json).expect("read"), part);
        // A coordinator's token (no limit) writes every part and the whole.
        let all = Scope::Write(WriteScope::collections([bad.clone()]));
        assert!(all.may_write_part(&bad, &harryda) && all.may_write(&bad));
        // Records written before parts existed read as before.
        let old: Scope = serde_json::from_str(r#"{"write":["badplatser"]}"#).expect("old");
        assert_eq!(old, all);
        // A limit that is not an organisation is refused, not dropped.
        assert!(serde_json::from_str::<Scope>(
            r#"{"write":{"collections":["badplatser"],"sourceOrg":"Lund"}}"#
        )
        .is_err());
    }
}
