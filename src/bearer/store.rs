//! Issued bearer tokens: the [`TokenStore`] trait, the in-memory [`MemoryTokenStore`], the
//! [`TokenManager`] that issues, rotates and revokes, and [`generate_token`].
//!
//! Stores keep SHA-256 digests of tokens, never tokens. A record holds the caller's
//! [`AuthContext`], its expiry and whether it was revoked.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::context::{AuthContext, AuthMethod};
use crate::credentials::digest;
use crate::error::ConfigError;
use crate::secret::Secret;

/// The SHA-256 digest of a token: the key stores index by. Its `Debug` shows no bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token`.
    #[must_use]
    pub fn of(token: &str) -> Self {
        Self(digest(token.as_bytes()))
    }

    /// The digest bytes (for stores that need a key, e.g. hex-encoded in Redis).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a digest from its bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// What a store knows about one issued token.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    context: AuthContext,
    expires_at: SystemTime,
    revoked: bool,
}

impl TokenRecord {
    /// A live record for a token that authenticates as `context` until `expires_at`.
    #[must_use]
    pub fn new(context: AuthContext, expires_at: SystemTime) -> Self {
        Self {
            context,
            expires_at,
            revoked: false,
        }
    }

    /// The caller the token authenticates as.
    #[must_use]
    pub fn context(&self) -> &AuthContext {
        &self.context
    }

    /// The token's id ([`AuthContext::credential_id`]).
    #[must_use]
    pub fn id(&self) -> &str {
        self.context.credential_id().unwrap_or("")
    }

    /// When the token expires.
    #[must_use]
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Whether it was revoked.
    #[must_use]
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// Marks the record revoked.
    #[must_use]
    pub fn into_revoked(mut self) -> Self {
        self.revoked = true;
        self
    }
}

pub use crate::store::StoreError;

