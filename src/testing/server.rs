//! [`MockAuthServer`]: an OAuth authorization server on a loopback port, for tests.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value, json};

use super::dpop::{DPOP_TYP, DpopKey, compact, htu_of, jwk_thumbprint, unix_seconds};
use super::fail;
use crate::secret::{Secret, digest};

/// Path of the RFC 8414 metadata.
pub const OAUTH_METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// Path of the OpenID Connect discovery document.
pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
/// Path of the JWK set.
pub const JWKS_PATH: &str = "/jwks";
/// Path of the RFC 7662 introspection endpoint.
pub const INTROSPECTION_PATH: &str = "/introspect";
/// Path of the token endpoint (`client_credentials`, `refresh_token`, token exchange,
/// on-behalf-of).
pub const TOKEN_PATH: &str = "/token";
/// The RFC 8693 token-exchange grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The RFC 7523 JWT-bearer grant type (Microsoft Entra's on-behalf-of flow).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The RFC 8693 token type of an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The grant types the token endpoint offers, as counted by
/// [`MockAuthServer::grant_requests`].
pub const GRANT_TYPES: [&str; 4] = [
    "client_credentials",
    "refresh_token",
    TOKEN_EXCHANGE_GRANT,
    JWT_BEARER_GRANT,
];

/// Lifetime of minted tokens unless set: one hour.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The subject of minted tokens unless set.
pub const DEFAULT_SUBJECT: &str = "test-user";
/// The `client_id` of minted tokens unless set.
pub const DEFAULT_CLIENT_ID: &str = "test-client";

/// Largest form body the endpoints read.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Largest DPoP proof the token endpoint reads.
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Most distinct paths counted by [`MockAuthServer::requests`].
const MAX_COUNTED_PATHS: usize = 1024;
/// How far a DPoP proof's `iat` may be from now at the token endpoint.
const PROOF_IAT_WINDOW: i64 = 300;
/// The algorithms the token endpoint accepts in DPoP proofs.
const DPOP_ALGS: [&str; 9] = [
    "ES256", "ES384", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
];

