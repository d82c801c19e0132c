//! Takeover and abuse paths, closed: re-authentication for two-step verification and password
//! changes, SMS code requests that tell nothing about a number, sign-ins by phone that tell
//! nothing about a public ID, text that fakes identity, keyed ID-number hashes, per-account
//! budgets under concurrent requests, and the event stream's frame cap. On SQLite and on
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use crate::common;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_server::testing::{
    Backend, Call, Reply, TEST_IDENTITY_SECRET, TEST_PASSWORD, TestDb, TestServer, TestUser,
    calls_at_once, post_at_once, resident_id,
};

switchboard_store::on_every_backend!(
    turning_two_step_verification_on_or_off_needs_the_password,
    wrong_codes_when_turning_two_step_verification_off_count_as_failed_sign_ins,
    sms_recovery_turns_two_step_verification_off_and_tells_every_device,
    a_password_change_waits_like_a_sign_in,
    twenty_concurrent_wrong_password_changes_are_judged_five_times,
    a_full_number_and_a_fresh_one_get_the_same_answer_and_the_same_delivery,
    login_codes_are_counted_alike_for_every_number,
    a_phone_login_does_not_tell_a_public_ids_wait_before_the_password,
    an_sms_login_does_not_tell_a_lock_before_the_code,
    text_that_fakes_identity_is_refused_everywhere,
    id_numbers_are_stored_as_hashes_keyed_with_the_service_secret,
    old_bare_id_number_hashes_are_marked_and_stay_verified,
    messages_per_minute_hold_under_concurrent_requests,
    each_senders_budget_holds_when_many_send_at_once,
    contact_requests_per_day_hold_under_concurrent_requests,
    group_fanout_per_minute_holds_under_concurrent_requests,
);

const P1: &str = "+8613800138001";
const P2: &str = "+8613800138002";

async fn call(s: &TestServer, method: Method, path: &str, u: &TestUser, body: Value) -> Reply {
    s.call(method, path, Some(&u.token), Some(body)).await
}

async fn sign_in(s: &TestServer, login: &str, password: &str) -> Reply {
    s.post(
        "/v1/sessions",
        json!({"login": login, "password": password, "device_name": "laptop"}),
    )
    .await
}

/// The messages the dev outbox holds for `phone`.
async fn outbox(s: &TestServer, phone: &str) -> Vec<Value> {
    let path = format!("/v1/dev/sms-outbox?phone={}", phone.replace('+', "%2B"));
    s.call(Method::GET, &path, None, None)
        .await
        .expect(200)
        .body["messages"]
        .as_array()
        .unwrap()
        .clone()
}

// --- two-step verification and the password --------------------------------------------

async fn turning_two_step_verification_on_or_off_needs_the_password(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let u = s.user(1, "alice_w").await;
    let wrong = "not my password";
    // A stolen session alone cannot bind the thief's authenticator...
    call(&s, Method::POST, "/v1/me/totp", &u, json!({}))
        .await
        .expect_error(400, "invalid_request");
    let r = call(
        &s,
        Method::POST,
        "/v1/me/totp",
        &u,
        json!({"password": wrong}),
    )
    .await
    .expect_error(401, "invalid_credentials");
    let signed_in_wrong = sign_in(&s, "alice_w", wrong)
        .await
        .expect_error(401, "invalid_credentials");
    assert_eq!(
        r.code(),
        signed_in_wrong.code(),
        "the same error as a wrong password at sign-in"
    );
    let setup = call(
        &s,
        Method::POST,
        "/v1/me/totp",
        &u,
        json!({"password": TEST_PASSWORD}),
    )
    .await
    .expect(200);
    let secret =
        switchboard_service::totp::decode_secret(setup.body["secret"].as_str().unwrap()).unwrap();
    let code = || {
        use switchboard_service::clock::Clock as _;
        switchboard_service::totp::code_at_step(
            &secret,
            switchboard_service::totp::step_at(s.clock.now_ms()),
        )
    };
    call(
        &s,
        Method::POST,
        "/v1/me/totp/confirm",
        &u,
        json!({"code": code(), "password": wrong}),
    )
    .await
    .expect_error(401, "invalid_credentials");
    assert_eq!(
        s.get("/v1/me", &u.token).await.body["totp_enabled"],
        false,
        "nothing turned on without the password"
    );
    // ...nor take the owner's away.
    let totp = s.enable_totp(&u).await;
    call(
        &s,
        Method::DELETE,
        "/v1/me/totp",
        &u,
        json!({"code": s.totp_code(&totp), "password": wrong}),
    )
    .await
    .expect_error(401, "invalid_credentials");
    assert_eq!(s.get("/v1/me", &u.token).await.body["totp_enabled"], true);

    // Those were four wrong passwords (three here, one at sign-in): the fifth makes the
    // account wait, even for the right password, here and at sign-in alike.
    call(
        &s,
        Method::DELETE,
        "/v1/me/totp",
        &u,
        json!({"code": s.totp_code(&totp), "password": wrong}),
    )
    .await
    .expect_error(401, "invalid_credentials");
    let r = call(
        &s,
        Method::DELETE,
        "/v1/me/totp",
        &u,
        json!({"code": s.totp_code(&totp), "password": TEST_PASSWORD}),
    )
    .await
    .expect_error(429, "login_throttled");
    assert_eq!(r.retry_after, Some(30));
    sign_in(&s, "alice_w", TEST_PASSWORD)
        .await
        .expect_error(429, "login_throttled");
}

