//! HTTPS/WSS served by the service itself (`tls.cert_file` + `tls.key_file`, PEM).
//!
//! The certificate sits behind a [`TlsReloader`]: every accepted connection takes the
//! configuration current at that moment, so a reload (SIGHUP, or [`TlsReloader::reload`])
//! changes what new connections see and leaves the open ones, WebSockets included, alone.
//! A reload that fails keeps the previous certificate: a typo in a renewal must not take the
//! service down. At start-up there is no previous certificate, so a bad file stops the
//! service; it never falls back to plain HTTP.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::serve::{IncomingStream, Listener};
use axum::{Extension, Router};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tower::Layer as _;

/// A client that opens a TCP connection and never finishes the handshake would otherwise hold
/// a task and a socket for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once; past this the listener stops accepting until some finish, so
/// a flood of half-open connections cannot grow memory without bound (the kernel's backlog
/// holds the rest).
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Why a certificate or key could not be used. Every variant names the file; none carries the
/// key's contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.cert_file {}: cannot read it: {source}", path.display())]
    ReadCert { path: PathBuf, source: io::Error },
    #[error("tls.cert_file {}: not a PEM certificate chain: {reason}", path.display())]
    BadCert { path: PathBuf, reason: String },
    #[error("tls.key_file {}: cannot read it: {source}", path.display())]
    ReadKey { path: PathBuf, source: io::Error },
    /// The reason is ours or rustls's, never a line of the file.
    #[error("tls.key_file {}: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error(
        "tls.key_file {} is not the private key of the certificate in tls.cert_file {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("TLS set-up: {0}")]
    Setup(rustls::Error),
}

/// Reads the chain (leaf first) and the key and builds the server's TLS configuration: the
/// ring provider, TLS 1.2 and 1.3, ALPN `http/1.1` only (a WebSocket upgrade is an HTTP/1.1
/// request; offering h2 would let a browser pick a protocol the upgrade cannot use).
pub fn load_server_config(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_chain(cert_file)?;
    let key = read_key(key_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Parse the key on its own first so that an unusable key is reported against its file,
    // not as a vague failure of the pair.
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::BadKey {
            path: key_file.to_path_buf(),
            reason: format!("not a usable private key: {e}"),
        })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                cert: cert_file.to_path_buf(),
                key: key_file.to_path_buf(),
            },
            // The key parsed above, so what is left to fail is the leaf certificate.
            other => TlsError::BadCert {
                path: cert_file.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadCert {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCert {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::BadCert {
            path: path.to_path_buf(),
            reason: "no CERTIFICATE block in it".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::ReadKey {
        path: path.to_path_buf(),
        source,
    })?;
    // The PEM parser's own message may quote a line of the file; for a key file only the kind
    // of failure is said.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::BadKey {
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in it (expected a PEM PKCS#8, PKCS#1 or SEC1 key)".into()
            }
            _ => "malformed PEM".into(),
        },
    })
}

/// The TLS configuration new connections get, and the files it is reloaded from. Cloning
/// shares it: a reload through any clone is seen by the listener.
#[derive(Clone)]
pub struct TlsReloader {
    inner: Arc<Reloadable>,
}