/// An OAuth 2.0 authorization server on `127.0.0.1` (never another address) for tests: metadata
/// (RFC 8414 and OpenID discovery), a JWK set with ES256 and RS256 keys, token introspection
/// (RFC 7662), a `client_credentials` token endpoint (DPoP-bound tokens too), and minting in
/// process with [`token`](Self::token).
///
/// It serves until dropped or [`shutdown`](Self::shutdown). Every endpoint counts its requests
/// ([`requests`](Self::requests)), and [`set_down`](Self::set_down) makes them all answer 503.
///
/// | path | answers |
/// |---|---|
/// | `GET /.well-known/oauth-authorization-server`, `GET /.well-known/openid-configuration` | the metadata: `issuer` (`http://127.0.0.1:<port>`), `jwks_uri`, `token_endpoint`, `introspection_endpoint`, `dpop_signing_alg_values_supported`, … |
/// | `GET /jwks` | the published keys, each with `kid`, `alg` and `use: sig` |
/// | `POST /introspect` | `token=…` with the client authenticated (HTTP Basic or `client_secret_post`; 401 without): the token's claims and `active: true`, or `{"active": false}` for unknown, revoked, expired or not-yet-valid tokens |
/// | `POST /token` | for a [registered](Self::register_client) client: `grant_type=client_credentials` (a JWT access token, `scope`, `resource` honoured, DPoP-bound with a valid `DPoP` proof); `refresh_token` with rotation (a refresh token from [`issue_refresh_token`](Self::issue_refresh_token) or an earlier answer, refused once used); RFC 8693 token exchange (`subject_token` an active access token this server issued, `subject_token_type` access_token; a token for the `audience`/`resource` with an `act` claim naming the requesting client) and the on-behalf-of flavour (`jwt-bearer` grant, `assertion`, `requested_token_use=on_behalf_of`) |
///
/// See the [module docs](super) for an example.
pub struct MockAuthServer {
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl fmt::Debug for MockAuthServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockAuthServer")
            .field("issuer", &self.shared.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for MockAuthServer {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct Shared {
    issuer: String,
    introspection_client: (String, Secret),
    down: AtomicBool,
    stopped: AtomicBool,
    /// Lifetime of the access tokens the token endpoint issues, in milliseconds.
    issued_lifetime_ms: AtomicU64,
    state: Mutex<State>,
}

impl Shared {
    fn issued_lifetime(&self) -> Duration {
        Duration::from_millis(self.issued_lifetime_ms.load(Ordering::SeqCst))
    }
}

struct State {
    /// Published keys, oldest first; the newest of each algorithm signs.
    keys: Vec<SigningKey>,
    generation: usize,
    clients: HashMap<String, Secret>,
    /// Claims of every token minted, by the SHA-256 of the token.
    tokens: HashMap<[u8; 32], Map<String, Value>>,
    revoked: HashSet<[u8; 32]>,
    requests: HashMap<String, usize>,
    /// Token-endpoint requests per `grant_type` (the grants offered, and `other`).
    grants: HashMap<&'static str, usize>,
    /// Refresh tokens not yet used, by their SHA-256.
    refresh_tokens: HashMap<[u8; 32], RefreshGrant>,
}

/// What a refresh token stands for.
struct RefreshGrant {
    client_id: String,
    subject: String,
    scope: Option<String>,
}

struct SigningKey {
    kid: String,
    key: DpopKey,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere (a failed test) leaves the maps usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

impl MockAuthServer {
    /// Generates the signing keys (ES256 and RS256) and the introspection client, binds
    /// `127.0.0.1:0` and serves on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound or the keys cannot be generated.
    pub async fn start() -> Self {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
            Ok(l) => l,
            Err(e) => fail(format_args!("MockAuthServer: cannot bind 127.0.0.1:0: {e}")),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => fail(format_args!("MockAuthServer: no local address: {e}")),
        };
        let mut state = State {
            keys: Vec::new(),
            generation: 0,
            clients: HashMap::new(),
            tokens: HashMap::new(),
            revoked: HashSet::new(),
            requests: HashMap::new(),
            grants: HashMap::new(),
            refresh_tokens: HashMap::new(),
        };
        state.add_keys();
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            introspection_client: ("mock-resource-server".to_owned(), Secret::new(random(24))),
            down: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            issued_lifetime_ms: AtomicU64::new(
                u64::try_from(DEFAULT_TOKEN_TTL.as_millis()).unwrap_or(u64::MAX),
            ),
            state: Mutex::new(state),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops serving and waits (at most 5 s) until the listener is closed.
    pub async fn shutdown(mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// The issuer, `http://127.0.0.1:<port>` (no trailing slash): also the base of every
    /// endpoint's URL.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The URL of `path` on this server.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        self.shared.url(path)
    }

    /// The JWK set's URL.
    #[must_use]
    pub fn jwks_uri(&self) -> String {
        self.url(JWKS_PATH)
    }

    /// The introspection endpoint's URL.
    #[must_use]
    pub fn introspection_endpoint(&self) -> String {
        self.url(INTROSPECTION_PATH)
    }

    /// The token endpoint's URL.
    #[must_use]
    pub fn token_endpoint(&self) -> String {
        self.url(TOKEN_PATH)
    }

    /// The client a resource server introspects as: `(client_id, client_secret)`.
    #[must_use]
    pub fn introspection_client(&self) -> (String, String) {
        let (id, secret) = &self.shared.introspection_client;
        (id.clone(), secret.expose().to_owned())
    }

    /// Registers (or replaces) a client for the token endpoint; it may introspect too.
    pub fn register_client(&self, id: &str, secret: &str) {
        self.shared
            .state()
            .clients
            .insert(id.to_owned(), Secret::new(secret));
    }

    /// Starts minting a token signed (or, opaque, known) by this server.
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(Arc::clone(&self.shared))
    }

    /// Revokes a token minted by this server: introspection answers `active: false` from now
    /// on. (A JWT stays verifiable by its signature; revocation reaches it only through
    /// introspection.)
    pub fn revoke(&self, token: &str) {
        self.shared.state().revoked.insert(digest(token.as_bytes()));
    }

    /// Adds a new ES256 and a new RS256 key, which sign from now on; the older keys stay
    /// published. Returns the new keys' `kid`s.
    pub fn rotate_keys(&self) -> Vec<String> {
        self.shared.state().add_keys()
    }

    /// Stops publishing the key `kid` (the newest remaining key of its algorithm signs);
    /// whether it was published.
    pub fn remove_key(&self, kid: &str) -> bool {
        let mut state = self.shared.state();
        let before = state.keys.len();
        state.keys.retain(|k| k.kid != kid);
        state.keys.len() != before
    }

    /// The `kid`s published, oldest first.
    #[must_use]
    pub fn key_ids(&self) -> Vec<String> {
        self.shared
            .state()
            .keys
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    /// The `kid` of the key that signs `alg` tokens now.
    #[must_use]
    pub fn current_kid(&self, alg: Algorithm) -> Option<String> {
        self.shared.state().current(alg).map(|k| k.kid.clone())
    }

    /// The JWK set as served at [`jwks_uri`](Self::jwks_uri).
    #[must_use]
    pub fn jwks(&self) -> Value {
        self.shared.state().jwks()
    }

    /// The metadata document as served at both well-known paths.
    #[must_use]
    pub fn metadata(&self) -> Value {
        metadata(&self.shared)
    }

    /// How many requests reached `path` (the path alone, without query), whatever their
    /// answer.
    #[must_use]
    pub fn requests(&self, path: &str) -> usize {
        self.shared.state().requests.get(path).copied().unwrap_or(0)
    }

    /// How many token-endpoint requests asked for `grant_type` (one of [`GRANT_TYPES`], or
    /// `"other"`), whatever their answer.
    #[must_use]
    pub fn grant_requests(&self, grant_type: &str) -> usize {
        self.shared
            .state()
            .grants
            .get(grant_type)
            .copied()
            .unwrap_or(0)
    }

    /// Issues a refresh token for the registered client `client_id`, standing for `subject`
    /// with `scopes` (space-separated in the tokens it yields). Each use answers a new
    /// refresh token and makes this one invalid (rotation).
    #[must_use]
    pub fn issue_refresh_token(&self, client_id: &str, subject: &str, scopes: &[&str]) -> String {
        let token = format!("mock_rt_{}", random(32));
        let scope = (!scopes.is_empty()).then(|| scopes.join(" "));
        self.shared.state().refresh_tokens.insert(
            digest(token.as_bytes()),
            RefreshGrant {
                client_id: client_id.to_owned(),
                subject: subject.to_owned(),
                scope,
            },
        );
        token
    }

    /// The lifetime of the access tokens the token endpoint issues from now on (their `exp`,
    /// and `expires_in` in whole seconds); default [`DEFAULT_TOKEN_TTL`]. Tokens minted with
    /// [`MockAuthServer::token`] keep their own.
    pub fn set_issued_token_lifetime(&self, lifetime: Duration) {
        let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        self.shared.issued_lifetime_ms.store(ms, Ordering::SeqCst);
    }

    /// With `true`, every endpoint answers 503 (an outage) until set back to `false`.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }
}

impl State {
    fn add_keys(&mut self) -> Vec<String> {
        self.generation = self.generation.saturating_add(1);
        let mut kids = Vec::new();
        for (alg, name) in [(Algorithm::ES256, "es256"), (Algorithm::RS256, "rs256")] {
            let key = match DpopKey::generate(alg) {
                Ok(k) => k,
                Err(e) => fail(format_args!("MockAuthServer: {e}")),
            };
            let kid = format!("{name}-{}", self.generation);
            kids.push(kid.clone());
            self.keys.push(SigningKey { kid, key });
        }
        kids
    }

    fn current(&self, alg: Algorithm) -> Option<&SigningKey> {
        self.keys.iter().rev().find(|k| k.key.algorithm() == alg)
    }

    fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| {
                let mut jwk = k.key.public_jwk();
                if let Some(obj) = jwk.as_object_mut() {
                    obj.insert("kid".into(), k.kid.clone().into());
                    obj.insert("alg".into(), k.key.alg_name().into());
                    obj.insert("use".into(), "sig".into());
                }
                jwk
            })
            .collect();
        json!({ "keys": keys })
    }
}

/// What a token carries, set up by [`MockAuthServer::token`]; [`jwt`](Self::jwt) signs it,
/// [`opaque`](Self::opaque) makes a random token the introspection endpoint knows.
///
/// Defaults: `iss` (the server's issuer), `sub` ([`DEFAULT_SUBJECT`]), `client_id`
/// ([`DEFAULT_CLIENT_ID`]), `iat` (now), `exp` (`iat` + [`DEFAULT_TOKEN_TTL`]), `jti` (random);
/// no `aud` and no `scope` unless set. Header `typ: JWT` (or `at+jwt`), `alg` ES256 (or
/// RS256) and the current key's `kid`.
#[must_use]
pub struct TokenBuilder {
    shared: Arc<Shared>,
    claims: Map<String, Value>,
    dropped: Vec<String>,
    ttl: Duration,
    issued_at: Option<i64>,
    expired: bool,
    alg: Algorithm,
    typ: &'static str,
    kid: Option<String>,
}

impl fmt::Debug for TokenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("claims", &self.claims)
            .field("alg", &self.alg)
            .field("typ", &self.typ)
            .finish_non_exhaustive()
    }
}