async fn wrong_codes_when_turning_two_step_verification_off_count_as_failed_sign_ins(
    backend: Backend,
) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let u = s.user(1, "alice_w").await;
    let totp = s.enable_totp(&u).await;
    let right = s.totp_code(&totp);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    // The password alone (a phished one, with a stolen session) must not buy unlimited
    // guesses at the second factor.
    for _ in 0..5 {
        call(
            &s,
            Method::DELETE,
            "/v1/me/totp",
            &u,
            json!({"code": wrong, "password": TEST_PASSWORD}),
        )
        .await
        .expect_error(401, "totp_invalid");
    }
    call(
        &s,
        Method::DELETE,
        "/v1/me/totp",
        &u,
        json!({"code": right, "password": TEST_PASSWORD}),
    )
    .await
    .expect_error(429, "login_throttled");
    s.post(
        "/v1/sessions",
        json!({"login": "alice_w", "password": TEST_PASSWORD, "device_name": "x", "totp_code": right}),
    )
    .await
    .expect_error(429, "login_throttled");
    // And at sign-in, wrong codes count just the same (after the wait).
    s.clock.advance_secs(30);
    s.post(
        "/v1/sessions",
        json!({"login": "alice_w", "password": TEST_PASSWORD, "device_name": "x", "totp_code": wrong}),
    )
    .await
    .expect_error(401, "totp_invalid");
    let r = sign_in(&s, "alice_w", TEST_PASSWORD)
        .await
        .expect_error(429, "login_throttled");
    assert_eq!(r.retry_after, Some(60), "the wait doubled: a failure");
}

