//! The client core against a real service on loopback: several profiles live at once, each
//! in its own sandbox, with a test keyring (hermetic: temp data dir, in-memory vault). The
//! shared world serves HTTPS/WSS with a test CA that the engine is told to trust, as a private
//! deployment would be.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::notify::{Policy, Preview, RecordingSink};
use switchboard_core::vault::{DatabaseKey, MemoryVault, Vault};
use switchboard_core::{
    ConnState, ConversationId, Engine, ProfileEventKind, ProfileId, PublicId, SignIn, TlsConfig,
};
use switchboard_protocol::events::{EventBody, SyncPage};
use switchboard_server::testing::{TEST_PASSWORD, TestServer, TestUser, TwoAccountsOnePhone};

async fn wait_until<F: AsyncFn() -> bool>(what: &str, check: F) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The id of the profile a test calls by its name, as a person would on the command line: the
/// engine itself acts only on ids.
async fn id(engine: &Engine, name: &str) -> ProfileId {
    engine.profile_id_by_name_or_id(name).await.unwrap()
}

/// A conversation as a person would type it.
fn to(typed: &str) -> ConversationId {
    ConversationId::parse(typed).expect("the tests' ids are well formed")
}

fn public(typed: &str) -> PublicId {
    PublicId::parse(typed).expect("the tests' public IDs are well formed")
}

/// Waits until `profile` has stored a message from Bob with this body.
async fn wait_for_message(engine: &Engine, profile: &str, body: &str) {
    wait_until(&format!("{profile} stores {body:?}"), async || {
        engine
            .messages(&id(engine, profile).await, &to("bob_the_2nd"))
            .await
            .unwrap()
            .iter()
            .any(|m| m.body == body)
    })
    .await;
}

fn sign_in(s: &TestServer, login: &str, name: &str) -> SignIn {
    SignIn {
        server: s.base.clone(),
        login: login.into(),
        password: TEST_PASSWORD.into(),
        name: Some(name.into()),
        color: None,
        totp_code: None,
        allow_insecure_http: false,
    }
}

/// An engine on `dir` that trusts what a client of `s` must: the system's roots, and the test
/// CA when `s` serves HTTPS. Through the API, never the environment (tests run in parallel).
async fn engine_for(s: &TestServer, dir: &std::path::Path, vault: Arc<MemoryVault>) -> Engine {
    let tls = match &s.ca_pem {
        Some(pem) => TlsConfig::with_extra_ca_pem(pem).unwrap(),
        None => TlsConfig::system().unwrap(),
    };
    Engine::open_with_tls(dir, vault, tls).await.unwrap()
}

struct World {
    s: TestServer,
    engine: Engine,
    vault: Arc<MemoryVault>,
    dir: tempfile::TempDir,
    bob: TestUser,
    work: TestUser,
    home: TestUser,
}

/// The primary and the secondary account of one phone, both befriended by Bob, and an
/// engine with both as profiles, live.
async fn world() -> World {
    world_with(None).await
}

async fn world_with(sink: Option<Arc<RecordingSink>>) -> World {
    let s = TestServer::start_tls(|_| {}).await;
    let TwoAccountsOnePhone { work, home, bob } = s.two_accounts_one_phone().await;
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(MemoryVault::default());
    let engine = engine_for(&s, dir.path(), vault.clone()).await;
    if let Some(sink) = sink {
        engine.enable_notifications(sink);
    }
    engine
        .add_profile(sign_in(&s, "alice_work", "Work"))
        .await
        .unwrap();
    engine
        .add_profile(sign_in(&s, "alice_home", "Personal"))
        .await
        .unwrap();
    for name in ["Work", "Personal"] {
        wait_until("both profiles are live", async || {
            engine.state(&id(&engine, name).await).await.unwrap() == ConnState::Live
        })
        .await;
    }
    World {
        s,
        engine,
        vault,
        dir,
        bob,
        work,
        home,
    }
}

async fn bob_says(w: &World, to: &str, body: &str) {
    w.s.post_as(
        &w.bob,
        "/v1/messages",
        serde_json::json!({"client_id": uuid(), "to": to, "body": body}),
    )
    .await
    .expect(201);
}

