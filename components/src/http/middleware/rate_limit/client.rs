//! Who a request comes from, for the rate limits: its bearer key or its
//! client address, the address read from `X-Forwarded-For` only when the
//! peer is a proxy the operator trusts.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::OnceLock;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderMap};
use ipnet::IpNet;

use crate::http::rate_limit_config::ClientKeyKind;

/// One client's identity. A bearer key is kept as a keyed hash: the
/// limiter needs to tell keys apart, not to hold secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// A client address (IPv6 as its /64).
    Address(IpAddr),
    /// A hash of the bearer key.
    Bearer(u64),
}

/// The peers whose forwarding header is believed.
#[derive(Debug, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub(crate) fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(&addr))
    }

    /// The client's address: the peer, unless the peer is trusted; then
    /// the nearest address in `X-Forwarded-For` that is not a trusted
    /// proxy (walking from the right, since each proxy appends its peer
    /// and only the entries our proxies added can be believed).
    pub(crate) fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut nearest = peer;
        let hops = headers.get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
        let hops: Vec<&str> = hops.collect();
        for hop in hops.iter().rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(addr) if self.trusts(addr) => nearest = addr,
                Ok(addr) => return addr,
                // Garbage (or an obfuscated name): nothing past it can be believed.
                Err(_) => return nearest,
            }
        }
        nearest
    }
}

/// The key for `req` under `kind`.
pub(crate) fn client_key(kind: ClientKeyKind, proxies: &TrustedProxies, req: &ServiceRequest) -> ClientKey {
    if kind == ClientKeyKind::Bearer {
        if let Some(token) = bearer(req.headers()) {
            return ClientKey::Bearer(hasher().hash_one(token));
        }
    }
    // Tests and Unix sockets have no peer: they share one bucket.
    let peer = req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.ip());
    ClientKey::Address(network_of(proxies.client_address(peer, req.headers())))
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let token = value.strip_prefix(b"Bearer ").or_else(|| value.strip_prefix(b"bearer "))?;
    (!token.is_empty()).then_some(token)
}

/// One hasher per process, seeded at random, so keys cannot be chosen to collide.
fn hasher() -> &'static std::collections::hash_map::RandomState {
    static HASHER: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    HASHER.get_or_init(Default::default)
}

/// An IPv6 address stands for its /64: one host usually has the whole
/// network and could otherwise take a new bucket per address.
fn network_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(Ipv6Addr::new(segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HeaderName::from_static("x-forwarded-for"), HeaderValue::from_str(value).unwrap());
        headers
    }

    fn proxies(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_header_is_ignored_from_an_untrusted_peer() {
        let headers = forwarded("203.0.113.9");
        assert_eq!(proxies(&[]).client_address(ip("198.51.100.1"), &headers), ip("198.51.100.1"));
        assert_eq!(proxies(&["10.0.0.0/8"]).client_address(ip("198.51.100.1"), &headers), ip("198.51.100.1"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_spoofed_entries_are_skipped() {
        // The client sent a made-up entry; our two proxies appended the real ones.
        let headers = forwarded("1.2.3.4, 203.0.113.9, 10.0.0.5");
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(trusted.client_address(ip("10.0.0.7"), &headers), ip("203.0.113.9"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_nearest_trusted_hop() {
        let headers = forwarded("unknown, 10.0.0.5");
        assert_eq!(proxies(&["10.0.0.0/8"]).client_address(ip("10.0.0.7"), &headers), ip("10.0.0.5"));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        assert_eq!(network_of(ip("2001:db8:1:2:aaaa::1")), network_of(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(network_of(ip("2001:db8:1:2::1")), network_of(ip("2001:db8:1:3::1")));
        assert_eq!(network_of(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn bearer_keys_are_told_apart() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k1"));
        assert_eq!(bearer(&headers), Some(&b"k1"[..]));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic eDp5"));
        assert_eq!(bearer(&headers), None);
    }
}
