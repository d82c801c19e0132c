//! Limits and invariants under concurrent requests, through the HTTP API, on SQLite and on
//! PostgreSQL: what an attacker firing requests in parallel would try.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use serde_json::json;
use switchboard_server::testing::{Backend, Reply, TEST_PASSWORD, TestServer, at_once, request};

switchboard_server::on_every_backend!(
    twenty_concurrent_wrong_passwords_are_judged_five_times,
    twenty_concurrent_code_requests_send_one_text,
    forty_concurrent_guesses_of_a_code_are_judged_five_times,
    concurrent_transfers_both_ways_all_succeed_and_balance,
    nul_characters_are_a_clear_400_and_store_nothing,
);

/// A request from a spawned task: owns what it needs of the server (its address).
async fn post(base: String, path: &str, token: Option<String>, body: serde_json::Value) -> Reply {
    request(
        &base,
        reqwest::Method::POST,
        path,
        token.as_deref(),
        Some(body),
    )
    .await
}

async fn twenty_concurrent_wrong_passwords_are_judged_five_times(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    s.user(1, "alice_w").await;
    let base = s.base.clone();
    let tally = at_once(20, |i| {
        let base = base.clone();
        async move {
            post(
                base,
                "/v1/sessions",
                None,
                json!({"login": "alice_w", "password": format!("wrong password {i}"),
                       "device_name": "attacker"}),
            )
            .await
        }
    })
    .await;
    assert_eq!(
        tally.get(&(401, "invalid_credentials".into())),
        Some(&5),
        "five guesses are judged, the rest wait: {tally:?}"
    );
    assert_eq!(tally.get(&(429, "login_throttled".into())), Some(&15));
    // The owner, too, must wait now: the throttle is real, not a counting artefact.
    s.post(
        "/v1/sessions",
        json!({"login": "alice_w", "password": TEST_PASSWORD, "device_name": "owner"}),
    )
    .await
    .expect_error(429, "login_throttled");
}

async fn twenty_concurrent_code_requests_send_one_text(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let base = s.base.clone();
    let tally = at_once(20, |_| {
        let base = base.clone();
        async move {
            post(
                base,
                "/v1/sms/codes",
                None,
                json!({"phone": "+8613800138088", "purpose": "register"}),
            )
            .await
        }
    })
    .await;
    assert_eq!(tally.get(&(202, String::new())), Some(&1), "{tally:?}");
    assert_eq!(tally.get(&(429, "rate_limited".into())), Some(&19));
    let outbox = s
        .call(
            reqwest::Method::GET,
            "/v1/dev/sms-outbox?phone=%2B8613800138088",
            None,
            None,
        )
        .await
        .expect(200);
    assert_eq!(
        outbox.body["messages"].as_array().unwrap().len(),
        1,
        "one text was sent"
    );
}

async fn forty_concurrent_guesses_of_a_code_are_judged_five_times(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let phone = "+8613800138099";
    let real = s.sms_code(phone, "register").await;
    let base = s.base.clone();
    let real_n: u32 = real.parse().unwrap();
    let tally = at_once(40, |i| {
        let base = base.clone();
        // 40 distinct codes, none of them the real one.
        let guess = format!("{:06}", (real_n + 1 + i as u32) % 1_000_000);
        async move {
            post(
                base,
                "/v1/accounts",
                None,
                json!({"phone": phone, "sms_code": guess, "public_id": format!("guess_{i}"),
                       "password": TEST_PASSWORD, "display_name": "Guesser"}),
            )
            .await
        }
    })
    .await;
    // Five tries are compared: four answer "wrong, n left", the fifth burns the code; the
    // other 35 are never compared at all.
    assert_eq!(
        tally.get(&(400, "sms_code_invalid".into())),
        Some(&4),
        "{tally:?}"
    );
    assert_eq!(
        tally.get(&(400, "sms_code_expired".into())),
        Some(&36),
        "{tally:?}"
    );
    // The code is burned: even the right one no longer works.
    s.post(
        "/v1/accounts",
        json!({"phone": phone, "sms_code": real, "public_id": "owner_1",
               "password": TEST_PASSWORD, "display_name": "Owner"}),
    )
    .await
    .expect_error(400, "sms_code_expired");
}

async fn concurrent_transfers_both_ways_all_succeed_and_balance(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let a = s.verified_user(1, "alice_w").await;
    let b = s.verified_user(2, "bob_the_2nd").await;
    s.befriend(&a, &b).await;
    for u in [&a, &b] {
        s.post_as(
            u,
            "/v1/wallet/topups",
            json!({"amount": 100_000, "idempotency_key": format!("top-{}", u.public_id)}),
        )
        .await
        .expect(201);
    }
    let base = s.base.clone();
    let (a2, b2) = (a.clone(), b.clone());
    let tally = at_once(80, move |i| {
        let base = base.clone();
        let (from, to) = if i % 2 == 0 { (&a2, &b2) } else { (&b2, &a2) };
        let (token, to) = (from.token.clone(), to.public_id.clone());
        async move {
            post(
                base,
                "/v1/wallet/transfers",
                Some(token),
                json!({"to": to, "amount": 101, "note": "", "idempotency_key": format!("t-{i}")}),
            )
            .await
        }
    })
    .await;
    assert_eq!(
        tally.get(&(201, String::new())),
        Some(&80),
        "every transfer goes through, none meets a deadlock: {tally:?}"
    );
    let balance = |u: &switchboard_server::testing::TestUser| {
        let (s, t) = (&s, u.token.clone());
        async move {
            s.get("/v1/wallet", &t).await.expect(200).body["balance"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(
        balance(&a).await + balance(&b).await,
        200_000,
        "money moved both ways, none made or lost"
    );
}

async fn nul_characters_are_a_clear_400_and_store_nothing(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let a = s.user(1, "alice_w").await;
    let r = s
        .call(
            reqwest::Method::PATCH,
            "/v1/me",
            Some(&a.token),
            Some(json!({"display_name": "Ali\u{0}ce"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.body);
    let me = s.get("/v1/me", &a.token).await.expect(200);
    assert_eq!(me.body["display_name"], "alice_w", "nothing was stored");
    // In a path, too (it reaches the database as a lookup key).
    let r = s.get("/v1/users/al%00ice", &a.token).await;
    assert!(
        (400..500).contains(&r.status),
        "a NUL in a path is a client error: {} {}",
        r.status,
        r.body
    );
}
