//! `cargo xtask bench moments`: figures for Moments and images, printed, never asserted.
//!
//! Feed: a contact has 1,000 posts, each with one image (a distinct 480 × 360 PNG). A new
//! profile opens the Moments view: "first paint" is the first page (20 posts) read from the
//! service into the profile's database plus every thumbnail on it (fetched and made once,
//! concurrently as the page asks for them); then the same again warm (from the cache), then
//! scrolling through all 1,000, after which the profile's cache size is printed.
//! Image message: one profile of an app sends an image to a contact whose profile is in the
//! same app: from the send (image judged, thumbnailed, queued) through its upload and the
//! message to the contact's profile applying it (where its notification is raised) and
//! showing its thumbnail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot run should stop loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_core::vault::MemoryVault;
use switchboard_core::{ConnState, ConversationId, Engine, EventBody, ProfileEventKind, ProfileId};
use switchboard_e2e::{picture, sign_in, upload};
use switchboard_server::testing::{TestServer, TestUser};

const POSTS: usize = 1_000;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn post_with_image(s: &TestServer, u: &TestUser, i: usize) {
    let bytes = picture(480 + (i / 256) as u32, 360, (i % 256) as u8);
    let r = s
        .client()
        .post(s.url("/v1/media"))
        .bearer_auth(&u.token)
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let media: serde_json::Value = r.json().await.unwrap();
    s.post_as(
        u,
        "/v1/moments",
        json!({"text": format!("post {i}"), "media": [media["media_id"]],
               "visibility": "contacts", "idempotency_key": format!("k{i}")}),
    )
    .await
    .expect(201);
}

async fn profile(engine: &Engine, s: &TestServer, login: &str) -> ProfileId {
    let p = engine
        .add_profile(sign_in(&s.base, login, login))
        .await
        .unwrap()
        .record
        .id;
    while engine.state(&p).await.unwrap() != ConnState::Live {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p
}

/// One page of the feed and every thumbnail on it; the number of posts.
async fn paint(engine: &Engine, p: &ProfileId, before: Option<&str>) -> (usize, Option<String>) {
    let page = engine
        .moments(std::slice::from_ref(p), before)
        .await
        .unwrap();
    let thumbs = page
        .iter()
        .flat_map(|m| m.media.iter())
        .map(|id| engine.media(p, id, false));
    for t in futures_util::future::join_all(thumbs).await {
        t.unwrap();
    }
    (page.len(), page.last().map(|m| m.id.clone()))
}

#[tokio::main]
async fn main() {
    let s = TestServer::start().await;
    let author = s.user(1, "author_m").await;
    let reader = s.user(2, "reader_m").await;
    s.befriend(&author, &reader).await;
    let t = Instant::now();
    for i in 0..POSTS {
        post_with_image(&s, &author, i).await;
    }
    println!(
        "setup: {POSTS} posts with a 480x360 PNG each in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let reader_p = profile(&engine, &s, "reader_m").await;
    let t = Instant::now();
    let (n, _) = paint(&engine, &reader_p, None).await;
    let cold = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    paint(&engine, &reader_p, None).await;
    let warm = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "first paint of the Moments view ({n} posts with their thumbnails): cold {cold:.1} ms, warm {warm:.1} ms"
    );
    let t = Instant::now();
    let (mut seen, mut last) = paint(&engine, &reader_p, None).await;
    while let Some(id) = last.take() {
        let (k, next) = paint(&engine, &reader_p, Some(&id)).await;
        seen += k;
        last = next;
    }
    assert_eq!(seen, POSTS, "every post once");
    println!(
        "scrolled the whole feed: {seen} posts and thumbnails in {:.1} s; the profile's image cache holds {:.1} MiB (bound {} MiB), its database file {:.1} MiB",
        t.elapsed().as_secs_f64(),
        engine.media_cache_size(&reader_p).await.unwrap() as f64 / 1048576.0,
        switchboard_core::media::CACHE_BYTES / 1048576,
        std::fs::metadata(engine.profile_dir(&reader_p).join("profile.db")).map_or(0, |m| m.len())
            as f64
            / 1048576.0
    );

    // Image messages between two profiles of one app.
    let author_p = profile(&engine, &s, "author_m").await;
    let to = ConversationId::parse("reader_m").unwrap();
    let mut bus = engine.subscribe();
    let mut ms = Vec::new();
    for i in 0..60usize {
        let bytes = picture(800, 600, (i % 256) as u8 ^ 0x55);
        let t = Instant::now();
        let queued = engine
            .send_with_images(&author_p, &to, "", &[upload(&bytes)])
            .await
            .unwrap();
        let media = loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), bus.recv())
                .await
                .expect("the contact's profile gets it")
                .unwrap();
            if ev.profile == reader_p
                && let ProfileEventKind::Event(e) = ev.kind
                && let EventBody::MessageNew(m) = &e.body
                && m.client_id == queued.client_id
            {
                break m.media[0].clone();
            }
        };
        engine.media(&reader_p, &media, false).await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "an 800x600 image sent → applied in the contact's profile (its notification) and its thumbnail shown: p50 {:.1} ms, p99 {:.1} ms ({} sends)",
        pct(&ms, 0.5),
        pct(&ms, 0.99),
        ms.len()
    );
    engine.shutdown().await;
}
