//! Minting short-lived JWTs for service-to-service calls, tests and examples.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use serde_json::{Map, Value};

use super::keys::check_hmac;
use crate::context::Scopes;
use crate::error::ConfigError;
use crate::secret::Secret;

/// Default lifetime of a minted token.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// Mints JWTs with a shared secret or a private key.
///
/// # Example
///
/// ```
/// use mcp_auth::authenticators::jwt::{Algorithm, JwtAuthenticator, JwtKey, JwtMinter};
///
/// let secret = "an-hmac-secret-of-at-least-32-bytes!!";
/// let minter = JwtMinter::hmac(secret, Algorithm::HS256).unwrap()
///     .issuer("https://tools.internal")
///     .audience("https://mcp.example.com/mcp");
/// let token = minter.mint("ci-bot", ["data:read"]).unwrap();
///
/// let auth = JwtAuthenticator::builder()
///     .key(JwtKey::hmac(secret, Algorithm::HS256).unwrap())
///     .issuer("https://tools.internal")
///     .audience("https://mcp.example.com/mcp")
///     .build()
///     .unwrap();
/// let ctx = auth.verify(&token).unwrap();
/// assert_eq!(ctx.subject(), "ci-bot");
/// assert!(ctx.has_scope("data:read"));
/// ```
#[derive(Clone)]
pub struct JwtMinter {
    key: EncodingKey,
    alg: Algorithm,
    kid: Option<String>,
    issuer: Option<String>,
    audience: Vec<String>,
    ttl: Duration,
}

impl fmt::Debug for JwtMinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtMinter")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtMinter {
    /// Signs with an HMAC secret (at least 32 bytes).
    ///
    /// # Errors
    ///
    /// When `alg` is not HS256/384/512 or the secret is too short.
    pub fn hmac(secret: impl Into<Secret>, alg: Algorithm) -> Result<Self, ConfigError> {
        let secret = check_hmac("jwt minter", secret, alg)?;
        // jsonwebtoken copies the secret into the `EncodingKey` (a plain `Vec<u8>` it does not
        // zeroize); `secret` itself is zeroized when dropped here.
        Ok(Self::with_key(
            EncodingKey::from_secret(secret.expose().as_bytes()),
            alg,
        ))
    }

    /// Signs with a PEM private key (RSA, EC or Ed25519) for `alg`.
    ///
    /// # Errors
    ///
    /// When the PEM is not a private key of `alg`'s family.
    pub fn pem(pem: impl AsRef<[u8]>, alg: Algorithm) -> Result<Self, ConfigError> {
        let pem = pem.as_ref();
        let key = match alg.family() {
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
            AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
            AlgorithmFamily::Hmac => {
                return Err(ConfigError::new(
                    "jwt minter",
                    "use JwtMinter::hmac for HMAC algorithms",
                ));
            }
        }
        .map_err(|_| {
            ConfigError::new(
                "jwt minter",
                "the PEM is not a private key of the algorithm's family",
            )
        })?;
        Ok(Self::with_key(key, alg))
    }

    fn with_key(key: EncodingKey, alg: Algorithm) -> Self {
        Self {
            key,
            alg,
            kid: None,
            issuer: None,
            audience: Vec::new(),
            ttl: DEFAULT_TTL,
        }
    }

    /// Sets the header `kid`.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Sets `iss`.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Adds an audience (`aud`).
    #[must_use]
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience.push(aud.into());
        self
    }

    /// Sets the lifetime (default one hour). A lifetime that puts `exp` past 2^53 seconds
    /// (what verifiers accept as a JSON number) makes [`mint`](Self::mint) fail.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Mints a token for `subject` with these scopes (its `scope` claim lists them sorted,
    /// each once).
    ///
    /// # Errors
    ///
    /// When signing fails, or the lifetime is too large.
    pub fn mint<I, S>(&self, subject: &str, scopes: I) -> Result<String, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes: Scopes = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let mut claims = Map::new();
        claims.insert("sub".into(), subject.into());
        if !scopes.is_empty() {
            claims.insert("scope".into(), scopes.to_space_separated().into());
        }
        self.mint_claims(claims)
    }

    /// Mints a token with these claims, adding `iss`, `aud`, `iat`, `exp` and `jti` unless
    /// present.
    ///
    /// # Errors
    ///
    /// When signing fails, or the lifetime is too large.
    pub fn mint_claims(&self, mut claims: Map<String, Value>) -> Result<String, ConfigError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Some(iss) = &self.issuer {
            claims.entry("iss").or_insert_with(|| iss.clone().into());
        }
        match self.audience.as_slice() {
            [] => {}
            [one] => {
                claims.entry("aud").or_insert_with(|| one.clone().into());
            }
            many => {
                claims.entry("aud").or_insert_with(|| many.to_vec().into());
            }
        }
        claims.entry("iat").or_insert_with(|| now.into());
        if !claims.contains_key("exp") {
            // JSON numbers above 2^53 are not exact; verifiers refuse such an `exp`.
            const MAX_EXP: u64 = 1 << 53;
            let exp = now
                .checked_add(self.ttl.as_secs())
                .filter(|e| *e <= MAX_EXP)
                .ok_or_else(|| ConfigError::new("jwt minter", "the lifetime (ttl) is too large"))?;
            claims.insert("exp".into(), exp.into());
        }
        if !claims.contains_key("jti") {
            let id = crate::secret::random_urlsafe::<12>("")
                .ok_or_else(|| ConfigError::new("jwt minter", "random source failed"))?;
            claims.insert("jti".into(), id.into());
        }
        let mut header = Header::new(self.alg);
        header.kid.clone_from(&self.kid);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| ConfigError::new("jwt minter", format!("signing failed: {e}")))
    }
}
