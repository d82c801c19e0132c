//! What the service benches share: a service process, accounts, sockets, CPU readings.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each bench uses a part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use switchboard_server::testing::TestDb;

pub mod echo;

pub struct Service {
    pub child: Child,
    pub addr: SocketAddr,
    /// `http://ADDR` of the admin listener (`/metrics`), as the service announced it.
    pub admin: Option<String>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A release-built service process on `db` (several may share a PostgreSQL one), with limits
/// raised out of the load's way and `env` on top.
pub fn start_service(db: &TestDb, env: &[(&str, &str)]) -> Service {
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard-server"))
        .args(["--dev", "--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_DATABASE_URL", &db.url)
        .env("SWITCHBOARD_ADMIN_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_LOG_FILE", "0")
        .env("SWITCHBOARD_LOG_FILTER", "warn")
        .env("SWITCHBOARD_SMS_RESEND_COOLDOWN_SECS", "0")
        .env("SWITCHBOARD_SMS_PER_IP_PER_HOUR", "1000000")
        .env("SWITCHBOARD_SMS_PER_NUMBER_PER_DAY", "1000")
        .env("SWITCHBOARD_SESSIONS_LOGIN_PER_IP_PER_HOUR", "1000000")
        .env("SWITCHBOARD_LIMITS_MESSAGES_PER_MINUTE", "100000000")
        .env("SWITCHBOARD_LIMITS_GROUP_FANOUT_PER_MINUTE", "100000000")
        .env("SWITCHBOARD_LIMITS_CONTACT_REQUESTS_PER_DAY", "1000000")
        .env("HOME", db.dir())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    announced(child, true)
}

/// A service child process, once it has announced where it listens (stdout's first line,
/// `listening on http://ADDR`, then, where it has one, `admin on URL`).
pub fn announced(mut child: Child, has_admin: bool) -> Service {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("listening on ")
        .and_then(|u| u.rsplit_once("://"))
        .map(|(_, a)| a)
        .unwrap()
        .parse()
        .unwrap();
    // The admin listener is announced next, before the development-mode notice.
    let mut admin = None;
    for line in lines.by_ref().take(if has_admin { 2 } else { 0 }) {
        let Ok(line) = line else { break };
        if let Some(url) = line.strip_prefix("admin on ") {
            admin = Some(url.to_string());
            break;
        }
    }
    // Keep draining stdout (the dev console prints every code) so the service never blocks.
    std::thread::spawn(move || for _ in lines {});
    Service { child, addr, admin }
}

pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Value {
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
pub async fn account(client: &reqwest::Client, base: &str, i: usize) -> (String, String) {
    let public_id = format!("user_{i:06}");
    let phone = format!("+86138{:08}", 10_000_000 + i);
    let token =
        switchboard_server::testing::register_remote(client, base, &phone, &public_id).await;
    (public_id, token)
}

pub async fn open_socket(
    addr: SocketAddr,
    token: &str,
    since: i64,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{addr}/v1/events?since={since}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// CPU seconds of every PostgreSQL server process on the machine (the bench's cluster is the
/// only one running).
pub fn postgres_cpu_secs() -> f64 {
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
pub fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A run of messages from one sender account to every recipient's live socket.
pub struct Load<'a> {
    /// Where the recipients' sockets connect, round robin.
    pub socket_nodes: &'a [SocketAddr],
    /// Where the sending tasks post, round robin.
    pub sender_bases: &'a [String],
    /// (public ID, token) of each recipient.
    pub users: &'a [(String, String)],
    /// The sending accounts' tokens; recipient `r` is a contact of sender `r % len` (see
    /// [`senders_and_recipients`]).
    pub sender_tokens: &'a [String],
    pub total: usize,
    pub senders: usize,
    /// The service processes whose CPU counts.
    pub pids: &'a [u32],
    /// Count the PostgreSQL server processes' CPU too.
    pub with_postgres: bool,
    /// Tells this run's bodies from earlier runs' on the same database.
    pub tag: &'a str,
}

pub struct LoadResult {
    pub accepted_per_s: f64,
    pub delivered: usize,
    pub delivered_per_s: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub cpu_secs: f64,
}

pub async fn load(l: &Load<'_>) -> LoadResult {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use futures_util::StreamExt;
    use serde_json::json;
    use tokio::sync::Mutex;
    use tokio_tungstenite::tungstenite::Message as Ws;

    let client = reqwest::Client::new();
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut readers = tokio::task::JoinSet::new();
    for (i, (_, token)) in l.users.iter().enumerate() {
        // From the account's head: an earlier run's messages are not this run's work.
        let since = head(&client, &l.sender_bases[0], token).await;
        let mut ws = open_socket(l.socket_nodes[i % l.socket_nodes.len()], token, since).await;
        let (sent_at, latencies, delivered) =
            (sent_at.clone(), latencies.clone(), delivered.clone());
        readers.spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                if let Ws::Text(t) = frame {
                    let now = Instant::now();
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if let Some(body) = v["data"]["body"].as_str()
                        && let Some(start) = sent_at.lock().await.get(body)
                    {
                        latencies
                            .lock()
                            .await
                            .push((now - *start).as_secs_f64() * 1000.0);
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    let cpu = || {
        l.pids.iter().map(|p| cpu_secs(*p)).sum::<f64>()
            + if l.with_postgres {
                postgres_cpu_secs()
            } else {
                0.0
            }
    };
    let cpu_before = cpu();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let targets: Arc<Vec<String>> = Arc::new(l.users.iter().map(|(p, _)| p.clone()).collect());
    let tokens: Arc<Vec<String>> = Arc::new(l.sender_tokens.to_vec());
    let (total, senders) = (l.total, l.senders);
    for s in 0..senders {
        let tag = l.tag.to_string();
        let (client, base, tokens, targets, sent_at) = (
            client.clone(),
            l.sender_bases[s % l.sender_bases.len()].clone(),
            tokens.clone(),
            targets.clone(),
            sent_at.clone(),
        );
        set.spawn(async move {
            for n in (s..total).step_by(senders) {
                let body = format!("{tag}b{n}");
                sent_at.lock().await.insert(body.clone(), Instant::now());
                let (from, to) = message_route(n, tokens.len(), targets.len());
                post(
                    &client,
                    format!("{base}/v1/messages"),
                    Some(&tokens[from]),
                    json!({"client_id": uuid::Uuid::new_v4().to_string(), "to": targets[to], "body": body}),
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
    let cpu_secs = cpu() - cpu_before;
    let got = delivered.load(Ordering::Relaxed);
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    readers.abort_all();
    LoadResult {
        accepted_per_s: total as f64 / accepted_secs,
        delivered: got,
        delivered_per_s: got as f64 / delivered_secs,
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        max: pct(&lat, 1.0),
        cpu_secs,
    }
}

/// Sending accounts: as many as the most concurrent senders a bench runs, so concurrent
/// messages come from different accounts (each its own budget and log), as on a node with
/// thousands of clients, not all from one account.
pub const SENDING_ACCOUNTS: usize = 64;

/// `senders` sending accounts and `recipients` accounts; recipient `r` (its index in the list
/// returned) is a contact of sender `r % senders` only, so the contacts made are one per
/// recipient whatever the number of senders. Returns ([sender's token], [(public ID, token)]).
pub async fn senders_and_recipients(
    client: &reqwest::Client,
    base: &str,
    senders: usize,
    recipients: usize,
) -> (Vec<String>, Vec<(String, String)>) {
    use serde_json::json;
    assert!(senders <= recipients, "every sender needs a recipient");
    let made = |first: usize, n: usize| {
        let mut set = tokio::task::JoinSet::new();
        for chunk in 0..8 {
            let (client, base) = (client.clone(), base.to_string());
            set.spawn(async move {
                let mut out = Vec::new();
                for i in (first + chunk..first + n).step_by(8) {
                    out.push((i, account(&client, &base, i).await));
                }
                out
            });
        }
        async move {
            let mut all = Vec::with_capacity(n);
            while let Some(r) = set.join_next().await {
                all.extend(r.unwrap());
            }
            all.sort_by_key(|(i, _)| *i);
            all.into_iter().map(|(_, a)| a).collect::<Vec<_>>()
        }
    };
    let users = made(1, recipients).await;
    let hubs = made(1 + recipients, senders).await;
    for (r, (pid, token)) in users.iter().enumerate() {
        let r = post(
            client,
            format!("{base}/v1/contacts/requests"),
            Some(&hubs[r % senders].1),
            json!({"public_id": pid}),
        )
        .await;
        let id = r["id"].as_str().unwrap();
        post(
            client,
            format!("{base}/v1/contacts/requests/{id}/accept"),
            Some(token),
            json!({}),
        )
        .await;
    }
    (hubs.into_iter().map(|(_, token)| token).collect(), users)
}

/// Message `n`'s sender (an index into the sending accounts) and recipient (an index into the
/// recipients): senders take turns, and each writes to its own recipients (those
/// [`senders_and_recipients`] made its contacts) in turn.
pub fn message_route(n: usize, senders: usize, recipients: usize) -> (usize, usize) {
    let from = n % senders;
    let theirs = (recipients - from).div_ceil(senders);
    (from, from + senders * ((n / senders) % theirs))
}

/// The account's newest sequence number (`head` of a one-event page).
pub async fn head(client: &reqwest::Client, base: &str, token: &str) -> i64 {
    let page: Value = client
        .get(format!("{base}/v1/sync?since=0&limit=1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["head"].as_i64().unwrap()
}
