//! How the core reaches a service (SPEC §3.1): HTTPS and WSS over rustls with the platform's
//! root certificates, plus any CA the user trusts for a private deployment, in one
//! `ClientConfig` that the HTTP client and the event stream share; plain `http://` only to
//! this computer unless the profile allows it; and a certificate that fails verification told
//! apart from a service that is merely unreachable.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::CertificateError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{CoreError, Result};

/// The variable the CLI and the app read an extra CA from (a PEM file): a private deployment
/// signed by its own authority is trusted without touching the system's store.
pub const CA_FILE_ENV: &str = "SWITCHBOARD_CA_FILE";

/// The certificates the core trusts. Cloning shares one rustls config: every profile's HTTP
/// client and event stream verify the same way.
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// The platform's root certificates only.
    pub fn system() -> Result<Self> {
        Self::build(Vec::new())
    }

    /// The platform's roots and every certificate in `pem` (a private deployment's CA, or a
    /// test's).
    pub fn with_extra_ca_pem(pem: &str) -> Result<Self> {
        Self::build(parse_pem(pem.as_bytes(), "the CA given")?)
    }

    /// The platform's roots and every certificate in the PEM file at `path`.
    pub fn with_extra_ca_file(path: &Path) -> Result<Self> {
        let pem = std::fs::read(path).map_err(|e| {
            CoreError::Invalid(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        Self::build(parse_pem(&pem, &path.display().to_string())?)
    }

    /// What the CLI and the app trust: the platform's roots, and the CA file that
    /// `SWITCHBOARD_CA_FILE` names, if set.
    pub fn from_env() -> Result<Self> {
        match std::env::var_os(CA_FILE_ENV) {
            Some(path) if !path.is_empty() => Self::with_extra_ca_file(Path::new(&path)),
            _ => Self::system(),
        }
    }

    fn build(extra: Vec<CertificateDer<'static>>) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!(error = %e, "a system root certificate could not be read");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        if ignored > 0 {
            tracing::debug!(
                ignored,
                "system root certificates rustls cannot use were skipped"
            );
        }
        if added == 0 {
            // Not fatal: loopback profiles and an explicitly trusted CA still work, and every
            // other service reports a certificate error that says what is wrong.
            tracing::warn!("no system root certificates found; only an added CA is trusted");
        }
        for cert in extra {
            roots.add(cert).map_err(|e| {
                CoreError::Invalid(format!("that CA certificate cannot be trusted: {e}"))
            })?;
        }
        // The provider is named rather than taken from the process default: which one that is
        // depends on the features other crates turn on, and ring is the one this build has.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CoreError::Invalid(format!("TLS cannot be set up: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // No ALPN: the HTTP client speaks HTTP/1.1 only, and a WebSocket upgrade needs it.
        Ok(Self {
            config: Arc::new(config),
        })
    }

    pub(crate) fn rustls(&self) -> &Arc<rustls::ClientConfig> {
        &self.config
    }
}

fn parse_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| CoreError::Invalid(format!("{what} is not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(CoreError::Invalid(format!(
            "{what} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

/// How a service URL is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `https://`: TLS, to any host.
    Tls,
    /// `http://` to this computer (127.0.0.0/8, ::1, `localhost`): it never leaves the machine.
    Loopback,
    /// `http://` to another host: anyone on the way can read and change it.
    Cleartext,
}

/// Where a URL goes, as people write it: the host, with the port when one is given.
pub(crate) fn authority(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn parse_service_url(url: &str) -> Result<reqwest::Url> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| CoreError::Invalid(format!("{url:?} is not a service URL: {e}")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(CoreError::Invalid(format!("{url:?} names no host")));
    }
    Ok(parsed)
}

/// How `url` would be reached; an error when it is not an `http(s)://` URL with a host.
pub fn transport(url: &str) -> Result<Transport> {
    let parsed = parse_service_url(url)?;
    match parsed.scheme() {
        "https" => Ok(Transport::Tls),
        "http" if is_loopback(parsed.host_str().unwrap_or_default()) => Ok(Transport::Loopback),
        "http" => Ok(Transport::Cleartext),
        other => Err(CoreError::Invalid(format!(
            "a service URL starts with https:// (not {other}://)"
        ))),
    }
}

/// The rule for a profile's service URL: https anywhere, plain http to this computer, plain
/// http elsewhere only when the profile explicitly allows it.
pub fn check_service_url(url: &str, allow_insecure_http: bool) -> Result<Transport> {
    let t = transport(url)?;
    if t == Transport::Cleartext && !allow_insecure_http {
        let host = parse_service_url(url).map(|u| authority(&u))?;
        return Err(CoreError::InsecureHttp(host));
    }
    Ok(t)
}

/// 127.0.0.0/8, ::1 and `localhost`, by name: a name that merely resolves to a loopback
/// address today is another host (resolution can change under the profile).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
    }
}

