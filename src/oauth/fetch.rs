//! The HTTP client seam shared by the JWKS cache and token introspection: one
//! [`HttpFetcher`] (by default [`ReqwestFetcher`], feature `reqwest`) can serve both, so a
//! server keeps one connection pool and one TLS configuration for its authorization server.
//!
//! # Example
//!
//! ```
//! use mcp_auth::oauth::{Fetched, FetchError, HttpFetcher};
//!
//! /// Serves a fixed JWKS document (tests, air-gapped deployments).
//! struct Fixed(&'static str);
//!
//! impl HttpFetcher for Fixed {
//!     async fn get(&self, _url: &str, max: usize) -> Result<Fetched, FetchError> {
//!         if self.0.len() > max {
//!             return Err(FetchError("too large".into()));
//!         }
//!         Ok(Fetched { body: self.0.as_bytes().to_vec().into(), max_age: None })
//!     }
//! }
//! # let f = Fixed("{\"keys\":[]}");
//! # let got = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f.get("https://x", 1024)).unwrap();
//! # assert_eq!(&got.body[..], b"{\"keys\":[]}");
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use std::sync::Arc;

use crate::error::ConfigError;

/// A fetched HTTP document.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The response body (already limited to the policy's size).
    pub body: Bytes,
    /// `Cache-Control: max-age`, if the response had one.
    pub max_age: Option<Duration>,
}

/// A fetch failed (connection, status, size, timeout).
#[derive(Debug, Clone)]
pub struct FetchError(pub String);

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FetchError {}

impl FetchError {
    /// The error for a non-2xx answer: `status <code>`. Fetchers should report HTTP statuses
    /// this way so callers can tell them apart ([`http_status`](Self::http_status)): token
    /// introspection treats a 400 as an inactive token, other statuses as an outage.
    #[must_use]
    pub fn status(code: u16) -> Self {
        Self(format!("status {code}"))
    }

    /// The HTTP status, when this error is one made by [`status`](Self::status).
    #[must_use]
    pub fn http_status(&self) -> Option<u16> {
        let code = self.0.strip_prefix("status ")?;
        (code.len() == 3)
            .then(|| code.parse::<u16>().ok())
            .flatten()
            .filter(|c| (100..=599).contains(c))
    }
}

/// Fetches JWKS and discovery documents. Implement it to use your own HTTP stack; the
/// default, [`ReqwestFetcher`] (feature `reqwest`), uses reqwest with rustls.
pub trait HttpFetcher: Send + Sync + 'static {
    /// GETs `url`, refusing bodies over `max_bytes`. Must not follow redirects to another
    /// origin.
    fn get(
        &self,
        url: &str,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Fetched, FetchError>> + Send;

    /// POSTs `form` (`application/x-www-form-urlencoded`) to `url`, with HTTP Basic
    /// credentials when `basic` is set, refusing bodies over `max_bytes`; used for token
    /// introspection (RFC 7662). Non-2xx statuses are errors. The default refuses: implement
    /// it to use introspection with your own HTTP stack.
    fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Fetched, FetchError>> + Send {
        let _ = (url, form, basic, max_bytes);
        std::future::ready(Err(FetchError(
            "this HttpFetcher does not implement post_form".into(),
        )))
    }
}

type BoxFetch<'a> = Pin<Box<dyn Future<Output = Result<Fetched, FetchError>> + Send + 'a>>;

/// Object-safe form of [`HttpFetcher`] (fetches are rare; boxing them costs nothing that
/// matters).
pub(crate) trait DynFetcher: Send + Sync + 'static {
    fn get_boxed<'a>(&'a self, url: &'a str, max_bytes: usize) -> BoxFetch<'a>;
    #[cfg_attr(not(feature = "introspection"), allow(dead_code))]
    fn post_form_boxed<'a>(
        &'a self,
        url: &'a str,
        form: &'a [(&'a str, &'a str)],
        basic: Option<(&'a str, &'a str)>,
        max_bytes: usize,
    ) -> BoxFetch<'a>;
}