fn uuid() -> String {
    // The e2e crate does not need the uuid crate for one helper.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        (t >> 48) as u32,
        t as u64 & 0xffff_ffff_ffff
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_accounts_of_one_phone_are_live_at_once_and_keep_their_own_messages() {
    let w = world().await;
    let mut bus = w.engine.subscribe();
    bob_says(&w, "alice_work", "the report is due").await;
    bob_says(&w, "alice_home", "dinner at 7?").await;
    for (profile, body) in [("Work", "the report is due"), ("Personal", "dinner at 7?")] {
        wait_until("the message is stored", async || {
            w.engine
                .messages(&id(&w.engine, profile).await, &to("bob_the_2nd"))
                .await
                .unwrap()
                .iter()
                .any(|m| m.body == body)
        })
        .await;
        let msgs = w
            .engine
            .messages(&id(&w.engine, profile).await, &to("bob_the_2nd"))
            .await
            .unwrap();
        assert_eq!(msgs.len(), 1, "{profile} holds only its own message");
        let convs = w
            .engine
            .conversations(&id(&w.engine, profile).await)
            .await
            .unwrap();
        assert_eq!((convs[0].id.as_str(), convs[0].unread), ("bob_the_2nd", 1));
    }
    // The bus tags each event with the profile it belongs to.
    let profiles = w.engine.list_profiles().await.unwrap();
    let id_of = |name: &str| {
        profiles
            .iter()
            .find(|p| p.record.name == name)
            .unwrap()
            .record
            .id
            .clone()
    };
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), bus.recv())
            .await
            .unwrap()
            .unwrap();
        if let ProfileEventKind::Event(e) = &ev.kind
            && let EventBody::MessageNew(m) = &e.body
        {
            seen.push((ev.profile.clone(), m.body.clone()));
        }
    }
    seen.sort();
    let mut want = vec![
        (id_of("Work"), "the report is due".to_string()),
        (id_of("Personal"), "dinner at 7?".to_string()),
    ];
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(profiles.iter().map(|p| p.unread).sum::<i64>(), 2);
    assert!(profiles.iter().all(|p| p.state == ConnState::Live));
    let _ = (&w.work, &w.home, &w.dir);
    w.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_goes_out_once_and_comes_back_into_the_profile() {
    let w = world().await;
    w.engine
        .send(
            &id(&w.engine, "Work").await,
            &to("bob_the_2nd"),
            "on my way",
        )
        .await
        .unwrap();
    wait_for_message(&w.engine, "Work", "on my way").await;
    let bobs = w.s.get("/v1/sync?limit=1000", &w.bob.token).await.body;
    let got: Vec<_> = bobs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["body"] == "on my way")
        .collect();
    assert_eq!(got.len(), 1, "sent exactly once");
    assert_eq!(
        got[0]["data"]["from"], "alice_work",
        "from the right account"
    );
    w.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_signs_that_profile_out_and_the_other_keeps_running() {
    let w = world().await;
    bob_says(&w, "alice_work", "before").await;
    wait_until("stored", async || {
        !w.engine
            .messages(&id(&w.engine, "Work").await, &to("bob_the_2nd"))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    // Revoke the Work profile's session from another device of the same account.
    let engine_session = w.s.other_session(&w.work.token).await;
    w.s.call(
        reqwest::Method::DELETE,
        &format!("/v1/sessions/{engine_session}"),
        Some(&w.work.token),
        None,
    )
    .await
    .expect(204);
    wait_until("Work is signed out", async || {
        w.engine.state(&id(&w.engine, "Work").await).await.is_err()
            || w.engine.state(&id(&w.engine, "Work").await).await.unwrap() == ConnState::SignedOut
    })
    .await;
    bob_says(&w, "alice_home", "still here").await;
    wait_for_message(&w.engine, "Personal", "still here").await;
    assert_eq!(
        w.engine
            .messages(&id(&w.engine, "Work").await, &to("bob_the_2nd"))
            .await
            .unwrap()
            .len(),
        1,
        "local data is kept"
    );
    w.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_profile_erases_its_folder_keyring_entry_and_server_session() {
    let w = world().await;
    let profiles = w.engine.list_profiles().await.unwrap();
    let work = profiles
        .iter()
        .find(|p| p.record.name == "Work")
        .unwrap()
        .record
        .clone();
    let secrets = w.vault.load(&work.id).unwrap();
    let token = secrets.token.clone().unwrap();
    assert!(
        secrets.database_key.is_some(),
        "the database key sits beside the token"
    );
    let folder = w.engine.profile_dir(&work.id);
    assert!(folder.join("profile.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777,
            0o700,
            "a private folder"
        );
    }
    // No token bytes anywhere under the data dir.
    for entry in walk(w.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !contains(&bytes, token.expose().as_bytes()),
            "{} holds the token",
            entry.display()
        );
    }
    w.engine
        .remove_profile(&id(&w.engine, "work").await)
        .await
        .unwrap();
    assert!(!folder.exists(), "the folder is gone");
    assert!(
        w.vault.load(&work.id).unwrap().is_empty(),
        "the keyring entry, token and database key, is gone"
    );
    w.s.get("/v1/me", token.expose())
        .await
        .expect_error(401, "session_revoked");
    assert_eq!(w.engine.list_profiles().await.unwrap().len(), 1);
    assert_eq!(w.vault.len(), 1);
    w.engine.shutdown().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_profile_folder_is_unreadable_and_a_wrong_key_locks_only_that_profile() {
    let w = world().await;
    let secret = "the door code is 7401-rainier";
    bob_says(&w, "alice_work", secret).await;
    wait_for_message(&w.engine, "Work", secret).await;
    let work = id(&w.engine, "Work").await;
    w.engine.shutdown().await;

    // A copy of the folder, as a thief or a backup would take it.
    let copy = tempfile::tempdir().unwrap();
    for f in walk(&w.engine.profile_dir(&work)) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "{} holds the message",
            f.display()
        );
        std::fs::write(copy.path().join(f.file_name().unwrap()), bytes).unwrap();
    }
    let plain = sqlx::sqlite::SqliteConnectOptions::new().filename(copy.path().join("profile.db"));
    let mut conn = sqlx::ConnectOptions::connect(&plain).await.unwrap();
    let err = sqlx::query("SELECT * FROM messages")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a database"), "{err}");

    // The keyring now holds another key for Work (another computer's, a replaced keyring).
    let mut secrets = w.vault.load(&work).unwrap();
    let right_key = secrets
        .database_key
        .replace(DatabaseKey::generate().unwrap());
    w.vault.store(&work, &secrets).unwrap();
    let engine = engine_for(&w.s, w.dir.path(), w.vault.clone()).await;
    let mut bus = engine.subscribe();
    engine.start_all().await.unwrap();
    let locked = engine
        .list_profiles()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.record.id == work)
        .unwrap();
    assert!(
        matches!(locked.state, ConnState::Locked(_)),
        "{:?}",
        locked.state
    );
    let told = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(ev) = bus.recv().await
                && ev.profile == work
            {
                return ev.kind;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(told, ProfileEventKind::State(ConnState::Locked(_))),
        "{told:?}"
    );
    // The other profile is untouched and live.
    wait_until("Personal is live", async || {
        engine.state(&id(&engine, "Personal").await).await.unwrap() == ConnState::Live
    })
    .await;

    engine.shutdown().await;

    // The right key back: nothing was lost or changed while it was locked.
    secrets.database_key = right_key;
    w.vault.store(&work, &secrets).unwrap();
    let engine = engine_for(&w.s, w.dir.path(), w.vault.clone()).await;
    engine.start_all().await.unwrap();
    wait_for_message(&engine, "Work", secret).await;
    engine.shutdown().await;
}

