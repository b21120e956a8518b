//! DPoP proofs (RFC 9449 §4.2) for tests: proof keys, a proof builder, and the malformed proofs
//! a resource server must refuse.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::fail;
use crate::error::ConfigError;

/// The `typ` header of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// A DPoP proof key: a freshly generated asymmetric key pair that signs proofs.
///
/// Clones share the key. `Debug` shows the algorithm and the thumbprint, never the private key.
///
/// # Example
///
/// ```
/// use mcp_auth::testing::DpopKey;
///
/// let key = DpopKey::es256();
/// let proof = key
///     .proof("POST", "https://mcp.example.com/mcp")
///     .access_token("the-access-token")
///     .sign();
/// assert_eq!(proof.split('.').count(), 3);
/// // The token's `cnf.jkt` names this key:
/// let jkt = key.thumbprint();
/// assert_eq!(jkt.len(), 43);
/// ```
#[derive(Clone)]
pub struct DpopKey(Arc<KeyInner>);

struct KeyInner {
    alg: Algorithm,
    /// `alg` as the JWS header names it.
    alg_name: &'static str,
    key: EncodingKey,
    /// The public JWK: only the members RFC 7638 requires for the key type.
    public: Map<String, Value>,
    /// The private member `d`, base64url (only for malformed proofs that leak it).
    d: Zeroizing<String>,
    thumbprint: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.0.alg)
            .field("thumbprint", &self.0.thumbprint)
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// Generates a key for `alg`: ES256, ES384, EdDSA (Ed25519), or RS256/384/512 and
    /// PS256/384/512 (RSA 2048).
    ///
    /// # Errors
    ///
    /// When `alg` is symmetric (HMAC) or not one of the above, or the key generation fails.
    pub fn generate(alg: Algorithm) -> Result<Self, ConfigError> {
        const WHAT: &str = "dpop key";
        let rsa: &'static rcgen::SignatureAlgorithm = &rcgen::PKCS_RSA_SHA256;
        let (alg_name, rc_alg): (_, &'static rcgen::SignatureAlgorithm) = match alg {
            Algorithm::ES256 => ("ES256", &rcgen::PKCS_ECDSA_P256_SHA256),
            Algorithm::ES384 => ("ES384", &rcgen::PKCS_ECDSA_P384_SHA384),
            Algorithm::EdDSA => ("EdDSA", &rcgen::PKCS_ED25519),
            Algorithm::RS256 => ("RS256", rsa),
            Algorithm::RS384 => ("RS384", rsa),
            Algorithm::RS512 => ("RS512", rsa),
            Algorithm::PS256 => ("PS256", rsa),
            Algorithm::PS384 => ("PS384", rsa),
            Algorithm::PS512 => ("PS512", rsa),
            _ => {
                return Err(ConfigError::new(
                    WHAT,
                    "DPoP proofs need an asymmetric algorithm: ES256, ES384, EdDSA, RS256/384/512 \
                     or PS256/384/512",
                ));
            }
        };
        let pair = rcgen::KeyPair::generate_for(rc_alg)
            .map_err(|e| ConfigError::new(WHAT, format!("key generation failed: {e}")))?;
        let pkcs8 = Zeroizing::new(pair.serialize_der());
        let parts = KeyParts::from_pkcs8(alg, &pkcs8, pair.public_key_raw())
            .ok_or_else(|| ConfigError::new(WHAT, "the generated key could not be read"))?;
        let thumbprint = jwk_thumbprint(&Value::Object(parts.public.clone()))
            .ok_or_else(|| ConfigError::new(WHAT, "the generated key has no thumbprint"))?;
        Ok(Self(Arc::new(KeyInner {
            alg,
            alg_name,
            key: parts.key,
            public: parts.public,
            d: parts.d,
            thumbprint,
        })))
    }

    /// A new ES256 (P-256) key, the usual DPoP key.
    ///
    /// # Panics
    ///
    /// When the system's random source fails (the key cannot be generated).
    #[must_use]
    pub fn es256() -> Self {
        match Self::generate(Algorithm::ES256) {
            Ok(key) => key,
            Err(e) => fail(format_args!("DpopKey::es256: {e}")),
        }
    }

    /// The algorithm this key signs with (the proof header's `alg`).
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.0.alg
    }

    /// The public key as a JWK, with exactly the members RFC 7638 requires (`kty` and `crv`,
    /// `x`, `y` or `n`, `e`): what a proof's header `jwk` carries.
    #[must_use]
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.0.public.clone())
    }

    /// The public JWK plus the private member `d`. A proof must never carry it; use it with
    /// [`DpopProofBuilder::header_jwk`] to check that a verifier refuses such a proof.
    #[must_use]
    pub fn private_jwk(&self) -> Value {
        let mut jwk = self.0.public.clone();
        jwk.insert("d".into(), Value::String(self.0.d.as_str().to_owned()));
        Value::Object(jwk)
    }

    /// The JWK SHA-256 thumbprint (RFC 7638), base64url: what an access token bound to this key
    /// carries as `cnf.jkt`.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        self.0.thumbprint.clone()
    }

    /// Starts a proof for a request with this HTTP method and URL (`htm`, `htu`; the query and
    /// fragment are removed from `url`, RFC 9449 §4.2).
    pub fn proof(&self, method: &str, url: &str) -> DpopProofBuilder {
        DpopProofBuilder::new(self.clone(), method, url)
    }

    /// `alg` as a JWS header names it.
    pub(super) fn alg_name(&self) -> &'static str {
        self.0.alg_name
    }

    /// Signs `message` with this key, base64url: a JWS signature.
    pub(super) fn sign_message(&self, message: &[u8]) -> String {
        match jsonwebtoken::crypto::sign(message, &self.0.key, self.0.alg) {
            Ok(sig) => sig,
            Err(e) => fail(format_args!("DPoP proof signing failed: {e}")),
        }
    }
}

