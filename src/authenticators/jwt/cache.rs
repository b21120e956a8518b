//! The verified-token cache: a repeated token skips signature verification while unexpired.

use super::SourceId;
use crate::authenticators::claims::TtlCache;
use crate::context::AuthContext;

/// One verified token: its context, and the key source and id of the fetched key that
/// verified it (`None` for a configured key).
#[derive(Clone)]
struct Verified {
    ctx: AuthContext,
    fetched_key: Option<(SourceId, [u8; 32])>,
}

/// A bounded cache of verified tokens, keyed by the token's SHA-256 (eviction: see
/// [`TtlCache`]). Entries never outlive the token's own `exp` (plus leeway), and an entry
/// verified by a fetched key is served only while that key is still in the current, usable
/// JWKS of its own key source (a key the provider removed stops vouching for cached tokens at
/// the next refresh).
pub(super) struct VerifiedCache {
    /// Deadlines in seconds since the epoch.
    map: TtlCache<Verified, u64>,
}

impl VerifiedCache {
    /// A cache of at most `capacity` tokens.
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            map: TtlCache::new(capacity),
        }
    }

    /// The context of a token verified before, unless it expired (`now` in seconds since the
    /// epoch) or its fetched key is no longer published (`published(source, id)` is false).
    pub(super) fn get(
        &self,
        key: &[u8; 32],
        now: u64,
        published: impl FnOnce(SourceId, &[u8; 32]) -> bool,
    ) -> Option<AuthContext> {
        let v = self.map.get(key, now)?;
        match &v.fetched_key {
            None => Some(v.ctx),
            Some((source, id)) => published(*source, id).then_some(v.ctx),
        }
    }

    /// Remembers a verified token until `until` (`exp` plus leeway).
    pub(super) fn insert(
        &self,
        key: [u8; 32],
        ctx: AuthContext,
        until: u64,
        fetched_key: Option<(SourceId, [u8; 32])>,
        now: u64,
    ) {
        self.map
            .insert(key, Verified { ctx, fetched_key }, until, now);
    }
}