async fn sms_recovery_turns_two_step_verification_off_and_tells_every_device(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let u = s.user(1, "alice_w").await;
    let totp = s.enable_totp(&u).await;
    let second = s
        .post(
            "/v1/sessions",
            json!({"login": "alice_w", "password": TEST_PASSWORD, "device_name": "phone",
                   "totp_code": s.totp_code(&totp)}),
        )
        .await
        .expect(201)
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();
    let head = common::head(&http, &s.base, &u.token).await;
    let mut devices = Vec::new();
    for token in [&u.token, &second] {
        devices.push(common::connect(s.addr, token, head).await.unwrap());
    }

    // Whoever holds the SIM now (the owner, or a thief who swapped it) gets in without the
    // authenticator; every device of the account hears of it before being signed out.
    let code = s.sms_code(P1, "recover").await;
    s.post(
        "/v1/recovery",
        json!({"phone": P1, "sms_code": code, "public_id": "alice_w",
               "new_password": "a brand new secret"}),
    )
    .await
    .expect(200);
    for ws in &mut devices {
        let notice = common::next_event(ws).await.unwrap();
        assert_eq!(notice["kind"], "account.totp_disabled", "{notice}");
        assert_eq!(notice["data"], json!({"reason": "sms_recovery"}));
        let next = common::next_event(ws).await.unwrap();
        assert_eq!(next["kind"], "session.revoked", "then the sign-out: {next}");
    }
    // Off for real: the new password alone signs in.
    let t = s.sign_in("alice_w", "a brand new secret").await;
    let me = s.get("/v1/me", &t).await.expect(200);
    assert_eq!(me.body["totp_enabled"], false);
    let log = common::sync_all(&http, &s.base, &t, head).await;
    assert_eq!(
        log.iter()
            .filter(|e| e["kind"] == "account.totp_disabled")
            .count(),
        1,
        "one notice in the log: {log:?}"
    );

    // Turning it off by hand tells every device too.
    let fresh = TestUser {
        token: t,
        public_id: "alice_w".into(),
    };
    s.post("/v1/me/password", json!({})).await; // (unauthenticated: ignored)
    let totp = {
        // enable_totp signs with TEST_PASSWORD; set it back first.
        call(
            &s,
            Method::POST,
            "/v1/me/password",
            &fresh,
            json!({"current_password": "a brand new secret", "new_password": TEST_PASSWORD}),
        )
        .await
        .expect(204);
        s.enable_totp(&fresh).await
    };
    let head = common::head(&http, &s.base, &fresh.token).await;
    let mut ws = common::connect(s.addr, &fresh.token, head).await.unwrap();
    call(
        &s,
        Method::DELETE,
        "/v1/me/totp",
        &fresh,
        json!({"code": s.totp_code(&totp), "password": TEST_PASSWORD}),
    )
    .await
    .expect(204);
    let notice = common::next_event(&mut ws).await.unwrap();
    assert_eq!(notice["kind"], "account.totp_disabled");
    assert_eq!(notice["data"]["reason"], "turned_off");
}