impl TokenBuilder {
    fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            claims: Map::new(),
            dropped: Vec::new(),
            ttl: DEFAULT_TOKEN_TTL,
            issued_at: None,
            expired: false,
            alg: Algorithm::ES256,
            typ: "JWT",
            kid: None,
        }
    }

    /// Sets `sub`.
    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", sub.into())
    }

    /// Sets `aud`: a string (`"https://mcp.example.com/mcp"`) or a list
    /// (`vec!["https://a", "https://b"]`), or any JSON value to test refusals.
    pub fn audience(self, aud: impl Into<Value>) -> Self {
        self.claim("aud", aud.into())
    }

    /// Sets `scope` to these scopes, space-separated.
    pub fn scopes<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scope = scopes
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join(" ");
        self.claim("scope", scope.into())
    }

    /// Sets `client_id`.
    pub fn client_id(self, client_id: &str) -> Self {
        self.claim("client_id", client_id.into())
    }

    /// Sets any claim, replacing the one there (defaults included).
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.dropped.retain(|d| d != name);
        self.claims.insert(name.to_owned(), value);
        self
    }

    /// Drops a claim, a default one (`iss`, `sub`, `exp`, …) included.
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self.dropped.push(name.to_owned());
        self
    }

    /// Sets the lifetime: `exp` = `iat` + `ttl`.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Makes the token expired ten minutes ago (beyond any verifier's leeway).
    pub fn expired(mut self) -> Self {
        self.expired = true;
        self
    }

    /// Sets `nbf`.
    pub fn not_before(self, at: SystemTime) -> Self {
        self.claim("nbf", unix_seconds(at).into())
    }

    /// Sets `iat` (and so `exp`, `iat` + the lifetime).
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.issued_at = Some(unix_seconds(at));
        self
    }

    /// Binds the token to a DPoP key: `cnf.jkt` = its thumbprint (RFC 9449 §6).
    pub fn dpop_bound(self, key: &DpopKey) -> Self {
        self.confirmation("jkt", key.thumbprint())
    }

    /// Binds the token to a client certificate: `cnf.x5t#S256` = `thumbprint` (RFC 8705 §3.1,
    /// base64url SHA-256 of the certificate's DER).
    pub fn cnf_x5t_s256(self, thumbprint: &str) -> Self {
        self.confirmation("x5t#S256", thumbprint.to_owned())
    }

    fn confirmation(mut self, member: &str, value: String) -> Self {
        let cnf = self
            .claims
            .entry("cnf")
            .or_insert_with(|| Value::Object(Map::new()));
        if !cnf.is_object() {
            *cnf = Value::Object(Map::new());
        }
        if let Some(obj) = cnf.as_object_mut() {
            obj.insert(member.to_owned(), value.into());
        }
        self.dropped.retain(|d| d != "cnf");
        self
    }

    /// Header `typ: at+jwt` (RFC 9068) instead of `JWT`.
    pub fn typ_at_jwt(mut self) -> Self {
        self.typ = "at+jwt";
        self
    }

    /// Signs with the current key of `alg`: ES256 (default) or RS256.
    pub fn algorithm(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// Sets the header `kid` (default: the signing key's), e.g. to one the server does not
    /// publish.
    pub fn kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    /// The claims with the defaults filled in.
    fn finish_claims(&self) -> Map<String, Value> {
        let now = unix_seconds(SystemTime::now());
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let iat = match (self.issued_at, self.expired) {
            (Some(iat), _) => iat,
            (None, true) => now.saturating_sub(ttl).saturating_sub(600),
            (None, false) => now,
        };
        let mut exp = iat.saturating_add(ttl);
        if self.expired {
            exp = exp.min(now.saturating_sub(600));
        }
        let mut claims = Map::new();
        claims.insert("iss".into(), self.shared.issuer.clone().into());
        claims.insert("sub".into(), DEFAULT_SUBJECT.into());
        claims.insert("client_id".into(), DEFAULT_CLIENT_ID.into());
        claims.insert("iat".into(), iat.into());
        claims.insert("exp".into(), exp.into());
        claims.insert("jti".into(), random(16).into());
        for (name, value) in &self.claims {
            claims.insert(name.clone(), value.clone());
        }
        for name in &self.dropped {
            claims.remove(name);
        }
        claims
    }

    /// Signs the token with the server's current key of the chosen algorithm; the
    /// introspection endpoint knows it too.
    ///
    /// # Panics
    ///
    /// When the server has no key of that algorithm (only ES256 and RS256 are offered, and
    /// [`remove_key`](MockAuthServer::remove_key) may have dropped the last one).
    #[must_use]
    pub fn jwt(self) -> String {
        let claims = self.finish_claims();
        let mut state = self.shared.state();
        let Some(signer) = state.current(self.alg) else {
            fail(format_args!(
                "MockAuthServer: no {:?} signing key (ES256 and RS256 are offered)",
                self.alg
            ))
        };
        let kid = self.kid.clone().unwrap_or_else(|| signer.kid.clone());
        let header = json!({ "alg": signer.key.alg_name(), "typ": self.typ, "kid": kid });
        let key = signer.key.clone();
        let token = compact(&header, &Value::Object(claims.clone()), |message| {
            URL_SAFE_NO_PAD
                .decode(key.sign_message(message))
                .unwrap_or_default()
        });
        state.tokens.insert(digest(token.as_bytes()), claims);
        token
    }

    /// A random opaque token; the introspection endpoint answers these claims with
    /// `active: true` (until it expires or is [revoked](MockAuthServer::revoke)).
    #[must_use]
    pub fn opaque(self) -> String {
        let claims = self.finish_claims();
        let token = format!("mock_{}", random(32));
        self.shared
            .state()
            .tokens
            .insert(digest(token.as_bytes()), claims);
        token
    }
}

