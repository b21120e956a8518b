//! The fuzz targets' logic, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, run
//! with a nightly toolchain) and the bounded stable run in `tests/fuzz_smoke.rs` (run by CI).
//! Each function takes arbitrary bytes, must never panic, and asserts the target's invariants.

#![allow(dead_code)]

use std::sync::OnceLock;

use mcp_auth::Authenticator;
use mcp_auth::authenticators::header::{bearer_token, is_token68};
use mcp_auth::authenticators::jwt::{Algorithm, JwtAuthenticator, JwtKey, JwtMinter};
use mcp_auth::scope::{operation_from_headers, parse_operations};
use mcp_auth::{ApiKeyAuthenticator, BearerAuthenticator, Credential};

/// Credential headers: `Authorization` / `X-API-Key` values and query strings built from the
/// input. Invariants: no panic; an accepted bearer token is token68 and equals the configured
/// one; only the configured key authenticates.
pub fn header(data: &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)) % (data.len().max(1));
    let (value, query) = data.split_at(split.min(data.len()));
    let query = String::from_utf8_lossy(query).replace(['#', ' '], "");
    let uri = format!("/mcp?{query}");
    let Ok(uri) = uri.parse::<http::Uri>() else {
        return;
    };
    let Ok(header) = http::HeaderValue::from_bytes(value) else {
        return;
    };
    for name in ["authorization", "x-api-key"] {
        let mut req = http::Request::get(uri.clone());
        req = req.header(name, header.clone());
        let Ok(req) = req.body(()) else { return };
        let parts = req.into_parts().0;
        if let Ok(token) = bearer_token(&parts) {
            assert!(is_token68(token), "accepted a non-token68 token: {token:?}");
        }
        static AUTH: OnceLock<(ApiKeyAuthenticator, BearerAuthenticator)> = OnceLock::new();
        let (keys, tokens) = AUTH.get_or_init(|| {
            (
                ApiKeyAuthenticator::new()
                    .with_key(Credential::new("fuzz-key-0123456789abcdef"))
                    .unwrap(),
                BearerAuthenticator::new()
                    .with_token(Credential::new("fuzz-token-0123456789abcdef"))
                    .unwrap(),
            )
        });
        if let Some(Ok(_)) = keys.authenticate_now(&parts) {
            assert_eq!(header.as_bytes(), b"fuzz-key-0123456789abcdef");
        }
        if let Some(Ok(_)) = tokens.authenticate_now(&parts) {
            let v = header.to_str().unwrap();
            assert!(
                v.len() > 7 && v[7..].trim_start() == "fuzz-token-0123456789abcdef",
                "{v:?}"
            );
        }
    }
}

const SECRET: &str = "fuzz-hmac-secret-0123456789abcdef-xyz";

fn jwt() -> &'static (JwtAuthenticator, String) {
    static JWT: OnceLock<(JwtAuthenticator, String)> = OnceLock::new();
    JWT.get_or_init(|| {
        let auth = JwtAuthenticator::builder()
            .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
            .issuer("https://as.example.com")
            .audience("https://mcp.example.com/mcp")
            .build()
            .unwrap();
        let token = JwtMinter::hmac(SECRET, Algorithm::HS256)
            .unwrap()
            .issuer("https://as.example.com")
            .audience("https://mcp.example.com/mcp")
            .ttl(std::time::Duration::from_secs(24 * 3600))
            .mint("fuzz", ["data:read"])
            .unwrap();
        (auth, token)
    })
}

/// A validly signed token, for seeds.
pub fn valid_jwt() -> String {
    jwt().1.clone()
}

/// The JWT front end: arbitrary text as a token. Invariants: no panic; nothing verifies but
/// the one validly signed token (byte for byte).
pub fn jwt_front(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (auth, valid) = jwt();
    if auth.verify(token).is_ok() {
        assert_eq!(token, valid, "a different token verified");
    }
}

/// The targets `serde_json::Value` (last-wins) finds in one message, as `parse_operations`
/// must report them: `ref` for `completion/complete`, one per URI of
/// `notifications.resourceSubscriptions` for `subscriptions/listen`, `name`/`uri` otherwise.
fn expected_targets(m: &serde_json::Value) -> Vec<(String, Option<String>, Option<String>)> {
    let Some(method) = m["method"].as_str() else {
        return Vec::new();
    };
    let params = &m["params"];
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    match method {
        "completion/complete" => {
            let r = &params["ref"];
            match r["type"].as_str() {
                Some("ref/prompt") => vec![(method.to_owned(), text(&r["name"]), None)],
                _ => vec![(method.to_owned(), None, text(&r["uri"]))],
            }
        }
        "subscriptions/listen" => {
            let uris: Vec<Option<String>> = params["notifications"]["resourceSubscriptions"]
                .as_array()
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default();
            if uris.is_empty() {
                vec![(method.to_owned(), None, None)]
            } else {
                uris.into_iter()
                    .map(|u| (method.to_owned(), None, u))
                    .collect()
            }
        }
        _ => vec![(
            method.to_owned(),
            text(&params["name"]),
            text(&params["uri"]),
        )],
    }
}

/// The JSON-RPC operation extractor. Invariants: no panic; when both it and `serde_json`
/// accept a body, they read the same method and targets in every message (a body only this
/// parser accepts cannot exist for the members it reads: their duplicates are refused; other
/// members' duplicates are ignored by rmcp's derived structs too); the headers parser never
/// panics.
pub fn operations(data: &[u8]) {
    if let Ok(ops) = parse_operations(data) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
            return;
        };
        let messages: Vec<&serde_json::Value> = match &v {
            serde_json::Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let expected: Vec<(String, Option<String>, Option<String>)> =
            messages.into_iter().flat_map(expected_targets).collect();
        let got: Vec<(String, Option<String>, Option<String>)> = ops
            .iter()
            .map(|o| {
                (
                    o.method().to_owned(),
                    o.name().map(str::to_owned),
                    o.uri().map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(got, expected);
    }
    let mut headers = http::HeaderMap::new();
    let half = data.len() / 2;
    for (name, bytes) in [("mcp-method", &data[..half]), ("mcp-name", &data[half..])] {
        if let Ok(v) = http::HeaderValue::from_bytes(bytes) {
            headers.insert(name, v);
        }
    }
    let _ = operation_from_headers(&headers);
}