async fn a_password_change_waits_like_a_sign_in(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let u = s.user(1, "alice_w").await;
    let change =
        |current: &str| json!({"current_password": current, "new_password": "a new secret 42"});
    for _ in 0..5 {
        call(&s, Method::POST, "/v1/me/password", &u, change("guess"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    // A stolen session is no way around the throttle: even the right password waits now.
    let r = call(
        &s,
        Method::POST,
        "/v1/me/password",
        &u,
        change(TEST_PASSWORD),
    )
    .await
    .expect_error(429, "login_throttled");
    assert_eq!(r.retry_after, Some(30));
    sign_in(&s, "alice_w", TEST_PASSWORD)
        .await
        .expect_error(429, "login_throttled");
    s.clock.advance_secs(30);
    call(
        &s,
        Method::POST,
        "/v1/me/password",
        &u,
        change(TEST_PASSWORD),
    )
    .await
    .expect(204);
}

async fn twenty_concurrent_wrong_password_changes_are_judged_five_times(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let u = s.user(1, "alice_w").await;
    let tally = post_at_once(&s.base, &u.token, "/v1/me/password", 20, |i| {
        json!({"current_password": format!("guess {i}"),
                            "new_password": "a new secret 42"})
    })
    .await;
    assert_eq!(
        tally.get(&(401, "invalid_credentials".into())),
        Some(&5),
        "five guesses are judged, the rest wait: {tally:?}"
    );
    assert_eq!(tally.get(&(429, "login_throttled".into())), Some(&15));
}

// --- SMS codes and sign-ins by phone tell nothing about a number ---------------------------

async fn a_full_number_and_a_fresh_one_get_the_same_answer_and_the_same_delivery(backend: Backend) {
    let s = TestServer::start_on(backend, |c| c.accounts.per_phone = 1).await;
    s.user(1, "alice_w").await; // P1 now holds all the accounts it may
    s.clock.advance_secs(60);
    let issued = s.metric("switchboard_sms_codes_issued_total").await;
    let full = s
        .post("/v1/sms/codes", json!({"phone": P1, "purpose": "register"}))
        .await;
    let fresh = s
        .post("/v1/sms/codes", json!({"phone": P2, "purpose": "register"}))
        .await;
    assert_eq!(
        (full.status, &full.body, full.retry_after),
        (fresh.status, &fresh.body, fresh.retry_after),
        "a stranger cannot tell a full number from a fresh one"
    );
    assert_eq!(full.status, 202, "{}", full.body);
    assert_eq!(
        s.metric("switchboard_sms_codes_issued_total").await,
        issued + 2.0,
        "the metric moves alike"
    );
    let code_of = |messages: Vec<Value>| {
        let register: Vec<_> = messages
            .iter()
            .filter(|m| m["purpose"] == "register")
            .collect();
        register.last().unwrap()["code"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let full_code = code_of(outbox(&s, P1).await);
    let fresh_code = code_of(outbox(&s, P2).await);

    // The limit is told to whoever proves the phone, and only to them.
    let body = |phone: &str, code: &str, id: &str| {
        json!({"phone": phone, "sms_code": code, "public_id": id,
               "password": TEST_PASSWORD, "display_name": id})
    };
    let wrong = if full_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    s.post("/v1/accounts", body(P1, wrong, "alice_two"))
        .await
        .expect_error(400, "sms_code_invalid");
    s.post("/v1/accounts", body(P1, &full_code, "alice_two"))
        .await
        .expect_error(409, "phone_account_limit");
    s.post("/v1/accounts", body(P2, &fresh_code, "bob_the_2nd"))
        .await
        .expect(201);
}

async fn login_codes_are_counted_alike_for_every_number(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    s.user(1, "alice_w").await;
    let issued = s.metric("switchboard_sms_codes_issued_total").await;
    for purpose in ["login", "recover"] {
        let known = s
            .post("/v1/sms/codes", json!({"phone": P1, "purpose": purpose}))
            .await
            .expect(202);
        let unknown = s
            .post("/v1/sms/codes", json!({"phone": P2, "purpose": purpose}))
            .await
            .expect(202);
        assert_eq!(known.body, unknown.body);
    }
    assert_eq!(
        s.metric("switchboard_sms_codes_issued_total").await,
        issued + 4.0,
        "every code request counts, whatever the number holds"
    );
    // Only the number with an account is sent anything (after the answers).
    assert_eq!(outbox(&s, P1).await.len(), 3, "register, login, recover");
    assert!(outbox(&s, P2).await.is_empty());
}

async fn a_phone_login_does_not_tell_a_public_ids_wait_before_the_password(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    s.user(1, "alice_w").await;
    // Anyone can make a public ID wait: public IDs are public.
    for _ in 0..5 {
        sign_in(&s, "alice_w", "guess")
            .await
            .expect_error(401, "invalid_credentials");
    }
    sign_in(&s, "alice_w", "guess")
        .await
        .expect_error(429, "login_throttled");
    // Were that wait told to a phone login, trying numbers until one answers "throttled"
    // would find alice_w's number.
    let hers = sign_in(&s, P1, "another guess").await;
    let nobodys = sign_in(&s, P2, "another guess").await;
    assert_eq!(
        (hers.status, &hers.body),
        (nobodys.status, &nobodys.body),
        "her number answers like a number without accounts"
    );
    hers.expect_error(401, "invalid_credentials");
    // Nor after the password: her right password by phone answers exactly as a wrong one
    // while she waits (a 429 for it would tell it apart), and the wait holds.
    let right = sign_in(&s, P1, TEST_PASSWORD).await;
    assert_eq!((right.status, &right.body), (nobodys.status, &nobodys.body));
    s.clock.advance_secs(30);
    sign_in(&s, P1, TEST_PASSWORD).await.expect(201);
}

async fn an_sms_login_does_not_tell_a_lock_before_the_code(backend: Backend) {
    let s = TestServer::start_on(backend, |c| {
        c.sessions.lock_after = 3;
        c.sessions.throttle_after = 50;
    })
    .await;
    s.user(1, "alice_w").await;
    for _ in 0..3 {
        sign_in(&s, "alice_w", "guess")
            .await
            .expect_error(401, "invalid_credentials");
    }
    sign_in(&s, "alice_w", TEST_PASSWORD)
        .await
        .expect_error(423, "account_locked");
    let try_code = |phone: &'static str| {
        s.post(
            "/v1/sessions/sms",
            json!({"phone": phone, "sms_code": "123456"}),
        )
    };
    let hers = try_code(P1).await;
    let nobodys = try_code(P2).await;
    assert_eq!(
        (hers.status, &hers.body),
        (nobodys.status, &nobodys.body),
        "a locked account's number answers like any other before the code"
    );
    assert_ne!(hers.status, 423, "{}", hers.body);
    // With the code, the lock holds: only recovery lifts it.
    let code = s.sms_code(P1, "login").await;
    s.post("/v1/sessions/sms", json!({"phone": P1, "sms_code": code}))
        .await
        .expect_error(423, "account_locked");
}

// --- text that fakes identity ------------------------------------------------------------

async fn text_that_fakes_identity_is_refused_everywhere(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let a = s.verified_user(1, "alice_w").await;
    let b = s.verified_user(2, "bob_the_2nd").await;
    let c = s.user(3, "carol_c").await;
    s.befriend(&a, &b).await;
    s.post_as(
        &a,
        "/v1/wallet/topups",
        json!({"amount": 10_000, "idempotency_key": "top-1"}),
    )
    .await
    .expect(201);
    // An override that shows "Alice" + reversed text, a right-to-left mark, an isolate, a
    // zero-width space, a line separator, a byte-order mark, an Arabic letter mark.
    let fakes = [
        "Bob\u{202E}ecilA",
        "Bob\u{200F}",
        "\u{2066}Bob\u{2069}",
        "B\u{200B}ob",
        "Bob\u{2028}Alice: send money",
        "\u{FEFF}Bob",
        "Bob\u{061C}",
        "Bob\u{200D}",
        "Bob\u{2060}",
    ];
    for fake in fakes {
        let shown = format!("{fake:?}");
        s.call(
            Method::PATCH,
            "/v1/me",
            Some(&a.token),
            Some(json!({"display_name": fake})),
        )
        .await
        .expect_error(400, "invalid_display_name");
        s.post_as(
            &a,
            "/v1/groups",
            json!({"name": fake, "members": [b.public_id]}),
        )
        .await
        .expect_error(400, "invalid_group_name");
        s.post_as(
            &a,
            "/v1/contacts/requests",
            json!({"public_id": c.public_id, "note": fake}),
        )
        .await
        .expect_error(400, "invalid_request");
        s.post_as(
            &a,
            "/v1/wallet/transfers",
            json!({"to": b.public_id, "amount": 1, "note": fake, "idempotency_key": "t-fake"}),
        )
        .await
        .expect_error(400, "invalid_request");
        s.post_as(
            &a,
            "/v1/red-envelopes",
            json!({"to": b.public_id, "total": 1, "count": 1, "mode": "equal",
                   "greeting": fake, "idempotency_key": "e-fake"}),
        )
        .await
        .expect_error(400, "invalid_request");
        s.post(
            "/v1/sessions",
            json!({"login": "alice_w", "password": TEST_PASSWORD, "device_name": fake}),
        )
        .await
        .expect_error(400, "invalid_request");
        let code = s.sms_code("+8613800138099", "register").await;
        s.post(
            "/v1/accounts",
            json!({"phone": "+8613800138099", "sms_code": code, "public_id": "faker_1",
                   "password": TEST_PASSWORD, "display_name": fake}),
        )
        .await
        .expect_error(400, "invalid_display_name");
        s.clock.advance_secs(60);
        let me = s.get("/v1/me", &a.token).await.expect(200);
        assert_eq!(
            me.body["display_name"], "alice_w",
            "{shown}: nothing stored"
        );
    }
    // The same fields take ordinary text in any script.
    for name in ["Alice 王", "محمد", "Zoë 🎉"] {
        s.call(
            Method::PATCH,
            "/v1/me",
            Some(&a.token),
            Some(json!({"display_name": name})),
        )
        .await
        .expect(200);
    }
    s.post_as(
        &a,
        "/v1/groups",
        json!({"name": "家人 family", "members": [b.public_id]}),
    )
    .await
    .expect(201);
    s.post_as(
        &a,
        "/v1/wallet/transfers",
        json!({"to": b.public_id, "amount": 1, "note": "午饭 lunch", "idempotency_key": "t-ok"}),
    )
    .await
    .expect(201);
}

// --- ID numbers --------------------------------------------------------------------------

/// `(id_number_hash, id_number_hash_kind, identity verified)` of an account, read from the
/// database itself.
async fn stored_identity(
    url: &str,
    backend: Backend,
    id: &str,
) -> (Option<String>, Option<String>, bool) {
    let sql = "SELECT id_number_hash, id_number_hash_kind, identity_verified_at FROM accounts \
               WHERE public_id_lower = $1";
    let (hash, kind, at): (Option<String>, Option<String>, Option<i64>) = match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let row = sqlx::query_as(sql).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            row
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let row = sqlx::query_as(sql).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            row
        }
    };
    (hash, kind, at.is_some())
}

async fn id_numbers_are_stored_as_hashes_keyed_with_the_service_secret(backend: Backend) {
    let s = TestServer::start_on(backend, |c| {
        c.identity.hmac_secret = TEST_IDENTITY_SECRET.into();
    })
    .await;
    s.verified_user(1, "alice_w").await;
    let (hash, kind, verified) = stored_identity(s.database_url(), backend, "alice_w").await;
    assert!(verified);
    let hash = hash.unwrap();
    let keyed = switchboard_service::identity::IdNumberKey::new(TEST_IDENTITY_SECRET.as_bytes())
        .digest(&resident_id(1))
        .unwrap();
    assert_eq!(hash, keyed, "HMAC-SHA256 under identity.hmac_secret");
    assert_eq!(kind.as_deref(), Some("hmac-sha256"));
    let bare = {
        use sha2::Digest;
        data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(resident_id(1).as_bytes()))
    };
    assert_ne!(
        hash, bare,
        "not a bare hash: anyone with the database could try every ID number against that"
    );

    // In development mode with no key set, the process makes one up: still keyed.
    let d = TestServer::start_on(backend, |_| {}).await;
    d.verified_user(1, "alice_w").await;
    let (hash, kind, _) = stored_identity(d.database_url(), backend, "alice_w").await;
    assert_ne!(hash.as_deref(), Some(bare.as_str()));
    assert_ne!(hash.as_deref(), Some(keyed.as_str()), "a key of its own");
    assert_eq!(kind.as_deref(), Some("hmac-sha256"));
}

async fn old_bare_id_number_hashes_are_marked_and_stay_verified(backend: Backend) {
    let db = TestDb::new(backend).await;
    // A database as the service left it before the keyed hash (migrations 1 to 3), with one
    // verified account holding a bare SHA-256 and one unverified account.
    let insert = "INSERT INTO accounts (id, phone, slot, public_id, public_id_lower, display_name, \
                  password_hash, created_at, legal_name, id_number_hash, id_number_masked, \
                  identity_verified_at) VALUES \
                  ('acc_old', '+8613800138001', 0, 'old_one', 'old_one', 'Old', 'x', 1, '张三', \
                   'bare-sha256-hex', '**************002X', 2), \
                  ('acc_new', '+8613800138002', 0, 'new_one', 'new_one', 'New', 'x', 1, NULL, \
                   NULL, NULL, NULL)";
    match backend {
        Backend::Sqlite => {
            let opts = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&db.url)
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
            sqlx::migrate!("../store/migrations/sqlite")
                .run_to(3, &pool)
                .await
                .unwrap();
            sqlx::query(insert).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            sqlx::migrate!("../store/migrations/postgres")
                .run_to(3, &pool)
                .await
                .unwrap();
            sqlx::query(insert).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    // The service opens it and brings it up to date.
    let store = switchboard_store::open(&db.url).await.unwrap();
    let old = store.account_by_id("acc_old").await.unwrap().unwrap();
    store.close().await;
    assert!(
        old.identity_verified_at.is_some(),
        "a verified account stays verified: what it may do never depended on the hash"
    );
    let (hash, kind, _) = stored_identity(&db.url, backend, "old_one").await;
    assert_eq!(
        hash.as_deref(),
        Some("bare-sha256-hex"),
        "kept: it cannot be re-keyed"
    );
    assert_eq!(
        kind.as_deref(),
        Some("sha256"),
        "and marked as the bare kind"
    );
    let (hash, kind, verified) = stored_identity(&db.url, backend, "new_one").await;
    assert_eq!((hash, kind, verified), (None, None, false));
}

// --- per-account budgets -------------------------------------------------------------------

async fn messages_per_minute_hold_under_concurrent_requests(backend: Backend) {
    let s = TestServer::start_on(backend, |c| c.limits.messages_per_minute = 5).await;
    let a = s.user(1, "alice_w").await;
    let b = s.user(2, "bob_the_2nd").await;
    s.befriend(&a, &b).await;
    let first = json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": b.public_id,
                       "body": "the first"});
    let sent = s
        .post_as(&a, "/v1/messages", first.clone())
        .await
        .expect(201);
    let tally = post_at_once(&s.base, &a.token, "/v1/messages", 14, |i| {
        let to = &b.public_id;
        json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to,
                            "body": format!("hello {i}")})
    })
    .await;
    assert_eq!(tally.get(&(201, String::new())), Some(&4), "{tally:?}");
    assert_eq!(
        tally.get(&(429, "rate_limited".into())),
        Some(&10),
        "{tally:?}"
    );
    // A retry of a message that went is answered as sent, over budget or not.
    let again = s.post_as(&a, "/v1/messages", first).await.expect(201);
    assert_eq!(again.body["id"], sent.body["id"]);
    let send = || {
        s.post_as(
            &a,
            "/v1/messages",
            json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": b.public_id, "body": "hi"}),
        )
    };
    let r = send().await.expect_error(429, "rate_limited");
    assert_eq!(
        r.retry_after,
        Some(60),
        "when the first of the five leaves the minute"
    );
    // Bob's budget is his own.
    s.post_as(
        &b,
        "/v1/messages",
        json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": a.public_id, "body": "hi"}),
    )
    .await
    .expect(201);
    s.clock.advance_secs(60);
    send().await.expect(201);
    let events = common::sync_all(&reqwest::Client::new(), &s.base, &b.token, 0).await;
    assert_eq!(
        events.iter().filter(|e| e["kind"] == "message.new").count(),
        7,
        "exactly what was accepted was delivered"
    );
}

