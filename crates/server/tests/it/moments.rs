//! Media and Moments through HTTP (SPEC §1.6), on the backend `SWITCHBOARD_TEST_BACKEND`
//! names: uploads judged by their bytes, images served only to who may see them, who sees a
//! post, a like and a comment (WeChat's rule), deletion, paging, and concurrent retries.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use serde_json::{Value, json};
use switchboard_server::testing::{Reply, TestServer, TestUser, post_at_once};

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

async fn upload(s: &TestServer, u: &TestUser, bytes: Vec<u8>, content_type: &str) -> Reply {
    let r = s
        .client()
        .post(s.url("/v1/media"))
        .bearer_auth(&u.token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    Reply {
        status,
        body,
        retry_after: None,
    }
}

async fn fetch(s: &TestServer, u: &TestUser, media: &str) -> (u16, Option<String>, Vec<u8>) {
    let r = s
        .client()
        .get(s.url(&format!("/v1/media/{media}")))
        .bearer_auth(&u.token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    (status, ct, r.bytes().await.unwrap().to_vec())
}

async fn post(
    s: &TestServer,
    u: &TestUser,
    text: &str,
    media: &[&str],
    visibility: Value,
) -> String {
    s.post_as(
        u,
        "/v1/moments",
        json!({"text": text, "media": media, "visibility": visibility, "idempotency_key": text}),
    )
    .await
    .expect(201)
    .body["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn feed_ids(s: &TestServer, u: &TestUser) -> Vec<String> {
    s.get("/v1/moments/feed?limit=50", &u.token)
        .await
        .expect(200)
        .body["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap().to_string())
        .collect()
}

/// Ann with contacts Ben, Cal and Dee; Ben and Dee are contacts too; Eve knows nobody.
struct Circle {
    s: TestServer,
    ann: TestUser,
    ben: TestUser,
    cal: TestUser,
    dee: TestUser,
    eve: TestUser,
}

async fn circle() -> Circle {
    let s = TestServer::start().await;
    let ann = s.user(1, "ann_a1").await;
    let ben = s.user(2, "ben_b2").await;
    let cal = s.user(3, "cal_c3").await;
    let dee = s.user(4, "dee_d4").await;
    let eve = s.user(5, "eve_e5").await;
    for (a, b) in [(&ann, &ben), (&ann, &cal), (&ann, &dee), (&ben, &dee)] {
        s.befriend(a, b).await;
    }
    Circle {
        s,
        ann,
        ben,
        cal,
        dee,
        eve,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_judged_by_its_bytes_and_shown_only_to_who_may_see_it() {
    let c = circle().await;
    let s = &c.s;
    // A PNG header on an HTML page, whatever it claims to be.
    let mut html = PNG[..8].to_vec();
    html.extend_from_slice(b"<html><script>alert(1)</script></html>");
    upload(s, &c.ann, html, "image/png")
        .await
        .expect_error(400, "invalid_media");
    upload(s, &c.ann, b"just text".to_vec(), "image/jpeg")
        .await
        .expect_error(400, "invalid_media");
    // A 69-byte PNG declaring 60,000 × 60,000 pixels, and one of 8,000 × 8,000 (each side
    // allowed, 64 megapixels not): judged from the header, refused, nothing kept.
    for (w, h) in [(60_000u32, 60_000u32), (8_000, 8_000)] {
        let mut bomb = PNG.to_vec();
        bomb[16..20].copy_from_slice(&w.to_be_bytes());
        bomb[20..24].copy_from_slice(&h.to_be_bytes());
        let r = upload(s, &c.ann, bomb, "image/png").await;
        r.clone().expect_error(400, "invalid_media");
        assert!(r.message().contains("pixels"), "{}", r.body);
    }
    let mut huge = PNG.to_vec();
    huge.resize(10 * 1024 * 1024 + 1, 0);
    let r = upload(s, &c.ann, huge, "image/png").await;
    assert_eq!(r.status, 413, "{}", r.body);
    // A real one: its size read from it, stored once however often it is sent.
    let first = upload(s, &c.ann, PNG.to_vec(), "application/octet-stream")
        .await
        .expect(201)
        .body;
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(1), Some(1))
    );
    let again = upload(s, &c.ann, PNG.to_vec(), "image/png")
        .await
        .expect(201)
        .body;
    assert_eq!(first["sha256"], again["sha256"]);
    let media = first["media_id"].as_str().unwrap().to_string();
    let (status, ct, bytes) = fetch(s, &c.ann, &media).await;
    assert_eq!(
        (status, ct.as_deref(), bytes.as_slice()),
        (200, Some("image/png"), PNG)
    );
    // Not posted yet: nobody else may fetch it, and the answer is the one for "no such".
    for u in [&c.ben, &c.eve] {
        assert_eq!(fetch(s, u, &media).await.0, 404);
    }
    assert_eq!(fetch(s, &c.ben, "med_nosuchmedia000").await.0, 404);
    // Posted to everyone but Cal: Ben may fetch it, Cal and Eve may not.
    post(s, &c.ann, "beach", &[&media], json!({"except": ["cal_c3"]})).await;
    assert_eq!(fetch(s, &c.ben, &media).await.0, 200);
    assert_eq!(fetch(s, &c.cal, &media).await.0, 404);
    assert_eq!(fetch(s, &c.eve, &media).await.0, 404);
    // Someone else's upload cannot be put in one's own post.
    s.post_as(
        &c.ben,
        "/v1/moments",
        json!({"text": "mine", "media": [media], "visibility": "contacts", "idempotency_key": "x"}),
    )
    .await
    .expect_error(404, "media_not_found");
}

/// viewer × visibility: who sees which post.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_viewer_sees_exactly_the_posts_its_visibility_lets_it() {
    let c = circle().await;
    let s = &c.s;
    post(s, &c.ann, "to all", &[], json!("contacts")).await;
    s.clock.advance_secs(1);
    post(s, &c.ann, "only ben", &[], json!({"only": ["ben_b2"]})).await;
    s.clock.advance_secs(1);
    post(s, &c.ann, "not cal", &[], json!({"except": ["cal_c3"]})).await;
    s.clock.advance_secs(1);
    post(s, &c.ben, "ben's", &[], json!("contacts")).await;
    let table: [(&TestUser, &[&str]); 5] = [
        (&c.ann, &["ben's", "not cal", "only ben", "to all"]),
        (&c.ben, &["ben's", "not cal", "only ben", "to all"]),
        (&c.cal, &["to all"]),
        (&c.dee, &["ben's", "not cal", "to all"]),
        (&c.eve, &[]),
    ];
    for (viewer, expected) in table {
        assert_eq!(
            feed_ids(s, viewer).await,
            expected,
            "{}'s feed",
            viewer.public_id
        );
    }
    // One account's posts, as the viewer may see them.
    let anns = s
        .get("/v1/users/ann_a1/moments", &c.cal.token)
        .await
        .expect(200)
        .body;
    assert_eq!(anns["posts"].as_array().unwrap().len(), 1);
    // Naming a stranger in a visibility list is refused; nothing is posted.
    s.post_as(
        &c.ann,
        "/v1/moments",
        json!({"text": "x", "visibility": {"only": ["eve_e5"]}, "idempotency_key": "y"}),
    )
    .await
    .expect_error(403, "not_a_contact");
    assert_eq!(feed_ids(s, &c.ann).await.len(), 4);
}

/// A like or comment is seen by the post's author, by its own author, and by viewers who are
/// contacts of its author; its event goes to those of them in the thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likes_and_comments_follow_the_contacts_of_whoever_made_them() {
    let c = circle().await;
    let s = &c.s;
    let id = post(s, &c.ann, "sunset", &[], json!("contacts")).await;
    let heads: Vec<i64> = {
        let mut v = Vec::new();
        for u in [&c.ann, &c.ben, &c.cal, &c.dee] {
            v.push(
                s.get("/v1/sync?limit=1000", &u.token).await.body["head"]
                    .as_i64()
                    .unwrap(),
            );
        }
        v
    };
    s.post_as(&c.ben, &format!("/v1/moments/{id}/likes"), json!({}))
        .await
        .expect(201);
    s.clock.advance_secs(1);
    s.post_as(
        &c.ben,
        &format!("/v1/moments/{id}/comments"),
        json!({"text": "lovely"}),
    )
    .await
    .expect(201);
    s.clock.advance_secs(1);
    s.post_as(
        &c.cal,
        &format!("/v1/moments/{id}/comments"),
        json!({"text": "where?"}),
    )
    .await
    .expect(201);
    // viewer → (likers, commenters) it sees.
    let see = |body: &Value| -> (Vec<String>, Vec<String>) {
        let p = &body["posts"][0];
        let names = |k: &str| {
            p[k].as_array()
                .unwrap()
                .iter()
                .map(|x| x["author"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        (names("likes"), names("comments"))
    };
    // viewer → (who it sees liking, who it sees commenting)
    type Row<'a> = (&'a TestUser, (&'a [&'a str], &'a [&'a str]));
    let table: [Row; 4] = [
        (&c.ann, (&["ben_b2"], &["ben_b2", "cal_c3"])),
        (&c.ben, (&["ben_b2"], &["ben_b2"])),
        (&c.cal, (&[], &["cal_c3"])),
        (&c.dee, (&["ben_b2"], &["ben_b2"])),
    ];
    for (viewer, (likes, comments)) in table {
        let got = see(&s
            .get("/v1/moments/feed", &viewer.token)
            .await
            .expect(200)
            .body);
        let owned = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(got, (owned(likes), owned(comments)), "{}", viewer.public_id);
    }
    // Events: the thread members who may see each reaction.
    let mut got = Vec::new();
    for (u, head) in [&c.ann, &c.ben, &c.cal, &c.dee].into_iter().zip(heads) {
        let page = s
            .get(&format!("/v1/sync?since={head}"), &u.token)
            .await
            .expect(200)
            .body;
        let kinds: Vec<String> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} by {}",
                    e["kind"].as_str().unwrap(),
                    e["data"]["like"]["author"]
                        .as_str()
                        .or(e["data"]["comment"]["author"].as_str())
                        .unwrap()
                )
            })
            .collect();
        got.push(kinds);
    }
    assert_eq!(
        got[0],
        [
            "moment.like by ben_b2",
            "moment.comment by ben_b2",
            "moment.comment by cal_c3"
        ],
        "Ann, the author"
    );
    assert_eq!(
        got[1],
        ["moment.like by ben_b2", "moment.comment by ben_b2"],
        "Ben: not Cal's comment"
    );
    assert_eq!(got[2], ["moment.comment by cal_c3"], "Cal: only its own");
    assert!(got[3].is_empty(), "Dee is not in the thread: {:?}", got[3]);
    // A stranger can neither see nor react.
    s.post_as(&c.eve, &format!("/v1/moments/{id}/likes"), json!({}))
        .await
        .expect_error(404, "moment_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_post_and_its_comments_leave_every_feed() {
    let c = circle().await;
    let s = &c.s;
    let id = post(s, &c.ann, "oops", &[], json!("contacts")).await;
    s.post_as(
        &c.ben,
        &format!("/v1/moments/{id}/comments"),
        json!({"text": "ha"}),
    )
    .await
    .expect(201);
    s.call(
        reqwest::Method::DELETE,
        &format!("/v1/moments/{id}"),
        Some(&c.ben.token),
        None,
    )
    .await
    .expect_error(404, "moment_not_found");
    s.call(
        reqwest::Method::DELETE,
        &format!("/v1/moments/{id}"),
        Some(&c.ann.token),
        None,
    )
    .await
    .expect(204);
    for u in [&c.ann, &c.ben, &c.dee] {
        assert!(feed_ids(s, u).await.is_empty(), "{}", u.public_id);
    }
    s.post_as(
        &c.ben,
        &format!("/v1/moments/{id}/comments"),
        json!({"text": "still?"}),
    )
    .await
    .expect_error(404, "moment_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_pages_newest_first_without_gaps_or_repeats() {
    let c = circle().await;
    let s = &c.s;
    for i in 0..5 {
        post(s, &c.ann, &format!("p{i}"), &[], json!("contacts")).await;
        s.clock.advance_secs(1);
    }
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            Some(b) => format!("/v1/moments/feed?limit=2&before={b}"),
            None => "/v1/moments/feed?limit=2".to_string(),
        };
        let page = s.get(&path, &c.ben.token).await.expect(200).body;
        for p in page["posts"].as_array().unwrap() {
            seen.push(p["text"].as_str().unwrap().to_string());
        }
        match page["next_before"].as_str() {
            Some(b) => before = Some(b.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["p4", "p3", "p2", "p1", "p0"]);
    s.get("/v1/moments/feed?limit=0", &c.ben.token)
        .await
        .expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_likes_count_once_and_retried_posts_make_one_post() {
    let c = circle().await;
    let s = &c.s;
    let id = post(s, &c.ann, "race", &[], json!("contacts")).await;
    let path = format!("/v1/moments/{id}/likes");
    let tally = post_at_once(&s.base, &c.ben.token, &path, 10, |_| json!({})).await;
    assert_eq!(tally.get(&(201, String::new())), Some(&1), "{tally:?}");
    assert_eq!(
        tally.get(&(409, "already_liked".into())),
        Some(&9),
        "{tally:?}"
    );
    let tally = post_at_once(
        &s.base,
        &c.dee.token,
        "/v1/moments",
        8,
        |_| json!({"text": "once", "visibility": "contacts", "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(tally.get(&(201, String::new())), Some(&8), "{tally:?}");
    assert_eq!(
        feed_ids(s, &c.dee)
            .await
            .iter()
            .filter(|t| *t == "once")
            .count(),
        1
    );
    // Empty, too long, too many images: refused, nothing posted.
    for bad in [
        json!({"text": "", "visibility": "contacts", "idempotency_key": "a"}),
        json!({"text": "x".repeat(2001), "visibility": "contacts", "idempotency_key": "b"}),
        json!({"text": "x", "media": vec!["m"; 10], "visibility": "contacts", "idempotency_key": "c"}),
        // Shown under the author's name: nothing invisible or direction-changing in it.
        json!({"text": "gift\u{202E}gpj.exe", "visibility": "contacts", "idempotency_key": "d"}),
    ] {
        s.post_as(&c.dee, "/v1/moments", bad)
            .await
            .expect_error(400, "invalid_moment");
    }
    s.post_as(
        &c.dee,
        "/v1/moments",
        json!({"text": "x", "visibility": "everyone", "idempotency_key": "d"}),
    )
    .await
    .expect_error(400, "invalid_request");
}

fn send_body(to: &str, body: &str, media: &[&str], client_id: &str) -> Value {
    json!({"client_id": client_id, "to": to, "body": body, "media": media})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_in_a_message_reaches_its_recipients_and_nobody_else() {
    let c = circle().await;
    let s = &c.s;
    let media = |r: Reply| r.expect(201).body["media_id"].as_str().unwrap().to_string();
    let photo = media(upload(s, &c.ann, PNG.to_vec(), "image/png").await);

    // Before any message, Ben may not fetch Ann's image, nor send it himself.
    assert_eq!(fetch(s, &c.ben, &photo).await.0, 404);
    let id = uuid::Uuid::new_v4().to_string();
    let r = s
        .post_as(
            &c.ben,
            "/v1/messages",
            send_body("dee_d4", "", &[&photo], &id),
        )
        .await;
    assert_eq!((r.status, Some(r.code())), (404, Some("media_not_found")));

    // Ann sends it to Ben with no text: Ben receives the id in the message and its event, and
    // may fetch it; Cal (Ann's contact, not in this chat) and Eve may not.
    let id = uuid::Uuid::new_v4().to_string();
    let sent = s
        .post_as(
            &c.ann,
            "/v1/messages",
            send_body("ben_b2", "", &[&photo], &id),
        )
        .await
        .expect(201);
    assert_eq!(sent.body["media"], json!([photo]));
    let events = s
        .get("/v1/sync?since=0&limit=1000", &c.ben.token)
        .await
        .expect(200);
    let carried = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "message.new" && e["data"]["client_id"] == id.as_str())
        .expect("Ben's log has the message");
    assert_eq!(carried["data"]["media"], json!([photo]));
    let (status, ct, bytes) = fetch(s, &c.ben, &photo).await;
    assert_eq!(
        (status, ct.as_deref(), bytes.as_slice()),
        (200, Some("image/png"), PNG)
    );
    assert_eq!(fetch(s, &c.cal, &photo).await.0, 404);
    assert_eq!(fetch(s, &c.eve, &photo).await.0, 404);

    // A retry of that client_id with other images is a conflict, never a second message.
    let other = media(upload(s, &c.ann, [PNG, b"".as_slice()].concat(), "image/png").await);
    let r = s
        .post_as(
            &c.ann,
            "/v1/messages",
            send_body("ben_b2", "", &[&other], &id),
        )
        .await;
    assert_eq!(r.status, 409);

    // Ben may now pass it on to Dee (he was shown it), and Dee may fetch it.
    let id = uuid::Uuid::new_v4().to_string();
    s.post_as(
        &c.ben,
        "/v1/messages",
        send_body("dee_d4", "look", &[&photo], &id),
    )
    .await
    .expect(201);
    assert_eq!(fetch(s, &c.dee, &photo).await.0, 200);

    // Ten images, or none and no text, are refused, and nothing is written.
    let ten = vec![photo.as_str(); 10];
    let id = uuid::Uuid::new_v4().to_string();
    let r = s
        .post_as(&c.ann, "/v1/messages", send_body("cal_c3", "", &ten, &id))
        .await;
    assert_eq!((r.status, Some(r.code())), (400, Some("invalid_media")));
    let r = s
        .post_as(&c.ann, "/v1/messages", send_body("cal_c3", "", &[], &id))
        .await;
    assert_eq!(
        (r.status, Some(r.code())),
        (400, Some("invalid_message_body"))
    );
    assert_eq!(fetch(s, &c.cal, &photo).await.0, 404);
    let cal_log = s
        .get("/v1/sync?since=0&limit=1000", &c.cal.token)
        .await
        .expect(200);
    assert!(
        !cal_log.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "message.new"),
        "a refused message wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_in_a_group_reaches_the_members_of_that_moment_only() {
    let c = circle().await;
    let s = &c.s;
    let photo = upload(s, &c.ann, PNG.to_vec(), "image/png")
        .await
        .expect(201)
        .body["media_id"]
        .as_str()
        .unwrap()
        .to_string();
    let group = s
        .post_as(
            &c.ann,
            "/v1/groups",
            json!({"name": "Trip", "members": ["ben_b2"]}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Eight senders race with the same image to the group (the grants written by each
    // message's own transaction must not collide).
    let tally = post_at_once(&s.base, &c.ann.token, "/v1/messages", 8, |i| {
        send_body(
            &group,
            &format!("{i}"),
            &[&photo],
            &uuid::Uuid::new_v4().to_string(),
        )
    })
    .await;
    assert_eq!(tally.get(&(201, String::new())), Some(&8), "{tally:?}");
    assert_eq!(fetch(s, &c.ben, &photo).await.0, 200);
    // Cal joins afterwards: what was sent before he joined stays out of his reach.
    s.post_as(
        &c.ann,
        &format!("/v1/groups/{group}/members"),
        json!({"members": ["cal_c3"]}),
    )
    .await
    .expect(200);
    assert_eq!(fetch(s, &c.cal, &photo).await.0, 404);
}
