//! `cargo xtask bench scale`: one load on SQLite ×1 and PostgreSQL ×1, ×2, ×3 nodes, printed,
//! never asserted.
//!
//! Each node is its own release-built process; the recipients' sockets and the sending tasks
//! are spread over the nodes round robin, so with several nodes most messages cross from the
//! node that accepts them to the node holding the recipient's socket (through NOTIFY and a
//! read of the log). CPU per 1,000 messages adds every node's and (on PostgreSQL) the
//! database server's. On two shared cores no gain is expected from more nodes: the figures
//! show what crossing nodes costs per message, and that nothing regresses. The last row sends
//! one NOTIFY per committed write instead of one per node per batch window, for comparison.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot run should stop loudly

mod common;

use common::{Load, load, senders_and_recipients, start_service};
use switchboard_server::testing::{Backend, TestDb, test_cluster};

const RECIPIENTS: usize = 1000;
const MESSAGES: usize = 10_000;
const SENDERS: usize = 16;

struct Row {
    label: String,
    accepted: f64,
    delivered: f64,
    p50: f64,
    p99: f64,
    cpu_per_1000: f64,
    notify_per_1000: Option<f64>,
}

#[tokio::main]
async fn main() {
    let mut rows = Vec::new();
    {
        let db = TestDb::new(Backend::Sqlite).await;
        let accounts = accounts(&db).await;
        rows.push(run_on(&db, &accounts, 1, "batched", "SQLite ×1").await);
    }
    if test_cluster().is_some() {
        // One database for every PostgreSQL run: the same accounts and sessions.
        let db = TestDb::new(Backend::Postgres).await;
        let accounts = accounts(&db).await;
        for (nodes, notify, label) in [
            (1, "batched", "PostgreSQL ×1"),
            (2, "batched", "PostgreSQL ×2"),
            (3, "batched", "PostgreSQL ×3"),
            (3, "per_write", "PostgreSQL ×3, NOTIFY per write"),
        ] {
            rows.push(run_on(&db, &accounts, nodes, notify, label).await);
        }
    } else {
        println!(
            "(PostgreSQL skipped: SWITCHBOARD_TEST_PG is not set; `cargo xtask bench scale` sets it)"
        );
    }
    println!();
    println!(
        "{RECIPIENTS} live recipients, {MESSAGES} messages from {SENDERS} concurrent senders, sockets and senders spread over the nodes"
    );
    println!(
        "{:<34} {:>11} {:>12} {:>8} {:>8} {:>16} {:>14}",
        "service",
        "accepted/s",
        "delivered/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/1000 msg",
        "NOTIFY/1000"
    );
    for r in rows {
        println!(
            "{:<34} {:>11.0} {:>12.0} {:>8.1} {:>8.1} {:>16.0} {:>14}",
            r.label,
            r.accepted,
            r.delivered,
            r.p50,
            r.p99,
            r.cpu_per_1000,
            r.notify_per_1000.map_or("-".into(), |n| format!("{n:.0}"))
        );
    }
}

/// NOTIFY statements the nodes sent so far, from their admin listeners' metrics.
async fn notifies(admins: &[String]) -> f64 {
    let client = reqwest::Client::new();
    let mut total = 0.0;
    for admin in admins {
        let Ok(r) = client.get(format!("{admin}/metrics")).send().await else {
            continue;
        };
        let text = r.text().await.unwrap_or_default();
        total += text
            .lines()
            .find(|l| l.starts_with("switchboard_cluster_notify_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    total
}

/// The senders' tokens and the recipients, made through a node started for the purpose.
async fn accounts(db: &TestDb) -> (Vec<String>, Vec<(String, String)>) {
    let service = start_service(db, &[]);
    let base = format!("http://{}", service.addr);
    senders_and_recipients(&reqwest::Client::new(), &base, SENDERS, RECIPIENTS).await
}

async fn run_on(
    db: &TestDb,
    (senders, users): &(Vec<String>, Vec<(String, String)>),
    nodes: usize,
    notify: &str,
    label: &str,
) -> Row {
    println!("--- {label} ---");
    let services: Vec<_> = (0..nodes)
        .map(|_| start_service(db, &[("SWITCHBOARD_CLUSTER_NOTIFY", notify)]))
        .collect();
    let bases: Vec<String> = services
        .iter()
        .map(|s| format!("http://{}", s.addr))
        .collect();
    let admins: Vec<String> = services.iter().filter_map(|s| s.admin.clone()).collect();
    let notify_before = notifies(&admins).await;
    let addrs: Vec<_> = services.iter().map(|s| s.addr).collect();
    let pids: Vec<u32> = services.iter().map(|s| s.child.id()).collect();
    let r = load(&Load {
        socket_nodes: &addrs,
        sender_bases: &bases,
        users,
        sender_tokens: senders,
        total: MESSAGES,
        senders: SENDERS,
        pids: &pids,
        with_postgres: db.backend == Backend::Postgres,
        tag: &format!("{nodes}{notify}"),
    })
    .await;
    let notify_after = notifies(&admins).await;
    println!(
        "delivered {} of {MESSAGES}: {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, CPU {:.2} s",
        r.delivered, r.delivered_per_s, r.p50, r.p99, r.cpu_secs
    );
    Row {
        label: label.to_string(),
        accepted: r.accepted_per_s,
        delivered: r.delivered_per_s,
        p50: r.p50,
        p99: r.p99,
        cpu_per_1000: r.cpu_secs * 1e6 / MESSAGES as f64,
        notify_per_1000: (db.backend == Backend::Postgres)
            .then(|| (notify_after - notify_before) * 1000.0 / MESSAGES as f64),
    }
}
