//! A port-0 service over a temp SQLite file with a hand-driven clock, for tests. Dropping it
//! shuts the service down and removes its files.

// Test scaffolding: a failure here is a broken test set-up, and a panic says so best.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clock::{ManualClock, OsEntropy};
use crate::identity::ChecksumVerifier;
use crate::{Config, Services};

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub clock: ManualClock,
    pub config: Config,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// A development-mode service (console SMS gateway, dev outbox) with default limits.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`start`](Self::start), with the config adjusted first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the test database");
        let mut config = Config {
            dev: true,
            ..Config::default()
        };
        config.log.file = false;
        config.database_url = format!("sqlite://{}", dir.path().join("server.db").display());
        adjust(&mut config);
        Self::launch_in(dir, config, ManualClock::new()).await
    }

    async fn launch_in(dir: tempfile::TempDir, config: Config, clock: ManualClock) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let services = Services {
            clock: Arc::new(clock.clone()),
            entropy: Arc::new(OsEntropy),
            identity: Arc::new(ChecksumVerifier),
            funding: Arc::new(crate::wallet::SandboxFunding),
        };
        // Build first so a bad config fails the test here, with its message.
        let (router, app) = crate::build(config.clone(), services, shutdown.clone())
            .await
            .expect("service builds");
        let task = tokio::spawn(async move {
            let _ = crate::app::serve(router, app, listener).await;
        });
        Self {
            addr,
            base: format!("http://{addr}"),
            clock,
            config,
            shutdown,
            task: Some(task),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The folder holding the database (removed on drop).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the service and starts it again on the same database and clock (a new port).
    pub async fn restart(mut self) -> Self {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        Self::launch_in(dir, self.config.clone(), self.clock.clone()).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
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
        let client = reqwest::Client::new();
        let mut req = client.request(method, self.url(path));
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
/// A valid mainland resident ID number (GB 11643's example) for real-name verification.
pub const TEST_RESIDENT_ID: &str = "11010519491231002X";

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
            serde_json::json!({"legal_name": "张三", "id_number": TEST_RESIDENT_ID}),
        )
        .await
        .expect(200);
        u
    }

    pub async fn post_as(&self, u: &TestUser, path: &str, body: serde_json::Value) -> Reply {
        self.call(reqwest::Method::POST, path, Some(&u.token), Some(body))
            .await
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
