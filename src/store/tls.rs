//! TLS to PostgreSQL (rustls), as libpq's `sslmode` and `sslrootcert` describe it in the
//! database URL. Managed PostgreSQL services usually insist on TLS; tokio-postgres alone knows
//! only `disable`, `prefer` and `require`, and refuses `sslrootcert` as an unknown option, so
//! both are read here and the rest of the URL is left to tokio-postgres.
//!
//! | `sslmode`     | encrypted            | server certificate checked             |
//! |---------------|----------------------|----------------------------------------|
//! | `disable`     | no                   | —                                      |
//! | `prefer` (default, as in libpq) | if the server offers it | no                 |
//! | `require`     | yes                  | no; against `sslrootcert` if given (as libpq does) |
//! | `verify-ca`   | yes                  | chain, against `sslrootcert` or the system's roots |
//! | `verify-full` | yes                  | chain and host name                    |

use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("database URL: {0}")]
    Url(String),
    #[error("database URL: {0}")]
    Config(#[from] tokio_postgres::Error),
    #[error("sslrootcert {path}: {reason}")]
    RootCert { path: String, reason: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(v: &str) -> Result<Self, TlsError> {
        Ok(match v {
            "disable" => Mode::Disable,
            // `allow` tries without TLS first; hamn treats it as `prefer`, which tries TLS
            // first: either way an unencrypted server is accepted.
            "allow" | "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(TlsError::Url(format!(
                    "sslmode={other}: expected disable, prefer, require, verify-ca or verify-full"
                )))
            }
        })
    }

    /// What tokio-postgres is told: it encrypts or not; checking is the connector's part.
    fn for_tokio_postgres(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// The URL without `sslmode` and `sslrootcert`, and those two.
fn split(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut mode, mut root) = (None, None);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((head, query)) = url.split_once('?') else {
            return (url.to_string(), None, None);
        };
        let mut kept = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "sslmode" => mode = Some(v.into_owned()),
                "sslrootcert" => root = Some(v.into_owned()),
                _ => {
                    kept.append_pair(&k, &v);
                }
            }
        }
        let kept = kept.finish();
        let rest = if kept.is_empty() {
            head.to_string()
        } else {
            format!("{head}?{kept}")
        };
        (rest, mode, root)
    } else {
        // key=value form; these two keys' values are taken unquoted.
        let mut kept = Vec::new();
        for part in url.split_whitespace() {
            match part.split_once('=') {
                Some(("sslmode", v)) => mode = Some(v.to_string()),
                Some(("sslrootcert", v)) => root = Some(v.to_string()),
                _ => kept.push(part),
            }
        }
        (kept.join(" "), mode, root)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(path: Option<&str>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    match path {
        Some(path) => {
            let bad = |reason: String| TlsError::RootCert {
                path: path.to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            for c in certs {
                store.add(c).map_err(|e| bad(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                // A system store can hold certificates rustls cannot use; they are skipped.
                let _ = store.add(c);
            }
        }
    }
    Ok(store)
}

/// The configuration and TLS connector for a database URL.
pub fn connector(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), TlsError> {
    let (rest, mode, root) = split(url);
    let mode = mode.as_deref().map_or(Ok(Mode::Prefer), Mode::parse)?;
    let mut config = tokio_postgres::Config::from_str(&rest)?;
    config.ssl_mode(mode.for_tokio_postgres());
    // A server that does not answer must not hang a start-up or a refresh: libpq waits for
    // ever by default; the URL's connect_timeout still wins.
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root.as_deref()) {
        (Mode::Disable | Mode::Prefer, _) | (Mode::Require, None) => Arc::new(Libpq {
            chain: None,
            provider,
        }),
        (Mode::Require | Mode::VerifyCa, root) => Arc::new(Libpq {
            chain: Some(web_pki(root, provider.clone())?),
            provider,
        }),
        (Mode::VerifyFull, root) => web_pki(root, provider)?,
    };
    let tls = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, MakeRustlsConnect::new(tls)))
}

fn web_pki(
    root: Option<&str>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots(root)?), provider)
        .build()
        .map_err(|e| TlsError::Url(format!("no usable root certificates: {e}")))
}

/// The certificate checks below `verify-full`, as libpq makes them: none (`prefer`, and
/// `require` without a root certificate), or the chain without the host name (`verify-ca`, and
/// `require` with one). The handshake's signatures are verified either way.
#[derive(Debug)]
struct Libpq {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Libpq {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sslmode_and_sslrootcert_from_both_forms() {
        let (rest, mode, root) = split(
            "postgres://u:p@db.example/hamn?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        );
        assert_eq!(rest, "postgres://u:p@db.example/hamn?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, root) = split("host=db user=u sslmode=require dbname=hamn");
        assert_eq!(rest, "host=db user=u dbname=hamn");
        assert_eq!((mode.as_deref(), root), (Some("require"), None));
        let (rest, mode, _) = split("postgres://localhost/hamn");
        assert_eq!((rest.as_str(), mode), ("postgres://localhost/hamn", None));
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        assert!(connector("postgres://localhost/hamn?sslmode=sometimes").is_err());
        let missing =
            connector("postgres://localhost/hamn?sslmode=verify-full&sslrootcert=/nonexistent.pem")
                .err();
        assert!(
            matches!(missing, Some(TlsError::RootCert { .. })),
            "{missing:?}"
        );
        assert!(connector("postgres://localhost/hamn").is_ok());
    }
}
