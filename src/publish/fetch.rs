//! Downloading a publisher's URL safely: a source URL refreshed on a schedule, a DCAT catalog
//! file and the files it lists.
//!
//! A URL typed by a publisher must not reach what only the server can reach (SSRF): loopback,
//! private networks, the cloud metadata service. So:
//!
//! - only `http` and `https`, no user name or password in the URL;
//! - the host must be on the operator's allow-list, if there is one;
//! - every address is checked *after* DNS resolution, by our own resolver, which hands the
//!   connector only the addresses that pass (DNS rebinding cannot slip a second answer in:
//!   the connector connects to what the check saw); an IP-literal host (which never reaches a
//!   resolver) is checked directly; and the address each response actually came from is
//!   checked again before its body is read;
//! - redirects are followed here, not by the HTTP client, and each target is checked like the
//!   first URL;
//! - proxies from the environment are ignored (with a proxy, the connected address would be the
//!   proxy's, and the check would mean nothing);
//! - the size is limited (Content-Length first, then the bytes counted as they arrive), the
//!   whole request is limited in time, and it can be cancelled between chunks.
//!
//! The body is streamed into a file in a fresh temporary directory inside the caller's
//! directory; on any error, timeout or cancellation that directory is removed, so nothing
//! partial is left behind.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use tokio::io::AsyncWriteExt;

/// What may be fetched, how much and for how long.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Hosts that may be fetched from; empty = any host on a public address. Entries: exact
    /// names ("data.malmo.se") or "*.example.se" (any subdomain, not example.se itself). An IP
    /// literal is matched as written ("192.0.2.1", "::1"). Checked on every redirect too.
    pub allowed_hosts: Vec<String>,
    /// Non-public networks the operator explicitly allows (e.g. a municipal intranet; tests
    /// use 127.0.0.1/32). Empty by default. An address is matched as it is: an IPv4-mapped
    /// IPv6 address (::ffff:127.0.0.1) is not within 127.0.0.1/32.
    pub allowed_networks: Vec<IpNet>,
    /// The largest body accepted, in bytes (default 1 GiB).
    pub max_bytes: u64,
    /// The whole request, redirects and body included (default 10 minutes). A stalled read
    /// runs into it too.
    pub timeout: Duration,
    /// Connecting to one address (default 10 s).
    pub connect_timeout: Duration,
    /// Redirects followed before giving up (default 5).
    pub max_redirects: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allowed_hosts: Vec::new(),
            allowed_networks: Vec::new(),
            max_bytes: 1 << 30,
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            max_redirects: 5,
        }
    }
}

/// Validators from the previous download, sent as If-None-Match and If-Modified-Since.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditional {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Conditional {
    fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// What a fetch brought.
#[derive(Debug)]
pub enum Fetched {
    /// 304: the validators in [`Conditional`] still hold.
    NotModified,
    File(Download),
}

/// A downloaded file. It lives in a temporary directory that is removed when this is dropped:
/// move or copy the file out first if it is to be kept.
#[derive(Debug)]
pub struct Download {
    /// The file, inside the temporary directory, named `file_name`.
    pub path: PathBuf,
    /// Sanitised to [A-Za-z0-9._-], never empty, never starting with a dot, with an extension
    /// GDAL recognises where the Content-Type tells one.
    pub file_name: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    /// The URL after redirects.
    pub final_url: String,
    pub bytes: u64,
    _dir: tempfile::TempDir,
}

/// An address refused, and why ("a loopback address").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedAddr {
    pub addr: IpAddr,
    pub reason: String,
}

impl fmt::Display for RefusedAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}", self.addr, self.reason)
    }
}

/// Why a fetch failed. The messages are shown to publishers: they name the URL and the rule,
/// and never include a response body.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot fetch {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "refused {url}{}: hamn fetches only http:// and https:// URLs, not {scheme}:",
        via_note(.via)
    )]
    SchemeNotAllowed {
        url: String,
        scheme: String,
        via: Option<String>,
    },
    #[error(
        "refused {url}{}: {host} is not among the hosts this hamn may fetch from ({})",
        via_note(.via),
        .allowed.join(", ")
    )]
    HostNotAllowed {
        url: String,
        host: String,
        allowed: Vec<String>,
        via: Option<String>,
    },
    #[error(
        "refused {url}{}: {}; hamn fetches only from public addresses (an operator can allow a \
         network with --fetch-allow-networks)",
        via_note(.via),
        describe_refused(.host, .addrs)
    )]
    AddressNotAllowed {
        url: String,
        host: String,
        /// Never empty: every address the host had, each with its reason.
        addrs: Vec<RefusedAddr>,
        via: Option<String>,
    },
    #[error("{url} is larger than the limit of {}", human_bytes(*.limit))]
    TooLarge { url: String, limit: u64 },
    #[error("{url} did not finish downloading within {} (the limit for a whole download)", human_duration(*.limit))]
    Timeout { url: String, limit: Duration },
    #[error("{url} answered HTTP {status}{}", reason_phrase(*.status))]
    Status { status: u16, url: String },
    #[error("{url} redirects more than {limit} times")]
    TooManyRedirects { url: String, limit: usize },
    #[error("{0}")]
    Network(String),
    #[error("could not store the download: {0}")]
    Io(#[from] std::io::Error),
    #[error("the fetch was cancelled")]
    Cancelled,
}

impl FetchError {
    /// The URL is refused by the rules (malformed, scheme, user info, host, address): fetching it
    /// again cannot succeed until the URL or the operator's policy changes. Everything else
    /// (network, status, size, time) may be different next time.
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            FetchError::BadUrl { .. }
                | FetchError::SchemeNotAllowed { .. }
                | FetchError::HostNotAllowed { .. }
                | FetchError::AddressNotAllowed { .. }
        )
    }
}

fn via_note(via: &Option<String>) -> String {
    match via {
        Some(from) => format!(" (redirected from {from})"),
        None => String::new(),
    }
}

fn describe_refused(host: &str, addrs: &[RefusedAddr]) -> String {
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    match addrs {
        [one] if literal == Some(one.addr) => one.to_string(),
        _ => {
            let list: Vec<String> = addrs
                .iter()
                .map(|a| format!("{} ({})", a.addr, a.reason))
                .collect();
            format!("{host} resolves to {}", list.join(", "))
        }
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        format!("{:.1} s", d.as_secs_f64())
    } else if s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

fn reason_phrase(status: u16) -> String {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

/// True for an address on the public internet: not private, loopback, link-local (metadata),
/// unspecified, multicast, broadcast, shared (CGNAT), benchmarking, documentation or reserved,
/// and not an IPv6 address embedding such an IPv4 address (mapped, compatible, NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    why_not_public(ip).is_none()
}

/// Why an address is not public ("a loopback address"), or None if it is.
pub fn why_not_public(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4).map(str::to_owned),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// Non-public IPv4 ranges, first match wins (broadcast before 240/4).
const V4_RANGES: &[(Ipv4Addr, u8, &str)] = &[
    (
        Ipv4Addr::new(0, 0, 0, 0),
        8,
        "an unspecified (\"this network\") address",
    ),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "a private address"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "a shared (carrier-grade NAT) address",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "a loopback address"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "a link-local address (where cloud metadata services answer)",
    ),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "a private address"),
    (
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "a reserved (IETF protocol) address",
    ),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "a documentation address"),
    (
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "a reserved (6to4 relay) address",
    ),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "a private address"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "a benchmarking address"),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "a documentation address",
    ),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "a documentation address"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "a multicast address"),
    (
        Ipv4Addr::new(255, 255, 255, 255),
        32,
        "the broadcast address",
    ),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "a reserved address"),
];

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    V4_RANGES.iter().find_map(|&(net, len, reason)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        (bits & mask == u32::from(net) & mask).then_some(reason)
    })
}

fn in_v6(bits: u128, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    bits & mask == net & mask
}