impl<F: HttpFetcher> DynFetcher for F {
    fn get_boxed<'a>(&'a self, url: &'a str, max_bytes: usize) -> BoxFetch<'a> {
        Box::pin(self.get(url, max_bytes))
    }
    fn post_form_boxed<'a>(
        &'a self,
        url: &'a str,
        form: &'a [(&'a str, &'a str)],
        basic: Option<(&'a str, &'a str)>,
        max_bytes: usize,
    ) -> BoxFetch<'a> {
        Box::pin(self.post_form(url, form, basic, max_bytes))
    }
}

/// Parses `Cache-Control` for `max-age`; `no-store`/`no-cache` count as zero.
#[must_use]
// Only the reqwest fetcher reads `Cache-Control` (and the tests).
#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
pub(crate) fn cache_control_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',') {
        let d = directive.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            max_age = v
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

/// The default fetcher: reqwest (rustls), redirects off, per-request timeout, streamed body
/// with a size cap.
#[cfg(feature = "reqwest")]
#[derive(Debug, Clone)]
pub struct ReqwestFetcher {
    client: reqwest::Client,
}

#[cfg(feature = "reqwest")]
impl ReqwestFetcher {
    /// A fetcher with its own client: no redirects, 5 s connect timeout.
    ///
    /// # Errors
    ///
    /// When the TLS backend cannot be initialised.
    pub fn new() -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ConfigError::new("http client", e.to_string()))?;
        Ok(Self { client })
    }

    /// Uses your client (proxies, custom roots, mTLS). Configure it not to follow redirects.
    #[must_use]
    pub fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

#[cfg(feature = "reqwest")]
impl ReqwestFetcher {
    async fn read(res: reqwest::Response, max_bytes: usize) -> Result<Fetched, FetchError> {
        let mut res = res;
        if !res.status().is_success() {
            return Err(FetchError::status(res.status().as_u16()));
        }
        if res.content_length().is_some_and(|n| n > max_bytes as u64) {
            return Err(FetchError("response too large".into()));
        }
        let max_age = res
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(cache_control_max_age);
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| FetchError(format!("body failed: {}", e.without_url())))?
        {
            if body.len().saturating_add(chunk.len()) > max_bytes {
                return Err(FetchError("response too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            body: body.into(),
            max_age,
        })
    }
}

#[cfg(feature = "reqwest")]
impl HttpFetcher for ReqwestFetcher {
    async fn get(&self, url: &str, max_bytes: usize) -> Result<Fetched, FetchError> {
        let res = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| FetchError(format!("request failed: {}", e.without_url())))?;
        Self::read(res, max_bytes).await
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        max_bytes: usize,
    ) -> Result<Fetched, FetchError> {
        let mut req = self
            .client
            .post(url)
            .header("accept", "application/json")
            .form(form);
        if let Some((user, password)) = basic {
            req = req.basic_auth(user, Some(password));
        }
        let res = req
            .send()
            .await
            .map_err(|e| FetchError(format!("request failed: {}", e.without_url())))?;
        Self::read(res, max_bytes).await
    }
}

/// The default HTTP client: [`ReqwestFetcher`] (feature `reqwest`); without that feature a
/// configuration error naming `setting` and the builder method `method` that passes one.
#[cfg(feature = "reqwest")]
pub(crate) fn default_fetcher(
    _setting: &str,
    _method: &str,
) -> Result<Arc<dyn DynFetcher>, ConfigError> {
    Ok(Arc::new(ReqwestFetcher::new()?))
}

/// The default HTTP client: none without feature `reqwest`, so a configuration error naming
/// `setting` and the builder method `method` that passes one.
#[cfg(not(feature = "reqwest"))]
pub(crate) fn default_fetcher(
    setting: &str,
    method: &str,
) -> Result<Arc<dyn DynFetcher>, ConfigError> {
    Err(ConfigError::new(
        setting,
        format!("no HTTP client: enable the `reqwest` feature or pass one with `{method}`"),
    ))
}
