//! [`ApiKeyLayer`]: API keys in a header (default `X-API-Key`).
//!
//! Keys come from code ([`Credential`]) or from an environment variable (default
//! `MCP_API_KEYS`, syntax in [`crate::authenticators::credential`]). Only SHA-256 digests are
//! kept; lookup cost does not depend on the number of keys and is constant-time in the key's
//! contents.
//! Unknown, expired and malformed keys get byte-identical 401 responses (the log's reason
//! code tells them apart); a repeated header gets 400.
//!
//! # Example
//!
//! ```
//! use mcp_auth::{ApiKeyAuthenticator, ApiKeyLayer, AuthContext, Credential};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let keys = ApiKeyAuthenticator::new()
//!     .with_key(Credential::new("k_live_0123456789abcdef").subject("alice").scopes(["data:read"]))
//!     .unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(ApiKeyLayer::new(keys))
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let ctx = req.extensions().get::<AuthContext>().unwrap();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(ctx.subject().to_owned()))
//!     }));
//!
//! let req = |key: &str| http::Request::builder().header("x-api-key", key).body(String::new()).unwrap();
//! assert_eq!(svc.clone().oneshot(req("k_live_0123456789abcdef")).await.unwrap().status(), 200);
//! let res = svc.oneshot(req("k_live_0123456789abcdeX")).await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     "ApiKey header=\"x-api-key\", error=\"invalid_token\", error_description=\"invalid API key\""
//! );
//! # }
//! ```

use std::time::SystemTime;

use http::HeaderName;
use http::request::Parts;

use crate::auth_layer::AuthLayer;
use crate::auth_layer::Authenticator;
use crate::authenticators::credential::{
    Credential, CredentialTable, MAX_SECRET_LEN, static_credential_methods,
};
use crate::authenticators::header::{is_visible_ascii, reject_query_credential, single_header};
use crate::context::{AuthContext, AuthMethod};
use crate::error::{AuthError, ConfigError};
use crate::rejection::Scheme;

/// The default API key header.
pub const DEFAULT_HEADER: &str = "x-api-key";
/// The default environment variable holding API keys.
pub const DEFAULT_ENV_VAR: &str = "MCP_API_KEYS";

const INVALID: &str = "invalid API key";

/// [`AuthLayer`] with an [`ApiKeyAuthenticator`].
pub type ApiKeyLayer<R = crate::rejection::DefaultRejection> = AuthLayer<ApiKeyAuthenticator, R>;

impl AuthLayer<ApiKeyAuthenticator> {
    /// A layer accepting the keys in `MCP_API_KEYS` (or the file named by `MCP_API_KEYS_FILE`),
    /// in `X-API-Key`.
    ///
    /// # Errors
    ///
    /// When the variable is missing, empty, or has an invalid entry (every problem listed).
    pub fn from_env() -> Result<Self, ConfigError> {
        ApiKeyAuthenticator::from_env().map(AuthLayer::new)
    }
}

/// Authenticates requests by an API key header. `Debug` shows the header and the number of
/// keys, never a key.
#[derive(Debug)]
pub struct ApiKeyAuthenticator {
    header: HeaderName,
    keys: CredentialTable,
}

impl Default for ApiKeyAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiKeyAuthenticator {
    /// No keys yet, header `X-API-Key`.
    #[must_use]
    pub fn new() -> Self {
        Self {
            header: HeaderName::from_static(DEFAULT_HEADER),
            keys: CredentialTable::new(AuthMethod::ApiKey, "api-key"),
        }
    }

