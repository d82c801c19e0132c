//! The event stream as a client sees it, for the suites that open `/v1/events`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each suite uses a part

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the stream of `token`'s account at `addr` from `since`.
pub async fn connect(
    addr: SocketAddr,
    token: &str,
    since: i64,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/v1/events?since={since}").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    Ok(tokio_tungstenite::connect_async(req).await?.0)
}

/// The next event, or Err with the close frame (or error) that ended the stream.
pub async fn next_event(ws: &mut Socket) -> Result<Value, String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| "no event within 10 s".to_string())?;
        match frame {
            Some(Ok(Ws::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Ws::Close(c))) => return Err(format!("closed: {c:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("error: {e}")),
            None => return Err("ended".into()),
        }
    }
}

/// Sends a text message; the answer's status.
pub async fn send_message(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    client_id: &str,
    to: &str,
    body: &str,
) -> u16 {
    http.post(format!("{base}/v1/messages"))
        .bearer_auth(token)
        .json(&json!({"client_id": client_id, "to": to, "body": body}))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Every event of the account after `since`, through `/v1/sync` at `base`.
pub async fn sync_all(http: &reqwest::Client, base: &str, token: &str, since: i64) -> Vec<Value> {
    let mut since = since;
    let mut all = Vec::new();
    loop {
        let page: Value = http
            .get(format!("{base}/v1/sync?since={since}&limit=1000"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.extend(page["events"].as_array().unwrap().iter().cloned());
        since = page["next"].as_i64().unwrap();
        if !page["more"].as_bool().unwrap() {
            return all;
        }
    }
}

/// The account's newest sequence number.
pub async fn head(http: &reqwest::Client, base: &str, token: &str) -> i64 {
    sync_all(http, base, token, 0)
        .await
        .last()
        .map_or(0, |e| e["seq"].as_i64().unwrap())
}

/// Checks a received run of events: consecutive sequence numbers from `since + 1`, and the
/// `message.new` bodies of each sender in the order that sender sent them (`s<n>-<k>`).
pub fn assert_once_in_order(events: &[Value], since: i64, senders: usize, per_sender: usize) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["seq"].as_i64().unwrap(),
            since + 1 + i as i64,
            "consecutive sequence numbers: no gap, no duplicate"
        );
    }
    let mut next = vec![0usize; senders];
    for e in events.iter().filter(|e| e["kind"] == "message.new") {
        let body = e["data"]["body"].as_str().unwrap();
        let (s, k) = body
            .trim_start_matches('s')
            .split_once('-')
            .expect("s<n>-<k>");
        let (s, k): (usize, usize) = (s.parse().unwrap(), k.parse().unwrap());
        assert_eq!(k, next[s], "sender {s}'s messages arrive once, in order");
        next[s] += 1;
    }
    assert_eq!(next, vec![per_sender; senders], "every message arrived");
}

/// A `switchboard-server` process in development mode on `db`, on a port of its own; killed
/// (`kill -9`) when dropped.
pub struct NodeProcess {
    pub child: std::process::Child,
    pub base: String,
    pub addr: SocketAddr,
}

impl NodeProcess {
    pub fn spawn(db: &str, home: &std::path::Path, env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard-server"))
            .args(["--dev", "--listen", "127.0.0.1:0"])
            .env("SWITCHBOARD_DATABASE_URL", db)
            .env("SWITCHBOARD_ADMIN_LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_LOG_FILE", "0")
            .env("SWITCHBOARD_LOG_FILTER", "warn")
            .env("SWITCHBOARD_SMS_RESEND_COOLDOWN_SECS", "0")
            .env("HOME", home)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let base = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        // Keep reading, so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let addr = base
            .rsplit_once("://")
            .and_then(|(_, a)| a.parse().ok())
            .unwrap();
        Self { child, base, addr }
    }

    /// `kill -9`: no shutdown, no flush, sockets cut.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