/// What is wrong with the certificate, in words, when that is why a connection failed.
pub(crate) fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(rustls::Error::InvalidCertificate(c)) = e.downcast_ref::<rustls::Error>() {
            return Some(describe(c));
        }
        // A failed handshake arrives as an io::Error wrapping rustls' error, and io::Error's
        // `source` skips the error it wraps (it returns that error's own source).
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && let Some(found) = certificate_problem(inner)
        {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

fn describe(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => {
            "it is signed by an authority this computer does not trust".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (check this computer's clock)".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it was issued for another name".into()
        }
        CertificateError::Revoked => "it has been revoked".into(),
        other => format!("it failed verification ({other})"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

    use super::*;

    #[test]
    fn https_is_always_allowed() {
        for url in [
            "https://example.com",
            "https://10.0.0.5:8443/",
            "https://127.0.0.1",
            "https://[::1]:8750",
        ] {
            assert_eq!(
                check_service_url(url, false).unwrap(),
                Transport::Tls,
                "{url}"
            );
        }
    }

    #[test]
    fn plain_http_to_loopback_needs_no_allowance() {
        for url in [
            "http://127.0.0.1:8750",
            "http://127.12.0.1",
            "http://[::1]:8750",
            "http://localhost:8750/",
            "http://LOCALHOST",
        ] {
            assert_eq!(
                check_service_url(url, false).unwrap(),
                Transport::Loopback,
                "{url} never leaves this computer"
            );
        }
    }

    #[test]
    fn plain_http_elsewhere_is_refused_unless_allowed() {
        for (url, host) in [
            ("http://10.0.0.5", "10.0.0.5"),
            ("http://example.com:8750/", "example.com:8750"),
            ("http://[2001:db8::1]", "[2001:db8::1]"),
            // Names that resolve to loopback here are still other hosts by name.
            ("http://localhost.example.com", "localhost.example.com"),
            ("http://128.0.0.1", "128.0.0.1"),
        ] {
            let err = check_service_url(url, false).unwrap_err();
            assert_eq!(err.code(), "insecure_http", "{url}");
            let msg = err.to_string();
            assert!(msg.contains(host), "the message names the host: {msg}");
            assert!(
                msg.contains("allow"),
                "the message says how to allow it: {msg}"
            );
            assert_eq!(
                check_service_url(url, true).unwrap(),
                Transport::Cleartext,
                "{url} is allowed once the profile allows it"
            );
        }
    }

    #[test]
    fn what_is_not_an_http_url_is_invalid_either_way() {
        for url in ["ftp://example.com", "example.com", "", "http://"] {
            let err = check_service_url(url, true).unwrap_err();
            assert_eq!(err.code(), "invalid", "{url:?}: {err}");
        }
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let err = TlsConfig::with_extra_ca_pem("not a certificate").unwrap_err();
        assert_eq!(err.code(), "invalid");
        let dir = tempfile::tempdir().unwrap();
        let err = TlsConfig::with_extra_ca_file(&dir.path().join("missing.pem")).unwrap_err();
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }

    /// A throwaway CA and a certificate for `names` that it signed.
    fn ca_and_leaf(names: &[&str]) -> (rcgen::Certificate, rcgen::Certificate, rcgen::KeyPair) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let leaf = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        (ca_cert, leaf, leaf_key)
    }

    /// A TLS listener on loopback that answers every request with a 401 in the service's
    /// error format, so a client that gets through TLS sees an API error.
    async fn tls_listener(
        leaf: &rcgen::Certificate,
        key: &rcgen::KeyPair,
    ) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = [0u8; 4096];
                    let _ = tls.read(&mut buf).await;
                    let body = r#"{"error":{"code":"unauthorized","message":"no"}}"#;
                    let resp = format!(
                        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(resp.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (addr, task)
    }

    async fn sign_in(base: &str, tls: &TlsConfig) -> CoreError {
        let client = crate::client::Client::new(base, tls, false).unwrap();
        client.sign_in("x", "y", None, "test").await.unwrap_err()
    }

    /// Whether the event stream opened (the listener refuses every token: it never does).
    async fn open_stream(base: &str, tls: &TlsConfig) -> Result<bool> {
        let client = crate::client::Client::new(base, tls, false).unwrap();
        let token = crate::vault::Token::new("t".into());
        Ok(client.connect_events(0, &token).await?.is_some())
    }

    #[tokio::test]
    async fn a_certificate_problem_names_the_host_and_is_no_mere_network_error() {
        let (_ca, leaf, key) = ca_and_leaf(&["localhost", "127.0.0.1"]);
        let (addr, task) = tls_listener(&leaf, &key).await;
        let base = format!("https://127.0.0.1:{}", addr.port());
        let system = TlsConfig::system().unwrap();
        for err in [
            sign_in(&base, &system).await,
            open_stream(&base, &system).await.unwrap_err(),
        ] {
            assert_eq!(err.code(), "certificate", "{err}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("127.0.0.1:{}", addr.port())), "{msg}");
            assert!(msg.contains("does not trust"), "{msg}");
        }
        task.abort();
    }

    #[tokio::test]
    async fn a_certificate_for_another_name_is_a_certificate_problem_too() {
        let (ca, leaf, key) = ca_and_leaf(&["service.example"]);
        let (addr, task) = tls_listener(&leaf, &key).await;
        let base = format!("https://127.0.0.1:{}", addr.port());
        let trusting = TlsConfig::with_extra_ca_pem(&ca.pem()).unwrap();
        for err in [
            sign_in(&base, &trusting).await,
            open_stream(&base, &trusting).await.unwrap_err(),
        ] {
            assert_eq!(err.code(), "certificate", "{err}");
            assert!(err.to_string().contains("another name"), "{err}");
        }
        task.abort();
    }

    #[tokio::test]
    async fn an_added_ca_is_trusted_by_http_and_the_event_stream_alike() {
        let (ca, leaf, key) = ca_and_leaf(&["localhost", "127.0.0.1"]);
        let (addr, task) = tls_listener(&leaf, &key).await;
        let trusting = TlsConfig::with_extra_ca_pem(&ca.pem()).unwrap();
        for host in ["127.0.0.1", "localhost"] {
            let base = format!("https://{host}:{}", addr.port());
            // Through TLS: the listener's 401 comes back as the service's own error.
            let err = sign_in(&base, &trusting).await;
            assert_eq!(err.code(), "unauthorized", "{err}");
            assert!(
                !open_stream(&base, &trusting).await.unwrap(),
                "the upgrade got through TLS to the listener's 401"
            );
        }
        task.abort();
    }
}