/// Builds one DPoP proof. Start with [`DpopKey::proof`]; every setter replaces the default.
///
/// Defaults: header `{typ: "dpop+jwt", alg, jwk}` (the key's algorithm and public JWK), claims
/// `jti` (128 random bits), `htm`, `htu`, `iat` (now); `ath` only with
/// [`access_token`](Self::access_token), `nonce` only with [`nonce`](Self::nonce).
///
/// Besides [`sign`](Self::sign), the builder makes the proofs a verifier must refuse:
/// [`sign_alg_none`](Self::sign_alg_none), [`sign_hmac`](Self::sign_hmac),
/// [`sign_tampered`](Self::sign_tampered) and [`with_private_jwk`](Self::with_private_jwk),
/// and [`without`](Self::without) drops any required claim.
#[derive(Clone)]
#[must_use]
pub struct DpopProofBuilder {
    key: DpopKey,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    /// Names dropped with `without` / `without_header`: no default fills them in.
    dropped_claims: BTreeSet<String>,
    dropped_header: BTreeSet<String>,
}

impl fmt::Debug for DpopProofBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `ath` is a digest and `jti` an identifier: neither reveals a credential.
        f.debug_struct("DpopProofBuilder")
            .field("key", &self.key)
            .field("header", &self.header)
            .field("claims", &self.claims)
            .field("dropped_claims", &self.dropped_claims)
            .field("dropped_header", &self.dropped_header)
            .finish()
    }
}

impl DpopProofBuilder {
    fn new(key: DpopKey, method: &str, url: &str) -> Self {
        let mut header = Map::new();
        header.insert("typ".into(), DPOP_TYP.into());
        let mut claims = Map::new();
        claims.insert("htm".into(), method.into());
        claims.insert("htu".into(), htu_of(url).into());
        Self {
            key,
            header,
            claims,
            dropped_claims: BTreeSet::new(),
            dropped_header: BTreeSet::new(),
        }
    }

    /// Binds the proof to an access token: `ath` = base64url(SHA-256(token)).
    pub fn access_token(self, token: &str) -> Self {
        let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        self.claim("ath", ath.into())
    }

    /// Sets `nonce` (a server-provided `DPoP-Nonce`).
    pub fn nonce(self, nonce: &str) -> Self {
        self.claim("nonce", nonce.into())
    }

    /// Sets `iat` to this time (whole seconds; a time before 1970 gives a negative number).
    pub fn iat(self, at: SystemTime) -> Self {
        self.claim("iat", unix_seconds(at).into())
    }

