//! The public platform from the operators' side: the official accounts that two profiles of
//! one app operate are live at once, with one customer inbox, against a real service.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::notify::RecordingSink;
use switchboard_core::official::{InboxFilter, OfficialRole, PublishTarget};
use switchboard_core::vault::MemoryVault;
use switchboard_core::{ConnState, Engine, ProfileId, SignIn};
use switchboard_protocol::events::{EventBody, SyncPage};
use switchboard_server::testing::{TEST_PASSWORD, TestServer, TestUser};

async fn wait_until<F: AsyncFn() -> bool>(what: &str, check: F) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

struct Platform {
    s: TestServer,
    engine: Engine,
    sink: Arc<RecordingSink>,
    _dir: tempfile::TempDir,
    work: ProfileId,
    home: ProfileId,
    boss: TestUser,
    carol: TestUser,
    coffee: String,
    tea: String,
}

/// A business owner runs two official accounts: Acme Coffee, where Alice's work account is a
/// support operator, and Acme Tea, where her personal account is an admin. Carol follows both.
/// Alice's app has both accounts as profiles, live.
async fn platform() -> Platform {
    let s = TestServer::start().await;
    s.two_accounts_one_phone().await;
    let boss = s.verified_user(20, "acme_boss").await;
    let carol = s.user(21, "carol_c").await;
    let coffee = s
        .official(
            &boss,
            "Acme Coffee",
            &[("alice_work", "support")],
            &[&carol],
        )
        .await;
    let tea = s
        .official(&boss, "Acme Tea", &[("alice_home", "admin")], &[&carol])
        .await;
    let (engine, sink, dir, profiles) = app_of(&s).await;
    let [work, home] = <[_; 2]>::try_from(profiles).unwrap();
    Platform {
        s,
        engine,
        sink,
        _dir: dir,
        work,
        home,
        boss,
        carol,
        coffee,
        tea,
    }
}

/// An app with Alice's work and personal accounts as profiles ("Work", "Personal"), both
/// live, notifications recorded.
async fn app_of(
    s: &TestServer,
) -> (
    Engine,
    Arc<RecordingSink>,
    tempfile::TempDir,
    Vec<ProfileId>,
) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let sink = Arc::new(RecordingSink::default());
    engine.enable_notifications(sink.clone());
    let mut profiles = Vec::new();
    for (login, name) in [("alice_work", "Work"), ("alice_home", "Personal")] {
        let p = engine
            .add_profile(SignIn {
                server: s.base.clone(),
                login: login.into(),
                password: TEST_PASSWORD.into(),
                name: Some(name.into()),
                color: None,
                totp_code: None,
                allow_insecure_http: false,
            })
            .await
            .unwrap();
        profiles.push(p.record.id);
    }
    for p in &profiles {
        wait_until("live", async || {
            engine.state(p).await.unwrap() == ConnState::Live
        })
        .await;
    }
    (engine, sink, dir, profiles)
}

async fn carol_writes(p: &Platform, to: &str, body: &str) {
    p.s.post_as(
        &p.carol,
        "/v1/messages",
        serde_json::json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to, "body": body}),
    )
    .await
    .expect(201);
}