/// A profile made before databases were encrypted: a plain database and a keyring entry that
/// holds the bare token. Its first start encrypts the database in place, every row kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_profile_database_from_before_is_encrypted_at_first_start_without_losing_a_row() {
    let w = world().await;
    for i in 0..30 {
        bob_says(&w, "alice_work", &format!("before the upgrade {i}")).await;
    }
    wait_for_message(&w.engine, "Work", "before the upgrade 29").await;
    let work = id(&w.engine, "Work").await;
    w.engine.shutdown().await;

    // Turn the profile back into what the older version left: decrypt into a plain file with
    // SQLCipher's own export, and keep only the bare token in the keyring.
    let secrets = w.vault.load(&work).unwrap();
    let db = w.engine.profile_dir(&work).join("profile.db");
    let plain = db.with_extension("plain");
    let key = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .create_if_missing(true) // for the attached plain file
        .pragma(
            "key",
            secrets
                .database_key
                .as_ref()
                .map(DatabaseKey::sql_literal)
                .unwrap(),
        );
    let mut conn = sqlx::ConnectOptions::connect(&key).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ATTACH DATABASE '{}' AS plaintext KEY ''",
        plain.display()
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("SELECT sqlcipher_export('plaintext')")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DETACH DATABASE plaintext")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    std::fs::rename(&plain, &db).unwrap();
    for stale in ["profile.db-wal", "profile.db-shm"] {
        let _ = std::fs::remove_file(w.engine.profile_dir(&work).join(stale));
    }
    assert!(
        std::fs::read(&db)
            .unwrap()
            .starts_with(b"SQLite format 3\0")
    );
    w.vault
        .put_raw(&work, secrets.token.as_ref().unwrap().expose());

    let engine = engine_for(&w.s, w.dir.path(), w.vault.clone()).await;
    engine.start_all().await.unwrap();
    bob_says(&w, "alice_work", "after the upgrade").await;
    wait_for_message(&engine, "Work", "after the upgrade").await;
    let bodies = engine.messages(&work, &to("bob_the_2nd")).await.unwrap();
    assert_eq!(bodies.len(), 31, "every row kept, and the next one added");
    let now = w.vault.load(&work).unwrap();
    assert_eq!(now.token, secrets.token, "the session is kept");
    assert!(now.database_key.is_some(), "a key was made");
    let bytes = std::fs::read(&db).unwrap();
    assert!(
        !bytes.starts_with(b"SQLite format 3"),
        "the database is encrypted now"
    );
    assert!(!contains(&bytes, b"before the upgrade"));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_come_back_after_a_restart_and_resume_from_their_cursor() {
    let w = world().await;
    bob_says(&w, "alice_work", "one").await;
    wait_until("stored", async || {
        w.engine
            .messages(&id(&w.engine, "Work").await, &to("bob_the_2nd"))
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;
    w.engine.shutdown().await;
    bob_says(&w, "alice_work", "two (while closed)").await;
    let engine = engine_for(&w.s, w.dir.path(), w.vault.clone()).await;
    engine.start_all().await.unwrap();
    wait_until("caught up", async || {
        engine
            .messages(&id(&engine, "Work").await, &to("bob_the_2nd"))
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    let bodies: Vec<String> = engine
        .messages(&id(&engine, "Work").await, &to("bob_the_2nd"))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["one", "two (while closed)"], "each once, in order");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_notifies_under_its_own_name_and_policy_and_never_twice() {
    let sink = Arc::new(RecordingSink::default());
    let w = world_with(Some(sink.clone())).await;
    w.engine
        .set_policy(
            &id(&w.engine, "Personal").await,
            Policy {
                preview: Preview::SenderOnly,
                ..Policy::default()
            },
        )
        .await
        .unwrap();
    bob_says(&w, "alice_work", "the report is due").await;
    bob_says(&w, "alice_home", "a private matter").await;
    wait_until("two notifications", async || sink.shown().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut shown: Vec<(String, String)> = sink
        .shown()
        .into_iter()
        .map(|n| (n.title, n.body))
        .collect();
    shown.sort();
    assert_eq!(
        shown,
        [
            (
                "Personal · bob_the_2nd".to_string(),
                "new message".to_string()
            ),
            (
                "Work · bob_the_2nd".to_string(),
                "the report is due".to_string()
            ),
        ],
        "one per profile, titled with the profile's name, previews per policy"
    );
    // A restart replays nothing into notifications.
    w.engine.shutdown().await;
    let engine = engine_for(&w.s, w.dir.path(), w.vault.clone()).await;
    engine.enable_notifications(sink.clone());
    engine.start_all().await.unwrap();
    wait_until("live again", async || {
        engine.state(&id(&engine, "Work").await).await.unwrap() == ConnState::Live
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.shown().len(),
        2,
        "nothing is notified twice after a restart"
    );
    // Focus on Bob's chat in Work: nothing for it; the other profile still notifies.
    let work_id = engine
        .list_profiles()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.record.name == "Work")
        .unwrap()
        .record
        .id;
    engine.set_focus(Some((work_id, to("bob_the_2nd"))));
    bob_says(&w, "alice_work", "seen in the open chat").await;
    bob_says(&w, "alice_home", "elsewhere").await;
    wait_until("the other profile's notification", async || {
        sink.shown().len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.shown().len(), 3);
    assert_eq!(sink.shown()[2].title, "Personal · bob_the_2nd");
    engine.shutdown().await;
}

/// One profile whose service is down, one whose session was revoked, and one that keeps
/// delivering as if nothing happened; messages written offline go out once on reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_whose_service_is_down_never_delays_the_others_and_its_outbox_goes_out_once() {
    use switchboard_server::testing::TcpProxy;
    // Service A behind a proxy we can take down; service B stays up.
    let a = TestServer::start().await;
    let b = TestServer::start().await;
    let proxy = TcpProxy::start(a.addr).await;
    let alice_a = a.user(1, "alice_a").await;
    let bob_a = a.user(2, "bobby_a").await;
    a.befriend(&bob_a, &alice_a).await;
    let alice_b = b.user(1, "alice_b").await;
    let bob_b = b.user(2, "bobby_b").await;
    b.befriend(&bob_b, &alice_b).await;

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let via_proxy = SignIn {
        server: proxy.url(),
        login: "alice_a".into(),
        password: TEST_PASSWORD.into(),
        name: Some("A".into()),
        color: None,
        totp_code: None,
        allow_insecure_http: false,
    };
    engine.add_profile(via_proxy).await.unwrap();
    engine
        .add_profile(sign_in(&b, "alice_b", "B"))
        .await
        .unwrap();
    for p in ["A", "B"] {
        wait_until("live", async || {
            engine.state(&id(&engine, p).await).await.unwrap() == ConnState::Live
        })
        .await;
    }

    // "Live" means the socket is open, not that the backlog (the befriending) is applied: the
    // counts are taken once each profile has applied every event its account holds.
    let mut before = [0; 2];
    for (i, (name, server, user)) in [("A", &a, &alice_a), ("B", &b, &alice_b)]
        .into_iter()
        .enumerate()
    {
        let page: SyncPage =
            serde_json::from_value(server.get("/v1/sync?limit=1000", &user.token).await.body)
                .unwrap();
        let held = page.events.len() as u64;
        let pid = id(&engine, name).await;
        wait_until("the backlog is applied", async || {
            let r = engine.resources().await.unwrap();
            r.profiles
                .iter()
                .find(|p| p.profile == pid)
                .unwrap()
                .events_total
                == held
        })
        .await;
        before[i] = held;
    }

    proxy.down();
    wait_until("A is offline", async || {
        matches!(
            engine.state(&id(&engine, "A").await).await.unwrap(),
            ConnState::Offline(_)
        )
    })
    .await;
    // Written while offline: queued, in order.
    for body in ["first while offline", "second while offline"] {
        engine
            .send(&id(&engine, "A").await, &to("bobby_a"), body)
            .await
            .unwrap();
    }
    // B is untouched: a message to it arrives at once.
    b.post_as(
        &bob_b,
        "/v1/messages",
        serde_json::json!({"client_id": uuid(), "to": "alice_b", "body": "B still works"}),
    )
    .await
    .expect(201);
    wait_until("B delivers while A is down", async || {
        engine
            .messages(&id(&engine, "B").await, &to("bobby_b"))
            .await
            .unwrap()
            .iter()
            .any(|m| m.body == "B still works")
    })
    .await;
    assert_eq!(
        engine.state(&id(&engine, "B").await).await.unwrap(),
        ConnState::Live
    );

    proxy.up();
    wait_until("A's outbox is delivered", async || {
        engine
            .messages(&id(&engine, "A").await, &to("bobby_a"))
            .await
            .unwrap()
            .len()
            == 2
    })
    .await;
    let bobs: SyncPage =
        serde_json::from_value(a.get("/v1/sync?limit=1000", &bob_a.token).await.body).unwrap();
    let got: Vec<String> = bobs
        .events
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::MessageNew(m) => Some(m.body),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        ["first while offline", "second while offline"],
        "once each, in order"
    );

    // The resource view tells the story: A went offline and came back, B never dropped; each
    // counted its own traffic and events, and each database holds its messages.
    let r = engine.resources().await.unwrap();
    let mut rows = Vec::new();
    for name in ["A", "B"] {
        let pid = id(&engine, name).await;
        rows.push(
            r.profiles
                .iter()
                .find(|p| p.profile == pid)
                .unwrap()
                .clone(),
        );
    }
    let [a_row, b_row] = <[_; 2]>::try_from(rows).unwrap();
    let [a_before, b_before] = before;
    let states = |row: &switchboard_core::stats::ProfileResources| {
        row.history
            .iter()
            .map(|t| match &t.state {
                ConnState::Offline(_) => "offline",
                ConnState::Live => "live",
                ConnState::Connecting => "connecting",
                _ => "other",
            })
            .collect::<Vec<_>>()
    };
    let a_states = states(&a_row);
    assert!(
        a_states.windows(2).any(|w| w == ["live", "offline"]) && a_states.last() == Some(&"live"),
        "A's history shows the outage and the recovery: {a_states:?}"
    );
    assert!(!states(&b_row).contains(&"offline"), "B never went offline");
    assert_eq!(
        a_row.events_total - a_before,
        2,
        "A applied its two sent messages"
    );
    assert_eq!(
        b_row.events_total - b_before,
        1,
        "B applied the one it received"
    );
    for row in [&a_row, &b_row] {
        assert_eq!(
            row.events_per_minute, row.events_total,
            "all within the minute"
        );
        assert!(row.bytes_received > 0, "{row:?}");
        assert!(row.database_bytes >= 4096, "{row:?}");
    }
    assert!(
        a_row.bytes_sent > b_row.bytes_sent,
        "A sent two messages, B none: {} vs {}",
        a_row.bytes_sent,
        b_row.bytes_sent
    );
    assert!(r.memory_bytes.is_some_and(|m| m > 1 << 20));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_profile_task_is_restarted_and_the_other_profile_never_notices() {
    let w = world().await;
    w.engine
        .inject_panic(&id(&w.engine, "Work").await)
        .await
        .unwrap();
    // While Work's task restarts, Personal keeps delivering.
    bob_says(&w, "alice_home", "unaffected").await;
    wait_for_message(&w.engine, "Personal", "unaffected").await;
    // Work comes back by itself and resumes from its cursor.
    bob_says(&w, "alice_work", "after the restart").await;
    wait_for_message(&w.engine, "Work", "after the restart").await;
    assert_eq!(
        w.engine.state(&id(&w.engine, "Work").await).await.unwrap(),
        ConnState::Live
    );
    w.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_messages_across_every_profile() {
    let w = world().await;
    bob_says(&w, "alice_work", "quarterly budget review").await;
    bob_says(&w, "alice_home", "holiday budget").await;
    bob_says(&w, "alice_home", "unrelated").await;
    wait_until("all stored", async || {
        w.engine
            .messages(&id(&w.engine, "Personal").await, &to("bob_the_2nd"))
            .await
            .unwrap()
            .len()
            == 2
            && w.engine
                .messages(&id(&w.engine, "Work").await, &to("bob_the_2nd"))
                .await
                .unwrap()
                .len()
                == 1
    })
    .await;
    let mut hits: Vec<String> = w
        .engine
        .search_all("budget")
        .await
        .unwrap()
        .into_iter()
        .map(|(_, m)| m.body)
        .collect();
    hits.sort();
    assert_eq!(hits, ["holiday budget", "quarterly budget review"]);
    assert_eq!(
        w.engine
            .search(&id(&w.engine, "Work").await, "budget")
            .await
            .unwrap()
            .len(),
        1,
        "one profile's search stays in it"
    );
    w.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_two_step_verification_is_added_with_its_code() {
    let s = TestServer::start().await;
    let u = s.user(1, "alice_2fa").await;
    // Turned on (with the password, as the service asks) and one step on: the next code is new.
    let totp = s.enable_totp(&u).await;
    let code_now = || s.totp_code(&totp);

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let err = engine
        .add_profile(sign_in(&s, "alice_2fa", "Secure"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "totp_required",
        "the app can ask for the code: {err}"
    );
    assert!(
        engine.list_profiles().await.unwrap().is_empty(),
        "nothing half-added"
    );
    let with_code = SignIn {
        totp_code: Some(code_now()),
        ..sign_in(&s, "alice_2fa", "Secure")
    };
    engine.add_profile(with_code).await.unwrap();
    wait_until("live", async || {
        engine.state(&id(&engine, "Secure").await).await.unwrap() == ConnState::Live
    })
    .await;
    engine.shutdown().await;
}

/// The flows the app's "add profile" offers, through core alone: register a number's first
/// account, then its secondary one, each becoming a live profile; contacts and money between
/// them, with the wrong-identity guard asking before paying from the other profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_two_accounts_on_one_phone_then_befriend_and_pay() {
    use switchboard_core::account::Register;
    use switchboard_protocol::auth::SmsPurpose;
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let phone = "+8613900139000";
    let mut made = Vec::new();
    for (public_id, name) in [("carol_work", "Work"), ("carol_home", "Home")] {
        engine
            .request_sms_code(&s.base, phone, SmsPurpose::Register, false)
            .await
            .unwrap();
        let code = engine
            .dev_sms_code(&s.base, phone, SmsPurpose::Register, false)
            .await
            .unwrap()
            .expect("a development service shows the code it sent");
        let registered = engine
            .register_profile(Register {
                server: s.base.clone(),
                phone: phone.into(),
                sms_code: code,
                public_id: public_id.into(),
                password: TEST_PASSWORD.into(),
                display_name: format!("Carol ({name})"),
                name: Some(name.into()),
                color: None,
                allow_insecure_http: false,
            })
            .await
            .unwrap();
        made.push(registered.account.is_secondary);
        s.clock.advance_secs(61); // the resend cooldown, before the number's next code
    }
    assert_eq!(
        made,
        [false, true],
        "the second account of a number is its secondary"
    );
    let err = engine
        .request_sms_code(&s.base, "+86139", SmsPurpose::Register, false)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "invalid_phone",
        "a bad number is refused clearly"
    );

    // Work asks Home to be a contact; Home sees and accepts the request.
    engine
        .request_contact(&id(&engine, "Work").await, &public("carol_home"), "it's me")
        .await
        .unwrap();
    let requests = engine
        .contact_requests(&id(&engine, "Home").await)
        .await
        .unwrap();
    assert_eq!(requests.incoming.len(), 1);
    engine
        .accept_contact(&id(&engine, "Home").await, &requests.incoming[0].id)
        .await
        .unwrap();
    let contacts = engine.contacts(&id(&engine, "Work").await).await.unwrap();
    assert_eq!(contacts[0].public_id, "carol_home");
    assert!(
        engine
            .find_user(&id(&engine, "Work").await, &public("carol_home"))
            .await
            .unwrap()
            .is_contact
    );

    // Money needs real-name verification first, and a clear code when missing.
    let unverified = engine
        .top_up(&id(&engine, "Work").await, 10_000, false)
        .await
        .unwrap_err();
    assert_eq!(unverified.code(), "identity_unverified");
    for p in ["Work", "Home"] {
        engine
            .verify_identity(
                &id(&engine, p).await,
                "张三",
                switchboard_server::testing::TEST_RESIDENT_ID,
            )
            .await
            .unwrap();
    }
    engine
        .top_up(&id(&engine, "Work").await, 10_000, false)
        .await
        .unwrap();
    let paid = engine
        .transfer(
            &id(&engine, "Work").await,
            &public("carol_home"),
            2_550,
            "lunch",
            false,
        )
        .await
        .unwrap();
    assert_eq!(paid.balance, 7_450);
    // Paying from Home right after paying from Work asks first, and moves nothing.
    let guard = engine
        .transfer(
            &id(&engine, "Home").await,
            &public("carol_work"),
            100,
            "back",
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(guard.code(), "confirm_profile");
    assert_eq!(
        engine
            .wallet(&id(&engine, "Home").await)
            .await
            .unwrap()
            .balance,
        2_550
    );
    engine
        .transfer(
            &id(&engine, "Home").await,
            &public("carol_work"),
            100,
            "back",
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        engine
            .wallet(&id(&engine, "Home").await)
            .await
            .unwrap()
            .balance,
        2_450
    );
    let history = engine
        .transactions(&id(&engine, "Work").await, None)
        .await
        .unwrap();
    let amounts: Vec<i64> = history.transactions.iter().map(|t| t.amount).collect();
    assert_eq!(amounts, [100, -2_550, 10_000], "newest first, signed");
    engine.shutdown().await;
}

/// Quiet hours hold a profile's notifications (the other profile still notifies) and a single
/// digest says what they held once they end; a burst of 100 shows a few, then one summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_hold_then_digest_and_a_burst_is_coalesced() {
    use switchboard_core::notify::{BURST_SECS, BURST_SHOWN, QuietHours};
    let sink = Arc::new(RecordingSink::default());
    let w = world_with(Some(sink.clone())).await;
    // Quiet all day, every day: whatever the clock says now, Work is quiet.
    let quiet = Policy {
        quiet_hours: vec![QuietHours {
            days: (0..7).collect(),
            start_min: 0,
            end_min: 24 * 60,
        }],
        ..Policy::default()
    };
    w.engine
        .set_policy(&id(&w.engine, "Work").await, quiet)
        .await
        .unwrap();
    for body in ["first", "second"] {
        bob_says(&w, "alice_work", body).await;
    }
    bob_says(&w, "alice_home", "not quiet here").await;
    wait_for_message(&w.engine, "Work", "second").await;
    wait_until("Personal's notification", async || !sink.shown().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await; // past a notifier tick
    let titles: Vec<String> = sink.shown().into_iter().map(|n| n.title).collect();
    assert_eq!(
        titles,
        ["Personal · bob_the_2nd"],
        "quiet hours hold Work's"
    );
    // Quiet hours end: one digest of what they held.
    w.engine
        .set_policy(&id(&w.engine, "Work").await, Policy::default())
        .await
        .unwrap();
    wait_until("the digest", async || sink.shown().len() == 2).await;
    let digest = sink.shown()[1].clone();
    assert_eq!(digest.title, "Work");
    assert_eq!(digest.body, "2 new messages during quiet hours");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(sink.shown().len(), 2, "the digest comes once");

    // A burst of 100 messages to Work (its digest started no burst): a few shown, the rest
    // summarised once.
    let before = sink.shown().len();
    for i in 0..100 {
        bob_says(&w, "alice_work", &format!("burst {i}")).await;
    }
    wait_for_message(&w.engine, "Work", "burst 99").await;
    // The summary comes when the burst's window closes.
    tokio::time::sleep(Duration::from_secs(BURST_SECS.unsigned_abs())).await;
    wait_until("the burst's summary", async || {
        sink.shown()[before..]
            .iter()
            .any(|n| n.title.contains("new messages"))
    })
    .await;
    let burst: Vec<_> = sink.shown()[before..].to_vec();
    assert_eq!(
        burst.len(),
        BURST_SHOWN + 1,
        "a flood becomes {BURST_SHOWN} notifications and one summary: {burst:?}"
    );
    assert_eq!(
        burst[BURST_SHOWN].title,
        format!("Work · {} new messages", 100 - BURST_SHOWN)
    );
    w.engine.shutdown().await;
}

// ---------------------------------------------------------------- transport security

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_signs_in_and_syncs_over_https_and_wss() {
    let w = world().await;
    assert!(w.s.base.starts_with("https://"), "{}", w.s.base);
    for p in w.engine.list_profiles().await.unwrap() {
        assert!(p.record.server_url.starts_with("https://"), "{p:?}");
        assert!(
            !p.record.allow_insecure_http,
            "an https profile carries no cleartext mark"
        );
    }
    // Live events arrive over the wss:// stream, and a sent message goes out over https://.
    bob_says(&w, "alice_work", "over TLS").await;
    wait_for_message(&w.engine, "Work", "over TLS").await;
    w.engine
        .send_and_wait(
            &id(&w.engine, "Work").await,
            &to("bob_the_2nd"),
            "encrypted reply",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    wait_for_message(&w.engine, "Work", "encrypted reply").await;
    w.engine.shutdown().await;
}

/// A service whose certificate this engine does not trust: signing in fails with the typed
/// `certificate` error naming the host, and a running profile shows a certificate state
/// within seconds (never a plain "offline"), and goes live once the CA is trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_certificate_state_not_offline() {
    let s = TestServer::start_tls(|_| {}).await;
    let alice = s.user(1, "alice_tls").await;
    let host = s.base.trim_start_matches("https://").to_string();

    // Signing in with only the system's roots: refused, and said why.
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(MemoryVault::default());
    let untrusting = Engine::open(dir.path(), vault.clone()).await.unwrap();
    let err = untrusting
        .add_profile(sign_in(&s, &alice.public_id, "Alice"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "certificate", "{err}");
    assert!(err.to_string().contains(&host), "names the host: {err}");
    assert!(
        untrusting.list_profiles().await.unwrap().is_empty(),
        "nothing half-added"
    );
    untrusting.shutdown().await;

    // Added while the CA was trusted, then started by an engine that does not trust it.
    let trusting = engine_for(&s, dir.path(), vault.clone()).await;
    trusting
        .add_profile(sign_in(&s, &alice.public_id, "Alice"))
        .await
        .unwrap();
    wait_until("live over TLS", async || {
        trusting.state(&id(&trusting, "Alice").await).await.unwrap() == ConnState::Live
    })
    .await;
    trusting.shutdown().await;

    let untrusting = Engine::open(dir.path(), vault.clone()).await.unwrap();
    let mut bus = untrusting.subscribe();
    untrusting.start_all().await.unwrap();
    wait_until("the certificate state", async || {
        matches!(
            untrusting
                .state(&id(&untrusting, "Alice").await)
                .await
                .unwrap(),
            ConnState::Certificate(_)
        )
    })
    .await;
    let ConnState::Certificate(detail) = untrusting
        .state(&id(&untrusting, "Alice").await)
        .await
        .unwrap()
    else {
        unreachable!("waited for it");
    };
    assert!(detail.contains(&host), "names the host: {detail}");
    assert!(
        detail.contains("does not trust"),
        "says what is wrong: {detail}"
    );
    // The state front ends list is the same one, and it holds through the retries.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let listed = untrusting
        .profile(&id(&untrusting, "Alice").await)
        .await
        .unwrap();
    assert!(
        matches!(listed.state, ConnState::Certificate(_)),
        "{:?}",
        listed.state
    );
    let mut seen = Vec::new();
    while let Ok(ev) = bus.try_recv() {
        if let ProfileEventKind::State(state) = ev.kind {
            seen.push(state);
        }
    }
    assert!(
        !seen.iter().any(|s| matches!(s, ConnState::Offline(_))),
        "never reported as merely offline: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .skip_while(|s| !matches!(s, ConnState::Certificate(_)))
            .any(|s| *s == ConnState::Connecting),
        "the certificate state stays on show while retrying: {seen:?}"
    );
    untrusting.shutdown().await;

    // Trusting the CA again fixes it, with the local data untouched.
    let engine = engine_for(&s, dir.path(), vault).await;
    engine.start_all().await.unwrap();
    wait_until("live again", async || {
        engine.state(&id(&engine, "Alice").await).await.unwrap() == ConnState::Live
    })
    .await;
    engine.shutdown().await;
}

/// A forwarder from a non-loopback address of this machine to `upstream`, so a test can reach
/// the loopback test server the way it would reach another host; `None` when the machine has
/// no such address. Stops when dropped.
struct LanForwarder {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl LanForwarder {
    async fn start(upstream: std::net::SocketAddr) -> Option<Self> {
        // Connecting a UDP socket sends nothing; it only picks the outgoing interface.
        let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        probe.connect("192.0.2.1:9").ok()?;
        let ip = probe.local_addr().ok()?.ip();
        if ip.is_loopback() || ip.is_unspecified() {
            return None;
        }
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.ok()?;
        let addr = listener.local_addr().ok()?;
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Some(Self { addr, task })
    }
}

impl Drop for LanForwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_another_host_is_refused_unless_the_profile_allows_it() {
    use switchboard_core::account::Register;
    use switchboard_protocol::auth::SmsPurpose;
    let s = TestServer::start().await;
    let TwoAccountsOnePhone { bob, .. } = s.two_accounts_one_phone().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_for(&s, dir.path(), Arc::new(MemoryVault::default())).await;

    // Refused before anything is sent: no password, no phone number in cleartext.
    for server in ["http://10.0.0.5:8750", "http://example.com"] {
        let err = engine
            .add_profile(SignIn {
                server: server.into(),
                ..sign_in(&s, "alice_work", "Work")
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "insecure_http", "{server}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(server.trim_start_matches("http://")),
            "names the host: {msg}"
        );
        assert!(msg.contains("allow"), "says it can be allowed: {msg}");
        let err = engine
            .request_sms_code(server, "+8613900139000", SmsPurpose::Register, false)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "insecure_http", "{server}: {err}");
        let err = engine
            .register_profile(Register {
                server: server.into(),
                phone: "+8613900139000".into(),
                sms_code: "000000".into(),
                public_id: "dave_work".into(),
                password: TEST_PASSWORD.into(),
                display_name: "Dave".into(),
                name: None,
                color: None,
                allow_insecure_http: false,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), "insecure_http", "{server}: {err}");
    }
    assert!(engine.list_profiles().await.unwrap().is_empty());

    // Loopback needs no allowance and carries no mark.
    let home = engine
        .add_profile(sign_in(&s, "alice_home", "Home"))
        .await
        .unwrap();
    assert!(!home.record.allow_insecure_http);

    // The same service reached through another address of this machine: another host.
    let Some(lan) = LanForwarder::start(s.addr).await else {
        eprintln!("no non-loopback address on this machine: the allowed case is not run");
        engine.shutdown().await;
        return;
    };
    let server = format!("http://{}", lan.addr);
    let err = engine
        .add_profile(SignIn {
            server: server.clone(),
            ..sign_in(&s, "alice_work", "Work")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "insecure_http", "{err}");
    let work = engine
        .add_profile(SignIn {
            server: server.clone(),
            allow_insecure_http: true,
            ..sign_in(&s, "alice_work", "Work")
        })
        .await
        .unwrap();
    assert!(
        work.record.allow_insecure_http,
        "the allowance is stored, so the profile is marked not encrypted"
    );
    wait_until("Work is live in cleartext", async || {
        engine.state(&id(&engine, "Work").await).await.unwrap() == ConnState::Live
    })
    .await;
    s.post_as(
        &bob,
        "/v1/messages",
        serde_json::json!({"client_id": uuid(), "to": "alice_work", "body": "plain text"}),
    )
    .await
    .expect(201);
    wait_for_message(&engine, "Work", "plain text").await;
    engine.shutdown().await;

    // The allowance is the profile's own: it is still there after a restart.
    let engine = engine_for(&s, dir.path(), Arc::new(MemoryVault::default())).await;
    let listed: Vec<(String, bool)> = engine
        .list_profiles()
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.record.name, p.record.allow_insecure_http))
        .collect();
    assert_eq!(
        listed,
        [("Home".to_string(), false), ("Work".to_string(), true)]
    );
    engine.shutdown().await;
}

// ---------------------------------------------------------------- payments

/// A forwarder to a service that, once armed, loses the answer to the next request whose
/// head holds `marker`: the request reaches the service, which acts on it, and the
/// connection is cut before a byte of the answer gets back, as a timeout or a dropped network
/// would. Every other connection and request passes untouched. Stops when dropped.
struct LosesAnAnswer {
    addr: std::net::SocketAddr,
    armed: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl LosesAnAnswer {
    async fn start(upstream: std::net::SocketAddr, marker: &'static str) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let armed = Arc::new(AtomicBool::new(false));
        let arm = armed.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let arm = arm.clone();
                connections.spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = inbound.into_split();
                    let (mut server_read, mut server_write) = outbound.into_split();
                    // Set before the marked request goes on, so its answer can only find it set.
                    let losing = Arc::new(AtomicBool::new(false));
                    let lose = losing.clone();
                    let up = async move {
                        let mut buf = vec![0; 64 * 1024];
                        loop {
                            let n = match client_read.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            let chunk = &buf[..n];
                            if contains(chunk, marker.as_bytes())
                                && arm.swap(false, Ordering::SeqCst)
                            {
                                lose.store(true, Ordering::SeqCst);
                            }
                            if server_write.write_all(chunk).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = async move {
                        let mut buf = vec![0; 64 * 1024];
                        loop {
                            let n = match server_read.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if losing.load(Ordering::SeqCst) {
                                // The answer is dropped, and the connection with it.
                                return;
                            }
                            if client_write.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    // Whichever direction ends first ends the connection (both halves drop).
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                    }
                });
            }
        });
        Self { addr, armed, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next marked request's answer is lost.
    fn lose_next_answer(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for LosesAnAnswer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A transfer whose answer is lost was made by the service all the same. The core kept it,
/// with its idempotency key, as pending: through a restart of the app, and trying it again
/// (from the pending list, or by sending the same transfer again) moves the money once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_whose_answer_was_lost_is_tried_again_and_pays_once_even_after_a_restart() {
    use switchboard_core::account::{Paid, Payment};
    let s = TestServer::start().await;
    let alice = s.verified_user(1, "alice_pays").await;
    let bob = s.verified_user(2, "bob_is_paid").await;
    s.befriend(&alice, &bob).await;
    let proxy = LosesAnAnswer::start(s.addr, "POST /v1/wallet/transfers").await;
    let bobs_balance =
        async || s.get("/v1/wallet", &bob.token).await.expect(200).body["balance"].clone();

    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(MemoryVault::default());
    let engine = Engine::open(dir.path(), vault.clone()).await.unwrap();
    let profile = engine
        .add_profile(SignIn {
            server: proxy.url(),
            ..sign_in(&s, "alice_pays", "Alice")
        })
        .await
        .unwrap()
        .record
        .id;
    engine.top_up(&profile, 10_000, false).await.unwrap();

    // The answer is lost: the core cannot know whether it paid, and says so.
    proxy.lose_next_answer();
    let lost = engine
        .transfer(&profile, &public("bob_is_paid"), 2_500, "rent", false)
        .await
        .unwrap_err();
    assert_eq!(lost.code(), "payment_pending", "{lost}");
    assert_eq!(bobs_balance().await, 2_500, "the service made the transfer");
    let pending = engine.pending_payments(&profile).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(
        pending[0].payment,
        Payment::Transfer {
            to: public("bob_is_paid"),
            amount: 2_500,
            note: "rent".into()
        }
    );
    assert!(!pending[0].last_error.is_empty(), "{pending:?}");

    // The app closes and opens again: the pending payment and its key are still there.
    engine.shutdown().await;
    let engine = Engine::open(dir.path(), vault.clone()).await.unwrap();
    engine.start_all().await.unwrap();
    let after_restart = engine.pending_payments(&profile).await.unwrap();
    assert_eq!(after_restart, pending, "kept in the profile's database");
    let Paid::Moved(moved) = engine
        .retry_payment(&profile, &pending[0].id, false)
        .await
        .unwrap()
    else {
        panic!("a transfer is answered with the money moved");
    };
    assert_eq!(
        moved.balance, 7_500,
        "the service answered as it did the first time: one transfer"
    );
    assert_eq!(
        bobs_balance().await,
        2_500,
        "trying again paid nothing more"
    );
    assert!(engine.pending_payments(&profile).await.unwrap().is_empty());

    // Lost again; the user sends the very same transfer again instead: it is the same payment.
    proxy.lose_next_answer();
    let lost = engine
        .transfer(&profile, &public("bob_is_paid"), 1_000, "gas", false)
        .await
        .unwrap_err();
    assert_eq!(lost.code(), "payment_pending", "{lost}");
    let again = engine
        .transfer(&profile, &public("bob_is_paid"), 1_000, "gas", false)
        .await
        .unwrap();
    assert_eq!(again.balance, 6_500);
    assert_eq!(bobs_balance().await, 3_500, "paid once");
    assert!(engine.pending_payments(&profile).await.unwrap().is_empty());

    // Once answered, the same transfer again is a new payment, made on purpose.
    let second = engine
        .transfer(&profile, &public("bob_is_paid"), 1_000, "gas", false)
        .await
        .unwrap();
    assert_eq!(second.balance, 5_500);
    assert_eq!(bobs_balance().await, 4_500);

    // A refusal is an answer: nothing is kept.
    let refused = engine
        .transfer(
            &profile,
            &public("bob_is_paid"),
            1_000_000,
            "too much",
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "insufficient_funds", "{refused}");
    assert!(engine.pending_payments(&profile).await.unwrap().is_empty());

    // Abandoning forgets a pending payment and sends nothing; what the service did stands.
    proxy.lose_next_answer();
    engine
        .transfer(&profile, &public("bob_is_paid"), 500, "tip", false)
        .await
        .unwrap_err();
    let tip = engine.pending_payments(&profile).await.unwrap();
    engine.abandon_payment(&profile, &tip[0].id).await.unwrap();
    assert!(engine.pending_payments(&profile).await.unwrap().is_empty());
    assert_eq!(
        engine
            .abandon_payment(&profile, &tip[0].id)
            .await
            .unwrap_err()
            .code(),
        "invalid"
    );
    assert_eq!(bobs_balance().await, 5_000);
    let history = engine.transactions(&profile, None).await.unwrap();
    let transfers: Vec<i64> = history
        .transactions
        .iter()
        .filter(|t| t.kind == "transfer")
        .map(|t| t.amount)
        .collect();
    assert_eq!(
        transfers,
        [-500, -1_000, -1_000, -2_500],
        "each payment once, newest first"
    );
    engine.shutdown().await;
}
