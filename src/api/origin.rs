//! The server's address as its clients see it, the base of every link and page: `--public-url`
//! when the operator sets it, else the request's own Host (or absolute URI), with
//! `X-Forwarded-Proto`/`X-Forwarded-Host` and `Forwarded` honoured only when the connection comes
//! from one of `--trusted-proxies`. Headers are untrusted input: whatever is taken from them must
//! be a plain `host[:port]` and an `http`/`https` scheme, or the request is a 400, so nothing a
//! client sends reaches a link, a page or a TileJSON as it was sent.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::http::header;
use actix_web::HttpRequest;
use ipnet::IpNet;

use super::ApiError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OriginError {
    #[error("--public-url {0:?}: expected http:// or https://, a host name with an optional port, and an optional path of plain characters")]
    PublicUrl(String),
    #[error(
        "--trusted-proxies {0:?}: expected IP addresses or networks (127.0.0.1, 10.0.0.0/8, ::1)"
    )]
    Proxy(String),
}

/// How the base URL is found; one per server.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    public_url: Option<String>,
    trusted: Vec<IpNet>,
}

impl Origin {
    pub fn new(public_url: Option<&str>, trusted_proxies: &[String]) -> Result<Self, OriginError> {
        let public_url = public_url
            .map(|u| {
                let u = u.trim_end_matches('/');
                valid_public_url(u)
                    .then(|| u.to_string())
                    .ok_or_else(|| OriginError::PublicUrl(u.to_string()))
            })
            .transpose()?;
        let trusted = trusted_proxies
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                IpNet::from_str(s)
                    .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
                    .map_err(|_| OriginError::Proxy(s.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            public_url,
            trusted,
        })
    }

    /// `scheme://host[:port]` (plus the public URL's path, if it has one), without a trailing
    /// slash.
    pub fn base(&self, req: &HttpRequest) -> Result<String, ApiError> {
        if let Some(u) = &self.public_url {
            return Ok(u.clone());
        }
        let from_proxy = req
            .peer_addr()
            .is_some_and(|a| self.trusted.iter().any(|n| n.contains(&a.ip())));
        let (mut scheme, mut host) = (None, None);
        if from_proxy {
            (scheme, host) = forwarded(req);
        }
        let host = match host {
            Some(h) => h,
            None => match req.uri().authority() {
                Some(a) => a.as_str().to_string(),
                None => match req.headers().get(header::HOST) {
                    Some(h) => h
                        .to_str()
                        .map_err(|_| ApiError::BadRequest("the Host header is not text".into()))?
                        .to_string(),
                    // HTTP/1.0 without Host: the address the connection came in on.
                    None => req.app_config().local_addr().to_string(),
                },
            },
        };
        // Not quoted back: the value is what an attacker chose.
        if !valid_authority(&host) {
            return Err(ApiError::BadRequest(
                "the Host (or a trusted proxy's forwarded host) is not a host name or address with an optional port".into(),
            ));
        }
        let scheme = scheme.unwrap_or_else(|| "http".to_string());
        match scheme.to_ascii_lowercase().as_str() {
            s @ ("http" | "https") => Ok(format!("{s}://{host}")),
            _ => Err(ApiError::BadRequest(
                "the forwarded scheme is neither http nor https".into(),
            )),
        }
    }
}

impl Origin {
    /// The client's address, for limits per client: the peer, or, when the peer is a trusted
    /// proxy, the right-most address in X-Forwarded-For that is not itself a trusted proxy
    /// (the left-most entries are whatever the client wrote). None without a peer (tests).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<std::net::IpAddr> {
        let peer = req.peer_addr()?.ip();
        let trusted = |ip: &std::net::IpAddr| self.trusted.iter().any(|n| n.contains(ip));
        if !trusted(&peer) {
            return Some(peer);
        }
        let chain = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let mut client = peer;
        for hop in chain.rsplit(',') {
            match hop.trim().parse::<std::net::IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !trusted(&ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        Some(client)
    }
}

/// The scheme and host a trusted proxy passes on: `Forwarded` (RFC 7239, its first element)
/// first, else `X-Forwarded-Proto` and `X-Forwarded-Host` (their first values).
fn forwarded(req: &HttpRequest) -> (Option<String>, Option<String>) {
    let text = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (mut scheme, mut host) = (None, None);
    if let Some(f) = text("forwarded") {
        let first = f.split(',').next().unwrap_or_default();
        for pair in first.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                let v = v.trim().trim_matches('"').to_string();
                match k.trim().to_ascii_lowercase().as_str() {
                    "proto" => scheme = Some(v),
                    "host" => host = Some(v),
                    _ => {}
                }
            }
        }
    }
    let first = |s: String| s.split(',').next().unwrap_or_default().trim().to_string();
    scheme = scheme.or_else(|| text("x-forwarded-proto").map(first));
    host = host.or_else(|| text("x-forwarded-host").map(first));
    (scheme, host)
}

