//! Header hygiene in both directions: hop-by-hop fields (RFC 9110 §7.6.1), the client's
//! credentials and identity claims, forwarding fields, and the identity headers the upstream
//! gets instead.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use mcp_auth::AuthContext;

/// Hop-by-hop fields removed in both directions, beside those a `Connection` field names and
/// every `Proxy-*` field.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Request fields never forwarded: the client's credentials (no token passthrough), fields the
/// proxy sets itself (`Host`, forwarding, framing) and `Expect` (the proxy already read the
/// body it forwards).
const REQUEST_DROPPED: [HeaderName; 14] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    // A DPoP proof belongs with the token it was made for, which stays here too.
    HeaderName::from_static("dpop"),
    header::COOKIE,
    header::HOST,
    header::FORWARDED,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-real-ip"),
    // Client certificates as TLS-terminating proxies report them (nginx, Envoy): an upstream
    // that trusts this proxy must never see one a client wrote itself.
    HeaderName::from_static("x-ssl-client-cert"),
    HeaderName::from_static("x-forwarded-client-cert"),
    header::CONTENT_LENGTH,
    header::EXPECT,
];

/// Response fields never passed back: the upstream's own challenges (its credentials are the
/// proxy's business; the client's challenges come from the auth stack) and cookies (the proxy
/// forwards none, so the upstream's would be set on the proxy's origin for nothing).
const RESPONSE_DROPPED: [HeaderName; 2] = [header::WWW_AUTHENTICATE, header::SET_COOKIE];

/// Every incoming field starting with this (case-insensitively) is an identity claim and is
/// removed, whatever prefix the identity headers use.
const IDENTITY_PREFIX_ALWAYS_STRIPPED: &str = "x-mcp-";

/// The default prefix of the identity headers.
pub(crate) const DEFAULT_IDENTITY_PREFIX: &str = "X-MCP-";

/// The names of the identity headers the upstream gets: `<prefix>Subject`, `<prefix>Scopes`,
/// `<prefix>Roles`, `<prefix>Auth-Method` and `<prefix>Client-Id`.
#[derive(Debug, Clone)]
pub(crate) struct IdentityHeaders {
    prefix: String,
    subject: HeaderName,
    scopes: HeaderName,
    roles: HeaderName,
    method: HeaderName,
    client_id: HeaderName,
}

impl IdentityHeaders {
    /// The identity headers for `prefix`, which must start with `X-` and end with `-` (such
    /// as `X-MCP-` or `X-Auth-`), so it can never name a protocol field (`Mcp-Session-Id`,
    /// `Authorization`, ...).
    pub(crate) fn new(prefix: &str) -> Result<Self, &'static str> {
        let lower = prefix.to_ascii_lowercase();
        if !lower.starts_with("x-") || !lower.ends_with('-') || lower.len() < 4 {
            return Err("must start with X- and end with -, such as X-MCP-");
        }
        let name = |suffix: &str| {
            HeaderName::from_bytes(format!("{lower}{suffix}").as_bytes())
                .map_err(|_| "is not a valid header name prefix")
        };
        Ok(Self {
            subject: name("subject")?,
            scopes: name("scopes")?,
            roles: name("roles")?,
            method: name("auth-method")?,
            client_id: name("client-id")?,
            prefix: lower,
        })
    }

    /// Whether an incoming field claims an identity (and so must not reach the upstream).
    fn is_identity(&self, name: &HeaderName) -> bool {
        let n = name.as_str(); // lower case
        n.starts_with(IDENTITY_PREFIX_ALWAYS_STRIPPED) || n.starts_with(self.prefix.as_str())
    }
}

/// Why the caller's identity cannot be forwarded: a value that is not printable ASCII (a
/// control character, or a role with a space that the space-separated list would split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnforwardableIdentity(pub(crate) &'static str);

/// What the upstream is told about the request besides the caller's identity.
#[derive(Debug, Clone)]
pub(crate) struct Forwarding {
    /// `Host` for the upstream (its authority).
    pub(crate) upstream_host: HeaderValue,
    /// `X-Forwarded-Proto`: the scheme of the proxy's configured public URL.
    pub(crate) proto: HeaderValue,
    /// `X-Forwarded-Host`: the authority of the proxy's configured public URL.
    pub(crate) host: HeaderValue,
}

/// The names listed in `Connection` fields (lower case): hop-by-hop for this connection.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

/// Whether `name` is hop-by-hop here: a fixed one, a `Proxy-*` one, or one `Connection` names.
fn is_hop_by_hop(name: &HeaderName, named: &[HeaderName]) -> bool {
    HOP_BY_HOP.contains(name) || name.as_str().starts_with("proxy-") || named.contains(name)
}

