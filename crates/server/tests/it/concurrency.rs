//! Limits and invariants under concurrent requests, through the HTTP API, on SQLite and on
//! PostgreSQL: what an attacker firing requests in parallel would try.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use serde_json::json;
use switchboard_server::testing::{Backend, Call, TEST_PASSWORD, TestServer, calls_at_once};

switchboard_store::on_every_backend!(
    twenty_concurrent_wrong_passwords_are_judged_five_times,
    twenty_concurrent_code_requests_send_one_text,
    forty_concurrent_guesses_of_a_code_are_judged_five_times,
    concurrent_transfers_both_ways_all_succeed_and_balance,
    nul_characters_are_a_clear_400_and_store_nothing,
    a_session_signed_out_elsewhere_is_refused_from_the_next_request_while_others_stream,
    a_new_name_or_public_id_holds_from_the_next_message,
);

async fn twenty_concurrent_wrong_passwords_are_judged_five_times(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    s.user(1, "alice_w").await;
    let tally = calls_at_once(20, |i| {
        Call::post(
            &s.base,
            "/v1/sessions",
            None,
            json!({"login": "alice_w", "password": format!("wrong password {i}"),
                   "device_name": "attacker"}),
        )
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
    let tally = calls_at_once(20, |_| {
        Call::post(
            &s.base,
            "/v1/sms/codes",
            None,
            json!({"phone": "+8613800138088", "purpose": "register"}),
        )
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
    let real_n: u32 = real.parse().unwrap();
    let tally = calls_at_once(40, |i| {
        // 40 distinct codes, none of them the real one.
        let guess = format!("{:06}", (real_n + 1 + i as u32) % 1_000_000);
        Call::post(
            &s.base,
            "/v1/accounts",
            None,
            json!({"phone": phone, "sms_code": guess, "public_id": format!("guess_{i}"),
                   "password": TEST_PASSWORD, "display_name": "Guesser"}),
        )
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
    let tally = calls_at_once(80, |i| {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        Call::post(
            &s.base,
            "/v1/wallet/transfers",
            Some(&from.token),
            json!({"to": to.public_id, "amount": 101, "note": "",
                   "idempotency_key": format!("t-{i}")}),
        )
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

/// Every request authenticates its session and looks up its recipient, answered from memory
/// where one process owns the database (SQLite's read cache): a session signed out elsewhere
/// must be refused from the very next request, however many requests are streaming with it.
async fn a_session_signed_out_elsewhere_is_refused_from_the_next_request_while_others_stream(
    backend: Backend,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    let s = TestServer::start_on(backend, |_| {}).await;
    let alice = s.user(1, "alice_cc").await;
    let bob = s.user(2, "bob_cc").await;
    s.befriend(&alice, &bob).await;
    let laptop = s.sign_in("alice_cc", TEST_PASSWORD).await;
    let laptop_id = s.other_session(&alice.token).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (base, token, stop) = (s.base.clone(), laptop.clone(), stop.clone());
        senders.spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let r = Call::post(
                    &base,
                    "/v1/messages",
                    Some(&token),
                    json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": "bob_cc", "body": "hi"}),
                )
                .send()
                .await;
                answers.push((started, r.status, r.code().to_string()));
            }
            answers
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.call(
        reqwest::Method::DELETE,
        &format!("/v1/sessions/{laptop_id}"),
        Some(&alice.token),
        None,
    )
    .await
    .expect(204);
    let signed_out = Instant::now();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);

    let (mut before, mut after) = (0, 0);
    while let Some(answers) = senders.join_next().await {
        for (started, status, code) in answers.unwrap() {
            if started > signed_out {
                assert_eq!(
                    (status, code.as_str()),
                    (401, "session_revoked"),
                    "a request made after the sign-out was answered"
                );
                after += 1;
            } else if status == 201 {
                before += 1;
            }
        }
    }
    assert!(
        before > 8,
        "the session was in use before: {before} messages"
    );
    assert!(after > 8, "and refused after: {after} requests");
    // The other session never noticed.
    s.post_as(
        &alice,
        "/v1/messages",
        json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": "bob_cc", "body": "still here"}),
    )
    .await
    .expect(201);
}

/// A sender's new name is on the next message, and a recipient's old public ID finds no one
/// from the moment it changed, while messages stream through the same sessions.
async fn a_new_name_or_public_id_holds_from_the_next_message(backend: Backend) {
    let s = TestServer::start_on(backend, |_| {}).await;
    let alice = s.user(1, "alice_nn").await;
    let bob = s.user(2, "bob_nn").await;
    s.befriend(&alice, &bob).await;
    let (base, token) = (&s.base, &alice.token);
    let send = |to: &'static str| {
        move |_| {
            Call::post(
                base,
                "/v1/messages",
                Some(token),
                json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to, "body": "hi"}),
            )
        }
    };
    // Warm: the session and the recipient have been read many times over.
    let tally = calls_at_once(16, send("bob_nn")).await;
    assert_eq!(tally.get(&(201, String::new())), Some(&16), "{tally:?}");

    for round in 0..3 {
        let name = format!("Alice {round}");
        s.call(
            reqwest::Method::PATCH,
            "/v1/me",
            Some(&alice.token),
            Some(json!({"display_name": name})),
        )
        .await
        .expect(200);
        let sent = s
            .post_as(
                &alice,
                "/v1/messages",
                json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": "bob_nn", "body": "hi"}),
            )
            .await
            .expect(201);
        assert_eq!(sent.body["from_display_name"], name.as_str());
    }

    s.call(
        reqwest::Method::PUT,
        "/v1/me/public_id",
        Some(&bob.token),
        Some(json!({"public_id": "bob_renamed"})),
    )
    .await
    .expect(200);
    let tally = calls_at_once(16, send("bob_nn")).await;
    assert_eq!(
        tally.get(&(404, "user_not_found".into())),
        Some(&16),
        "the old ID names no one: {tally:?}"
    );
    let tally = calls_at_once(16, send("bob_renamed")).await;
    assert_eq!(tally.get(&(201, String::new())), Some(&16), "{tally:?}");
}