/// `n` random bytes, base64url.
fn random(n: usize) -> String {
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; n]);
    if let Err(e) = getrandom::fill(&mut bytes) {
        fail(format_args!(
            "MockAuthServer: the random source failed: {e}"
        ));
    }
    URL_SAFE_NO_PAD.encode(&*bytes)
}

fn metadata(shared: &Shared) -> Value {
    json!({
        "issuer": shared.issuer,
        "jwks_uri": shared.url(JWKS_PATH),
        "token_endpoint": shared.url(TOKEN_PATH),
        "introspection_endpoint": shared.url(INTROSPECTION_PATH),
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "dpop_signing_alg_values_supported": DPOP_ALGS,
    })
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

/// Every request: counted, then refused while down, then routed.
async fn handle(AxumState(shared): AxumState<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    {
        let mut state = shared.state();
        if state.requests.len() < MAX_COUNTED_PATHS || state.requests.contains_key(&path) {
            let n = state.requests.entry(path.clone()).or_insert(0);
            *n = n.saturating_add(1);
        }
    }
    if shared.down.load(Ordering::SeqCst) || shared.stopped.load(Ordering::SeqCst) {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the authorization server is down",
        );
    }
    let method = req.method().clone();
    match path.as_str() {
        OAUTH_METADATA_PATH | OPENID_CONFIGURATION_PATH if method == Method::GET => {
            json_response(StatusCode::OK, &metadata(&shared))
        }
        JWKS_PATH if method == Method::GET => {
            let jwks = shared.state().jwks();
            json_response(StatusCode::OK, &jwks)
        }
        INTROSPECTION_PATH if method == Method::POST => introspect(&shared, req).await,
        TOKEN_PATH if method == Method::POST => token_endpoint(&shared, req).await,
        OAUTH_METADATA_PATH
        | OPENID_CONFIGURATION_PATH
        | JWKS_PATH
        | INTROSPECTION_PATH
        | TOKEN_PATH => oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "method not allowed",
        ),
        _ => oauth_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
    }
}