    /// The keys in `MCP_API_KEYS`, or in the file named by `MCP_API_KEYS_FILE`.
    ///
    /// # Errors
    ///
    /// When the variable is missing, empty, or has an invalid entry (every problem listed).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_var(DEFAULT_ENV_VAR)
    }

    static_credential_methods!(from_env_var, one: "key", many: "keys");

    /// Reads keys from a header other than `X-API-Key`.
    #[must_use]
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// Adds a key.
    ///
    /// # Errors
    ///
    /// When the key is shorter than 16 or longer than 4096 characters, has characters other
    /// than visible ASCII, or duplicates another key.
    pub fn with_key(mut self, key: Credential) -> Result<Self, ConfigError> {
        self.keys.insert_one(key, "api key", is_visible_ascii)?;
        Ok(self)
    }

    static_credential_methods!(
        setters,
        table: keys,
        valid_char: is_visible_ascii,
        one: "key",
        many: "keys"
    );

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is configured (every request is then refused).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.len() == 0
    }

    fn check(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        // A key in the URI leaks into logs and histories: 400, as for bearer tokens.
        reject_query_credential(parts, Some(self.header.as_str()))?;
        let Some(value) = single_header(parts, &self.header)? else {
            return Err(AuthError::missing_credentials());
        };
        let raw = value.as_bytes();
        // Present but empty, oversized or not visible ASCII: invalid, never "absent".
        if raw.is_empty() || raw.len() > MAX_SECRET_LEN || !raw.iter().all(|&b| is_visible_ascii(b))
        {
            return Err(AuthError::invalid_token(INVALID));
        }
        self.keys
            .lookup(raw, SystemTime::now())
            .known(INVALID)
            .unwrap_or_else(|| Err(AuthError::invalid_token(INVALID)))
    }
}

