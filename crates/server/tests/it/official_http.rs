//! Official accounts through HTTP (SPEC §1.5), on the backend `SWITCHBOARD_TEST_BACKEND`
//! names: roles on every route, removal at once (sockets included), the two limits and the
//! claim under concurrent requests, API keys, what followers may see, and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use crate::common;
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_server::testing::{Call, Reply, TestServer, TestUser, calls_at_once, post_at_once};

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Acme, owned by `boss`, with an admin, an editor and a support operator, followed by carol
/// who has written to it.
struct Acme {
    s: TestServer,
    id: String,
    boss: TestUser,
    admin: TestUser,
    editor: TestUser,
    support: TestUser,
    stranger: TestUser,
    carol: TestUser,
}

async fn acme_on(s: TestServer) -> Acme {
    let boss = s.verified_user(1, "acme_boss").await;
    let admin = s.user(2, "acme_admin").await;
    let editor = s.user(3, "acme_editor").await;
    let support = s.user(4, "acme_support").await;
    let stranger = s.user(5, "stranger").await;
    let carol = s.user(6, "carol_c").await;
    let id = s
        .official(
            &boss,
            "Acme Coffee",
            &[
                ("acme_admin", "admin"),
                ("acme_editor", "editor"),
                ("acme_support", "support"),
            ],
            &[&carol],
        )
        .await;
    s.post_as(
        &carol,
        "/v1/messages",
        json!({"client_id": uuid(), "to": id, "body": "open on Sunday?"}),
    )
    .await
    .expect(201);
    Acme {
        s,
        id,
        boss,
        admin,
        editor,
        support,
        stranger,
        carol,
    }
}

async fn acme() -> Acme {
    acme_on(TestServer::start().await).await
}

async fn delete(s: &TestServer, u: &TestUser, path: &str) -> Reply {
    s.call(Method::DELETE, path, Some(&u.token), None).await
}

async fn sync(s: &TestServer, token: &str) -> Value {
    s.get("/v1/sync?limit=1000", token).await.expect(200).body
}