/// A refusal, boxed (responses are large).
type Refusal = Box<Response>;

/// A form body's parameters, or the response refusing it.
async fn read_form(req: Request) -> Result<(HeaderMap, Vec<(String, String)>), Refusal> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return Err(Box::new(oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the form is too large",
        )));
    };
    let form = url::form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok((parts.headers, form))
}

/// The one value of `name`; `Err` when it is given more than once (RFC 6749 §3.2).
fn single<'a>(form: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, Refusal> {
    let mut values = form.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    match (values.next(), values.next()) {
        (first, None) => Ok(first.map(String::as_str)),
        _ => Err(Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a parameter is repeated",
        ))),
    }
}

/// The authenticated client's id (HTTP Basic or `client_secret_post`, exactly one of them),
/// or the 401 refusing it.
fn authenticate_client(
    shared: &Shared,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<String, Refusal> {
    let refuse = || {
        let mut res = oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        res.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mock-authorization-server\""),
        );
        Box::new(res)
    };
    let basic = basic_credentials(headers);
    let posted = match (single(form, "client_id")?, single(form, "client_secret")?) {
        (Some(id), Some(secret)) => Some((id.to_owned(), secret.to_owned())),
        _ => None,
    };
    let (id, secret) = match (basic, posted) {
        (Some(b), None) => b,
        (None, Some(p)) => p,
        _ => return Err(refuse()),
    };
    let secret = Secret::new(secret);
    let (intro_id, intro_secret) = &shared.introspection_client;
    let known = if id == *intro_id {
        *intro_secret == secret
    } else {
        shared
            .state()
            .clients
            .get(&id)
            .is_some_and(|s| *s == secret)
    };
    if known { Ok(id) } else { Err(refuse()) }
}

