//! `cargo xtask bench service`: figures for the service, printed, never asserted.
//!
//! Sign-in latency is dominated by Argon2id at the specified cost; the point of measuring the
//! wrong-password and unknown-account paths beside the right one is that they must cost the
//! same (no timing oracle for who is registered).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot run should stop loudly

use std::time::Instant;

use serde_json::json;
use switchboard_server::testing::{Backend, TestServer, test_cluster};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn time_sign_ins(s: &TestServer, login: &str, password: &str, n: usize) -> (f64, f64, u16) {
    let mut ms = Vec::with_capacity(n);
    let mut status = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = s
            .post(
                "/v1/sessions",
                json!({"login": login, "password": password, "device_name": "bench"}),
            )
            .await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        status = r.status;
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99), status)
}

#[tokio::main]
async fn main() {
    let mut rows = vec![run(Backend::Sqlite).await];
    if test_cluster().is_some() {
        rows.push(run(Backend::Postgres).await);
    } else {
        println!(
            "(PostgreSQL skipped: SWITCHBOARD_TEST_PG is not set; `cargo xtask bench service` sets it)"
        );
    }
    println!();
    println!(
        "{:<11} {:>14} {:>12} {:>12}",
        "backend", "sign-in p50 ms", "sign-ins/s", "transfers/s"
    );
    for r in rows {
        println!("{r}");
    }
}

/// The bench on one backend; returns its row of the side-by-side table.
async fn run(backend: Backend) -> String {
    println!("--- {backend:?} ---");
    let s = TestServer::start_on(backend, |c| {
        c.sessions.throttle_after = 1_000_000;
        c.sessions.lock_after = 1_000_000;
        c.sessions.login_per_ip_per_hour = 1_000_000;
    })
    .await;
    s.register("+8613800138000", "alice_work", "work secret 2026")
        .await;
    s.register("+8613800138000", "alice_home", "home secret 2026")
        .await;
    s.register("+8613800138001", "bob_single", "bob secret 2026")
        .await;

    let n = 40;
    println!(
        "service bench: sign-in latency over {n} sequential requests (Argon2id m=19 MiB, t=2, p=1)"
    );
    println!(
        "{:<44} {:>9} {:>9} {:>7}",
        "path", "p50 ms", "p99 ms", "status"
    );
    let mut right_p50 = 0.0;
    for (label, login, pw) in [
        (
            "public ID, right password",
            "alice_work",
            "work secret 2026",
        ),
        (
            "public ID, wrong password",
            "alice_work",
            "not the password",
        ),
        ("unknown public ID", "nobody_here", "not the password"),
        (
            "phone with 1 account, right password",
            "+8613800138001",
            "bob secret 2026",
        ),
        (
            "phone with 1 account, wrong password",
            "+8613800138001",
            "not the password",
        ),
        (
            "phone with 2 accounts, right password (409)",
            "+8613800138000",
            "home secret 2026",
        ),
        ("unregistered phone", "+8613800138009", "not the password"),
    ] {
        let (p50, p99, status) = time_sign_ins(&s, login, pw, n).await;
        if label == "public ID, right password" {
            right_p50 = p50;
        }
        println!("{label:<44} {p50:>9.1} {p99:>9.1} {status:>7}");
    }

    // Throughput with concurrent clients: Argon2 runs on two permits (19 MiB each).
    let total = 80;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let base = s.base.clone();
    for _ in 0..8 {
        let base = base.clone();
        set.spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..total / 8 {
                client
                    .post(format!("{base}/v1/sessions"))
                    .json(&json!({"login": "alice_work", "password": "work secret 2026", "device_name": "b"}))
                    .send()
                    .await
                    .unwrap();
            }
        });
    }
    while set.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    let sign_ins_per_sec = total as f64 / secs;
    println!(
        "sign-ins with 8 concurrent clients: {:.1}/s ({total} in {secs:.2} s)",
        total as f64 / secs
    );

    // Transfers: 8 concurrent clients moving money between two verified contacts.
    let t_a = s.sign_in("alice_work", "work secret 2026").await;
    let t_b = s.sign_in("bob_single", "bob secret 2026").await;
    for t in [&t_a, &t_b] {
        s.call(
            reqwest::Method::POST,
            "/v1/me/identity",
            Some(t),
            Some(json!({"legal_name": "张三", "id_number": "11010519491231002X"})),
        )
        .await;
    }
    let r = s
        .call(
            reqwest::Method::POST,
            "/v1/contacts/requests",
            Some(&t_a),
            Some(json!({"public_id": "bob_single"})),
        )
        .await;
    let rid = r.body["id"].as_str().unwrap().to_string();
    s.call(
        reqwest::Method::POST,
        &format!("/v1/contacts/requests/{rid}/accept"),
        Some(&t_b),
        None,
    )
    .await;
    for t in [&t_a, &t_b] {
        s.call(
            reqwest::Method::POST,
            "/v1/wallet/topups",
            Some(t),
            Some(json!({"amount": 5_000_000, "idempotency_key": uuid::Uuid::new_v4().to_string()})),
        )
        .await;
    }
    let per_client = 500;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for c in 0..8 {
        let (base, from, to) = if c % 2 == 0 {
            (s.base.clone(), t_a.clone(), "bob_single")
        } else {
            (s.base.clone(), t_b.clone(), "alice_work")
        };
        set.spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..per_client {
                let r = client
                    .post(format!("{base}/v1/wallet/transfers"))
                    .bearer_auth(&from)
                    .json(&json!({"to": to, "amount": 1, "idempotency_key": uuid::Uuid::new_v4().to_string()}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        });
    }
    while set.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    println!(
        "transfers with 8 concurrent clients: {:.0}/s ({} in {secs:.2} s, load generator in the same process)",
        (8 * per_client) as f64 / secs,
        8 * per_client
    );
    format!(
        "{:<11} {:>14.1} {:>12.1} {:>12.0}",
        format!("{backend:?}"),
        right_p50,
        sign_ins_per_sec,
        (8 * per_client) as f64 / secs
    )
}
