//! Revocation lists for self-contained tokens (JWTs): the [`RevocationList`] trait, what it
//! is asked about ([`Principal`], [`TokenFacts`]) and the in-memory
//! [`MemoryRevocationList`]. [`Revocable`](crate::authenticators::revocable::Revocable) checks
//! a list after an authenticator accepts a token.
//!
//! Entries expire with the tokens they revoke (a `jti` entry lives until the token's `exp`;
//! a subject or client entry lives as long as the longest token lifetime you give it), so the
//! list stays small.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::context::{AuthContext, push_escaped};
use crate::strict_json::numeric_date;

use super::StoreError;
use super::bounded::{Locked, debug_entries, memory_store};

/// Whose tokens a time-based revocation covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Principal<'a> {
    /// Tokens whose `sub` is `subject` (from `issuer`, when given).
    Subject {
        /// The issuer, or `None` for tokens of any issuer.
        issuer: Option<&'a str>,
        /// The subject.
        subject: &'a str,
    },
    /// Tokens issued to the OAuth client `client_id`.
    Client {
        /// The issuer, or `None` for tokens of any issuer.
        issuer: Option<&'a str>,
        /// The client id.
        client_id: &'a str,
    },
}

impl Principal<'_> {
    /// The storage key: `sub|<issuer>|<subject>` or `client|<issuer>|<client>`, with `%` and
    /// `|` escaped so no two principals share a key.
    #[must_use]
    pub fn key(&self) -> String {
        let (kind, issuer, name) = match self {
            Principal::Subject { issuer, subject } => ("sub|", issuer, subject),
            Principal::Client { issuer, client_id } => ("client|", issuer, client_id),
        };
        let issuer = issuer.unwrap_or("");
        let mut key = String::with_capacity(kind.len() + issuer.len() + name.len() + 1);
        key.push_str(kind);
        push_escaped(&mut key, issuer);
        key.push('|');
        push_escaped(&mut key, name);
        key
    }
}

/// What [`RevocationList::revoked`] looks up for one token.
#[derive(Debug, Clone)]
pub struct TokenFacts {
    /// The token id (`jti`), when the token has one.
    pub token_id: Option<String>,
    /// When it was issued (`iat`), when known. A token without `iat` is treated as issued at
    /// the epoch, so every time-based revocation covers it.
    pub issued_at: Option<SystemTime>,
    /// Principal keys to check ([`Principal::key`]): the subject with and without its issuer,
    /// and the client likewise.
    pub principal_keys: Vec<String>,
}

impl TokenFacts {
    /// The facts of an authenticated context: `credential_id` as the token id, `iat` from
    /// the claims, the subject and client.
    #[must_use]
    pub fn of(ctx: &AuthContext) -> Self {
        let issuer = ctx.issuer();
        let mut keys = vec![
            Principal::Subject {
                issuer: None,
                subject: ctx.subject(),
            }
            .key(),
        ];
        if issuer.is_some() {
            keys.push(
                Principal::Subject {
                    issuer,
                    subject: ctx.subject(),
                }
                .key(),
            );
        }
        if let Some(client_id) = ctx.client_id() {
            keys.push(
                Principal::Client {
                    issuer: None,
                    client_id,
                }
                .key(),
            );
            if issuer.is_some() {
                keys.push(Principal::Client { issuer, client_id }.key());
            }
        }
        let issued_at = ctx
            .claims()
            .and_then(|c| c.get("iat"))
            .and_then(numeric_date)
            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)));
        Self {
            token_id: ctx.credential_id().map(str::to_owned),
            issued_at,
            principal_keys: keys,
        }
    }
}

/// A list of revoked tokens and principals.
pub trait RevocationList: Send + Sync + 'static {
    /// Revokes the token with id `token_id` until `expires_at` (its `exp`; the entry is
    /// dropped after).
    fn revoke_token_id(
        &self,
        token_id: &str,
        expires_at: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Revokes every token of `principal` issued before `before`; the entry lives for `ttl`
    /// (give it your longest token lifetime).
    fn revoke_before(
        &self,
        principal: Principal<'_>,
        before: SystemTime,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether a token with these facts is revoked.
    fn revoked(&self, facts: &TokenFacts) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: RevocationList + ?Sized> RevocationList for Arc<T> {
    async fn revoke_token_id(
        &self,
        token_id: &str,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        (**self).revoke_token_id(token_id, expires_at).await
    }
    async fn revoke_before(
        &self,
        principal: Principal<'_>,
        before: SystemTime,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        (**self).revoke_before(principal, before, ttl).await
    }
    async fn revoked(&self, facts: &TokenFacts) -> Result<bool, StoreError> {
        (**self).revoked(facts).await
    }
}

/// An in-process revocation list, bounded (default 100,000 entries; a revocation that does
/// not fit after dropping expired entries is refused with [`StoreError::full`], never dropped
/// silently).
#[derive(Clone)]
pub struct MemoryRevocationList {
    inner: Locked<Entries>,
}

struct Entries {
    /// `jti:<id>` → expiry; `<principal key>` → (before, expiry).
    token_ids: HashMap<String, SystemTime>,
    principals: HashMap<String, (SystemTime, SystemTime)>,
    capacity: usize,
}

impl Entries {
    fn len(&self) -> usize {
        self.token_ids.len().saturating_add(self.principals.len())
    }

    fn make_room(&mut self, now: SystemTime) -> Result<(), StoreError> {
        if self.len() >= self.capacity {
            self.token_ids.retain(|_, exp| *exp > now);
            self.principals.retain(|_, (_, exp)| *exp > now);
        }
        if self.len() >= self.capacity {
            return Err(StoreError::full());
        }
        Ok(())
    }
}

impl fmt::Debug for MemoryRevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.inner.peek(Entries::len).unwrap_or(0);
        debug_entries(f, "MemoryRevocationList", len)
    }
}