/// Many senders' messages are judged together (one write commits many), each against its own
/// budget: three senders with 2, 5 and 0 of their 5 left each get exactly that many through.
async fn each_senders_budget_holds_when_many_send_at_once(backend: Backend) {
    let s = TestServer::start_on(backend, |c| c.limits.messages_per_minute = 5).await;
    let to = s.user(9, "the_recipient").await;
    let mut senders = Vec::new();
    for (n, id) in ["sender_a", "sender_b", "sender_c"].into_iter().enumerate() {
        let u = s.user(u32::try_from(n).unwrap() + 1, id).await;
        s.befriend(&u, &to).await;
        senders.push(u);
    }
    // After every sign-up (which moves the test clock on): these count in the same minute.
    for (u, already) in senders.iter().zip([3, 0, 5]) {
        for i in 0..already {
            s.post_as(
                u,
                "/v1/messages",
                json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to.public_id,
                       "body": format!("earlier {i}")}),
            )
            .await
            .expect(201);
        }
    }
    let tally = calls_at_once(24, |i| {
        let body = json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to.public_id,
                          "body": format!("at once {i}")});
        Call::post(&s.base, "/v1/messages", Some(&senders[i % 3].token), body)
    })
    .await;
    assert_eq!(tally.get(&(201, String::new())), Some(&7), "{tally:?}");
    assert_eq!(
        tally.get(&(429, "rate_limited".into())),
        Some(&17),
        "{tally:?}"
    );
    let events = common::sync_all(&reqwest::Client::new(), &s.base, &to.token, 0).await;
    for u in &senders {
        assert_eq!(
            events
                .iter()
                .filter(|e| e["kind"] == "message.new" && e["data"]["from"] == u.public_id.as_str())
                .count(),
            5,
            "{} sent its five in the minute and no more",
            u.public_id
        );
    }
}

