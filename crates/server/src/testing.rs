//! A port-0 service over a throwaway database with a hand-driven clock, for tests. Dropping it
//! shuts the service down and removes its files (SQLite) or its database (PostgreSQL).
//!
//! The backend: SQLite, or PostgreSQL when `SWITCHBOARD_TEST_BACKEND=postgres`, in a database
//! of its own on the throwaway cluster `SWITCHBOARD_TEST_PG` names (`cargo xtask test` starts
//! one and runs the service's suites once per backend).

// Test scaffolding: a failure here is a broken test set-up, and a panic says so best.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{Config, Services};
use switchboard_service::clock::{ManualClock, OsEntropy};
use switchboard_service::identity::ChecksumVerifier;

/// The per-test database and backend choice live with the store; a service test names them here.
pub use switchboard_store::testing::{
    Backend, TEST_BACKEND_ENV, TEST_PG_ENV, TestDb, test_cluster,
};

pub struct TestServer {
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`), on a port of its own so tests run in parallel.
    pub admin: SocketAddr,
    pub base: String,
    pub clock: ManualClock,
    pub config: Config,
    /// The test CA's certificate (PEM) when the server serves HTTPS ([`start_tls`]): a client
    /// that should reach it trusts this.
    ///
    /// [`start_tls`]: Self::start_tls
    pub ca_pem: Option<String>,
    /// The server's certificate when it serves HTTPS: `reload()` is what SIGHUP does.
    pub tls: Option<crate::tls::TlsReloader>,
    /// The client [`call`](Self::call) and its helpers use: it trusts `ca_pem`.
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    db: TestDb,
}

impl TestServer {
    /// A development-mode service (console SMS gateway, dev outbox) with default limits, on
    /// the backend `SWITCHBOARD_TEST_BACKEND` names.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`start`](Self::start), with the config adjusted first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(Backend::from_env(), adjust).await
    }

    /// Like [`start_with`](Self::start_with), on a given backend.
    pub async fn start_on(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new(backend).await;
        let mut config = Self::test_config(&db);
        adjust(&mut config);
        Self::launch_in(db, config, ManualClock::new()).await
    }

    /// Like [`start_with`](Self::start_with), serving HTTPS/WSS with a certificate for
    /// `localhost` and `127.0.0.1` issued by a fresh [`TestCa`]; `base` is
    /// `https://127.0.0.1:PORT`, `ca_pem` the CA to trust, and [`call`](Self::call) trusts it.
    /// The certificate and key files are `config.tls.cert_file` / `key_file`, in
    /// [`dir`](Self::dir).
    pub async fn start_tls(adjust: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new(Backend::from_env()).await;
        let ca = TestCa::new();
        let (cert_file, key_file) = ca.issue(db.dir(), &[]);
        let mut config = Self::test_config(&db);
        config.tls.cert_file = cert_file.to_string_lossy().into_owned();
        config.tls.key_file = key_file.to_string_lossy().into_owned();
        adjust(&mut config);
        Self::launch_in(db, config, ManualClock::new())
            .await
            .trusting(Some(ca.ca_pem))
    }

    /// Development mode, default limits, on `db`, no log file.
    fn test_config(db: &TestDb) -> Config {
        let mut config = Config {
            dev: true,
            ..Config::default()
        };
        config.log.file = false;
        config.database_url = db.url.clone();
        // Images in the test's own temp dir, whichever the backend.
        config.media.dir = db.dir().join("media").display().to_string();
        config
    }

    /// Makes this fixture's own requests trust `ca_pem` (the server's test CA).
    fn trusting(mut self, ca_pem: Option<String>) -> Self {
        if let Some(pem) = &ca_pem {
            let ca = reqwest::Certificate::from_pem(pem.as_bytes()).expect("the test CA's PEM");
            self.http = reqwest::Client::builder()
                .add_root_certificate(ca)
                .build()
                .expect("an HTTPS client trusting the test CA");
        }
        self.ca_pem = ca_pem;
        self
    }

    /// A client for this server: it trusts the test CA when the server serves HTTPS.
    pub fn client(&self) -> reqwest::Client {
        self.http.clone()
    }

