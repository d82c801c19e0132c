//! The reverse proxies whose `X-Forwarded-For` the service believes (`trusted_proxies`).

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The reverse proxies whose `X-Forwarded-For` is believed, parsed once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// An entry of `trusted_proxies` that is neither an address nor a CIDR.
#[derive(Debug, thiserror::Error)]
#[error("{entry:?} is neither an IP address nor a CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)")]
pub struct InvalidProxy {
    pub entry: String,
}

impl TrustedProxies {
    /// Parses CIDRs; a bare address is a network of one (/32 or /128).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidProxy> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                IpNet::from_str(entry)
                    .map(|net| net.trunc())
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| InvalidProxy {
                        entry: entry.to_string(),
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}