/// Storage for issued tokens, keyed by digest. Implement it for a shared store (Redis, a
/// database) to make tokens and revocations hold across server instances.
///
/// Records are returned even when revoked or expired: the authenticator decides (and logs the
/// reason). Stores may drop records once expired.
pub trait TokenStore: Send + Sync + 'static {
    /// The record for `digest`, if any.
    fn get(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;

    /// The record without waiting, if the store can answer from memory. Default: `None`.
    fn get_now(&self, digest: &TokenDigest) -> Option<Result<Option<TokenRecord>, StoreError>> {
        let _ = digest;
        None
    }

    /// Stores a new record.
    fn insert(
        &self,
        digest: TokenDigest,
        record: TokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Marks the token revoked; `false` when unknown.
    fn revoke(&self, digest: &TokenDigest)
    -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks every live token with this id revoked; `false` when none.
    fn revoke_id(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks every live token of `subject` revoked; returns how many.
    fn revoke_subject(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

impl<T: TokenStore + ?Sized> TokenStore for Arc<T> {
    fn get(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send {
        (**self).get(digest)
    }
    fn get_now(&self, digest: &TokenDigest) -> Option<Result<Option<TokenRecord>, StoreError>> {
        (**self).get_now(digest)
    }
    fn insert(
        &self,
        digest: TokenDigest,
        record: TokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).insert(digest, record)
    }
    fn revoke(
        &self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).revoke(digest)
    }
    fn revoke_id(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).revoke_id(id)
    }
    fn revoke_subject(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        (**self).revoke_subject(subject)
    }
}

/// A store with nothing in it: the default of [`BearerAuthenticator`](super::BearerAuthenticator)
/// when only static tokens are used.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

impl TokenStore for NoStore {
    async fn get(&self, _: &TokenDigest) -> Result<Option<TokenRecord>, StoreError> {
        Ok(None)
    }
    fn get_now(&self, _: &TokenDigest) -> Option<Result<Option<TokenRecord>, StoreError>> {
        Some(Ok(None))
    }
    async fn insert(&self, _: TokenDigest, _: TokenRecord) -> Result<(), StoreError> {
        Err(StoreError::unavailable("NoStore cannot hold tokens"))
    }
    async fn revoke(&self, _: &TokenDigest) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn revoke_id(&self, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn revoke_subject(&self, _: &str) -> Result<usize, StoreError> {
        Ok(0)
    }
}

/// Default capacity of a [`MemoryTokenStore`].
pub const DEFAULT_MEMORY_CAPACITY: usize = 100_000;

/// An in-memory [`TokenStore`] for one server instance. Cheap to clone (clones share the
/// data). Expired records are purged when the store fills up; inserting into a store full of
/// live tokens fails with [`StoreError::full`], so memory stays bounded.
#[derive(Clone)]
pub struct MemoryTokenStore {
    inner: Arc<RwLock<HashMap<TokenDigest, TokenRecord>>>,
    capacity: usize,
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore")
            .field("tokens", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for MemoryTokenStore {
    fn default() -> Self {
        Self::new()
    }
}

fn poisoned() -> StoreError {
    StoreError::unavailable("token store lock poisoned")
}

impl MemoryTokenStore {
    /// An empty store holding at most [`DEFAULT_MEMORY_CAPACITY`] tokens.
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_MEMORY_CAPACITY)
    }

    /// An empty store holding at most `capacity` tokens.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(RwLock::new(HashMap::new())),
            capacity,
        }
    }

    /// Number of records (live, revoked or expired but not yet purged).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |m| m.len())
    }

    /// Whether the store is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops expired records; returns how many.
    pub fn purge_expired(&self) -> usize {
        let now = SystemTime::now();
        let Ok(mut map) = self.inner.write() else {
            return 0;
        };
        let before = map.len();
        map.retain(|_, r| r.expires_at > now);
        before.saturating_sub(map.len())
    }

    fn read(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, StoreError> {
        let map = self.inner.read().map_err(|_| poisoned())?;
        Ok(map.get(digest).cloned())
    }

    fn update(
        &self,
        f: impl FnOnce(&mut HashMap<TokenDigest, TokenRecord>) -> usize,
    ) -> Result<usize, StoreError> {
        let mut map = self.inner.write().map_err(|_| poisoned())?;
        Ok(f(&mut map))
    }
}

fn revoke_where(
    map: &mut HashMap<TokenDigest, TokenRecord>,
    pred: impl Fn(&TokenRecord) -> bool,
) -> usize {
    let mut n = 0usize;
    for r in map.values_mut() {
        if !r.revoked && pred(r) {
            r.revoked = true;
            n = n.saturating_add(1);
        }
    }
    n
}

impl TokenStore for MemoryTokenStore {
    async fn get(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, StoreError> {
        self.read(digest)
    }

    fn get_now(&self, digest: &TokenDigest) -> Option<Result<Option<TokenRecord>, StoreError>> {
        Some(self.read(digest))
    }

    async fn insert(&self, digest: TokenDigest, record: TokenRecord) -> Result<(), StoreError> {
        let mut map = self.inner.write().map_err(|_| poisoned())?;
        if map.len() >= self.capacity {
            let now = SystemTime::now();
            map.retain(|_, r| r.expires_at > now);
        }
        if map.len() >= self.capacity {
            return Err(StoreError::full());
        }
        map.insert(digest, record);
        Ok(())
    }

    async fn revoke(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        self.update(|m| {
            m.get_mut(digest).map_or(0, |r| {
                r.revoked = true;
                1
            })
        })
        .map(|n| n > 0)
    }

    async fn revoke_id(&self, id: &str) -> Result<bool, StoreError> {
        self.update(|m| revoke_where(m, |r| r.id() == id))
            .map(|n| n > 0)
    }

    async fn revoke_subject(&self, subject: &str) -> Result<usize, StoreError> {
        self.update(|m| revoke_where(m, |r| r.context.subject() == subject))
    }
}

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
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|_| {
        ConfigError::new(
            "token generator",
            "the operating system's random source failed",
        )
    })?;
    let mut out = String::with_capacity(prefix.len().saturating_add(43));
    out.push_str(prefix);
    URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut out);
    Ok(Secret::new(out))
}

fn generate_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|_| StoreError::unavailable("random source failed"))?;
    Ok(format!("tok_{}", URL_SAFE_NO_PAD.encode(bytes)))
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
/// use mcp_auth::bearer::{MemoryTokenStore, TokenManager, TokenSpec};
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
        let Some(record) = record.filter(|r| !r.revoked && r.expires_at > SystemTime::now()) else {
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

    #[test]
    fn generated_tokens_are_prefixed_url_safe_and_distinct() {
        let a = generate_token("mcp_").unwrap();
        let b = generate_token("mcp_").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 43);
        assert!(crate::header::is_token68(a.expose()));
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
    async fn store_keeps_digests_not_tokens() {
        let store = MemoryTokenStore::new();
        let m = TokenManager::new(store.clone());
        let t = m
            .issue(TokenSpec::new("s", Duration::from_secs(60)))
            .await
            .unwrap();
        let map = store.inner.read().unwrap();
        let dbg = format!("{:?}", *map);
        assert!(!dbg.contains(t.token.expose()));
        assert!(map.contains_key(&TokenDigest::of(t.token.expose())));
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
