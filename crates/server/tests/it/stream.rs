//! The WebSocket event stream: replay then live with no gap or duplicate at the switch-over,
//! resuming from any cursor, revoked sessions, bad input on the socket, and a fault test
//! that cuts the connection ~100 times and restarts the service while 1,000 messages flow.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use crate::common::{connect, next_event};
use futures_util::SinkExt;
use reqwest::Method;
use serde_json::json;
use switchboard_server::testing::{TcpProxy, TestServer, TestUser};
use tokio_tungstenite::tungstenite::Message as Ws;

async fn send_to(base: &str, token: &str, to: &str, body: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .bearer_auth(token)
        .json(&json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to, "body": body}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

async fn head(s: &TestServer, u: &TestUser) -> i64 {
    let mut since = 0;
    loop {
        let page = s
            .get(&format!("/v1/sync?since={since}&limit=1000"), &u.token)
            .await
            .expect(200)
            .body;
        since = page["next"].as_i64().unwrap();
        if !page["more"].as_bool().unwrap() {
            return since;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_after_the_cursor_then_pushes_live() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    for i in 0..3 {
        send_to(&s.base, &alice.token, "bob_the_2nd", &format!("old {i}")).await;
    }
    let last = head(&s, &bob).await;
    let mut ws = connect(s.addr, &bob.token, last - 2).await.unwrap();
    assert_eq!(next_event(&mut ws).await.unwrap()["data"]["body"], "old 1");
    assert_eq!(next_event(&mut ws).await.unwrap()["data"]["body"], "old 2");
    send_to(&s.base, &alice.token, "bob_the_2nd", "live").await;
    let live = next_event(&mut ws).await.unwrap();
    assert_eq!(
        (live["seq"].as_i64(), live["kind"].as_str()),
        (Some(last + 1), Some("message.new"))
    );
    assert_eq!(live["data"]["body"], "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_every_cursor_gives_exactly_the_rest() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    for i in 0..12 {
        send_to(&s.base, &alice.token, "bob_the_2nd", &format!("m{i}")).await;
    }
    let last = head(&s, &bob).await;
    for since in 0..=last {
        let mut ws = connect(s.addr, &bob.token, since).await.unwrap();
        for want in since + 1..=last {
            assert_eq!(
                next_event(&mut ws).await.unwrap()["seq"],
                want,
                "from since={since}"
            );
        }
        // Nothing more until something happens.
        let quiet = tokio::time::timeout(Duration::from_millis(50), next_event(&mut ws)).await;
        assert!(
            quiet.is_err(),
            "from since={since}: an extra event {quiet:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gap_or_duplicate_when_connecting_during_a_burst() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    let start = head(&s, &bob).await;
    let total = 300;
    let (base, token) = (s.base.clone(), alice.token.clone());
    let sender = tokio::spawn(async move {
        for i in 0..total {
            send_to(&base, &token, "bob_the_2nd", &format!("m{i}")).await;
        }
    });
    // Reconnect repeatedly mid-burst, each time from the cursor reached so far.
    let mut cursor = start;
    let mut bodies = Vec::new();
    while bodies.len() < total {
        let mut ws = connect(s.addr, &bob.token, cursor).await.unwrap();
        for _ in 0..37 {
            let Ok(ev) = next_event(&mut ws).await else {
                break;
            };
            assert_eq!(
                ev["seq"].as_i64().unwrap(),
                cursor + 1,
                "strictly the next event"
            );
            cursor += 1;
            bodies.push(ev["data"]["body"].as_str().unwrap().to_string());
            if bodies.len() == total {
                break;
            }
        }
    }
    sender.await.unwrap();
    assert_eq!(
        bodies,
        (0..total).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_hears_it_then_its_socket_closes() {
    let s = TestServer::start().await;
    s.register(
        "+8613800138001",
        "alice_w",
        switchboard_server::testing::TEST_PASSWORD,
    )
    .await;
    let laptop = s
        .sign_in("alice_w", switchboard_server::testing::TEST_PASSWORD)
        .await;
    let phone = s
        .sign_in("alice_w", switchboard_server::testing::TEST_PASSWORD)
        .await;
    let since = head(
        &s,
        &TestUser {
            token: laptop.clone(),
            public_id: String::new(),
        },
    )
    .await;
    let mut laptop_ws = connect(s.addr, &laptop, since).await.unwrap();
    let mut phone_ws = connect(s.addr, &phone, since).await.unwrap();
    let laptop_id = s.other_session(&phone).await;
    s.call(
        Method::DELETE,
        &format!("/v1/sessions/{laptop_id}"),
        Some(&phone),
        None,
    )
    .await
    .expect(204);

    let ev = next_event(&mut laptop_ws).await.unwrap();
    assert_eq!(
        (ev["kind"].as_str(), ev["data"]["session_id"].as_str()),
        (Some("session.revoked"), Some(laptop_id.as_str()))
    );
    let end = next_event(&mut laptop_ws).await.unwrap_err();
    assert!(end.contains("4001"), "closed as revoked: {end}");
    s.get("/v1/me", &laptop)
        .await
        .expect_error(401, "session_revoked");
    assert!(
        connect(s.addr, &laptop, 0).await.is_err(),
        "a revoked token cannot open a stream"
    );

    // The other device hears of it and stays connected.
    assert_eq!(
        next_event(&mut phone_ws).await.unwrap()["kind"],
        "session.revoked"
    );
    s.call(
        Method::PATCH,
        "/v1/me",
        Some(&phone),
        Some(json!({"display_name": "A"})),
    )
    .await
    .expect(200);
    phone_ws.send(Ws::Ping(vec![1].into())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_the_socket_gets_a_clear_answer_and_harms_nothing() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    let since = head(&s, &bob).await;
    let mut ws = connect(s.addr, &bob.token, since).await.unwrap();
    ws.send(Ws::Text("{not json".into())).await.unwrap();
    let reply = next_event(&mut ws).await.unwrap();
    assert_eq!(reply["error"]["code"], "invalid_request");
    ws.send(Ws::Binary(vec![0xff; 100].into())).await.unwrap();
    assert_eq!(
        next_event(&mut ws).await.unwrap()["error"]["code"],
        "invalid_request"
    );
    send_to(&s.base, &alice.token, "bob_the_2nd", "still flowing").await;
    assert_eq!(
        next_event(&mut ws).await.unwrap()["data"]["body"],
        "still flowing"
    );

    // An oversized frame ends that socket, and only that socket.
    let mut other = connect(s.addr, &bob.token, since).await.unwrap();
    let _ = other.send(Ws::Text("x".repeat(100_000).into())).await;
    let mut ended = false;
    for _ in 0..5 {
        if let Err(e) = next_event(&mut other).await {
            ended = !e.contains("no event");
            break;
        }
    }
    assert!(ended, "the oversized frame closes its socket");
    send_to(&s.base, &alice.token, "bob_the_2nd", "after").await;
    assert_eq!(next_event(&mut ws).await.unwrap()["data"]["body"], "after");

    // Refused before any upgrade: bad cursor, no token, not a WebSocket.
    assert!(connect(s.addr, &bob.token, -1).await.is_err());
    assert!(connect(s.addr, "nonsense", 0).await.is_err());
    s.get("/v1/events?since=-1", &bob.token)
        .await
        .expect_error(400, "invalid_request");
    s.get("/v1/events", &bob.token)
        .await
        .expect_error(400, "invalid_request");
    s.call(Method::GET, "/v1/events", None, None)
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_through_a_hundred_cuts_and_a_restart_arrive_once_in_order() {
    // A thousand messages in seconds is a flood by the default budget; this is a fault test.
    let s = TestServer::start_with(|c| c.limits.messages_per_minute = 10_000).await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    let start = head(&s, &bob).await;
    let proxy = Arc::new(TcpProxy::start(s.addr).await);
    let total = 1000;

    // The receiver resumes from its cursor after every cut; any duplicate, gap or reordering
    // fails the `seq == cursor + 1` check.
    let receiver = {
        let (proxy_addr, token) = (proxy.addr, bob.token.clone());
        tokio::spawn(async move {
            let mut cursor = start;
            let mut bodies = Vec::new();
            let mut connects = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while bodies.len() < total {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "stalled at {} of {total}",
                    bodies.len()
                );
                let Ok(mut ws) = connect(proxy_addr, &token, cursor).await else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                connects += 1;
                while let Ok(ev) = next_event(&mut ws).await {
                    assert_eq!(
                        ev["seq"].as_i64().unwrap(),
                        cursor + 1,
                        "exactly the next event"
                    );
                    cursor += 1;
                    if ev["kind"] == "message.new" {
                        bodies.push(ev["data"]["body"].as_str().unwrap().to_string());
                    }
                }
            }
            (bodies, connects)
        })
    };

    // ~100 cuts at random moments (seeded from the clock; the seed is printed).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("cut schedule seed: {seed}");
    let cutter = {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let mut x = seed;
            let mut cuts = 0;
            while cuts < 100 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                tokio::time::sleep(Duration::from_millis(2 + x % 25)).await;
                if proxy.cut() > 0 {
                    cuts += 1;
                }
            }
            cuts
        })
    };

    let mut s = s;
    for i in 0..total {
        if i == total / 2 {
            // A restart in the middle: same database, new port.
            s = s.restart().await;
            proxy.set_upstream(s.addr);
        }
        send_to(&s.base, &alice.token, "bob_the_2nd", &format!("m{i}")).await;
        if i % 10 == 0 {
            // Let the cutter keep pace with the sender.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let cuts = tokio::time::timeout(Duration::from_secs(60), cutter)
        .await
        .expect("cutter finishes")
        .unwrap();
    let (bodies, connects) = receiver.await.unwrap();
    println!("{total} messages, {cuts} cuts, {connects} connections");
    assert_eq!(cuts, 100);
    assert!(
        connects > 50,
        "the connection really was cut and resumed ({connects} connections)"
    );
    assert_eq!(
        bodies,
        (0..total).map(|i| format!("m{i}")).collect::<Vec<_>>(),
        "each message once, in order"
    );
}
