//! Who the client is, for the per-network limits (SMS codes and sign-ins per IP).
//!
//! The connection's peer counts, unless the peer is one of the `trusted_proxies`: then the
//! address those proxies report in `X-Forwarded-For` does. Only what trusted proxies appended
//! is believed: anything a client writes into the header itself sits to the left of its real
//! address, which the first proxy appends, and the walk from the right stops there.
//!
//! A limit counts per IPv4 address, but per IPv6 /64: one subscriber usually holds a whole
//! /64, and counting per address would give each of them 2^64 fresh budgets.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::Ipv6Net;
use switchboard_service::proxies::TrustedProxies;

use crate::state::App;

/// The header reverse proxies append the address they were connected from to.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address: `peer` unless `peer` is a trusted proxy, then the right-most address
/// of `X-Forwarded-For` that is not a trusted proxy. A malformed header, or a malformed entry
/// reached before that address, means the peer counts: a trusted proxy never writes one, so
/// the request did not come the way the configuration says.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    // Several proxies may each have added a header line rather than extended the one line;
    // in order, the lines are one list.
    let mut entries = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        let Ok(value) = value.to_str() else {
            return peer;
        };
        entries.extend(value.split(',').map(str::trim));
    }
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_forwarded(entry) else {
            return peer;
        };
        client = ip.to_canonical();
        if !trusted.contains(client) {
            return client;
        }
    }
    // Every hop was a trusted proxy (a request from inside): the first one is the client.
    client
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`[v6]:port` or `v4:port`),
/// as some proxies write it.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    IpAddr::from_str(entry)
        .or_else(|_| SocketAddr::from_str(entry).map(|s| s.ip()))
        .ok()
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| Ipv6Addr::from_str(e).ok())
                .map(IpAddr::V6)
        })
}

/// The key a per-network limit counts under: the IPv4 address, or the IPv6 /64
/// (`2001:db8:1:2::/64`).
pub fn rate_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => Ipv6Net::new_assert(v6, 64).trunc().to_string(),
    }
}

/// The client's network as a rate-limit key (see [`rate_key`]); `unknown` when served
/// without a connection address (an in-process request).
pub struct ClientIp(pub String);

impl FromRequestParts<App> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(
                    || "unknown".to_string(),
                    |peer| {
                        rate_key(client_addr(
                            peer.0.ip(),
                            &parts.headers,
                            &app.trusted_proxies,
                        ))
                    },
                ),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(X_FORWARDED_FOR, v.parse().unwrap());
        }
        headers
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    #[test]
    fn proxies_parse_as_cidrs_and_bare_addresses() {
        let t = proxies(&["10.0.0.0/8", " 192.168.1.7 ", "2001:db8::/32", "::1"]);
        assert!(t.contains(ip("10.200.3.4")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(
            !t.contains(ip("192.168.1.8")),
            "a bare address is a /32, not its network"
        );
        assert!(t.contains(ip("2001:db8:ffff::1")));
        assert!(t.contains(ip("::1")));
        assert!(!t.contains(ip("::2")), "a bare IPv6 address is a /128");
        assert!(
            t.contains(ip("::ffff:10.1.2.3")),
            "an IPv4-mapped peer is its IPv4 address"
        );
        assert!(TrustedProxies::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_bad_proxy_entry_is_named() {
        for bad in ["10.0.0.0/33", "localhost", "10.0.0", ""] {
            let e = TrustedProxies::parse(&["127.0.0.1", bad]).unwrap_err();
            assert_eq!(e.entry, bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn an_untrusted_peer_counts_whatever_it_claims() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = xff(&["203.0.113.9"]);
        assert_eq!(client_addr(ip("198.51.100.1"), &h, &t), ip("198.51.100.1"));
        assert_eq!(
            client_addr(ip("198.51.100.1"), &h, &TrustedProxies::default()),
            ip("198.51.100.1"),
            "without trusted proxies the header is never read"
        );
    }

    #[test]
    fn behind_proxies_the_right_most_untrusted_address_counts() {
        let t = proxies(&["10.0.0.0/8"]);
        // The client spoofed 1.1.1.1; its real address is what the first proxy appended.
        let h = xff(&["1.1.1.1, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &t), ip("203.0.113.9"));
        // The same list split over several header lines.
        let h = xff(&["1.1.1.1", "203.0.113.9", "10.0.0.2"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &t), ip("203.0.113.9"));
        // Ports and brackets as some proxies write them; mapped addresses as IPv4.
        let h = xff(&["[2001:db8::5]:443"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &t), ip("2001:db8::5"));
        let h = xff(&["[2001:db8::5]"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &t), ip("2001:db8::5"));
        let h = xff(&["203.0.113.9:5000"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &t), ip("203.0.113.9"));
        let h = xff(&["::ffff:203.0.113.9"]);
        assert_eq!(
            client_addr(ip("::ffff:10.0.0.1"), &h, &t),
            ip("203.0.113.9")
        );
        // Only trusted hops: a request from inside; the first of them is the client.
        let h = xff(&["10.9.9.9, 10.0.0.2"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &t), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(
            client_addr(ip("10.0.0.1"), &HeaderMap::new(), &t),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_malformed_header_means_the_peer() {
        let t = proxies(&["10.0.0.0/8"]);
        for bad in [
            "not-an-ip",
            "203.0.113.9, ",
            "203.0.113.9,,10.0.0.2",
            "1.2.3",
        ] {
            assert_eq!(
                client_addr(ip("10.0.0.1"), &xff(&[bad]), &t),
                ip("10.0.0.1"),
                "{bad:?}"
            );
        }
        let mut h = HeaderMap::new();
        h.append(
            X_FORWARDED_FOR,
            axum::http::HeaderValue::from_bytes(b"203.0.113.\xff").unwrap(),
        );
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &t), ip("10.0.0.1"));
        // Garbage the client wrote left of its real address is never reached.
        let h = xff(&["garbage, 203.0.113.9"]);
        assert_eq!(client_addr(ip("10.0.0.1"), &h, &t), ip("203.0.113.9"));
    }

    #[test]
    fn limits_count_per_ipv4_address_and_per_ipv6_64() {
        assert_eq!(rate_key(ip("203.0.113.9")), "203.0.113.9");
        assert_eq!(rate_key(ip("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(rate_key(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(
            rate_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(rate_key(ip("2001:db8:1:3::1")), "2001:db8:1:3::/64");
    }
}
