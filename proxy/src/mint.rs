//! The proxy's own credential for the upstream: a short-lived JWT minted per caller
//! (`MCP_UPSTREAM_JWT_*`), sent as `Authorization: Bearer`, cached per principal for half its
//! lifetime.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderValue;
use mcp_auth::AuthContext;
use mcp_auth::authenticators::jwt::JwtMinter;
use serde_json::{Map, Value};

/// Most callers whose tokens are kept at once; past it, expired ones are dropped, then all.
const MAX_CACHED: usize = 10_000;

/// Mints the upstream's tokens: `sub`, `scope`, `roles` and `client_id` from the caller's
/// [`AuthContext`], `iss`, `aud`, `iat`, `exp` and `jti` from the minter.
pub(crate) struct UpstreamJwt {
    minter: JwtMinter,
    /// How long a minted token is reused: half its lifetime, so the upstream always gets one
    /// with at least half its lifetime left.
    reuse: Duration,
    cache: Mutex<HashMap<String, (HeaderValue, Instant)>>,
}

impl fmt::Debug for UpstreamJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamJwt")
            .field("minter", &self.minter)
            .field("reuse", &self.reuse)
            .finish_non_exhaustive()
    }
}

/// Minting failed (logged; the request gets 502).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MintFailed;

impl UpstreamJwt {
    /// Mints with `minter` (already given its issuer, audience and `ttl`).
    pub(crate) fn new(minter: JwtMinter, ttl: Duration) -> Self {
        Self {
            minter,
            reuse: ttl / 2,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The claims of the caller's token (besides the registered ones the minter adds).
    fn claims(ctx: &AuthContext) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), ctx.subject().into());
        let scopes = ctx.scopes().to_space_separated();
        if !scopes.is_empty() {
            claims.insert("scope".into(), scopes.into());
        }
        let roles: Vec<Value> = ctx.roles().map(Value::from).collect();
        if !roles.is_empty() {
            claims.insert("roles".into(), roles.into());
        }
        if let Some(id) = ctx.client_id() {
            claims.insert("client_id".into(), id.into());
        }
        claims
    }

    /// `Bearer <token>` for this caller: a cached one younger than half its lifetime, or a
    /// new one.
    pub(crate) fn authorization(&self, ctx: &AuthContext) -> Result<HeaderValue, MintFailed> {
        let claims = Self::claims(ctx);
        // The claims themselves identify the principal (what the token says is all that
        // matters to the upstream).
        let key = Value::Object(claims.clone()).to_string();
        let now = Instant::now();
        {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((value, at)) = cache.get(&key)
                && now.duration_since(*at) < self.reuse
            {
                return Ok(value.clone());
            }
        }
        let token = self.minter.mint_claims(claims).map_err(|e| {
            tracing::error!(target: "mcp_auth_proxy::mint", error = %e, "minting the upstream's token failed");
            MintFailed
        })?;
        let mut value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| MintFailed)?;
        value.set_sensitive(true);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (_, at)| now.duration_since(*at) < self.reuse);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, (value.clone(), now));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_auth::AuthMethod;
    use mcp_auth::authenticators::jwt::{Algorithm, JwtAuthenticator, JwtKey};

    const SECRET: &str = "an-upstream-secret-of-at-least-32-bytes";

    fn minter(ttl: Duration) -> UpstreamJwt {
        let m = JwtMinter::hmac(SECRET, Algorithm::HS256)
            .unwrap()
            .issuer("http://proxy")
            .audience("http://upstream/mcp")
            .ttl(ttl);
        UpstreamJwt::new(m, ttl)
    }

    fn token(v: &HeaderValue) -> String {
        v.to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned()
    }

    #[test]
    fn the_token_carries_the_callers_identity_and_verifies() {
        let ctx = AuthContext::builder("alice", AuthMethod::ApiKey)
            .scopes(["data:read"])
            .roles(["ops"])
            .client_id("app")
            .build();
        let v = minter(Duration::from_secs(60)).authorization(&ctx).unwrap();
        assert!(v.is_sensitive());
        let auth = JwtAuthenticator::builder()
            .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
            .issuer("http://proxy")
            .audience("http://upstream/mcp")
            .build()
            .unwrap();
        let got = auth.verify(&token(&v)).unwrap();
        assert_eq!(got.subject(), "alice");
        assert!(got.has_scope("data:read"));
        assert!(got.has_role("ops"));
        assert_eq!(got.client_id(), Some("app"));
    }

    #[test]
    fn tokens_are_reused_per_principal_for_half_their_lifetime() {
        let m = minter(Duration::from_secs(60));
        let a = AuthContext::builder("alice", AuthMethod::Bearer).build();
        let b = AuthContext::builder("bob", AuthMethod::Bearer).build();
        let a1 = m.authorization(&a).unwrap();
        assert_eq!(a1, m.authorization(&a).unwrap(), "cached");
        assert_ne!(a1, m.authorization(&b).unwrap(), "per principal");
        let short = minter(Duration::from_millis(2));
        let s1 = short.authorization(&a).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_ne!(
            s1,
            short.authorization(&a).unwrap(),
            "renewed after half its life"
        );
    }

    /// The cost the cache saves (run with `--ignored --nocapture`).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn mint_cost() {
        let m = JwtMinter::hmac(SECRET, Algorithm::HS256)
            .unwrap()
            .ttl(Duration::from_secs(60));
        let ctx = AuthContext::builder("alice", AuthMethod::Bearer)
            .scopes(["data:read"])
            .build();
        let n = 10_000;
        let start = Instant::now();
        for _ in 0..n {
            let _ = m.mint_claims(UpstreamJwt::claims(&ctx)).unwrap();
        }
        let per_mint = start.elapsed() / n;
        let cached = UpstreamJwt::new(m, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..n {
            let _ = cached.authorization(&ctx).unwrap();
        }
        println!(
            "HS256 mint: {per_mint:?} each; cached: {:?} each",
            start.elapsed() / n
        );
        // RS256, with a PEM key named by MINT_COST_RSA_PEM (e.g. from `openssl genrsa 2048`).
        if let Ok(path) = std::env::var("MINT_COST_RSA_PEM") {
            let pem = std::fs::read(path).unwrap();
            let m = JwtMinter::pem(pem, Algorithm::RS256).unwrap();
            let n = 200;
            let start = Instant::now();
            for _ in 0..n {
                let _ = m.mint_claims(UpstreamJwt::claims(&ctx)).unwrap();
            }
            println!("RS256 mint: {:?} each", start.elapsed() / n);
        }
    }
}