    pub fn backend(&self) -> Backend {
        self.db.backend
    }

    /// The URL of this server's database, for tests that look at what was stored.
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    async fn launch_in(db: TestDb, config: Config, clock: ManualClock) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the admin port 0");
        let admin = admin_listener.local_addr().expect("admin addr");
        let shutdown = CancellationToken::new();
        let services = Services {
            clock: Arc::new(clock.clone()),
            entropy: Arc::new(OsEntropy),
            identity: Arc::new(ChecksumVerifier),
            // What the configuration names: the sandbox, as tests run in development mode.
            funding: None,
            // The test moves `clock` by hand, on every backend.
            clock_from_database: false,
        };
        // Build first so a bad config fails the test here, with its message.
        let (router, app) = crate::build(config.clone(), services, shutdown.clone())
            .await
            .expect("service builds");
        let tls = app.tls.clone();
        let task = tokio::spawn(async move {
            let _ = crate::app::serve(router, app, listener, Some(admin_listener)).await;
        });
        Self {
            addr,
            admin,
            // The test certificate names 127.0.0.1: the address is the HTTPS host too.
            base: format!("{}://{addr}", if tls.is_some() { "https" } else { "http" }),
            clock,
            config,
            ca_pem: None,
            tls,
            http: reqwest::Client::new(),
            shutdown,
            task: Some(task),
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A temp folder of this server's (holding the database on SQLite; removed on drop).
    pub fn dir(&self) -> &std::path::Path {
        self.db.dir()
    }

    /// Another node of this service: the same PostgreSQL database, config and clock, with
    /// its own pools, hub, wake-up listener and background jobs, on a port of its own. The
    /// database stays this server's: drop the extra nodes first.
    pub async fn another_node(&self) -> Self {
        assert_eq!(
            self.backend(),
            Backend::Postgres,
            "several nodes share one PostgreSQL database"
        );
        let db = self.db.sharing();
        // The same certificate files (TLS) too: a node differs only in its port.
        Self::launch_in(db, self.config.clone(), self.clock.clone())
            .await
            .trusting(self.ca_pem.clone())
    }

    /// Stops the service as a shutdown does (its store closed) and waits for it, up to a bound
    /// so a test that left a request hanging still ends (then the rest is aborted).
    async fn halt(&mut self) {
        self.shutdown.cancel();
        if let Some(mut task) = self.task.take() {
            let grace = std::time::Duration::from_secs(10);
            if tokio::time::timeout(grace, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    /// Stops the service and starts it again on the same database and clock (a new port).
    pub async fn restart(mut self) -> Self {
        self.halt().await;
        let placeholder = self.db.sharing();
        let db = std::mem::replace(&mut self.db, placeholder);
        let ca_pem = self.ca_pem.take();
        Self::launch_in(db, self.config.clone(), self.clock.clone())
            .await
            .trusting(ca_pem)
    }
}

impl Drop for TestServer {
    /// Halts the service, when the runtime can be driven from here (a multi-threaded one: the
    /// tests use those). Aborted instead, the service drops its store mid-flight and the SQLite
    /// connections close on their own threads, racing the process's exit: a SIGSEGV after a
    /// passing test, now and then.
    fn drop(&mut self) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| rt.block_on(self.halt()));
            }
            _ => {
                self.shutdown.cancel();
                if let Some(task) = self.task.take() {
                    task.abort();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_numbers_get_valid_resident_ids_of_their_own() {
        assert_eq!(super::resident_id(2), super::TEST_RESIDENT_ID);
        assert_ne!(super::resident_id(1), super::resident_id(3));
    }
}

/// Any request to the service at `base` (`http://addr`); `body` is sent as JSON. A free
/// function, for tasks that outlive a borrow of the [`TestServer`].
pub async fn request(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    request_with(&reqwest::Client::new(), base, method, path, token, body).await
}

/// Like [`request`], through `http` (e.g. [`TestServer::client`], which trusts the test CA).
pub async fn request_with(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = http.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("the test server answers");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = resp.text().await.expect("a body");
    let body = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    Reply {
        status,
        body,
        retry_after,
    }
}

/// How many answers had each (status, error code; "" for a success).
pub type Tally = std::collections::BTreeMap<(u16, String), usize>;

/// Fires `n` requests at once (the `i`th made by `f(i)`) and tallies the answers. None may be
/// a server error, and every 429 must say when to try again.
pub async fn at_once<F, Fut>(n: usize, f: F) -> Tally
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tasks.spawn(f(i));
    }
    let mut tally = Tally::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("request task");
        assert!(
            r.status < 500,
            "never a server error: {} {}",
            r.status,
            r.body
        );
        if r.status == 429 {
            assert!(r.retry_after.is_some(), "a 429 says when: {}", r.body);
        }
        *tally.entry((r.status, r.code().to_string())).or_default() += 1;
    }
    tally
}

/// One request of a batch fired at once by [`calls_at_once`]: owned, so its task outlives the
/// test's borrows.
#[derive(Debug, Clone)]
pub struct Call {
    /// The service to ask, `http://addr` (several nodes' batches mix them).
    pub base: String,
    pub method: reqwest::Method,
    pub path: String,
    pub token: Option<String>,
    pub body: Option<serde_json::Value>,
}

impl Call {
    pub fn new(base: &str, method: reqwest::Method, path: &str, token: Option<&str>) -> Self {
        Self {
            base: base.to_string(),
            method,
            path: path.to_string(),
            token: token.map(str::to_string),
            body: None,
        }
    }

