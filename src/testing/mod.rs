//! A kit for testing your own MCP server without an identity provider (feature `testing`).
//!
//! - [`MockAuthServer`]: an authorization server on a loopback port (RFC 8414 and OpenID
//!   metadata, a JWK set with key rotation, RFC 7662 introspection, a token endpoint (client credentials, refresh tokens with rotation, RFC 8693 token exchange
//!   and on-behalf-of, counted per grant), outages on demand, request counters) that mints tokens in process with
//!   [`MockAuthServer::token`]: JWTs signed by its current key, or opaque tokens its
//!   introspection endpoint knows, expired, for another audience, DPoP-bound, revoked.
//! - [`DpopKey`] and [`DpopProofBuilder`]: DPoP proofs (RFC 9449 §4.2) signed by keys made on
//!   the spot, and the malformed proofs a server must refuse (`alg: none`, HMAC, a private key
//!   in the header, a broken signature, a missing claim).
//! - [`challenges`] and [`assert_challenge`]: every `WWW-Authenticate` challenge of a response,
//!   parsed by the RFC 9110 grammar, and assertions on them with readable failures.
//!
//! Everything here is for tests: the helpers panic (as `assert!` does) where a test cannot go
//! on, the server listens on `127.0.0.1` only, and nothing of it belongs on a request path.
//!
//! # Example
//!
//! A `JwtLayer` that finds its keys by OIDC discovery from the mock server: a valid token
//! passes, an expired one gets a 401 whose challenge the kit reads.
//!
//! ```
//! use mcp_auth::authenticators::jwt::{JwtAuthenticator, JwtLayer};
//! use mcp_auth::testing::{MockAuthServer, assert_challenge};
//! use mcp_auth::AuthContext;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! const RESOURCE: &str = "https://mcp.example.com/mcp";
//! const METADATA: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
//!
//! let idp = MockAuthServer::start().await; // http://127.0.0.1:<port>, until dropped
//! let auth = JwtAuthenticator::builder()
//!     .oidc_issuer(idp.issuer())
//!     .audience(RESOURCE)
//!     .build()
//!     .unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(JwtLayer::new(auth).resource_metadata(METADATA))
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let ctx = req.extensions().get::<AuthContext>().unwrap();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(ctx.subject().to_owned()))
//!     }));
//! let call = |token: String| {
//!     let req = http::Request::builder()
//!         .header("authorization", format!("Bearer {token}"))
//!         .body(String::new())
//!         .unwrap();
//!     svc.clone().oneshot(req)
//! };
//!
//! let token = idp.token().subject("alice").audience(RESOURCE).scopes(["data:read"]).jwt();
//! assert_eq!(call(token).await.unwrap().status(), 200);
//!
//! let expired = idp.token().audience(RESOURCE).expired().jwt();
//! let res = call(expired).await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert_challenge(res.headers(), "Bearer")
//!     .first()
//!     .error("invalid_token")
//!     .param("resource_metadata", METADATA);
//! # }
//! ```
//!
//! Opaque tokens work the same way with an
//! [`IntrospectionAuthenticator`](crate::IntrospectionAuthenticator) built with
//! `.issuer(idp.issuer())` and `.client_credentials(...)` from
//! [`MockAuthServer::introspection_client`]; [`MockAuthServer::revoke`] then makes a token
//! inactive, and [`MockAuthServer::set_down`] turns the server into an outage (your layer
//! should answer 503, not 401).

mod challenge;
mod dpop;
mod server;

pub use self::challenge::{
    ChallengeAssert, ChallengeParseError, ParsedChallenge, assert_challenge, assert_no_challenge,
    challenges, parse_challenges,
};
pub use self::dpop::{DPOP_TYP, DpopKey, DpopProofBuilder, compact, jwk_thumbprint};
pub use self::server::{
    ACCESS_TOKEN_TYPE, DEFAULT_CLIENT_ID, DEFAULT_SUBJECT, DEFAULT_TOKEN_TTL, GRANT_TYPES,
    INTROSPECTION_PATH, JWKS_PATH, JWT_BEARER_GRANT, MockAuthServer, OAUTH_METADATA_PATH,
    OPENID_CONFIGURATION_PATH, TOKEN_EXCHANGE_GRANT, TOKEN_PATH, TokenBuilder,
};

/// Fails the calling test with `message`.
#[track_caller]
#[allow(clippy::panic)] // The kit fails a test the way `assert!` does; it serves no requests.
pub(crate) fn fail(message: std::fmt::Arguments<'_>) -> ! {
    panic!("{message}")
}
