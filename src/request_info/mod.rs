//! What a request says about its connection: the client and peer addresses, TLS, and the
//! forwarding headers of trusted proxies.
//!
//! Servers (or [`ClientAddrLayer`](crate::hardening::ClientAddrLayer)) put [`ClientAddr`],
//! [`PeerAddr`] and [`TlsConnection`] into the request extensions; layers read them through
//! [`client_addr`] and [`peer_addr`]. A forwarding header counts only when the request's peer
//! is one of the [`TrustedProxies`].
//!
//! ```
//! use mcp_auth::request_info::{ClientAddr, client_addr};
//!
//! let mut req = http::Request::new(());
//! assert_eq!(client_addr(req.extensions()), None);
//! req.extensions_mut().insert(ClientAddr([192, 0, 2, 7].into()));
//! assert_eq!(client_addr(req.extensions()), Some([192, 0, 2, 7].into()));
//! ```

mod client_cert;

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

pub use self::client_cert::ClientCertificate;

/// The client's address, as an extension a server can insert (axum users get the peer address
/// from `ConnectInfo<SocketAddr>` without doing anything, feature `axum`). Behind trusted
/// proxies, [`ClientAddrLayer`](crate::hardening::ClientAddrLayer) replaces it with the client
/// the proxies reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The TCP peer of a request (the socket address), as
/// [`ClientAddrLayer`](crate::hardening::ClientAddrLayer) saw it before it set [`ClientAddr`] to
/// the client behind the proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub IpAddr);

/// Marks a request that arrived over TLS (insert it from your TLS acceptor).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsConnection;

/// The client address of a request: [`ClientAddr`], axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`), or a bare `SocketAddr` extension, in that order. Never a header: forwarded
/// addresses count only through [`ClientAddrLayer`](crate::hardening::ClientAddrLayer) (or
/// [`FailureLimitLayer::trust_forwarded_for`](crate::hardening::FailureLimitLayer::trust_forwarded_for)),
/// and only from [`TrustedProxies`].
#[must_use]
pub fn client_addr(extensions: &http::Extensions) -> Option<IpAddr> {
    if let Some(ClientAddr(ip)) = extensions.get::<ClientAddr>() {
        return Some(*ip);
    }
    socket_addr(extensions)
}

