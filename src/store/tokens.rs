//! Issued bearer tokens: the [`TokenStore`] trait, its records, [`NoStore`] and the in-memory
//! [`MemoryTokenStore`]. Tokens are issued by
//! [`TokenManager`](crate::authenticators::bearer::TokenManager).
//!
//! Stores keep SHA-256 digests of tokens, never tokens. A record holds the caller's
//! [`AuthContext`], its expiry and whether it was revoked.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::context::AuthContext;
use crate::secret::digest;

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

use super::StoreError;

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
    async fn get(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, StoreError> {
        (**self).get(digest).await
    }
    fn get_now(&self, digest: &TokenDigest) -> Option<Result<Option<TokenRecord>, StoreError>> {
        (**self).get_now(digest)
    }
    async fn insert(&self, digest: TokenDigest, record: TokenRecord) -> Result<(), StoreError> {
        (**self).insert(digest, record).await
    }
    async fn revoke(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        (**self).revoke(digest).await
    }
    async fn revoke_id(&self, id: &str) -> Result<bool, StoreError> {
        (**self).revoke_id(id).await
    }
    async fn revoke_subject(&self, subject: &str) -> Result<usize, StoreError> {
        (**self).revoke_subject(subject).await
    }
}

/// A store with nothing in it: the default of [`BearerAuthenticator`](crate::authenticators::bearer::BearerAuthenticator)
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

/// What the store is called in the error of a poisoned lock.
const NAME: &str = "token store";

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
        let map = self.inner.read().map_err(|_| StoreError::poisoned(NAME))?;
        Ok(map.get(digest).cloned())
    }

    fn update(
        &self,
        f: impl FnOnce(&mut HashMap<TokenDigest, TokenRecord>) -> usize,
    ) -> Result<usize, StoreError> {
        let mut map = self.inner.write().map_err(|_| StoreError::poisoned(NAME))?;
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
        let mut map = self.inner.write().map_err(|_| StoreError::poisoned(NAME))?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::context::AuthMethod;

    #[tokio::test]
    async fn store_keeps_digests_not_tokens() {
        let store = MemoryTokenStore::new();
        let token = "mcp_secret-token-value-0123456789";
        let ctx = AuthContext::builder("s", AuthMethod::Bearer).build();
        let expires = SystemTime::now() + Duration::from_secs(60);
        store
            .insert(TokenDigest::of(token), TokenRecord::new(ctx, expires))
            .await
            .unwrap();
        let map = store.inner.read().unwrap();
        let dbg = format!("{:?}", *map);
        assert!(!dbg.contains(token));
        assert!(map.contains_key(&TokenDigest::of(token)));
    }
}