fn kinds(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_needs_a_verified_identity_and_makes_the_creator_its_owner() {
    let s = TestServer::start().await;
    let plain = s.user(1, "plain_pat").await;
    s.post_as(
        &plain,
        "/v1/official-accounts",
        json!({"name": "Pat's", "description": ""}),
    )
    .await
    .expect_error(403, "identity_unverified");
    let boss = s.verified_user(2, "acme_boss").await;
    for bad in ["", "   ", "Acme\u{202E}eeffoC", &"x".repeat(65)] {
        s.post_as(
            &boss,
            "/v1/official-accounts",
            json!({"name": bad, "description": ""}),
        )
        .await
        .expect_error(400, "invalid_official_account");
    }
    let made = s
        .post_as(
            &boss,
            "/v1/official-accounts",
            json!({"name": "Acme", "description": "Beans"}),
        )
        .await
        .expect(201)
        .body;
    let id = made["id"].as_str().unwrap();
    assert!(id.starts_with("o_"));
    assert_eq!(
        (made["role"].as_str(), made["followers"].as_i64()),
        (Some("owner"), Some(0))
    );
    // Customers see only the name: an exact copy or a lookalike of it is someone else's,
    // at once or later (the Cyrillic А, capitals, doubled spaces, "rn" for "m").
    let rival = s.verified_user(3, "rival_r").await;
    let copies = ["Acme", "\u{0410}cme", " ACME ", "Acrne"];
    let tally = calls_at_once(copies.len(), |i| {
        Call::post(
            &s.base,
            "/v1/official-accounts",
            Some(&rival.token),
            json!({"name": copies[i], "description": ""}),
        )
    })
    .await;
    assert_eq!(
        tally.get(&(409, "official_name_taken".into())),
        Some(&copies.len()),
        "{tally:?}"
    );
    s.post_as(
        &rival,
        "/v1/official-accounts",
        json!({"name": "Acme Tea", "description": ""}),
    )
    .await
    .expect(201);
    // The role shows to operators only; the list of mine has it.
    let seen = s
        .get(&format!("/v1/official-accounts/{id}"), &plain.token)
        .await
        .expect(200)
        .body;
    assert!(seen.get("role").is_none(), "{seen}");
    let mine = s
        .get("/v1/official-accounts?mine=true", &boss.token)
        .await
        .expect(200)
        .body;
    assert_eq!(mine["official_accounts"][0]["id"], id);
    assert_eq!(
        s.get("/v1/official-accounts?mine=true", &plain.token)
            .await
            .expect(200)
            .body["official_accounts"],
        json!([])
    );
    // The owner's devices learn of it.
    assert!(kinds(&sync(&s, &boss.token).await).contains(&"official.operator_added".to_string()));
    s.get("/v1/official-accounts/o_nosuchaccount00", &plain.token)
        .await
        .expect_error(404, "official_not_found");
}

/// Every route, every role: allowed, or 403 `official_forbidden` before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_may_do_exactly_what_it_is_for_on_every_route() {
    let a = acme().await;
    let s = &a.s;
    let id = a.id.clone();
    // (who, allowed to: manage operators, publish, see conversations, claim, answer, make keys)
    let cases = [
        (&a.admin, [true, true, true, true, true, true]),
        (&a.editor, [false, true, false, false, false, false]),
        (&a.support, [false, false, true, true, true, false]),
        (&a.stranger, [false, false, false, false, false, false]),
    ];
    for (n, (who, allowed)) in cases.into_iter().enumerate() {
        let answers = [
            s.post_as(
                who,
                &format!("/v1/official-accounts/{id}/operators"),
                json!({"public_id": "carol_c", "role": "support"}),
            )
            .await,
            s.post_as(
                who,
                &format!("/v1/official-accounts/{id}/articles"),
                json!({"title": "t", "body": "b", "idempotency_key": format!("k{n}")}),
            )
            .await,
            s.get(
                &format!("/v1/official-accounts/{id}/conversations"),
                &who.token,
            )
            .await,
            s.post_as(
                who,
                &format!("/v1/official-accounts/{id}/conversations/carol_c/claim"),
                json!({}),
            )
            .await,
            s.post_as(
                who,
                "/v1/messages",
                json!({"client_id": uuid(), "from_official": id, "to": "carol_c", "body": "hi"}),
            )
            .await,
            s.post_as(
                who,
                &format!("/v1/official-accounts/{id}/api-keys"),
                json!({"name": "bot", "role": "support"}),
            )
            .await,
        ];
        for (route, (reply, ok)) in answers.into_iter().zip(allowed).enumerate() {
            if ok {
                assert!(
                    reply.status < 300,
                    "{} route {route}: {}",
                    who.public_id,
                    reply.body
                );
            } else {
                reply.expect_error(403, "official_forbidden");
            }
            // The admin's claim holds carol's conversation: let it lapse for the next one.
            s.clock.advance_secs(31 * 60);
        }
        // Undo the admin's operator add so the next role starts from the same set.
        if allowed[0] {
            delete(
                s,
                &a.boss,
                &format!("/v1/official-accounts/{id}/operators/carol_c"),
            )
            .await
            .expect(204);
        }
    }
    // Removing: the owner never; an operator may leave; only the owner and admins remove others.
    delete(
        s,
        &a.admin,
        &format!("/v1/official-accounts/{id}/operators/acme_boss"),
    )
    .await
    .expect_error(403, "official_forbidden");
    delete(
        s,
        &a.support,
        &format!("/v1/official-accounts/{id}/operators/acme_editor"),
    )
    .await
    .expect_error(403, "official_forbidden");
    delete(
        s,
        &a.editor,
        &format!("/v1/official-accounts/{id}/operators/acme_editor"),
    )
    .await
    .expect(204);
    delete(
        s,
        &a.admin,
        &format!("/v1/official-accounts/{id}/operators/acme_editor"),
    )
    .await
    .expect_error(404, "operator_not_found");
    // The owner's role cannot change, and nobody is made a second owner.
    s.post_as(
        &a.admin,
        &format!("/v1/official-accounts/{id}/operators"),
        json!({"public_id": "acme_boss", "role": "support"}),
    )
    .await
    .expect_error(403, "official_forbidden");
    s.post_as(
        &a.boss,
        &format!("/v1/official-accounts/{id}/operators"),
        json!({"public_id": "carol_c", "role": "owner"}),
    )
    .await
    .expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_operator_is_refused_at_once_and_its_live_socket_stops_getting_customers() {
    let a = acme().await;
    let s = &a.s;
    let head = sync(s, &a.support.token).await["head"].as_i64().unwrap();
    let mut ws = common::connect(s.addr, &a.support.token, head)
        .await
        .unwrap();
    delete(
        s,
        &a.admin,
        &format!("/v1/official-accounts/{}/operators/acme_support", a.id),
    )
    .await
    .expect(204);
    let removed = common::next_event(&mut ws).await.unwrap();
    assert_eq!(removed["kind"], "official.operator_removed");
    assert_eq!(removed["data"]["public_id"], "acme_support");
    // Refused at once, on every route.
    s.get(
        &format!("/v1/official-accounts/{}/conversations", a.id),
        &a.support.token,
    )
    .await
    .expect_error(403, "official_forbidden");
    s.post_as(
        &a.support,
        "/v1/messages",
        json!({"client_id": uuid(), "from_official": a.id, "to": "carol_c", "body": "still here"}),
    )
    .await
    .expect_error(403, "official_forbidden");
    // Carol writes again: the admin hears it, the removed operator's socket does not. Then a
    // follow of its own account's is the next thing its socket sees.
    let admin_head = sync(s, &a.admin.token).await["head"].as_i64().unwrap();
    s.post_as(
        &a.carol,
        "/v1/messages",
        json!({"client_id": uuid(), "to": a.id, "body": "hello again"}),
    )
    .await
    .expect(201);
    let admin_page = s
        .get(&format!("/v1/sync?since={admin_head}"), &a.admin.token)
        .await
        .expect(200)
        .body;
    assert_eq!(kinds(&admin_page), ["official.message"]);
    let other = s
        .official(&a.boss, "Acme Tea", &[("acme_support", "support")], &[])
        .await;
    let next = common::next_event(&mut ws).await.unwrap();
    assert_eq!(
        (next["kind"].as_str(), next["data"]["official_id"].as_str()),
        (Some("official.operator_added"), Some(other.as_str())),
        "nothing of Acme Coffee came in between"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_racing_for_the_last_seats_keep_both_limits() {
    let s = TestServer::start_with(|c| {
        c.official.max_operators = 4;
        c.official.max_per_operator = 2;
    })
    .await;
    let boss = s.verified_user(1, "acme_boss").await;
    let id = s.official(&boss, "Acme", &[], &[]).await;
    let mut hopefuls = Vec::new();
    for i in 0..8 {
        hopefuls.push(s.user(10 + i, &format!("hopeful{i}")).await.public_id);
    }
    let tally = post_at_once(
        &s.base,
        &boss.token,
        &format!("/v1/official-accounts/{id}/operators"),
        8,
        |i| json!({"public_id": hopefuls[i], "role": "support"}),
    )
    .await;
    assert_eq!(tally.get(&(201, String::new())), Some(&3), "{tally:?}");
    assert_eq!(
        tally.get(&(409, "official_limit".into())),
        Some(&5),
        "{tally:?}"
    );
    let listed = s
        .get(
            &format!("/v1/official-accounts/{id}/operators"),
            &boss.token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(listed["operators"].as_array().unwrap().len(), 4);
    // One person added to several official accounts at once: at most max_per_operator.
    let busy = s.user(30, "busy_bee").await;
    let mut others = Vec::new();
    for i in 0..4 {
        let owner = s.verified_user(20 + i, &format!("owner{i}")).await;
        let other = s.official(&owner, &format!("Acme {i}"), &[], &[]).await;
        others.push((owner, other));
    }
    let tally = calls_at_once(4, |i| {
        Call::post(
            &s.base,
            &format!("/v1/official-accounts/{}/operators", others[i].1),
            Some(&others[i].0.token),
            json!({"public_id": "busy_bee", "role": "editor"}),
        )
    })
    .await;
    assert_eq!(tally.get(&(201, String::new())), Some(&2), "{tally:?}");
    let refused = s
        .post_as(
            &boss,
            &format!("/v1/official-accounts/{id}/operators"),
            json!({"public_id": "busy_bee", "role": "editor"}),
        )
        .await;
    let refused = refused.expect_error(409, "official_limit");
    assert!(
        refused.message().contains("official.max_per_operator")
            || refused.message().contains("official.max_operators")
    );
    assert_eq!(
        s.get("/v1/official-accounts?mine=true", &busy.token)
            .await
            .expect(200)
            .body["official_accounts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_racing_for_one_conversation_get_one_claim_which_lapses_after_thirty_minutes() {
    let a = acme().await;
    let s = &a.s;
    let path = format!("/v1/official-accounts/{}/conversations/carol_c/claim", a.id);
    let racers = [&a.boss, &a.admin, &a.support];
    let tally = calls_at_once(3, |i| {
        Call::post(&s.base, &path, Some(&racers[i].token), json!({}))
    })
    .await;
    assert_eq!(tally.get(&(200, String::new())), Some(&1), "{tally:?}");
    assert_eq!(
        tally.get(&(409, "conversation_claimed".into())),
        Some(&2),
        "{tally:?}"
    );
    let listed = s
        .get(
            &format!("/v1/official-accounts/{}/conversations", a.id),
            &a.support.token,
        )
        .await
        .expect(200)
        .body;
    let holder = listed["conversations"][0]["claimed_by"]
        .as_str()
        .unwrap()
        .to_string();
    let loser = racers.iter().find(|r| r.public_id != holder).unwrap();
    s.post_as(
        loser,
        "/v1/messages",
        json!({"client_id": uuid(), "from_official": a.id, "to": "carol_c", "body": "me too"}),
    )
    .await
    .expect_error(409, "conversation_claimed");
    s.clock.advance_secs(30 * 60 + 1);
    s.post_as(loser, &path, json!({})).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_see_the_official_account_never_the_operator() {
    let a = acme().await;
    let s = &a.s;
    s.post_as(
        &a.support,
        "/v1/messages",
        json!({"client_id": uuid(), "from_official": a.id, "to": "carol_c", "body": "from noon"}),
    )
    .await
    .expect(201);
    s.post_as(
        &a.editor,
        &format!("/v1/official-accounts/{}/articles", a.id),
        json!({"title": "Menu", "body": "Beans.", "idempotency_key": "m1"}),
    )
    .await
    .expect(201);
    let carols = sync(s, &a.carol.token).await;
    let text = carols.to_string();
    for operator in ["acme_support", "acme_editor", "acme_boss", "acme_admin"] {
        assert!(
            !text.contains(operator),
            "{operator} shows to a follower: {text}"
        );
    }
    let answer = carols["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["body"] == "from noon")
        .unwrap();
    assert_eq!(
        (
            answer["data"]["from"].as_str(),
            answer["data"]["from_display_name"].as_str()
        ),
        (Some(a.id.as_str()), Some("Acme Coffee"))
    );
    // Operators see who answered.
    let ops = sync(s, &a.admin.token).await;
    let seen = ops["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "official.message" && e["data"]["message"]["body"] == "from noon")
        .unwrap();
    assert_eq!(seen["data"]["responder"]["public_id"], "acme_support");
    assert_eq!(seen["data"]["unanswered"], 0);
    // A follower who unfollows can no longer write.
    delete(
        s,
        &a.carol,
        &format!("/v1/official-accounts/{}/follow", a.id),
    )
    .await
    .expect(204);
    s.post_as(
        &a.carol,
        "/v1/messages",
        json!({"client_id": uuid(), "to": a.id, "body": "hello?"}),
    )
    .await
    .expect_error(403, "not_following");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_acts_only_for_its_official_account_until_revoked_and_within_its_rate() {
    let s = TestServer::start_with(|c| c.official.api_per_minute = 5).await;
    let a = acme_on(s).await;
    let s = &a.s;
    let other = s.official(&a.boss, "Acme Tea", &[], &[]).await;
    let made = s
        .post_as(
            &a.admin,
            &format!("/v1/official-accounts/{}/api-keys", a.id),
            json!({"name": "shop bot", "role": "support"}),
        )
        .await
        .expect(201)
        .body;
    let key = made["key"].as_str().unwrap().to_string();
    let key_id = made["id"].as_str().unwrap().to_string();
    let listed = s
        .get(
            &format!("/v1/official-accounts/{}/api-keys", a.id),
            &a.admin.token,
        )
        .await
        .expect(200)
        .body;
    assert!(!listed.to_string().contains(&key), "the key is shown once");
    // Its own official account: it answers, and operators see the key's name.
    s.call(Method::POST, "/v1/messages", Some(&key), Some(json!({"client_id": uuid(), "from_official": a.id, "to": "carol_c", "body": "automated hello"})))
        .await
        .expect(201);
    // Another's: refused.
    s.call(
        Method::GET,
        &format!("/v1/official-accounts/{other}/conversations"),
        Some(&key),
        None,
    )
    .await
    .expect_error(403, "official_forbidden");
    // Its rate: 5 a minute in all (2 used); of 8 at once, 3 pass and the rest say when.
    let path = format!("/v1/official-accounts/{}/conversations", a.id);
    let tally = calls_at_once(8, |_| Call::new(&s.base, Method::GET, &path, Some(&key))).await;
    assert_eq!(tally.get(&(200, String::new())), Some(&3), "{tally:?}");
    assert_eq!(
        tally.get(&(429, "rate_limited".into())),
        Some(&5),
        "{tally:?}"
    );
    s.clock.advance_secs(61);
    delete(
        s,
        &a.admin,
        &format!("/v1/official-accounts/{}/api-keys/{key_id}", a.id),
    )
    .await
    .expect(204);
    s.call(
        Method::GET,
        &format!("/v1/official-accounts/{}/conversations", a.id),
        Some(&key),
        None,
    )
    .await
    .expect_error(401, "unauthorized");
    delete(
        s,
        &a.admin,
        &format!("/v1/official-accounts/{}/api-keys/{key_id}", a.id),
    )
    .await
    .expect_error(404, "api_key_not_found");
    let ops = sync(s, &a.boss.token).await;
    assert!(
        ops["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["responder"]["name"] == "shop bot")
    );
}

/// The owner sees who made each key; removing an operator revokes the keys they made unless
/// the remover keeps them; a removed admin's requests racing the removal write nothing after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_name_their_maker_and_end_with_them_unless_kept() {
    let a = acme().await;
    let s = &a.s;
    let keys = format!("/v1/official-accounts/{}/api-keys", a.id);
    let make =
        |name: &'static str| s.post_as(&a.admin, &keys, json!({"name": name, "role": "support"}));
    let gone = make("night bot").await.expect(201).body["key"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = s.get(&keys, &a.boss.token).await.expect(200).body;
    assert_eq!(listed["api_keys"][0]["created_by"], "acme_admin");
    let conversations = format!("/v1/official-accounts/{}/conversations", a.id);
    s.call(Method::GET, &conversations, Some(&gone), None)
        .await
        .expect(200);

    // The owner removes the admin while the admin adds people and makes keys, all at once.
    let mut recruits = Vec::new();
    for n in 0..6 {
        recruits.push(s.user(30 + n, &format!("recruit_{n}")).await);
    }
    let operators = format!("/v1/official-accounts/{}/operators", a.id);
    let mut calls: Vec<Call> = recruits
        .iter()
        .map(|r| {
            Call::post(
                &s.base,
                &operators,
                Some(&a.admin.token),
                json!({"public_id": r.public_id, "role": "support"}),
            )
        })
        .collect();
    for _ in 0..4 {
        calls.push(Call::post(
            &s.base,
            &keys,
            Some(&a.admin.token),
            json!({"name": "race bot", "role": "support"}),
        ));
    }
    calls.push(Call::new(
        &s.base,
        Method::DELETE,
        &format!("{operators}/acme_admin"),
        Some(&a.boss.token),
    ));
    let tally = calls_at_once(calls.len(), |i| calls[i].clone()).await;
    assert_eq!(tally.get(&(204, String::new())), Some(&1), "{tally:?}");
    assert!(
        tally.keys().all(
            |(status, code)| matches!(*status, 200 | 201 | 204) || code == "official_forbidden"
        ),
        "the admin's requests are done before the removal or refused: {tally:?}"
    );
    // No key of theirs works any more, the early one included; the log has no add after the
    // removal.
    s.call(Method::GET, &conversations, Some(&gone), None)
        .await
        .expect_error(401, "unauthorized");
    let listed = s.get(&keys, &a.boss.token).await.expect(200).body;
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 0, "{listed}");
    let log = sync(s, &a.boss.token).await;
    let kinds: Vec<(String, String)> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["data"]["public_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let removed = kinds
        .iter()
        .position(|(k, who)| k == "official.operator_removed" && who == "acme_admin")
        .expect("the owner is told of the removal");
    assert!(
        kinds[removed..]
            .iter()
            .all(|(k, _)| k != "official.operator_added"),
        "nothing the removed admin asked for lands after the removal: {kinds:?}"
    );

    // Kept: the owner makes the editor an admin, the editor makes a key, and the editor's
    // removal with keep_keys=true leaves it working.
    s.post_as(
        &a.boss,
        &operators,
        json!({"public_id": "acme_editor", "role": "admin"}),
    )
    .await
    .expect(201);
    let kept = s
        .post_as(
            &a.editor,
            &keys,
            json!({"name": "till bot", "role": "support"}),
        )
        .await
        .expect(201)
        .body["key"]
        .as_str()
        .unwrap()
        .to_string();
    s.call(
        Method::DELETE,
        &format!("{operators}/acme_editor?keep_keys=true"),
        Some(&a.boss.token),
        None,
    )
    .await
    .expect(204);
    s.call(Method::GET, &conversations, Some(&kept), None)
        .await
        .expect(200);
    let listed = s.get(&keys, &a.boss.token).await.expect(200).body;
    assert_eq!(listed["api_keys"][0]["created_by"], "acme_editor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publish_retried_at_once_is_one_article_to_every_follower() {
    let a = acme().await;
    let s = &a.s;
    let mut followers = vec![a.carol.clone()];
    for i in 0..20 {
        let f = s.user(40 + i, &format!("follower{i:02}")).await;
        s.post_as(
            &f,
            &format!("/v1/official-accounts/{}/follow", a.id),
            json!({}),
        )
        .await
        .expect(200);
        followers.push(f);
    }
    let tally = post_at_once(&s.base, &a.editor.token, &format!("/v1/official-accounts/{}/articles", a.id), 6, |_| {
        json!({"title": "Launch", "body": "We open today.\n\nCome by.", "idempotency_key": "launch"})
    })
    .await;
    assert_eq!(tally.get(&(201, String::new())), Some(&6), "{tally:?}");
    for f in &followers {
        let got = kinds(&sync(s, &f.token).await)
            .iter()
            .filter(|k| *k == "article.new")
            .count();
        assert_eq!(got, 1, "{} got the article once", f.public_id);
    }
    let list = s
        .get(
            &format!("/v1/official-accounts/{}/articles", a.id),
            &a.carol.token,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(list["articles"].as_array().unwrap().len(), 1);
    // The same key for other content is a conflict, and nothing is written.
    s.post_as(
        &a.editor,
        &format!("/v1/official-accounts/{}/articles", a.id),
        json!({"title": "Other", "body": "x", "idempotency_key": "launch"}),
    )
    .await
    .expect_error(409, "idempotency_conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error_and_writes_nothing() {
    let a = acme().await;
    let s = &a.s;
    let articles = format!("/v1/official-accounts/{}/articles", a.id);
    s.post_as(
        &a.editor,
        &articles,
        json!({"title": "T", "body": "x".repeat(20_001), "idempotency_key": "a"}),
    )
    .await
    .expect_error(400, "invalid_article");
    s.post_as(
        &a.editor,
        &articles,
        json!({"title": "", "body": "x", "idempotency_key": "b"}),
    )
    .await
    .expect_error(400, "invalid_article");
    s.post_as(
        &a.editor,
        &articles,
        json!({"title": "T", "body": "x", "idempotency_key": "c", "author": "me"}),
    )
    .await
    .expect_error(400, "invalid_request");
    s.post_as(
        &a.support,
        "/v1/messages",
        json!({"client_id": "not-a-uuid", "from_official": a.id, "to": "carol_c", "body": "x"}),
    )
    .await
    .expect_error(400, "invalid_request");
    s.post_as(
        &a.support,
        "/v1/messages",
        json!({"client_id": uuid(), "from_official": a.id, "to": "stranger", "body": "x"}),
    )
    .await
    .expect_error(404, "conversation_not_found");
    let nobody = "o_nosuchaccount00";
    for (method, path) in [
        (
            Method::GET,
            format!("/v1/official-accounts/{nobody}/conversations"),
        ),
        (
            Method::POST,
            format!("/v1/official-accounts/{nobody}/follow"),
        ),
        (
            Method::GET,
            format!("/v1/official-accounts/{nobody}/articles"),
        ),
        (
            Method::GET,
            format!("/v1/official-accounts/{nobody}/operators"),
        ),
    ] {
        let body = (method == Method::POST).then(|| json!({}));
        s.call(method, &path, Some(&a.boss.token), body)
            .await
            .expect_error(404, "official_not_found");
    }
    s.post_as(
        &a.carol,
        "/v1/messages",
        json!({"client_id": uuid(), "to": nobody, "body": "x"}),
    )
    .await
    .expect_error(404, "official_not_found");
    let list = s.get(&articles, &a.carol.token).await.expect(200).body;
    assert_eq!(list["articles"], json!([]), "nothing was published");
}

/// The role is decided again where the answer is written: an answer racing its author's
/// removal is sent whole (the customer and the operators have it) or refused, never half,
/// and none goes after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_racing_their_authors_removal_are_sent_whole_or_refused() {
    let a = acme().await;
    let s = &a.s;
    let removal = format!("/v1/official-accounts/{}/operators/acme_support", a.id);
    let tally = calls_at_once(11, |i| {
        if i == 0 {
            Call::new(&s.base, Method::DELETE, &removal, Some(&a.admin.token))
        } else {
            Call::post(
                &s.base,
                "/v1/messages",
                Some(&a.support.token),
                json!({"client_id": uuid(), "from_official": a.id, "to": "carol_c",
                       "body": format!("race {i}")}),
            )
        }
    })
    .await;
    assert_eq!(tally.get(&(204, String::new())), Some(&1), "{tally:?}");
    let sent = tally.get(&(201, String::new())).copied().unwrap_or(0);
    let refused = tally
        .get(&(403, "official_forbidden".into()))
        .copied()
        .unwrap_or(0);
    assert_eq!(
        sent + refused,
        10,
        "sent or refused, nothing else: {tally:?}"
    );
    let races = |page: &Value, kind: &str, body: &str| {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["kind"] == kind
                    && e.pointer(body)
                        .and_then(Value::as_str)
                        .is_some_and(|b| b.starts_with("race "))
            })
            .count()
    };
    assert_eq!(
        races(&sync(s, &a.carol.token).await, "message.new", "/data/body"),
        sent,
        "the customer has every answer sent, and no other"
    );
    assert_eq!(
        races(
            &sync(s, &a.boss.token).await,
            "official.message",
            "/data/message/body"
        ),
        sent,
        "the operators have every answer sent, and no other"
    );
    s.post_as(
        &a.support,
        "/v1/messages",
        json!({"client_id": uuid(), "from_official": a.id, "to": "carol_c", "body": "after"}),
    )
    .await
    .expect_error(403, "official_forbidden");
}