fn v6_reason(ip: Ipv6Addr) -> Option<String> {
    let bits = u128::from(ip);
    let embedded =
        |kind: &str, v4: Ipv4Addr| v4_reason(v4).map(|why| format!("{kind} embedding {v4}, {why}"));
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    let fixed = |s: &str| Some(s.to_owned());
    if ip.is_unspecified() {
        return fixed("an unspecified address");
    }
    if ip.is_loopback() {
        return fixed("a loopback address");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return embedded("an IPv4-mapped IPv6 address", v4);
    }
    if in_v6(bits, 0, 96) {
        // ::a.b.c.d, deprecated since 2006 and never routed: refused whatever it embeds.
        return embedded("an IPv4-compatible IPv6 address", low_v4)
            .or_else(|| fixed("an IPv4-compatible IPv6 address (deprecated)"));
    }
    if in_v6(bits, 0x0064_ff9b << 96, 96) {
        return embedded("a NAT64 address", low_v4);
    }
    if in_v6(bits, 0x0064_ff9b_0001 << 80, 48) {
        return fixed("a local-use NAT64 address");
    }
    if in_v6(bits, 0x0100 << 112, 64) {
        return fixed("a discard-only address");
    }
    if in_v6(bits, 0x2001 << 112, 32) {
        return fixed("a Teredo tunnel address");
    }
    if in_v6(bits, 0x2001 << 112, 23) {
        return fixed("a reserved (IETF protocol) address");
    }
    if in_v6(bits, 0x2001_0db8 << 96, 32) || in_v6(bits, 0x3fff << 112, 20) {
        return fixed("a documentation address");
    }
    if in_v6(bits, 0x2002 << 112, 16) {
        let v4 = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return embedded("a 6to4 address", v4);
    }
    if in_v6(bits, 0x5f00 << 112, 16) {
        return fixed("a reserved (segment routing) address");
    }
    if in_v6(bits, 0xfc00 << 112, 7) {
        return fixed("a unique local (private) address");
    }
    if in_v6(bits, 0xfe80 << 112, 10) {
        return fixed("a link-local address");
    }
    if in_v6(bits, 0xfec0 << 112, 10) {
        return fixed("a site-local address (deprecated)");
    }
    if in_v6(bits, 0xff00 << 112, 8) {
        return fixed("a multicast address");
    }
    if !in_v6(bits, 0x2000 << 112, 3) {
        return fixed("a reserved address (outside global unicast 2000::/3)");
    }
    None
}

/// Why the policy refuses to connect to `ip`, or None if it may.
fn refusal(allowed_networks: &[IpNet], ip: IpAddr) -> Option<RefusedAddr> {
    if allowed_networks.iter().any(|net| net.contains(&ip)) {
        return None;
    }
    why_not_public(ip).map(|reason| RefusedAddr { addr: ip, reason })
}

/// Whether `host` (lower case, no trailing dot) is on the allow-list.
fn host_allowed(allowed_hosts: &[String], host: &str) -> bool {
    allowed_hosts.is_empty()
        || allowed_hosts.iter().any(|entry| {
            let entry = entry.trim().trim_end_matches('.').to_ascii_lowercase();
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            match entry.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => host == entry,
            }
        })
}

/// The checks on a URL before anything is sent to it: scheme, user info, host allow-list, and
/// the address of an IP-literal host.
fn check_url(policy: &FetchPolicy, url: &Url, from: Option<&Url>) -> Result<(), FetchError> {
    let via = from.map(Url::to_string);
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::SchemeNotAllowed {
            url: url.to_string(),
            scheme: url.scheme().to_owned(),
            via,
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        let mut shown = url.clone();
        // Not echoed back: it may be a real password.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(FetchError::BadUrl {
            url: shown.to_string(),
            reason: format!(
                "the URL{} has a user name or password in it, which hamn does not send",
                via_note(&via)
            ),
        });
    }
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host,
        _ => {
            return Err(FetchError::BadUrl {
                url: url.to_string(),
                reason: "the URL has no host".to_owned(),
            })
        }
    };
    // For http and https the URL parser has already turned every IPv4 spelling (2130706433,
    // 0x7f.1, 127.1) into dotted form, and IPv6 literals come in brackets.
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse::<IpAddr>()
        .ok();
    let name = match literal {
        Some(ip) => ip.to_string(),
        None => host.trim_end_matches('.').to_ascii_lowercase(),
    };
    if !host_allowed(&policy.allowed_hosts, &name) {
        return Err(FetchError::HostNotAllowed {
            url: url.to_string(),
            host: name,
            allowed: policy.allowed_hosts.clone(),
            via,
        });
    }
    if let Some(ip) = literal {
        if let Some(refused) = refusal(&policy.allowed_networks, ip) {
            return Err(FetchError::AddressNotAllowed {
                url: url.to_string(),
                host: name,
                addrs: vec![refused],
                via,
            });
        }
    }
    Ok(())
}

/// The resolver error when every address of a name is refused; found again in reqwest's error
/// chain and turned into [`FetchError::AddressNotAllowed`].
#[derive(Debug)]
struct ResolvedToRefused {
    host: String,
    addrs: Vec<RefusedAddr>,
}

impl fmt::Display for ResolvedToRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe_refused(&self.host, &self.addrs))
    }
}

impl std::error::Error for ResolvedToRefused {}

