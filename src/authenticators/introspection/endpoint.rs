//! The introspection endpoint: configured, or discovered from the issuer's metadata
//! (single-flight; a failed discovery is retried only after the cooldown).

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use super::{Inner, IntrospectionAuthenticator, unavailable};
use crate::error::AuthError;
use crate::oauth::{check_url, discover_metadata};

/// The introspection endpoint: configured, or discovered (once; a failure is retried only
/// after the cooldown).
pub(super) struct Endpoint {
    configured: Option<String>,
    found: RwLock<Option<String>>,
    failed_at: Mutex<Option<Instant>>,
    discovering: tokio::sync::Mutex<()>,
    cooldown: Duration,
}

impl Endpoint {
    /// The `configured` endpoint, or none yet (discovered on first use).
    pub(super) fn new(configured: Option<String>, cooldown: Duration) -> Self {
        Self {
            configured,
            found: RwLock::new(None),
            failed_at: Mutex::new(None),
            discovering: tokio::sync::Mutex::new(()),
            cooldown,
        }
    }

    /// The endpoint, when configured or discovered.
    pub(super) fn known(&self) -> Option<String> {
        if let Some(e) = &self.configured {
            return Some(e.clone());
        }
        self.found.read().ok().and_then(|f| f.clone())
    }

    /// Time left before discovery may be tried again.
    fn cooling(&self, now: Instant) -> Option<Duration> {
        let failed = (*self.failed_at.lock().ok()?)?;
        let since = now.saturating_duration_since(failed);
        (since < self.cooldown).then(|| self.cooldown.saturating_sub(since))
    }

    /// The endpoint if known, or a 503 while discovery cools down after a failure.
    fn ready(&self) -> Option<Result<String, AuthError>> {
        if let Some(e) = self.known() {
            return Some(Ok(e));
        }
        let left = self.cooling(Instant::now())?;
        Some(Err(AuthError::unavailable(
            "introspection endpoint discovery failed recently",
        )
        .with_retry_after(left.max(Duration::from_secs(1)))))
    }
}

impl IntrospectionAuthenticator {
    /// The endpoint: configured, found before, or discovered now (one discovery at a time).
    pub(super) async fn endpoint(&self) -> Result<String, AuthError> {
        let ep = &self.inner.endpoint;
        if let Some(ready) = ep.ready() {
            return ready;
        }
        // Single-flight: one discovery at a time; the others find its result.
        let _guard = ep.discovering.lock().await;
        if let Some(ready) = ep.ready() {
            return ready;
        }
        match discover(&self.inner).await {
            Ok(e) => {
                if let Ok(mut f) = ep.found.write() {
                    *f = Some(e.clone());
                }
                Ok(e)
            }
            Err(e) => {
                if let Ok(mut at) = ep.failed_at.lock() {
                    *at = Some(Instant::now());
                }
                tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = %e, "introspection endpoint discovery failed");
                Err(unavailable(e).with_retry_after(ep.cooldown.max(Duration::from_secs(1))))
            }
        }
    }
}

/// `introspection_endpoint` from the issuer's metadata (OpenID configuration, then RFC 8414).
async fn discover(inner: &Inner) -> Result<String, String> {
    let issuer = inner.issuer.as_deref().unwrap_or_default();
    let (url, meta) = discover_metadata(
        inner.fetcher.as_ref(),
        issuer,
        inner.settings.max_body_bytes,
    )
    .await?;
    let endpoint = meta
        .get("introspection_endpoint")
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("{url}: no `introspection_endpoint`"))?;
    check_url("introspection_endpoint", endpoint).map_err(|e| e.to_string())?;
    Ok(endpoint.to_owned())
}
