//! The verification pipeline, one named step each, as jsonwebtoken's `decode` reads:
//! size and cache, [`split_compact`], [`decode_header`], [`check_header`], with trusted
//! issuers [`route`] (the payload's unverified `iss` chooses the key source), then
//! [`select_keys`], [`verify_signature`], [`decode_payload`] and [`parse_payload`], the
//! claims hook, [`check_claims`], and the cache again. Each step either passes its result on
//! or ends the attempt with a [`Step`].

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::claims::{Expected, Header, Registered, check_and_map, parse_claims, unverified_issuer};
use super::issuers::Route;
use super::jwks::Snapshot;
use super::keys::{MAX_KID_LEN, VerifyKey};
use super::{
    Domain, INVALID, Inner, JwtAuthenticator, MAX_TOKEN_LEN, Pinned, SourceId, Step, invalid,
};
use crate::authenticators::claims::ClaimError;
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::secret::digest;

/// The end of an attempt: refused with this log detail.
fn refuse(detail: &'static str) -> Step {
    Step::Done(Err(invalid(detail)))
}

impl JwtAuthenticator {
    /// One verification attempt with the keys at hand: the configured keys and the current
    /// JWKS snapshot of the token's key source, or `pinned` for that source (never fetches).
    pub(super) fn verify_with(&self, token: &str, pinned: Pinned) -> Step {
        match self.pipeline(token, &pinned) {
            Ok(ctx) => Step::Done(Ok(ctx)),
            Err(end) => end,
        }
    }

    /// The snapshot of `source`: the pinned one, or its cache's current one.
    fn snapshot(&self, source: SourceId, pinned: &Pinned) -> Option<Arc<Snapshot>> {
        match pinned {
            Some((s, snap)) if *s == source => Some(snap.clone()),
            _ => self.inner.remotes.get(source).map(|r| r.current()),
        }
    }

    /// Whether the fetched key `id` is still in the usable snapshot of `source`.
    fn still_published(&self, source: SourceId, id: &[u8; 32], pinned: &Pinned) -> bool {
        self.snapshot(source, pinned)
            .is_some_and(|s| s.usable(Instant::now()) && s.keys.contains_id(id))
    }

    fn pipeline(&self, token: &str, pinned: &Pinned) -> Result<AuthContext, Step> {
        let inner = &*self.inner;
        if token.len() > MAX_TOKEN_LEN {
            return Err(refuse("token_too_long"));
        }
        let now = SystemTime::now();
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let cache_key = inner.cache.as_ref().map(|_| digest(token.as_bytes()));
        if let (Some(cache), Some(key)) = (&inner.cache, &cache_key)
            && let Some(ctx) = cache.get(key, now_secs, |source, id| {
                self.still_published(source, id, pinned)
            })
        {
            return Ok(ctx);
        }
        let jws = split_compact(token)?;
        let (mut stack, mut heap) = ([0u8; 512], Vec::new());
        let header_json = header_bytes(jws.header, &mut stack, &mut heap)?;
        let (header, alg) = decode_header(header_json)?;
        let kid = check_header(&header, inner.require_at_jwt)?;
        // With trusted issuers, the payload is decoded before the signature is checked, and
        // its `iss` read only to choose the key source.
        let payload = if inner.routes.is_empty() {
            None
        } else {
            Some(decode_payload(jws.payload)?)
        };
        let iss = match &payload {
            Some(p) => unverified_issuer(p).map_err(refuse)?,
            None => None,
        };
        let (domain, route) = route(inner, payload.is_some(), iss.as_deref())?;
        let source = route.as_ref().map_or(domain.remote, |r| r.source);
        let snap = source.and_then(|s| self.snapshot(s, pinned));
        let remote = source.zip(snap.as_deref());
        let candidates = select_keys(domain, remote, kid, alg)?;
        let (key, fetched) = verify_signature(candidates, &jws, alg)?;
        // The key that verified the signature decides which issuers the token may claim; a
        // routed token, exactly the one it was routed by.
        let expected = match &route {
            Some(r) => Expected::Routed {
                iss: iss.as_deref().unwrap_or_default(),
                tenant: r.tenant,
            },
            None if fetched => Expected::Keys(&domain.remote_issuers),
            None => Expected::Keys(&key.issuers),
        };
        let fetched_key = if fetched {
            source.map(|s| (s, key.id))
        } else {
            None
        };
        let payload = match payload {
            Some(p) => p,
            None => decode_payload(jws.payload)?,
        };
        let (claims, raw) = parse_payload(domain, payload)?;
        run_hook(inner, &raw)?;
        let (ctx, exp) = check_claims(domain, claims, raw, expected, now)?;
        if let (Some(cache), Some(key)) = (&inner.cache, cache_key) {
            let until = exp.saturating_add(domain.rules.leeway.as_secs());
            cache.insert(key, ctx.clone(), until, fetched_key, now_secs);
        }
        Ok(ctx)
    }
}