/// The system resolver, keeping only the addresses the policy allows. The connector connects
/// only to what this returns, so a name cannot resolve one way for the check and another way
/// for the connection.
struct CheckedResolver {
    allowed_networks: Arc<[IpNet]>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = Arc::clone(&self.allowed_networks);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut kept = Vec::new();
            let mut refused: Vec<RefusedAddr> = Vec::new();
            for addr in found {
                match refusal(&allowed, addr.ip()) {
                    None => kept.push(addr),
                    Some(r) if !refused.contains(&r) => refused.push(r),
                    Some(_) => {}
                }
            }
            if kept.is_empty() {
                if refused.is_empty() {
                    return Err(format!("{host} has no addresses").into());
                }
                return Err(ResolvedToRefused {
                    host,
                    addrs: refused,
                }
                .into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// `User-Agent`: hamn and its version, and where it comes from when Cargo.toml says.
fn user_agent() -> String {
    let repository = env!("CARGO_PKG_REPOSITORY");
    if repository.is_empty() {
        format!(
            "hamn/{} (open geodata API server)",
            env!("CARGO_PKG_VERSION")
        )
    } else {
        format!("hamn/{} (+{repository})", env!("CARGO_PKG_VERSION"))
    }
}

fn client(policy: &FetchPolicy) -> Result<reqwest::Client, FetchError> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(CheckedResolver {
            allowed_networks: policy.allowed_networks.clone().into(),
        }))
        .connect_timeout(policy.connect_timeout)
        .user_agent(user_agent())
        .build()
        .map_err(|e| FetchError::Network(format!("could not set up HTTP: {}", error_chain(&e))))
}

/// The messages of an error's causes, joined, without reqwest's own "error sending request
/// for url (…)" where a cause says more.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        next = cause.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

fn request_error(
    e: reqwest::Error,
    url: &Url,
    via: &Option<String>,
    policy: &FetchPolicy,
) -> FetchError {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(cause) = next {
        if let Some(refused) = cause.downcast_ref::<ResolvedToRefused>() {
            return FetchError::AddressNotAllowed {
                url: url.to_string(),
                host: refused.host.clone(),
                addrs: refused.addrs.clone(),
                via: via.clone(),
            };
        }
        next = cause.source();
    }
    if e.is_connect() && e.is_timeout() {
        return FetchError::Network(format!(
            "could not fetch {url}{}: no connection within {}",
            via_note(via),
            human_duration(policy.connect_timeout)
        ));
    }
    FetchError::Network(format!(
        "could not fetch {url}{}: {}",
        via_note(via),
        error_chain(&e)
    ))
}

/// Every response is checked against the address it came from, before anything of it is used.
fn check_connected(
    policy: &FetchPolicy,
    url: &Url,
    via: &Option<String>,
    remote: Option<SocketAddr>,
) -> Result<(), FetchError> {
    let remote = remote.ok_or_else(|| {
        FetchError::Network(format!(
            "could not fetch {url}: the address it was fetched from is unknown, so hamn does not \
             trust it"
        ))
    })?;
    match refusal(&policy.allowed_networks, remote.ip()) {
        None => Ok(()),
        Some(refused) => Err(FetchError::AddressNotAllowed {
            url: url.to_string(),
            host: url.host_str().unwrap_or_default().to_owned(),
            addrs: vec![refused],
            via: via.clone(),
        }),
    }
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Resolves when `cancel` is set (polled: it is a plain flag).
async fn cancelled(cancel: &AtomicBool) {
    while !cancel.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Download `url` into a new temporary directory inside `dir`, under `policy`.
///
/// Sends `cond`'s validators; a 304 is [`Fetched::NotModified`]. On any error, on timeout and
/// on cancellation (`cancel` set; checked between chunks and while waiting) nothing is left in
/// `dir`.
pub async fn fetch(
    policy: &FetchPolicy,
    url: &str,
    cond: &Conditional,
    dir: &Path,
    cancel: &AtomicBool,
) -> Result<Fetched, FetchError> {
    let start = Url::parse(url.trim()).map_err(|e| FetchError::BadUrl {
        url: url.to_owned(),
        reason: format!("it is not a valid URL ({e})"),
    })?;
    check_url(policy, &start, None)?;
    if cancel.load(Ordering::Relaxed) {
        return Err(FetchError::Cancelled);
    }
    let client = client(policy)?;
    let shown = start.to_string();
    let work = tokio::time::timeout(
        policy.timeout,
        fetch_checked(policy, &client, start, cond, dir, cancel),
    );
    tokio::select! {
        result = work => result.unwrap_or(Err(FetchError::Timeout { url: shown, limit: policy.timeout })),
        () = cancelled(cancel) => Err(FetchError::Cancelled),
    }
}

async fn fetch_checked(
    policy: &FetchPolicy,
    client: &reqwest::Client,
    mut url: Url,
    cond: &Conditional,
    dir: &Path,
    cancel: &AtomicBool,
) -> Result<Fetched, FetchError> {
    let mut via: Option<String> = None;
    let mut redirects = 0;
    let mut response = loop {
        let mut request = client.get(url.clone()).header(header::ACCEPT, "*/*");
        if let Some(etag) = cond
            .etag
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(date) = cond
            .last_modified
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            request = request.header(header::IF_MODIFIED_SINCE, date);
        }
        let response = request
            .send()
            .await
            .map_err(|e| request_error(e, &url, &via, policy))?;
        check_connected(policy, &url, &via, response.remote_addr())?;
        let status = response.status();
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            let location =
                header_string(response.headers(), header::LOCATION).ok_or_else(|| {
                    FetchError::Network(format!(
                        "{url} answered HTTP {status} (a redirect) without saying where to"
                    ))
                })?;
            if redirects >= policy.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    url: via.unwrap_or_else(|| url.to_string()),
                    limit: policy.max_redirects,
                });
            }
            let next = url.join(&location).map_err(|e| FetchError::BadUrl {
                url: location.clone(),
                reason: format!("{url} redirects to it, and it is not a valid URL ({e})"),
            })?;
            check_url(policy, &next, Some(&url))?;
            redirects += 1;
            if via.is_none() {
                via = Some(url.to_string());
            }
            url = next;
            continue;
        }
        if status == StatusCode::NOT_MODIFIED && !cond.is_empty() {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                url: url.to_string(),
            });
        }
        break response;
    };
    let too_large = || FetchError::TooLarge {
        url: url.to_string(),
        limit: policy.max_bytes,
    };
    if response
        .content_length()
        .is_some_and(|n| n > policy.max_bytes)
    {
        return Err(too_large());
    }
    let headers = response.headers();
    let etag = header_string(headers, header::ETAG);
    let last_modified = header_string(headers, header::LAST_MODIFIED);
    let content_type = header_string(headers, header::CONTENT_TYPE);
    let disposition = header_string(headers, header::CONTENT_DISPOSITION);
    let file_name = file_name(disposition.as_deref(), &url, content_type.as_deref());

    let tmp = tempfile::Builder::new()
        .prefix(".hamn-fetch-")
        .tempdir_in(dir)?;
    let path = tmp.path().join(&file_name);
    // Created synchronously: an open still in flight when the future is dropped (timeout,
    // cancel) could otherwise recreate the file after the directory is removed.
    let mut file = tokio::fs::File::from_std(std::fs::File::create(&path)?);
    let mut bytes: u64 = 0;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(FetchError::Cancelled);
        }
        let chunk = response
            .chunk()
            .await
            .map_err(|e| request_error(e, &url, &via, policy))?;
        let Some(chunk) = chunk else { break };
        bytes += chunk.len() as u64;
        if bytes > policy.max_bytes {
            return Err(too_large());
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    drop(file);
    Ok(Fetched::File(Download {
        path,
        file_name,
        etag,
        last_modified,
        content_type,
        final_url: url.to_string(),
        bytes,
        _dir: tmp,
    }))
}

/// Extensions GDAL (or hamn's DCAT reader) recognises; a name ending otherwise gets one from
/// the Content-Type.
const KNOWN_EXTENSIONS: &[&str] = &[
    "7z",
    "arrow",
    "arrows",
    "cpg",
    "csv",
    "dbf",
    "dgn",
    "dxf",
    "feather",
    "fgb",
    "geojson",
    "geojsonl",
    "geojsons",
    "geoparquet",
    "gml",
    "gpkg",
    "gpx",
    "gz",
    "json",
    "jsonl",
    "jsonld",
    "kml",
    "kmz",
    "mbtiles",
    "mid",
    "mif",
    "ndjson",
    "ods",
    "osm",
    "parquet",
    "pbf",
    "pmtiles",
    "prj",
    "rdf",
    "shp",
    "shx",
    "sqlite",
    "tab",
    "tar",
    "tgz",
    "topojson",
    "tsv",
    "ttl",
    "xls",
    "xlsx",
    "xml",
    "zip",
];

/// A media type without its parameters, in lower case (`Text/CSV; charset=utf-8` → `text/csv`).
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The extension for a Content-Type (parameters ignored), if hamn knows one.
fn extension_for(content_type: &str) -> Option<&'static str> {
    Some(match essence(content_type).as_str() {
        "application/geo+json" | "application/vnd.geo+json" | "application/json" | "text/json" => {
            "geojson"
        }
        "application/geo+json-seq" => "geojsons",
        "application/ld+json" => "jsonld",
        "application/zip" | "application/x-zip-compressed" | "application/x-zip" => "zip",
        "text/csv" | "application/csv" => "csv",
        "text/tab-separated-values" => "tsv",
        "application/geopackage+sqlite3" | "application/x-gpkg" => "gpkg",
        "application/vnd.sqlite3" | "application/x-sqlite3" => "sqlite",
        "application/vnd.google-earth.kml+xml" => "kml",
        "application/vnd.google-earth.kmz" => "kmz",
        "application/gml+xml" => "gml",
        "application/xml" | "text/xml" => "xml",
        "application/rdf+xml" => "rdf",
        "text/turtle" => "ttl",
        "application/flatgeobuf" | "application/vnd.flatgeobuf" => "fgb",
        "application/gpx+xml" => "gpx",
        "application/vnd.apache.parquet" | "application/x-parquet" => "parquet",
        "application/gzip" | "application/x-gzip" => "gz",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.oasis.opendocument.spreadsheet" => "ods",
        _ => return None,
    })
}