    /// A POST of `body` as JSON.
    pub fn post(base: &str, path: &str, token: Option<&str>, body: serde_json::Value) -> Self {
        Self::new(base, reqwest::Method::POST, path, token).with_body(body)
    }

    pub fn with_body(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    pub async fn send(self) -> Reply {
        request(
            &self.base,
            self.method,
            &self.path,
            self.token.as_deref(),
            self.body,
        )
        .await
    }
}

/// `n` requests at once, the `i`th `call(i)`, tallied as [`at_once`].
pub async fn calls_at_once(n: usize, call: impl Fn(usize) -> Call) -> Tally {
    at_once(n, |i| call(i).send()).await
}

/// `n` POSTs to `path` at once as `token`, the `i`th with `body(i)`, tallied as [`at_once`].
pub async fn post_at_once(
    base: &str,
    token: &str,
    path: &str,
    n: usize,
    body: impl Fn(usize) -> serde_json::Value,
) -> Tally {
    calls_at_once(n, |i| Call::post(base, path, Some(token), body(i))).await
}

/// One answer, for asserting on.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: serde_json::Value,
    pub retry_after: Option<u64>,
}

impl Reply {
    /// The error code, or "" for a success.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// Panics with the whole reply unless the status is `status`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "unexpected reply: {} {}",
            self.status, self.body
        );
        self
    }

    /// Panics unless this is the error `code` with `status`.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected reply: {}",
            self.body
        );
        assert!(
            !self.message().is_empty(),
            "every error carries a message: {}",
            self.body
        );
        self
    }
}

impl TestServer {
    /// Any request; `body` is sent as JSON.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Reply {
        request_with(&self.http, &self.base, method, path, token, body).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Reply {
        self.call(reqwest::Method::POST, path, None, Some(body))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// Requests a code and reads it from the dev outbox.
    pub async fn sms_code(&self, phone: &str, purpose: &str) -> String {
        self.post(
            "/v1/sms/codes",
            serde_json::json!({"phone": phone, "purpose": purpose}),
        )
        .await
        .expect(202);
        let outbox = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/dev/sms-outbox?phone={}", phone.replace('+', "%2B")),
                None,
                None,
            )
            .await
            .expect(200);
        let messages = outbox.body["messages"]
            .as_array()
            .expect("messages")
            .clone();
        let last = messages
            .iter()
            .rev()
            .find(|m| m["purpose"] == purpose)
            .expect("the outbox holds the code just sent");
        last["code"].as_str().expect("code").to_string()
    }