    /// Sets `iat` to now plus `secs` (negative: in the past).
    pub fn iat_offset(self, secs: i64) -> Self {
        let iat = unix_seconds(SystemTime::now()).saturating_add(secs);
        self.claim("iat", iat.into())
    }

    /// Sets `jti` (default: 128 random bits, base64url, new for every signed proof).
    pub fn jti(self, jti: &str) -> Self {
        self.claim("jti", jti.into())
    }

    /// Sets the header `typ` (default `dpop+jwt`).
    pub fn typ(self, typ: &str) -> Self {
        self.header("typ", typ.into())
    }

    /// Sets any claim, replacing the one there (`htm`, `htu`, …).
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.dropped_claims.remove(name);
        self.claims.insert(name.to_owned(), value);
        self
    }

    /// Drops a claim, a default one (`jti`, `htm`, `htu`, `iat`) included.
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self.dropped_claims.insert(name.to_owned());
        self
    }

    /// Replaces the header's `jwk` (default: the key's public JWK), e.g. with
    /// [`DpopKey::private_jwk`] or another key's public JWK (the signature then does not match
    /// the embedded key).
    pub fn header_jwk(self, jwk: Value) -> Self {
        self.header("jwk", jwk)
    }

    /// Embeds the key's private JWK (with `d`) in the header: a proof a verifier must refuse.
    pub fn with_private_jwk(self) -> Self {
        let jwk = self.key.private_jwk();
        self.header_jwk(jwk)
    }

    /// Sets any header member, replacing the one there (`alg` only changes what the header
    /// says: [`sign`](Self::sign) still signs with the key's algorithm).
    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.dropped_header.remove(name);
        self.header.insert(name.to_owned(), value);
        self
    }

    /// Drops a header member (`typ`, `alg`, `jwk`).
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self.dropped_header.insert(name.to_owned());
        self
    }

    /// The header this proof would carry with `alg` (unless set or dropped).
    fn header_with(&self, alg: &str) -> Value {
        let mut header = self.header.clone();
        for (name, value) in [("alg", Value::from(alg)), ("jwk", self.key.public_jwk())] {
            if !self.dropped_header.contains(name) {
                header.entry(name).or_insert(value);
            }
        }
        Value::Object(header)
    }

    /// The claims this proof would carry, with the defaults filled in.
    fn claims_now(&self) -> Value {
        let mut claims = self.claims.clone();
        if !self.dropped_claims.contains("jti") && !claims.contains_key("jti") {
            let Some(jti) = crate::secret::random_urlsafe::<16>("") else {
                fail(format_args!("DPoP proof: the random source failed"))
            };
            claims.insert("jti".into(), jti.into());
        }
        if !self.dropped_claims.contains("iat") && !claims.contains_key("iat") {
            claims.insert("iat".into(), unix_seconds(SystemTime::now()).into());
        }
        Value::Object(claims)
    }

    /// Signs the proof with the key: the value of a `DPoP` header.
    ///
    /// # Panics
    ///
    /// When signing fails (the system's random source failed).
    #[must_use]
    pub fn sign(self) -> String {
        let alg = self.key.0.alg_name;
        let (header, claims) = (self.header_with(alg), self.claims_now());
        compact(&header, &claims, |message| {
            URL_SAFE_NO_PAD
                .decode(self.key.sign_message(message))
                .unwrap_or_default()
        })
    }

    /// The proof with header `alg: none` and an empty signature (`header.claims.`).
    #[must_use]
    pub fn sign_alg_none(self) -> String {
        let (header, claims) = (self.header_with("none"), self.claims_now());
        compact(&header, &claims, |_| Vec::new())
    }

    /// The proof with header `alg: HS256`, MACed with `secret` (a symmetric algorithm, which
    /// DPoP forbids; the header `jwk` is still the public key).
    ///
    /// # Panics
    ///
    /// When the HMAC cannot be computed (no JWT crypto backend).
    #[must_use]
    pub fn sign_hmac(self, secret: &[u8]) -> String {
        let (header, claims) = (self.header_with("HS256"), self.claims_now());
        let key = EncodingKey::from_secret(secret);
        compact(
            &header,
            &claims,
            |message| match jsonwebtoken::crypto::sign(message, &key, Algorithm::HS256) {
                Ok(sig) => URL_SAFE_NO_PAD.decode(sig).unwrap_or_default(),
                Err(e) => fail(format_args!("DPoP proof HMAC failed: {e}")),
            },
        )
    }

    /// The properly signed proof with one bit of its signature flipped.
    ///
    /// # Panics
    ///
    /// As [`sign`](Self::sign).
    #[must_use]
    pub fn sign_tampered(self) -> String {
        let alg = self.key.0.alg_name;
        let (header, claims) = (self.header_with(alg), self.claims_now());
        compact(&header, &claims, |message| {
            let mut sig = URL_SAFE_NO_PAD
                .decode(self.key.sign_message(message))
                .unwrap_or_default();
            if let Some(first) = sig.first_mut() {
                *first ^= 0x01;
            }
            sig
        })
    }
}