/// The fields the upstream gets: the client's, less hop-by-hop fields, credentials, identity
/// claims and forwarding fields; then `Host`, `X-Forwarded-*`, the caller's identity headers
/// and, when given, the proxy's own `Authorization`.
pub(crate) fn upstream_request(
    incoming: &HeaderMap,
    identity: &IdentityHeaders,
    ctx: &AuthContext,
    client: Option<IpAddr>,
    forwarding: &Forwarding,
    authorization: Option<HeaderValue>,
) -> Result<HeaderMap, UnforwardableIdentity> {
    let named = connection_named(incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 8);
    for (name, value) in incoming {
        if is_hop_by_hop(name, &named)
            || REQUEST_DROPPED.contains(name)
            || identity.is_identity(name)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out.insert(header::HOST, forwarding.upstream_host.clone());
    if let Some(ip) = client {
        // An IP address always makes a valid header value.
        if let Ok(v) = HeaderValue::from_str(&ip.to_string()) {
            out.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
    }
    out.insert(
        HeaderName::from_static("x-forwarded-proto"),
        forwarding.proto.clone(),
    );
    out.insert(
        HeaderName::from_static("x-forwarded-host"),
        forwarding.host.clone(),
    );
    out.insert(identity.subject.clone(), value(ctx.subject(), "subject")?);
    out.insert(
        identity.scopes.clone(),
        value(&ctx.scopes().to_space_separated(), "scopes")?,
    );
    let mut roles = String::new();
    for role in ctx.roles() {
        if role.contains(' ') {
            return Err(UnforwardableIdentity("roles"));
        }
        if !roles.is_empty() {
            roles.push(' ');
        }
        roles.push_str(role);
    }
    out.insert(identity.roles.clone(), value(&roles, "roles")?);
    out.insert(
        identity.method.clone(),
        value(ctx.method().as_str(), "method")?,
    );
    if let Some(id) = ctx.client_id() {
        out.insert(identity.client_id.clone(), value(id, "client id")?);
    }
    if let Some(mut auth) = authorization {
        auth.set_sensitive(true);
        out.insert(header::AUTHORIZATION, auth);
    }
    Ok(out)
}

/// `s` as a header value when it is printable ASCII (spaces allowed, no tabs, no control
/// characters, nothing above `~`), so every upstream reads it the same way.
fn value(s: &str, what: &'static str) -> Result<HeaderValue, UnforwardableIdentity> {
    if s.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        HeaderValue::from_str(s).map_err(|_| UnforwardableIdentity(what))
    } else {
        Err(UnforwardableIdentity(what))
    }
}

/// Removes from the upstream's response fields the hop-by-hop ones, its challenges and its
/// cookies.
pub(crate) fn clean_response(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    let drop: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n, &named) || RESPONSE_DROPPED.contains(n))
        .cloned()
        .collect();
    for name in drop {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_auth::AuthMethod;

    fn forwarding() -> Forwarding {
        Forwarding {
            upstream_host: HeaderValue::from_static("127.0.0.1:9000"),
            proto: HeaderValue::from_static("https"),
            host: HeaderValue::from_static("mcp.example.com"),
        }
    }

    fn ctx() -> AuthContext {
        AuthContext::builder("alice", AuthMethod::Bearer)
            .scopes(["data:read", "data:write"])
            .roles(["admin", "ops"])
            .client_id("app-1")
            .build()
    }

    fn incoming(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn forward(h: &HeaderMap, c: &AuthContext) -> HeaderMap {
        let ids = IdentityHeaders::new(DEFAULT_IDENTITY_PREFIX).unwrap();
        upstream_request(h, &ids, c, Some([192, 0, 2, 7].into()), &forwarding(), None).unwrap()
    }

    #[test]
    fn credentials_and_spoofed_identity_never_reach_the_upstream() {
        let h = incoming(&[
            ("authorization", "Bearer secret-token"),
            ("x-api-key", "secret-key"),
            ("cookie", "session=abc"),
            ("dpop", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.sig"),
            ("x-ssl-client-cert", "-----BEGIN%20CERTIFICATE-----"),
            ("x-forwarded-client-cert", "Hash=abc;Cert=\"x\""),
            ("X-MCP-Subject", "mallory"),
            ("x-mcp-anything", "x"),
            ("x-forwarded-for", "10.9.9.9"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=10.9.9.9"),
            ("host", "evil.example"),
            ("mcp-session-id", "s-1"),
            ("accept", "application/json, text/event-stream"),
        ]);
        let out = forward(&h, &ctx());
        for name in [
            "authorization",
            "x-api-key",
            "cookie",
            "dpop",
            "x-ssl-client-cert",
            "x-forwarded-client-cert",
            "forwarded",
            "x-mcp-anything",
        ] {
            assert!(out.get(name).is_none(), "{name} forwarded");
        }
        assert_eq!(out["x-mcp-subject"], "alice");
        assert_eq!(out.get_all("x-mcp-subject").iter().count(), 1);
        assert_eq!(out["x-forwarded-for"], "192.0.2.7");
        assert_eq!(out["x-forwarded-host"], "mcp.example.com");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["host"], "127.0.0.1:9000");
        assert_eq!(out["mcp-session-id"], "s-1");
        assert_eq!(out["accept"], "application/json, text/event-stream");
    }

    #[test]
    fn identity_headers_carry_the_context() {
        let out = forward(&HeaderMap::new(), &ctx());
        assert_eq!(out["x-mcp-subject"], "alice");
        assert_eq!(out["x-mcp-scopes"], "data:read data:write");
        assert_eq!(out["x-mcp-roles"], "admin ops");
        assert_eq!(out["x-mcp-auth-method"], "bearer");
        assert_eq!(out["x-mcp-client-id"], "app-1");
    }

    #[test]
    fn hop_by_hop_fields_and_the_ones_connection_names_are_removed() {
        let h = incoming(&[
            ("connection", "keep-alive, X-Custom-Hop"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("x-custom-hop", "1"),
            ("x-end-to-end", "2"),
        ]);
        let out = forward(&h, &ctx());
        for name in [
            "connection",
            "keep-alive",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "proxy-authorization",
            "proxy-connection",
            "x-custom-hop",
        ] {
            assert!(out.get(name).is_none(), "{name} forwarded");
        }
        assert_eq!(out["x-end-to-end"], "2");

        let mut res = h.clone();
        res.append(header::SET_COOKIE, HeaderValue::from_static("a=b"));
        res.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"upstream\""),
        );
        clean_response(&mut res);
        assert_eq!(res.len(), 1, "{res:?}");
        assert_eq!(res["x-end-to-end"], "2");
    }

    #[test]
    fn a_custom_prefix_is_used_and_x_mcp_is_still_stripped() {
        let ids = IdentityHeaders::new("X-Auth-").unwrap();
        let h = incoming(&[("x-auth-subject", "mallory"), ("x-mcp-subject", "mallory")]);
        let out = upstream_request(&h, &ids, &ctx(), None, &forwarding(), None).unwrap();
        assert_eq!(out["x-auth-subject"], "alice");
        assert!(out.get("x-mcp-subject").is_none());
        assert!(
            out.get("x-forwarded-for").is_none(),
            "no client address known"
        );
    }

    #[test]
    fn prefixes_that_could_name_protocol_fields_are_refused() {
        for bad in [
            "Mcp-",
            "",
            "X",
            "X-",
            "Authorization",
            "X-MCP",
            "X-M\u{e9}-",
            "X-a b-",
        ] {
            assert!(IdentityHeaders::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identity_values_with_control_characters_are_refused_not_panicked_on() {
        let ids = IdentityHeaders::new(DEFAULT_IDENTITY_PREFIX).unwrap();
        let cases = [
            AuthContext::builder("ali\nce", AuthMethod::Jwt).build(),
            AuthContext::builder("ali\u{7f}ce", AuthMethod::Jwt).build(),
            AuthContext::builder("al\tice", AuthMethod::Jwt).build(),
            AuthContext::builder("jos\u{e9}", AuthMethod::Jwt).build(),
            AuthContext::builder("bob", AuthMethod::Jwt)
                .roles(["two words"])
                .build(),
            AuthContext::builder("bob", AuthMethod::Jwt)
                .client_id("app\r\nx-mcp-subject: root")
                .build(),
        ];
        for c in cases {
            let r = upstream_request(&HeaderMap::new(), &ids, &c, None, &forwarding(), None);
            assert!(r.is_err(), "{c:?}");
        }
    }

    #[test]
    fn the_proxy_authorization_is_set_and_marked_sensitive() {
        let ids = IdentityHeaders::new(DEFAULT_IDENTITY_PREFIX).unwrap();
        let h = incoming(&[("authorization", "Bearer client-token")]);
        let out = upstream_request(
            &h,
            &ids,
            &ctx(),
            None,
            &forwarding(),
            Some(HeaderValue::from_static("Bearer minted")),
        )
        .unwrap();
        assert_eq!(out.get_all(header::AUTHORIZATION).iter().count(), 1);
        assert_eq!(out[header::AUTHORIZATION], "Bearer minted");
        assert!(out[header::AUTHORIZATION].is_sensitive());
    }
}