    /// Registers an account through the SMS flow; returns the account summary.
    pub async fn register(
        &self,
        phone: &str,
        public_id: &str,
        password: &str,
    ) -> serde_json::Value {
        let code = self.sms_code(phone, "register").await;
        // The resend cooldown counts per number and purpose: let the next registration of this
        // number ask for its own code.
        self.clock
            .advance_secs(i64::try_from(self.config.sms.resend_cooldown_secs).unwrap_or(60));
        self.post(
            "/v1/accounts",
            serde_json::json!({
                "phone": phone, "sms_code": code, "public_id": public_id,
                "password": password, "display_name": public_id,
            }),
        )
        .await
        .expect(201)
        .body
    }

    /// Signs in with a password; returns the bearer token.
    pub async fn sign_in(&self, login: &str, password: &str) -> String {
        self.post(
            "/v1/sessions",
            serde_json::json!({"login": login, "password": password, "device_name": "test"}),
        )
        .await
        .expect(201)
        .body["token"]
            .as_str()
            .expect("token")
            .to_string()
    }
}

/// The password every test account gets.
pub const TEST_PASSWORD: &str = "correct horse battery";
/// An `identity.hmac_secret` for tests that run outside development mode.
pub const TEST_IDENTITY_SECRET: &str = "test-only identity key, 32+ bytes long";

/// Two-step verification as [`TestServer::enable_totp`] turned it on.
#[derive(Debug, Clone)]
pub struct TotpEnabled {
    /// The raw secret, for [`switchboard_service::totp::code_at_step`].
    pub secret: Vec<u8>,
    pub recovery_codes: Vec<String>,
}
/// A valid mainland resident ID number (GB 11643's example) for real-name verification.
pub const TEST_RESIDENT_ID: &str = "11010519491231002X";

/// A valid resident ID number of test number `n`'s own (`TEST_RESIDENT_ID` is number 2's):
/// one ID number verifies only `identity.accounts_per_id` accounts, so test users each have one.
pub fn resident_id(n: u32) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let body = format!("11010519491231{:03}", n % 1000);
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// A signed-in test account.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub token: String,
    pub public_id: String,
}

impl TestServer {
    /// Registers `public_id` on test number `n` (`+86 138 0013 80nn`) and signs it in.
    pub async fn user(&self, n: u32, public_id: &str) -> TestUser {
        self.register(&format!("+86138001380{n:02}"), public_id, TEST_PASSWORD)
            .await;
        TestUser {
            token: self.sign_in(public_id, TEST_PASSWORD).await,
            public_id: public_id.into(),
        }
    }

    /// Like [`user`](Self::user), with real-name verification done.
    pub async fn verified_user(&self, n: u32, public_id: &str) -> TestUser {
        let u = self.user(n, public_id).await;
        self.post_as(
            &u,
            "/v1/me/identity",
            serde_json::json!({"legal_name": "张三", "id_number": resident_id(n)}),
        )
        .await
        .expect(200);
        u
    }

    /// An official account `name` owned by `owner` (a verified user), with `operators`
    /// (public ID, role) added and `followers` following it; its id.
    pub async fn official(
        &self,
        owner: &TestUser,
        name: &str,
        operators: &[(&str, &str)],
        followers: &[&TestUser],
    ) -> String {
        let id = self
            .post_as(
                owner,
                "/v1/official-accounts",
                serde_json::json!({"name": name, "description": ""}),
            )
            .await
            .expect(201)
            .body["id"]
            .as_str()
            .expect("an official account's id")
            .to_string();
        for (public_id, role) in operators {
            self.post_as(
                owner,
                &format!("/v1/official-accounts/{id}/operators"),
                serde_json::json!({"public_id": public_id, "role": role}),
            )
            .await
            .expect(201);
        }
        for f in followers {
            self.post_as(
                f,
                &format!("/v1/official-accounts/{id}/follow"),
                serde_json::json!({}),
            )
            .await
            .expect(200);
        }
        id
    }

    pub async fn post_as(&self, u: &TestUser, path: &str, body: serde_json::Value) -> Reply {
        self.call(reqwest::Method::POST, path, Some(&u.token), Some(body))
            .await
    }

