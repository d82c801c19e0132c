//! SPEC §1.4 through HTTP: top-ups, transfers, red envelopes, idempotency, the expiry race,
//! a model-checked random walk, a concurrent bank test and a kill -9 crash test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use switchboard_server::testing::{Call, Reply, TestServer, TestUser, calls_at_once};

async fn balance(s: &TestServer, u: &TestUser) -> i64 {
    s.get("/v1/wallet", &u.token).await.expect(200).body["balance"]
        .as_i64()
        .unwrap()
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn top_up(s: &TestServer, u: &TestUser, amount: i64) -> Reply {
    s.post_as(
        u,
        "/v1/wallet/topups",
        json!({"amount": amount, "idempotency_key": key()}),
    )
    .await
}

async fn ledger_ok(s: &TestServer) {
    let store = switchboard_store::open(&s.config.database_url)
        .await
        .unwrap();
    let verdict = store.ledger_check().await.unwrap();
    store.close().await;
    assert_eq!(verdict, None, "every ledger invariant holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_up_transfer_and_history_need_a_verified_identity() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.verified_user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    let w = s.get("/v1/wallet", &alice.token).await.expect(200).body;
    assert_eq!(
        w,
        json!({"balance": 0, "currency": "CNY", "verified": false})
    );
    top_up(&s, &alice, 100)
        .await
        .expect_error(403, "identity_unverified");
    s.call(
        Method::POST,
        "/v1/me/identity",
        Some(&alice.token),
        Some(json!({"legal_name": "张三", "id_number": switchboard_server::testing::TEST_RESIDENT_ID})),
    )
    .await
    .expect(200);

    let r = top_up(&s, &alice, 10_000).await.expect(201).body;
    assert_eq!(
        (r["amount"].as_i64(), r["balance"].as_i64()),
        (Some(10_000), Some(10_000))
    );
    let t = s.post_as(&alice,
        "/v1/wallet/transfers",
        json!({"to": "bob_the_2nd", "amount": 2_550, "note": "lunch", "idempotency_key": key()}),
    )
    .await
    .expect(201)
    .body;
    assert_eq!(t["balance"], 7_450);
    assert_eq!(balance(&s, &bob).await, 2_550);

    let hist = s
        .get("/v1/wallet/transactions", &alice.token)
        .await
        .expect(200)
        .body;
    let txs = hist["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 2);
    assert_eq!(
        (txs[0]["kind"].as_str(), txs[0]["amount"].as_i64()),
        (Some("transfer"), Some(-2_550))
    );
    assert_eq!(
        (txs[0]["counterparty"].as_str(), txs[0]["note"].as_str()),
        (Some("bob_the_2nd"), Some("lunch"))
    );
    assert_eq!(
        (txs[1]["kind"].as_str(), txs[1]["amount"].as_i64()),
        (Some("topup"), Some(10_000))
    );
    let bobs = s.get("/v1/wallet/transactions", &bob.token).await.body;
    assert_eq!(bobs["transactions"][0]["amount"], 2_550);
    assert_eq!(bobs["transactions"][0]["counterparty"], "alice_w");

    // Paging: one at a time, newest first, to the end.
    let p1 = s
        .get("/v1/wallet/transactions?limit=1", &alice.token)
        .await
        .body;
    let before = p1["next_before"].as_i64().unwrap();
    let p2 = s
        .get(
            &format!("/v1/wallet/transactions?limit=1&before={before}"),
            &alice.token,
        )
        .await
        .body;
    assert_eq!(p2["transactions"][0]["kind"], "topup");
    assert!(p2.get("next_before").is_none(), "the last page says so");
    s.get("/v1/wallet/transactions?limit=0", &alice.token)
        .await
        .expect_error(400, "invalid_request");

    // Money events reach both logs.
    let events = s.get("/v1/sync?limit=1000", &bob.token).await.body;
    let credit = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "wallet.credit")
        .unwrap()
        .clone();
    assert_eq!(
        (
            credit["data"]["amount"].as_i64(),
            credit["data"]["balance"].as_i64()
        ),
        (Some(2_550), Some(2_550))
    );
    ledger_ok(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_amounts_are_invalid_amount_and_move_nothing() {
    let s = TestServer::start().await;
    let alice = s.verified_user(1, "alice_w").await;
    for bad in [
        json!(0),
        json!(-100),
        json!(1.5),
        json!("100"),
        json!(1e30),
        json!(null),
        json!(9_223_372_036_854_775_808u64),
        json!(5_000_001),
        json!([1]),
    ] {
        s.post_as(
            &alice,
            "/v1/wallet/topups",
            json!({"amount": bad, "idempotency_key": key()}),
        )
        .await
        .expect_error(400, "invalid_amount");
    }
    assert_eq!(balance(&s, &alice).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdrafts_and_strangers_are_refused() {
    let s = TestServer::start().await;
    let alice = s.verified_user(1, "alice_w").await;
    let bob = s.verified_user(2, "bob_the_2nd").await;
    let carol = s.verified_user(3, "carol_c").await;
    s.befriend(&alice, &bob).await;
    top_up(&s, &alice, 1_000).await.expect(201);
    s.post_as(
        &alice,
        "/v1/wallet/transfers",
        json!({"to": "bob_the_2nd", "amount": 1_001, "idempotency_key": key()}),
    )
    .await
    .expect_error(402, "insufficient_funds");
    s.post_as(
        &alice,
        "/v1/wallet/transfers",
        json!({"to": "carol_c", "amount": 1, "idempotency_key": key()}),
    )
    .await
    .expect_error(403, "not_a_contact");
    assert_eq!(
        (
            balance(&s, &alice).await,
            balance(&s, &bob).await,
            balance(&s, &carol).await
        ),
        (1_000, 0, 0)
    );
    ledger_ok(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_moves_money_once_whatever_the_retries() {
    let s = TestServer::start().await;
    let alice = s.verified_user(1, "alice_w").await;
    let bob = s.verified_user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    top_up(&s, &alice, 10_000).await.expect(201);
    let body = json!({"to": "bob_the_2nd", "amount": 700, "idempotency_key": "pay-rent-2026-11"});
    let first = s
        .post_as(&alice, "/v1/wallet/transfers", body.clone())
        .await
        .expect(201)
        .body;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (url, token, body) = (
            s.url("/v1/wallet/transfers"),
            alice.token.clone(),
            body.clone(),
        );
        set.spawn(async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    }
    while let Some(r) = set.join_next().await {
        let (status, answer) = r.unwrap();
        assert_eq!(
            (status, &answer),
            (201, &first),
            "every retry gets the first answer"
        );
    }
    assert_eq!(balance(&s, &bob).await, 700, "and money moved once");
    let other = json!({"to": "bob_the_2nd", "amount": 701, "idempotency_key": "pay-rent-2026-11"});
    s.post_as(&alice, "/v1/wallet/transfers", other)
        .await
        .expect_error(409, "idempotency_conflict");
    // The same key is the caller's own: another account may use it freely.
    s.post_as(
        &bob,
        "/v1/wallet/transfers",
        json!({"to": "alice_w", "amount": 1, "idempotency_key": "pay-rent-2026-11"}),
    )
    .await
    .expect(201);
    ledger_ok(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_envelopes_to_a_contact_and_to_a_group() {
    let s = TestServer::start_with(|c| c.wallet.refund_sweep_ms = 20).await;
    let alice = s.verified_user(1, "alice_w").await;
    let bob = s.verified_user(2, "bob_the_2nd").await;
    let carol = s.verified_user(3, "carol_c").await;
    let dave = s.verified_user(4, "dave_d").await;
    s.befriend(&alice, &bob).await;
    s.befriend(&alice, &carol).await;
    top_up(&s, &alice, 50_000).await.expect(201);
    let env = |to: &str, total: Value, count: u32, mode: &str| json!({"to": to, "total": total, "count": count, "mode": mode, "greeting": "恭喜发财", "idempotency_key": key()});
    s.post_as(
        &alice,
        "/v1/red-envelopes",
        env("bob_the_2nd", json!(20_001), 1, "lucky"),
    )
    .await
    .expect_error(400, "invalid_amount");
    s.post_as(
        &alice,
        "/v1/red-envelopes",
        env("bob_the_2nd", json!(100), 2, "lucky"),
    )
    .await
    .expect_error(400, "invalid_envelope");

    let direct = s
        .post_as(
            &alice,
            "/v1/red-envelopes",
            env("bob_the_2nd", json!(888), 1, "lucky"),
        )
        .await
        .expect(201)
        .body;
    let id = direct["id"].as_str().unwrap();
    s.post_as(&alice, &format!("/v1/red-envelopes/{id}/claim"), json!({}))
        .await
        .expect_error(404, "envelope_not_found");
    s.post_as(&carol, &format!("/v1/red-envelopes/{id}/claim"), json!({}))
        .await
        .expect_error(404, "envelope_not_found");
    let c = s
        .post_as(&bob, &format!("/v1/red-envelopes/{id}/claim"), json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(c["amount"], 888);
    s.post_as(&bob, &format!("/v1/red-envelopes/{id}/claim"), json!({}))
        .await
        .expect_error(409, "already_claimed");

    let group = s
        .post_as(
            &alice,
            "/v1/groups",
            json!({"name": "Family", "members": ["bob_the_2nd", "carol_c"]}),
        )
        .await
        .expect(201)
        .body;
    let gid = group["id"].as_str().unwrap();
    s.post_as(
        &alice,
        "/v1/red-envelopes",
        env(gid, json!(100), 101, "lucky"),
    )
    .await
    .expect_error(400, "invalid_envelope");
    let g = s
        .post_as(
            &alice,
            "/v1/red-envelopes",
            env(gid, json!(1_000), 3, "lucky"),
        )
        .await
        .expect(201)
        .body;
    let gid_env = g["id"].as_str().unwrap();
    let mut got = 0;
    for u in [&bob, &carol, &alice] {
        let c = s
            .post_as(u, &format!("/v1/red-envelopes/{gid_env}/claim"), json!({}))
            .await
            .expect(200)
            .body;
        let amount = c["amount"].as_i64().unwrap();
        assert!(amount >= 1, "every share is at least a fen");
        got += amount;
    }
    assert_eq!(got, 1_000, "the shares add up to the total");
    s.post_as(
        &dave,
        &format!("/v1/red-envelopes/{gid_env}/claim"),
        json!({}),
    )
    .await
    .expect_error(404, "envelope_not_found");
    let view = s
        .get(&format!("/v1/red-envelopes/{gid_env}"), &carol.token)
        .await
        .expect(200)
        .body;
    assert_eq!(view["claims"].as_array().unwrap().len(), 3);
    assert_eq!(
        balance(&s, &alice).await,
        50_000 - 888 - 1_000
            + view["claims"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["public_id"] == "alice_w")
                .unwrap()["amount"]
                .as_i64()
                .unwrap()
    );
    let bob_events = s.get("/v1/sync?limit=1000", &bob.token).await.body;
    assert!(
        bob_events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "red_envelope.new"),
        "recipients hear of it"
    );
    ledger_ok(&s).await;
}

/// An envelope is for those it was sent to: a group's members as it was sent (not one added
/// while the others claim, racing them), a direct one's recipient by account (not whoever takes
/// the public ID it was addressed to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_is_for_those_it_was_sent_to_not_who_comes_later() {
    let s = TestServer::start().await;
    let alice = s.verified_user(1, "alice_w").await;
    let bob = s.verified_user(2, "bob_the_2nd").await;
    let carol = s.verified_user(3, "carol_c").await;
    let mut late = Vec::new();
    for n in 4..=7 {
        let u = s.verified_user(n, &format!("late_{n}")).await;
        s.befriend(&alice, &u).await;
        late.push(u);
    }
    s.befriend(&alice, &bob).await;
    s.befriend(&alice, &carol).await;
    top_up(&s, &alice, 10_000).await.expect(201);
    let group = s
        .post_as(
            &alice,
            "/v1/groups",
            json!({"name": "Team", "members": ["bob_the_2nd", "carol_c"]}),
        )
        .await
        .expect(201)
        .body;
    let gid = group["id"].as_str().unwrap().to_string();
    let e = s
        .post_as(
            &alice,
            "/v1/red-envelopes",
            json!({"to": gid, "total": 900, "count": 9, "mode": "equal", "idempotency_key": key()}),
        )
        .await
        .expect(201)
        .body;
    let id = e["id"].as_str().unwrap().to_string();

    // Alice adds four people while they and Bob and Carol claim, all at once.
    let claim_path = format!("/v1/red-envelopes/{id}/claim");
    let add = {
        let base = s.base.clone();
        let token = alice.token.clone();
        let path = format!("/v1/groups/{gid}/members");
        let members: Vec<String> = late.iter().map(|u| u.public_id.clone()).collect();
        tokio::spawn(async move {
            Call::post(&base, &path, Some(&token), json!({"members": members}))
                .send()
                .await
        })
    };
    let claimers: Vec<String> = late
        .iter()
        .chain([&bob, &carol])
        .map(|u| u.token.clone())
        .collect();
    let tally = calls_at_once(claimers.len(), |i| {
        Call::post(&s.base, &claim_path, Some(&claimers[i]), json!({}))
    })
    .await;
    add.await.unwrap().expect(200);
    assert_eq!(tally.get(&(200, String::new())), Some(&2), "{tally:?}");
    assert_eq!(
        tally.get(&(404, "envelope_not_found".into())),
        Some(&4),
        "{tally:?}"
    );
    // Now members, they still cannot claim or see it; Alice, who sent it, still can.
    for u in &late {
        s.post_as(u, &claim_path, json!({}))
            .await
            .expect_error(404, "envelope_not_found");
        s.get(&format!("/v1/red-envelopes/{id}"), &u.token)
            .await
            .expect_error(404, "envelope_not_found");
    }
    s.post_as(&alice, &claim_path, json!({})).await.expect(200);

    // A direct envelope to bob_the_2nd; Bob moves to a new public ID and Mallory takes the old.
    let e = s
        .post_as(&alice, "/v1/red-envelopes", json!({"to": "bob_the_2nd", "total": 500, "count": 1, "mode": "equal", "idempotency_key": key()}))
        .await
        .expect(201)
        .body;
    let direct = e["id"].as_str().unwrap().to_string();
    s.call(
        Method::PUT,
        "/v1/me/public_id",
        Some(&bob.token),
        Some(json!({"public_id": "bob_moved"})),
    )
    .await
    .expect(200);
    let mallory = s.verified_user(8, "bob_the_2nd").await;
    let direct_claim = format!("/v1/red-envelopes/{direct}/claim");
    s.post_as(&mallory, &direct_claim, json!({}))
        .await
        .expect_error(404, "envelope_not_found");
    s.get(&format!("/v1/red-envelopes/{direct}"), &mallory.token)
        .await
        .expect_error(404, "envelope_not_found");
    let got = s
        .post_as(&bob, &direct_claim, json!({}))
        .await
        .expect(200)
        .body;
    assert_eq!(
        got["amount"], 500,
        "Bob, under his new ID, gets what was sent to him"
    );
    ledger_ok(&s).await;
}

async fn wait_refunded(s: &TestServer, u: &TestUser, id: &str) -> Value {
    for _ in 0..300 {
        let v = s
            .get(&format!("/v1/red-envelopes/{id}"), &u.token)
            .await
            .expect(200)
            .body;
        if v["refunded"].as_i64().unwrap() > 0 {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("envelope {id} was not refunded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unclaimed_money_returns_after_24_hours_exactly_once() {
    let s = TestServer::start_with(|c| c.wallet.refund_sweep_ms = 20).await;
    let alice = s.verified_user(1, "alice_w").await;
    let bob = s.verified_user(2, "bob_the_2nd").await;
    let carol = s.verified_user(3, "carol_c").await;
    s.befriend(&alice, &bob).await;
    s.befriend(&alice, &carol).await;
    top_up(&s, &alice, 1_000).await.expect(201);
    let group = s
        .post_as(
            &alice,
            "/v1/groups",
            json!({"name": "G", "members": ["bob_the_2nd", "carol_c"]}),
        )
        .await
        .expect(201)
        .body;
    let e = s.post_as(&alice, "/v1/red-envelopes", json!({"to": group["id"], "total": 900, "count": 3, "mode": "equal", "idempotency_key": key()}))
        .await
        .expect(201)
        .body;
    let id = e["id"].as_str().unwrap();
    s.post_as(&bob, &format!("/v1/red-envelopes/{id}/claim"), json!({}))
        .await
        .expect(200);
    s.clock.advance_secs(24 * 3600 - 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(balance(&s, &alice).await, 100, "not before 24 h");
    s.clock.advance_secs(1);
    let v = wait_refunded(&s, &alice, id).await;
    assert_eq!(v["refunded"], 600);
    assert_eq!(balance(&s, &alice).await, 700);
    s.post_as(&carol, &format!("/v1/red-envelopes/{id}/claim"), json!({}))
        .await
        .expect_error(409, "envelope_empty");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        balance(&s, &alice).await,
        700,
        "refunded once, however often the sweeper runs"
    );
    let events = s.get("/v1/sync?limit=1000", &alice.token).await.body;
    let refunds: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "red_envelope.refunded")
        .collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["data"]["amount"], 600);
    ledger_ok(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_claim_racing_the_expiry_pays_exactly_once() {
    let s = TestServer::start_with(|c| c.wallet.refund_sweep_ms = 1).await;
    let alice = s.verified_user(1, "alice_w").await;
    let bob = s.verified_user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    let rounds = 25;
    top_up(&s, &alice, 100 * rounds).await.expect(201);
    let (mut claimed, mut refunded) = (0, 0);
    for round in 0..rounds {
        let e = s.post_as(&alice, "/v1/red-envelopes", json!({"to": "bob_the_2nd", "total": 100, "count": 1, "mode": "equal", "idempotency_key": key()}))
            .await
            .expect(201)
            .body;
        let id = e["id"].as_str().unwrap().to_string();
        s.clock.advance_secs(24 * 3600 - 1);
        // The claim is in flight while the clock crosses the expiry and the sweeper runs.
        let (url, token) = (
            s.url(&format!("/v1/red-envelopes/{id}/claim")),
            bob.token.clone(),
        );
        let claim = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
        // Cross the expiry a little before, during or after the claim reaches the service.
        tokio::time::sleep(Duration::from_micros((round as u64 * 7919) % 4000)).await;
        s.clock.advance_secs(1);
        match claim.await.unwrap() {
            200 => claimed += 1,
            409 => {
                refunded += 1;
                wait_refunded(&s, &alice, &id).await;
            }
            other => panic!("claim answered {other}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("{claimed} claims won, {refunded} refunds won");
    assert!(claimed + refunded == rounds);
    assert_eq!(balance(&s, &bob).await, 100 * claimed);
    assert_eq!(
        balance(&s, &alice).await,
        100 * refunded,
        "every fen went exactly one way"
    );
    ledger_ok(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_of_concurrent_clients_never_makes_loses_or_overdraws_money() {
    let s = TestServer::start().await;
    let mut users = Vec::new();
    for (i, name) in ["acct_a1", "acct_b2", "acct_c3", "acct_d4"]
        .iter()
        .enumerate()
    {
        users.push(s.verified_user(i as u32 + 1, name).await);
    }
    for i in 0..users.len() {
        for j in i + 1..users.len() {
            s.befriend(&users[i], &users[j]).await;
        }
        top_up(&s, &users[i], 10_000).await.expect(201);
    }
    let clients = 8;
    let ops = 40;
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (users, base) = (users.clone(), s.base.clone());
        set.spawn(async move {
            let http = reqwest::Client::new();
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1);
            let mut rnd = move |n: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            };
            let (mut ok, mut refused) = (0, 0);
            for _ in 0..ops {
                let from = rnd(4) as usize;
                let to = (from + 1 + rnd(3) as usize) % 4;
                let body = json!({"to": users[to].public_id, "amount": 1 + rnd(4_000), "idempotency_key": uuid::Uuid::new_v4().to_string()});
                // Each request is sent twice, as a client that lost the first answer would.
                for _ in 0..1 + rnd(2) {
                    let r = http.post(format!("{base}/v1/wallet/transfers")).bearer_auth(&users[from].token).json(&body).send().await.unwrap();
                    match r.status().as_u16() {
                        201 => ok += 1,
                        402 => refused += 1,
                        other => panic!("transfer answered {other}"),
                    }
                }
            }
            (ok, refused)
        });
    }
    // Meanwhile, every invariant holds at every read.
    let store = switchboard_store::open(&s.config.database_url)
        .await
        .unwrap();
    let mut reads = 0;
    while !set.is_empty() {
        assert_eq!(store.ledger_check().await.unwrap(), None, "read {reads}");
        reads += 1;
        if let Ok(Some(done)) =
            tokio::time::timeout(Duration::from_millis(5), set.join_next()).await
        {
            let (ok, refused) = done.unwrap();
            assert!(ok > 0, "a client moved money ({refused} refused)");
        }
    }
    store.close().await;
    let mut total = 0;
    for u in &users {
        let b = balance(&s, u).await;
        assert!(b >= 0);
        total += b;
    }
    println!("{clients} clients × {ops} transfers (with retries), {reads} invariant reads");
    assert_eq!(total, 40_000, "money is conserved");
    ledger_ok(&s).await;
}

/// The model of a red envelope in the state-machine test.
#[derive(Debug, Clone)]
struct ModelEnvelope {
    id: String,
    sender: usize,
    shares: Vec<i64>,
    claimed_by: Vec<usize>,
    expired: bool,
}

#[derive(Debug, Clone)]
enum Op {
    TopUp(usize, i64),
    Transfer(usize, usize, i64),
    Envelope(usize, i64, u32),
    Claim(usize, usize),
    Expire,
    RetryLast,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 1..5_000i64).prop_map(|(u, a)| Op::TopUp(u, a)),
        (0..3usize, 0..3usize, 1..6_000i64).prop_map(|(f, t, a)| Op::Transfer(f, t, a)),
        (0..3usize, 1..3_000i64, 1..4u32).prop_map(|(u, t, c)| Op::Envelope(u, t, c)),
        (0..3usize, 0..4usize).prop_map(|(u, e)| Op::Claim(u, e)),
        Just(Op::Expire),
        Just(Op::RetryLast),
    ]
}

fn equal_split(total: i64, count: u32) -> Vec<i64> {
    let c = i64::from(count);
    (0..c)
        .map(|i| total / c + i64::from(i < total % c))
        .collect()
}

async fn run_model(ops: Vec<Op>) {
    let s = TestServer::start_with(|c| c.wallet.refund_sweep_ms = 10).await;
    let names = ["m_alice", "m_bob99", "m_carol"];
    let mut users = Vec::new();
    for (i, n) in names.iter().enumerate() {
        users.push(s.verified_user(i as u32 + 1, n).await);
    }
    for i in 0..3 {
        for j in i + 1..3 {
            s.befriend(&users[i], &users[j]).await;
        }
    }
    let group = s
        .post_as(
            &users[0],
            "/v1/groups",
            json!({"name": "G", "members": [names[1], names[2]]}),
        )
        .await
        .expect(201)
        .body;
    let gid = group["id"].as_str().unwrap().to_string();
    let mut balances = [0i64; 3];
    let mut envelopes: Vec<ModelEnvelope> = Vec::new();
    let mut last: Option<(usize, String, Value, Reply)> = None;
    for op in ops {
        match op {
            Op::TopUp(u, amount) => {
                let body = json!({"amount": amount, "idempotency_key": key()});
                let r = s
                    .post_as(&users[u], "/v1/wallet/topups", body.clone())
                    .await
                    .expect(201);
                balances[u] += amount;
                last = Some((u, "/v1/wallet/topups".into(), body, r));
            }
            Op::Transfer(f, t, amount) => {
                let body = json!({"to": names[t], "amount": amount, "idempotency_key": key()});
                let r = s
                    .post_as(&users[f], "/v1/wallet/transfers", body.clone())
                    .await;
                if f == t {
                    r.expect_error(403, "not_a_contact");
                } else if balances[f] < amount {
                    r.expect_error(402, "insufficient_funds");
                } else {
                    let r = r.expect(201);
                    balances[f] -= amount;
                    balances[t] += amount;
                    last = Some((f, "/v1/wallet/transfers".into(), body, r));
                }
            }
            Op::Envelope(u, total, count) => {
                let body = json!({"to": gid, "total": total, "count": count, "mode": "equal", "idempotency_key": key()});
                let r = s
                    .post_as(&users[u], "/v1/red-envelopes", body.clone())
                    .await;
                if total < i64::from(count) {
                    r.expect_error(400, "invalid_envelope");
                } else if balances[u] < total {
                    r.expect_error(402, "insufficient_funds");
                } else {
                    let r = r.expect(201);
                    balances[u] -= total;
                    envelopes.push(ModelEnvelope {
                        id: r.body["id"].as_str().unwrap().into(),
                        sender: u,
                        shares: equal_split(total, count),
                        claimed_by: Vec::new(),
                        expired: false,
                    });
                    last = Some((u, "/v1/red-envelopes".into(), body, r));
                }
            }
            Op::Claim(u, e) => {
                let Some(env) = envelopes.get_mut(e) else {
                    continue;
                };
                let r = s
                    .post_as(
                        &users[u],
                        &format!("/v1/red-envelopes/{}/claim", env.id),
                        json!({}),
                    )
                    .await;
                if env.claimed_by.contains(&u) {
                    r.expect_error(409, "already_claimed");
                } else if env.expired || env.claimed_by.len() == env.shares.len() {
                    r.expect_error(409, "envelope_empty");
                } else {
                    let share = env.shares[env.claimed_by.len()];
                    assert_eq!(r.expect(200).body["amount"], share);
                    env.claimed_by.push(u);
                    balances[u] += share;
                }
            }
            Op::Expire => {
                s.clock.advance_secs(24 * 3600);
                for env in envelopes.iter_mut().filter(|e| !e.expired) {
                    env.expired = true;
                    let left: i64 = env.shares[env.claimed_by.len()..].iter().sum();
                    balances[env.sender] += left;
                    if left > 0 {
                        wait_refunded(&s, &users[env.sender], &env.id).await;
                    }
                }
                // Sessions outlive a day; nothing else to redo.
            }
            Op::RetryLast => {
                let Some((u, path, body, first)) = &last else {
                    continue;
                };
                let again = s.post_as(&users[*u], path, body.clone()).await;
                assert_eq!(
                    (again.status, &again.body),
                    (first.status, &first.body),
                    "a retry answers as the first time"
                );
            }
        }
        for (i, u) in users.iter().enumerate() {
            assert_eq!(
                balance(&s, u).await,
                balances[i],
                "{} after the last op",
                names[i]
            );
        }
    }
    ledger_ok(&s).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_wallet_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..30)) {
        tokio::runtime::Runtime::new().unwrap().block_on(run_model(ops));
    }
}

/// Found by the model test on a random seed: claiming an envelope again after it expired
/// answered `envelope_empty`; the claimer is told `already_claimed`, which answers their
/// question. Kept as a fixed case so it is checked on every run, not only when the seed hits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claiming_again_after_the_envelope_expired_says_already_claimed() {
    run_model(vec![
        Op::TopUp(2, 1782),
        Op::TopUp(1, 819),
        Op::Envelope(2, 1782, 3),
        Op::Envelope(1, 638, 2),
        Op::Claim(2, 1),
        Op::Expire,
        Op::Claim(2, 1),
    ])
    .await;
}