struct Reloadable {
    cert_file: PathBuf,
    key_file: PathBuf,
    /// Read once per accepted connection and written only by a reload, so a lock is no
    /// contention; a connection keeps the `Arc` it took for its whole life.
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsReloader {
    /// Loads both files; fails, naming the file, if either is missing, unreadable or they do
    /// not belong together.
    pub fn load(
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let (cert_file, key_file) = (cert_file.into(), key_file.into());
        let config = load_server_config(&cert_file, &key_file)?;
        Ok(Self {
            inner: Arc::new(Reloadable {
                cert_file,
                key_file,
                current: RwLock::new(config),
            }),
        })
    }

    /// The reloader for `tls` in the service's configuration, or `None` when TLS is not
    /// configured (plain HTTP, e.g. behind a proxy that terminates TLS). The configuration's
    /// validation already made sure the two keys come together.
    pub fn from_config(tls: &switchboard_service::config::Tls) -> Result<Option<Self>, TlsError> {
        if tls.cert_file.is_empty() && tls.key_file.is_empty() {
            return Ok(None);
        }
        Self::load(&tls.cert_file, &tls.key_file).map(Some)
    }

    /// Re-reads both files. On success new connections use the new certificate; on failure
    /// the previous one stays in place and the error says which file is wrong.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = load_server_config(&self.inner.cert_file, &self.inner.key_file)?;
        // A poisoned lock only means a panic elsewhere while holding it; the Arc inside is
        // whole either way, so replacing it is still right.
        *self
            .inner
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The configuration a connection accepted now gets.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.inner
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn cert_file(&self) -> &Path {
        &self.inner.cert_file
    }

    pub fn key_file(&self) -> &Path {
        &self.inner.key_file
    }
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("cert_file", &self.inner.cert_file)
            .field("key_file", &self.inner.key_file)
            .finish_non_exhaustive()
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` is cancelled, then lets in-flight
/// requests finish, as `axum::serve` does for plain HTTP (it is the same server underneath,
/// with upgrades, so WebSockets work). Reloads the certificate on SIGHUP meanwhile.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: TlsReloader,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let stop_reloading = shutdown.child_token();
    // Windows has no SIGHUP: there the certificate is reloaded by a restart.
    #[cfg(unix)]
    reload_on_sighup(&mut tasks, tls.clone(), stop_reloading.clone());
    let served = axum::serve(TlsListener::new(listener, tls), WithPeerAddr(router))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    stop_reloading.cancel();
    while tasks.join_next().await.is_some() {}
    served
}

/// Watches SIGHUP until `stop`. The handler is installed here, before the first await, so a
/// SIGHUP no longer kills the process from the moment the TLS server starts.
#[cfg(unix)]
fn reload_on_sighup(tasks: &mut JoinSet<()>, tls: TlsReloader, stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP: the TLS certificate will be reloaded only by a restart");
            return;
        }
    };
    tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                got = hangups.recv() => if got.is_none() { return },
            }
            // Two small files: reading them inline is cheaper than a blocking-pool hop.
            match tls.reload() {
                Ok(()) => tracing::info!(
                    cert_file = %tls.cert_file().display(),
                    "SIGHUP: reloaded the TLS certificate; new connections use it"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "SIGHUP: TLS reload failed; still serving the previous certificate"
                ),
            }
        }
    });
}

/// A TCP listener that hands axum only connections whose TLS handshake completed. Handshakes
/// run in tasks of their own, so a slow or silent client delays nobody else; they are owned
/// here and aborted when the server drops the listener at shutdown.
struct TlsListener {
    tcp: TcpListener,
    tls: TlsReloader,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    fn new(tcp: TcpListener, tls: TlsReloader) -> Self {
        Self {
            tcp,
            tls,
            handshakes: JoinSet::new(),
        }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    // Cancel-safe, as axum needs (it drops this future when shutdown begins): a TCP accept
    // that lost the race never happened, and handshakes live in `self`, not in the future.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                Some(done) = self.handshakes.join_next() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
                // axum's own accept for TcpListener: it retries (with a pause) on errors such
                // as running out of file descriptors.
                (tcp, peer) = Listener::accept(&mut self.tcp),
                    if self.handshakes.len() < MAX_PENDING_HANDSHAKES =>
                {
                    let acceptor = TlsAcceptor::from(self.tls.current());
                    self.handshakes.spawn(handshake(acceptor, tcp, peer));
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// A failed or stalled handshake drops that connection and nothing else.
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some((stream, peer)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed; connection dropped");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out; connection dropped");
            None
        }
    }
}

/// Gives every request of a connection `ConnectInfo<SocketAddr>`, as
/// `into_make_service_with_connect_info` does for a plain TCP listener (axum provides that
/// only for its own listener types), so `ClientIp` reads the peer the same way on both paths.
#[derive(Clone)]
struct WithPeerAddr(Router);

impl tower::Service<IncomingStream<'_, TlsListener>> for WithPeerAddr {
    type Response = <Extension<ConnectInfo<SocketAddr>> as tower::Layer<Router>>::Service;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: IncomingStream<'_, TlsListener>) -> Self::Future {
        let peer = *incoming.remote_addr();
        ready(Ok(Extension(ConnectInfo(peer)).layer(self.0.clone())))
    }
}
