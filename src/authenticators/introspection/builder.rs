//! [`IntrospectionBuilder`]: configuring an [`IntrospectionAuthenticator`], and checking that
//! configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::cache::AnswerCache;
use super::endpoint::Endpoint;
use super::{
    ClientAuth, DEFAULT_DISCOVERY_COOLDOWN, DEFAULT_NEGATIVE_CACHE_ENTRIES,
    DEFAULT_NEGATIVE_CACHE_TTL, Inner, IntrospectionAuthenticator, MIN_TIMEOUT, Settings,
};
use crate::context::AuthContext;
use crate::error::{ConfigError, Problems};
use crate::oauth::{DynFetcher, HttpFetcher, canonical_resource, check_url, default_fetcher};
use crate::secret::Secret;

/// Builds an [`IntrospectionAuthenticator`].
#[must_use]
pub struct IntrospectionBuilder {
    endpoint: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    settings: Settings,
    cache: Option<(usize, Duration)>,
    negative_cache: Option<(usize, Duration)>,
    discovery_cooldown: Duration,
    fetcher: Option<Arc<dyn DynFetcher>>,
}

impl fmt::Debug for IntrospectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionBuilder")
            .field("endpoint", &self.endpoint)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_auth", &self.settings.client_auth)
            .field("audiences", &self.settings.audiences)
            .finish_non_exhaustive()
    }
}

impl IntrospectionBuilder {
    /// The defaults: `client_secret_basic`, 5 s timeout, 30 s leeway, no cache, the default
    /// negative cache, 64 KiB answer limit.
    pub(super) fn new() -> Self {
        Self {
            endpoint: None,
            issuer: None,
            client_id: None,
            client_secret: None,
            settings: Settings::default(),
            cache: None,
            negative_cache: Some((DEFAULT_NEGATIVE_CACHE_ENTRIES, DEFAULT_NEGATIVE_CACHE_TTL)),
            discovery_cooldown: DEFAULT_DISCOVERY_COOLDOWN,
            fetcher: None,
        }
    }