    /// Turns two-step verification on for `u` (whose password is [`TEST_PASSWORD`]), confirming
    /// with the current code; then moves the clock one step on, so the next code is new.
    pub async fn enable_totp(&self, u: &TestUser) -> TotpEnabled {
        use switchboard_service::clock::Clock as _;
        let setup = self
            .post_as(
                u,
                "/v1/me/totp",
                serde_json::json!({"password": TEST_PASSWORD}),
            )
            .await
            .expect(200);
        let secret = switchboard_service::totp::decode_secret(
            setup.body["secret"].as_str().expect("secret"),
        )
        .expect("a base32 secret");
        let code = switchboard_service::totp::code_at_step(
            &secret,
            switchboard_service::totp::step_at(self.clock.now_ms()),
        );
        let confirmed = self
            .post_as(
                u,
                "/v1/me/totp/confirm",
                serde_json::json!({"code": code, "password": TEST_PASSWORD}),
            )
            .await
            .expect(200);
        self.clock
            .advance_secs(switchboard_service::totp::STEP_SECS);
        TotpEnabled {
            secret,
            recovery_codes: confirmed.body["recovery_codes"]
                .as_array()
                .expect("recovery codes")
                .iter()
                .map(|c| c.as_str().expect("a code").to_string())
                .collect(),
        }
    }

    /// The current code of `totp`'s authenticator by this server's clock.
    pub fn totp_code(&self, totp: &TotpEnabled) -> String {
        use switchboard_service::clock::Clock as _;
        switchboard_service::totp::code_at_step(
            &totp.secret,
            switchboard_service::totp::step_at(self.clock.now_ms()),
        )
    }

    /// The value of a counter or gauge on the admin listener's `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .expect("the admin listener answers")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// `a` asks, `b` accepts: they are contacts.
    pub async fn befriend(&self, a: &TestUser, b: &TestUser) {
        let r = self
            .post_as(
                a,
                "/v1/contacts/requests",
                serde_json::json!({"public_id": b.public_id}),
            )
            .await
            .expect(201);
        let id = r.body["id"].as_str().expect("request id").to_string();
        self.post_as(
            b,
            &format!("/v1/contacts/requests/{id}/accept"),
            serde_json::json!({}),
        )
        .await
        .expect(200);
    }
}

/// Registers, signs in and verifies an account on a service at `base` (a separate process,
/// in development mode) through its public API; returns the bearer token.
pub async fn register_remote(
    http: &reqwest::Client,
    base: &str,
    phone: &str,
    public_id: &str,
) -> String {
    let send = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut req = http.post(format!("{base}{path}")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let r = req.send().await.expect("the service answers");
            let status = r.status();
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            assert!(status.is_success(), "{status}: {v}");
            v
        }
    };
    send(
        "/v1/sms/codes",
        None,
        serde_json::json!({"phone": phone, "purpose": "register"}),
    )
    .await;
    let outbox: serde_json::Value = http
        .get(format!(
            "{base}/v1/dev/sms-outbox?phone={}",
            phone.replace('+', "%2B")
        ))
        .send()
        .await
        .expect("outbox")
        .json()
        .await
        .expect("outbox JSON");
    let code = outbox["messages"]
        .as_array()
        .and_then(|m| m.last())
        .expect("a code")["code"]
        .as_str()
        .expect("code")
        .to_string();
    send(
        "/v1/accounts",
        None,
        serde_json::json!({"phone": phone, "sms_code": code, "public_id": public_id,
        "password": TEST_PASSWORD, "display_name": public_id}),
    )
    .await;
    let session = send(
        "/v1/sessions",
        None,
        serde_json::json!({"login": public_id, "password": TEST_PASSWORD, "device_name": "test"}),
    )
    .await;
    let token = session["token"].as_str().expect("token").to_string();
    send(
        "/v1/me/identity",
        Some(&token),
        serde_json::json!({"legal_name": "张三", "id_number": TEST_RESIDENT_ID}),
    )
    .await;
    token
}

