//! HTTPS/WSS served by the service itself, over real TLS: requests and live events on a
//! certificate from a test CA, refusal by a client that does not trust it, no cleartext
//! fallback, bad files refused at start-up, and certificate reloads (what SIGHUP does) that
//! reach new connections only, keep open sockets, and keep the old certificate on a bad file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Method;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use switchboard_server::testing::{TestCa, TestServer, TestUser, request_with};
use switchboard_server::tls::{TlsError, TlsReloader};
use switchboard_server::{Config, LaunchError, Services};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An HTTPS client that trusts `ca_pem` and nothing else (no built-in roots), so a success
/// proves the server presented a certificate of that CA.
fn https_trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// A rustls client configuration (ring, as the service) trusting only `ca_pem`.
fn rustls_trusting(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// `token`'s event stream over wss, trusting only `ca_pem`.
async fn wss(
    s: &TestServer,
    ca_pem: &str,
    token: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let base = s.base.strip_prefix("https://").expect("a TLS test server");
    let mut req = format!("wss://{base}/v1/events?since=0").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let connector = Connector::Rustls(rustls_trusting(ca_pem));
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(connector)).await?;
    Ok(ws)
}

/// Reads events until a new message with `body` arrives (earlier events, such as the
/// contact's acceptance, are skipped); fails if the stream ends or stays quiet for 10 s.
async fn wait_for_message(ws: &mut Socket, body: &str) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap_or_else(|_| panic!("no message {body:?} within 10 s"));
        match frame {
            Some(Ok(Ws::Text(t))) => {
                let event: Value = serde_json::from_str(&t).unwrap();
                if event["kind"] == "message.new" && event["data"]["body"] == body {
                    return;
                }
            }
            Some(Ok(Ws::Close(c))) => panic!("the stream closed before {body:?}: {c:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("the stream failed before {body:?}: {e}"),
            None => panic!("the stream ended before {body:?}"),
        }
    }
}

/// `from` sends `body` to `to`, through `http` (which must trust the current certificate).
async fn send(s: &TestServer, http: &reqwest::Client, from: &TestUser, to: &str, body: &str) {
    request_with(
        http,
        &s.base,
        Method::POST,
        "/v1/messages",
        Some(&from.token),
        Some(json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to, "body": body})),
    )
    .await
    .expect(201);
}

/// The rustls error somewhere in `e`'s chain. reqwest and tungstenite wrap it in
/// `io::Error`s, whose `source()` skips the error they carry, so those are opened by hand.
fn rustls_error(e: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    if let Some(r) = e.downcast_ref::<rustls::Error>() {
        return Some(r.clone());
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return rustls_error(inner);
    }
    rustls_error(e.source()?)
}

#[track_caller]
fn assert_unknown_issuer(e: &(dyn std::error::Error + 'static)) {
    assert_eq!(
        rustls_error(e),
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )),
        "the client refuses because it does not trust the certificate's issuer: {e:?}"
    );
}

fn cert_paths(s: &TestServer) -> (&Path, &Path) {
    (
        Path::new(&s.config.tls.cert_file),
        Path::new(&s.config.tls.key_file),
    )
}

