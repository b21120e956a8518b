//! The JWKS cache: keys fetched from a JWKS URL (or found by discovery from an issuer),
//! refreshed without ever blocking requests whose keys are known.
//!
//! - Reads load an `Arc` snapshot ([`arc_swap`]): no lock on the hot path.
//! - Refreshes are single-flight: concurrent requests that need new keys wait for one fetch.
//! - An unknown `kid` triggers a refresh at most once per [`JwksPolicy::min_refresh_gap`], so a
//!   flood of random `kid`s cannot become a flood of fetches. The `kid` is never sent anywhere.
//! - Keys expire after `Cache-Control: max-age` (clamped to [`JwksPolicy::min_ttl`] ..
//!   [`JwksPolicy::max_ttl`], default [`JwksPolicy::default_ttl`]); an expired set is refreshed
//!   in the background while it keeps serving. After a failed refresh the last good keys are
//!   served for at most [`JwksPolicy::max_stale`].
//! - Nothing is fetched at startup unless asked
//!   ([`JwtAuthenticator::prefetch`](crate::authenticators::jwt::JwtAuthenticator::prefetch));
//!   until keys exist, requests get 503 with `Retry-After`, never 401.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::keys::{KeySet, Origin, keys_from_json};
use crate::error::ConfigError;
use crate::time::instant_after;

/// Least [`JwksPolicy::min_refresh_gap`] and [`JwksPolicy::fetch_timeout`] accepted (100 ms):
/// a zero gap would turn off the unknown-`kid` rate limit, a zero timeout fail every fetch.
pub const MIN_POLICY_INTERVAL: Duration = Duration::from_millis(100);

/// A discovered `jwks_uri` is discovered again after this long (and after a failed fetch).
pub const REDISCOVERY_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Timing and size limits of a JWKS cache.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwksPolicy {
    /// Least time between two fetches caused by unknown `kid`s or missing keys (default 10 s:
    /// a rotated key is accepted within 10 s of first use; at most 6 such fetches a minute).
    pub min_refresh_gap: Duration,
    /// Lifetime of a fetched set without `Cache-Control: max-age` (default 5 min).
    pub default_ttl: Duration,
    /// Lower bound for `max-age` (default 60 s).
    pub min_ttl: Duration,
    /// Upper bound for `max-age` (default 24 h).
    pub max_ttl: Duration,
    /// How long past its lifetime a set keeps serving while refreshes fail (default 6 h).
    pub max_stale: Duration,
    /// Timeout of one fetch, discovery included (default 5 s).
    pub fetch_timeout: Duration,
    /// Largest response body accepted (default 256 KiB).
    pub max_body_bytes: usize,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            min_refresh_gap: Duration::from_secs(10),
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            max_stale: Duration::from_secs(6 * 3600),
            fetch_timeout: Duration::from_secs(5),
            max_body_bytes: 256 * 1024,
        }
    }
}

impl JwksPolicy {
    /// The policy's problems: a `min_refresh_gap` or `fetch_timeout` under
    /// [`MIN_POLICY_INTERVAL`], `min_ttl` above `max_ttl`, a zero body limit.
    pub(crate) fn problems(&self) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        if self.min_refresh_gap < MIN_POLICY_INTERVAL {
            problems.push(ConfigError::new(
                "jwks min_refresh_gap",
                "must be at least 100 ms (it rate-limits fetches caused by unknown `kid`s)",
            ));
        }
        if self.fetch_timeout < MIN_POLICY_INTERVAL {
            problems.push(ConfigError::new(
                "jwks fetch_timeout",
                "must be at least 100 ms",
            ));
        }
        if self.min_ttl > self.max_ttl {
            problems.push(ConfigError::new("jwks min_ttl", "must not exceed max_ttl"));
        }
        if self.max_body_bytes == 0 {
            problems.push(ConfigError::new(
                "jwks max_body_bytes",
                "must be more than zero",
            ));
        }
        problems
    }
}

#[cfg(test)]
use crate::oauth::discovery_urls;
use crate::oauth::{DynFetcher, check_url, discover_metadata};

/// Where the keys come from.
#[derive(Debug, Clone)]
pub(crate) enum KeySource {
    Url(String),
    /// Discovery from an issuer: OpenID configuration, then OAuth server metadata.
    Issuer(String),
}

pub(crate) struct Snapshot {
    pub(crate) keys: KeySet,
    /// When keys were last loaded successfully.
    loaded_at: Option<Instant>,
    /// Serve without refreshing until then.
    fresh_until: Option<Instant>,
    /// Never serve these keys after then.
    usable_until: Option<Instant>,
    pub(crate) generation: u64,
}

