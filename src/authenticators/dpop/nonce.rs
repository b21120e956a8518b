//! Server nonces (RFC 9449 §8), stateless: a nonce is the time it was made and an
//! HMAC-SHA256 tag over it, so any instance holding the key checks it without a store
//! (the construction the MCP DPoP extension suggests for stateless servers).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Bytes of the tag kept in a nonce (128 bits).
const TAG_LEN: usize = 16;
/// A nonce made up to this far in the future still counts (clock differences between
/// instances).
const FUTURE_SKEW: u64 = 5;

/// Makes and checks nonces with one key.
pub(super) struct Nonces {
    key: Zeroizing<Vec<u8>>,
    lifetime: Duration,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("key", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Nonces {
    pub(super) fn new(key: Zeroizing<Vec<u8>>, lifetime: Duration) -> Self {
        Self { key, lifetime }
    }

    fn mac(&self, made: u64) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).ok()?;
        mac.update(b"mcp-auth dpop nonce v1\0");
        mac.update(&made.to_be_bytes());
        Some(mac)
    }

    /// A fresh nonce, valid for the configured lifetime.
    pub(super) fn issue(&self, now: SystemTime) -> String {
        let made = secs(now);
        let mut out = Vec::with_capacity(8 + TAG_LEN);
        out.extend_from_slice(&made.to_be_bytes());
        if let Some(mac) = self.mac(made) {
            let tag = mac.finalize().into_bytes();
            out.extend_from_slice(tag.get(..TAG_LEN).unwrap_or_default());
        }
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Whether `nonce` was made with this key and is still fresh.
    pub(super) fn valid(&self, nonce: &str, now: SystemTime) -> bool {
        if nonce.len() > 64 {
            return false;
        }
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let (Some(made), Some(tag)) = (raw.get(..8), raw.get(8..)) else {
            return false;
        };
        if tag.len() != TAG_LEN {
            return false;
        }
        let made = u64::from_be_bytes(made.try_into().unwrap_or_default());
        let now = secs(now);
        if made > now.saturating_add(FUTURE_SKEW)
            || now.saturating_sub(made) > self.lifetime.as_secs()
        {
            return false;
        }
        self.mac(made)
            .is_some_and(|mac| mac.verify_truncated_left(tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces(key: &[u8]) -> Nonces {
        Nonces::new(Zeroizing::new(key.to_vec()), Duration::from_secs(300))
    }

    #[test]
    fn a_nonce_is_valid_for_its_lifetime_with_its_key_only() {
        let n = nonces(b"k1-0123456789abcdef0123456789abcdef");
        let now = SystemTime::now();
        let nonce = n.issue(now);
        assert!(n.valid(&nonce, now));
        assert!(n.valid(&nonce, now + Duration::from_secs(300)));
        assert!(!n.valid(&nonce, now + Duration::from_secs(302)));
        assert!(!nonces(b"k2-0123456789abcdef0123456789abcdef").valid(&nonce, now));
        // Made in the future beyond the skew.
        assert!(!n.valid(&n.issue(now + Duration::from_secs(60)), now));
        for bad in ["", "x", "AAAA", &"A".repeat(65), &format!("{nonce}A")] {
            assert!(!n.valid(bad, now), "{bad}");
        }
        // One flipped bit in the tag.
        let mut raw = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        assert!(!n.valid(&URL_SAFE_NO_PAD.encode(raw), now));
    }
}