/// A compact JWS `base64url(header).base64url(claims).base64url(signature)`, where `sign`
/// receives the signing input (`header.claims` as ASCII) and returns the raw signature.
/// The building block for proofs (or tokens) no builder makes.
///
/// ```
/// use mcp_auth::testing::compact;
/// use serde_json::json;
///
/// let jws = compact(&json!({"alg": "none"}), &json!({"sub": "x"}), |_| Vec::new());
/// assert_eq!(jws, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
/// ```
#[must_use]
pub fn compact(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut out);
    let signature = sign(out.as_bytes());
    out.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut out);
    out
}

/// The JWK SHA-256 thumbprint of a public key (RFC 7638), base64url; `None` when `jwk` lacks a
/// member its key type (`EC`, `OKP`, `RSA`, `oct`) requires, or names another key type.
///
/// ```
/// use mcp_auth::testing::jwk_thumbprint;
/// use serde_json::json;
///
/// // RFC 7638 §3.1.
/// let jwk = json!({
///     "kty": "RSA",
///     "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
///     "e": "AQAB",
///     "alg": "RS256",
///     "kid": "2011-04-29"
/// });
/// assert_eq!(jwk_thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
/// ```
#[must_use]
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    crate::authenticators::jwt::jwk_thumbprint(jwk.as_object()?)
}

/// `url` without its query and fragment (the `htu` of RFC 9449 §4.2).
pub(super) fn htu_of(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url.get(..end).unwrap_or(url)
}

pub(super) fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// What a generated key becomes: the signing key in the form jsonwebtoken's backends read,
/// the public JWK and the private member `d`.
struct KeyParts {
    key: EncodingKey,
    public: Map<String, Value>,
    d: Zeroizing<String>,
}

impl KeyParts {
    /// Reads a PKCS#8 private key and the raw public key as rcgen gives them: for EC the
    /// uncompressed point, for Ed25519 the 32 bytes, for RSA the PKCS#1 `RSAPublicKey`.
    fn from_pkcs8(alg: Algorithm, pkcs8: &[u8], public_raw: &[u8]) -> Option<Self> {
        let b64 = |bytes: &[u8]| Value::String(URL_SAFE_NO_PAD.encode(bytes));
        let mut public = Map::new();
        // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING, … }
        let info = der_items(der_one(pkcs8, 0x30)?)?;
        let private = der_expect(info.get(2)?, 0x04)?;
        match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let (crv, len) = if alg == Algorithm::ES256 {
                    ("P-256", 32)
                } else {
                    ("P-384", 48)
                };
                // ECPrivateKey ::= SEQUENCE { version, privateKey OCTET STRING, … }
                let ec = der_items(der_one(private, 0x30)?)?;
                let d = der_expect(ec.get(1)?, 0x04)?;
                let point = public_raw.strip_prefix(&[0x04])?;
                if point.len() != 2 * len {
                    return None;
                }
                let (x, y) = point.split_at(len);
                public.insert("kty".into(), "EC".into());
                public.insert("crv".into(), crv.into());
                public.insert("x".into(), b64(x));
                public.insert("y".into(), b64(y));
                Some(Self {
                    key: EncodingKey::from_ec_der(pkcs8),
                    public,
                    d: Zeroizing::new(URL_SAFE_NO_PAD.encode(d)),
                })
            }
            Algorithm::EdDSA => {
                // CurvePrivateKey ::= OCTET STRING (the 32-byte seed). The backends read a
                // PKCS#8 v1 document, which is this fixed prefix and the seed.
                const V1_PREFIX: [u8; 16] = [
                    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04,
                    0x22, 0x04, 0x20,
                ];
                let seed = der_one(private, 0x04)?;
                if seed.len() != 32 || public_raw.len() != 32 {
                    return None;
                }
                let mut v1 = Zeroizing::new(V1_PREFIX.to_vec());
                v1.extend_from_slice(seed);
                public.insert("kty".into(), "OKP".into());
                public.insert("crv".into(), "Ed25519".into());
                public.insert("x".into(), b64(public_raw));
                Some(Self {
                    key: EncodingKey::from_ed_der(&v1),
                    public,
                    d: Zeroizing::new(URL_SAFE_NO_PAD.encode(seed)),
                })
            }
            _ => {
                // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, … } (PKCS#1), which is
                // what the backends read; RSAPublicKey ::= SEQUENCE { n, e }.
                let rsa = der_items(der_one(private, 0x30)?)?;
                let d = der_uint(rsa.get(3)?)?;
                let pubkey = der_items(der_one(public_raw, 0x30)?)?;
                public.insert("kty".into(), "RSA".into());
                public.insert("n".into(), b64(der_uint(pubkey.first()?)?));
                public.insert("e".into(), b64(der_uint(pubkey.get(1)?)?));
                Some(Self {
                    key: EncodingKey::from_rsa_der(private),
                    public,
                    d: Zeroizing::new(URL_SAFE_NO_PAD.encode(d)),
                })
            }
        }
    }
}