impl Snapshot {
    fn empty() -> Self {
        Self {
            keys: KeySet::default(),
            loaded_at: None,
            fresh_until: None,
            usable_until: None,
            generation: 0,
        }
    }

    /// Whether keys may be used now.
    pub(crate) fn usable(&self, now: Instant) -> bool {
        self.usable_until.is_some_and(|t| now < t) && !self.keys.is_empty()
    }
}

struct RefreshState {
    last_attempt: Option<Instant>,
    /// The discovered `jwks_uri` and when it was discovered.
    jwks_uri: Option<(String, Instant)>,
}

/// The cache. Shared by every clone of the authenticator.
pub(crate) struct JwksCache {
    source: KeySource,
    fetcher: Arc<dyn DynFetcher>,
    policy: JwksPolicy,
    allow_symmetric: bool,
    snapshot: ArcSwap<Snapshot>,
    refresh: tokio::sync::Mutex<RefreshState>,
    background: AtomicBool,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snap = self.snapshot.load();
        f.debug_struct("JwksCache")
            .field("source", &self.source)
            .field("keys", &snap.keys.len())
            .field("generation", &snap.generation)
            .finish_non_exhaustive()
    }
}

/// What a refresh attempt achieved.
pub(crate) enum Refreshed {
    /// A newer snapshot exists (this call or a concurrent one fetched it).
    New(Arc<Snapshot>),
    /// No fetch was allowed or it failed; here is what there is, and when to retry.
    Unchanged(Arc<Snapshot>, Duration),
}

impl JwksCache {
    pub(crate) fn new(
        source: KeySource,
        fetcher: Arc<dyn DynFetcher>,
        policy: JwksPolicy,
        allow_symmetric: bool,
    ) -> Self {
        Self {
            source,
            fetcher,
            policy,
            allow_symmetric,
            snapshot: ArcSwap::from_pointee(Snapshot::empty()),
            refresh: tokio::sync::Mutex::new(RefreshState {
                last_attempt: None,
                jwks_uri: None,
            }),
            background: AtomicBool::new(false),
        }
    }

    /// The current snapshot (lock-free). Starts a background refresh when it is past its
    /// lifetime.
    pub(crate) fn current(self: &Arc<Self>) -> Arc<Snapshot> {
        let snap = self.snapshot.load_full();
        let now = Instant::now();
        if snap.fresh_until.is_some_and(|t| now >= t) {
            self.spawn_background_refresh();
        }
        snap
    }

    fn spawn_background_refresh(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        handle.spawn(async move {
            let seen = this.snapshot.load().generation;
            let _ = this.refresh(seen).await;
            this.background.store(false, Ordering::Release);
        });
    }

    /// Fetches new keys unless another caller already did since `seen_generation`, or the last
    /// attempt was less than `min_refresh_gap` ago. Single-flight: callers queue on one lock
    /// that only refreshers take.
    pub(crate) async fn refresh(&self, seen_generation: u64) -> Refreshed {
        let mut state = self.refresh.lock().await;
        let snap = self.snapshot.load_full();
        if snap.generation != seen_generation {
            return Refreshed::New(snap);
        }
        let now = Instant::now();
        if let Some(last) = state.last_attempt {
            let since = now.duration_since(last);
            if since < self.policy.min_refresh_gap {
                return Refreshed::Unchanged(
                    snap,
                    self.policy.min_refresh_gap.saturating_sub(since),
                );
            }
        }
        state.last_attempt = Some(now);
        let result =
            tokio::time::timeout(self.policy.fetch_timeout, self.fetch_keys(&mut state)).await;
        let result = result.unwrap_or_else(|_| Err("timed out".into()));
        match result {
            Ok((keys, max_age)) => Refreshed::New(self.loaded(&snap, keys, max_age)),
            Err(error) => self.failed(snap, &error),
        }
    }

    /// Publishes freshly fetched keys, for `max-age` clamped by the policy.
    fn loaded(&self, snap: &Snapshot, keys: KeySet, max_age: Option<Duration>) -> Arc<Snapshot> {
        // `max`, then `min`: never panics, even when a policy has min_ttl > max_ttl
        // (the builder refuses that); the upper bound wins.
        let ttl = max_age
            .unwrap_or(self.policy.default_ttl)
            .max(self.policy.min_ttl)
            .min(self.policy.max_ttl);
        let now = Instant::now();
        let next = Arc::new(Snapshot {
            keys,
            loaded_at: Some(now),
            fresh_until: Some(instant_after(now, ttl)),
            usable_until: Some(instant_after(
                now,
                ttl.saturating_add(self.policy.max_stale),
            )),
            generation: snap.generation.wrapping_add(1),
        });
        self.snapshot.store(next.clone());
        tracing::debug!(target: crate::telemetry::JWT_TARGET, keys = next.keys.len(), ?ttl, "JWKS refreshed");
        next
    }