    /// The introspection endpoint URL (https, or http to a loopback host).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The authorization server's issuer: the endpoint is read from its metadata (on first
    /// use) unless [`endpoint`](Self::endpoint) is set. Also accepted as `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.settings.issuers.push(issuer.clone());
        self.issuer = Some(issuer);
        self
    }

    /// This server's client credentials at the authorization server.
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        self.client_id = Some(id.into());
        self.client_secret = Some(secret.into());
        self
    }

    /// `client_secret_basic` (default) or `client_secret_post`.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.settings.client_auth = auth;
        self
    }

    /// An accepted audience: this server's resource URI (compared canonically: scheme and
    /// host case-insensitive, trailing slash tolerated). At least one is required.
    pub fn audience(mut self, aud: impl AsRef<str>) -> Self {
        self.settings
            .audiences
            .push(canonical_resource(aud.as_ref()));
        self
    }

    /// An accepted `iss` in introspection answers (when the answer carries one).
    pub fn accept_issuer(mut self, iss: impl Into<String>) -> Self {
        self.settings.issuers.push(iss.into());
        self
    }

    /// Timeout of one introspection call, discovery included (default 5 s, at least
    /// [`MIN_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// Clock skew tolerated on `exp` and `nbf` (default 30 s, at most 5 min).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.settings.leeway = leeway.min(Duration::from_secs(300));
        self
    }

    /// Caches active answers: at most `max_entries`, each for at most `ttl` and never past
    /// the token's `exp`. Off by default (a revoked token stays usable until its entry
    /// expires).
    pub fn cache(mut self, max_entries: usize, ttl: Duration) -> Self {
        self.cache = (max_entries > 0 && !ttl.is_zero()).then_some((max_entries, ttl));
        self
    }

    /// Remembers refused tokens (inactive, expired, for another audience, or answered with
    /// 400): at most `max_entries`, each for `ttl`, keyed by the token's SHA-256, so the same
    /// bad token is not sent to the authorization server again meanwhile. On by default
    /// ([`DEFAULT_NEGATIVE_CACHE_ENTRIES`], [`DEFAULT_NEGATIVE_CACHE_TTL`]); `max_entries` 0
    /// or a zero `ttl` turns it off. A token activated at the authorization server within
    /// `ttl` of being refused stays refused until its entry expires.
    pub fn negative_cache(mut self, max_entries: usize, ttl: Duration) -> Self {
        self.negative_cache = (max_entries > 0 && !ttl.is_zero()).then_some((max_entries, ttl));
        self
    }

    /// How long a failed endpoint discovery is not retried (default
    /// [`DEFAULT_DISCOVERY_COOLDOWN`]); requests get 503 with `Retry-After` meanwhile.
    pub fn discovery_cooldown(mut self, cooldown: Duration) -> Self {
        self.discovery_cooldown = cooldown;
        self
    }

    /// Lets `client_id` stand in for a missing `sub` (client-credentials tokens, whose
    /// subject is the client). Off by default: a token without `sub` is refused, because a
    /// client whose id equals some user's `sub` would otherwise get that user's
    /// [`subject`](AuthContext::subject) (its [`principal`](AuthContext::principal) still
    /// differs, as it includes the `client_id`). Turn it on when client ids and user subjects
    /// cannot collide at your authorization server, or when your tools key on `principal()`.
    pub fn client_id_as_subject(mut self) -> Self {
        self.settings.client_id_as_subject = true;
        self
    }

    /// The HTTP client (default: [`ReqwestFetcher`](crate::oauth::ReqwestFetcher) with feature
    /// `reqwest`). Pass a clone of the one given to the JWT builder to share it.
    pub fn fetcher(mut self, fetcher: impl HttpFetcher) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// Every problem at once: no endpoint or issuer, a URL that is not https (or loopback
    /// http), no client credentials, no audience, a timeout under [`MIN_TIMEOUT`], no HTTP
    /// client.
    pub fn build(mut self) -> Result<IntrospectionAuthenticator, ConfigError> {
        let endpoint = self.check_endpoint();
        let client = self.take_client();
        let limits = self.check_limits();
        let fetcher = self.take_fetcher();
        let (((), client), ((), fetcher)) =
            all_of(all_of(endpoint, client), all_of(limits, fetcher))?;
        Ok(self.assemble(client, fetcher))
    }

    /// An endpoint or an issuer to discover it from, each https (or loopback http).
    fn check_endpoint(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        if self.endpoint.is_none() && self.issuer.is_none() {
            problems.add(
                "introspection endpoint",
                "set an endpoint URL or an issuer to discover it from",
            );
        }
        for (name, url) in [
            ("introspection endpoint", &self.endpoint),
            ("issuer", &self.issuer),
        ] {
            if let Some(url) = url {
                problems.check(check_url(name, url));
            }
        }
        problems.finish(|| ())
    }

    /// The client credentials (RFC 7662 §2.1: the introspection endpoint authenticates us).
    fn take_client(&mut self) -> Result<(String, Secret), ConfigError> {
        match (
            self.client_id.take().filter(|id| !id.is_empty()),
            self.client_secret.take(),
        ) {
            (Some(id), Some(secret)) => Ok((id, secret)),
            _ => Err(ConfigError::new(
                "introspection client",
                "client credentials are required (RFC 7662 §2.1)",
            )),
        }
    }

    /// At least one audience, and a timeout of at least [`MIN_TIMEOUT`].
    fn check_limits(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        if self.settings.audiences.is_empty() {
            problems.add(
                "audience",
                "at least one audience (this server's resource URI) is required",
            );
        }
        if self.settings.timeout < MIN_TIMEOUT {
            problems.add("introspection timeout", "must be at least 100 ms");
        }
        problems.finish(|| ())
    }

    /// The configured HTTP client, or the default one.
    fn take_fetcher(&mut self) -> Result<Arc<dyn DynFetcher>, ConfigError> {
        match self.fetcher.take() {
            Some(f) => Ok(f),
            None => default_fetcher("http client", "IntrospectionBuilder::fetcher"),
        }
    }

    /// The authenticator from a checked configuration.
    fn assemble(
        self,
        (client_id, client_secret): (String, Secret),
        fetcher: Arc<dyn DynFetcher>,
    ) -> IntrospectionAuthenticator {
        IntrospectionAuthenticator {
            inner: Arc::new(Inner {
                endpoint: Endpoint::new(self.endpoint, self.discovery_cooldown),
                issuer: self.issuer,
                client_id,
                client_secret,
                settings: self.settings,
                cache: self
                    .cache
                    .map(|(max, ttl)| AnswerCache::<AuthContext>::new(max, ttl)),
                negative: self
                    .negative_cache
                    .map(|(max, ttl)| AnswerCache::new(max, ttl)),
                fetcher,
            }),
        }
    }
}

/// Both values, or every problem of both (`a`'s first).
fn all_of<A, B>(
    a: Result<A, ConfigError>,
    b: Result<B, ConfigError>,
) -> Result<(A, B), ConfigError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(mut e), Err(more)) => {
            e.merge(more);
            Err(e)
        }
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
    }
}
