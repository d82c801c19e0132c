//! `cargo xtask bench core`: figures for the client core, printed, never asserted.
//!
//! The service runs in the same process (a port-0 server over a temp SQLite file), so the two
//! share this machine's two cores; the figures are upper bounds on the core's own cost.
//! P4: cold start of 20 profiles to all live. P2: latency from the service accepting a message
//! to the event being applied in the profile's database and published to the notifier, with 20
//! live profiles and 200 messages/s in total.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot run should stop loudly

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::vault::{DatabaseKey, MemoryVault};
use switchboard_core::{ConnState, Engine, EventBody, ProfileEventKind, SignIn};
use switchboard_server::testing::{TEST_PASSWORD, TestServer, TestUser};
use tokio::sync::Mutex;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn all_live(engine: &Engine, names: &[String]) {
    loop {
        let mut live = 0;
        for n in names {
            let Ok(id) = engine.profile_id_by_name_or_id(n).await else {
                continue;
            };
            if engine
                .state(&id)
                .await
                .map(|s| s == ConnState::Live)
                .unwrap_or(false)
            {
                live += 1;
            }
        }
        if live == names.len() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main]
async fn main() {
    let s = TestServer::start_with(|c| {
        c.sms.per_ip_per_hour = 100_000;
        c.sessions.login_per_ip_per_hour = 100_000;
        // The backlog is a flood by design.
        c.limits.messages_per_minute = u32::MAX;
    })
    .await;
    let profiles = 20;
    let sender = s.user(99, "bench_sender").await;
    let mut users: Vec<TestUser> = Vec::new();
    for i in 0..profiles {
        let u = s.user(i, &format!("bench_user_{i:02}")).await;
        s.befriend(&sender, &u).await;
        users.push(u);
    }
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(MemoryVault::default());
    let names: Vec<String> = (0..profiles).map(|i| format!("P{i:02}")).collect();
    {
        let engine = Engine::open(dir.path(), vault.clone()).await.unwrap();
        for (i, u) in users.iter().enumerate() {
            let req = SignIn {
                server: s.base.clone(),
                login: u.public_id.clone(),
                password: TEST_PASSWORD.into(),
                name: Some(names[i].clone()),
                color: None,
                totp_code: None,
                allow_insecure_http: false,
            };
            let t = Instant::now();
            if let Err(e) = engine.add_profile(req).await {
                panic!("profile {i}: {e} after {:?}", t.elapsed());
            }
        }
        all_live(&engine, &names).await;
        engine.shutdown().await;
    }

    // P4: cold start.
    let started = Instant::now();
    let engine = Engine::open(dir.path(), vault.clone()).await.unwrap();
    engine.start_all().await.unwrap();
    all_live(&engine, &names).await;
    println!(
        "core bench P4: cold start of {profiles} profiles to all live: {:.0} ms (goal ≤ 1000 ms)",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // P2: 200 messages/s in total for 10 s across the 20 profiles.
    let accepted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let total = 2000;
    let mut bus = engine.subscribe();
    let collector = {
        let (accepted, latencies) = (accepted.clone(), latencies.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            while seen < total {
                let Ok(ev) = bus.recv().await else { continue };
                let now = Instant::now();
                if let ProfileEventKind::Event(e) = ev.kind
                    && let EventBody::MessageNew(m) = &e.body
                {
                    let body = m.body.as_str();
                    // The answer to the POST may arrive after the event: wait for it.
                    let t = loop {
                        if let Some(t) = accepted.lock().await.get(body).copied() {
                            break t;
                        }
                        tokio::task::yield_now().await;
                    };
                    latencies
                        .lock()
                        .await
                        .push(now.saturating_duration_since(t).as_secs_f64() * 1000.0);
                    seen += 1;
                }
            }
        })
    };
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let started = Instant::now();
    for n in 0..total {
        tick.tick().await;
        let body = format!("bench {n}");
        let to = &users[n % users.len()].public_id;
        let r = client
            .post(s.url("/v1/messages"))
            .bearer_auth(&sender.token)
            .json(&serde_json::json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to, "body": body}))
            .send()
            .await
            .unwrap();
        // Accepted = the service answered 201; the event may already be on its way.
        assert_eq!(r.status(), 201);
        accepted.lock().await.insert(body, Instant::now());
    }
    let send_secs = started.elapsed().as_secs_f64();
    tokio::time::timeout(Duration::from_secs(60), collector)
        .await
        .unwrap()
        .unwrap();
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    println!(
        "core bench P2: {total} messages at {:.0}/s to {profiles} live profiles; service accepted → applied and published: p50 {:.1} ms, p99 {:.1} ms (goal p50 ≤ 5, p99 ≤ 50; negative shares of the answer's own latency read as 0)",
        total as f64 / send_secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    engine.shutdown().await;

    backlog(&s, &sender).await;
}