fn has_known_extension(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && KNOWN_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    })
}

/// The download's file name: Content-Disposition's, else the URL's last path segment;
/// sanitised; with an extension from the Content-Type if it has none GDAL knows.
fn file_name(disposition: Option<&str>, url: &Url, content_type: Option<&str>) -> String {
    let from_header = disposition
        .and_then(disposition_filename)
        .map(|n| sanitise(&n))
        .filter(|n| !n.is_empty());
    let from_url = || {
        url.path_segments()
            .and_then(|mut s| s.rfind(|seg| !seg.is_empty()))
            .map(|seg| sanitise(&String::from_utf8_lossy(&percent_decode(seg))))
            .filter(|n| !n.is_empty())
    };
    let mut name = from_header
        .or_else(from_url)
        .unwrap_or_else(|| "download".to_owned());
    if !has_known_extension(&name) {
        if let Some(ext) = content_type.and_then(extension_for) {
            name.push('.');
            name.push_str(ext);
        }
    }
    name
}

/// Only [A-Za-z0-9._-]: letters lose their accents (Förskolor → Forskolor), anything else
/// becomes one `_`; no directory part, no leading dot or dash; at most 120 characters, keeping
/// the extension.
fn sanitise(name: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::with_capacity(base.len());
    for c in base.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '-' | '_' => out.push(c),
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            _ => {
                if !out.ends_with('_') {
                    out.push('_')
                }
            }
        }
    }
    let trimmed = out
        .trim_start_matches(['.', '-', '_'])
        .trim_end_matches(['_', '.']);
    const MAX: usize = 120;
    if trimmed.len() <= MAX {
        return trimmed.to_owned();
    }
    // ASCII only by now, so byte offsets are character offsets.
    match trimmed.rsplit_once('.') {
        Some((stem, ext)) if ext.len() < 16 && !stem.is_empty() => {
            format!("{}.{ext}", &stem[..stem.len().min(MAX - ext.len() - 1)])
        }
        _ => trimmed[..MAX].to_owned(),
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The file name in a Content-Disposition value: `filename*` (RFC 5987/8187, UTF-8 or
/// ISO-8859-1) before `filename`.
fn disposition_filename(value: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for param in split_params(value).into_iter().skip(1) {
        let Some((key, val)) = param.split_once('=') else {
            continue;
        };
        let val = val.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let mut parts = val.splitn(3, '\'');
                let (Some(charset), Some(_lang), Some(encoded)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let raw = percent_decode(encoded.trim_matches('"'));
                extended = Some(if charset.eq_ignore_ascii_case("iso-8859-1") {
                    raw.iter().map(|&b| char::from(b)).collect()
                } else {
                    String::from_utf8_lossy(&raw).into_owned()
                });
            }
            "filename" => plain = Some(unquote(val)),
            _ => {}
        }
    }
    extended.or(plain).filter(|n| !n.is_empty())
}

/// A header value split at `;` outside double quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut params = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                params.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    params.push(current);
    params
}