impl Authenticator for ApiKeyAuthenticator {
    fn authenticate(
        &self,
        parts: &Parts,
    ) -> impl Future<Output = Result<AuthContext, AuthError>> + Send {
        std::future::ready(self.check(parts))
    }

    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        Some(self.check(parts))
    }

    fn schemes(&self) -> Vec<Scheme> {
        vec![Scheme::api_key(&self.header)]
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use http::{Request, Response, StatusCode};
    use http_body_util::BodyExt;
    use tower::{Layer, ServiceExt, service_fn};

    use super::*;
    use crate::AuthErrorKind;

    const KEY: &str = "k_test_0123456789abcdef";

    fn layer() -> ApiKeyLayer {
        let auth = ApiKeyAuthenticator::new()
            .with_key(Credential::new(KEY).subject("alice").scopes(["data:read"]))
            .unwrap()
            .with_key(
                Credential::new("k_old_0123456789abcdef")
                    .subject("old")
                    .expires_at(SystemTime::now() - Duration::from_secs(5)),
            )
            .unwrap();
        ApiKeyLayer::new(auth)
    }

    async fn send(req: Request<String>) -> (Response<String>, usize) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let svc = layer().layer(service_fn(move |req: Request<String>| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                let who = req
                    .extensions()
                    .get::<AuthContext>()
                    .map(|c| c.subject().to_owned());
                Ok::<_, Infallible>(Response::new(who.unwrap_or_default()))
            }
        }));
        let res = svc.oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            Response::from_parts(parts, String::from_utf8(bytes.to_vec()).unwrap()),
            calls.load(Ordering::SeqCst),
        )
    }

    /// Asserts a 400 `invalid_request` refusal that never reached the inner service.
    fn assert_invalid_request(res: &Response<String>, calls: usize, case: &str) {
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(calls, 0, "{case}");
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_request"),
            "{case}"
        );
    }

    fn with_key(v: &[u8]) -> Request<String> {
        Request::builder()
            .header("x-api-key", http::HeaderValue::from_bytes(v).unwrap())
            .body(String::new())
            .unwrap()
    }

    #[tokio::test]
    async fn valid_key_reaches_inner_service_with_its_subject() {
        let (res, calls) = send(with_key(KEY.as_bytes())).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), "alice");
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn missing_key_gets_401_challenge_without_error_code() {
        let (res, calls) = send(Request::new(String::new())).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()["www-authenticate"],
            "ApiKey header=\"x-api-key\""
        );
        assert_eq!(calls, 0);
    }

    #[tokio::test]
    async fn unknown_expired_empty_and_non_ascii_keys_get_identical_responses() {
        let mut seen = Vec::new();
        for v in [
            &b"k_test_0123456789abcdeX"[..],
            b"k_old_0123456789abcdef",
            b"",
            b"k_test_\xff0123456789",
        ] {
            let (res, calls) = send(with_key(v)).await;
            assert_eq!(calls, 0);
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            seen.push((res.headers().clone(), res.body().clone()));
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
        assert!(seen[0].1.contains("invalid_token"));
    }

    #[tokio::test]
    async fn expired_key_is_logged_as_expired() {
        let (res, _) = send(with_key(b"k_old_0123456789abcdef")).await;
        assert_eq!(
            res.extensions().get::<AuthError>().unwrap().kind(),
            AuthErrorKind::Expired
        );
    }

    #[tokio::test]
    async fn repeated_key_header_is_a_bad_request() {
        let req = Request::builder()
            .header("x-api-key", KEY)
            .header("x-api-key", KEY)
            .body(String::new())
            .unwrap();
        let (res, calls) = send(req).await;
        assert_invalid_request(&res, calls, "repeated header");
    }

    #[tokio::test]
    async fn credential_in_the_query_is_a_bad_request_even_with_a_valid_key() {
        // Review I3: the API-key path ignored `?access_token=` and `?api_key=` (200).
        for uri in [
            "/mcp?access_token=abc",
            "/mcp?api_key=k_test_0123456789abcdef",
            "/mcp?API%5Fkey=1",
            "/mcp?x=1&x-api-key=abc",
            "/mcp?x%2Dapi%2Dkey",
        ] {
            for key in [Some(KEY), None] {
                let mut req = Request::builder().uri(uri);
                if let Some(k) = key {
                    req = req.header("x-api-key", k);
                }
                let (res, calls) = send(req.body(String::new()).unwrap()).await;
                assert_invalid_request(&res, calls, &format!("{uri} {key:?}"));
            }
        }
        let req = Request::builder()
            .uri("/mcp?page=2&key_api=1")
            .header("x-api-key", KEY)
            .body(String::new())
            .unwrap();
        assert_eq!(send(req).await.0.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn key_case_variants_are_different_keys() {
        let (res, calls) = send(with_key(KEY.to_uppercase().as_bytes())).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(calls, 0);
    }

    #[tokio::test]
    async fn oversized_key_is_rejected() {
        let (res, calls) = send(with_key(&vec![b'a'; 64 * 1024])).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(calls, 0);
    }

    #[tokio::test]
    async fn rejection_body_never_echoes_the_key() {
        let (res, _) = send(with_key(b"k_test_0123456789abcdeX")).await;
        assert!(!res.body().contains("k_test"));
        assert!(!format!("{:?}", res.headers()).contains("k_test"));
    }

    #[test]
    fn debug_does_not_show_keys() {
        let dbg = format!("{:?}", layer());
        assert!(!dbg.contains("k_test"), "{dbg}");
        assert!(dbg.contains("keys: 2"), "{dbg}");
    }

    #[tokio::test]
    async fn custom_header_name_is_used() {
        let auth = ApiKeyAuthenticator::new()
            .header(HeaderName::from_static("x-mcp-key"))
            .with_key(Credential::new(KEY))
            .unwrap();
        let svc = AuthLayer::new(auth).layer(service_fn(|_: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
        let req = Request::builder()
            .header("x-mcp-key", KEY)
            .body(String::new())
            .unwrap();
        assert_eq!(
            svc.clone().oneshot(req).await.unwrap().status(),
            StatusCode::OK
        );
        let res = svc.oneshot(with_key(KEY.as_bytes())).await.unwrap();
        assert_eq!(
            res.headers()["www-authenticate"],
            "ApiKey header=\"x-mcp-key\""
        );
    }

    #[tokio::test]
    async fn default_scopes_apply_to_keys_without_scopes() {
        let auth = ApiKeyAuthenticator::new()
            .default_scopes(["a", "b"])
            .with_list("V", "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb;scopes=c")
            .unwrap();
        let parts = with_key(b"aaaaaaaaaaaaaaaa").into_parts().0;
        assert_eq!(
            auth.check(&parts).unwrap().scopes().to_space_separated(),
            "a b"
        );
        let parts = with_key(b"bbbbbbbbbbbbbbbb").into_parts().0;
        assert_eq!(
            auth.check(&parts).unwrap().scopes().to_space_separated(),
            "c"
        );
    }
}
