//! Which address a per-network limit counts, through the HTTP API on every backend: behind a
//! trusted proxy each forwarded client has its own budget, a client cannot buy a fresh one by
//! writing `X-Forwarded-For` itself, and IPv6 clients share one per /64. The limit used is
//! `sms.per_ip_per_hour`, with requests fired at once as well as one by one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde_json::json;
use switchboard_server::testing::{Backend, TestServer};

switchboard_store::on_every_backend!(
    forwarded_clients_are_limited_apart_behind_a_trusted_proxy,
    forwarded_for_from_an_untrusted_peer_is_ignored,
    ipv6_clients_share_one_limit_per_64,
);

/// Codes per network per hour in these tests.
const PER_IP: usize = 2;

async fn start(backend: Backend, trusted: &[&str]) -> TestServer {
    TestServer::start_on(backend, |c| {
        c.sms.per_ip_per_hour = u32::try_from(PER_IP).unwrap();
        c.trusted_proxies = trusted.iter().map(|t| t.to_string()).collect();
    })
    .await
}

/// Asks for a registration code for test number `n` (each number its own, so only the
/// per-network limit can refuse), as a proxy forwarding for `client` would; returns the status.
async fn request_code(http: &reqwest::Client, s: &TestServer, n: usize, client: &str) -> u16 {
    let resp = http
        .post(s.url("/v1/sms/codes"))
        .header("x-forwarded-for", client)
        .json(&json!({"phone": format!("+861380013{n:04}"), "purpose": "register"}))
        .send()
        .await
        .expect("the service answers");
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    match status {
        202 => {}
        429 => assert_eq!(body["error"]["code"], "rate_limited", "{body}"),
        other => panic!("unexpected answer {other}: {body}"),
    }
    status
}

/// Fires one request per entry of `clients` at once; returns how many each client had
/// accepted.
async fn at_once<'a>(
    s: &TestServer,
    first_number: usize,
    clients: &[&'a str],
) -> BTreeMap<&'a str, usize> {
    let http = reqwest::Client::new();
    let statuses = join_all(
        clients
            .iter()
            .enumerate()
            .map(|(i, c)| request_code(&http, s, first_number + i, c)),
    )
    .await;
    let mut accepted = BTreeMap::new();
    for (client, status) in clients.iter().zip(statuses) {
        *accepted.entry(*client).or_default() += usize::from(status == 202);
    }
    accepted
}

async fn forwarded_clients_are_limited_apart_behind_a_trusted_proxy(backend: Backend) {
    // The test's connections come from 127.0.0.1: the service sees them as a proxy's.
    let s = start(backend, &["127.0.0.1"]).await;
    let http = reqwest::Client::new();
    for n in 0..PER_IP {
        assert_eq!(request_code(&http, &s, n, "203.0.113.1").await, 202);
    }
    assert_eq!(
        request_code(&http, &s, 10, "203.0.113.1").await,
        429,
        "the first client's budget is spent"
    );
    assert_eq!(
        request_code(&http, &s, 11, "203.0.113.2").await,
        202,
        "another client behind the same proxy has a budget of its own"
    );
    // A client's spoofed entries sit left of the address the proxy appended: ignored.
    assert_eq!(
        request_code(&http, &s, 12, "203.0.113.2, 203.0.113.1").await,
        429,
        "the right-most untrusted address counts, not what the client wrote"
    );
    // An IPv4-mapped IPv6 address is the IPv4 client: its second code, then its budget is spent.
    assert_eq!(request_code(&http, &s, 13, "::ffff:203.0.113.2").await, 202);
    assert_eq!(
        request_code(&http, &s, 14, "203.0.113.2").await,
        429,
        "203.0.113.2 and ::ffff:203.0.113.2 are one client"
    );

    // At once: six requests from each of two clients; each gets exactly its budget.
    let c = "198.51.100.7";
    let d = "198.51.100.8";
    let accepted = at_once(&s, 100, &[c, d, c, d, c, d, c, d, c, d, c, d]).await;
    assert_eq!(
        accepted,
        BTreeMap::from([(c, PER_IP), (d, PER_IP)]),
        "concurrent requests of two clients are limited separately, each exactly"
    );
}

async fn forwarded_for_from_an_untrusted_peer_is_ignored(backend: Backend) {
    // No trusted proxies: whatever the header says, every request is 127.0.0.1's.
    let s = start(backend, &[]).await;
    let clients: Vec<String> = (1..=6).map(|i| format!("203.0.113.{i}")).collect();
    let clients: Vec<&str> = clients.iter().map(String::as_str).collect();
    let accepted: usize = at_once(&s, 0, &clients).await.values().sum();
    assert_eq!(
        accepted, PER_IP,
        "six spoofed addresses at once share the peer's one budget"
    );
    let http = reqwest::Client::new();
    assert_eq!(request_code(&http, &s, 50, "192.0.2.99").await, 429);
}

async fn ipv6_clients_share_one_limit_per_64(backend: Backend) {
    let s = start(backend, &["127.0.0.1"]).await;
    let same_64 = [
        "2001:db8:1:2::1",
        "2001:db8:1:2::abcd:5",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
        "[2001:db8:1:2::7]:443",
        "2001:db8:1:2:8000::",
        "2001:db8:1:2::1",
    ];
    let accepted: usize = at_once(&s, 0, &same_64).await.values().sum();
    assert_eq!(
        accepted, PER_IP,
        "six addresses of one /64 at once share one budget"
    );
    let http = reqwest::Client::new();
    assert_eq!(
        request_code(&http, &s, 20, "2001:db8:1:2::99").await,
        429,
        "the /64's budget is spent"
    );
    assert_eq!(
        request_code(&http, &s, 21, "2001:db8:1:3::1").await,
        202,
        "the next /64 is another network"
    );
    // And concurrently: two /64s, four requests each.
    let (e, f) = ("2001:db8:aa:1::1", "2001:db8:aa:2::1");
    let (e2, f2) = ("2001:db8:aa:1::2", "2001:db8:aa:2::2");
    let accepted = at_once(&s, 200, &[e, f, e2, f2, e, f, e2, f2]).await;
    let per_64 = |prefix: &str| -> usize {
        accepted
            .iter()
            .filter(|(c, _)| c.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(per_64("2001:db8:aa:1:"), PER_IP);
    assert_eq!(per_64("2001:db8:aa:2:"), PER_IP);
}
