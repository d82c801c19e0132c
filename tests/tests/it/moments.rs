//! Moments and images across the profiles of one app, against a real service: a post with two
//! images seen by a contact's profile in its own feed and in the merged one; a like raising one
//! notification in the author's profile; an image written offline sent once when back online.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::notify::RecordingSink;
use switchboard_core::vault::MemoryVault;
use switchboard_core::{ConnState, ConversationId, Engine, ProfileId};
use switchboard_e2e::{picture, sign_in, upload, wait_until};
use switchboard_protocol::moments::Visibility;
use switchboard_server::testing::{TcpProxy, TestServer};

async fn live(engine: &Engine, p: &ProfileId) {
    wait_until("live", async || {
        engine.state(p).await.unwrap() == ConnState::Live
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moment_with_two_images_reaches_the_contacts_profile_and_its_like_notifies_the_author_once()
 {
    let s = TestServer::start().await;
    let alice = s.two_accounts_one_phone().await;
    // Alice's work and personal accounts are contacts of each other.
    s.befriend(&alice.work, &alice.home).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let sink = Arc::new(RecordingSink::default());
    engine.enable_notifications(sink.clone());
    let work = engine
        .add_profile(sign_in(&s.base, "alice_work", "Work"))
        .await
        .unwrap()
        .record
        .id;
    let home = engine
        .add_profile(sign_in(&s.base, "alice_home", "Personal"))
        .await
        .unwrap()
        .record
        .id;
    live(&engine, &work).await;
    live(&engine, &home).await;

    let (beach, dune) = (picture(900, 600, 1), picture(400, 800, 2));
    let post = engine
        .post_moment(
            &work,
            "Saturday at the sea",
            &[upload(&beach), upload(&dune)],
            Visibility::Contacts,
        )
        .await
        .unwrap();
    assert_eq!(post.media.len(), 2);
    assert!(post.mine);

    // The personal profile sees it in its own feed (moment.new, then the feed read) …
    wait_until("the contact's profile has the post", async || {
        engine
            .moments(std::slice::from_ref(&home), None)
            .await
            .unwrap()
            .iter()
            .any(|m| m.id == post.id)
    })
    .await;
    // … and the merged feed has it once for each profile that sees it, each marked.
    let merged = engine
        .moments(&[work.clone(), home.clone()], None)
        .await
        .unwrap();
    let marks: Vec<(&ProfileId, bool)> = merged
        .iter()
        .filter(|m| m.id == post.id)
        .map(|m| (&m.profile, m.mine))
        .collect();
    assert_eq!(marks.len(), 2, "{merged:?}");
    assert!(marks.contains(&(&work, true)) && marks.contains(&(&home, false)));

    // Its images: a thumbnail no larger than 320 px, then the full bytes as posted, fetched
    // by the contact's profile from the service (it may see them through the post).
    let seen = &merged.iter().find(|m| m.profile == home).unwrap().media;
    let thumb = engine.media(&home, &seen[0], false).await.unwrap();
    let t = image::load_from_memory(&data_encoding::BASE64.decode(thumb.data.as_bytes()).unwrap())
        .unwrap();
    assert_eq!((t.width(), t.height(), thumb.width), (320, 213, 900));
    let full = engine.media(&home, &seen[1], true).await.unwrap();
    assert_eq!(
        data_encoding::BASE64.decode(full.data.as_bytes()).unwrap(),
        dune
    );
    assert!(engine.media_cache_size(&home).await.unwrap() > dune.len() as i64);

    // The personal profile likes it, twice (the second is the first). The work profile is
    // notified once, titled with its name and the liker's.
    let liked = engine.like_moment(&home, &post.id).await.unwrap();
    assert!(liked.liked_by_me);
    engine.like_moment(&home, &post.id).await.unwrap();
    let about_the_like = || {
        sink.shown()
            .into_iter()
            .filter(|n| n.profile == work && n.body.contains("liked your moment"))
            .count()
    };
    wait_until("the author's profile is notified", async || {
        about_the_like() == 1
    })
    .await;
    wait_until("the author's feed shows the like", async || {
        engine
            .moments(std::slice::from_ref(&work), None)
            .await
            .unwrap()
            .iter()
            .any(|m| m.id == post.id && m.likes.len() == 1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(about_the_like(), 1, "{:?}", sink.shown());
    assert!(
        !sink
            .shown()
            .iter()
            .any(|n| n.profile == home && n.body.contains("liked")),
        "the liker is not told of their own like"
    );

    // Deleted: it leaves both profiles' feeds at their next read.
    engine.delete_moment(&work, &post.id).await.unwrap();
    let merged = engine.moments(&[work, home], None).await.unwrap();
    assert!(!merged.iter().any(|m| m.id == post.id), "{merged:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_written_offline_shows_at_once_and_goes_out_once_when_back_online() {
    let s = TestServer::start().await;
    let proxy = TcpProxy::start(s.addr).await;
    let alice = s.user(1, "alice_a").await;
    let bob = s.user(2, "bobby_b").await;
    s.befriend(&alice, &bob).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let p = engine
        .add_profile(sign_in(&proxy.url(), "alice_a", "A"))
        .await
        .unwrap()
        .record
        .id;
    live(&engine, &p).await;

    proxy.down();
    wait_until("offline", async || {
        matches!(engine.state(&p).await.unwrap(), ConnState::Offline(_))
    })
    .await;
    let photo = picture(640, 480, 7);
    let to = ConversationId::parse("bobby_b").unwrap();
    let queued = engine
        .send_with_images(&p, &to, "", &[upload(&photo)])
        .await
        .unwrap();
    assert_eq!(queued.media.len(), 1);
    // Its thumbnail shows at once, offline.
    let thumb = engine.media(&p, &queued.media[0], false).await.unwrap();
    assert_eq!((thumb.width, thumb.height), (640, 480));
    // Not an image: refused at once, nothing queued.
    assert!(
        engine
            .send_with_images(&p, &to, "", &[upload(b"<html>")])
            .await
            .is_err()
    );
    assert_eq!(engine.outbox(&p).await.unwrap().len(), 1);

    proxy.up();
    wait_until("the outbox is empty", async || {
        engine.outbox(&p).await.unwrap().is_empty()
    })
    .await;
    // Bob has it once, with its image, and the image is the one written.
    let log = s
        .get("/v1/sync?since=0&limit=1000", &bob.token)
        .await
        .expect(200);
    let messages: Vec<&serde_json::Value> = log.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message.new")
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let media_id = messages[0]["data"]["media"][0].as_str().unwrap();
    let r = s
        .client()
        .get(s.url(&format!("/v1/media/{media_id}")))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), photo);
    // The sender's own copy came back through the log carrying the service's id, and shows
    // from the cache under it.
    wait_until("the message is in the chat", async || {
        engine
            .messages(&p, &to)
            .await
            .unwrap()
            .iter()
            .any(|m| m.media == [media_id.to_string()])
    })
    .await;
    assert!(engine.media(&p, media_id, true).await.is_ok());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_pages_through_every_post_once_and_reads_offline_from_what_it_kept() {
    let s = TestServer::start().await;
    let proxy = TcpProxy::start(s.addr).await;
    let author = s.user(1, "author_a").await;
    let reader = s.user(2, "reader_r").await;
    s.befriend(&author, &reader).await;
    for i in 0..45 {
        s.post_as(
            &author,
            "/v1/moments",
            serde_json::json!({"text": format!("post {i}"), "visibility": "contacts",
                               "idempotency_key": format!("k{i}")}),
        )
        .await
        .expect(201);
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let p = engine
        .add_profile(sign_in(&proxy.url(), "reader_r", "R"))
        .await
        .unwrap()
        .record
        .id;
    live(&engine, &p).await;
    let mut texts = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = engine
            .moments(std::slice::from_ref(&p), before.as_deref())
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        pages.push(page.len());
        texts.extend(page.iter().map(|m| m.text.clone()));
        before = page.last().map(|m| m.id.clone());
    }
    assert_eq!(pages, [20, 20, 5]);
    // None missing or repeated. (The test service's clock stands still, so the posts share
    // one instant and the service's tie-break, the id, orders them; the core must page on
    // the same (time, id) order or it would stop after the first page.)
    let mut sorted = texts.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 45, "{texts:?}");

    // Offline, the first page still shows, from the profile's own database.
    proxy.down();
    wait_until("offline", async || {
        matches!(engine.state(&p).await.unwrap(), ConnState::Offline(_))
    })
    .await;
    let page = engine
        .moments(std::slice::from_ref(&p), None)
        .await
        .unwrap();
    let offline: Vec<String> = page.iter().map(|m| m.text.clone()).collect();
    assert_eq!(offline, texts[..20]);
    engine.shutdown().await;
}