/// P3: a profile added to an account with 100,000 events waiting syncs them all; compared with
/// a raw batched insert of the same rows into a bare SQLite file in the same run.
async fn backlog(s: &TestServer, sender: &TestUser) {
    let n = 100_000usize;
    let target = s.user(98, "bench_backlog").await;
    s.befriend(sender, &target).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    let workers = 8;
    for w in 0..workers {
        let (client, url, token, to) = (
            client.clone(),
            s.url("/v1/messages"),
            sender.token.clone(),
            target.public_id.clone(),
        );
        senders.spawn(async move {
            for i in (w..n).step_by(workers) {
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to, "body": format!("backlog message {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        });
    }
    senders.join_all().await;
    println!(
        "core bench P3: {n} messages queued on the service in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // Every event the profile will fetch, as the raw rows a bare insert writes.
    let mut rows: Vec<(i64, String, String, String)> = Vec::with_capacity(n + 1);
    let mut since = 0;
    loop {
        let page = s
            .get(&format!("/v1/sync?since={since}&limit=1000"), &target.token)
            .await
            .expect(200)
            .body;
        for e in page["events"].as_array().unwrap() {
            rows.push((
                e["seq"].as_i64().unwrap(),
                e["kind"].as_str().unwrap().to_string(),
                e["at"].as_str().unwrap().to_string(),
                e["data"].to_string(),
            ));
        }
        since = page["next"].as_i64().unwrap();
        if page["more"] != true {
            break;
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let mut bus = engine.subscribe();
    let started = Instant::now();
    engine
        .add_profile(SignIn {
            server: s.base.clone(),
            login: target.public_id.clone(),
            password: TEST_PASSWORD.into(),
            name: Some("Backlog".into()),
            color: None,
            totp_code: None,
            allow_insecure_http: false,
        })
        .await
        .unwrap();
    let last = rows.last().map_or(0, |r| r.0);
    loop {
        if let Ok(ev) = bus.recv().await
            && let ProfileEventKind::Event(e) = ev.kind
            && e.seq >= last
        {
            break;
        }
    }
    let sync_secs = started.elapsed().as_secs_f64();
    engine.shutdown().await;

    let same_secs = raw_insert_profile_schema(&rows).await;
    let raw_secs = raw_insert(&rows, None).await;
    let raw_encrypted_secs = raw_insert(&rows, Some(&DatabaseKey::generate().unwrap())).await;
    println!(
        "core bench P3: backlog of {} events synced into a new profile in {:.2} s ({:.0} events/s: fetched over the event socket, parsed, applied with the events, the messages, their conversation, the full-text index and the cursor, in the profile's SQLCipher file)",
        rows.len(),
        sync_secs,
        rows.len() as f64 / sync_secs,
    );
    println!(
        "core bench P3: baseline, the same rows inserted raw into the same schema (a new profile's SQLCipher file, its tables, indexes and full-text trigger; events, messages, the conversation and the cursor, 200 rows a statement, 5,000 a transaction): {:.2} s ({:.0} events/s): ratio {:.2} (goal ≥ 0.5)",
        same_secs,
        rows.len() as f64 / same_secs,
        same_secs / sync_secs
    );
    println!(
        "core bench P3: for scale, the events alone into one bare table: {:.2} s ({:.0} rows/s) plain, {:.2} s ({:.0} rows/s) in SQLCipher (encryption costs {:.0} %)",
        raw_secs,
        rows.len() as f64 / raw_secs,
        raw_encrypted_secs,
        rows.len() as f64 / raw_encrypted_secs,
        (raw_encrypted_secs / raw_secs - 1.0) * 100.0,
    );
}

/// P3's baseline: `rows` (every one a message from one contact) written into a new profile's
/// own schema, as raw multi-row inserts: what applying them must write at the least, without
/// fetching, parsing or deciding anything. Seconds taken.
async fn raw_insert_profile_schema(rows: &[(i64, String, String, String)]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.db");
    let key = DatabaseKey::generate().unwrap();
    // The schema as the profile's migrations make it.
    switchboard_core::store::ProfileStore::open(&path, &key)
        .await
        .unwrap()
        .close()
        .await;
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
        .foreign_keys(true)
        .pragma("key", key.sql_literal());
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    // The messages' columns, read out of the events before the clock starts.
    let messages: Vec<Option<serde_json::Value>> = rows
        .iter()
        .map(|r| (r.1 == "message.new").then(|| serde_json::from_str(&r.3).unwrap()))
        .collect();
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    let started = Instant::now();
    for (chunk, parsed) in rows.chunks(5_000).zip(messages.chunks(5_000)) {
        let in_chunk: Vec<(i64, &serde_json::Value)> = chunk
            .iter()
            .zip(parsed)
            .filter_map(|(r, m)| Some((r.0, m.as_ref()?)))
            .collect();
        let mut tx = pool.begin().await.unwrap();
        insert_events(&mut tx, chunk).await;
        if let Some((_, last)) = in_chunk.last() {
            sqlx::query(
                "INSERT INTO conversations (id, kind, title, last_message_at, last_body, unread) \
             VALUES (?, 'direct', ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET \
             last_message_at = excluded.last_message_at, last_body = excluded.last_body, \
             unread = unread + excluded.unread",
            )
            .bind(s(&last["from"]))
            .bind(s(&last["from_display_name"]))
            .bind(s(&last["sent_at"]))
            .bind(s(&last["body"]))
            .bind(in_chunk.len() as i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        for batch in in_chunk.chunks(200) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO messages (id, conversation_id, client_id, sender, sender_name, body, sent_at, seq, media) ",
            );
            q.push_values(batch, |mut b, (seq, m)| {
                b.push_bind(s(&m["id"]))
                    .push_bind(s(&m["from"]))
                    .push_bind(s(&m["client_id"]))
                    .push_bind(s(&m["from"]))
                    .push_bind(s(&m["from_display_name"]))
                    .push_bind(s(&m["body"]))
                    .push_bind(s(&m["sent_at"]))
                    .push_bind(seq)
                    .push_bind(m["media"].to_string());
            });
            q.build().execute(&mut *tx).await.unwrap();
        }
        sqlx::query("UPDATE cursor SET seq = ? WHERE id = 1")
            .bind(chunk[chunk.len() - 1].0)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    pool.close().await;
    secs
}

/// The rows into a bare WAL database (SQLCipher when `key` is given): multi-row inserts, 5,000
/// rows per transaction. Seconds taken.
async fn raw_insert(rows: &[(i64, String, String, String)], key: Option<&DatabaseKey>) -> f64 {
    let raw_dir = tempfile::tempdir().unwrap();
    let mut opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(raw_dir.path().join("raw.db"))
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
    if let Some(key) = key {
        opts = opts.pragma("key", key.sql_literal());
    }
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query("CREATE TABLE events (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let started = Instant::now();
    for chunk in rows.chunks(5_000) {
        let mut tx = pool.begin().await.unwrap();
        insert_events(&mut tx, chunk).await;
        tx.commit().await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    pool.close().await;
    secs
}

/// The event rows into `events`, 200 a statement.
async fn insert_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    rows: &[(i64, String, String, String)],
) {
    for batch in rows.chunks(200) {
        let mut q = sqlx::QueryBuilder::new("INSERT INTO events (seq, kind, at, data) ");
        q.push_values(batch, |mut b, r| {
            b.push_bind(r.0)
                .push_bind(&r.1)
                .push_bind(&r.2)
                .push_bind(&r.3);
        });
        q.build().execute(&mut **tx).await.unwrap();
    }
}