/// The domain whose keys and rules judge the token. Without trusted issuers (`routed` false),
/// the builder's own. With them, the trusted issuer its unverified `iss` names; else the
/// builder's own key sources if they are bound to that `iss`; else the token is refused
/// (`unknown_issuer`, `tenant_not_allowed`) before any key is tried or fetched.
fn route<'a>(
    inner: &'a Inner,
    routed: bool,
    iss: Option<&'a str>,
) -> Result<(&'a Domain, Option<Route<'a>>), Step> {
    if routed {
        if let Some(iss) = iss {
            match inner.routes.find(iss) {
                Ok(r) => return Ok((r.domain, Some(r))),
                Err("unknown_issuer") => {}
                Err(detail) => return Err(refuse(detail)),
            }
        }
        return match &inner.own {
            Some(own) if inner.own_issuers.accepts(iss) => Ok((own, None)),
            _ => Err(refuse("unknown_issuer")),
        };
    }
    match &inner.own {
        Some(own) => Ok((own, None)),
        None => Err(refuse("no_matching_key")),
    }
}

/// The three segments of a compact JWS, and the signed part.
struct Compact<'t> {
    header: &'t str,
    payload: &'t str,
    signature: &'t str,
    /// Both first segments and the dot between them.
    signed: &'t [u8],
}

/// Compact serialization: exactly three dot-separated segments.
fn split_compact(token: &str) -> Result<Compact<'_>, Step> {
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(refuse("not_compact_jws"));
    };
    // All ASCII and in bounds; checked anyway.
    let Some(signed) = token.as_bytes().get(..header.len() + 1 + payload.len()) else {
        return Err(refuse("not_compact_jws"));
    };
    Ok(Compact {
        header,
        payload,
        signature,
        signed,
    })
}

/// Decodes the header segment (canonical base64url): on the stack, as headers are small; on
/// the heap only when large.
fn header_bytes<'b>(
    h64: &str,
    stack: &'b mut [u8; 512],
    heap: &'b mut Vec<u8>,
) -> Result<&'b [u8], Step> {
    match URL_SAFE_NO_PAD.decode_slice(h64, stack) {
        Ok(n) => Ok(stack.get(..n).unwrap_or_default()),
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            *heap = URL_SAFE_NO_PAD
                .decode(h64)
                .map_err(|_| refuse("bad_header_encoding"))?;
            Ok(heap)
        }
        Err(_) => Err(refuse("bad_header_encoding")),
    }
}

/// Parses the header (strict JSON, duplicate members refused) and its `alg`.
fn decode_header(json: &[u8]) -> Result<(Header<'_>, Algorithm), Step> {
    let Ok(header) = serde_json::from_slice::<Header<'_>>(json) else {
        return Err(refuse("bad_header"));
    };
    let Ok(alg) = header.alg.parse::<Algorithm>() else {
        return Err(refuse("unsupported_alg"));
    };
    Ok((header, alg))
}

/// Header rules: no `crit`, no nested JWT (`cty: JWT`), `typ: at+jwt` when required, a `kid`
/// of sane length. Returns the `kid`.
fn check_header<'h>(header: &'h Header<'_>, require_at_jwt: bool) -> Result<Option<&'h str>, Step> {
    if header.crit.is_some() {
        return Err(refuse("crit_not_understood"));
    }
    if header
        .cty
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("jwt"))
    {
        return Err(refuse("nested_jwt"));
    }
    if require_at_jwt {
        let ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !ok {
            return Err(refuse("typ_not_at_jwt"));
        }
    }
    let kid = header.kid.as_deref();
    if kid.is_some_and(|k| k.is_empty() || k.len() > MAX_KID_LEN) {
        return Err(refuse("bad_kid"));
    }
    Ok(kid)
}

