//! A kit for testing your own MCP server without an identity provider (feature `testing`).
//!
//! - [`DpopKey`] and [`DpopProofBuilder`]: DPoP proofs (RFC 9449 §4.2) signed by keys made on
//!   the spot, and the malformed proofs a server must refuse (`alg: none`, HMAC, a private key
//!   in the header, a broken signature, a missing claim).
//!
//! Everything here is for tests: the helpers panic (as `assert!` does) where a test cannot go
//! on, and nothing of it belongs on a request path.

mod challenge;
mod dpop;
mod server;

pub use self::challenge::{
    ChallengeAssert, ChallengeParseError, ParsedChallenge, assert_challenge, assert_no_challenge,
    challenges, parse_challenges,
};
pub use self::dpop::{DPOP_TYP, DpopKey, DpopProofBuilder, compact, jwk_thumbprint};
pub use self::server::{
    DEFAULT_CLIENT_ID, DEFAULT_SUBJECT, DEFAULT_TOKEN_TTL, INTROSPECTION_PATH, JWKS_PATH,
    MockAuthServer, OAUTH_METADATA_PATH, OPENID_CONFIGURATION_PATH, TOKEN_PATH, TokenBuilder,
};

/// Fails the calling test with `message`.
#[track_caller]
#[allow(clippy::panic)] // The kit fails a test the way `assert!` does; it serves no requests.
pub(crate) fn fail(message: std::fmt::Arguments<'_>) -> ! {
    panic!("{message}")
}
