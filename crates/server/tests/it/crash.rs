//! Crash safety: `kill -9` the service while transfers stream in, restart it, and check that
//! the ledger holds every invariant and every acknowledged transfer is there exactly once;
//! the same for messages, which SQLite writes many to a transaction (group commit). And what
//! SQLite commits reaches the database file itself in the background, not in a request's commit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use crate::common;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::NodeProcess;
use serde_json::{Value, json};
use switchboard_server::testing::{Backend, TestDb, TestServer, register_remote};

/// Runs one statement straight on the database, behind the service's back.
async fn raw_sql(url: &str, sql: &'static str) -> Result<(), String> {
    let result = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let r = sqlx::query(sql).execute(&pool).await.map(|_| ());
        pool.close().await;
        r
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let r = sqlx::query(sql).execute(&pool).await.map(|_| ());
        pool.close().await;
        r
    };
    result.map_err(|e| e.to_string())
}

fn spawn(db: &str, home: &Path) -> (NodeProcess, String) {
    let node = NodeProcess::spawn(db, home, &[]);
    let base = node.base.clone();
    (node, base)
}

fn ledger_check(db: &str, home: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard-server"))
        .args(["--database", db, "ledger", "check"])
        .env("HOME", home)
        .env("SWITCHBOARD_LOG_FILE", "0")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Two accounts that are contacts: (alice's token, bob's token).
async fn alice_and_bob(http: &reqwest::Client, base: &str) -> (String, String) {
    let alice = register_remote(http, base, "+8613800138001", "alice_w").await;
    let bob = register_remote(http, base, "+8613800138002", "bob_the_2nd").await;
    let (_, r) = post(
        http,
        format!("{base}/v1/contacts/requests"),
        Some(&alice),
        json!({"public_id": "bob_the_2nd"}),
    )
    .await;
    let rid = r["id"].as_str().unwrap().to_string();
    post(
        http,
        format!("{base}/v1/contacts/requests/{rid}/accept"),
        Some(&bob),
        json!({}),
    )
    .await;
    (alice, bob)
}

#[tokio::test]
async fn kill_dash_nine_during_transfers_loses_and_duplicates_nothing() {
    let test_db = TestDb::new(Backend::from_env()).await;
    let (db, home) = (test_db.url.clone(), test_db.dir().to_path_buf());
    let http = reqwest::Client::new();
    let (mut child, base) = spawn(&db, &home);
    let (alice, bob) = alice_and_bob(&http, &base).await;
    let initial = 1_000_000;
    post(
        &http,
        format!("{base}/v1/wallet/topups"),
        Some(&alice),
        json!({"amount": initial, "idempotency_key": "seed"}),
    )
    .await;

    // Every transfer request ever sent: (key, amount, transaction id once acknowledged).
    let mut sent: Vec<(String, i64, Option<String>)> = Vec::new();
    let crashes = 3;
    let mut base = base;
    for crash in 0..crashes {
        let stream = {
            let (http, base, alice) = (http.clone(), base.clone(), alice.clone());
            let start = sent.len();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for n in 0.. {
                    let key = format!("t{}", start + n);
                    let amount = 1 + (start + n) as i64 % 97;
                    mine.push((key.clone(), amount, None));
                    let body =
                        json!({"to": "bob_the_2nd", "amount": amount, "idempotency_key": key});
                    match http
                        .post(format!("{base}/v1/wallet/transfers"))
                        .bearer_auth(&alice)
                        .json(&body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 201 => {
                            let v: Value = r.json().await.unwrap_or(Value::Null);
                            if let Some(id) = v["transaction_id"].as_str() {
                                mine.last_mut().unwrap().2 = Some(id.to_string());
                            }
                        }
                        _ => return mine,
                    }
                }
                mine
            })
        };
        tokio::time::sleep(Duration::from_millis(150 + 100 * crash)).await;
        child.kill(); // SIGKILL: no shutdown, no flush
        sent.extend(stream.await.unwrap());

        let (ok, said) = ledger_check(&db, &home);
        assert!(ok, "after crash {crash}: {said}");
        assert!(said.contains("ledger ok"), "{said}");
        let (c, b) = spawn(&db, &home);
        (child, base) = (c, b);
    }

    // Every acknowledged transfer answers its retry with the same transaction; every
    // unacknowledged one lands at most once when retried.
    let mut ids = HashSet::new();
    for (key, amount, acked) in &sent {
        let body = json!({"to": "bob_the_2nd", "amount": amount, "idempotency_key": key});
        let (st, v) = post(
            &http,
            format!("{base}/v1/wallet/transfers"),
            Some(&alice),
            body,
        )
        .await;
        assert_eq!(st, 201, "{key}: {v}");
        let id = v["transaction_id"].as_str().unwrap().to_string();
        if let Some(acked) = acked {
            assert_eq!(
                &id, acked,
                "{key} is the acknowledged transfer, not a second one"
            );
        }
        assert!(ids.insert(id), "one transaction per key");
    }
    let total: i64 = sent.iter().map(|(_, a, _)| a).sum();
    let wallet: Value = http
        .get(format!("{base}/v1/wallet"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        wallet["balance"], total,
        "bob has exactly every transfer once"
    );
    let mut history = HashSet::new();
    let mut before: Option<i64> = None;
    loop {
        let q = before.map_or(String::new(), |b| format!("&before={b}"));
        let page: Value = http
            .get(format!("{base}/v1/wallet/transactions?limit=200{q}"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for t in page["transactions"].as_array().unwrap() {
            if t["kind"] == "transfer" {
                assert!(
                    history.insert(t["id"].as_str().unwrap().to_string()),
                    "no transfer twice in the history"
                );
            }
        }
        match page["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(history, ids);
    let acked = sent.iter().filter(|s| s.2.is_some()).count();
    println!(
        "{crashes} kill -9 crashes, {} transfers sent, {acked} acknowledged before the crash",
        sent.len()
    );
    child.kill();
    let (ok, said) = ledger_check(&db, &home);
    assert!(ok, "{said}");
}

/// Senders post at once, so the writer commits many messages together; `kill -9` mid-stream.
/// Every message acknowledged before a crash is in the recipient's log after it, once; a
/// retry of any sent `client_id` is answered with the same message and never adds one.
#[tokio::test]
async fn kill_dash_nine_while_messages_stream_in_loses_no_acknowledged_message() {
    let test_db = TestDb::new(Backend::from_env()).await;
    let (db, home) = (test_db.url.clone(), test_db.dir().to_path_buf());
    let http = reqwest::Client::new();
    let env = [("SWITCHBOARD_LIMITS_MESSAGES_PER_MINUTE", "1000000")];
    let mut child = NodeProcess::spawn(&db, &home, &env);
    let mut base = child.base.clone();
    let (alice, bob) = alice_and_bob(&http, &base).await;

    // Every message ever sent: (client_id, body, message id once acknowledged).
    let mut sent: Vec<(String, String, Option<String>)> = Vec::new();
    for crash in 0..2u64 {
        let mut senders = tokio::task::JoinSet::new();
        for w in 0..8 {
            let (http, base, alice) = (http.clone(), base.clone(), alice.clone());
            senders.spawn(async move {
                let mut mine = Vec::new();
                for n in 0u32.. {
                    let client_id = format!("00000000-0000-4000-{crash:04}-{w:04}{n:08}");
                    let text = format!("m {crash} {w} {n}");
                    mine.push((client_id.clone(), text.clone(), None));
                    let body = json!({"client_id": client_id, "to": "bob_the_2nd", "body": text});
                    match http
                        .post(format!("{base}/v1/messages"))
                        .bearer_auth(&alice)
                        .json(&body)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 201 => {
                            let v: Value = r.json().await.unwrap_or(Value::Null);
                            if let Some(id) = v["id"].as_str() {
                                mine.last_mut().unwrap().2 = Some(id.to_string());
                            }
                        }
                        _ => return mine,
                    }
                }
                mine
            });
        }
        tokio::time::sleep(Duration::from_millis(300 + 200 * crash)).await;
        child.kill();
        for mine in senders.join_all().await {
            sent.extend(mine);
        }
        child = NodeProcess::spawn(&db, &home, &env);
        base = child.base.clone();
    }
    let acked: Vec<&(String, String, Option<String>)> =
        sent.iter().filter(|s| s.2.is_some()).collect();
    assert!(
        acked.len() > 50,
        "the load reached the writer: {} acknowledged",
        acked.len()
    );

    let bobs_messages = async |base: &str| -> Vec<String> {
        common::sync_all(&http, base, &bob, 0)
            .await
            .into_iter()
            .filter(|e| e["kind"] == "message.new")
            .map(|e| e["data"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let before_retries = bobs_messages(&base).await;
    let have: HashSet<&String> = before_retries.iter().collect();
    assert_eq!(
        have.len(),
        before_retries.len(),
        "no message twice in the log"
    );
    for (client_id, _, id) in &acked {
        assert!(
            have.contains(id.as_ref().unwrap()),
            "{client_id} was acknowledged and then lost"
        );
    }
    for (client_id, text, acked) in &sent {
        let (st, v) = post(
            &http,
            format!("{base}/v1/messages"),
            Some(&alice),
            json!({"client_id": client_id, "to": "bob_the_2nd", "body": text}),
        )
        .await;
        assert_eq!(st, 201, "{client_id}: {v}");
        if let Some(acked) = acked {
            assert_eq!(v["id"].as_str(), Some(acked.as_str()), "{client_id}");
        }
    }
    let after = bobs_messages(&base).await;
    let unique: HashSet<&String> = after.iter().collect();
    assert_eq!(
        unique.len(),
        after.len(),
        "no message twice after the retries"
    );
    assert_eq!(after.len(), sent.len(), "each client_id once");
    println!(
        "2 kill -9 crashes, {} messages sent, {} acknowledged before the crash",
        sent.len(),
        acked.len()
    );
    child.kill();
}

#[tokio::test]
async fn ledger_check_names_the_first_violation_and_the_journal_cannot_be_rewritten() {
    let test_db = TestDb::new(Backend::from_env()).await;
    let (db, home) = (test_db.url.clone(), test_db.dir().to_path_buf());
    let http = reqwest::Client::new();
    let (mut child, base) = spawn(&db, &home);
    let alice = register_remote(&http, &base, "+8613800138001", "alice_w").await;
    let (st, _) = post(
        &http,
        format!("{base}/v1/wallet/topups"),
        Some(&alice),
        json!({"amount": 500, "idempotency_key": "k"}),
    )
    .await;
    assert_eq!(st, 201);
    child.kill();
    assert!(ledger_check(&db, &home).0);

    let rewrite = raw_sql(&db, "UPDATE entries SET amount = amount * 2").await;
    assert!(
        rewrite.unwrap_err().contains("append-only"),
        "entries are append-only"
    );
    let erase = raw_sql(&db, "DELETE FROM journal").await;
    assert!(erase.unwrap_err().contains("append-only"));
    // The cached balance is the one thing that can drift; the check catches it.
    raw_sql(
        &db,
        "UPDATE books SET balance = balance + 1 WHERE kind = 'wallet'",
    )
    .await
    .unwrap();
    let (ok, said) = ledger_check(&db, &home);
    assert!(!ok, "a tampered ledger fails the check");
    assert!(
        said.contains("caches 501 but its entries sum to 500"),
        "{said}"
    );
}

/// How far SQLite's WAL reaches and how much of it is copied into the database file, read from
/// the WAL index (`<db>-shm`, whose layout sqlite.org/walformat.html documents): `mxFrame` at
/// byte 16 of the header, `nBackfill` at byte 96, both in the machine's byte order.
fn wal_frames(db: &str) -> (u32, u32) {
    let shm = std::fs::read(format!("{db}-shm")).unwrap();
    let at = |i: usize| u32::from_ne_bytes(shm[i..i + 4].try_into().unwrap());
    (at(16), at(96))
}

/// The service's writer never copies its WAL into the database file while a request waits
/// (it would, at the WAL's 16,384th page, in the commit that crossed it): a checkpointer on a
/// connection of its own does, in the background. A few messages, far below that page, are in
/// the file itself within seconds. Fails without the checkpointer: nothing is ever copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_sqlite_commits_reaches_the_database_file_in_the_background() {
    let s = TestServer::start_on(Backend::Sqlite, |_| {}).await;
    let alice = s.user(1, "alice_ck").await;
    let bob = s.user(2, "bob_ck").await;
    s.befriend(&alice, &bob).await;
    for i in 0..20 {
        s.post_as(
            &alice,
            "/v1/messages",
            json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": "bob_ck",
                   "body": format!("to the file {i}")}),
        )
        .await
        .expect(201);
    }
    let db = s
        .database_url()
        .strip_prefix("sqlite://")
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (frames, copied) = wal_frames(&db);
        if frames > 0 && copied == frames {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after 10 s, {copied} of the WAL's {frames} pages are in the database file"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
