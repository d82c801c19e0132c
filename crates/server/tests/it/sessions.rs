//! SPEC §1.2 through HTTP: sign-in, throttling and locking, sessions, two-step verification
//! and the account's own settings.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use reqwest::Method;
use serde_json::json;
use switchboard_server::testing::{Call, Reply, TestServer, calls_at_once};
use switchboard_service::totp;

const PHONE: &str = "+8613800138000";
const PASSWORD: &str = "correct horse battery";

async fn try_sign_in(s: &TestServer, login: &str, password: &str) -> Reply {
    s.post(
        "/v1/sessions",
        json!({"login": login, "password": password, "device_name": "laptop"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_by_public_id_case_insensitively_or_by_phone() {
    let s = TestServer::start().await;
    let acct = s.register(PHONE, "alice_w", PASSWORD).await;
    let r = try_sign_in(&s, "ALICE_W", PASSWORD).await.expect(201);
    assert_eq!(r.body["account"], acct);
    assert_eq!(
        r.body["token"].as_str().unwrap().len(),
        43,
        "256 bits, base64url"
    );
    let r = try_sign_in(&s, "+86 138 0013 8000", PASSWORD)
        .await
        .expect(201);
    assert_eq!(r.body["account"]["public_id"], "alice_w");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_account_get_the_same_answer() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    let wrong = try_sign_in(&s, "alice_w", "not the password")
        .await
        .expect_error(401, "invalid_credentials");
    let unknown = try_sign_in(&s, "nobody_here", "not the password")
        .await
        .expect_error(401, "invalid_credentials");
    let unknown_phone = try_sign_in(&s, "+8613800138009", "x")
        .await
        .expect_error(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body, unknown_phone.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_with_two_accounts_asks_which_but_only_after_the_right_password() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_work", PASSWORD).await;
    s.register(PHONE, "alice_home", "personal secret!").await;
    // A stranger with the number learns nothing.
    try_sign_in(&s, PHONE, "a guess at it")
        .await
        .expect_error(401, "invalid_credentials");
    for pw in [PASSWORD, "personal secret!"] {
        let r = try_sign_in(&s, PHONE, pw)
            .await
            .expect_error(409, "account_choice_required");
        assert_eq!(
            r.body["error"]["public_ids"],
            json!(["alice_work", "alice_home"])
        );
    }
    let r = try_sign_in(&s, "alice_home", "personal secret!")
        .await
        .expect(201);
    assert_eq!(r.body["account"]["is_secondary"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failures_throttle_even_the_right_password_with_growing_delays() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    for _ in 0..5 {
        try_sign_in(&s, "alice_w", "wrong one")
            .await
            .expect_error(401, "invalid_credentials");
    }
    let r = try_sign_in(&s, "alice_w", PASSWORD)
        .await
        .expect_error(429, "login_throttled");
    assert_eq!(r.retry_after, Some(30));
    s.clock.advance_secs(30);
    try_sign_in(&s, "alice_w", "wrong one")
        .await
        .expect_error(401, "invalid_credentials");
    let r = try_sign_in(&s, "alice_w", PASSWORD)
        .await
        .expect_error(429, "login_throttled");
    assert_eq!(r.retry_after, Some(60), "the delay doubles");
    // By phone number, the same account is held back just the same, and the right password
    // answers exactly as a wrong one (a 429 for the right one would give it away).
    let right = try_sign_in(&s, PHONE, PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
    let wrong = try_sign_in(&s, PHONE, "wrong one")
        .await
        .expect_error(401, "invalid_credentials");
    assert_eq!(
        (right.body, right.retry_after),
        (wrong.body, wrong.retry_after)
    );
    s.clock.advance_secs(60);
    try_sign_in(&s, "alice_w", PASSWORD).await.expect(201);
    // Success clears the count.
    try_sign_in(&s, "alice_w", "wrong one")
        .await
        .expect_error(401, "invalid_credentials");
    try_sign_in(&s, "alice_w", PASSWORD).await.expect(201);
}

/// Phone and public ID are one budget: guesses by either, one after another or all at once,
/// throttle the account for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_and_public_id_share_one_throttle() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    for _ in 0..5 {
        try_sign_in(&s, PHONE, "wrong one")
            .await
            .expect_error(401, "invalid_credentials");
    }
    try_sign_in(&s, "alice_w", PASSWORD)
        .await
        .expect_error(429, "login_throttled");
    s.clock.advance_secs(3600);
    try_sign_in(&s, "alice_w", PASSWORD).await.expect(201);

    // Twenty guesses at once, half by phone, half by public ID: each a wrong password's
    // answer or a wait, and then the right password waits by either way in.
    let calls: Vec<Call> = (0..20)
        .map(|i| {
            let login = if i % 2 == 0 { PHONE } else { "alice_w" };
            Call::post(
                &s.base,
                "/v1/sessions",
                None,
                json!({"login": login, "password": format!("guess {i}"), "device_name": "laptop"}),
            )
        })
        .collect();
    let tally = calls_at_once(calls.len(), |i| calls[i].clone()).await;
    let judged = tally
        .get(&(401, "invalid_credentials".into()))
        .copied()
        .unwrap_or(0);
    let throttled = tally
        .get(&(429, "login_throttled".into()))
        .copied()
        .unwrap_or(0);
    assert_eq!(judged + throttled, 20, "{tally:?}");
    assert!(throttled >= 5, "{tally:?}");
    try_sign_in(&s, "alice_w", PASSWORD)
        .await
        .expect_error(429, "login_throttled");
    // By phone (the number's own wait, told as it is the number's), right as wrong.
    let right = try_sign_in(&s, PHONE, PASSWORD).await;
    let wrong = try_sign_in(&s, PHONE, "wrong one").await;
    assert_ne!(right.status, 201);
    assert_eq!((right.status, right.code()), (wrong.status, wrong.code()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_accounts_are_throttled_exactly_like_known_ones() {
    let s = TestServer::start().await;
    for _ in 0..5 {
        try_sign_in(&s, "nobody_here", "guess")
            .await
            .expect_error(401, "invalid_credentials");
    }
    let r = try_sign_in(&s, "nobody_here", "guess")
        .await
        .expect_error(429, "login_throttled");
    assert_eq!(
        r.retry_after,
        Some(30),
        "else the 429 would tell which accounts exist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delay_is_capped_at_an_hour_and_the_hundredth_failure_locks() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    let mut failures = 0;
    let mut waits = Vec::new();
    while failures < 100 {
        let r = try_sign_in(&s, "alice_w", "wrong one").await;
        match r.status {
            401 => failures += 1,
            429 => {
                let wait = r.retry_after.expect("Retry-After");
                waits.push(wait);
                s.clock.advance_secs(i64::try_from(wait).unwrap());
            }
            _ => panic!("unexpected {r:?}"),
        }
    }
    assert_eq!(
        &waits[..8],
        &[30, 60, 120, 240, 480, 960, 1920, 3600],
        "30 s doubling, capped at 1 h"
    );
    assert!(
        waits[8..].iter().all(|w| *w == 3600),
        "and never more than an hour"
    );
    s.clock.advance_secs(3600);
    try_sign_in(&s, "alice_w", PASSWORD)
        .await
        .expect_error(423, "account_locked");
    s.clock.advance_secs(30 * 24 * 3600);
    try_sign_in(&s, "alice_w", PASSWORD)
        .await
        .expect_error(423, "account_locked");
    let code = s.sms_code(PHONE, "login").await;
    s.post(
        "/v1/sessions/sms",
        json!({"phone": PHONE, "sms_code": code}),
    )
    .await
    .expect_error(423, "account_locked");

    // Recovery by SMS lifts the lock.
    let code = s.sms_code(PHONE, "recover").await;
    s.post("/v1/recovery", json!({"phone": PHONE, "sms_code": code, "public_id": "alice_w", "new_password": "fresh start 2026"}))
        .await
        .expect(200);
    s.sign_in("alice_w", "fresh start 2026").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_per_ip_are_limited() {
    let s = TestServer::start_with(|c| c.sessions.login_per_ip_per_hour = 4).await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    for _ in 0..4 {
        try_sign_in(&s, "alice_w", PASSWORD).await.expect(201);
    }
    let r = try_sign_in(&s, "alice_w", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
    assert!(r.retry_after.unwrap() <= 3600, "{r:?}");
    s.clock.advance_secs(3601);
    try_sign_in(&s, "alice_w", PASSWORD).await.expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_sign_in_with_account_choice_keeps_the_code_for_the_retry() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_work", PASSWORD).await;
    s.register(PHONE, "alice_home", PASSWORD).await;
    let code = s.sms_code(PHONE, "login").await;
    let r = s
        .post(
            "/v1/sessions/sms",
            json!({"phone": PHONE, "sms_code": code}),
        )
        .await
        .expect_error(409, "account_choice_required");
    assert_eq!(
        r.body["error"]["public_ids"],
        json!(["alice_work", "alice_home"])
    );
    let r = s
        .post("/v1/sessions/sms", json!({"phone": PHONE, "sms_code": code, "public_id": "alice_home", "device_name": "phone"}))
        .await
        .expect(201);
    assert_eq!(r.body["account"]["public_id"], "alice_home");
    s.post(
        "/v1/sessions/sms",
        json!({"phone": PHONE, "sms_code": code, "public_id": "alice_home"}),
    )
    .await
    .expect_error(400, "sms_code_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sms_codes_count_as_failed_sign_ins_across_new_codes() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    for round in 0..2 {
        if round > 0 {
            s.clock.advance_secs(60);
        }
        let code = s.sms_code(PHONE, "login").await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..3 {
            s.post(
                "/v1/sessions/sms",
                json!({"phone": PHONE, "sms_code": wrong}),
            )
            .await
            .expect_error(400, "sms_code_invalid");
        }
    }
    // Six failures by the number: signing in by the number now waits, even with the right
    // password...
    try_sign_in(&s, PHONE, PASSWORD)
        .await
        .expect_error(429, "login_throttled");
    // ...but they are the number's, not the account's: were they counted on alice_w, a
    // stranger guessing codes for a number could watch which public ID starts to wait, and so
    // learn whose number it is.
    try_sign_in(&s, "alice_w", PASSWORD).await.expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_revoked_and_a_revoked_token_says_so() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    let laptop = s.sign_in("alice_w", PASSWORD).await;
    let phone = s.sign_in("alice_w", PASSWORD).await;
    let list = s.get("/v1/sessions", &laptop).await.expect(200).body;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|x| x["current"] == true).count(), 1);
    let other = sessions.iter().find(|x| x["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    s.call(
        Method::DELETE,
        &format!("/v1/sessions/{other}"),
        Some(&laptop),
        None,
    )
    .await
    .expect(204);
    s.get("/v1/me", &phone)
        .await
        .expect_error(401, "session_revoked");
    s.call(
        Method::DELETE,
        &format!("/v1/sessions/{other}"),
        Some(&laptop),
        None,
    )
    .await
    .expect_error(404, "session_not_found");
    s.call(Method::DELETE, "/v1/sessions/current", Some(&laptop), None)
        .await
        .expect(204);
    s.get("/v1/me", &laptop)
        .await
        .expect_error(401, "session_revoked");
    s.get("/v1/me", "not-a-token")
        .await
        .expect_error(401, "unauthorized");
    s.call(Method::GET, "/v1/me", None, None)
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_account_cannot_revoke_anothers_session() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    s.register("+8613800138001", "bob_is_here", PASSWORD).await;
    let alice = s.sign_in("alice_w", PASSWORD).await;
    let bob = s.sign_in("bob_is_here", PASSWORD).await;
    let bob_session = s.get("/v1/sessions", &bob).await.body["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.call(
        Method::DELETE,
        &format!("/v1/sessions/{bob_session}"),
        Some(&alice),
        None,
    )
    .await
    .expect_error(404, "session_not_found");
    s.get("/v1/me", &bob).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    let t = s.sign_in("alice_w", PASSWORD).await;
    s.clock.advance_secs(30 * 24 * 3600);
    s.get("/v1/me", &t)
        .await
        .expect_error(401, "session_expired");
}

fn current_code(secret: &str, clock_ms: i64) -> String {
    let raw = totp::decode_secret(secret).unwrap();
    totp::code_at_step(&raw, totp::step_at(clock_ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_setup_sign_in_replay_protection_recovery_codes_and_disable() {
    use switchboard_service::clock::Clock as _;
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    let t = s.sign_in("alice_w", PASSWORD).await;
    let pw = json!({"password": PASSWORD});
    let setup = s
        .call(Method::POST, "/v1/me/totp", Some(&t), Some(pw))
        .await
        .expect(200)
        .body;
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Switchboard:alice_w?secret=")
    );
    // Not on until confirmed.
    try_sign_in(&s, "alice_w", PASSWORD).await.expect(201);
    let confirm = |c: &str| json!({"code": c, "password": PASSWORD});
    s.call(
        Method::POST,
        "/v1/me/totp/confirm",
        Some(&t),
        Some(confirm("000000")),
    )
    .await
    .expect_error(401, "totp_invalid");
    let code = current_code(&secret, s.clock.now_ms());
    let codes = s
        .call(
            Method::POST,
            "/v1/me/totp/confirm",
            Some(&t),
            Some(confirm(&code)),
        )
        .await
        .expect(200)
        .body["recovery_codes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(codes.len(), 10);
    assert_eq!(s.get("/v1/me", &t).await.body["totp_enabled"], true);

    try_sign_in(&s, "alice_w", PASSWORD)
        .await
        .expect_error(401, "totp_required");
    // The code used to confirm cannot be replayed to sign in.
    let with = |c: &str| json!({"login": "alice_w", "password": PASSWORD, "device_name": "x", "totp_code": c});
    s.post("/v1/sessions", with(&code))
        .await
        .expect_error(401, "totp_invalid");
    s.clock.advance_secs(30);
    let next = current_code(&secret, s.clock.now_ms());
    s.post("/v1/sessions", with(&next)).await.expect(201);
    s.post("/v1/sessions", with(&next))
        .await
        .expect_error(401, "totp_invalid");

    // A recovery code works once, in any case and spacing.
    let rc = codes[0].as_str().unwrap().to_uppercase();
    s.post("/v1/sessions", with(&rc)).await.expect(201);
    s.post("/v1/sessions", with(&rc))
        .await
        .expect_error(401, "totp_invalid");

    s.call(
        Method::POST,
        "/v1/me/totp",
        Some(&t),
        Some(json!({"password": PASSWORD})),
    )
    .await
    .expect_error(409, "totp_already_enabled");
    let off = |c: &str| json!({"code": c, "password": PASSWORD});
    s.call(Method::DELETE, "/v1/me/totp", Some(&t), Some(off("123")))
        .await
        .expect_error(401, "totp_invalid");
    let rc2 = codes[1].as_str().unwrap();
    s.call(Method::DELETE, "/v1/me/totp", Some(&t), Some(off(rc2)))
        .await
        .expect(204);
    try_sign_in(&s, "alice_w", PASSWORD).await.expect(201);
    s.call(Method::DELETE, "/v1/me/totp", Some(&t), Some(off(rc2)))
        .await
        .expect_error(409, "totp_not_enabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_name_and_public_id_changes_once_a_year() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    s.register("+8613800138001", "bob_is_here", PASSWORD).await;
    let t = s.sign_in("alice_w", PASSWORD).await;
    let me = s
        .call(
            Method::PATCH,
            "/v1/me",
            Some(&t),
            Some(json!({"display_name": "  Alice Wang "})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(me["display_name"], "Alice Wang");
    s.call(
        Method::PATCH,
        "/v1/me",
        Some(&t),
        Some(json!({"display_name": "a\u{7}b"})),
    )
    .await
    .expect_error(400, "invalid_display_name");

    let put = |id: &str| json!({"public_id": id});
    s.call(
        Method::PUT,
        "/v1/me/public_id",
        Some(&t),
        Some(put("BOB_is_here")),
    )
    .await
    .expect_error(409, "public_id_taken");
    s.call(Method::PUT, "/v1/me/public_id", Some(&t), Some(put("no")))
        .await
        .expect_error(400, "public_id_invalid");
    let me = s
        .call(
            Method::PUT,
            "/v1/me/public_id",
            Some(&t),
            Some(put("alice_wang")),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(me["public_id"], "alice_wang");
    assert!(me["public_id_changeable_at"].is_string());
    let r = s
        .call(
            Method::PUT,
            "/v1/me/public_id",
            Some(&t),
            Some(put("alice_again")),
        )
        .await;
    r.expect_error(409, "public_id_change_limit");
    // The old ID is free again; the new one signs in.
    s.sign_in("alice_wang", PASSWORD).await;
    try_sign_in(&s, "alice_w", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
    s.clock.advance_secs(364 * 24 * 3600);
    let t = s.sign_in("alice_wang", PASSWORD).await;
    s.call(
        Method::PUT,
        "/v1/me/public_id",
        Some(&t),
        Some(put("alice_again")),
    )
    .await
    .expect_error(409, "public_id_change_limit");
    s.clock.advance_secs(24 * 3600);
    s.call(
        Method::PUT,
        "/v1/me/public_id",
        Some(&t),
        Some(put("alice_again")),
    )
    .await
    .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_keeps_this_session_and_revokes_the_others() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    let here = s.sign_in("alice_w", PASSWORD).await;
    let there = s.sign_in("alice_w", PASSWORD).await;
    let body = |cur: &str, new: &str| json!({"current_password": cur, "new_password": new});
    s.call(
        Method::POST,
        "/v1/me/password",
        Some(&here),
        Some(body("nope nope", "new secret 42")),
    )
    .await
    .expect_error(401, "invalid_credentials");
    s.call(
        Method::POST,
        "/v1/me/password",
        Some(&here),
        Some(body(PASSWORD, "password1")),
    )
    .await
    .expect_error(400, "password_too_weak");
    s.call(
        Method::POST,
        "/v1/me/password",
        Some(&here),
        Some(body(PASSWORD, "new secret 42")),
    )
    .await
    .expect(204);
    s.get("/v1/me", &here).await.expect(200);
    s.get("/v1/me", &there)
        .await
        .expect_error(401, "session_revoked");
    s.sign_in("alice_w", "new secret 42").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_name_verification_checks_the_resident_id() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    let t = s.sign_in("alice_w", PASSWORD).await;
    assert_eq!(s.get("/v1/me", &t).await.body["identity_verified"], false);
    let body = |n: &str| json!({"legal_name": "张三", "id_number": n});
    for bad in ["110105194912310021", "11010519491331002X", "abc"] {
        s.call(Method::POST, "/v1/me/identity", Some(&t), Some(body(bad)))
            .await
            .expect_error(400, "identity_invalid");
    }
    let r = s
        .call(
            Method::POST,
            "/v1/me/identity",
            Some(&t),
            Some(body("11010519491231002x")),
        )
        .await
        .expect(200);
    assert_eq!(r.body["id_number_masked"], "**************002X");
    assert_eq!(s.get("/v1/me", &t).await.body["identity_verified"], true);
    s.call(
        Method::POST,
        "/v1/me/identity",
        Some(&t),
        Some(body("11010519491231002X")),
    )
    .await
    .expect_error(409, "identity_already_verified");
}

/// SPEC §1.1 real-name reuse: one ID number verifies `identity.accounts_per_id` accounts,
/// however many ask at once; the next is refused and stays unverified.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_id_number_verifies_at_most_the_accounts_allowed() {
    let s = TestServer::start_with(|c| c.identity.accounts_per_id = 3).await;
    let mut users = Vec::new();
    for n in 1..=5 {
        users.push(s.user(n, &format!("user_{n:03}")).await);
    }
    let body =
        json!({"legal_name": "张三", "id_number": switchboard_server::testing::TEST_RESIDENT_ID});
    let replies = futures_util::future::join_all(
        users
            .iter()
            .map(|u| s.post_as(u, "/v1/me/identity", body.clone())),
    )
    .await;
    let mut verified = 0;
    for r in replies {
        if r.status == 200 {
            verified += 1;
        } else {
            r.expect_error(409, "identity_limit");
        }
    }
    assert_eq!(
        verified, 3,
        "the limit holds for verifications racing each other"
    );
    let mut unverified = 0;
    for u in &users {
        if s.get("/v1/me", &u.token).await.body["identity_verified"] == false {
            unverified += 1;
        }
    }
    assert_eq!(
        unverified, 2,
        "a refused verification leaves its account unverified"
    );
}
