//! SPEC §1.3 through HTTP: contacts, groups, messages, and the per-account event log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_server::testing::{Reply, TestServer, TestUser};

async fn send(s: &TestServer, from: &TestUser, to: &str, body: &str) -> Reply {
    s.post_as(
        from,
        "/v1/messages",
        json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to, "body": body}),
    )
    .await
}

/// Every event of the account, through sync pages of `limit`.
async fn all_events(s: &TestServer, u: &TestUser, limit: i64) -> Vec<Value> {
    let mut since = 0;
    let mut out = Vec::new();
    loop {
        let page = s
            .get(&format!("/v1/sync?since={since}&limit={limit}"), &u.token)
            .await
            .expect(200)
            .body;
        out.extend(page["events"].as_array().unwrap().iter().cloned());
        since = page["next"].as_i64().unwrap();
        if !page["more"].as_bool().unwrap() {
            return out;
        }
    }
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friend_requests_by_public_id_with_a_note_then_contacts() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;

    let profile = s
        .get("/v1/users/BOB_THE_2ND", &alice.token)
        .await
        .expect(200)
        .body;
    assert_eq!(
        profile,
        json!({"public_id": "bob_the_2nd", "display_name": "bob_the_2nd", "is_contact": false})
    );
    s.get("/v1/users/nobody_here", &alice.token)
        .await
        .expect_error(404, "user_not_found");
    s.get("/v1/users/+8613800138002", &alice.token)
        .await
        .expect_error(404, "user_not_found");

    let r = s
        .post_as(
            &alice,
            "/v1/contacts/requests",
            json!({"public_id": "bob_the_2nd", "note": "from the office"}),
        )
        .await
        .expect(201);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["status"], "pending");
    // Asking again is harmless.
    let again = s
        .post_as(
            &alice,
            "/v1/contacts/requests",
            json!({"public_id": "bob_the_2nd"}),
        )
        .await
        .expect(200);
    assert_eq!(again.body["id"], id.as_str());

    let bobs = s
        .get("/v1/contacts/requests", &bob.token)
        .await
        .expect(200)
        .body;
    assert_eq!(bobs["incoming"][0]["note"], "from the office");
    assert_eq!(bobs["incoming"][0]["from"], "alice_w");
    assert_eq!(
        s.get("/v1/contacts/requests", &alice.token).await.body["outgoing"][0]["id"],
        id.as_str()
    );

    // Only the one asked can accept.
    s.post_as(
        &alice,
        &format!("/v1/contacts/requests/{id}/accept"),
        json!({}),
    )
    .await
    .expect_error(404, "request_not_found");
    s.post_as(
        &bob,
        &format!("/v1/contacts/requests/{id}/accept"),
        json!({}),
    )
    .await
    .expect(200);
    s.post_as(
        &bob,
        &format!("/v1/contacts/requests/{id}/accept"),
        json!({}),
    )
    .await
    .expect(200);
    for (u, other) in [(&alice, "bob_the_2nd"), (&bob, "alice_w")] {
        let contacts = s.get("/v1/contacts", &u.token).await.expect(200).body;
        assert_eq!(contacts["contacts"].as_array().unwrap().len(), 1);
        assert_eq!(contacts["contacts"][0]["public_id"], other);
        let events = all_events(&s, u, 100).await;
        assert_eq!(
            of_kind(&events, "contact.request").len(),
            1,
            "both logs hold the request"
        );
        assert_eq!(
            of_kind(&events, "contact.accepted").len(),
            1,
            "and its acceptance"
        );
    }
    s.post_as(
        &alice,
        "/v1/contacts/requests",
        json!({"public_id": "bob_the_2nd"}),
    )
    .await
    .expect_error(409, "already_contacts");
    s.post_as(
        &alice,
        "/v1/contacts/requests",
        json!({"public_id": "ALICE_W"}),
    )
    .await
    .expect_error(400, "cannot_add_self");
    s.post_as(
        &alice,
        "/v1/contacts/requests",
        json!({"public_id": "nobody_here"}),
    )
    .await
    .expect_error(404, "user_not_found");
    s.post_as(
        &alice,
        "/v1/contacts/requests",
        json!({"public_id": "bob_the_2nd", "note": "x".repeat(201)}),
    )
    .await
    .expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_requests_make_contacts() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.post_as(
        &alice,
        "/v1/contacts/requests",
        json!({"public_id": "bob_the_2nd"}),
    )
    .await
    .expect(201);
    let r = s
        .post_as(
            &bob,
            "/v1/contacts/requests",
            json!({"public_id": "alice_w"}),
        )
        .await
        .expect(201);
    assert_eq!(r.body["status"], "accepted");
    assert_eq!(
        s.get("/v1/users/alice_w", &bob.token).await.body["is_contact"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_contacts_can_message_and_a_message_lands_in_both_logs() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    send(&s, &alice, "bob_the_2nd", "hello?")
        .await
        .expect_error(403, "not_a_contact");
    s.befriend(&alice, &bob).await;
    let m = send(&s, &alice, "BOB_the_2nd", "你好 👋")
        .await
        .expect(201)
        .body;
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str(), m["body"].as_str()),
        (Some("alice_w"), Some("bob_the_2nd"), Some("你好 👋"))
    );
    for u in [&alice, &bob] {
        let events = all_events(&s, u, 100).await;
        let msgs = of_kind(&events, "message.new");
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0]["data"], m, "both logs carry the same message");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_id_makes_sending_idempotent() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    let cid = uuid::Uuid::new_v4().to_string();
    let body = json!({"client_id": cid, "to": "bob_the_2nd", "body": "only once"});
    let first = s
        .post_as(&alice, "/v1/messages", body.clone())
        .await
        .expect(201)
        .body;
    let retry = s
        .post_as(&alice, "/v1/messages", body.clone())
        .await
        .expect(201)
        .body;
    assert_eq!(first, retry, "a retry answers with the same message");
    // Concurrent retries too.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (url, token, body) = (s.url("/v1/messages"), alice.token.clone(), body.clone());
        set.spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    while let Some(st) = set.join_next().await {
        assert_eq!(st.unwrap(), 201);
    }
    let events = all_events(&s, &bob, 100).await;
    assert_eq!(
        of_kind(&events, "message.new").len(),
        1,
        "never a duplicate"
    );
    let other = json!({"client_id": cid, "to": "bob_the_2nd", "body": "something else"});
    s.post_as(&alice, "/v1/messages", other)
        .await
        .expect_error(409, "idempotency_conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_bodies_and_client_ids_are_checked() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    send(&s, &alice, "bob_the_2nd", "")
        .await
        .expect_error(400, "invalid_message_body");
    send(&s, &alice, "bob_the_2nd", &"字".repeat(4097))
        .await
        .expect_error(400, "invalid_message_body");
    send(&s, &alice, "bob_the_2nd", &"😀".repeat(4096))
        .await
        .expect(201);
    s.post_as(
        &alice,
        "/v1/messages",
        json!({"client_id": "not-a-uuid", "to": "bob_the_2nd", "body": "x"}),
    )
    .await
    .expect_error(400, "invalid_request");
    send(&s, &alice, "nobody_here", "x")
        .await
        .expect_error(404, "user_not_found");
    send(&s, &alice, "g_nosuchgroup", "x")
        .await
        .expect_error(404, "group_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_fan_out_to_members_only_and_track_membership() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    let carol = s.user(3, "carol_c").await;
    let dave = s.user(4, "dave_d").await;
    s.befriend(&alice, &bob).await;
    s.befriend(&alice, &carol).await;
    s.befriend(&carol, &dave).await;

    s.post_as(
        &alice,
        "/v1/groups",
        json!({"name": "Team", "members": ["dave_d"]}),
    )
    .await
    .expect_error(403, "not_a_contact");
    s.post_as(&alice, "/v1/groups", json!({"name": " ", "members": []}))
        .await
        .expect_error(400, "invalid_group_name");
    let g = s
        .post_as(
            &alice,
            "/v1/groups",
            json!({"name": "Team", "members": ["bob_the_2nd", "carol_c", "bob_the_2nd"]}),
        )
        .await
        .expect(201)
        .body;
    let gid = g["id"].as_str().unwrap().to_string();
    assert!(gid.starts_with("g_"));
    assert_eq!(g["owner"], "alice_w");
    assert_eq!(g["members"].as_array().unwrap().len(), 3);

    let m = send(&s, &bob, &gid, "hi team").await.expect(201).body;
    assert_eq!(m["to"], gid.as_str());
    for u in [&alice, &bob, &carol] {
        let events = all_events(&s, u, 100).await;
        assert_eq!(
            of_kind(&events, "message.new").len(),
            1,
            "{} gets the group message",
            u.public_id
        );
        assert_eq!(of_kind(&events, "group.joined").len(), 1);
    }
    s.get(&format!("/v1/groups/{gid}"), &dave.token)
        .await
        .expect_error(404, "group_not_found");
    send(&s, &dave, &gid, "let me in")
        .await
        .expect_error(404, "group_not_found");

    // Carol adds her contact Dave; Bob cannot remove anyone; Carol leaves; the owner removes Bob.
    s.post_as(
        &bob,
        &format!("/v1/groups/{gid}/members"),
        json!({"members": ["dave_d"]}),
    )
    .await
    .expect_error(403, "not_a_contact");
    let g = s
        .post_as(
            &carol,
            &format!("/v1/groups/{gid}/members"),
            json!({"members": ["dave_d"]}),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(g["members"].as_array().unwrap().len(), 4);
    let path = |who: &str| format!("/v1/groups/{gid}/members/{who}");
    s.call(Method::DELETE, &path("carol_c"), Some(&bob.token), None)
        .await
        .expect_error(403, "not_group_owner");
    s.call(Method::DELETE, &path("carol_c"), Some(&carol.token), None)
        .await
        .expect(204);
    s.call(
        Method::DELETE,
        &path("bob_the_2nd"),
        Some(&alice.token),
        None,
    )
    .await
    .expect(204);
    send(&s, &carol, &gid, "still here?")
        .await
        .expect_error(404, "group_not_found");
    send(&s, &dave, &gid, "hello all").await.expect(201);
    let carol_events = all_events(&s, &carol, 100).await;
    assert_eq!(
        of_kind(&carol_events, "message.new").len(),
        1,
        "no messages after leaving"
    );
    let dave_events = all_events(&s, &dave, 100).await;
    assert_eq!(
        of_kind(&dave_events, "group.left").len(),
        2,
        "members hear who left"
    );

    // The owner leaves: the longest-standing member takes over.
    s.call(Method::DELETE, &path("alice_w"), Some(&alice.token), None)
        .await
        .expect(204);
    let g = s
        .get(&format!("/v1/groups/{gid}"), &dave.token)
        .await
        .expect(200)
        .body;
    assert_eq!(g["owner"], "dave_d");
    let list = s.get("/v1/groups", &dave.token).await.expect(200).body;
    assert_eq!(list["groups"][0]["id"], gid.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_hold_at_most_500() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let members: Vec<String> = (0..501).map(|i| format!("member_{i}")).collect();
    s.post_as(
        &alice,
        "/v1/groups",
        json!({"name": "Huge", "members": members}),
    )
    .await
    .expect_error(409, "group_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_pages_every_boundary_and_rejects_bad_cursors() {
    let s = TestServer::start().await;
    let alice = s.user(1, "alice_w").await;
    let bob = s.user(2, "bob_the_2nd").await;
    s.befriend(&alice, &bob).await;
    for i in 0..23 {
        send(&s, &alice, "bob_the_2nd", &format!("m{i}"))
            .await
            .expect(201);
    }
    let reference = all_events(&s, &bob, 1000).await;
    let seqs: Vec<i64> = reference
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "1, 2, 3, … with no gap"
    );
    for limit in [1, 2, 5, 7, 23, 25, 1000] {
        assert_eq!(
            all_events(&s, &bob, limit).await,
            reference,
            "limit {limit} pages to the same log"
        );
    }
    // From every cursor, exactly the rest.
    for since in 0..=seqs.len() as i64 {
        let page = s
            .get(&format!("/v1/sync?since={since}&limit=1000"), &bob.token)
            .await
            .expect(200)
            .body;
        let got: Vec<i64> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(got, (since + 1..=seqs.len() as i64).collect::<Vec<_>>());
        assert_eq!(page["next"], json!((seqs.len() as i64).max(since)));
    }
    let beyond = s
        .get("/v1/sync?since=1000000", &bob.token)
        .await
        .expect_error(400, "invalid_request");
    assert!(
        beyond.message().contains(&format!("({})", seqs.len())),
        "names the newest: {}",
        beyond.message()
    );
    for bad in [
        "since=-1",
        "limit=0",
        "limit=1001",
        "limit=99999999999999999999",
        "since=abc",
        "since=1&bogus=2",
    ] {
        s.get(&format!("/v1/sync?{bad}"), &bob.token)
            .await
            .expect_error(400, "invalid_request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_keep_each_senders_order_in_the_recipients_log() {
    let s = TestServer::start().await;
    let bob = s.user(0, "bob_the_2nd").await;
    let mut senders = Vec::new();
    for i in 1..=4 {
        let u = s.user(i, &format!("sender_{i}")).await;
        s.befriend(&u, &bob).await;
        senders.push(u);
    }
    let mut set = tokio::task::JoinSet::new();
    for u in &senders {
        let (url, token, who) = (s.url("/v1/messages"), u.token.clone(), u.public_id.clone());
        set.spawn(async move {
            let client = reqwest::Client::new();
            for n in 0..50 {
                let body = json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": "bob_the_2nd", "body": format!("{who} {n}")});
                assert_eq!(client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap().status(), 201);
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let events = all_events(&s, &bob, 37).await;
    let msgs = of_kind(&events, "message.new");
    assert_eq!(msgs.len(), 200, "every message exactly once");
    for u in &senders {
        let mine: Vec<String> = msgs
            .iter()
            .filter(|m| m["data"]["from"] == u.public_id.as_str())
            .map(|m| m["data"]["body"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = (0..50).map(|n| format!("{} {n}", u.public_id)).collect();
        assert_eq!(mine, expected, "each sender's messages in the order sent");
    }
}

/// Retries of one message racing each other and new messages (on SQLite they meet in one
/// group commit): every copy is answered with the one message, each new one lands, and the
/// recipient's log holds each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_retries_of_one_client_id_make_one_message_beside_the_others() {
    let s = TestServer::start().await;
    let bob = s.user(0, "bob_the_2nd").await;
    let alice = s.user(1, "alice_w").await;
    s.befriend(&alice, &bob).await;
    let retried = uuid::Uuid::new_v4().to_string();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..24 {
        let (url, token) = (s.url("/v1/messages"), alice.token.clone());
        let (client_id, body) = if i % 2 == 0 {
            (retried.clone(), "the retried one".to_string())
        } else {
            (uuid::Uuid::new_v4().to_string(), format!("new {i}"))
        };
        set.spawn(async move {
            let r = reqwest::Client::new()
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"client_id": client_id, "to": "bob_the_2nd", "body": body}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (
                status,
                v["body"].as_str().unwrap_or("").to_string(),
                v["id"].as_str().unwrap_or("").to_string(),
            )
        });
    }
    let answers = set.join_all().await;
    assert!(answers.iter().all(|(st, ..)| *st == 201), "{answers:?}");
    let retried_ids: std::collections::HashSet<&String> = answers
        .iter()
        .filter(|(_, body, _)| body == "the retried one")
        .map(|(_, _, id)| id)
        .collect();
    assert_eq!(retried_ids.len(), 1, "every copy answered with one message");
    let events = all_events(&s, &bob, 100).await;
    let msgs = of_kind(&events, "message.new");
    assert_eq!(msgs.len(), 13, "12 new ones and the retried one once");
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a log without gaps: {seqs:?}"
    );
}
