//! Several nodes of one service on one PostgreSQL database, in this process: each node with
//! its own pools, hub, wake-up listener and sweepers, on a port of its own, sharing a clock
//! the tests drive. What crosses nodes is only the database and its NOTIFY hints.
//! (`nodes.rs` runs real node processes and kills them.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::common::{assert_once_in_order, connect, head, next_event, send_message, sync_all};
use serde_json::json;
use switchboard_server::testing::{
    Backend, Call, TEST_PASSWORD, TestServer, TestUser, calls_at_once, request,
};

/// Three nodes. The safety poll is pushed out of the way, so delivery across nodes in these
/// tests is the hints' doing, not the poll's.
async fn three_nodes(adjust: impl Fn(&mut switchboard_server::Config)) -> [TestServer; 3] {
    let a = TestServer::start_on(Backend::Postgres, |c| {
        c.cluster.safety_poll_ms = 600_000;
        adjust(c);
    })
    .await;
    let b = a.another_node().await;
    let c = a.another_node().await;
    [a, b, c]
}

/// `n` users, each a contact of user 0.
async fn reader_and_senders(s: &TestServer, n: u32) -> Vec<TestUser> {
    let mut users = vec![s.user(1, "reader_r").await];
    for i in 0..n {
        let u = s.user(10 + i, &format!("sender_{i}")).await;
        s.befriend(&users[0], &u).await;
        users.push(u);
    }
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_socket_on_one_node_gets_what_two_others_accept_once_and_in_order() {
    let [a, b, c] = three_nodes(|_| {}).await;
    let users = reader_and_senders(&a, 4).await;
    let http = reqwest::Client::new();
    let since = head(&http, &b.base, &users[0].token).await;
    let mut ws = connect(b.addr, &users[0].token, since).await.unwrap();

    const EACH: usize = 50;
    let mut senders = tokio::task::JoinSet::new();
    for (i, u) in users[1..].iter().enumerate() {
        // Senders 0 and 2 through node A, 1 and 3 through node C; none through B.
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            c.base.clone()
        };
        let (token, http) = (u.token.clone(), http.clone());
        senders.spawn(async move {
            for k in 0..EACH {
                let id = uuid::Uuid::new_v4().to_string();
                let status =
                    send_message(&http, &base, &token, &id, "reader_r", &format!("s{i}-{k}")).await;
                assert_eq!(status, 201);
            }
        });
    }
    let mut got = Vec::new();
    while got.len() < 4 * EACH {
        got.push(next_event(&mut ws).await.unwrap());
    }
    while senders.join_next().await.is_some() {}
    assert_once_in_order(&got, since, 4, EACH);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), next_event(&mut ws))
            .await
            .is_err(),
        "nothing after the last message: no event twice"
    );
    let synced = sync_all(&http, &c.base, &users[0].token, since).await;
    assert_eq!(synced, got, "/v1/sync on any node agrees with the socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_revoked_through_one_node_closes_its_socket_on_another() {
    let [a, b, c] = three_nodes(|_| {}).await;
    a.register("+8613800138001", "alice_w", TEST_PASSWORD).await;
    let laptop = a.sign_in("alice_w", TEST_PASSWORD).await;
    let phone = c.sign_in("alice_w", TEST_PASSWORD).await;
    let http = reqwest::Client::new();
    let since = head(&http, &b.base, &laptop).await;
    let mut ws = connect(b.addr, &laptop, since).await.unwrap();
    let laptop_id = c.other_session(&phone).await;
    c.call(
        reqwest::Method::DELETE,
        &format!("/v1/sessions/{laptop_id}"),
        Some(&phone),
        None,
    )
    .await
    .expect(204);
    let ev = next_event(&mut ws).await.unwrap();
    assert_eq!(
        (ev["kind"].as_str(), ev["data"]["session_id"].as_str()),
        (Some("session.revoked"), Some(laptop_id.as_str()))
    );
    let end = next_event(&mut ws).await.unwrap_err();
    assert!(end.contains("4001"), "closed as revoked on node B: {end}");
}