    /// Logs a failed refresh and keeps serving the last good keys (within the stale limit).
    fn failed(&self, snap: Arc<Snapshot>, error: &str) -> Refreshed {
        tracing::warn!(
            target: crate::telemetry::JWT_TARGET,
            %error,
            serving_stale = snap.usable(Instant::now()),
            "JWKS refresh failed"
        );
        // Push the lifetime forward so every request does not spawn a refresh; the
        // stale limit still applies.
        if snap.loaded_at.is_some() {
            let retry = instant_after(Instant::now(), self.policy.min_refresh_gap);
            let next = Arc::new(Snapshot {
                keys: snap.keys.clone(),
                loaded_at: snap.loaded_at,
                fresh_until: Some(retry),
                usable_until: snap.usable_until,
                generation: snap.generation,
            });
            self.snapshot.store(next.clone());
            return Refreshed::Unchanged(next, self.policy.min_refresh_gap);
        }
        Refreshed::Unchanged(snap, self.policy.min_refresh_gap)
    }

    async fn fetch_keys(
        &self,
        state: &mut RefreshState,
    ) -> Result<(KeySet, Option<Duration>), String> {
        let now = Instant::now();
        let uri = match (&self.source, &state.jwks_uri) {
            (KeySource::Url(u), _) => u.clone(),
            // A discovered `jwks_uri` is reused for a day, then discovered again (the
            // provider may move it); a failed fetch below also forgets it.
            (KeySource::Issuer(_), Some((u, at)))
                if now.duration_since(*at) < REDISCOVERY_INTERVAL =>
            {
                u.clone()
            }
            (KeySource::Issuer(issuer), _) => {
                let u = self.discover(issuer).await?;
                state.jwks_uri = Some((u.clone(), now));
                u
            }
        };
        let fetched = match self
            .fetcher
            .get_boxed(&uri, self.policy.max_body_bytes)
            .await
        {
            Ok(f) => f,
            Err(e) => {
                state.jwks_uri = None;
                return Err(format!("JWKS fetch: {e}"));
            }
        };
        let (keys, skipped) = keys_from_json(
            &fetched.body,
            Origin::Fetched {
                allow_symmetric: self.allow_symmetric,
            },
        )
        .map_err(|e| format!("JWKS: {e}"))?;
        if keys.is_empty() {
            return Err(format!(
                "JWKS has no usable key ({} skipped)",
                skipped.len()
            ));
        }
        Ok((KeySet::new(keys), fetched.max_age))
    }

    async fn discover(&self, issuer: &str) -> Result<String, String> {
        let (url, meta) =
            discover_metadata(self.fetcher.as_ref(), issuer, self.policy.max_body_bytes).await?;
        let jwks_uri = meta
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{url}: no `jwks_uri`"))?;
        check_url("jwks_uri", jwks_uri).map_err(|e| format!("{url}: {e}"))?;
        Ok(jwks_uri.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::cache_control_max_age;

    #[test]
    fn max_age_is_parsed_from_cache_control() {
        assert_eq!(
            cache_control_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(cache_control_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_control_max_age("public"), None);
        assert_eq!(cache_control_max_age("max-age=abc"), None);
    }

    #[test]
    fn only_https_or_loopback_http_urls_are_accepted() {
        for ok in [
            "https://idp.example.com/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9/x",
        ] {
            assert!(check_url("u", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example.com/jwks",
            "http://127.0.0.1.evil.com/",
            "ftp://x",
            "http://evil@example.com/",
        ] {
            assert!(check_url("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn discovery_tries_openid_then_oauth_metadata() {
        assert_eq!(
            discovery_urls("https://as.example.com"),
            [
                "https://as.example.com/.well-known/openid-configuration",
                "https://as.example.com/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            discovery_urls("https://as.example.com/realms/mcp/"),
            [
                "https://as.example.com/realms/mcp/.well-known/openid-configuration",
                "https://as.example.com/.well-known/oauth-authorization-server/realms/mcp",
                "https://as.example.com/.well-known/openid-configuration/realms/mcp",
            ]
        );
    }
}
