//! [`OutboundError`]: why no credential was added to an outbound request, or why it was not
//! sent.

use std::fmt;

/// Why an outbound request got no credential or was not sent. Never carries a token, a secret
/// or any part of one: the authorization server's answer is reduced to its `error` code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboundError {
    /// The authorization server could not be reached (connection refused, DNS, TLS).
    Unreachable,
    /// The authorization server did not answer within the source's timeout.
    Timeout,
    /// The authorization server answered with a server error (5xx): an outage.
    Unavailable {
        /// The HTTP status.
        status: u16,
    },
    /// The authorization server refused the grant (4xx): its `error` code only
    /// (`invalid_grant`, `invalid_client`, …), or `unknown` when it gave none or an
    /// unprintable one.
    Refused {
        /// The OAuth `error` code.
        error: String,
    },
    /// The authorization server's answer was not a usable token response.
    BadAnswer(&'static str),
    /// The source needs the caller's inbound token (token exchange, on-behalf-of) and the
    /// request carries none: is `KeepInboundTokenLayer` inside the auth layer?
    NoInboundToken,
    /// No token source is configured for this upstream host.
    NoUpstream,
    /// The credential about to be sent is the caller's own inbound token: refused, never sent
    /// (the MCP specification forbids token passthrough).
    Passthrough,
    /// The refresh-token store or the shared cache failed.
    Store(String),
    /// The outbound request itself could not be built or sent.
    Request(String),
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable => f.write_str("the authorization server is unreachable"),
            Self::Timeout => f.write_str("the authorization server did not answer in time"),
            Self::Unavailable { status } => {
                write!(f, "the authorization server is unavailable (status {status})")
            }
            Self::Refused { error } => {
                write!(f, "the authorization server refused the grant: {error}")
            }
            Self::BadAnswer(why) => write!(f, "unusable token response: {why}"),
            Self::NoInboundToken => f.write_str(
                "no inbound token kept for this request (is KeepInboundTokenLayer inside the auth layer?)",
            ),
            Self::NoUpstream => f.write_str("no token source for this upstream"),
            Self::Passthrough => f.write_str(
                "refused to send the caller's own token to an upstream (token passthrough)",
            ),
            Self::Store(why) => write!(f, "token store failed: {why}"),
            Self::Request(why) => write!(f, "outbound request failed: {why}"),
        }
    }
}

impl std::error::Error for OutboundError {}

impl OutboundError {
    /// Whether the failure is the authorization server's or the network's (worth a retry
    /// later), not a refusal or a misconfiguration.
    #[must_use]
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            Self::Unreachable | Self::Timeout | Self::Unavailable { .. }
        )
    }

    /// The `Refused` error for an OAuth `error` code read from an answer: kept only when it is
    /// a short printable code (RFC 6749 §5.2 allows `%x20-21 / %x23-5B / %x5D-7E`).
    pub(crate) fn refused(code: Option<&str>) -> Self {
        let ok = |c: &str| {
            !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
        };
        Self::Refused {
            error: code.filter(|c| ok(c)).unwrap_or("unknown").to_owned(),
        }
    }
}