/// `Authorization: Basic` credentials, form-urlencoded inside (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

async fn introspect(shared: &Shared, req: Request) -> Response {
    let (headers, form) = match read_form(req).await {
        Ok(f) => f,
        Err(res) => return *res,
    };
    if let Err(res) = authenticate_client(shared, &headers, &form) {
        return *res;
    }
    let token = match single(&form, "token") {
        Ok(Some(t)) => t,
        Ok(None) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "no token");
        }
        Err(res) => return *res,
    };
    json_response(StatusCode::OK, &introspection_answer(shared, token))
}

fn introspection_answer(shared: &Shared, token: &str) -> Value {
    let key = digest(token.as_bytes());
    let state = shared.state();
    let inactive = json!({ "active": false });
    if state.revoked.contains(&key) {
        return inactive;
    }
    let Some(claims) = state.tokens.get(&key) else {
        return inactive;
    };
    let now = unix_seconds(SystemTime::now());
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    if number("exp").is_some_and(|exp| exp <= now) || number("nbf").is_some_and(|nbf| nbf > now) {
        return inactive;
    }
    let mut answer = claims.clone();
    answer.insert("active".into(), true.into());
    let bound = claims.get("cnf").and_then(|c| c.get("jkt")).is_some();
    answer
        .entry("token_type")
        .or_insert_with(|| if bound { "DPoP" } else { "Bearer" }.into());
    Value::Object(answer)
}

async fn token_endpoint(shared: &Arc<Shared>, req: Request) -> Response {
    let (headers, form) = match read_form(req).await {
        Ok(f) => f,
        Err(res) => return *res,
    };
    let client_id = match authenticate_client(shared, &headers, &form) {
        Ok(id) => id,
        Err(res) => return *res,
    };
    let grant = match single(&form, "grant_type") {
        Ok(Some(g)) => g.to_owned(),
        Ok(None) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "no grant_type");
        }
        Err(res) => return *res,
    };
    {
        let counted = GRANT_TYPES
            .iter()
            .copied()
            .find(|g| *g == grant)
            .unwrap_or("other");
        let mut state = shared.state();
        let n = state.grants.entry(counted).or_insert(0);
        *n = n.saturating_add(1);
    }
    match grant.as_str() {
        "client_credentials" => {}
        "refresh_token" => return refresh_grant(shared, &client_id, &form),
        TOKEN_EXCHANGE_GRANT | JWT_BEARER_GRANT => {
            return exchange_grant(shared, &client_id, &grant, &form);
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "this grant type is not offered",
            );
        }
    }
    let scope = match single(&form, "scope") {
        Ok(s) => s.map(str::to_owned),
        Err(res) => return *res,
    };
    let resources: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.clone())
        .collect();
    let mut proofs = headers.get_all("dpop").iter();
    let jkt = match (proofs.next(), proofs.next()) {
        (None, _) => None,
        (Some(proof), None) => match check_proof(proof, &shared.url(TOKEN_PATH)) {
            Ok(jkt) => Some(jkt),
            Err(why) => {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", why);
            }
        },
        (Some(_), Some(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "more than one DPoP header",
            );
        }
    };

    let ttl = shared.issued_lifetime();
    let mut token = TokenBuilder::new(Arc::clone(shared))
        .expires_in(ttl)
        .typ_at_jwt()
        .subject(&client_id)
        .client_id(&client_id);
    if let Some(scope) = &scope {
        token = token.claim("scope", scope.clone().into());
    }
    match resources.as_slice() {
        [] => {}
        [one] => token = token.audience(one.clone()),
        many => token = token.audience(many.to_vec()),
    }
    if let Some(jkt) = &jkt {
        token = token.claim("cnf", json!({ "jkt": jkt }));
    }
    let access_token = token.jwt();
    let mut answer = json!({
        "access_token": access_token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": ttl.as_secs(),
    });
    if let (Some(scope), Some(obj)) = (scope, answer.as_object_mut()) {
        obj.insert("scope".into(), scope.into());
    }
    json_response(StatusCode::OK, &answer)
}

