//! The OAuth token sources: [`ClientCredentials`], [`RefreshTokenGrant`], [`TokenExchange`].

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::cache::{Slot, SlotMap, serve_for};
use super::endpoint::{TokenAnswer, TokenEndpoint};
use super::error::OutboundError;
use super::inbound::Caller;
use super::refresh::RefreshTokenStore;
use super::source::{Credential, CredentialFuture, OUTBOUND_TARGET, TokenSource};
use crate::secret::Secret;

/// Default margin before a token's expiry at which it is no longer served: 30 s.
pub const DEFAULT_EXPIRY_SKEW: Duration = Duration::from_secs(30);
/// How long a token whose answer has no `expires_in` is served: 60 s.
pub const DEFAULT_UNDATED_LIFETIME: Duration = Duration::from_secs(60);
/// Default bound on the exchanged tokens cached in memory (one per caller and upstream).
pub const DEFAULT_EXCHANGE_CACHE: usize = 10_000;

/// RFC 8693 token type of an access token.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 grant type.
const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 7523 grant type, used by Microsoft Entra's on-behalf-of flow.
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// What a token request asks for besides its grant: `scope`, `resource`s, `audience`.
#[derive(Debug, Clone, Default)]
struct Target {
    scope: Option<String>,
    resources: Vec<String>,
    audience: Option<String>,
}

impl Target {
    fn append<'a>(&'a self, form: &mut Vec<(&'static str, &'a str)>) {
        if let Some(s) = &self.scope {
            form.push(("scope", s));
        }
        for r in &self.resources {
            form.push(("resource", r));
        }
        if let Some(a) = &self.audience {
            form.push(("audience", a));
        }
    }
}