fn unquote(val: &str) -> String {
    match val.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => val.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;

    const BODY: &str = r#"{"type":"FeatureCollection","features":[]}"#;
    const SECRET: &str = "internal secret in the error page";

    /// Two scripted HTTP/1.1 servers: one on 127.0.0.1 (the one tests may reach) and one on
    /// 127.0.0.2 (which they must not). Each counts its requests and keeps their heads.
    struct Servers {
        port: u16,
        port2: u16,
        hits: Arc<AtomicUsize>,
        hits2: Arc<AtomicUsize>,
        heads: Arc<Mutex<Vec<HashMap<String, String>>>>,
    }

    /// One pair of servers for the whole test binary (tests run in parallel; counters are only
    /// compared on paths unique to a test, see `hits_on`).
    fn servers() -> &'static Servers {
        static SERVERS: OnceLock<Servers> = OnceLock::new();
        SERVERS.get_or_init(|| {
            let one = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
            let two = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2 (Linux loopback)");
            let port = one.local_addr().expect("port").port();
            let port2 = two.local_addr().expect("port").port();
            let servers = Servers {
                port,
                port2,
                hits: Arc::default(),
                hits2: Arc::default(),
                heads: Arc::default(),
            };
            for (listener, hits) in [(one, &servers.hits), (two, &servers.hits2)] {
                let hits = Arc::clone(hits);
                let heads = Arc::clone(&servers.heads);
                std::thread::spawn(move || {
                    for stream in listener.incoming().flatten() {
                        let hits = Arc::clone(&hits);
                        let heads = Arc::clone(&heads);
                        std::thread::spawn(move || {
                            let _ = handle(stream, port, port2, &hits, &heads);
                        });
                    }
                });
            }
            servers
        })
    }

    /// How many requests reached `path` (any server); paths are unique to each test that counts.
    fn hits_on(path: &str) -> usize {
        let heads = servers().heads.lock().expect("heads lock");
        heads.iter().filter(|h| h[":path"] == path).count()
    }

    fn handle(
        stream: TcpStream,
        port: u16,
        port2: u16,
        hits: &AtomicUsize,
        heads: &Mutex<Vec<HashMap<String, String>>>,
    ) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let target = line.split(' ').nth(1).unwrap_or("/").to_owned();
        let mut head = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                head.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let path = target.split('?').next().unwrap_or("/").to_owned();
        head.insert(":path".to_owned(), target.clone());
        hits.fetch_add(1, Ordering::SeqCst);
        heads.lock().expect("heads lock").push(head.clone());
        let mut out = stream;
        let simple =
            |out: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]| {
                let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
                for (k, v) in headers {
                    text.push_str(&format!("{k}: {v}\r\n"));
                }
                text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
                out.write_all(text.as_bytes())?;
                out.write_all(body)
            };
        let redirect =
            |out: &mut TcpStream, to: String| simple(out, "302 Found", &[("Location", to)], b"");
        let chunked = |out: &mut TcpStream, total: usize| -> std::io::Result<()> {
            out.write_all(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/csv\r\n\
                  Transfer-Encoding: chunked\r\n\r\n",
            )?;
            let mut left = total;
            while left > 0 {
                let n = left.min(16 * 1024);
                out.write_all(format!("{n:x}\r\n").as_bytes())?;
                out.write_all(&vec![b'x'; n])?;
                out.write_all(b"\r\n")?;
                left -= n;
            }
            out.write_all(b"0\r\n\r\n")
        };
        match path.as_str() {
            "/data.geojson" | "/nm/data.geojson" | "/r/data.geojson" => {
                let etag = "\"v1\"".to_owned();
                if head.get("if-none-match") == Some(&etag) {
                    simple(&mut out, "304 Not Modified", &[("ETag", etag)], b"")
                } else {
                    let headers = [
                        ("ETag", etag),
                        ("Last-Modified", "Tue, 01 Oct 2024 10:00:00 GMT".to_owned()),
                        ("Content-Type", "application/geo+json".to_owned()),
                    ];
                    simple(&mut out, "200 OK", &headers, BODY.as_bytes())
                }
            }
            "/r/rel" => redirect(&mut out, "../data.geojson".to_owned()),
            "/to-127-2" => redirect(&mut out, format!("http://127.0.0.2:{port2}/data.geojson")),
            "/to-metadata" => redirect(&mut out, "http://169.254.169.254/latest/meta-data/".into()),
            "/to-file" => redirect(&mut out, "file:///etc/passwd".to_owned()),
            "/to-localhost" => redirect(&mut out, format!("http://localhost:{port}/data.geojson")),
            "/to-userinfo" => redirect(
                &mut out,
                format!("http://u:p@127.0.0.1:{port}/data.geojson"),
            ),
            "/loop" => redirect(&mut out, "/loop".to_owned()),
            p if p.starts_with("/hops/") => {
                let (prefix, n) = p.rsplit_once('/').unwrap_or_default();
                match n.parse::<u32>().unwrap_or(0) {
                    0 => simple(&mut out, "200 OK", &[], BODY.as_bytes()),
                    n => simple(
                        &mut out,
                        "301 Moved Permanently",
                        &[("Location", format!("{prefix}/{}", n - 1))],
                        b"",
                    ),
                }
            }
            "/chunked-big" => chunked(&mut out, 2 << 20),
            "/chunked-exact" | "/chunked-over" => chunked(&mut out, 100 * 1024),
            "/cl-big" => {
                out.write_all(
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5000000\r\n\r\n",
                )?;
                out.write_all(b"just a little")
            }
            "/slow" | "/slow-cancel" => {
                out.write_all(
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1000\r\n\r\n",
                )?;
                for _ in 0..1000 {
                    out.write_all(b"x")?;
                    out.flush()?;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(())
            }
            "/cd" => simple(
                &mut out,
                "200 OK",
                &[(
                    "Content-Disposition",
                    "attachment; filename=\"fallback.geojson\"; \
                     filename*=UTF-8''..%2F..%2FF%C3%B6rskolor%202024.GeoJSON"
                        .to_owned(),
                )],
                BODY.as_bytes(),
            ),
            "/cd-plain" => simple(
                &mut out,
                "200 OK",
                &[
                    (
                        "Content-Disposition",
                        "attachment; filename=\"../../secret/.hidden\"".to_owned(),
                    ),
                    ("Content-Type", "application/zip".to_owned()),
                ],
                b"PK",
            ),
            "/export" => simple(
                &mut out,
                "200 OK",
                &[("Content-Type", "text/csv; charset=utf-8".to_owned())],
                b"a,b\n1,2\n",
            ),
            "/" => simple(
                &mut out,
                "200 OK",
                &[("Content-Type", "application/json".to_owned())],
                BODY.as_bytes(),
            ),
            _ => simple(&mut out, "404 Not Found", &[], SECRET.as_bytes()),
        }
    }

    /// The tests' policy: only 127.0.0.1 may be reached.
    fn policy() -> FetchPolicy {
        FetchPolicy {
            allowed_networks: vec!["127.0.0.1/32".parse().expect("network")],
            ..FetchPolicy::default()
        }
    }

    fn url(path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", servers().port)
    }

    async fn get(policy: &FetchPolicy, url: &str, dir: &Path) -> Result<Fetched, FetchError> {
        let never = AtomicBool::new(false);
        fetch(policy, url, &Conditional::default(), dir, &never).await
    }

    fn file(fetched: Result<Fetched, FetchError>) -> Download {
        match fetched {
            Ok(Fetched::File(d)) => d,
            other => panic!("expected a file, got {other:?}"),
        }
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).expect("read dir").count()
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    #[tokio::test]
    async fn downloads_a_file_directly_not_through_the_environments_proxy() {
        let dir = tempdir();
        let before = servers().hits.load(Ordering::SeqCst);
        let d = file(get(&policy(), &url("/data.geojson"), dir.path()).await);
        assert_eq!(d.bytes, BODY.len() as u64);
        assert_eq!(std::fs::read_to_string(&d.path).expect("read"), BODY);
        assert_eq!(d.file_name, "data.geojson");
        assert_eq!(
            d.path.file_name().and_then(|n| n.to_str()),
            Some("data.geojson")
        );
        assert_eq!(d.path.parent().and_then(Path::parent), Some(dir.path()));
        assert_eq!(d.etag.as_deref(), Some("\"v1\""));
        assert_eq!(
            d.last_modified.as_deref(),
            Some("Tue, 01 Oct 2024 10:00:00 GMT")
        );
        assert_eq!(d.content_type.as_deref(), Some("application/geo+json"));
        assert_eq!(d.final_url, url("/data.geojson"));
        assert!(
            servers().hits.load(Ordering::SeqCst) > before,
            "the server saw the request"
        );
        let heads = servers().heads.lock().expect("lock").clone();
        let head = heads
            .iter()
            .find(|h| h[":path"] == "/data.geojson")
            .expect("request recorded");
        assert!(head["user-agent"].starts_with(&format!("hamn/{} (", env!("CARGO_PKG_VERSION"))));
        assert_eq!(head["accept"], "*/*");
        assert!(!head.contains_key("if-none-match"));
        drop(d);
        assert_eq!(
            entries(dir.path()),
            0,
            "the download's directory goes with it"
        );
    }

    #[tokio::test]
    async fn conditional_get_gives_not_modified() {
        let dir = tempdir();
        let never = AtomicBool::new(false);
        let same = Conditional {
            etag: Some("\"v1\"".to_owned()),
            last_modified: Some("Tue, 01 Oct 2024 10:00:00 GMT".to_owned()),
        };
        let got = fetch(
            &policy(),
            &url("/nm/data.geojson"),
            &same,
            dir.path(),
            &never,
        )
        .await;
        assert!(matches!(got, Ok(Fetched::NotModified)), "{got:?}");
        assert_eq!(entries(dir.path()), 0);
        let heads = servers().heads.lock().expect("lock").clone();
        let head = heads
            .iter()
            .find(|h| h[":path"] == "/nm/data.geojson")
            .expect("request recorded");
        assert_eq!(head["if-modified-since"], "Tue, 01 Oct 2024 10:00:00 GMT");

        let changed = Conditional {
            etag: Some("\"v0\"".to_owned()),
            last_modified: None,
        };
        let got = fetch(
            &policy(),
            &url("/nm/data.geojson"),
            &changed,
            dir.path(),
            &never,
        )
        .await;
        assert_eq!(file(got).bytes, BODY.len() as u64);
    }

    #[tokio::test]
    async fn follows_a_relative_redirect() {
        let dir = tempdir();
        let d = file(get(&policy(), &url("/r/rel"), dir.path()).await);
        assert_eq!(d.final_url, url("/data.geojson"));
        assert_eq!(d.file_name, "data.geojson");
        assert_eq!(d.bytes, BODY.len() as u64);
    }

    #[tokio::test]
    async fn redirects_are_limited() {
        let dir = tempdir();
        let five = FetchPolicy {
            max_redirects: 5,
            ..policy()
        };
        let d = file(get(&five, &url("/hops/a/5"), dir.path()).await);
        assert_eq!(d.final_url, url("/hops/a/0"));
        drop(d);
        let err = get(&five, &url("/hops/b/6"), dir.path())
            .await
            .expect_err("6 > 5");
        assert!(
            matches!(err, FetchError::TooManyRedirects { limit: 5, .. }),
            "{err:?}"
        );
        assert_eq!(
            hits_on("/hops/b/0"),
            0,
            "the sixth redirect is not followed"
        );
        assert_eq!(hits_on("/hops/b/1"), 1);
        let err = get(&five, &url("/loop"), dir.path())
            .await
            .expect_err("loop");
        assert!(
            matches!(err, FetchError::TooManyRedirects { .. }),
            "{err:?}"
        );
        assert!(!err.is_refused());
        assert!(err.to_string().contains("more than 5 times"), "{err}");
        assert_eq!(entries(dir.path()), 0);
    }

    fn assert_address_refused(result: Result<Fetched, FetchError>, addr: &str) -> FetchError {
        let err = result.expect_err("must be refused");
        match &err {
            FetchError::AddressNotAllowed { addrs, .. } => {
                let addr: IpAddr = addr.parse().expect("test address");
                assert!(addrs.iter().any(|a| a.addr == addr), "{err:?}");
            }
            other => panic!("expected AddressNotAllowed for {addr}, got {other:?}: {other}"),
        }
        assert!(err.is_refused());
        assert!(err.to_string().contains("--fetch-allow-networks"), "{err}");
        err
    }

    #[tokio::test]
    async fn loopback_is_refused_without_an_allowance() {
        let dir = tempdir();
        let strict = FetchPolicy::default();
        let target = url("/direct-refused");
        let err = assert_address_refused(get(&strict, &target, dir.path()).await, "127.0.0.1");
        assert_eq!(
            err.to_string(),
            format!(
                "refused {target}: 127.0.0.1 is a loopback address; hamn fetches only from public \
                 addresses (an operator can allow a network with --fetch-allow-networks)"
            )
        );
        assert_eq!(hits_on("/direct-refused"), 0);

        // The decimal spelling of 127.0.0.1: the URL parser makes it the IPv4 literal.
        let decimal = format!("http://2130706433:{}/decimal-refused", servers().port);
        let parsed = Url::parse(&decimal).expect("url");
        assert_eq!(parsed.host_str(), Some("127.0.0.1"));
        assert_address_refused(get(&strict, &decimal, dir.path()).await, "127.0.0.1");
        assert_eq!(hits_on("/decimal-refused"), 0);

        // And a name that resolves to loopback: refused after resolution, naming the address.
        // Debian's /etc/hosts gives localhost ::1 as well, before or after 127.0.0.1.
        let named = format!("http://localhost:{}/localhost-refused", servers().port);
        let err = assert_address_refused(get(&strict, &named, dir.path()).await, "127.0.0.1");
        let text = err.to_string();
        assert!(text.contains("localhost resolves to "), "{err}");
        assert!(text.contains("127.0.0.1 (a loopback address)"), "{err}");
        if let FetchError::AddressNotAllowed { addrs, .. } = &err {
            assert!(addrs.iter().all(|a| a.addr.is_loopback()), "{err:?}");
        }
        assert_eq!(hits_on("/localhost-refused"), 0);
        assert_eq!(entries(dir.path()), 0);
    }

    #[tokio::test]
    async fn a_name_is_connected_only_to_its_allowed_addresses() {
        // localhost has 127.0.0.1 (allowed in the test policy) and maybe ::1 (not): the
        // resolver keeps 127.0.0.1 and the download works.
        let dir = tempdir();
        let named = format!("http://localhost:{}/data.geojson", servers().port);
        let d = file(get(&policy(), &named, dir.path()).await);
        assert_eq!(d.bytes, BODY.len() as u64);
    }

    #[tokio::test]
    async fn redirect_to_another_loopback_address_is_refused() {
        let dir = tempdir();
        let before = servers().hits2.load(Ordering::SeqCst);
        let from = url("/to-127-2");
        let err = assert_address_refused(get(&policy(), &from, dir.path()).await, "127.0.0.2");
        assert_eq!(
            err.to_string(),
            format!(
                "refused http://127.0.0.2:{}/data.geojson (redirected from {from}): 127.0.0.2 is a \
                 loopback address; hamn fetches only from public addresses (an operator can allow \
                 a network with --fetch-allow-networks)",
                servers().port2
            )
        );
        assert_eq!(
            servers().hits2.load(Ordering::SeqCst),
            before,
            "127.0.0.2 never reached"
        );
        assert_eq!(entries(dir.path()), 0);

        // The refusal is the policy's, not a dead server: allowed, 127.0.0.2 answers.
        let wider = FetchPolicy {
            allowed_networks: vec!["127.0.0.0/8".parse().expect("net")],
            ..policy()
        };
        let d = file(get(&wider, &from, dir.path()).await);
        assert_eq!(
            d.final_url,
            format!("http://127.0.0.2:{}/data.geojson", servers().port2)
        );
        assert!(servers().hits2.load(Ordering::SeqCst) > before);
    }

    #[tokio::test]
    async fn metadata_and_other_ip_literals_are_refused_before_connecting() {
        let dir = tempdir();
        let err = assert_address_refused(
            get(&policy(), &url("/to-metadata"), dir.path()).await,
            "169.254.169.254",
        );
        assert!(err.to_string().contains("metadata"), "{err}");
        let port = servers().port;
        for (target, addr) in [
            // Only addresses on this machine here, so that a broken check sends nothing
            // elsewhere; the rest go through the same check without any I/O below.
            (format!("http://[::1]:{port}/v6-refused"), "::1"),
            (
                format!("http://[::ffff:127.0.0.1]:{port}/v6-refused"),
                "::ffff:127.0.0.1",
            ),
            (format!("http://0.0.0.0:{port}/v6-refused"), "0.0.0.0"),
            (format!("http://127.0.0.2:{port}/v6-refused"), "127.0.0.2"),
            (format!("http://0x7f000002:{port}/v6-refused"), "127.0.0.2"),
        ] {
            assert_address_refused(get(&policy(), &target, dir.path()).await, addr);
        }
        for (target, addr) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://10.0.0.1/", "10.0.0.1"),
            ("http://192.168.1.1/", "192.168.1.1"),
            ("http://100.100.100.200/", "100.100.100.200"),
            ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
            ("http://[fe80::1]/", "fe80::1"),
            ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1"),
            ("http://[2002:a9fe:a9fe::]/", "2002:a9fe:a9fe::"),
            ("http://255.255.255.255/", "255.255.255.255"),
            ("https://224.0.0.1/", "224.0.0.1"),
            ("http://[::ffff:a9fe:a9fe]/", "::ffff:169.254.169.254"),
        ] {
            let parsed = Url::parse(target).expect("url");
            let checked = check_url(&policy(), &parsed, None);
            assert_address_refused(checked.map(|()| Fetched::NotModified), addr);
        }
        assert_eq!(hits_on("/v6-refused"), 0);
        assert_eq!(entries(dir.path()), 0);
    }

    #[tokio::test]
    async fn only_http_and_https_without_credentials() {
        let dir = tempdir();
        for target in [
            "file:///etc/passwd",
            "gopher://127.0.0.1:70/_x",
            "ftp://127.0.0.1/x",
        ] {
            let err = get(&policy(), target, dir.path()).await.expect_err(target);
            assert!(
                matches!(err, FetchError::SchemeNotAllowed { .. }),
                "{err:?}"
            );
            assert!(err.is_refused());
        }
        let err = get(&policy(), &url("/to-file"), dir.path())
            .await
            .expect_err("file:");
        match &err {
            FetchError::SchemeNotAllowed { url, scheme, via } => {
                assert_eq!(
                    (url.as_str(), scheme.as_str()),
                    ("file:///etc/passwd", "file")
                );
                assert_eq!(via.as_deref(), Some(super::tests::url("/to-file").as_str()));
            }
            other => panic!("expected SchemeNotAllowed, got {other:?}"),
        }

        let with_password = format!("http://user:hunter2@127.0.0.1:{}/creds", servers().port);
        let err = get(&policy(), &with_password, dir.path())
            .await
            .expect_err("userinfo");
        assert!(matches!(err, FetchError::BadUrl { .. }), "{err:?}");
        assert!(err.is_refused());
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(hits_on("/creds"), 0);
        let err = get(&policy(), &url("/to-userinfo"), dir.path())
            .await
            .expect_err("userinfo");
        assert!(matches!(err, FetchError::BadUrl { .. }), "{err:?}");

        let err = get(&policy(), "not a url", dir.path())
            .await
            .expect_err("bad");
        assert!(matches!(err, FetchError::BadUrl { .. }), "{err:?}");
        assert_eq!(entries(dir.path()), 0);
    }

    #[tokio::test]
    async fn allowed_hosts_apply_to_redirects_too() {
        let dir = tempdir();
        let listed = FetchPolicy {
            allowed_hosts: vec!["127.0.0.1".to_owned()],
            ..policy()
        };
        let d = file(get(&listed, &url("/data.geojson"), dir.path()).await);
        assert_eq!(d.bytes, BODY.len() as u64);
        drop(d);

        let named = format!("http://localhost:{}/hosts-refused", servers().port);
        let err = get(&listed, &named, dir.path())
            .await
            .expect_err("not listed");
        match &err {
            FetchError::HostNotAllowed { host, via, .. } => {
                assert_eq!(host, "localhost");
                assert!(via.is_none());
            }
            other => panic!("expected HostNotAllowed, got {other:?}"),
        }
        assert!(err.is_refused());
        assert!(err.to_string().contains("(127.0.0.1)"), "{err}");
        assert_eq!(hits_on("/hosts-refused"), 0);

        let err = get(&listed, &url("/to-localhost"), dir.path())
            .await
            .expect_err("redirect");
        assert!(
            matches!(&err, FetchError::HostNotAllowed { host, via: Some(_), .. } if host == "localhost"),
            "{err:?}"
        );
        assert_eq!(entries(dir.path()), 0);
    }

    #[test]
    fn the_client_ignores_proxies_from_the_environment() {
        // With a proxy the connected address would be the proxy's, and the address checks
        // would check the wrong thing. reqwest's Debug lists the proxies a client would use;
        // a client built the default way lists the environment's matcher.
        let ours = format!("{:?}", client(&policy()).expect("client"));
        assert!(!ours.contains("proxies"), "{ours}");
        let default = reqwest::Client::builder().build().expect("default client");
        assert!(format!("{default:?}").contains("proxies"));
    }

    #[test]
    fn host_patterns() {
        let list = vec!["data.malmo.se".to_owned(), "*.Example.se".to_owned()];
        for (host, ok) in [
            ("data.malmo.se", true),
            ("malmo.se", false),
            ("evil-data.malmo.se", false),
            ("data.malmo.se.evil.com", false),
            ("a.example.se", true),
            ("a.b.example.se", true),
            ("example.se", false),
            ("badexample.se", false),
            (".example.se", false),
        ] {
            assert_eq!(host_allowed(&list, host), ok, "{host}");
        }
        assert!(host_allowed(&[], "anything.se"));
        assert!(host_allowed(&["[::1]".to_owned()], "::1"));
    }

    #[tokio::test]
    async fn sizes_are_limited_both_by_content_length_and_by_counting() {
        let dir = tempdir();
        let small = FetchPolicy {
            max_bytes: 1 << 20,
            ..policy()
        };
        let err = get(&small, &url("/cl-big"), dir.path())
            .await
            .expect_err("too large");
        assert!(
            matches!(err, FetchError::TooLarge { limit, .. } if limit == 1 << 20),
            "{err:?}"
        );
        assert!(err.to_string().contains("1 MiB"), "{err}");
        assert!(!err.is_refused());
        assert_eq!(entries(dir.path()), 0);

        let err = get(&small, &url("/chunked-big"), dir.path())
            .await
            .expect_err("too large");
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
        assert_eq!(entries(dir.path()), 0, "the partial file is removed");

        // Exactly at the limit is fine, one byte under it is not: by Content-Length ...
        let exact = FetchPolicy {
            max_bytes: BODY.len() as u64,
            ..policy()
        };
        assert_eq!(
            file(get(&exact, &url("/data.geojson"), dir.path()).await).bytes,
            exact.max_bytes
        );
        let under = FetchPolicy {
            max_bytes: BODY.len() as u64 - 1,
            ..policy()
        };
        let err = get(&under, &url("/data.geojson"), dir.path())
            .await
            .expect_err("1 over");
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");

        // ... and by counting a body without one.
        let exact = FetchPolicy {
            max_bytes: 100 * 1024,
            ..policy()
        };
        let d = file(get(&exact, &url("/chunked-exact"), dir.path()).await);
        assert_eq!(d.bytes, 100 * 1024);
        assert_eq!(std::fs::metadata(&d.path).expect("size").len(), 100 * 1024);
        assert_eq!(d.file_name, "chunked-exact.csv");
        drop(d);
        let under = FetchPolicy {
            max_bytes: 100 * 1024 - 1,
            ..policy()
        };
        let err = get(&under, &url("/chunked-over"), dir.path())
            .await
            .expect_err("1 over");
        assert!(matches!(err, FetchError::TooLarge { .. }), "{err:?}");
        assert_eq!(entries(dir.path()), 0);
    }

    #[tokio::test]
    async fn a_slow_download_times_out_and_leaves_nothing() {
        let dir = tempdir();
        let quick = FetchPolicy {
            timeout: Duration::from_millis(700),
            ..policy()
        };
        let started = Instant::now();
        let err = get(&quick, &url("/slow"), dir.path())
            .await
            .expect_err("timeout");
        assert!(matches!(err, FetchError::Timeout { .. }), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(err.to_string().contains("0.7 s"), "{err}");
        assert!(!err.is_refused());
        assert_eq!(entries(dir.path()), 0);
    }

    #[tokio::test]
    async fn cancel_stops_a_download() {
        let dir = tempdir();
        let cancel = Arc::new(AtomicBool::new(false));
        let setter = Arc::clone(&cancel);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            setter.store(true, Ordering::Relaxed);
        });
        let started = Instant::now();
        let got = fetch(
            &policy(),
            &url("/slow-cancel"),
            &Conditional::default(),
            dir.path(),
            &cancel,
        )
        .await;
        assert!(matches!(got, Err(FetchError::Cancelled)), "{got:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(entries(dir.path()), 0);

        // Already cancelled: nothing is sent.
        let got = fetch(
            &policy(),
            &url("/cancelled-early"),
            &Conditional::default(),
            dir.path(),
            &cancel,
        )
        .await;
        assert!(matches!(got, Err(FetchError::Cancelled)), "{got:?}");
        assert_eq!(hits_on("/cancelled-early"), 0);
    }

    #[tokio::test]
    async fn http_errors_do_not_show_the_body() {
        let dir = tempdir();
        let err = get(&policy(), &url("/missing"), dir.path())
            .await
            .expect_err("404");
        assert!(
            matches!(err, FetchError::Status { status: 404, .. }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("{} answered HTTP 404 Not Found", url("/missing"))
        );
        assert!(!err.to_string().contains(SECRET));
        assert!(!err.is_refused());
        assert_eq!(entries(dir.path()), 0);

        // Nothing listening: a network error, not a refusal.
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let err = get(&policy(), &format!("http://127.0.0.1:{port}/"), dir.path())
            .await
            .expect_err("refused connection");
        assert!(matches!(err, FetchError::Network(_)), "{err:?}");
        assert!(!err.is_refused());
    }

    #[tokio::test]
    async fn file_names_come_from_the_response() {
        let dir = tempdir();
        let d = file(get(&policy(), &url("/cd"), dir.path()).await);
        assert_eq!(d.file_name, "Forskolor_2024.GeoJSON");
        let d = file(get(&policy(), &url("/cd-plain"), dir.path()).await);
        assert_eq!(d.file_name, "hidden.zip");
        let d = file(get(&policy(), &url("/export?format=csv"), dir.path()).await);
        assert_eq!(d.file_name, "export.csv");
        let d = file(get(&policy(), &url("/"), dir.path()).await);
        assert_eq!(d.file_name, "download.geojson");
    }

    #[test]
    fn file_names_are_sanitised() {
        let u = |s: &str| Url::parse(s).expect("url");
        let cases: &[(Option<&str>, &str, Option<&str>, &str)] = &[
            (None, "http://x/a/b/Skolor.gpkg", None, "Skolor.gpkg"),
            (None, "http://x/a/b/", Some("application/zip"), "b.zip"),
            (None, "http://x/", None, "download"),
            (None, "http://x/", Some("text/turtle"), "download.ttl"),
            (
                None,
                "http://x/api.php?f=1",
                Some("application/ld+json"),
                "api.php.jsonld",
            ),
            (
                None,
                "http://x/d%C3%A4ta%20set",
                Some("application/flatgeobuf"),
                "data_set.fgb",
            ),
            (None, "http://x/..%2F..%2Fetc%2Fpasswd", None, "passwd"),
            (None, "http://x/...", Some("text/csv"), "download.csv"),
            (None, "http://x/-rf", None, "rf"),
            (None, "http://x/a.KML", Some("text/plain"), "a.KML"),
            (
                None,
                "http://x/gml",
                Some("application/gml+xml; subtype=gml/3.2"),
                "gml.gml",
            ),
            (None, "http://x/x", Some("application/xml"), "x.xml"),
            (None, "http://x/x", Some("application/rdf+xml"), "x.rdf"),
            (
                None,
                "http://x/x",
                Some("application/vnd.google-earth.kml+xml"),
                "x.kml",
            ),
            (
                None,
                "http://x/x",
                Some("application/geopackage+sqlite3"),
                "x.gpkg",
            ),
            (Some("inline"), "http://x/y.csv", None, "y.csv"),
            (
                Some("attachment; filename=plain.csv"),
                "http://x/y",
                None,
                "plain.csv",
            ),
            (
                Some("attachment; filename=\"a;b\\\".zip\""),
                "http://x/y",
                None,
                "a_b_.zip",
            ),
            (
                Some("attachment; filename*=iso-8859-1'sv'G%F6teborg.shp"),
                "http://x/",
                None,
                "Goteborg.shp",
            ),
            (
                Some("attachment; filename=\"C:\\\\data\\\\..\\\\x.gml\""),
                "http://x/",
                None,
                "x.gml",
            ),
            (
                Some("attachment; filename=\"/\""),
                "http://x/fromurl.csv",
                None,
                "fromurl.csv",
            ),
        ];
        for (disposition, url, content_type, want) in cases {
            assert_eq!(
                file_name(*disposition, &u(url), *content_type),
                *want,
                "{url} {disposition:?}"
            );
        }
        let long = format!("http://x/{}.geojson", "a".repeat(300));
        let name = file_name(None, &u(&long), None);
        assert_eq!(name.len(), 120);
        assert!(name.ends_with("a.geojson"));
    }

    #[test]
    fn the_connected_address_is_checked_too() {
        let target = Url::parse("http://rebinding.example/x").expect("url");
        let remote = |s: &str| Some(s.parse::<SocketAddr>().expect("addr"));
        assert!(check_connected(&policy(), &target, &None, remote("127.0.0.1:80")).is_ok());
        assert!(check_connected(
            &policy(),
            &target,
            &None,
            remote("192.0.2.0:80").map(|_| { "8.8.8.8:443".parse().expect("addr") })
        )
        .is_ok());
        let err =
            check_connected(&policy(), &target, &None, remote("10.1.2.3:80")).expect_err("private");
        assert!(
            err.to_string()
                .contains("rebinding.example resolves to 10.1.2.3 (a private address)"),
            "{err}"
        );
        let err = check_connected(&policy(), &target, &None, remote("[::ffff:127.0.0.1]:80"))
            .expect_err("mapped");
        assert!(err.is_refused());
        assert!(check_connected(&policy(), &target, &None, None).is_err());
    }

    #[test]
    fn public_and_non_public_addresses() {
        // Both sides of each boundary.
        let cases: &[(&str, bool)] = &[
            ("0.0.0.0", false),
            ("0.255.255.255", false),
            ("1.0.0.0", true),
            ("1.1.1.1", true),
            ("9.255.255.255", true),
            ("10.0.0.0", false),
            ("10.255.255.255", false),
            ("11.0.0.0", true),
            ("100.63.255.255", true),
            ("100.64.0.0", false),
            ("100.127.255.255", false),
            ("100.128.0.0", true),
            ("126.255.255.255", true),
            ("127.0.0.1", false),
            ("127.255.255.255", false),
            ("128.0.0.0", true),
            ("169.253.255.255", true),
            ("169.254.0.0", false),
            ("169.254.169.254", false),
            ("169.254.255.255", false),
            ("169.255.0.0", true),
            ("172.15.255.255", true),
            ("172.16.0.0", false),
            ("172.31.255.255", false),
            ("172.32.0.0", true),
            ("191.255.255.255", true),
            ("192.0.0.0", false),
            ("192.0.0.255", false),
            ("192.0.1.0", true),
            ("192.0.2.0", false),
            ("192.0.2.255", false),
            ("192.0.3.0", true),
            ("192.88.98.255", true),
            ("192.88.99.0", false),
            ("192.88.100.0", true),
            ("192.167.255.255", true),
            ("192.168.0.0", false),
            ("192.168.255.255", false),
            ("192.169.0.0", true),
            ("198.17.255.255", true),
            ("198.18.0.0", false),
            ("198.19.255.255", false),
            ("198.20.0.0", true),
            ("198.51.99.255", true),
            ("198.51.100.0", false),
            ("198.51.101.0", true),
            ("203.0.112.255", true),
            ("203.0.113.0", false),
            ("203.0.114.0", true),
            ("223.255.255.255", true),
            ("224.0.0.0", false),
            ("239.255.255.255", false),
            ("240.0.0.0", false),
            ("255.255.255.254", false),
            ("255.255.255.255", false),
            ("194.71.11.69", true),
            // IPv6
            ("::", false),
            ("::1", false),
            ("::2", false),
            ("::127.0.0.1", false),
            ("::8.8.8.8", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:8.8.8.8", true),
            ("::fffe:ffff:ffff", false),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b::808:808", true),
            ("64:ff9b:1::1", false),
            ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("100::1", false),
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2000::", true),
            ("2001::1", false),
            ("2001:1ff:ffff::", false),
            ("2001:200::", true),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db8::", false),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2001:db9::", true),
            ("2001:4860:4860::8888", true),
            ("2001:6b0:e:4a::1", true),
            ("2002:7f00:1::", false),
            ("2002:a00:1::", false),
            ("2002:808:808::", true),
            ("2003::", true),
            ("3ffe:ffff::", true),
            ("3fff::", false),
            ("3fff:fff:ffff::", false),
            ("3fff:1000::", true),
            ("4000::", false),
            ("5f00::1", false),
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fc00::", false),
            ("fd00:ec2::254", false),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fe80::", false),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fec0::", false),
            ("ff00::", false),
            ("ff02::1", false),
        ];
        for (addr, public) in cases {
            let ip: IpAddr = addr.parse().expect("test address");
            assert_eq!(is_public(ip), *public, "{addr}: {:?}", why_not_public(ip));
        }
        assert_eq!(
            why_not_public("::ffff:127.0.0.1".parse().expect("addr")).as_deref(),
            Some("an IPv4-mapped IPv6 address embedding 127.0.0.1, a loopback address")
        );
        assert_eq!(
            why_not_public("2002:a9fe:a9fe::".parse().expect("addr")).as_deref(),
            Some(
                "a 6to4 address embedding 169.254.169.254, a link-local address (where cloud \
                 metadata services answer)"
            )
        );
    }

    #[test]
    fn allowed_networks_open_exactly_their_addresses() {
        let nets: Vec<IpNet> = vec!["10.20.0.0/16".parse().expect("net")];
        assert!(refusal(&nets, "10.20.255.255".parse().expect("ip")).is_none());
        assert!(refusal(&nets, "10.21.0.0".parse().expect("ip")).is_some());
        assert!(refusal(&nets, "8.8.8.8".parse().expect("ip")).is_none());
        assert!(refusal(&[], "10.20.0.1".parse().expect("ip")).is_some());
    }

    #[test]
    fn limits_in_words() {
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 min");
        assert_eq!(human_duration(Duration::from_secs(10)), "10 s");
        let d = FetchPolicy::default();
        assert_eq!((d.max_bytes, d.max_redirects), (1 << 30, 5));
        assert_eq!(
            (d.timeout, d.connect_timeout),
            (Duration::from_secs(600), Duration::from_secs(10))
        );
        assert!(d.allowed_hosts.is_empty() && d.allowed_networks.is_empty());
    }
}