/// The `resource` parameters of a form, every one.
fn resources_of(form: &[(String, String)]) -> Vec<String> {
    form.iter()
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.clone())
        .collect()
}

/// A bearer token answer for `token`, with `scope` when set.
fn token_answer(token: TokenBuilder, scope: Option<String>, extra: &[(&str, Value)]) -> Response {
    let ttl = token.shared.issued_lifetime();
    let token = token.expires_in(ttl);
    let access_token = token.jwt();
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    });
    if let Some(obj) = answer.as_object_mut() {
        if let Some(scope) = scope {
            obj.insert("scope".into(), scope.into());
        }
        for (k, v) in extra {
            obj.insert((*k).to_owned(), v.clone());
        }
    }
    json_response(StatusCode::OK, &answer)
}

/// `grant_type=refresh_token` with rotation: the presented refresh token is spent whatever
/// follows; a new one comes with the access token.
fn refresh_grant(shared: &Arc<Shared>, client_id: &str, form: &[(String, String)]) -> Response {
    let presented = match single(form, "refresh_token") {
        Ok(Some(t)) => t,
        Ok(None) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "no refresh_token",
            );
        }
        Err(res) => return *res,
    };
    let requested = match single(form, "scope") {
        Ok(s) => s.map(str::to_owned),
        Err(res) => return *res,
    };
    let key = digest(presented.as_bytes());
    let grant = {
        let mut state = shared.state();
        match state.refresh_tokens.get(&key) {
            Some(g) if g.client_id == client_id => state.refresh_tokens.remove(&key),
            _ => None,
        }
    };
    let Some(grant) = grant else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown, used or another client's refresh token",
        );
    };
    if let Some(req) = &requested {
        let granted: HashSet<&str> = grant
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .collect();
        if !req.split(' ').all(|s| granted.contains(s)) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                "scope not granted",
            );
        }
    }
    let next = format!("mock_rt_{}", random(32));
    let scope = requested.or_else(|| grant.scope.clone());
    let mut token = TokenBuilder::new(Arc::clone(shared))
        .typ_at_jwt()
        .subject(&grant.subject)
        .client_id(client_id);
    if let Some(s) = &scope {
        token = token.claim("scope", s.clone().into());
    }
    match resources_of(form).as_slice() {
        [] => {}
        [one] => token = token.audience(one.clone()),
        many => token = token.audience(many.to_vec()),
    }
    shared
        .state()
        .refresh_tokens
        .insert(digest(next.as_bytes()), grant);
    token_answer(token, scope, &[("refresh_token", next.into())])
}

/// The claims of `token` when this server issued it and it is active (known, not revoked,
/// not expired, already valid).
fn active_claims(shared: &Shared, token: &str) -> Option<Map<String, Value>> {
    let answer = introspection_answer(shared, token);
    let Value::Object(mut claims) = answer else {
        return None;
    };
    (claims.remove("active") == Some(Value::Bool(true))).then_some(claims)
}

