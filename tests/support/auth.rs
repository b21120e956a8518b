//! A test authenticator.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_auth::{AuthContext, AuthError, AuthMethod, Authenticator};

/// An authenticator that takes 200 ms and counts the requests it looks at: only
/// `the-right-key-0123456789` in `X-API-Key` is accepted (as `alice`).
#[derive(Clone)]
pub struct Slow {
    pub seen: Arc<AtomicUsize>,
}

impl Authenticator for Slow {
    async fn authenticate(&self, parts: &http::request::Parts) -> Result<AuthContext, AuthError> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        match parts.headers.get("x-api-key") {
            Some(v) if v == "the-right-key-0123456789" => {
                Ok(AuthContext::builder("alice", AuthMethod::ApiKey).build())
            }
            Some(_) => Err(AuthError::invalid_token("unknown key")),
            None => Err(AuthError::missing_credentials()),
        }
    }
}