/// Puts a new certificate and key in place of the configured files, as a renewal does.
fn install(s: &TestServer, (cert, key): (std::path::PathBuf, std::path::PathBuf)) {
    let (cert_file, key_file) = cert_paths(s);
    std::fs::rename(cert, cert_file).unwrap();
    std::fs::rename(key, key_file).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_over_https() {
    let s = TestServer::start_tls(|_| {}).await;
    assert!(s.base.starts_with("https://"), "base is {}", s.base);
    let ca = s.ca_pem.clone().expect("a TLS test server has a CA");
    let r = https_trusting(&ca)
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let health: Value = r.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    // The fixture's own client trusts the CA too, so every helper works over TLS.
    s.call(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_over_wss_receives_a_live_event() {
    let s = TestServer::start_tls(|_| {}).await;
    let ca = s.ca_pem.clone().unwrap();
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    let mut ws = wss(&s, &ca, &bob.token).await.unwrap();
    send(&s, &s.client(), &alice, "bob_the_2nd", "over wss").await;
    wait_for_message(&mut ws, "over wss").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_ca_is_refused_for_the_certificate() {
    let s = TestServer::start_tls(|_| {}).await;
    // The built-in roots only, as a browser would have.
    let err = reqwest::Client::new()
        .get(s.url("/healthz"))
        .send()
        .await
        .expect_err("the test CA is in no public root store");
    assert_unknown_issuer(&err);
    // Trusting some other CA does not help.
    let stranger = TestCa::new();
    let err = https_trusting(&stranger.ca_pem)
        .get(s.url("/healthz"))
        .send()
        .await
        .expect_err("a certificate of another CA");
    assert_unknown_issuer(&err);
    let alice = s.user(1, "alice_w").await;
    let err = wss(&s, &stranger.ca_pem, &alice.token)
        .await
        .expect_err("wss with another CA");
    assert_unknown_issuer(&err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let s = TestServer::start_tls(|_| {}).await;
    let plain = format!("http://{}/healthz", s.addr);
    let r = reqwest::Client::new().get(&plain).send().await;
    assert!(
        r.is_err(),
        "cleartext HTTP must not be served on the TLS port: {r:?}"
    );
    // At the byte level: whatever comes back (a TLS alert, or nothing) is not HTTP.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut reply)).await;
    assert!(
        !reply.starts_with(b"HTTP/"),
        "an HTTP answer in cleartext: {:?}",
        String::from_utf8_lossy(&reply)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_address_reaches_handlers_over_tls() {
    // With loopback as a trusted proxy, X-Forwarded-For names the client, and sign-ins are
    // limited per client network. That works only if the connection's own address
    // (ConnectInfo) reaches the handler: without it every request counts as one `unknown`.
    let s = TestServer::start_tls(|c| {
        c.sessions.login_per_ip_per_hour = 1;
        c.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let http = s.client();
    let sign_in = |client_ip: &'static str| {
        let req = http
            .post(s.url("/v1/sessions"))
            .header("x-forwarded-for", client_ip)
            .json(
                &json!({"login": "nobody_here", "password": "wrong password", "device_name": "t"}),
            );
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(sign_in("203.0.113.1").await, 401);
    assert_eq!(
        sign_in("203.0.113.1").await,
        429,
        "the second attempt from one client network is over its limit of 1"
    );
    assert_eq!(
        sign_in("203.0.113.2").await,
        401,
        "another client network has a limit of its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_serves_the_new_certificate_to_new_connections_and_keeps_open_sockets() {
    let s = TestServer::start_tls(|_| {}).await;
    let old_ca = s.ca_pem.clone().unwrap();
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    let mut open = wss(&s, &old_ca, &bob.token).await.unwrap();
    send(&s, &s.client(), &alice, "bob_the_2nd", "before").await;
    wait_for_message(&mut open, "before").await;

    // A renewal by another CA, put in place of the configured files, then the reload that
    // SIGHUP triggers.
    let new_ca = TestCa::new();
    install(&s, new_ca.issue(s.dir(), &[]));
    s.tls
        .as_ref()
        .unwrap()
        .reload()
        .expect("the new files load");

    let new_client = https_trusting(&new_ca.ca_pem);
    let r = new_client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "a new connection gets the new certificate");
    let err = https_trusting(&old_ca)
        .get(s.url("/healthz"))
        .send()
        .await
        .expect_err("a new connection no longer gets the old certificate");
    assert_unknown_issuer(&err);
    let mut fresh = wss(&s, &new_ca.ca_pem, &bob.token)
        .await
        .expect("a new wss connection trusting only the new CA");

    // The socket opened before the reload is untouched and still live.
    send(&s, &new_client, &alice, "bob_the_2nd", "after").await;
    wait_for_message(&mut open, "after").await;
    wait_for_message(&mut fresh, "after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_bad_key_keeps_serving_the_old_certificate() {
    let s = TestServer::start_tls(|_| {}).await;
    let ca = s.ca_pem.clone().unwrap();
    let tls = s.tls.clone().unwrap();
    let (cert_file, key_file) = cert_paths(&s);
    let good_key = std::fs::read(key_file).unwrap();

    // Not a key at all. The error names the file and does not echo its contents.
    let junk = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-NOT-BASE64\n-----END PRIVATE KEY-----\n";
    std::fs::write(key_file, junk).unwrap();
    let err = tls.reload().expect_err("a malformed key does not load");
    assert!(matches!(err, TlsError::BadKey { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&key_file.display().to_string()),
        "the message names the key file: {message}"
    );
    assert!(
        !message.contains("TOP-SECRET"),
        "the message never quotes the key file: {message}"
    );

    // A real key, but not the certificate's (a renewal half-copied).
    let (_, other_key) = TestCa::new().issue(s.dir(), &[]);
    std::fs::rename(other_key, key_file).unwrap();
    let err = tls.reload().expect_err("a key of another certificate");
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&key_file.display().to_string())
            && message.contains(&cert_file.display().to_string()),
        "the message names both files: {message}"
    );

    // A missing certificate.
    std::fs::write(key_file, &good_key).unwrap();
    let moved = s.dir().join("moved-away.pem");
    std::fs::rename(cert_file, &moved).unwrap();
    let err = tls.reload().expect_err("no certificate file");
    assert!(matches!(err, TlsError::ReadCert { .. }), "{err:?}");
    assert!(err.to_string().contains(&cert_file.display().to_string()));

    // Through all of it, new connections still get the original certificate.
    let r = https_trusting(&ca)
        .get(s.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // And once the files are right again, a reload takes them.
    std::fs::rename(&moved, cert_file).unwrap();
    tls.reload().expect("the original files load again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_refuses_to_start_on_a_bad_certificate_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (cert, key) = ca.issue(dir.path(), &[]);
    let (_, other_key) = ca.issue(dir.path(), &["localhost"]);
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not PEM at all\n").unwrap();

    assert!(
        TlsReloader::load(&cert, &key).is_ok(),
        "the good pair loads"
    );
    for (c, k, what) in [
        (&missing, &key, "missing certificate"),
        (&cert, &missing, "missing key"),
        (&garbage, &key, "certificate without a PEM block"),
        (&cert, &garbage, "key without a PEM block"),
        (&cert, &other_key, "key of another certificate"),
    ] {
        let err = TlsReloader::load(c, k).expect_err(what);
        let named = if matches!(
            err,
            TlsError::ReadCert { .. } | TlsError::BadCert { .. } | TlsError::KeyMismatch { .. }
        ) {
            c
        } else {
            k
        };
        assert!(
            err.to_string().contains(&named.display().to_string()),
            "{what}: the message names the file: {err}"
        );
    }

    // Through the service: `build` fails (so `launch` never serves, plain or otherwise).
    let mut config = Config {
        dev: true,
        ..Config::default()
    };
    config.log.file = false;
    config.database_url = format!("sqlite://{}", dir.path().join("server.db").display());
    config.tls.cert_file = cert.to_string_lossy().into_owned();
    config.tls.key_file = other_key.to_string_lossy().into_owned();
    let Err(err) = switchboard_server::build(
        config,
        Services::default(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    else {
        panic!("the service started with a key that is not its certificate's");
    };
    assert!(
        matches!(err, LaunchError::Tls(TlsError::KeyMismatch { .. })),
        "{err:?}"
    );
}

/// The binary with a TOML config serving TLS from `cert` / `key`; returns the child and the
/// first line it prints (its address, once ready) or, if it exits first, its stderr.
fn spawn_binary(
    dir: &Path,
    cert: &Path,
    key: &Path,
) -> Result<(std::process::Child, String), String> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
             database_url = \"sqlite://{}\"\n\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n\n\
             [log]\nfile = false\nfilter = \"info\"\n",
            dir.join("server.db").display(),
            cert.display().to_string(),
            key.display().to_string(),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-server"))
        .args(["--dev", "--config"])
        .arg(&config)
        .env("HOME", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    match lines.next() {
        Some(Ok(first)) => {
            std::thread::spawn(move || for _ in lines {});
            let mut stderr = child.stderr.take().unwrap();
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            Ok((child, first))
        }
        _ => {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            let _ = child.wait();
            Err(stderr)
        }
    }
}

/// The real signal, to a real process: SIGHUP swaps the certificate and the service lives on.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reloads_its_certificate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (TestCa::new(), TestCa::new());
    let (cert, key) = old_ca.issue(dir.path(), &[]);
    let (mut child, first) = spawn_binary(dir.path(), &cert, &key).expect("the service starts");
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the first line gives the address: {first:?}"))
        .to_string();
    assert!(base.starts_with("https://"), "announced as HTTPS: {base}");
    let healthz = format!("{base}/healthz");
    let r = https_trusting(&old_ca.ca_pem)
        .get(&healthz)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (new_cert, new_key) = new_ca.issue(dir.path(), &[]);
    std::fs::rename(new_cert, &cert).unwrap();
    std::fs::rename(new_key, &key).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // The signal is handled asynchronously: poll until a client trusting only the new CA
    // gets in.
    let mut reloaded = false;
    for _ in 0..100 {
        if let Ok(r) = https_trusting(&new_ca.ca_pem).get(&healthz).send().await {
            assert_eq!(r.status(), 200);
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "SIGHUP must not end the service");
    assert!(
        reloaded,
        "within 10 s of SIGHUP the new certificate is served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_refuses_to_start_on_a_mismatched_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (cert, _) = ca.issue(dir.path(), &[]);
    let (_, key) = ca.issue(dir.path(), &[]);
    match spawn_binary(dir.path(), &cert, &key) {
        Ok((mut child, first)) => {
            let _ = child.kill();
            panic!("the service started with the wrong key: {first}");
        }
        Err(stderr) => assert!(
            stderr.contains(&key.display().to_string()) && stderr.contains("not the private key"),
            "the error names the key file: {stderr}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_over_tls_closes_open_sockets_and_finishes() {
    let s = TestServer::start_tls(|_| {}).await;
    let ca = s.ca_pem.clone().unwrap();
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    let mut ws = wss(&s, &ca, &bob.token).await.unwrap();
    // Live first (a live event arrived), so the shutdown meets a socket in its steady state.
    send(&s, &s.client(), &alice, "bob_the_2nd", "live").await;
    wait_for_message(&mut ws, "live").await;
    // `restart` cancels the service and waits for `serve` to return: with a WebSocket open,
    // that returns only if the TLS server shuts down as gracefully as the plain one.
    let s = tokio::time::timeout(Duration::from_secs(20), s.restart())
        .await
        .expect("the TLS server stops with a socket open");
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the old socket is told")
        {
            Some(Ok(Ws::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(
        closed.map(|f| u16::from(f.code)),
        Some(switchboard_protocol::events::close_code::SHUTTING_DOWN),
        "the socket is closed as the service shuts down"
    );
    // The restarted service serves the same certificate, and the fixture still trusts it.
    assert!(s.base.starts_with("https://"));
    s.call(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
}