fn socket_addr(extensions: &http::Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The TCP peer of a request: [`PeerAddr`], then the connection (`ConnectInfo<SocketAddr>`, a
/// `SocketAddr` extension), then [`ClientAddr`]. This is the address that must be a trusted
/// proxy before any forwarding header is believed.
#[must_use]
pub fn peer_addr(extensions: &http::Extensions) -> Option<IpAddr> {
    if let Some(PeerAddr(ip)) = extensions.get::<PeerAddr>() {
        return Some(*ip);
    }
    socket_addr(extensions).or_else(|| extensions.get::<ClientAddr>().map(|c| c.0))
}

/// An address block: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(u32::from(self.prefix)))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(self.prefix)))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The most forwarding hops looked at per request.
const MAX_HOPS: usize = 32;

/// The proxies whose forwarding headers are believed: addresses and CIDR blocks, IPv4 and
/// IPv6. A request counts as coming through a proxy only when its TCP peer
/// ([`peer_addr`]) is in this set; from any other peer, `X-Forwarded-*` headers are ignored.
///
/// The client behind the proxies is the right-most `X-Forwarded-For` address that is not a
/// trusted proxy (each proxy appends the address it received the request from, so everything
/// to the left of that is what the client claimed). If every address is a trusted proxy, the
/// left-most one is the client.
///
/// ```
/// use mcp_auth::request_info::TrustedProxies;
///
/// let proxies = TrustedProxies::parse("MCP_TRUSTED_PROXIES", "10.0.0.0/8, ::1").unwrap();
/// let mut headers = http::HeaderMap::new();
/// headers.append("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3".parse().unwrap());
/// // Through the proxy at 10.0.0.5: the client is 203.0.113.9 (6.6.6.6 was its own claim).
/// assert_eq!(proxies.client_addr([10, 0, 0, 5].into(), &headers), "203.0.113.9".parse::<std::net::IpAddr>().unwrap());
/// // Directly from 198.51.100.1: the header is ignored.
/// assert_eq!(proxies.client_addr([198, 51, 100, 1].into(), &headers), "198.51.100.1".parse::<std::net::IpAddr>().unwrap());
/// assert!(TrustedProxies::parse("MCP_TRUSTED_PROXIES", "10.0.0.0/33").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
}

impl TrustedProxies {
    /// No proxy: every request is judged by its socket address.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// The loopback addresses (`127.0.0.0/8`, `::1`): a proxy on the same host.
    #[must_use]
    pub fn loopback() -> Self {
        Self {
            nets: vec![
                Net {
                    addr: IpAddr::from([127, 0, 0, 0]),
                    prefix: 8,
                },
                Net {
                    addr: IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
        }
    }

    /// Parses a comma-separated list of addresses (`10.0.0.7`, `::1`) and CIDR blocks
    /// (`10.0.0.0/8`, `fd00::/8`); empty entries are skipped.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`](crate::ConfigError) naming `setting` for an entry that is not an
    /// address or a block (prefix longer than the address).
    pub fn parse(setting: &str, list: &str) -> Result<Self, crate::ConfigError> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => (a.trim(), Some(p.trim())),
                None => (entry, None),
            };
            let addr = addr
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(addr);
            let shown: String = entry.chars().take(64).collect();
            let bad = || {
                crate::ConfigError::new(
                    setting,
                    format!(
                        "`{shown}` is not an IP address or CIDR block (such as 10.0.0.0/8 or fd00::/8)"
                    ),
                )
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let addr = addr.to_canonical();
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            };
            nets.push(Net { addr, prefix });
        }
        Ok(Self { nets })
    }

    /// Adds the blocks of `other`.
    #[must_use]
    pub fn with(mut self, other: &TrustedProxies) -> Self {
        self.nets.extend(other.nets.iter().copied());
        self
    }

    /// Whether no proxy is trusted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// `scheme://host` from the last `X-Forwarded-Proto` and `X-Forwarded-Host` values, when
    /// the request's TCP peer is a trusted proxy and both headers are well formed; from any
    /// other peer, `None` whatever the headers say.
    pub(crate) fn forwarded_origin(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Option<String> {
        if !self.trusts_peer(extensions) {
            return None;
        }
        forwarded_origin(headers)
    }

    /// Whether the request's TCP peer ([`peer_addr`]) is a trusted proxy.
    #[must_use]
    pub fn trusts_peer(&self, extensions: &http::Extensions) -> bool {
        peer_addr(extensions).is_some_and(|p| self.contains(p))
    }

    /// The client address of a request that came from `peer` (see the [type docs](Self)):
    /// `peer` itself unless it is a trusted proxy; otherwise the right-most `X-Forwarded-For`
    /// address (over every instance of the header) that is not a trusted proxy. A malformed
    /// entry, or more than 32 hops, stops the walk at the last trusted address.
    #[must_use]
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        let mut hops = 0usize;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else {
                return client;
            };
            for entry in value.rsplit(',') {
                hops = hops.saturating_add(1);
                if hops > MAX_HOPS {
                    return client;
                }
                let Some(ip) = parse_hop(entry.trim()) else {
                    return client;
                };
                if !self.contains(ip) {
                    return ip;
                }
                client = ip;
            }
        }
        client
    }

    /// Resolves the client of a request in place: records the socket address as
    /// [`PeerAddr`] and sets [`ClientAddr`] to [`client_addr`](Self::client_addr). Does
    /// nothing when the request has no peer address. Idempotent.
    pub fn resolve(&self, extensions: &mut http::Extensions, headers: &HeaderMap) {
        if let Some(peer) = peer_addr(extensions) {
            let client = self.client_addr(peer, headers);
            extensions.insert(PeerAddr(peer));
            extensions.insert(ClientAddr(client));
        }
    }
}

/// One `X-Forwarded-For` entry: an address, `[v6]`, or an address with a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
}

/// Whether a request carries forwarding headers (`X-Forwarded-For`, `Forwarded`).
pub(crate) fn has_forwarding_headers(headers: &HeaderMap) -> bool {
    headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded")
}

/// A header that may appear at most once appeared more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RepeatedHeader;

/// The only value of header `name`: `Ok(None)` when absent, [`RepeatedHeader`] when it
/// appears more than once (as separate fields; a comma inside one value is that value's
/// business).
pub(crate) fn only_value<K: http::header::AsHeaderName>(
    headers: &HeaderMap,
    name: K,
) -> Result<Option<&http::HeaderValue>, RepeatedHeader> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(RepeatedHeader);
    }
    Ok(first)
}

/// The last value of a forwarding header (the nearest proxy's entry), trimmed.
pub(crate) fn last_forwarded(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    Some(v.rsplit(',').next()?.trim().to_owned())
}

