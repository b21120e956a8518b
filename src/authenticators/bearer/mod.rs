//! [`BearerLayer`]: opaque bearer tokens in `Authorization: Bearer <token>`.
//!
//! Static tokens come from code ([`Credential`]) or an environment variable (default
//! `MCP_AUTH_TOKENS`, syntax in [`crate::authenticators::credential`]). Issued tokens (with
//! expiry, rotation and revocation) live in a [`TokenStore`];
//! [`MemoryTokenStore`](crate::store::MemoryTokenStore) is the in-memory one and
//! [`TokenManager`] issues into any store. Header parsing is strict (see
//! [`crate::authenticators::header`]). Static tokens are checked first, with no allocation;
//! the store is asked next.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use mcp_auth::{authenticators::bearer::{BearerAuthenticator, BearerLayer, TokenManager, TokenSpec}, store::MemoryTokenStore};
//! use mcp_auth::{AuthContext, Credential};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = MemoryTokenStore::new();
//! let auth = BearerAuthenticator::new()
//!     .with_token(Credential::new("static-token-0123456789").subject("ops"))
//!     .unwrap()
//!     .with_store(store.clone());
//! let svc = ServiceBuilder::new()
//!     .layer(BearerLayer::new(auth))
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let ctx = req.extensions().get::<AuthContext>().unwrap();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(ctx.subject().to_owned()))
//!     }));
//! let call = |token: &str| {
//!     let req = http::Request::builder()
//!         .header("authorization", format!("Bearer {token}"))
//!         .body(String::new())
//!         .unwrap();
//!     svc.clone().oneshot(req)
//! };
//!
//! assert_eq!(call("static-token-0123456789").await.unwrap().status(), 200);
//!
//! let tokens = TokenManager::new(store);
//! let issued = tokens.issue(TokenSpec::new("ci-bot", Duration::from_secs(60))).await.unwrap();
//! assert_eq!(call(issued.token.expose()).await.unwrap().status(), 200);
//! tokens.revoke(issued.token.expose()).await.unwrap();
//! let res = call(issued.token.expose()).await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     "Bearer error=\"invalid_token\", error_description=\"invalid access token\""
//! );
//! # }
//! ```

mod issue;

use std::time::SystemTime;

use http::request::Parts;

pub use self::issue::{
    DEFAULT_TOKEN_PREFIX, IssuedToken, RotateError, TokenManager, TokenSpec, generate_token,
};
use crate::auth_layer::AuthLayer;
use crate::auth_layer::Authenticator;
use crate::authenticators::credential::{Credential, CredentialTable, static_credential_methods};
use crate::authenticators::header::{bearer_token, is_token68_byte};
use crate::context::{AuthContext, AuthMethod};
use crate::error::{AuthError, ConfigError};
use crate::rejection::Scheme;
use crate::store::{NoStore, StoreError, TokenDigest, TokenRecord, TokenStore};

/// The default environment variable holding static bearer tokens.
pub const DEFAULT_ENV_VAR: &str = "MCP_AUTH_TOKENS";

const INVALID: &str = "invalid access token";

/// [`AuthLayer`] with a [`BearerAuthenticator`].
pub type BearerLayer<S = NoStore, R = crate::rejection::DefaultRejection> =
    AuthLayer<BearerAuthenticator<S>, R>;

impl AuthLayer<BearerAuthenticator> {
    /// A layer accepting the static tokens in `MCP_AUTH_TOKENS` (or the file named by
    /// `MCP_AUTH_TOKENS_FILE`).
    ///
    /// # Errors
    ///
    /// When the variable is missing, empty, or has an invalid entry (every problem listed).
    pub fn from_env() -> Result<Self, ConfigError> {
        BearerAuthenticator::from_env().map(AuthLayer::new)
    }
}

/// Authenticates `Authorization: Bearer` tokens: static ones, then issued ones in a store.
///
/// `Debug` shows the number of static tokens, never a token.
#[derive(Debug)]
pub struct BearerAuthenticator<S = NoStore> {
    static_tokens: CredentialTable,
    store: S,
    defer_unknown: bool,
}

impl Default for BearerAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl BearerAuthenticator {
    /// No tokens yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            static_tokens: CredentialTable::new(AuthMethod::Bearer, "token"),
            store: NoStore,
            defer_unknown: false,
        }
    }

    /// The static tokens in `MCP_AUTH_TOKENS`, or in the file named by `MCP_AUTH_TOKENS_FILE`.
    ///
    /// # Errors
    ///
    /// When the variable is missing, empty, or has an invalid entry (every problem listed).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_var(DEFAULT_ENV_VAR)
    }

    static_credential_methods!(from_env_var, one: "token", many: "static tokens");
}

impl<S> BearerAuthenticator<S> {
    /// Also accepts tokens issued into `store` (checked after the static tokens).
    pub fn with_store<S2: TokenStore>(self, store: S2) -> BearerAuthenticator<S2> {
        BearerAuthenticator {
            static_tokens: self.static_tokens,
            store,
            defer_unknown: self.defer_unknown,
        }
    }