/// `host[:port]`: a DNS name or IPv4 address of letters, digits, dots and hyphens, or an IPv6
/// address in brackets; a port of 1 to 5 digits.
pub fn valid_authority(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn valid_public_url(u: &str) -> bool {
    let Some(rest) = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
    else {
        return false;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    valid_authority(authority)
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use rstest::rstest;

    #[rstest]
    #[case("localhost", true)]
    #[case("localhost:8080", true)]
    #[case("geodata.malmo.se", true)]
    #[case("127.0.0.1:80", true)]
    #[case("[::1]:8080", true)]
    #[case("[::1]", true)]
    #[case("", false)]
    #[case("x.example\"><script>alert(1)</script>", false)]
    #[case("x.example/evil", false)]
    #[case("a:b", false)]
    #[case("a:123456", false)]
    #[case("[nothex]:80", false)]
    #[case("user@host", false)]
    #[case("host:80:81", false)]
    fn authorities(#[case] s: &str, #[case] ok: bool) {
        assert_eq!(valid_authority(s), ok, "{s}");
    }

    fn peer(ip: &str) -> TestRequest {
        TestRequest::default().peer_addr(std::net::SocketAddr::new(ip.parse().expect("ip"), 50000))
    }

    #[test]
    fn the_client_address_is_believed_only_through_trusted_proxies() {
        let origin = Origin::new(None, &["10.0.0.0/8".into()]).expect("origin");
        let direct = peer("192.0.2.7")
            .insert_header(("X-Forwarded-For", "198.51.100.1"))
            .to_http_request();
        assert_eq!(origin.client_ip(&direct), "192.0.2.7".parse().ok());
        let proxied = peer("10.0.0.1")
            .insert_header(("X-Forwarded-For", "6.6.6.6, 198.51.100.1, 10.0.0.2"))
            .to_http_request();
        assert_eq!(origin.client_ip(&proxied), "198.51.100.1".parse().ok());
        let garbage = peer("10.0.0.1")
            .insert_header(("X-Forwarded-For", "not-an-ip"))
            .to_http_request();
        assert_eq!(origin.client_ip(&garbage), "10.0.0.1".parse().ok());
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let o = Origin::new(None, &["10.0.0.0/8, ::1".into()]).expect("origin");
        let req = |ip: &str| {
            peer(ip)
                .insert_header(("host", "internal:8080"))
                .insert_header(("x-forwarded-host", "geodata.lund.se, other"))
                .insert_header(("x-forwarded-proto", "https"))
                .to_http_request()
        };
        assert_eq!(
            o.base(&req("10.1.2.3")).expect("ok"),
            "https://geodata.lund.se"
        );
        assert_eq!(
            o.base(&req("192.0.2.1")).expect("ok"),
            "http://internal:8080"
        );
        let rfc = peer("::1")
            .insert_header(("host", "internal"))
            .insert_header((
                "forwarded",
                "for=1.2.3.4;proto=https;host=\"a.se:8443\", for=x",
            ))
            .to_http_request();
        assert_eq!(o.base(&rfc).expect("ok"), "https://a.se:8443");
    }

    #[test]
    fn hostile_headers_are_refused_not_echoed() {
        let trusted = Origin::new(None, &["127.0.0.1".into()]).expect("origin");
        for (name, value) in [
            ("x-forwarded-host", "x.example\"><script>alert(1)</script>"),
            ("x-forwarded-proto", "javascript"),
            ("host", "evil\"><img src=x>"),
        ] {
            let req = peer("127.0.0.1")
                .insert_header(("host", if name == "host" { value } else { "ok" }))
                .insert_header((name, value))
                .to_http_request();
            assert!(
                matches!(trusted.base(&req), Err(ApiError::BadRequest(_))),
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn a_public_url_wins_and_is_checked() {
        let o = Origin::new(Some("https://geodata.skane.se/hamn/"), &[]).expect("origin");
        let req = peer("10.0.0.1")
            .insert_header(("host", "evil\"><"))
            .to_http_request();
        assert_eq!(o.base(&req).expect("ok"), "https://geodata.skane.se/hamn");
        for bad in [
            "geodata.skane.se",
            "ftp://x.se",
            "https://x.se/<script>",
            "https://",
        ] {
            assert!(Origin::new(Some(bad), &[]).is_err(), "{bad}");
        }
        assert!(Origin::new(None, &["not-an-ip".into()]).is_err());
    }
}