/// `scheme://host` from the last `X-Forwarded-Proto` and `X-Forwarded-Host` values, when both
/// are present and well formed (`http`/`https`; a host name or IP literal with an optional
/// port).
fn forwarded_origin(headers: &HeaderMap) -> Option<String> {
    let last = |name: &str| last_forwarded(headers, name);
    let proto = last("x-forwarded-proto")?.to_ascii_lowercase();
    if proto != "https" && proto != "http" {
        return None;
    }
    let host = last("x-forwarded-host")?;
    let valid = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    valid.then(|| format!("{proto}://{}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_address_comes_from_extensions_never_from_headers() {
        let mut ext = http::Extensions::new();
        assert_eq!(client_addr(&ext), None);
        ext.insert(SocketAddr::from(([10, 0, 0, 1], 5000)));
        assert_eq!(client_addr(&ext), Some(IpAddr::from([10, 0, 0, 1])));
        ext.insert(ClientAddr(IpAddr::from([10, 0, 0, 2])));
        assert_eq!(client_addr(&ext), Some(IpAddr::from([10, 0, 0, 2])));
        assert_eq!(
            peer_addr(&ext),
            Some(IpAddr::from([10, 0, 0, 1])),
            "the socket, not the resolved client"
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_blocks_and_refuse_garbage() {
        let p = TrustedProxies::parse(
            "S",
            " 10.0.0.0/8, 192.0.2.7 ,, fd00::/8, [::1], ::ffff:172.16.0.1 ",
        )
        .unwrap();
        for yes in [
            "10.255.0.1",
            "192.0.2.7",
            "fd12::1",
            "::1",
            "::ffff:10.0.0.9",
            "172.16.0.1",
        ] {
            assert!(p.contains(ip(yes)), "{yes}");
        }
        for no in ["11.0.0.1", "192.0.2.8", "fe80::1", "::2", "127.0.0.1"] {
            assert!(!p.contains(ip(no)), "{no}");
        }
        assert!(
            TrustedProxies::parse("S", "0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!(
            TrustedProxies::parse("S", "::/0")
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
        assert!(TrustedProxies::parse("S", "").unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/-1",
            "10.0.0.0/",
            "example.com",
            "10.0.0.1/8/8",
            "1.2.3.4:80",
        ] {
            let err = TrustedProxies::parse("MCP_TRUSTED_PROXIES", bad).unwrap_err();
            assert_eq!(err.problems()[0].setting(), "MCP_TRUSTED_PROXIES", "{bad}");
        }
        let lo = TrustedProxies::loopback();
        assert!(
            lo.contains(ip("127.0.0.1")) && lo.contains(ip("127.9.9.9")) && lo.contains(ip("::1"))
        );
        assert!(
            lo.contains(ip("::ffff:127.0.0.1")),
            "dual-stack listeners see mapped addresses"
        );
        assert!(!lo.contains(ip("10.0.0.1")));
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_forwarded_address() {
        let p = TrustedProxies::parse("S", "10.0.0.0/8").unwrap();
        let proxy = ip("10.0.0.5");
        // From an untrusted peer, headers are ignored.
        assert_eq!(
            p.client_addr(ip("198.51.100.1"), &xff(&["203.0.113.9"])),
            ip("198.51.100.1")
        );
        // No header: the proxy itself.
        assert_eq!(p.client_addr(proxy, &HeaderMap::new()), proxy);
        // The client's own claim (left) is skipped; trusted hops are walked through.
        assert_eq!(
            p.client_addr(proxy, &xff(&["6.6.6.6, 203.0.113.9, 10.1.1.1"])),
            ip("203.0.113.9")
        );
        // Several header instances are one list, in order.
        assert_eq!(
            p.client_addr(proxy, &xff(&["6.6.6.6", "203.0.113.9", "10.1.1.1"])),
            ip("203.0.113.9")
        );
        // All trusted: the left-most.
        assert_eq!(
            p.client_addr(proxy, &xff(&["10.9.9.9, 10.1.1.1"])),
            ip("10.9.9.9")
        );
        // Ports and brackets.
        assert_eq!(
            p.client_addr(proxy, &xff(&["[2001:db8::7]:443"])),
            ip("2001:db8::7")
        );
        assert_eq!(
            p.client_addr(proxy, &xff(&["203.0.113.9:5555"])),
            ip("203.0.113.9")
        );
        // Garbage stops the walk at the last trusted address.
        assert_eq!(
            p.client_addr(proxy, &xff(&["garbage, 10.1.1.1"])),
            ip("10.1.1.1")
        );
        assert_eq!(p.client_addr(proxy, &xff(&["203.0.113.9, "])), proxy);
        // A long chain of trusted hops stops after 32.
        let long = vec!["10.0.0.1"; 100].join(",");
        assert_eq!(
            p.client_addr(proxy, &xff(&[&format!("203.0.113.9,{long}")])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn resolving_records_the_peer_and_sets_the_client() {
        let p = TrustedProxies::loopback();
        let mut ext = http::Extensions::new();
        ext.insert(SocketAddr::from(([127, 0, 0, 1], 4000)));
        let h = xff(&["203.0.113.9"]);
        p.resolve(&mut ext, &h);
        assert_eq!(client_addr(&ext), Some(ip("203.0.113.9")));
        assert_eq!(peer_addr(&ext), Some(ip("127.0.0.1")));
        p.resolve(&mut ext, &h);
        assert_eq!(client_addr(&ext), Some(ip("203.0.113.9")), "idempotent");
        let mut direct = http::Extensions::new();
        direct.insert(SocketAddr::from(([198, 51, 100, 1], 4000)));
        TrustedProxies::none().resolve(&mut direct, &h);
        assert_eq!(client_addr(&direct), Some(ip("198.51.100.1")));
    }
}