/// Ends every node's LISTEN connection behind the service's back.
async fn kill_listeners(url: &str) -> u64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'switchboard-server listen' AND datname = current_database()",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    killed.len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivery_completes_when_the_listen_connection_is_killed_mid_run() {
    let [a, b, _c] = three_nodes(|_| {}).await;
    let users = reader_and_senders(&a, 1).await;
    let http = reqwest::Client::new();
    let since = head(&http, &b.base, &users[0].token).await;
    let mut ws = connect(b.addr, &users[0].token, since).await.unwrap();
    let url = a.config.database_url.clone();
    let token = users[1].token.clone();
    let base = a.base.clone();
    let sender = tokio::spawn(async move {
        let mut killed = 0;
        for k in 0..60 {
            if k == 20 || k == 40 {
                killed += kill_listeners(&url).await;
            }
            let id = uuid::Uuid::new_v4().to_string();
            assert_eq!(
                send_message(&http, &base, &token, &id, "reader_r", &format!("s0-{k}")).await,
                201
            );
        }
        killed
    });
    let mut got = Vec::new();
    while got.len() < 60 {
        got.push(next_event(&mut ws).await.unwrap());
    }
    let killed = sender.await.unwrap();
    assert!(
        killed >= 6,
        "three nodes' listeners were killed twice: {killed}"
    );
    assert_once_in_order(&got, since, 1, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_failures_spread_over_the_nodes_still_throttle_and_lock() {
    let nodes = three_nodes(|c| c.sessions.lock_after = 8).await;
    nodes[0].user(1, "alice_w").await;
    let wrong = |i: usize| {
        Call::post(
            &nodes[i % 3].base,
            "/v1/sessions",
            None,
            json!({"login": "alice_w", "password": format!("wrong {i}"), "device_name": "x"}),
        )
    };
    let tally = calls_at_once(21, wrong).await;
    assert_eq!(
        tally.get(&(401, "invalid_credentials".into())),
        Some(&5),
        "five guesses judged across three nodes, not five per node: {tally:?}"
    );
    assert_eq!(tally.get(&(429, "login_throttled".into())), Some(&16));
    // Three more failures, each on another node once its wait is over, make eight: the
    // next try meets a locked account.
    for i in 0..4 {
        nodes[0].clock.advance_secs(3600);
        let r = wrong(i + 1).send().await;
        assert_eq!(r.status, if i < 3 { 401 } else { 423 }, "{}", r.body);
    }
    nodes[0].clock.advance_secs(3600);
    nodes[2]
        .post(
            "/v1/sessions",
            json!({"login": "alice_w", "password": TEST_PASSWORD, "device_name": "owner"}),
        )
        .await
        .expect_error(423, "account_locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wallet_on_three_nodes_keeps_the_ledger_and_refunds_each_envelope_once() {
    let nodes = three_nodes(|c| c.wallet.refund_sweep_ms = 10).await;
    let s = &nodes[0];
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(s.verified_user(i + 1, &format!("user_{i}")).await);
    }
    for i in 0..4 {
        for j in (i + 1)..4 {
            s.befriend(&users[i], &users[j]).await;
        }
        s.post_as(
            &users[i],
            "/v1/wallet/topups",
            json!({"amount": 100_000, "idempotency_key": format!("top-{i}")}),
        )
        .await
        .expect(201);
    }

    // 3 nodes × 8 workers of transfers, A↔B both ways among them; every third one retried
    // with its idempotency key through the next node, as a client would after a lost answer.
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..24usize {
        let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
        let from = users[w % 4].clone();
        let to = users[(w + 1 + w / 12) % 4].clone();
        workers.spawn(async move {
            let mut ids = Vec::new();
            for k in 0..6usize {
                let body = json!({"to": to.public_id, "amount": 7 + k as i64, "note": "",
                                  "idempotency_key": format!("w{w}-{k}")});
                let node = (w + k) % 3;
                let r = request(
                    &bases[node],
                    reqwest::Method::POST,
                    "/v1/wallet/transfers",
                    Some(&from.token),
                    Some(body.clone()),
                )
                .await;
                assert_eq!(r.status, 201, "{}", r.body);
                let id = r.body["id"].clone();
                if k % 3 == 0 {
                    let again = request(
                        &bases[(node + 1) % 3],
                        reqwest::Method::POST,
                        "/v1/wallet/transfers",
                        Some(&from.token),
                        Some(body),
                    )
                    .await;
                    assert_eq!(again.status, 201, "{}", again.body);
                    assert_eq!(
                        again.body["id"], id,
                        "a retry through another node is the same transfer"
                    );
                }
                ids.push(id);
            }
            ids
        });
    }
    let mut transfers = 0;
    while let Some(ids) = workers.join_next().await {
        transfers += ids.unwrap().len();
    }
    assert_eq!(transfers, 24 * 6);

    // Red envelopes from user 0 to user 1, claimed through every node while the clock
    // crosses their expiry and every node's sweeper runs.
    let mut envelopes = Vec::new();
    for k in 0..12 {
        let e = s
            .post_as(
                &users[0],
                "/v1/red-envelopes",
                json!({"to": "user_1", "total": 300, "count": 1, "mode": "lucky",
                       "greeting": "", "idempotency_key": format!("env-{k}")}),
            )
            .await
            .expect(201);
        envelopes.push(e.body["id"].as_str().unwrap().to_string());
    }
    s.clock.advance_secs(24 * 3600 - 1);
    let mut claims = tokio::task::JoinSet::new();
    for (k, id) in envelopes.iter().enumerate() {
        let base = nodes[k % 3].base.clone();
        let (token, id) = (users[1].token.clone(), id.clone());
        claims.spawn(async move {
            tokio::time::sleep(Duration::from_millis(k as u64 * 15)).await;
            request(
                &base,
                reqwest::Method::POST,
                &format!("/v1/red-envelopes/{id}/claim"),
                Some(&token),
                Some(json!({})),
            )
            .await
        });
    }
    tokio::time::sleep(Duration::from_millis(90)).await;
    s.clock.advance_secs(2);
    let mut claimed = 0;
    while let Some(r) = claims.join_next().await {
        let r = r.unwrap();
        assert!(
            matches!(r.status, 200 | 404 | 409 | 410),
            "{} {}",
            r.status,
            r.body
        );
        claimed += usize::from(r.status == 200);
    }

    // Wait until the sweepers have settled every envelope nobody claimed.
    let mut settled = HashMap::new();
    for _ in 0..500 {
        settled.clear();
        for id in &envelopes {
            let v = s
                .get(&format!("/v1/red-envelopes/{id}"), &users[0].token)
                .await
                .expect(200)
                .body;
            let claimed_amount: i64 = v["claims"]
                .as_array()
                .map_or(0, |sh| sh.iter().filter_map(|x| x["amount"].as_i64()).sum());
            let refunded = v["refunded"].as_i64().unwrap();
            if refunded > 0 || claimed_amount == 300 {
                settled.insert(id.clone(), (claimed_amount, refunded));
            }
        }
        if settled.len() == envelopes.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        settled.len(),
        envelopes.len(),
        "every envelope claimed or refunded"
    );
    let http = reqwest::Client::new();
    let events = sync_all(&http, &s.base, &users[0].token, 0).await;
    // Every envelope is closed by one `red_envelope.refunded` (amount 0 when fully claimed).
    let mut refunds: HashMap<String, Vec<i64>> = HashMap::new();
    for e in events
        .iter()
        .filter(|e| e["kind"] == "red_envelope.refunded")
    {
        refunds
            .entry(e["data"]["envelope_id"].as_str().unwrap().to_string())
            .or_default()
            .push(e["data"]["amount"].as_i64().unwrap());
    }
    assert!(
        refunds.len() == envelopes.len() && refunds.values().all(|r| r.len() == 1),
        "one refund per envelope across three sweeping nodes: {refunds:?}"
    );
    assert_eq!(
        refunds.values().filter(|r| r[0] > 0).count(),
        envelopes.len() - claimed,
        "money back for exactly the unclaimed ones"
    );
    assert!(
        claimed > 0 && claimed < envelopes.len(),
        "claims raced the expiry: {claimed} of 12 claimed"
    );

    let store = switchboard_store::open(&s.config.database_url)
        .await
        .unwrap();
    let verdict = store.ledger_check().await.unwrap();
    store.close().await;
    assert_eq!(verdict, None, "the ledger holds every invariant");
}

/// Each node runs its own group-commit writer. Six accounts, all contacts of one another, send
/// to every other at once through two nodes, and every message goes out twice at the same
/// moment, once through each node (a client retrying elsewhere): the two writers commit groups
/// sharing senders' budgets, recipients' heads and client ids, in no agreed order. None of it
/// may deadlock into an error, lose a message or store one twice, or leave a gap in a log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_writing_groups_that_overlap_both_ways_lose_and_double_nothing() {
    let a = TestServer::start_on(Backend::Postgres, |_| {}).await;
    let b = a.another_node().await;
    const USERS: usize = 6;
    const EACH: usize = 8;
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(a.user(20 + i as u32, &format!("mesh_{i}")).await);
    }
    for i in 0..USERS {
        for j in i + 1..USERS {
            a.befriend(&users[i], &users[j]).await;
        }
    }
    let http = reqwest::Client::new();
    let mut sends = tokio::task::JoinSet::new();
    for (i, u) in users.iter().enumerate() {
        for k in 0..EACH {
            for j in (0..USERS).filter(|&j| j != i) {
                let client_id = uuid::Uuid::new_v4().to_string();
                let body = format!("mesh_{i}>mesh_{j}#{k}");
                for base in [&a.base, &b.base] {
                    let (http, base, token) = (http.clone(), base.clone(), u.token.clone());
                    let (client_id, body) = (client_id.clone(), body.clone());
                    sends.spawn(async move {
                        let to = format!("mesh_{j}");
                        send_message(&http, &base, &token, &client_id, &to, &body).await
                    });
                }
            }
        }
    }
    let mut statuses = BTreeMap::new();
    while let Some(status) = sends.join_next().await {
        *statuses.entry(status.unwrap()).or_insert(0usize) += 1;
    }
    assert!(
        statuses.keys().all(|s| (200..300).contains(s)),
        "every send and every retry succeeds: {statuses:?}"
    );
    for (j, u) in users.iter().enumerate() {
        let log = sync_all(&http, &b.base, &u.token, 0).await;
        for (n, e) in log.iter().enumerate() {
            assert_eq!(e["seq"].as_i64().unwrap(), n as i64 + 1, "a gapless log");
        }
        let mut got: Vec<String> = log
            .iter()
            .filter(|e| e["kind"] == "message.new")
            .filter_map(|e| e["data"]["body"].as_str())
            .filter(|body| body.contains(&format!(">mesh_{j}#")))
            .map(str::to_string)
            .collect();
        got.sort();
        let mut sent: Vec<String> = (0..USERS)
            .filter(|&i| i != j)
            .flat_map(|i| (0..EACH).map(move |k| format!("mesh_{i}>mesh_{j}#{k}")))
            .collect();
        sent.sort();
        assert_eq!(got, sent, "mesh_{j} has each message to it once");
    }
}