/// RFC 8693 token exchange, or its on-behalf-of flavour (`jwt-bearer`): a token for the
/// requested audience naming the subject token's `sub`, with `act: {"sub": <client>}`.
fn exchange_grant(
    shared: &Arc<Shared>,
    client_id: &str,
    grant: &str,
    form: &[(String, String)],
) -> Response {
    let bad = |what: &'static str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", what);
    let get = |name: &str| single(form, name);
    let subject = if grant == JWT_BEARER_GRANT {
        match get("requested_token_use") {
            Ok(Some("on_behalf_of")) => {}
            Ok(_) => return bad("requested_token_use must be on_behalf_of"),
            Err(res) => return *res,
        }
        match get("assertion") {
            Ok(Some(a)) => a,
            Ok(None) => return bad("no assertion"),
            Err(res) => return *res,
        }
    } else {
        match get("subject_token_type") {
            Ok(Some(ACCESS_TOKEN_TYPE)) => {}
            Ok(_) => return bad("subject_token_type must be an access token"),
            Err(res) => return *res,
        }
        match get("subject_token") {
            Ok(Some(t)) => t,
            Ok(None) => return bad("no subject_token"),
            Err(res) => return *res,
        }
    };
    let Some(claims) = active_claims(shared, subject) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the subject token is not an active token of this server",
        );
    };
    match get("actor_token") {
        Ok(Some(actor)) => {
            if active_claims(shared, actor).is_none() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the actor token is not an active token of this server",
                );
            }
        }
        Ok(None) => {}
        Err(res) => return *res,
    }
    let (scope, audience) = match (get("scope"), get("audience")) {
        (Ok(s), Ok(a)) => (s.map(str::to_owned), a.map(str::to_owned)),
        (Err(res), _) | (_, Err(res)) => return *res,
    };
    let mut audiences = resources_of(form);
    audiences.extend(audience);
    let scope = scope.or_else(|| {
        claims
            .get("scope")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_SUBJECT)
        .to_owned();
    let mut token = TokenBuilder::new(Arc::clone(shared))
        .typ_at_jwt()
        .subject(&sub)
        .client_id(client_id)
        .claim("act", json!({ "sub": client_id }));
    if let Some(s) = &scope {
        token = token.claim("scope", s.clone().into());
    }
    match audiences.as_slice() {
        [] => {}
        [one] => token = token.audience(one.clone()),
        many => token = token.audience(many.to_vec()),
    }
    let issued: &[(&str, Value)] = if grant == JWT_BEARER_GRANT {
        &[]
    } else {
        &[(
            "issued_token_type",
            Value::String(ACCESS_TOKEN_TYPE.to_owned()),
        )]
    };
    token_answer(token, scope, issued)
}

/// A minimal DPoP proof check (RFC 9449 §4.3) for the token endpoint: the form, `typ`, an
/// asymmetric `alg`, a public `jwk` that verifies the signature, `htm` POST, `htu` the token
/// endpoint, `iat` within five minutes, a `jti`. The proof key's thumbprint, or why not.
fn check_proof(proof: &HeaderValue, token_endpoint: &str) -> Result<String, &'static str> {
    let proof = proof.to_str().map_err(|_| "the proof is not text")?;
    if proof.len() > MAX_PROOF_BYTES {
        return Err("the proof is too large");
    }
    let mut parts = proof.split('.');
    let (Some(h64), Some(c64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the proof is not a compact JWS");
    };
    let decode = |part: &str| -> Result<Map<String, Value>, &'static str> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "the proof is not base64url")?;
        serde_json::from_slice(&bytes).map_err(|_| "the proof is not JSON objects")
    };
    let (header, claims) = (decode(h64)?, decode(c64)?);
    if header.get("typ").and_then(Value::as_str) != Some(DPOP_TYP) {
        return Err("the proof's typ is not dpop+jwt");
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .filter(|a| DPOP_ALGS.contains(a))
        .ok_or("the proof's alg is not an asymmetric algorithm offered")?;
    let alg: Algorithm = alg_name.parse().map_err(|_| "unknown alg")?;
    let jwk = header.get("jwk").ok_or("the proof has no jwk")?;
    let private = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
    if !jwk.is_object() || private.iter().any(|m| jwk.get(m).is_some()) {
        return Err("the proof's jwk is not a public key");
    }
    let parsed: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(jwk.clone()).map_err(|_| "the proof's jwk is not a JWK")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&parsed)
        .map_err(|_| "the proof's jwk is not a usable key")?;
    let message = format!("{h64}.{c64}");
    if !jsonwebtoken::crypto::verify(s64, message.as_bytes(), &key, alg).unwrap_or(false) {
        return Err("the proof's signature does not verify");
    }
    if claims.get("htm").and_then(Value::as_str) != Some("POST") {
        return Err("the proof's htm is not POST");
    }
    if claims.get("htu").and_then(Value::as_str).map(htu_of) != Some(token_endpoint) {
        return Err("the proof's htu is not the token endpoint");
    }
    let now = unix_seconds(SystemTime::now());
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("the proof has no iat")?;
    if iat.saturating_sub(now).abs() > PROOF_IAT_WINDOW {
        return Err("the proof's iat is too far from now");
    }
    if claims
        .get("jti")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("the proof has no jti");
    }
    jwk_thumbprint(jwk).ok_or("the proof's jwk has no thumbprint")
}

#[cfg(test)]
mod tests;