/// One DER element: `(tag, contents, rest)`.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The contents of `input`, which must be exactly one element with this tag.
fn der_one(input: &[u8], tag: u8) -> Option<&[u8]> {
    match der_tlv(input)? {
        (t, contents, []) if t == tag => Some(contents),
        _ => None,
    }
}

/// The elements of a constructed value's contents.
fn der_items(mut contents: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut items = Vec::new();
    while !contents.is_empty() {
        let (tag, value, rest) = der_tlv(contents)?;
        items.push((tag, value));
        contents = rest;
    }
    Some(items)
}

fn der_expect<'a>(item: &(u8, &'a [u8]), tag: u8) -> Option<&'a [u8]> {
    (item.0 == tag).then_some(item.1)
}

/// An unsigned INTEGER's big-endian bytes without leading zeros.
fn der_uint<'a>(item: &(u8, &'a [u8])) -> Option<&'a [u8]> {
    let bytes = der_expect(item, 0x02)?;
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    bytes.get(start..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::json;

    fn parts(jws: &str) -> (Value, Value, String) {
        let mut it = jws.split('.');
        let mut json = || {
            let bytes = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        let (header, claims) = (json(), json());
        (header, claims, it.next().unwrap().to_owned())
    }

    /// Verifies `proof` against `jwk` with jsonwebtoken, returning the claims.
    fn verify(proof: &str, jwk: &Value, alg: Algorithm) -> jsonwebtoken::errors::Result<Value> {
        let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(proof, &key, &validation).map(|d| d.claims)
    }

    fn now() -> i64 {
        unix_seconds(SystemTime::now())
    }

    #[test]
    fn proofs_of_every_algorithm_verify_against_the_public_jwk() {
        for alg in [
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
            Algorithm::RS256,
            Algorithm::PS256,
        ] {
            let key = DpopKey::generate(alg).unwrap();
            let proof = key
                .proof("POST", "https://mcp.example.com/mcp?x=1#frag")
                .access_token("tok")
                .nonce("n-1")
                .sign();
            let claims =
                verify(&proof, &key.public_jwk(), alg).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(claims["htm"], "POST");
            assert_eq!(claims["htu"], "https://mcp.example.com/mcp");
            assert_eq!(claims["nonce"], "n-1");
            assert_eq!(
                claims["ath"],
                URL_SAFE_NO_PAD.encode(Sha256::digest(b"tok")).as_str()
            );
            assert!((claims["iat"].as_i64().unwrap() - now()).abs() <= 2);
            assert!(
                claims["jti"].as_str().unwrap().len() >= 22,
                "128 bits or more"
            );

            let (header, _, _) = parts(&proof);
            assert_eq!(header["typ"], "dpop+jwt");
            assert_eq!(header["alg"], key.0.alg_name);
            assert_eq!(header["alg"], serde_json::to_value(alg).unwrap());
            assert_eq!(header["jwk"], key.public_jwk());
            assert_eq!(header.as_object().unwrap().len(), 3, "{header}");

            // The thumbprint agrees with jsonwebtoken's RFC 7638 implementation.
            let jwk: Jwk = serde_json::from_value(key.public_jwk()).unwrap();
            let theirs = jwk
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap();
            assert_eq!(key.thumbprint(), theirs, "{alg:?}");
        }
    }

    #[test]
    fn public_jwk_has_only_public_members_and_private_jwk_adds_d() {
        for (alg, members) in [
            (Algorithm::ES256, vec!["crv", "kty", "x", "y"]),
            (Algorithm::EdDSA, vec!["crv", "kty", "x"]),
            (Algorithm::RS256, vec!["e", "kty", "n"]),
        ] {
            let key = DpopKey::generate(alg).unwrap();
            let public = key.public_jwk();
            let mut names: Vec<_> = public.as_object().unwrap().keys().cloned().collect();
            names.sort();
            assert_eq!(names, members, "{alg:?}");
            let private = key.private_jwk();
            let d = private["d"].as_str().unwrap();
            assert!(d.len() >= 43, "{alg:?}: d is the real private value");
            assert_eq!(private.as_object().unwrap().len(), members.len() + 1);
            // Debug never shows the private value.
            let debug = format!("{key:?} {:?}", key.proof("GET", "https://a/"));
            assert!(!debug.contains(d), "{debug}");
        }
    }

    #[test]
    fn the_private_d_matches_the_public_key() {
        // An Ed25519 proof signed by a key rebuilt from the exported `d` verifies against the
        // public JWK: the exported value is the real private key.
        let key = DpopKey::generate(Algorithm::EdDSA).unwrap();
        let seed = URL_SAFE_NO_PAD
            .decode(key.private_jwk()["d"].as_str().unwrap())
            .unwrap();
        let mut v1 = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        v1.extend_from_slice(&seed);
        let other = EncodingKey::from_ed_der(&v1);
        let jws = compact(&json!({"alg": "EdDSA"}), &json!({"a": 1}), |m| {
            URL_SAFE_NO_PAD
                .decode(jsonwebtoken::crypto::sign(m, &other, Algorithm::EdDSA).unwrap())
                .unwrap()
        });
        verify(&jws, &key.public_jwk(), Algorithm::EdDSA).unwrap();
    }

    #[test]
    fn thumbprint_matches_rfc_7638_example() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // Members outside the required set do not count; a missing one gives no thumbprint.
        let mut fewer = jwk.clone();
        fewer.as_object_mut().unwrap().remove("kid");
        assert_eq!(jwk_thumbprint(&fewer), jwk_thumbprint(&jwk));
        fewer.as_object_mut().unwrap().remove("e");
        assert_eq!(jwk_thumbprint(&fewer), None);
        assert_eq!(jwk_thumbprint(&json!({"kty": "XYZ"})), None);
        assert_eq!(
            jwk_thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "a", "y": 1})),
            None
        );
    }

    #[test]
    fn setters_replace_and_without_drops_defaults() {
        let key = DpopKey::es256();
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let proof = key
            .proof("GET", "https://a.example/mcp")
            .iat(at)
            .jti("fixed-id")
            .typ("jwt")
            .claim("htm", "PUT".into())
            .claim("extra", json!([1, 2]))
            .sign();
        let claims = verify(&proof, &key.public_jwk(), Algorithm::ES256).unwrap();
        assert_eq!(
            claims,
            json!({"jti": "fixed-id", "htm": "PUT", "htu": "https://a.example/mcp",
                   "iat": 1_700_000_000, "extra": [1, 2]})
        );
        assert_eq!(parts(&proof).0["typ"], "jwt");

        for name in ["jti", "htm", "htu", "iat", "ath"] {
            let proof = key
                .proof("GET", "https://a.example/mcp")
                .access_token("t")
                .without(name)
                .sign();
            let claims = verify(&proof, &key.public_jwk(), Algorithm::ES256).unwrap();
            let obj = claims.as_object().unwrap();
            assert!(!obj.contains_key(name), "{name} dropped: {claims}");
            assert_eq!(obj.len(), 4, "only {name} dropped: {claims}");
        }

        let proof = key.proof("GET", "https://a/").iat_offset(-600).sign();
        let iat = parts(&proof).1["iat"].as_i64().unwrap();
        assert!((iat - (now() - 600)).abs() <= 2);

        let proof = key
            .proof("GET", "https://a/")
            .without_header("typ")
            .without_header("jwk")
            .header("kid", "k1".into())
            .sign();
        assert_eq!(parts(&proof).0, json!({"alg": "ES256", "kid": "k1"}));
    }

    #[test]
    fn every_proof_has_a_new_jti() {
        let key = DpopKey::es256();
        let builder = key.proof("GET", "https://a/");
        let a = parts(&builder.clone().sign()).1["jti"].clone();
        let b = parts(&builder.sign()).1["jti"].clone();
        assert_ne!(a, b);
    }

    #[test]
    fn attack_proofs_are_what_they_say() {
        let key = DpopKey::es256();
        let jwk = key.public_jwk();
        let build = || key.proof("POST", "https://a.example/mcp").access_token("t");

        let none = build().sign_alg_none();
        assert!(none.ends_with('.'), "{none}");
        let (header, claims, sig) = parts(&none);
        assert_eq!(header["alg"], "none");
        assert_eq!(header["jwk"], jwk);
        assert_eq!(claims["htm"], "POST");
        assert!(sig.is_empty());

        let secret = b"a-shared-secret-of-32-bytes-long";
        let hmac = build().sign_hmac(secret);
        assert_eq!(parts(&hmac).0["alg"], "HS256");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(&hmac, &DecodingKey::from_secret(secret), &validation)
            .unwrap();

        let tampered = build().sign_tampered();
        let err = verify(&tampered, &jwk, Algorithm::ES256).unwrap_err();
        assert_eq!(
            err.kind(),
            &jsonwebtoken::errors::ErrorKind::InvalidSignature
        );
        let (header, claims, _) = parts(&tampered);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(claims["htm"], "POST");

        let leaked = build().with_private_jwk().sign();
        let header = parts(&leaked).0;
        assert!(header["jwk"].get("d").is_some());
        // Still validly signed: only the embedded key is wrong.
        verify(&leaked, &jwk, Algorithm::ES256).unwrap();

        // Signed by one key, naming another.
        let other = DpopKey::es256();
        let swapped = build().header_jwk(other.public_jwk()).sign();
        assert_eq!(parts(&swapped).0["jwk"], other.public_jwk());
        verify(&swapped, &other.public_jwk(), Algorithm::ES256).unwrap_err();
    }

    #[test]
    fn symmetric_and_unknown_algorithms_are_refused() {
        for alg in [Algorithm::HS256, Algorithm::HS512] {
            assert!(DpopKey::generate(alg).is_err(), "{alg:?}");
        }
    }

    #[test]
    fn compact_encodes_without_padding() {
        assert_eq!(
            compact(&json!({"alg": "none"}), &json!({}), |m| {
                assert_eq!(m, b"eyJhbGciOiJub25lIn0.e30");
                vec![0xff]
            }),
            "eyJhbGciOiJub25lIn0.e30._w"
        );
    }

    #[test]
    fn htu_drops_query_and_fragment() {
        assert_eq!(htu_of("https://a/b?c#d"), "https://a/b");
        assert_eq!(htu_of("https://a/b#d?c"), "https://a/b");
        assert_eq!(htu_of("https://a/b"), "https://a/b");
    }

    #[test]
    fn der_reader_refuses_truncated_input() {
        assert_eq!(der_tlv(&[0x30]), None);
        assert_eq!(der_tlv(&[0x30, 0x05, 0x00]), None);
        assert_eq!(der_tlv(&[0x30, 0x85, 0, 0, 0, 0, 1]), None);
        assert_eq!(
            der_one(&[0x04, 0x01, 0xaa, 0x00], 0x04),
            None,
            "trailing bytes"
        );
        assert_eq!(der_uint(&(0x02, &[0x00, 0x80][..])), Some(&[0x80][..]));
        assert_eq!(der_uint(&(0x02, &[0x00][..])), Some(&[0x00][..]));
    }
}