async fn unanswered(p: &Platform, official: &str) -> i64 {
    p.engine
        .official_accounts()
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.id == official)
        .map_or(-1, |o| o.unanswered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_profiles_official_accounts_are_live_in_one_inbox_and_a_claim_elsewhere_withdraws_the_count()
 {
    let p = platform().await;
    wait_until("both official accounts are listed", async || {
        p.engine.official_accounts().await.unwrap().len() == 2
    })
    .await;
    let listed = p.engine.official_accounts().await.unwrap();
    let coffee = listed.iter().find(|o| o.id == p.coffee).unwrap();
    assert_eq!(
        (&coffee.profile, coffee.role, coffee.name.as_str()),
        (&p.work, OfficialRole::Support, "Acme Coffee")
    );
    let tea = listed.iter().find(|o| o.id == p.tea).unwrap();
    assert_eq!((&tea.profile, tea.role), (&p.home, OfficialRole::Admin));

    // Carol writes to each: one inbox holds both, each with the profile to answer from.
    carol_writes(&p, &p.coffee, "is the flat white back?").await;
    p.s.clock.advance_secs(1);
    carol_writes(&p, &p.tea, "oolong in stock?").await;
    wait_until("both conversations are in the inbox", async || {
        p.engine
            .customer_inbox(&InboxFilter::default())
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    let inbox = p
        .engine
        .customer_inbox(&InboxFilter::default())
        .await
        .unwrap();
    assert_eq!(inbox[0].official_name, "Acme Tea", "newest first");
    assert_eq!(inbox[0].profile, p.home);
    assert_eq!(inbox[1].profile, p.work);
    assert!(
        inbox
            .iter()
            .all(|e| e.customer == "carol_c" && e.unanswered == 1)
    );
    assert_eq!(unanswered(&p, &p.coffee).await, 1);

    // A notification under the operator profile's name, the official account's and Carol's.
    wait_until("two notifications", async || p.sink.shown().len() == 2).await;
    let titles: Vec<String> = p.sink.shown().iter().map(|n| n.title.clone()).collect();
    assert!(
        titles.contains(&"Work · Acme Coffee · carol_c".to_string())
            && titles.contains(&"Personal · Acme Tea · carol_c".to_string()),
        "{titles:?}"
    );

    // The owner claims the coffee conversation: it leaves Alice's unanswered count and the
    // unclaimed filter, and her answer is refused while the claim lasts.
    p.s.post_as(
        &p.boss,
        &format!(
            "/v1/official-accounts/{}/conversations/carol_c/claim",
            p.coffee
        ),
        serde_json::json!({}),
    )
    .await
    .expect(200);
    wait_until("the claim withdraws the count", async || {
        unanswered(&p, &p.coffee).await == 0
    })
    .await;
    let unclaimed = p
        .engine
        .customer_inbox(&InboxFilter {
            unclaimed: true,
            ..InboxFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(unclaimed.len(), 1);
    assert_eq!(unclaimed[0].official_id, p.tea);
    let refused = p
        .engine
        .reply_as(&p.work, &p.coffee, "carol_c", "yes!")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "conversation_claimed", "{refused}");

    // Personal claims and answers the tea conversation as Acme Tea: Carol sees Acme Tea, never
    // Alice; the inbox shows it as answered and held by her.
    let claimed = p
        .engine
        .claim_conversation(&p.home, &p.tea, "carol_c")
        .await
        .unwrap();
    assert_eq!(claimed.claimed_by.as_deref(), Some("alice_home"));
    let sent = p
        .engine
        .reply_as(&p.home, &p.tea, "carol_c", "plenty, come by")
        .await
        .unwrap();
    assert_eq!(
        (sent.from.as_str(), sent.from_display_name.as_str()),
        (p.tea.as_str(), "Acme Tea")
    );
    wait_until("the answer is in Personal's copy", async || {
        p.engine
            .customer_messages(&p.home, &p.tea, "carol_c")
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    let messages = p
        .engine
        .customer_messages(&p.home, &p.tea, "carol_c")
        .await
        .unwrap();
    assert_eq!(
        messages[1].responder.as_deref(),
        Some("alice_home"),
        "operators see who answered"
    );
    let mine = p
        .engine
        .customer_inbox(&InboxFilter {
            mine: true,
            ..InboxFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].unanswered, mine[0].mine), (0, true));
    let carols: SyncPage =
        serde_json::from_value(p.s.get("/v1/sync?limit=1000", &p.carol.token).await.body).unwrap();
    let answer = carols
        .events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::MessageNew(m) if m.body == "plenty, come by" => Some(m.clone()),
            _ => None,
        })
        .expect("Carol got the answer");
    assert_eq!(answer.from_display_name, "Acme Tea");
    assert!(
        !serde_json::to_string(&carols)
            .unwrap()
            .contains("alice_home")
    );
    p.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_article_to_several_official_accounts_gives_one_result_each_and_a_retry_publishes_nothing_twice()
 {
    let p = platform().await;
    wait_until("both official accounts are listed", async || {
        p.engine.official_accounts().await.unwrap().len() == 2
    })
    .await;
    let targets = [
        PublishTarget {
            profile: p.work.clone(),
            official_id: p.coffee.clone(),
        },
        PublishTarget {
            profile: p.home.clone(),
            official_id: p.tea.clone(),
        },
    ];
    let first = p
        .engine
        .publish(
            &targets,
            "Autumn menu",
            "Chestnut latte.\n\nGinger oolong.",
            "k-1",
        )
        .await;
    assert_eq!(first.len(), 2);
    // Work is a support operator of Acme Coffee: refused there, published at Acme Tea.
    let coffee = first.iter().find(|o| o.official_id == p.coffee).unwrap();
    assert_eq!(
        coffee.error.as_ref().map(|(code, _)| code.as_str()),
        Some("official_forbidden")
    );
    let tea = first.iter().find(|o| o.official_id == p.tea).unwrap();
    let article = tea.article.clone().expect("published at Acme Tea");
    let again = p
        .engine
        .publish(
            &targets,
            "Autumn menu",
            "Chestnut latte.\n\nGinger oolong.",
            "k-1",
        )
        .await;
    let tea_again = again.iter().find(|o| o.official_id == p.tea).unwrap();
    assert_eq!(tea_again.article.as_ref().map(|a| &a.id), Some(&article.id));
    let carols: SyncPage =
        serde_json::from_value(p.s.get("/v1/sync?limit=1000", &p.carol.token).await.body).unwrap();
    let got = carols
        .events
        .iter()
        .filter(|e| matches!(&e.body, EventBody::ArticleNew(a) if a.id == article.id))
        .count();
    assert_eq!(got, 1, "Carol, a follower, got the article once");
    // A follower's app shows it in the chat list, under the official account's name.
    let carol = p
        .engine
        .add_profile(SignIn {
            server: p.s.base.clone(),
            login: "carol_c".into(),
            password: TEST_PASSWORD.into(),
            name: Some("Carol".into()),
            color: None,
            totp_code: None,
            allow_insecure_http: false,
        })
        .await
        .unwrap()
        .record
        .id;
    wait_until("the article is in Carol's chats", async || {
        p.engine
            .conversations(&carol)
            .await
            .unwrap()
            .iter()
            .any(|c| c.id.as_str() == p.tea && c.title == "Acme Tea")
    })
    .await;
    let tea_chat = p
        .engine
        .messages(
            &carol,
            &switchboard_core::ConversationId::parse(&p.tea).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(tea_chat.len(), 1);
    assert!(
        tea_chat[0]
            .body
            .starts_with("Autumn menu\n\nChestnut latte.")
    );
    // A follower's reading.
    let read = p.engine.articles(&p.work, &p.tea).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].title, "Autumn menu");
    p.engine.shutdown().await;
}

/// One person's work and personal profiles operate three official accounts between them
/// (the third through both); four customers write to all three at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_writing_to_three_official_accounts_at_once_are_counted_exactly_in_one_inbox() {
    let s = TestServer::start().await;
    s.two_accounts_one_phone().await;
    let boss = s.verified_user(20, "acme_boss").await;
    let mut customers = Vec::new();
    for i in 0..4u32 {
        customers.push(s.user(30 + i, &format!("customer{i}")).await);
    }
    let following: Vec<&TestUser> = customers.iter().collect();
    let mut officials = Vec::new();
    for (name, operators) in [
        ("Acme Coffee", &[("alice_work", "support")][..]),
        ("Acme Tea", &[("alice_home", "admin")][..]),
        (
            "Acme Bakery",
            &[("alice_work", "admin"), ("alice_home", "support")][..],
        ),
    ] {
        officials.push((s.official(&boss, name, operators, &following).await, name));
    }
    let (engine, sink, _dir, profiles) = app_of(&s).await;
    let [work_p, home_p] = <[_; 2]>::try_from(profiles).unwrap();

    // Every customer to every official account, all at once.
    let sends = customers.iter().flat_map(|c| {
        officials.iter().map(|(id, _)| {
            s.post_as(
                c,
                "/v1/messages",
                serde_json::json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": id, "body": format!("hello {id} from {}", c.public_id)}),
            )
        })
    });
    for reply in futures_util::future::join_all(sends).await {
        reply.expect(201);
    }
    // Coffee and Tea through one profile each, Bakery through both: 16 inbox rows.
    wait_until("every conversation is in the inbox", async || {
        engine
            .customer_inbox(&InboxFilter::default())
            .await
            .unwrap()
            .len()
            == 16
    })
    .await;
    let mut counts: Vec<(String, String, i64)> = engine
        .official_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|o| {
            let who = if o.profile == work_p {
                "Work"
            } else {
                "Personal"
            };
            (who.to_string(), o.name, o.unanswered)
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("Personal".into(), "Acme Bakery".into(), 4),
            ("Personal".into(), "Acme Tea".into(), 4),
            ("Work".into(), "Acme Bakery".into(), 4),
            ("Work".into(), "Acme Coffee".into(), 4),
        ]
    );
    // Notifications: each titled with its profile and official account, none twice (a burst
    // beyond the first few per profile is summarised later, as for any chat).
    wait_until("the first notifications of each profile", async || {
        sink.shown().len() >= 2 * switchboard_core::notify::BURST_SHOWN
    })
    .await;
    let shown = sink.shown();
    let mut seen = std::collections::HashSet::new();
    for n in &shown {
        assert!(
            seen.insert((n.title.clone(), n.body.clone())),
            "twice: {n:?}"
        );
        let (profile, rest) = n.title.split_once(" · ").unwrap();
        let official = rest.split(" · ").next().unwrap();
        let allowed: &[&str] = if profile == "Work" {
            &["Acme Coffee", "Acme Bakery"]
        } else {
            &["Acme Tea", "Acme Bakery"]
        };
        assert!(allowed.contains(&official), "{n:?}");
    }

    // A claim from the work profile shows in the personal profile's inbox as held by
    // alice_work, and leaves its unanswered count.
    let bakery = &officials[2].0;
    engine
        .claim_conversation(&work_p, bakery, "customer0")
        .await
        .unwrap();
    wait_until("Personal sees the claim", async || {
        engine
            .customer_inbox(&InboxFilter {
                official: Some(bakery.clone()),
                ..InboxFilter::default()
            })
            .await
            .unwrap()
            .iter()
            .any(|e| {
                e.profile == home_p
                    && e.customer == "customer0"
                    && e.claimed_by.as_deref() == Some("alice_work")
            })
    })
    .await;
    let personal_bakery = engine
        .official_accounts()
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.profile == home_p && &o.id == bakery)
        .unwrap();
    assert_eq!(personal_bakery.unanswered, 3);

    // An answer as each official account reaches its customer under that account's name.
    for ((id, name), from) in officials.iter().zip([&work_p, &home_p, &work_p]) {
        let sent = engine
            .reply_as(from, id, "customer1", &format!("thanks from {name}"))
            .await
            .unwrap();
        assert_eq!(sent.from_display_name, *name);
    }
    let page: SyncPage =
        serde_json::from_value(s.get("/v1/sync?limit=1000", &customers[1].token).await.body)
            .unwrap();
    let mut answers: Vec<(String, String)> = page
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::MessageNew(m) if m.body.starts_with("thanks from") => {
                Some((m.from_display_name.clone(), m.body.clone()))
            }
            _ => None,
        })
        .collect();
    answers.sort();
    assert_eq!(
        answers,
        [
            ("Acme Bakery".into(), "thanks from Acme Bakery".into()),
            ("Acme Coffee".into(), "thanks from Acme Coffee".into()),
            ("Acme Tea".into(), "thanks from Acme Tea".into()),
        ]
    );
    engine.shutdown().await;
}
