//! Who is asking, as far as the server can trust it. The peer of the connection, unless that
//! peer is a proxy named in `trusted_proxies`: then the nearest address in `X-Forwarded-For`
//! that is not a trusted proxy. A header from anyone else is ignored, so a client cannot choose
//! the address its limits are counted against.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;

use super::AppState;

/// The client's address; IPv6 clients are counted by their /64, which one subscriber holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The address as limits count it (an IPv6 /64 as its network).
    pub fn subject(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

/// The client of a request whose connection came from `peer`, given the proxies trusted.
pub fn client_of(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    // A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`: counted as the IPv4 address.
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    // Right to left: each trusted proxy appended the address it received from.
    let mut client = peer;
    for hop in forwarded_for.unwrap_or("").rsplit(',') {
        match hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => return client,
        }
    }
    client
}

/// Every `X-Forwarded-For` line, in order, as one list: a proxy may add a line of its own
/// rather than append to the client's.
pub fn forwarded_for(headers: &axum::http::HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
}

/// Whether a request shows a proxy the server was not told to trust: an `X-Forwarded-For` from a
/// private or loopback peer while `trusted_proxies` is unset. Every client behind that proxy is
/// then counted as the proxy, and one busy sale can spend everyone's budgets.
pub fn untrusted_proxy_in_front(peer: IpAddr, forwarded: bool, trusted: &[IpNet]) -> bool {
    let peer = peer.to_canonical();
    forwarded && trusted.is_empty() && is_private(peer)
}

/// A loopback, private (RFC 1918, IPv6 unique-local) or link-local address: a machine of the
/// operator's own network, such as a proxy or load balancer in front.
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let forwarded = forwarded_for(&parts.headers);
        if untrusted_proxy_in_front(peer, forwarded.is_some(), &state.trusted_proxies)
            && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                proxy = %peer,
                "X-Forwarded-For arrives from a proxy but trusted_proxies is unset: every client behind it is counted as the proxy for rate limits; set trusted_proxies (said once)"
            );
        }
        Ok(ClientIp(client_of(
            peer,
            forwarded.as_deref(),
            &state.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_nobody_trusts_is_noticed() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert!(untrusted_proxy_in_front(ip("10.0.0.5"), true, &[]));
        assert!(untrusted_proxy_in_front(ip("127.0.0.1"), true, &[]));
        assert!(
            !untrusted_proxy_in_front(ip("10.0.0.5"), false, &[]),
            "no header"
        );
        assert!(
            !untrusted_proxy_in_front(ip("203.0.113.9"), true, &[]),
            "a client's own header"
        );
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        assert!(!untrusted_proxy_in_front(ip("10.0.0.5"), true, &trusted));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        // From the internet directly: whatever it claims, the peer is the client.
        assert_eq!(
            client_of(ip("203.0.113.9"), Some("1.2.3.4"), &trusted),
            ip("203.0.113.9")
        );
        // Through the load balancer: the address it received from.
        assert_eq!(
            client_of(ip("10.0.0.2"), Some("1.2.3.4, 203.0.113.9"), &trusted),
            ip("203.0.113.9")
        );
        // Through two trusted proxies.
        assert_eq!(
            client_of(ip("10.0.0.2"), Some("203.0.113.9, 10.0.0.7"), &trusted),
            ip("203.0.113.9")
        );
        // A trusted proxy that sent no header, or garbage.
        assert_eq!(client_of(ip("10.0.0.2"), None, &trusted), ip("10.0.0.2"));
        assert_eq!(
            client_of(ip("10.0.0.2"), Some("nonsense"), &trusted),
            ip("10.0.0.2")
        );
        // No proxies trusted: the header is ignored.
        assert_eq!(
            client_of(ip("10.0.0.2"), Some("1.2.3.4"), &[]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn a_proxys_own_header_line_and_mapped_ipv4_are_read_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        // The client wrote one line, the proxy added its own: the proxy's is the one believed.
        let mut h = axum::http::HeaderMap::new();
        h.append("x-forwarded-for", "1.2.3.4".parse().expect("value"));
        h.append("x-forwarded-for", "203.0.113.9".parse().expect("value"));
        let all = forwarded_for(&h);
        assert_eq!(
            client_of(ip("10.0.0.2"), all.as_deref(), &trusted),
            ip("203.0.113.9")
        );
        // A dual-stack listener: an IPv4 peer arrives mapped into IPv6.
        assert_eq!(
            client_of(ip("::ffff:203.0.113.9"), None, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_of(ip("::ffff:10.0.0.2"), Some("203.0.113.7"), &trusted),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a = ClientIp(ip("2001:db8:1:2:aaaa::1")).subject();
        let b = ClientIp(ip("2001:db8:1:2:bbbb::9")).subject();
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
    }
}
