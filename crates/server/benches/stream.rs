//! `cargo xtask bench service` (part 2): the event stream under load, printed, never asserted.
//!
//! The service runs as its own process (release build) so its memory is measured alone:
//! (a) resident memory with 1,000 and 10,000 idle live sockets; (b) messages per second
//! accepted and delivered with 1,000 live recipients (from 64 sending accounts, each writing
//! to its own contacts), and the latency from `POST` to the recipient's socket. The load
//! generator shares the machine's two cores with the service.
//! (b) runs on SQLite and, when `SWITCHBOARD_TEST_PG` names a throwaway cluster (`cargo xtask
//! bench` starts one), on PostgreSQL beside it; its CPU figure then adds the PostgreSQL
//! server processes' CPU to the service's. (c) The same load through a plain axum +
//! tungstenite echo that stores nothing (`common::echo`), in the same run: the floor that
//! HTTP, JSON, WebSockets and the load generator set on this machine. (b) and (c) run with 16
//! concurrent senders and again with 64: a node that takes 20,000 messages a second has
//! thousands of clients, and how many requests wait together is what the group-commit writer
//! amortises a commit over.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot run should stop loudly

use std::time::{Duration, Instant};

use switchboard_server::testing::{Backend, TestDb, test_cluster};

mod common;
use common::{
    Load, LoadResult, SENDING_ACCOUNTS, echo, load, open_socket, rss_mb, senders_and_recipients,
    start_service,
};

const RECIPIENTS: usize = 1000;
const TOTAL: usize = 20_000;
/// Concurrent senders: each sends its next message once the last one was answered.
const SENDERS: [usize; 2] = [16, 64];

#[tokio::main]
async fn main() {
    if std::env::var_os(echo::ECHO_ENV).is_some() {
        return echo::serve().await;
    }
    let mut rows = run(Backend::Sqlite, true).await;
    if test_cluster().is_some() {
        rows.extend(run(Backend::Postgres, false).await);
    } else {
        println!(
            "(PostgreSQL skipped: SWITCHBOARD_TEST_PG is not set; `cargo xtask bench service` sets it)"
        );
    }
    rows.extend(run_echo().await);
    println!();
    println!(
        "{:<11} {:>7} {:>11} {:>12} {:>8} {:>8} {:>14}",
        "backend", "senders", "accepted/s", "delivered/s", "p50 ms", "p99 ms", "CPU µs/msg"
    );
    for r in rows {
        println!("{r}");
    }
}

/// (c): the reference, with 1,000 recipients whose tokens are their public IDs.
async fn run_echo() -> Vec<String> {
    println!("--- echo reference (axum + tungstenite, nothing stored) ---");
    let service = echo::start();
    let users: Vec<(String, String)> = (1..=RECIPIENTS)
        .map(|i| (format!("user_{i:06}"), format!("user_{i:06}")))
        .collect();
    let sender_tokens: Vec<String> = (1..=SENDING_ACCOUNTS)
        .map(|i| format!("user_{:06}", RECIPIENTS + i))
        .collect();
    let mut rows = Vec::new();
    for senders in SENDERS {
        let r = load(&Load {
            socket_nodes: &[service.addr],
            sender_bases: &[format!("http://{}", service.addr)],
            users: &users,
            sender_tokens: &sender_tokens,
            total: TOTAL,
            senders,
            pids: &[service.child.id()],
            with_postgres: false,
            tag: &format!("s{senders}-"),
        })
        .await;
        rows.push(report("echo", senders, &r));
    }
    rows
}

/// Prints a run's figures; returns its row of the side-by-side table.
fn report(name: &str, senders: usize, r: &LoadResult) -> String {
    println!(
        "messages: {TOTAL} from {senders} concurrent senders to {RECIPIENTS} live recipients: accepted {:.0}/s, delivered {} at {:.0}/s",
        r.accepted_per_s, r.delivered, r.delivered_per_s
    );
    println!(
        "latency POST -> recipient socket: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        r.p50, r.p99, r.max
    );
    println!(
        "service CPU: {:.2} s for {TOTAL} messages = {:.0} µs per message ({:.0} messages/s per core); the load generator used the rest of the 2 cores",
        r.cpu_secs,
        r.cpu_secs * 1e6 / TOTAL as f64,
        TOTAL as f64 / r.cpu_secs
    );
    format!(
        "{:<11} {:>7} {:>11.0} {:>12.0} {:>8.1} {:>8.1} {:>14.0}",
        name,
        senders,
        r.accepted_per_s,
        r.delivered_per_s,
        r.p50,
        r.p99,
        r.cpu_secs * 1e6 / TOTAL as f64
    )
}

/// Runs the bench on one backend; returns its rows of the side-by-side table. The idle-socket
/// memory figures do not depend on the backend and are measured once.
async fn run(backend: Backend, idle_sockets: bool) -> Vec<String> {
    println!("--- {backend:?} ---");
    let db = TestDb::new(backend).await;
    let service = start_service(&db, &[]);
    let base = format!("http://{}", service.addr);
    let client = reqwest::Client::new();
    let recipients = RECIPIENTS;

    let t = Instant::now();
    let (sender_tokens, users) =
        senders_and_recipients(&client, &base, SENDING_ACCOUNTS, recipients).await;
    println!(
        "stream bench: {recipients} recipients and {SENDING_ACCOUNTS} senders set up in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // (a) idle sockets.
    let pid = service.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    if idle_sockets {
        let base_rss = rss_mb(pid);
        let mut idle = Vec::new();
        for round in 0..10 {
            for (_, token) in &users {
                idle.push(open_socket(service.addr, token, 0).await);
            }
            if round == 0 || round == 9 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let rss = rss_mb(pid);
                let n = idle.len();
                println!(
                    "idle sockets: {n:>6}  service RSS {rss:>7.1} MB  (+{:.1} MB over {base_rss:.1} MB, {:.1} KB per socket)",
                    rss - base_rss,
                    (rss - base_rss) * 1024.0 / n as f64
                );
            }
        }
        drop(idle);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // (b) throughput and latency with one live socket per recipient.
    let mut rows = Vec::new();
    for senders in SENDERS {
        let r = load(&Load {
            socket_nodes: &[service.addr],
            sender_bases: std::slice::from_ref(&base),
            users: &users,
            sender_tokens: &sender_tokens,
            total: TOTAL,
            senders,
            pids: &[pid],
            with_postgres: backend == Backend::Postgres,
            tag: &format!("s{senders}-"),
        })
        .await;
        rows.push(report(&format!("{backend:?}"), senders, &r));
    }
    // What the loads left resident (caches, prepared statements, buffers).
    println!("service RSS after the message loads: {:.1} MB", rss_mb(pid));
    rows
}
