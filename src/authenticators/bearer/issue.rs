//! Issuing bearer tokens: [`TokenManager`] issues, rotates and revokes tokens in a
//! [`TokenStore`]; [`generate_token`] makes the random values.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::context::{AuthContext, AuthMethod};
use crate::error::ConfigError;
use crate::secret::{Secret, random_urlsafe};
use crate::store::{StoreError, TokenDigest, TokenRecord, TokenStore};

/// Generates a token: 256 bits from the operating system's random source, URL-safe base64
/// without padding (43 characters), after `prefix`.
///
/// # Errors
///
/// When `prefix` has characters outside `[A-Za-z0-9_-]` or is longer than 32, or the
/// random source fails.
pub fn generate_token(prefix: &str) -> Result<Secret, ConfigError> {
    if prefix.len() > 32
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ConfigError::new(
            "token prefix",
            "must be at most 32 characters of [A-Za-z0-9_-]",
        ));
    }
    let token = random_urlsafe::<32>(prefix).ok_or_else(|| {
        ConfigError::new(
            "token generator",
            "the operating system's random source failed",
        )
    })?;
    Ok(Secret::new(token))
}

fn generate_id() -> Result<String, StoreError> {
    random_urlsafe::<12>("tok_").ok_or_else(|| StoreError::unavailable("random source failed"))
}

/// A freshly issued token. The token is shown once; the store keeps only its digest.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token to hand to the client.
    pub token: Secret,
    /// Its non-secret id (for revocation and logs).
    pub id: String,
    /// When it expires.
    pub expires_at: SystemTime,
}

/// What to issue a token for.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    subject: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    ttl: Duration,
}

impl TokenSpec {
    /// A token for `subject`, valid for `ttl`.
    #[must_use]
    pub fn new(subject: impl Into<String>, ttl: Duration) -> Self {
        Self {
            subject: subject.into(),
            scopes: Vec::new(),
            roles: Vec::new(),
            ttl,
        }
    }

    /// Granted scopes.
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Granted roles.
    #[must_use]
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }
}

/// Why a rotation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RotateError {
    /// The old token is unknown, revoked or expired.
    NotLive,
    /// The store failed.
    Store(StoreError),
}

impl fmt::Display for RotateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLive => f.write_str("the token to rotate is unknown, revoked or expired"),
            Self::Store(e) => write!(f, "token store failed: {e}"),
        }
    }
}

impl std::error::Error for RotateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            Self::NotLive => None,
        }
    }
}

/// Issues, rotates and revokes tokens in a [`TokenStore`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use mcp_auth::{store::MemoryTokenStore, authenticators::bearer::{TokenManager, TokenSpec}};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryTokenStore::new();
/// let tokens = TokenManager::new(store.clone());
/// let issued = tokens
///     .issue(TokenSpec::new("ci-bot", Duration::from_secs(3600)).scopes(["data:read"]))
///     .await
///     .unwrap();
/// assert!(issued.token.expose().starts_with("mcp_"));
/// let rotated = tokens.rotate(issued.token.expose(), Duration::from_secs(3600)).await.unwrap();
/// assert_ne!(rotated.token, issued.token);
/// assert!(tokens.revoke(rotated.token.expose()).await.unwrap());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TokenManager<S> {
    store: S,
    prefix: String,
}

/// Default prefix of generated tokens (lets secret scanners recognise them).
pub const DEFAULT_TOKEN_PREFIX: &str = "mcp_";

