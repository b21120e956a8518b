//! Credentials for the APIs an MCP server calls (feature `outbound`).
//!
//! An MCP server must not forward the token its caller presented to the APIs it calls (the
//! MCP specification forbids token passthrough: the upstream would accept a token that was
//! never meant for it, the confused-deputy problem). This module adds the right credential to
//! each outbound request instead, from a [`TokenSource`]:
//!
//! | source | credential |
//! |---|---|
//! | [`StaticCredential`] | a bearer token or an API-key header from configuration |
//! | [`ClientCredentials`] | the server's own token (OAuth 2.1 client credentials), cached, refreshed single-flight |
//! | [`RefreshTokenGrant`] | a token from a refresh token, rotated, the newest kept in a [`RefreshTokenStore`] |
//! | [`TokenExchange`] | a token for the upstream on behalf of the caller (RFC 8693, or Entra on-behalf-of), cached per caller |
//!
//! [`Upstreams`] says which source serves which host; [`OutboundLayer`] (any tower HTTP client)
//! or [`OutboundClient`] (reqwest) sets the credential, retries once after a 401, and refuses
//! (with [`OutboundError::Passthrough`], logged without any value) to send the caller's own
//! inbound token anywhere.
//!
//! Token exchange needs the caller's token: [`KeepInboundTokenLayer`], inside the auth layer,
//! keeps it as an [`InboundToken`] (redacted, wiped on drop) in the request extensions; a
//! [`Caller`] made from those extensions carries it to the exchange, and nowhere else.
//!
//! # Example
//!
//! ```
//! use mcp_auth::Secret;
//! use mcp_auth::outbound::{Caller, OutboundError, OutboundLayer, StaticCredential, Upstreams};
//! use mcp_auth::{AuthContext, AuthMethod};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // A static upstream whose key is, by mistake, the caller's own token.
//! let inbound = mcp_auth::outbound::InboundToken::new(Secret::new("user-token"));
//! let caller = Caller::new(&AuthContext::builder("alice", AuthMethod::Bearer).build(), Some(&inbound));
//! let upstreams = Upstreams::new().host("api.example.com", StaticCredential::bearer(Secret::new("user-token")));
//! let client = ServiceBuilder::new().layer(OutboundLayer::new(upstreams)).service_fn(
//!     |_req: http::Request<String>| async { Ok::<_, std::convert::Infallible>(http::Response::new(())) },
//! );
//! let mut req = http::Request::get("https://api.example.com/").body(String::new()).unwrap();
//! req.extensions_mut().insert(caller);
//! let err = client.oneshot(req).await.unwrap_err();
//! assert_eq!(err.downcast_ref::<OutboundError>(), Some(&OutboundError::Passthrough));
//! # });
//! ```
//!
//! Inside this module: `inbound.rs` (keeping the inbound token, [`Caller`]), `source.rs` (the
//! trait, credentials, the guard), `cache.rs` (single-flight slots, the bounded per-caller
//! map), `endpoint.rs` (token requests), `grants.rs` (the OAuth sources), `refresh.rs`
//! (refresh-token stores), `layer.rs` (the tower layer and the reqwest client).

mod cache;
mod endpoint;
mod error;
mod grants;
mod inbound;
mod layer;
#[cfg(feature = "redis")]
mod redis;
mod refresh;
#[cfg(feature = "redis")]
mod shared;
mod source;

pub use self::endpoint::{ClientAuth, DEFAULT_TOKEN_TIMEOUT, TokenEndpoint};
pub use self::error::OutboundError;
pub use self::grants::{
    ClientCredentials, DEFAULT_EXCHANGE_CACHE, DEFAULT_EXPIRY_SKEW, DEFAULT_UNDATED_LIFETIME,
    RefreshTokenGrant, TokenExchange,
};
pub use self::inbound::{Caller, InboundToken, KeepInboundToken, KeepInboundTokenLayer};
pub use self::layer::{BoxError, OutboundClient, OutboundLayer, OutboundService, Upstreams};
#[cfg(feature = "redis")]
pub use self::redis::RedisRefreshTokenStore;
pub use self::refresh::{
    FileRefreshTokenStore, MemoryRefreshTokenStore, RefreshTokenStore, StoreFuture,
};
#[cfg(feature = "redis")]
pub use self::shared::{MIN_EXCHANGE_CACHE_KEY_LEN, RedisExchangeCache};
pub use self::source::{
    Credential, CredentialFuture, OUTBOUND_TARGET, StaticCredential, TokenSource,
};

#[cfg(test)]
mod tests;