async fn contact_requests_per_day_hold_under_concurrent_requests(backend: Backend) {
    let s = TestServer::start_on(backend, |c| c.limits.contact_requests_per_day = 3).await;
    let a = s.user(1, "alice_w").await;
    // Thirteen race for the budget; the fourteenth is asked for a day later.
    let targets: Vec<String> = (0..14).map(|i| format!("target_{i:02}")).collect();
    for (i, id) in targets.iter().enumerate() {
        s.register(&format!("+86138001381{i:02}"), id, TEST_PASSWORD)
            .await;
    }
    let tally = post_at_once(&s.base, &a.token, "/v1/contacts/requests", 13, |i| {
        let to = &targets[i];
        json!({"public_id": to, "note": "hi"})
    })
    .await;
    assert_eq!(tally.get(&(201, String::new())), Some(&3), "{tally:?}");
    assert_eq!(
        tally.get(&(429, "rate_limited".into())),
        Some(&10),
        "{tally:?}"
    );
    let pending = s.get("/v1/contacts/requests", &a.token).await.expect(200);
    assert_eq!(
        pending.body["outgoing"].as_array().unwrap().len(),
        3,
        "refused requests left nothing behind"
    );
    s.clock.advance_secs(24 * 3600);
    s.post_as(
        &a,
        "/v1/contacts/requests",
        json!({"public_id": "target_13", "note": ""}),
    )
    .await
    .expect(201);
}