impl<S: TokenStore> TokenManager<S> {
    /// A manager issuing tokens with prefix `mcp_` into `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            prefix: DEFAULT_TOKEN_PREFIX.to_owned(),
        }
    }

    /// Changes the token prefix.
    ///
    /// # Errors
    ///
    /// When `prefix` is not at most 32 characters of `[A-Za-z0-9_-]`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Result<Self, ConfigError> {
        let prefix = prefix.into();
        generate_token(&prefix)?; // validates
        self.prefix = prefix;
        Ok(self)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Issues a new token.
    ///
    /// # Errors
    ///
    /// When the store fails or is full.
    pub async fn issue(&self, spec: TokenSpec) -> Result<IssuedToken, StoreError> {
        let token =
            generate_token(&self.prefix).map_err(|e| StoreError::unavailable(e.to_string()))?;
        let id = generate_id()?;
        let expires_at = SystemTime::now()
            .checked_add(spec.ttl)
            .ok_or_else(|| StoreError::unavailable("the token lifetime overflows the clock"))?;
        let context = AuthContext::builder(spec.subject, AuthMethod::Bearer)
            .scopes(spec.scopes)
            .roles(spec.roles)
            .credential_id(id.clone())
            .expires_at(expires_at)
            .build();
        self.store
            .insert(
                TokenDigest::of(token.expose()),
                TokenRecord::new(context, expires_at),
            )
            .await?;
        Ok(IssuedToken {
            token,
            id,
            expires_at,
        })
    }

    /// Replaces a live token with a new one for the same subject, scopes and roles, valid for
    /// `ttl`; the old token is revoked.
    ///
    /// # Errors
    ///
    /// [`RotateError::NotLive`] when the old token is unknown, revoked or expired.
    pub async fn rotate(&self, current: &str, ttl: Duration) -> Result<IssuedToken, RotateError> {
        let digest = TokenDigest::of(current);
        let record = self.store.get(&digest).await.map_err(RotateError::Store)?;
        let Some(record) = record.filter(|r| !r.is_revoked() && r.expires_at() > SystemTime::now())
        else {
            return Err(RotateError::NotLive);
        };
        let ctx = record.context();
        let spec = TokenSpec::new(ctx.subject(), ttl)
            .scopes(ctx.scopes().iter())
            .roles(ctx.roles());
        let issued = self.issue(spec).await.map_err(RotateError::Store)?;
        self.store
            .revoke(&digest)
            .await
            .map_err(RotateError::Store)?;
        Ok(issued)
    }

    /// Revokes a token; `false` when unknown.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn revoke(&self, token: &str) -> Result<bool, StoreError> {
        self.store.revoke(&TokenDigest::of(token)).await
    }

    /// Revokes a token by its id; `false` when unknown.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn revoke_id(&self, id: &str) -> Result<bool, StoreError> {
        self.store.revoke_id(id).await
    }

    /// Revokes every token of `subject`; returns how many.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn revoke_subject(&self, subject: &str) -> Result<usize, StoreError> {
        self.store.revoke_subject(subject).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryTokenStore;

    #[test]
    fn generated_tokens_are_prefixed_url_safe_and_distinct() {
        let a = generate_token("mcp_").unwrap();
        let b = generate_token("mcp_").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 43);
        assert!(crate::authenticators::header::is_token68(a.expose()));
        assert!(
            a.expose()[4..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn invalid_prefixes_are_refused() {
        for p in ["a b", "x=", "é", &"p".repeat(33)] {
            assert!(generate_token(p).is_err(), "{p}");
        }
    }

    #[tokio::test]
    async fn issuing_with_a_lifetime_past_the_clock_is_an_error_not_a_panic() {
        // Review L2: `SystemTime::now() + ttl` panicked on overflow.
        let m = TokenManager::new(MemoryTokenStore::new());
        let err = m
            .issue(TokenSpec::new("s", Duration::MAX))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("overflows"), "{err}");
    }

    #[tokio::test]
    async fn full_store_purges_expired_then_refuses() {
        let store = MemoryTokenStore::with_capacity(2);
        let m = TokenManager::new(store.clone());
        m.issue(TokenSpec::new("a", Duration::ZERO)).await.unwrap();
        m.issue(TokenSpec::new("b", Duration::from_secs(60)))
            .await
            .unwrap();
        // The expired one is purged to make room.
        m.issue(TokenSpec::new("c", Duration::from_secs(60)))
            .await
            .unwrap();
        let err = m
            .issue(TokenSpec::new("d", Duration::from_secs(60)))
            .await
            .unwrap_err();
        assert!(err.is_full());
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn rotation_revokes_the_old_token_and_keeps_scopes() {
        let store = MemoryTokenStore::new();
        let m = TokenManager::new(store.clone());
        let old = m
            .issue(
                TokenSpec::new("s", Duration::from_secs(60))
                    .scopes(["x"])
                    .roles(["r"]),
            )
            .await
            .unwrap();
        let new = m
            .rotate(old.token.expose(), Duration::from_secs(60))
            .await
            .unwrap();
        let old_rec = store
            .get(&TokenDigest::of(old.token.expose()))
            .await
            .unwrap()
            .unwrap();
        assert!(old_rec.is_revoked());
        let new_rec = store
            .get(&TokenDigest::of(new.token.expose()))
            .await
            .unwrap()
            .unwrap();
        assert!(new_rec.context().has_scope("x") && new_rec.context().has_role("r"));
        assert!(matches!(
            m.rotate(old.token.expose(), Duration::from_secs(60)).await,
            Err(RotateError::NotLive)
        ));
    }

    #[tokio::test]
    async fn revoke_by_id_and_subject() {
        let m = TokenManager::new(MemoryTokenStore::new());
        let a = m
            .issue(TokenSpec::new("s", Duration::from_secs(60)))
            .await
            .unwrap();
        m.issue(TokenSpec::new("s", Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(m.revoke_id(&a.id).await.unwrap());
        assert_eq!(m.revoke_subject("s").await.unwrap(), 1);
        assert!(!m.revoke_id("tok_unknown").await.unwrap());
    }
}