    /// Reports a token that is neither a static token nor in the store as *no credentials*
    /// instead of an invalid one, so the next authenticator of a [chain](crate::Authenticator::or)
    /// decides (e.g. `tokens.defer_unknown().or(jwt)`: static and issued tokens first, by
    /// digest, then JWT). Known but expired or revoked tokens are still refused here.
    #[must_use]
    pub fn defer_unknown(mut self) -> Self {
        self.defer_unknown = true;
        self
    }

    /// Adds a static token.
    ///
    /// # Errors
    ///
    /// When the token is shorter than 16 or longer than 4096 characters, is not token68
    /// syntax, or duplicates another token.
    pub fn with_token(mut self, token: Credential) -> Result<Self, ConfigError> {
        self.static_tokens
            .insert_one(token, "bearer token", is_token68_byte)?;
        Ok(self)
    }

    static_credential_methods!(
        setters,
        table: static_tokens,
        valid_char: is_token68_byte,
        one: "static token",
        many: "static tokens"
    );

    /// Number of static tokens.
    #[must_use]
    pub fn static_len(&self) -> usize {
        self.static_tokens.len()
    }

    /// The token store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

/// Turns a stored record into a decision.
fn judge(
    record: Option<TokenRecord>,
    now: SystemTime,
    defer_unknown: bool,
) -> Result<AuthContext, AuthError> {
    match record {
        None if defer_unknown => {
            Err(AuthError::missing_credentials().with_detail("unknown_bearer_deferred"))
        }
        None => Err(AuthError::invalid_token(INVALID)),
        Some(r) if r.is_revoked() => Err(AuthError::revoked(INVALID)),
        Some(r) if r.expires_at() <= now => Err(AuthError::expired(INVALID)),
        Some(r) => Ok(r.context().clone()),
    }
}

enum Static {
    Decided(Result<AuthContext, AuthError>),
    AskStore(TokenDigest),
}

impl<S: TokenStore> BearerAuthenticator<S> {
    fn check_static(&self, parts: &Parts, now: SystemTime) -> Static {
        let token = match bearer_token(parts) {
            Ok(t) => t,
            Err(e) => return Static::Decided(Err(e)),
        };
        let digest = TokenDigest::of(token);
        match self
            .static_tokens
            .lookup_digest(digest.as_bytes(), now)
            .known(INVALID)
        {
            Some(decided) => Static::Decided(decided),
            None => Static::AskStore(digest),
        }
    }
}

fn store_failed(e: StoreError) -> AuthError {
    AuthError::unavailable(e)
}

impl<S: TokenStore> Authenticator for BearerAuthenticator<S> {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let now = SystemTime::now();
        match self.check_static(parts, now) {
            Static::Decided(r) => r,
            Static::AskStore(digest) => {
                let record = self.store.get(&digest).await.map_err(store_failed)?;
                judge(record, now, self.defer_unknown)
            }
        }
    }

    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        let now = SystemTime::now();
        match self.check_static(parts, now) {
            Static::Decided(r) => Some(r),
            Static::AskStore(digest) => {
                let record = self.store.get_now(&digest)?;
                Some(
                    record
                        .map_err(store_failed)
                        .and_then(|r| judge(r, now, self.defer_unknown)),
                )
            }
        }
    }

    fn schemes(&self) -> Vec<Scheme> {
        vec![Scheme::bearer()]
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use crate::store::MemoryTokenStore;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use http::{Request, Response, StatusCode};
    use tower::{Layer, ServiceExt, service_fn};

    use super::*;
    use crate::AuthErrorKind;

    const TOKEN: &str = "static-token-0123456789";

    async fn send<S: TokenStore>(
        auth: BearerAuthenticator<S>,
        req: Request<String>,
    ) -> (Response<()>, usize) {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let svc = BearerLayer::new(auth).layer(service_fn(move |req: Request<String>| {
            c.fetch_add(1, Ordering::SeqCst);
            assert!(req.extensions().get::<AuthContext>().is_some());
            async { Ok::<_, Infallible>(Response::new(String::new())) }
        }));
        let res = svc.oneshot(req).await.unwrap();
        (res.map(|_| ()), calls.load(Ordering::SeqCst))
    }

    fn statics() -> BearerAuthenticator {
        BearerAuthenticator::new()
            .with_token(Credential::new(TOKEN).subject("ops"))
            .unwrap()
    }

    fn req(auth: &str) -> Request<String> {
        Request::builder()
            .header("authorization", auth)
            .body(String::new())
            .unwrap()
    }

    #[tokio::test]
    async fn static_token_is_accepted_in_any_scheme_case() {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let (res, calls) = send(statics(), req(&format!("{scheme} {TOKEN}"))).await;
            assert_eq!((res.status(), calls), (StatusCode::OK, 1), "{scheme}");
        }
    }

    #[tokio::test]
    async fn basic_scheme_gets_a_challenge_without_error() {
        let (res, calls) = send(statics(), req("Basic dXNlcjpwYXNz")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        assert_eq!(calls, 0);
    }

    #[tokio::test]
    async fn malformed_tokens_are_invalid_not_missing() {
        for v in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            &format!("Bearer {TOKEN} x"),
        ] {
            let (res, calls) = send(statics(), req(v)).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{v}");
            assert!(
                res.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .contains("invalid_token")
            );
            assert_eq!(calls, 0);
        }
    }

    #[tokio::test]
    async fn token_in_query_is_refused_even_with_a_valid_header() {
        let r = Request::builder()
            .uri("/mcp?access_token=x")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(String::new())
            .unwrap();
        let (res, calls) = send(statics(), r).await;
        assert_eq!((res.status(), calls), (StatusCode::BAD_REQUEST, 0));
    }

    #[tokio::test]
    async fn issued_token_is_accepted_until_revoked() {
        let store = MemoryTokenStore::new();
        let m = TokenManager::new(store.clone());
        let t = m
            .issue(TokenSpec::new("bot", Duration::from_secs(60)))
            .await
            .unwrap();
        let auth = || statics().with_store(store.clone());
        let (res, calls) = send(auth(), req(&format!("Bearer {}", t.token.expose()))).await;
        assert_eq!((res.status(), calls), (StatusCode::OK, 1));
        m.revoke(t.token.expose()).await.unwrap();
        let (res, calls) = send(auth(), req(&format!("Bearer {}", t.token.expose()))).await;
        assert_eq!((res.status(), calls), (StatusCode::UNAUTHORIZED, 0));
        assert_eq!(
            res.extensions().get::<AuthError>().unwrap().kind(),
            AuthErrorKind::Revoked
        );
    }

    #[tokio::test]
    async fn expired_issued_token_is_rejected() {
        let store = MemoryTokenStore::new();
        let m = TokenManager::new(store.clone());
        let t = m
            .issue(TokenSpec::new("bot", Duration::ZERO))
            .await
            .unwrap();
        let (res, calls) = send(
            statics().with_store(store),
            req(&format!("Bearer {}", t.token.expose())),
        )
        .await;
        assert_eq!((res.status(), calls), (StatusCode::UNAUTHORIZED, 0));
        assert_eq!(
            res.extensions().get::<AuthError>().unwrap().kind(),
            AuthErrorKind::Expired
        );
    }

    /// A store that always fails, to check fail-closed behaviour.
    struct DownStore;
    impl TokenStore for DownStore {
        async fn get(&self, _: &TokenDigest) -> Result<Option<TokenRecord>, StoreError> {
            Err(StoreError::unavailable("connection refused"))
        }
        async fn insert(&self, _: TokenDigest, _: TokenRecord) -> Result<(), StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn revoke(&self, _: &TokenDigest) -> Result<bool, StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn revoke_id(&self, _: &str) -> Result<bool, StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn revoke_subject(&self, _: &str) -> Result<usize, StoreError> {
            Err(StoreError::unavailable("down"))
        }
    }

    #[tokio::test]
    async fn unreachable_store_fails_closed_with_503() {
        let (res, calls) = send(
            statics().with_store(DownStore),
            req("Bearer unknown-token-000000"),
        )
        .await;
        assert_eq!((res.status(), calls), (StatusCode::SERVICE_UNAVAILABLE, 0));
        assert_eq!(res.headers()["retry-after"], "5");
        assert!(!res.headers().contains_key("www-authenticate"));
        // Static tokens still work without the store.
        let (res, calls) = send(
            statics().with_store(DownStore),
            req(&format!("Bearer {TOKEN}")),
        )
        .await;
        assert_eq!((res.status(), calls), (StatusCode::OK, 1));
    }

    #[tokio::test]
    async fn deferred_unknown_tokens_fall_through_a_chain() {
        use crate::auth_layer::from_fn;
        let next = from_fn(|_: &Parts| async {
            Ok(AuthContext::builder("next", AuthMethod::Jwt).build())
        });
        let chain = statics().defer_unknown().or(next);
        let parts = req("Bearer not-a-static-token-000").into_parts().0;
        assert_eq!(chain.authenticate(&parts).await.unwrap().subject(), "next");
        let parts = req(&format!("Bearer {TOKEN}")).into_parts().0;
        assert_eq!(chain.authenticate(&parts).await.unwrap().subject(), "ops");
        // Alone, a deferred unknown token is simply "no credentials".
        let (res, _) = send(
            statics().defer_unknown(),
            req("Bearer not-a-static-token-000"),
        )
        .await;
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
    }

    #[test]
    fn static_tokens_must_be_token68() {
        let err = BearerAuthenticator::new()
            .with_token(Credential::new("has space in it 0123"))
            .unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }
}