/// The keys that may verify this token: the domain's configured keys, then the usable keys
/// of its key source's snapshot `remote` (marked `true`). None at all ends the attempt:
/// [`Step::NeedKeys`] when fetching might find the key, a refusal otherwise.
fn select_keys<'k>(
    domain: &'k Domain,
    remote: Option<(SourceId, &'k Snapshot)>,
    kid: Option<&'k str>,
    alg: Algorithm,
) -> Result<impl Iterator<Item = (&'k VerifyKey, bool)>, Step> {
    let live = remote.map(|(_, s)| s).filter(|s| s.usable(Instant::now()));
    let mut candidates = domain
        .static_keys
        .candidates(kid, alg)
        .map(|k| (k, false))
        .chain(
            live.into_iter()
                .flat_map(move |s| s.keys.candidates(kid, alg))
                .map(|k| (k, true)),
        )
        .peekable();
    if candidates.peek().is_some() {
        return Ok(candidates);
    }
    let static_has_kid = kid.is_some_and(|k| domain.static_keys.has_kid(k));
    let need = |(source, snap): (SourceId, &Snapshot)| Step::NeedKeys {
        source,
        generation: snap.generation,
    };
    Err(match (remote, live) {
        (Some(r), None) if !static_has_kid => need(r),
        (Some(r), Some(s)) if kid.is_some_and(|k| !s.keys.has_kid(k)) && !static_has_kid => need(r),
        _ => refuse("no_matching_key"),
    })
}

/// The first candidate whose signature check passes.
fn verify_signature<'k>(
    mut candidates: impl Iterator<Item = (&'k VerifyKey, bool)>,
    jws: &Compact<'_>,
    alg: Algorithm,
) -> Result<(&'k VerifyKey, bool), Step> {
    candidates
        .find(|(k, _)| {
            matches!(
                jsonwebtoken::crypto::verify(jws.signature, jws.signed, &k.key, alg),
                Ok(true)
            )
        })
        .ok_or_else(|| refuse("bad_signature"))
}

/// Decodes the payload segment (canonical base64url).
fn decode_payload(p64: &str) -> Result<Vec<u8>, Step> {
    URL_SAFE_NO_PAD
        .decode(p64)
        .map_err(|_| refuse("bad_payload_encoding"))
}

/// Parses the payload (strict JSON) with the domain's claim mapping; keeps its text for
/// `AuthContext::claims`.
fn parse_payload(domain: &Domain, payload: Vec<u8>) -> Result<(Registered, String), Step> {
    let Some(claims) = parse_claims(&payload, &domain.mapping, &domain.rules.required) else {
        return Err(refuse("bad_claims"));
    };
    // Valid JSON is valid UTF-8.
    let Ok(raw) = String::from_utf8(payload) else {
        return Err(refuse("bad_claims"));
    };
    Ok((claims, raw))
}

/// The application's own check, when configured.
fn run_hook(inner: &Inner, raw: &str) -> Result<(), Step> {
    if let Some(hook) = &inner.hook {
        let map: Map<String, Value> = serde_json::from_str(raw).unwrap_or_default();
        if hook(&map).is_err() {
            return Err(refuse(ClaimError::Rejected.detail()));
        }
    }
    Ok(())
}

/// The registered-claim checks; an expired or not-yet-valid token gets its own description.
fn check_claims(
    domain: &Domain,
    claims: Registered,
    raw: String,
    expected: Expected<'_>,
    now: SystemTime,
) -> Result<(AuthContext, u64), Step> {
    check_and_map(claims, raw, &domain.rules, expected, &domain.mapping, now).map_err(|e| {
        let err = match e {
            ClaimError::Expired => AuthError::expired("the access token expired"),
            ClaimError::NotYetValid => {
                AuthError::invalid_token("the access token is not yet valid")
            }
            _ => AuthError::invalid_token(INVALID),
        };
        Step::Done(Err(err.with_detail(e.detail())))
    })
}
