//! The HTTP surface as a whole: the OpenAPI document matches the router, every bad request is
//! a typed 4xx, the dev outbox exists only in development mode, the webhook SMS gateway, and
//! the binary's flags, readiness line and clean shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_server::testing::{TEST_IDENTITY_SECRET, TestServer};

const PHONE: &str = "+8613800138000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_and_every_listed_route_is_served() {
    let s = TestServer::start().await;
    let doc = s
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200)
        .body;
    let paths = doc["paths"].as_object().expect("paths");
    let mut listed = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            listed.push(format!("{} {path}", method.to_uppercase()));
            // Fill path parameters with something; a served route never answers with the
            // router's own not_found / method_not_allowed.
            let concrete = path
                .replace("{id}", "x_id")
                .replace("{public_id}", "someone");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = s.call(m, &concrete, None, Some(json!({}))).await;
            assert!(
                !matches!(r.code(), "not_found" | "method_not_allowed"),
                "{method} {path} is documented but not served: {}",
                r.body
            );
        }
    }
    listed.sort();
    let mut expected = vec![
        "DELETE /v1/groups/{id}/members/{public_id}",
        "DELETE /v1/me/totp",
        "DELETE /v1/sessions/current",
        "DELETE /v1/sessions/{id}",
        "GET /healthz",
        "GET /v1/contacts",
        "GET /v1/contacts/requests",
        "GET /v1/dev/sms-outbox",
        "GET /v1/events",
        "GET /v1/groups",
        "GET /v1/groups/{id}",
        "GET /v1/me",
        "GET /v1/sessions",
        "GET /v1/sync",
        "GET /v1/users/{public_id}",
        "PATCH /v1/me",
        "POST /v1/accounts",
        "POST /v1/contacts/requests",
        "POST /v1/contacts/requests/{id}/accept",
        "POST /v1/groups",
        "POST /v1/groups/{id}/members",
        "POST /v1/me/identity",
        "POST /v1/me/password",
        "POST /v1/me/totp",
        "POST /v1/me/totp/confirm",
        "POST /v1/messages",
        "POST /v1/recovery",
        "POST /v1/sessions",
        "POST /v1/sessions/sms",
        "POST /v1/sms/codes",
        "PUT /v1/me/public_id",
        "GET /v1/wallet",
        "GET /v1/wallet/transactions",
        "POST /v1/wallet/topups",
        "POST /v1/wallet/transfers",
        "POST /v1/red-envelopes",
        "GET /v1/red-envelopes/{id}",
        "POST /v1/red-envelopes/{id}/claim",
        "POST /v1/official-accounts",
        "GET /v1/official-accounts",
        "GET /v1/official-accounts/{id}",
        "POST /v1/official-accounts/{id}/operators",
        "GET /v1/official-accounts/{id}/operators",
        "DELETE /v1/official-accounts/{id}/operators/{public_id}",
        "POST /v1/official-accounts/{id}/follow",
        "DELETE /v1/official-accounts/{id}/follow",
        "POST /v1/official-accounts/{id}/articles",
        "GET /v1/official-accounts/{id}/articles",
        "GET /v1/official-accounts/{id}/conversations",
        "POST /v1/official-accounts/{id}/conversations/{public_id}/claim",
        "POST /v1/official-accounts/{id}/api-keys",
        "GET /v1/official-accounts/{id}/api-keys",
        "DELETE /v1/official-accounts/{id}/api-keys/{key_id}",
        "POST /v1/media",
        "GET /v1/media/{id}",
        "POST /v1/moments",
        "GET /v1/moments/feed",
        "GET /v1/users/{public_id}/moments",
        "DELETE /v1/moments/{id}",
        "POST /v1/moments/{id}/likes",
        "POST /v1/moments/{id}/comments",
    ];
    expected.sort_unstable();
    assert_eq!(
        listed, expected,
        "the document lists exactly the API routes"
    );
    // Every error code the service can send is in the schema.
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    assert!(
        codes
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "account_choice_required"),
        "{codes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_typed_errors_never_500() {
    let s = TestServer::start().await;
    let client = reqwest::Client::new();
    let send = |body: &'static str, ctype: &'static str| {
        client
            .post(s.url("/v1/sms/codes"))
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    for (body, ctype) in [
        ("{not json", "application/json"),
        (r#"{"phone": "+8613800138000"}"#, "application/json"),
        (
            r#"{"phone": "+8613800138000", "purpose": "register", "extra": 1}"#,
            "application/json",
        ),
        (
            r#"{"phone": 8613800138000, "purpose": "register"}"#,
            "application/json",
        ),
        (
            r#"{"phone": "+8613800138000", "purpose": "spam"}"#,
            "application/json",
        ),
        (
            r#"{"phone": "+8613800138000", "purpose": "register"}"#,
            "text/plain",
        ),
        ("", "application/json"),
        ("[]", "application/json"),
    ] {
        let r = send(body, ctype).await.unwrap();
        assert_eq!(r.status(), 400, "{body:?} as {ctype}");
        let v: Value = r.json().await.expect("a JSON error body");
        assert_eq!(v["error"]["code"], "invalid_request", "{body:?}: {v}");
    }
    let unknown_field = send(
        r#"{"phone": "+8613800138000", "purpose": "register", "extra": 1}"#,
        "application/json",
    )
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert!(
        unknown_field["error"]["message"]
            .as_str()
            .unwrap()
            .contains("extra"),
        "names the field"
    );

    let huge = "x".repeat(200_000);
    let r = client
        .post(s.url("/v1/accounts"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"phone": "{huge}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );

    s.call(Method::GET, "/v1/nowhere", None, None)
        .await
        .expect_error(404, "not_found");
    s.call(Method::PUT, "/v1/sms/codes", None, None)
        .await
        .expect_error(405, "method_not_allowed");
    s.call(Method::GET, "/v1/dev/sms-outbox", None, None)
        .await
        .expect_error(400, "invalid_request");
    s.call(Method::GET, "/v1/dev/sms-outbox?phone=12", None, None)
        .await
        .expect_error(400, "invalid_phone");
    // Odd but harmless input everywhere: unicode, control characters, enormous numbers.
    for login in [
        "\u{0}",
        "\u{202e}admin",
        "+",
        "+99999999999999999999999",
        &"a".repeat(5000),
    ] {
        let r = s
            .post(
                "/v1/sessions",
                json!({"login": login, "password": "x", "device_name": "d"}),
            )
            .await;
        assert!(r.status == 400 || r.status == 401, "{login:?}: {:?}", r);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let s = TestServer::start().await;
    assert_eq!(
        s.call(Method::GET, "/healthz", None, None)
            .await
            .expect(200)
            .body["status"],
        "ok"
    );
    s.register(PHONE, "alice_w", "correct horse battery").await;
    // On the admin listener: the public port has no /metrics (tests/admin.rs).
    let text = reqwest::get(format!("http://{}/metrics", s.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="POST",route="/v1/accounts",status="201"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("switchboard_accounts_created_total 1"),
        "{text}"
    );
    assert!(!text.contains(PHONE), "no personal data in metrics");
}

/// A stand-in SMS provider: records what it is sent, answers with `status`.
async fn sms_provider(status: u16) -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dev_mode_codes_go_to_the_webhook_and_there_is_no_outbox() {
    let (url, mut sent) = sms_provider(200).await;
    let s = TestServer::start_with(|c| {
        c.dev = false;
        c.identity.hmac_secret = TEST_IDENTITY_SECRET.into();
        c.sms.gateway = "webhook".into();
        c.sms.webhook_url = url.into();
    })
    .await;
    s.post(
        "/v1/sms/codes",
        json!({"phone": PHONE, "purpose": "register"}),
    )
    .await
    .expect(202);
    let delivered = sent.recv().await.unwrap();
    assert_eq!(delivered["phone"], PHONE);
    assert_eq!(delivered["purpose"], "register");
    let code = delivered["code"].as_str().unwrap();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    s.call(
        Method::GET,
        "/v1/dev/sms-outbox?phone=%2B8613800138000",
        None,
        None,
    )
    .await
    .expect_error(404, "not_found");
    // And the delivered code registers.
    s.post(
        "/v1/accounts",
        json!({"phone": PHONE, "sms_code": code, "public_id": "alice_w",
               "password": "correct horse battery", "display_name": "Alice"}),
    )
    .await
    .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_still_202_and_counted_and_frees_a_registration_code() {
    let (url, mut sent) = sms_provider(503).await;
    let s = TestServer::start_with(|c| {
        c.dev = false;
        c.identity.hmac_secret = TEST_IDENTITY_SECRET.into();
        c.sms.gateway = "webhook".into();
        c.sms.webhook_url = url.into();
    })
    .await;
    let body = json!({"phone": PHONE, "purpose": "register"});
    // Delivery happens after the answer, so the answer cannot depend on it (nor on what the
    // number holds, which decides whether a login code is sent at all).
    s.post("/v1/sms/codes", body.clone()).await.expect(202);
    assert_eq!(
        sent.recv().await.unwrap()["phone"],
        PHONE,
        "the provider was asked"
    );
    // The provider refused: the registration code's place is freed (every number is sent one,
    // so that tells nothing), and the user may ask again without waiting out the cooldown.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.post("/v1/sms/codes", body.clone()).await;
        if r.status == 202 {
            break;
        }
        r.expect_error(429, "rate_limited");
        assert!(
            std::time::Instant::now() < deadline,
            "the failed code was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        s.metric("switchboard_sms_delivery_failures_total").await >= 1.0,
        "the operator sees the failure"
    );
}

/// The binary with a home of its own (removed when the returned dir drops).
fn server_bin() -> (Command, tempfile::TempDir) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard-server"));
    let home = tempfile::tempdir().unwrap();
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // Any free port: the default admin port would collide between parallel tests.
        .env("SWITCHBOARD_ADMIN_LISTEN", "127.0.0.1:0")
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    (c, home)
}

#[test]
fn the_binary_announces_itself_serves_and_stops_cleanly_on_sigterm() {
    let (mut bin, _home) = server_bin();
    let mut child = bin
        .args(["--dev", "--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_SMS_RESEND_COOLDOWN_SECS", "5")
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {first}"));
    assert!(!addr.ends_with(":0"), "the real port is printed: {first}");
    let second = lines.next().unwrap().unwrap();
    let admin = second
        .strip_prefix("admin on http://")
        .unwrap_or_else(|| panic!("second line: {second}"))
        .to_string();
    assert!(
        !admin.ends_with(":0"),
        "the real admin port is printed: {second}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let metrics = reqwest::get(format!("http://{admin}/metrics"))
            .await
            .unwrap();
        assert_eq!(metrics.status(), 200, "/metrics on the admin listener");
        let public = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap();
        assert_eq!(public.status(), 404, "never on the public port");
        let health: Value = reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["status"], "ok");
        let client = reqwest::Client::new();
        let body = json!({"phone": PHONE, "purpose": "register"});
        client
            .post(format!("http://{addr}/v1/sms/codes"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let r = client
            .post(format!("http://{addr}/v1/sms/codes"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()["retry-after"],
            "5",
            "env overrides reach the service"
        );
    });

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "a clean stop exits 0: {status}");
    // The dev console printed the code on stdout, never in the log.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.starts_with("[dev sms] +8613800138000 register: ")),
        "{rest:?}"
    );
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(log.contains("SMS code issued"), "{log}");
    assert!(
        !log.contains("+8613800138000"),
        "phone numbers are masked in logs: {log}"
    );
}

#[test]
fn dev_mode_listens_only_on_this_machine_and_a_real_service_needs_its_identity_key() {
    // The dev outbox hands out every SMS code: not to other machines.
    let (mut bin, _home) = server_bin();
    let out = bin
        .args(["--dev", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("loopback") && err.contains("0.0.0.0:0"),
        "says why and names the address: {err}"
    );

    let (mut bin, _home) = server_bin();
    let out = bin
        .args(["--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_SMS_GATEWAY", "webhook")
        .env(
            "SWITCHBOARD_SMS_WEBHOOK_URL",
            "http://127.0.0.1:1/sms?key=provider-key-123",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SWITCHBOARD_IDENTITY_HMAC_SECRET"),
        "names the missing key: {err}"
    );
    assert!(
        !err.contains("provider-key-123"),
        "the webhook URL is never shown: {err}"
    );
}

#[test]
fn without_dev_mode_or_a_webhook_the_binary_refuses_to_start_and_says_why() {
    let (mut bin, _home) = server_bin();
    let out = bin.args(["--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dev") && err.contains("webhook"), "{err}");

    let (mut bin, _home) = server_bin();
    let out = bin
        .args(["--dev", "--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen") && err.contains("address"),
        "names the bad setting: {err}"
    );

    let (mut bin, _home) = server_bin();
    let out = bin.args(["--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}