async fn group_fanout_per_minute_holds_under_concurrent_requests(backend: Backend) {
    // A group of three: creating it is three deliveries, each message three more.
    let s = TestServer::start_on(backend, |c| c.limits.group_fanout_per_minute = 12).await;
    let a = s.user(1, "alice_w").await;
    let b = s.user(2, "bob_the_2nd").await;
    let c = s.user(3, "carol_c").await;
    let d = s.user(4, "dave_d_4").await;
    for u in [&b, &c, &d] {
        s.befriend(&a, u).await;
    }
    let group = s
        .post_as(
            &a,
            "/v1/groups",
            json!({"name": "Team", "members": [b.public_id, c.public_id]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tally = post_at_once(&s.base, &a.token, "/v1/messages", 13, |i| {
        let to = &group;
        json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to,
                            "body": format!("all of you {i}")})
    })
    .await;
    assert_eq!(tally.get(&(201, String::new())), Some(&3), "{tally:?}");
    assert_eq!(
        tally.get(&(429, "rate_limited".into())),
        Some(&10),
        "{tally:?}"
    );
    // Adding a member tells every member: that is fan-out too.
    s.post_as(
        &a,
        &format!("/v1/groups/{group}/members"),
        json!({"members": [d.public_id]}),
    )
    .await
    .expect_error(429, "rate_limited");
    // Direct messages are not group fan-out.
    s.post_as(
        &a,
        "/v1/messages",
        json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": b.public_id, "body": "hi"}),
    )
    .await
    .expect(201);
    // Leaving is never held back.
    s.call(
        Method::DELETE,
        &format!("/v1/groups/{group}/members/{}", a.public_id),
        Some(&a.token),
        None,
    )
    .await
    .expect(204);
}

// --- the event stream ------------------------------------------------------------------------

/// A client may send the stream only control frames (and at worst a short stray text): a
/// frame announcing a megabyte ends the connection at its header, before its payload is
/// waited for or buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_refuses_a_huge_frame_at_its_header() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start().await;
    let u = s.user(1, "alice_w").await;
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let upgrade = format!(
        "GET /v1/events?since=0 HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {}\r\n\r\n",
        s.addr, u.token
    );
    tcp.write_all(upgrade.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // FIN + text; masked, 64-bit length: 1 MiB. Then a mask key and five bytes of it.
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(1u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(b"hello");
    tcp.write_all(&frame).await.unwrap();
    // Within the ping interval (20 s), so only the cap can end it.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // events, or the close frame
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the service must end the connection at the oversized frame's header"
    );
}