/// A TCP proxy on loopback in front of a service: its connections can be cut at any moment,
/// and it can refuse new ones (the service looks down) and take them again.
pub struct TcpProxy {
    pub addr: SocketAddr,
    upstream: Arc<std::sync::Mutex<SocketAddr>>,
    live: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let upstream = Arc::new(std::sync::Mutex::new(upstream));
        let live: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (up, lv, dn) = (upstream.clone(), live.clone(), down.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if dn.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection reset
                }
                let target = *up.lock().expect("upstream");
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                lv.lock().expect("live").push(task.abort_handle());
            }
        });
        Self {
            addr,
            upstream,
            live,
            down,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_upstream(&self, addr: SocketAddr) {
        *self.upstream.lock().expect("upstream") = addr;
    }

    /// Drops every open connection mid-stream; returns how many there were.
    pub fn cut(&self) -> usize {
        let mut live = self.live.lock().expect("live");
        let open: Vec<_> = live.drain(..).filter(|h| !h.is_finished()).collect();
        for h in &open {
            h.abort();
        }
        open.len()
    }

    /// Cuts everything and refuses new connections until [`up`](Self::up).
    pub fn down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        self.cut();
    }

    pub fn up(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// The work and the personal account of one phone number (`+86 138 0013 8000`), both signed
/// in, and a friend (`bob_the_2nd`) who is a contact of each.
pub struct TwoAccountsOnePhone {
    pub work: TestUser,
    pub home: TestUser,
    pub bob: TestUser,
}

impl TestServer {
    pub async fn two_accounts_one_phone(&self) -> TwoAccountsOnePhone {
        let phone = "+8613800138000";
        let mut users = Vec::new();
        for public_id in ["alice_work", "alice_home"] {
            self.register(phone, public_id, TEST_PASSWORD).await;
            let token = self.sign_in(public_id, TEST_PASSWORD).await;
            users.push(TestUser {
                token,
                public_id: public_id.into(),
            });
        }
        let bob = self.user(9, "bob_the_2nd").await;
        for u in &users {
            self.befriend(&bob, u).await;
        }
        let home = users.pop().expect("two users");
        let work = users.pop().expect("two users");
        TwoAccountsOnePhone { work, home, bob }
    }

    /// The id of a session of `token`'s account other than `token`'s own.
    pub async fn other_session(&self, token: &str) -> String {
        let sessions = self.get("/v1/sessions", token).await.expect(200).body;
        sessions["sessions"]
            .as_array()
            .and_then(|all| all.iter().find(|x| x["current"] == false))
            .and_then(|s| s["id"].as_str())
            .expect("another session")
            .to_string()
    }
}

/// A certificate authority made up at run time, for serving HTTPS in tests without a
/// certificate checked into the tree (one that would expire, or leak a reusable key).
pub struct TestCa {
    /// The CA's certificate, to make a client trust it.
    pub ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    pub fn new() -> Self {
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        // A name of its own: two test CAs with one name would pass for each other's issuer
        // and fail on the signature instead of on the unknown issuer.
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("Switchboard test CA {}", uuid::Uuid::new_v4().simple()),
        );
        let cert = params.self_signed(&key).expect("the CA's certificate");
        Self {
            ca_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// Issues a server certificate for `hosts` (DNS names or IP addresses; `localhost` and
    /// `127.0.0.1` when empty) and writes it and its key (PKCS#8) as PEM files of their own
    /// in `dir`. Returns `(cert_file, key_file)`.
    pub fn issue(&self, dir: &Path, hosts: &[&str]) -> (PathBuf, PathBuf) {
        let hosts: Vec<String> = if hosts.is_empty() {
            vec!["localhost".into(), "127.0.0.1".into()]
        } else {
            hosts.iter().map(|h| h.to_string()).collect()
        };
        let key = rcgen::KeyPair::generate().expect("a server key");
        let mut params =
            rcgen::CertificateParams::new(hosts.clone()).expect("server certificate params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, hosts[0].clone());
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a server certificate");
        // Unique names: a test issues several into one dir (a renewal, another CA).
        let n = uuid::Uuid::new_v4().simple();
        let cert_file = dir.join(format!("cert-{n}.pem"));
        let key_file = dir.join(format!("key-{n}.pem"));
        std::fs::write(&cert_file, cert.pem()).expect("writing the certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("writing the key");
        (cert_file, key_file)
    }
}