fn scope_string<I: IntoIterator<Item = S>, S: AsRef<str>>(scopes: I) -> Option<String> {
    let joined = scopes
        .into_iter()
        .map(|s| s.as_ref().trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// The OAuth 2.1 client-credentials grant: the server's own token for an upstream, cached
/// until `expires_in` minus a skew (default 30 s), refreshed single-flight (one request to
/// the authorization server however many calls wait); a 401 from the upstream invalidates it.
///
/// ```no_run
/// use mcp_auth::Secret;
/// use mcp_auth::outbound::{ClientCredentials, TokenEndpoint};
///
/// let source = ClientCredentials::new(
///     TokenEndpoint::new("https://as.example.com/token", "mcp-server", Secret::new("…")).unwrap(),
/// )
/// .scopes(["reports:read"])
/// .resource("https://api.example.com");
/// ```
pub struct ClientCredentials {
    endpoint: TokenEndpoint,
    target: Target,
    skew: Duration,
    slot: Slot,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("endpoint", &self.endpoint)
            .field("target", &self.target)
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// The grant at `endpoint`.
    #[must_use]
    pub fn new(endpoint: TokenEndpoint) -> Self {
        Self {
            endpoint,
            target: Target::default(),
            skew: DEFAULT_EXPIRY_SKEW,
            slot: Slot::default(),
        }
    }

    /// The scopes asked for.
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, scopes: I) -> Self {
        self.target.scope = scope_string(scopes);
        self
    }

    /// Adds a `resource` (RFC 8707): the upstream's URL.
    #[must_use]
    pub fn resource(mut self, resource: &str) -> Self {
        self.target.resources.push(resource.to_owned());
        self
    }

    /// The `audience` asked for (some servers use it instead of `resource`).
    #[must_use]
    pub fn audience(mut self, audience: &str) -> Self {
        self.target.audience = Some(audience.to_owned());
        self
    }

    /// How long before its expiry a token stops being served (default 30 s; at most half
    /// its lifetime).
    #[must_use]
    pub fn expiry_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    async fn fetch(&self) -> Result<(Credential, Duration), OutboundError> {
        let mut form = vec![("grant_type", "client_credentials")];
        self.target.append(&mut form);
        let answer = self
            .endpoint
            .request(&form)
            .await
            .inspect_err(log_failure)?;
        Ok(credential_of(&answer, self.skew, None))
    }
}

fn credential_of(
    answer: &TokenAnswer,
    skew: Duration,
    cap: Option<std::time::SystemTime>,
) -> (Credential, Duration) {
    (
        Credential::bearer(&answer.access_token),
        serve_for(answer.expires_in, skew, DEFAULT_UNDATED_LIFETIME, cap),
    )
}

fn log_failure(err: &OutboundError) {
    tracing::warn!(target: OUTBOUND_TARGET, error = %err, "token request failed");
}

impl TokenSource for ClientCredentials {
    fn credential<'a>(&'a self, _caller: &'a Caller) -> CredentialFuture<'a> {
        if let Some(c) = self.slot.fresh() {
            return Box::pin(std::future::ready(Ok(c)));
        }
        Box::pin(self.slot.get_or_fetch(|| self.fetch()))
    }

    fn invalidate(&self, _caller: &Caller, rejected: &Credential) {
        self.slot.invalidate(rejected);
    }
}

/// The refresh-token grant with rotation: the access token is cached as with
/// [`ClientCredentials`]; each refresh that returns a new refresh token saves it through a
/// [`RefreshTokenStore`] (memory, file, Redis) before the access token is used, so a restart
/// continues with the newest one.
pub struct RefreshTokenGrant {
    endpoint: TokenEndpoint,
    store: Arc<dyn RefreshTokenStore>,
    initial: Option<Secret>,
    current: Mutex<Option<Secret>>,
    target: Target,
    skew: Duration,
    slot: Slot,
}

impl fmt::Debug for RefreshTokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokenGrant")
            .field("endpoint", &self.endpoint)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl RefreshTokenGrant {
    /// The grant at `endpoint`, its refresh token kept in `store`.
    #[must_use]
    pub fn new(endpoint: TokenEndpoint, store: impl RefreshTokenStore) -> Self {
        Self {
            endpoint,
            store: Arc::new(store),
            initial: None,
            current: Mutex::new(None),
            target: Target::default(),
            skew: DEFAULT_EXPIRY_SKEW,
            slot: Slot::default(),
        }
    }

    /// The refresh token to start from when the store has none (from configuration).
    #[must_use]
    pub fn initial_refresh_token(mut self, token: Secret) -> Self {
        self.initial = Some(token);
        self
    }

    /// The scopes asked for (a subset of the grant's).
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, scopes: I) -> Self {
        self.target.scope = scope_string(scopes);
        self
    }

    /// Adds a `resource` (RFC 8707).
    #[must_use]
    pub fn resource(mut self, resource: &str) -> Self {
        self.target.resources.push(resource.to_owned());
        self
    }

    /// How long before its expiry a token stops being served (default 30 s).
    #[must_use]
    pub fn expiry_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    async fn fetch(&self) -> Result<(Credential, Duration), OutboundError> {
        let held = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let refresh = match held {
            Some(t) => t,
            None => match self.store.load().await? {
                Some(t) => t,
                None => self
                    .initial
                    .clone()
                    .ok_or_else(|| OutboundError::Store("no refresh token".into()))?,
            },
        };
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
        ];
        self.target.append(&mut form);
        let answer = self
            .endpoint
            .request(&form)
            .await
            .inspect_err(log_failure)?;
        let next = answer.refresh_token.clone().unwrap_or(refresh);
        if let Err(err) = self.store.save(&next).await {
            // The new refresh token is kept in memory; a restart before the store recovers
            // loses it.
            tracing::error!(target: OUTBOUND_TARGET, error = %err, "could not save the rotated refresh token");
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(next);
        Ok(credential_of(&answer, self.skew, None))
    }
}

impl TokenSource for RefreshTokenGrant {
    fn credential<'a>(&'a self, _caller: &'a Caller) -> CredentialFuture<'a> {
        if let Some(c) = self.slot.fresh() {
            return Box::pin(std::future::ready(Ok(c)));
        }
        Box::pin(self.slot.get_or_fetch(|| self.fetch()))
    }

    fn invalidate(&self, _caller: &Caller, rejected: &Credential) {
        self.slot.invalidate(rejected);
    }
}

/// Which token-exchange request [`TokenExchange`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// RFC 8693.
    Rfc8693,
    /// Microsoft Entra on-behalf-of (`jwt-bearer` grant, `requested_token_use=on_behalf_of`).
    OnBehalfOf,
}