memory_store!(
    MemoryRevocationList,
    capacity: 100_000,
    new: "A list of up to 100,000 entries."
);

impl MemoryRevocationList {
    /// A list of up to `capacity` entries.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let entries = Entries {
            token_ids: HashMap::new(),
            principals: HashMap::new(),
            capacity: capacity.max(1),
        };
        Self {
            inner: Locked::new("revocation list", entries),
        }
    }
}

/// `now + ttl`; a `ttl` past the clock's range keeps the entry for a century instead (a
/// revocation must not expire early by overflowing).
fn expiry(now: SystemTime, ttl: Duration) -> Result<SystemTime, StoreError> {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(ttl)
        .or_else(|| now.checked_add(CENTURY))
        .ok_or_else(|| StoreError::unavailable("the revocation lifetime overflows the clock"))
}

impl RevocationList for MemoryRevocationList {
    async fn revoke_token_id(
        &self,
        token_id: &str,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let now = SystemTime::now();
        self.inner.with(|e| {
            if !e.token_ids.contains_key(token_id) {
                e.make_room(now)?;
            }
            e.token_ids.insert(token_id.to_owned(), expires_at);
            Ok(())
        })?
    }

    async fn revoke_before(
        &self,
        principal: Principal<'_>,
        before: SystemTime,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = SystemTime::now();
        let key = principal.key();
        self.inner.with(|e| {
            if !e.principals.contains_key(&key) {
                e.make_room(now)?;
            }
            let until = expiry(now, ttl)?;
            let entry = e.principals.entry(key).or_insert((before, until));
            entry.0 = entry.0.max(before);
            entry.1 = entry.1.max(until);
            Ok(())
        })?
    }

    async fn revoked(&self, facts: &TokenFacts) -> Result<bool, StoreError> {
        let now = SystemTime::now();
        self.inner.with(|e| {
            let by_id = facts
                .token_id
                .as_ref()
                .and_then(|id| e.token_ids.get(id))
                .is_some_and(|exp| *exp > now);
            let issued = facts.issued_at.unwrap_or(UNIX_EPOCH);
            by_id
                || facts.principal_keys.iter().any(|k| {
                    e.principals
                        .get(k)
                        .is_some_and(|(before, exp)| *exp > now && issued < *before)
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::AuthMethod;

    fn facts(jti: Option<&str>, sub: &str, client: Option<&str>, iat: u64) -> TokenFacts {
        let mut claims = serde_json::Map::new();
        claims.insert("iat".into(), iat.into());
        let mut b = AuthContext::builder(sub, AuthMethod::Jwt)
            .issuer("https://as")
            .claims(claims);
        if let Some(j) = jti {
            b = b.credential_id(j);
        }
        if let Some(c) = client {
            b = b.client_id(c);
        }
        TokenFacts::of(&b.build())
    }

    fn secs(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[tokio::test]
    async fn a_revocation_lifetime_past_the_clock_does_not_panic_and_still_revokes() {
        // Review L2: `now + ttl` panicked on overflow.
        let l = MemoryRevocationList::new();
        let p = Principal::Subject {
            issuer: None,
            subject: "alice",
        };
        l.revoke_before(p, SystemTime::now(), Duration::MAX)
            .await
            .unwrap();
        assert!(l.revoked(&facts(None, "alice", None, 1)).await.unwrap());
    }

    #[tokio::test]
    async fn token_ids_subjects_and_clients_are_revoked_until_their_entries_expire() {
        let l = MemoryRevocationList::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let t = facts(Some("j1"), "alice", Some("app"), now - 10);
        assert!(!l.revoked(&t).await.unwrap());
        l.revoke_token_id("j1", secs(now + 60)).await.unwrap();
        assert!(l.revoked(&t).await.unwrap());
        assert!(
            !l.revoked(&facts(Some("j2"), "alice", None, now - 10))
                .await
                .unwrap()
        );
        // An expired jti entry no longer counts (the token itself has expired anyway).
        l.revoke_token_id("j3", secs(now - 1)).await.unwrap();
        assert!(
            !l.revoked(&facts(Some("j3"), "bob", None, now - 10))
                .await
                .unwrap()
        );

        // Everything the app client got before now; tokens issued later pass.
        l.revoke_before(
            Principal::Client {
                issuer: Some("https://as"),
                client_id: "app",
            },
            secs(now - 5),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        assert!(
            l.revoked(&facts(None, "carol", Some("app"), now - 10))
                .await
                .unwrap()
        );
        assert!(
            !l.revoked(&facts(None, "carol", Some("app"), now))
                .await
                .unwrap()
        );
        assert!(
            !l.revoked(&facts(None, "carol", Some("other"), now - 10))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_full_list_refuses_new_revocations_rather_than_drop_them() {
        let l = MemoryRevocationList::with_capacity(2);
        let later = SystemTime::now() + Duration::from_secs(60);
        l.revoke_token_id("a", later).await.unwrap();
        l.revoke_token_id("b", later).await.unwrap();
        assert!(l.revoke_token_id("c", later).await.unwrap_err().is_full());
        l.revoke_token_id("a", later).await.unwrap();
    }

    #[test]
    fn principal_keys_cannot_collide() {
        let a = Principal::Subject {
            issuer: Some("x|y"),
            subject: "z",
        };
        let b = Principal::Subject {
            issuer: Some("x"),
            subject: "y|z",
        };
        assert_ne!(a.key(), b.key());
    }
}
