//! `cargo xtask bench service` (part 2): the event stream under load, printed, never asserted.
//!
//! The service runs as its own process (release build) so its memory is measured alone:
//! (a) resident memory with 1,000 and 10,000 idle live sockets; (b) messages per second
//! accepted and delivered with 1,000 live recipients, and the latency from `POST` to the
//! recipient's socket. The load generator shares the machine's two cores with the service.
//! (b) runs on SQLite and, when `SWITCHBOARD_TEST_PG` names a throwaway cluster (`cargo xtask
//! bench` starts one), on PostgreSQL beside it; its CPU figure then adds the PostgreSQL
//! server processes' CPU to the service's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot run should stop loudly

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use switchboard_server::testing::{Backend, TestDb, test_cluster};

struct Service {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(db: &TestDb) -> Service {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard-server"))
        .args(["--dev", "--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_DATABASE_URL", &db.url)
        .env("SWITCHBOARD_LOG_FILE", "0")
        .env("SWITCHBOARD_LOG_FILTER", "warn")
        .env("SWITCHBOARD_SMS_RESEND_COOLDOWN_SECS", "0")
        .env("SWITCHBOARD_SMS_PER_IP_PER_HOUR", "1000000")
        .env("SWITCHBOARD_SMS_PER_NUMBER_PER_DAY", "1000")
        .env("SWITCHBOARD_SESSIONS_LOGIN_PER_IP_PER_HOUR", "1000000")
        .env("HOME", db.dir())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("listening on http://")
        .unwrap()
        .parse()
        .unwrap();
    // Keep draining stdout (the dev console prints every code) so the service never blocks.
    std::thread::spawn(move || for _ in lines {});
    Service { child, addr }
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn post(client: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {v}");
    v
}

/// Registers and signs in account `i`; returns (public ID, token).
async fn account(client: &reqwest::Client, base: &str, i: usize) -> (String, String) {
    let public_id = format!("user_{i:06}");
    let phone = format!("+86138{:08}", 10_000_000 + i);
    let token =
        switchboard_server::testing::register_remote(client, base, &phone, &public_id).await;
    (public_id, token)
}

async fn open_socket(
    addr: SocketAddr,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{addr}/v1/events?since=0")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// CPU seconds of every PostgreSQL server process on the machine (the bench's cluster is the
/// only one running).
fn postgres_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_secs)
        .sum()
}

/// CPU seconds (user + system) the process has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let mut rows = vec![run(Backend::Sqlite, true).await];
    if test_cluster().is_some() {
        rows.push(run(Backend::Postgres, false).await);
    } else {
        println!(
            "(PostgreSQL skipped: SWITCHBOARD_TEST_PG is not set; `cargo xtask bench service` sets it)"
        );
    }
    println!();
    println!(
        "{:<11} {:>11} {:>12} {:>8} {:>8} {:>14}",
        "backend", "accepted/s", "delivered/s", "p50 ms", "p99 ms", "CPU µs/msg"
    );
    for r in rows {
        println!("{r}");
    }
}

/// Runs the bench on one backend; returns its row of the side-by-side table. The idle-socket
/// memory figures do not depend on the backend and are measured once.
async fn run(backend: Backend, idle_sockets: bool) -> String {
    println!("--- {backend:?} ---");
    let db = TestDb::new(backend).await;
    let service = start_service(&db);
    let base = format!("http://{}", service.addr);
    let client = reqwest::Client::new();
    let recipients = 1000;

    let t = Instant::now();
    let (hub_id, hub_token) = account(&client, &base, 0).await;
    let mut users = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let (client, base) = (client.clone(), base.clone());
        set.spawn(async move {
            let mut out = Vec::new();
            for i in (1 + chunk..=recipients).step_by(8) {
                out.push(account(&client, &base, i).await);
            }
            out
        });
    }
    while let Some(r) = set.join_next().await {
        users.extend(r.unwrap());
    }
    for (pid, token) in &users {
        let r = post(
            &client,
            format!("{base}/v1/contacts/requests"),
            Some(&hub_token),
            json!({"public_id": pid}),
        )
        .await;
        let id = r["id"].as_str().unwrap();
        post(
            &client,
            format!("{base}/v1/contacts/requests/{id}/accept"),
            Some(token),
            json!({}),
        )
        .await;
    }
    println!(
        "stream bench: {recipients} recipients set up in {:.1} s (sender {hub_id})",
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
                idle.push(open_socket(service.addr, token).await);
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
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut readers = tokio::task::JoinSet::new();
    for (_, token) in &users {
        let mut ws = open_socket(service.addr, token).await;
        let (sent_at, latencies, delivered) =
            (sent_at.clone(), latencies.clone(), delivered.clone());
        readers.spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if let Ws::Text(t) = frame {
                    let now = Instant::now();
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if let Some(body) = v["data"]["body"].as_str() {
                        if let Some(start) = sent_at.lock().await.get(body) {
                            latencies
                                .lock()
                                .await
                                .push((now - *start).as_secs_f64() * 1000.0);
                        }
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    let total = 20_000;
    let senders = 16;
    let pg = backend == Backend::Postgres;
    let cpu_before = cpu_secs(pid) + if pg { postgres_cpu_secs() } else { 0.0 };
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let targets: Arc<Vec<String>> = Arc::new(users.iter().map(|(p, _)| p.clone()).collect());
    for s in 0..senders {
        let (client, base, token, targets, sent_at) = (
            client.clone(),
            base.clone(),
            hub_token.clone(),
            targets.clone(),
            sent_at.clone(),
        );
        set.spawn(async move {
            for n in (s..total).step_by(senders) {
                let body = format!("b{n}");
                sent_at.lock().await.insert(body.clone(), Instant::now());
                let to = &targets[n % targets.len()];
                post(
                    &client,
                    format!("{base}/v1/messages"),
                    Some(&token),
                    json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": to, "body": body}),
                )
                .await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let accepted_secs = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(60);
    while delivered.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered_secs = started.elapsed().as_secs_f64();
    let service_cpu = cpu_secs(pid) + if pg { postgres_cpu_secs() } else { 0.0 } - cpu_before;
    let got = delivered.load(Ordering::Relaxed);
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    println!(
        "messages: {total} from {senders} concurrent senders to {recipients} live recipients: accepted {:.0}/s, delivered {got} at {:.0}/s",
        total as f64 / accepted_secs,
        got as f64 / delivered_secs
    );
    println!(
        "latency POST -> recipient socket: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    println!(
        "service CPU: {:.2} s for {total} messages = {:.0} µs per message ({:.0} messages/s per core); the load generator used the rest of the 2 cores",
        service_cpu,
        service_cpu * 1e6 / total as f64,
        total as f64 / service_cpu
    );
    readers.abort_all();
    format!(
        "{:<11} {:>11.0} {:>12.0} {:>8.1} {:>8.1} {:>14.0}",
        format!("{backend:?}"),
        total as f64 / accepted_secs,
        got as f64 / delivered_secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        service_cpu * 1e6 / total as f64
    )
}