/// A token for the upstream obtained on behalf of the caller: RFC 8693 token exchange (the
/// caller's inbound token as `subject_token`), or Entra's on-behalf-of flow
/// ([`on_behalf_of`](Self::on_behalf_of)).
///
/// Exchanged tokens are cached per (caller principal, upstream, scopes) in a bounded map
/// (default 10,000 callers, the oldest evicted), never past the exchanged token's expiry
/// minus the skew nor past the caller's own expiry; each key is fetched single-flight. The
/// caller's inbound token must have been kept ([`KeepInboundTokenLayer`](super::KeepInboundTokenLayer)):
/// otherwise [`OutboundError::NoInboundToken`].
pub struct TokenExchange {
    endpoint: TokenEndpoint,
    flavour: Flavour,
    target: Target,
    actor: Option<Arc<dyn TokenSource>>,
    skew: Duration,
    cache: SlotMap<Arc<str>>,
    upstream: String,
    /// `upstream \n scopes`, the part of the cache key this source fixes.
    key_suffix: String,
    /// Exchanged tokens shared by every instance (under the memory cache).
    #[cfg(feature = "redis")]
    shared: Option<super::shared::RedisExchangeCache>,
}

impl fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchange")
            .field("endpoint", &self.endpoint)
            .field("flavour", &self.flavour)
            .field("target", &self.target)
            .field("actor", &self.actor.is_some())
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl TokenExchange {
    /// RFC 8693 token exchange at `endpoint` for the upstream `audience` (sent as
    /// `audience`; add [`resource`](Self::resource) for servers that want RFC 8707).
    #[must_use]
    pub fn new(endpoint: TokenEndpoint, audience: &str) -> Self {
        Self::with(endpoint, Flavour::Rfc8693, audience)
    }

    /// Microsoft Entra's on-behalf-of flow at `endpoint`
    /// (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, the caller's token as
    /// `assertion`, `requested_token_use=on_behalf_of`). Entra names the upstream through
    /// [`scopes`](Self::scopes) (`api://…/.default`); `upstream` only keys the cache.
    #[must_use]
    pub fn on_behalf_of(endpoint: TokenEndpoint, upstream: &str) -> Self {
        let mut s = Self::with(endpoint, Flavour::OnBehalfOf, upstream);
        s.target.audience = None;
        s
    }

    fn with(endpoint: TokenEndpoint, flavour: Flavour, audience: &str) -> Self {
        let mut s = Self {
            endpoint,
            flavour,
            target: Target {
                audience: Some(audience.to_owned()),
                ..Target::default()
            },
            actor: None,
            skew: DEFAULT_EXPIRY_SKEW,
            cache: SlotMap::new(DEFAULT_EXCHANGE_CACHE),
            upstream: audience.to_owned(),
            key_suffix: String::new(),
            #[cfg(feature = "redis")]
            shared: None,
        };
        s.key_suffix = key_suffix(audience, None);
        s
    }

    /// The scopes asked for.
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, scopes: I) -> Self {
        self.target.scope = scope_string(scopes);
        self.key_suffix = key_suffix(&self.upstream, self.target.scope.as_deref());
        self
    }

    /// Adds a `resource` (RFC 8707): the upstream's URL.
    #[must_use]
    pub fn resource(mut self, resource: &str) -> Self {
        self.target.resources.push(resource.to_owned());
        self
    }

    /// An `actor_token` (RFC 8693 §2.1) naming this server, from another source (e.g. its
    /// own [`ClientCredentials`]); sent with `actor_token_type` access_token.
    #[must_use]
    pub fn actor(mut self, actor: impl TokenSource) -> Self {
        self.actor = Some(Arc::new(actor));
        self
    }

    /// How long before its expiry a token stops being served (default 30 s).
    #[must_use]
    pub fn expiry_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// Shares exchanged tokens with every instance through Redis, encrypted (feature
    /// `redis`): an instance that has no token for a (caller, upstream, scopes) in memory
    /// takes the one another instance got, until it expires, before asking the
    /// authorization server. An unreachable Redis only means exchanging again.
    #[cfg(feature = "redis")]
    #[must_use]
    pub fn shared_cache(mut self, cache: super::shared::RedisExchangeCache) -> Self {
        self.shared = Some(cache);
        self
    }

    /// The most callers whose tokens are cached (default 10,000; the oldest is evicted).
    #[must_use]
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = SlotMap::new(capacity);
        self
    }

    fn key(&self, caller: &Caller) -> Result<Arc<str>, OutboundError> {
        let principal = caller.principal().ok_or(OutboundError::NoInboundToken)?;
        let mut key = String::with_capacity(principal.len() + self.key_suffix.len() + 1);
        key.push_str(principal);
        key.push('\n');
        key.push_str(&self.key_suffix);
        Ok(Arc::from(key))
    }

    /// The token another instance shared for `key`, with how long to serve it (capped by
    /// the caller's own expiry); `None` to exchange.
    #[cfg(feature = "redis")]
    async fn shared_token(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<Option<(Credential, Duration)>, OutboundError> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        let (token, until) = match shared.get(key).await {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(target: OUTBOUND_TARGET, error = %e, "the shared exchange cache is unavailable; exchanging");
                return Ok(None);
            }
        };
        let credential = Credential::bearer(&token);
        credential.check_not_inbound(caller)?;
        let now = std::time::SystemTime::now();
        let mut ttl = until.duration_since(now).unwrap_or_default();
        if let Some(cap) = caller.expires_at() {
            ttl = ttl.min(cap.duration_since(now).unwrap_or_default());
        }
        Ok((!ttl.is_zero()).then_some((credential, ttl)))
    }

    async fn fetch(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<(Credential, Duration), OutboundError> {
        #[cfg(feature = "redis")]
        if let Some(found) = self.shared_token(caller, key).await? {
            return Ok(found);
        }
        #[cfg(not(feature = "redis"))]
        let _ = key;
        let inbound = caller
            .inbound_token()
            .ok_or(OutboundError::NoInboundToken)?;
        let subject = inbound.secret().expose();
        let actor = match &self.actor {
            Some(a) => Some(a.credential(&Caller::service()).await?),
            None => None,
        };
        let mut form = match self.flavour {
            Flavour::Rfc8693 => vec![
                ("grant_type", TOKEN_EXCHANGE_GRANT),
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("requested_token_type", ACCESS_TOKEN_TYPE),
            ],
            Flavour::OnBehalfOf => vec![
                ("grant_type", JWT_BEARER_GRANT),
                ("assertion", subject),
                ("requested_token_use", "on_behalf_of"),
            ],
        };
        if let Some(actor) = &actor {
            form.push(("actor_token", actor.token()));
            form.push(("actor_token_type", ACCESS_TOKEN_TYPE));
        }
        self.target.append(&mut form);
        let answer = self
            .endpoint
            .request(&form)
            .await
            .inspect_err(log_failure)?;
        let (credential, ttl) = credential_of(&answer, self.skew, caller.expires_at());
        credential.check_not_inbound(caller)?;
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared
            && let Err(e) = shared
                .put(key, credential.token(), std::time::SystemTime::now() + ttl)
                .await
        {
            tracing::warn!(target: OUTBOUND_TARGET, error = %e, "an exchanged token could not be shared");
        }
        Ok((credential, ttl))
    }
}

fn key_suffix(upstream: &str, scope: Option<&str>) -> String {
    format!("{upstream}\n{}", scope.unwrap_or_default())
}

impl TokenSource for TokenExchange {
    fn credential<'a>(&'a self, caller: &'a Caller) -> CredentialFuture<'a> {
        let key = match self.key(caller) {
            Ok(k) => k,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        if caller.inbound_token().is_none() {
            return Box::pin(std::future::ready(Err(OutboundError::NoInboundToken)));
        }
        let slot = self.cache.slot(&key);
        if let Some(c) = slot.fresh() {
            return Box::pin(std::future::ready(Ok(c)));
        }
        Box::pin(async move { slot.get_or_fetch(|| self.fetch(caller, &key)).await })
    }

    fn invalidate(&self, caller: &Caller, rejected: &Credential) {
        if let Ok(key) = self.key(caller)
            && let Some(slot) = self.cache.get(&key)
        {
            slot.invalidate(rejected);
        }
    }
}
