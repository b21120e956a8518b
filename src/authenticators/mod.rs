//! The authenticators that plug into [`AuthLayer`](crate::AuthLayer), one module each, each with
//! its `…Layer` alias:
//!
//! | module | credential | layer |
//! |---|---|---|
//! | [`api_key`] | an API key in a header (`X-API-Key`) | [`ApiKeyLayer`](api_key::ApiKeyLayer) |
//! | [`bearer`] | static or issued bearer tokens (`Authorization: Bearer`) | [`BearerLayer`](bearer::BearerLayer) |
//! | [`jwt`] | JWT access tokens: shared secrets, keys, JWKS, OIDC discovery | [`JwtLayer`](jwt::JwtLayer) |
//! | [`introspection`] | opaque tokens checked by RFC 7662 introspection | [`IntrospectionLayer`](introspection::IntrospectionLayer) |
//! | [`dpop`] | DPoP-bound tokens and their proofs (RFC 9449), around `jwt` / `introspection` | [`DpopLayer`](dpop::DpopLayer) |
//! | `client_cert` (feature `mtls`) | the client certificate of the TLS connection (RFC 8705), mapped to a subject | `ClientCertLayer` |
//!
//! and the pieces they share: [`header`] (reading credentials from request headers),
//! [`credential`] (static credentials and their environment syntax) and [`revocable`]
//! (any authenticator, then a [`RevocationList`](crate::store::RevocationList) check).
//!
//! Several schemes on one endpoint: [`Authenticator::or`](crate::Authenticator::or) chains
//! them, the first that finds its credential decides.
//!
//! ```
//! use mcp_auth::authenticators::header::bearer_token;
//!
//! let req = http::Request::get("/mcp").header("authorization", "Bearer abc.def").body(()).unwrap();
//! assert_eq!(bearer_token(&req.into_parts().0).unwrap(), "abc.def");
//! ```

#[cfg(any(feature = "jwt", feature = "introspection"))]
mod binding;
#[cfg(any(feature = "jwt", feature = "introspection"))]
mod claims;
#[cfg(any(feature = "api-key", feature = "bearer"))]
pub mod credential;
pub mod header;
pub mod revocable;

#[cfg(feature = "api-key")]
pub mod api_key;
#[cfg(feature = "bearer")]
pub mod bearer;
#[cfg(feature = "mtls")]
pub mod client_cert;
#[cfg(feature = "dpop")]
pub mod dpop;
#[cfg(feature = "introspection")]
pub mod introspection;
#[cfg(feature = "jwt")]
pub mod jwt;
