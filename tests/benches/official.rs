//! `cargo xtask bench official`: figures for the public platform, printed, never asserted.
//!
//! Fan-out: one article published (one POST, answered after the commit) to 10,000 followers,
//! whose logs each get one `article.new` in that transaction: followers/s = 10,000 / the POST's
//! time. The followers are written straight into the service's store first (registering
//! 10,000 accounts through Argon2id would take minutes and measure nothing of this).
//! Notification: with 5 official accounts live in one app (two profiles operating them), a
//! customer's message from the service accepting it to the `official.message` event applied in
//! the operator's profile, which is where its notification is raised.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot run should stop loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_core::vault::MemoryVault;
use switchboard_core::{ConnState, Engine, EventBody, ProfileEventKind, SignIn};
use switchboard_server::testing::{
    Backend, TEST_PASSWORD, TestServer, TwoAccountsOnePhone, test_cluster,
};
use switchboard_store::{NewAccount, SmsCodeRow, SmsIssue, SmsLimits, Store};

const FOLLOWERS: u32 = 10_000;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Accounts written straight into the store, each following `official`.
async fn followers(store: &dyn Store, official: &str, n: u32) {
    let now = 1_800_000_000_000;
    let limits = SmsLimits {
        cooldown_ms: 0,
        per_number: 10,
        number_since: 0,
        per_ip: u32::MAX,
        ip_since: now,
    };
    for i in 0..n {
        let phone = format!("+86139{i:08}");
        let code = SmsCodeRow {
            id: format!("bench_sms_{i}"),
            phone: phone.clone(),
            purpose: "register".into(),
            code_hash: "x".into(),
            ip: "10.9.9.9".into(),
            created_at: now,
            expires_at: now + 600_000,
            attempts: 0,
            consumed_at: None,
        };
        assert_eq!(
            store.sms_issue(&code, &limits).await.unwrap(),
            SmsIssue::Issued
        );
        let account = store
            .account_create(
                &code.id,
                &NewAccount {
                    id: format!("acc_bench_{i}"),
                    phone,
                    public_id: format!("fan{i:07}"),
                    display_name: format!("Follower {i}"),
                    password_hash: "x".into(),
                    created_at: now,
                    per_phone: 2,
                },
            )
            .await
            .unwrap();
        store
            .official_follow(official, &account.id, now)
            .await
            .unwrap();
    }
}

async fn fan_out(backend: Backend) -> String {
    let s = TestServer::start_on(backend, |_| {}).await;
    let owner = s.verified_user(1, "acme_boss").await;
    let official = s.official(&owner, "Acme News", &[], &[]).await;
    let store = switchboard_store::open(s.database_url()).await.unwrap();
    let t = Instant::now();
    followers(&*store, &official, FOLLOWERS).await;
    println!(
        "{backend:?}: {FOLLOWERS} followers written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut rates = Vec::new();
    for round in 0..3 {
        let t = Instant::now();
        s.post_as(
            &owner,
            &format!("/v1/official-accounts/{official}/articles"),
            json!({"title": format!("Issue {round}"), "body": "News.", "idempotency_key": format!("bench-{round}")}),
        )
        .await
        .expect(201);
        rates.push(f64::from(FOLLOWERS) / t.elapsed().as_secs_f64());
    }
    // Every follower's log holds every article once.
    let last = store
        .events_after(&format!("acc_bench_{}", FOLLOWERS - 1), 0, 100)
        .await
        .unwrap();
    assert_eq!(last.iter().filter(|e| e.kind == "article.new").count(), 3);
    store.close().await;
    rates.sort_by(f64::total_cmp);
    format!(
        "{:<9} {:>16.0} {:>16.0}",
        format!("{backend:?}"),
        rates[rates.len() / 2],
        rates[rates.len() - 1]
    )
}

/// Customer message → `official.message` applied in the operator's profile, 5 official
/// accounts live in one app.
async fn notification_latency() -> (f64, f64, usize) {
    let s = TestServer::start().await;
    let TwoAccountsOnePhone { work, home, .. } = s.two_accounts_one_phone().await;
    let boss = s.verified_user(20, "acme_boss").await;
    let mut officials = Vec::new();
    let mut customers = Vec::new();
    for i in 0..5u32 {
        let customer = s.user(30 + i, &format!("customer{i}")).await;
        let operator = if i % 2 == 0 { &work } else { &home };
        officials.push(
            s.official(
                &boss,
                &format!("Acme {i}"),
                &[(operator.public_id.as_str(), "support")],
                &[&customer],
            )
            .await,
        );
        customers.push(customer);
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Arc::new(MemoryVault::default()))
        .await
        .unwrap();
    let mut profiles = Vec::new();
    for (login, name) in [("alice_work", "Work"), ("alice_home", "Personal")] {
        profiles.push(
            engine
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
                .unwrap()
                .record
                .id,
        );
    }
    for p in &profiles {
        while engine.state(p).await.unwrap() != ConnState::Live {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut bus = engine.subscribe();
    let mut ms = Vec::new();
    let per_official = 60;
    for n in 0..per_official {
        for (i, customer) in customers.iter().enumerate() {
            let body = format!("question {n} to {i}");
            let t = Instant::now();
            s.post_as(
                customer,
                "/v1/messages",
                json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": officials[i], "body": body}),
            )
            .await
            .expect(201);
            loop {
                let ev = tokio::time::timeout(Duration::from_secs(10), bus.recv())
                    .await
                    .expect("the operator's profile gets it")
                    .unwrap();
                if let ProfileEventKind::Event(e) = ev.kind
                    && let EventBody::OfficialMessage(m) = &e.body
                    && m.message.body == body
                {
                    break;
                }
            }
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    engine.shutdown().await;
    ms.sort_by(f64::total_cmp);
    (pct(&ms, 0.5), pct(&ms, 0.99), ms.len())
}

#[tokio::main]
async fn main() {
    let mut rows = vec![fan_out(Backend::Sqlite).await];
    if test_cluster().is_some() {
        rows.push(fan_out(Backend::Postgres).await);
    } else {
        println!("(PostgreSQL skipped: SWITCHBOARD_TEST_PG is not set)");
    }
    println!();
    println!(
        "article to {FOLLOWERS} followers (POST → every log committed)\n{:<9} {:>16} {:>16}",
        "backend", "followers/s p50", "followers/s max"
    );
    for r in rows {
        println!("{r}");
    }
    let (p50, p99, n) = notification_latency().await;
    println!();
    println!(
        "customer message → official.message applied in the operator's profile, 5 official \
         accounts in one app ({n} messages): p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
}
