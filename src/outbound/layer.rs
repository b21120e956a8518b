//! The client side: [`Upstreams`] (which source serves which host), [`OutboundLayer`] for any
//! tower HTTP client, and [`OutboundClient`] around a `reqwest::Client`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response, StatusCode, Uri};
use tower_layer::Layer;
use tower_service::Service;

use super::error::OutboundError;
use super::inbound::Caller;
use super::source::{Credential, OUTBOUND_TARGET, TokenSource};

/// The error of [`OutboundService`]: an [`OutboundError`] or the inner client's error, boxed
/// (downcast to tell them apart).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which token source serves which upstream host. A host is matched as `host:port` first,
/// then as `host` (lowercase). Requests to other hosts get no credential.
#[derive(Clone, Default)]
pub struct Upstreams {
    hosts: Arc<HashMap<String, Arc<dyn TokenSource>>>,
}

impl fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hosts: Vec<&String> = self.hosts.keys().collect();
        hosts.sort();
        f.debug_struct("Upstreams").field("hosts", &hosts).finish()
    }
}

impl Upstreams {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `host` (`api.example.com`, or `api.example.com:8443` for one port only) from
    /// `source`.
    #[must_use]
    pub fn host(mut self, host: &str, source: impl TokenSource) -> Self {
        self.insert(host, Arc::new(source));
        self
    }

    /// Serves `host` from a shared source.
    pub fn insert(&mut self, host: &str, source: Arc<dyn TokenSource>) {
        Arc::make_mut(&mut self.hosts).insert(host.to_ascii_lowercase(), source);
    }

    /// The source for `uri`'s host, if any.
    #[must_use]
    pub fn source_for(&self, uri: &Uri) -> Option<&Arc<dyn TokenSource>> {
        let authority = uri.authority()?;
        let full = authority.as_str().rsplit('@').next().unwrap_or_default();
        self.hosts
            .get(&full.to_ascii_lowercase())
            .or_else(|| self.hosts.get(&authority.host().to_ascii_lowercase()))
    }

    /// Whether no host is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// Refuses to send a request whose headers already carry the caller's inbound token (set by
/// hand): the passthrough guard for credentials not from a token source.
fn check_headers(headers: &HeaderMap, caller: &Caller) -> Result<(), OutboundError> {
    let Some(inbound) = caller.inbound_token() else {
        return Ok(());
    };
    for value in headers.values() {
        let Ok(v) = value.to_str() else { continue };
        let tail = v.rsplit_once(' ').map(|(_, t)| t.trim());
        if inbound.matches(v.trim()) || tail.is_some_and(|t| inbound.matches(t)) {
            tracing::error!(
                target: OUTBOUND_TARGET,
                principal = caller.principal().unwrap_or("-"),
                "refused to send the caller's inbound token upstream (token passthrough)"
            );
            return Err(OutboundError::Passthrough);
        }
    }
    Ok(())
}

fn set_credential(headers: &mut HeaderMap, credential: &Credential) -> Result<(), OutboundError> {
    headers.insert(credential.name().clone(), credential.header_value()?);
    Ok(())
}

/// A tower layer for HTTP clients (`Service<http::Request<B>>`): adds the credential of the
/// request's host ([`Upstreams`]) for the [`Caller`] in the request's extensions
/// ([`Caller::service`] when none), refuses the caller's own token (passthrough guard), and on
/// a 401 from the upstream invalidates the credential and retries once (the body is cloned,
/// so `B: Clone`: `Full<Bytes>`, `String`, …).
///
/// ```
/// use mcp_auth::Secret;
/// use mcp_auth::outbound::{Caller, OutboundLayer, StaticCredential, Upstreams};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let upstreams = Upstreams::new()
///     .host("api.example.com", StaticCredential::bearer(Secret::new("k_live")));
/// // Any tower HTTP client; here one that echoes the header it got.
/// let client = ServiceBuilder::new().layer(OutboundLayer::new(upstreams)).service_fn(
///     |req: http::Request<String>| async move {
///         let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
///         Ok::<_, std::convert::Infallible>(http::Response::new(auth))
///     },
/// );
/// let mut req = http::Request::get("https://api.example.com/v1/reports").body(String::new()).unwrap();
/// req.extensions_mut().insert(Caller::service());
/// assert_eq!(client.oneshot(req).await.unwrap().into_body(), "Bearer k_live");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct OutboundLayer {
    upstreams: Upstreams,
}

impl OutboundLayer {
    /// The layer for these upstreams.
    #[must_use]
    pub fn new(upstreams: Upstreams) -> Self {
        Self { upstreams }
    }
}

impl<S> Layer<S> for OutboundLayer {
    type Service = OutboundService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OutboundService {
            inner,
            upstreams: self.upstreams.clone(),
        }
    }
}

/// The service of [`OutboundLayer`].
#[derive(Debug, Clone)]
pub struct OutboundService<S> {
    inner: S,
    upstreams: Upstreams,
}

impl<S, B, RB> Service<Request<B>> for OutboundService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Clone + Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // Clone and swap: the service made ready is the one called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let upstreams = self.upstreams.clone();
        Box::pin(async move {
            let caller = req
                .extensions()
                .get::<Caller>()
                .cloned()
                .unwrap_or_default();
            let Some(source) = upstreams.source_for(req.uri()).cloned() else {
                check_headers(req.headers(), &caller)?;
                return inner.call(req).await.map_err(Into::into);
            };
            let credential = source.credential(&caller).await?;
            credential.check_not_inbound(&caller)?;
            let (mut parts, body) = req.into_parts();
            check_headers(&parts.headers, &caller)?;
            let spare = (parts.clone(), body.clone());
            set_credential(&mut parts.headers, &credential)?;
            let res = inner
                .call(Request::from_parts(parts, body))
                .await
                .map_err(Into::into)?;
            if res.status() != StatusCode::UNAUTHORIZED {
                return Ok(res);
            }
            source.invalidate(&caller, &credential);
            let fresh = source.credential(&caller).await?;
            fresh.check_not_inbound(&caller)?;
            let (mut parts, body) = spare;
            set_credential(&mut parts.headers, &fresh)?;
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            inner
                .call(Request::from_parts(parts, body))
                .await
                .map_err(Into::into)
        })
    }
}

/// A `reqwest::Client` that adds the credential of each request's host ([`Upstreams`]) for a
/// [`Caller`], with the passthrough guard and one retry after a 401 (when the body can be
/// replayed).
///
/// ```no_run
/// use mcp_auth::Secret;
/// use mcp_auth::outbound::{Caller, OutboundClient, StaticCredential, Upstreams};
///
/// # async fn f() -> Result<(), mcp_auth::outbound::OutboundError> {
/// let client = OutboundClient::new(
///     reqwest::Client::new(),
///     Upstreams::new().host("api.example.com", StaticCredential::bearer(Secret::new("k"))),
/// );
/// let res = client
///     .send(client.get("https://api.example.com/v1/reports"), &Caller::service())
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct OutboundClient {
    client: reqwest::Client,
    upstreams: Upstreams,
}

impl OutboundClient {
    /// `client` with these upstreams.
    #[must_use]
    pub fn new(client: reqwest::Client, upstreams: Upstreams) -> Self {
        Self { client, upstreams }
    }

    /// A GET request on the inner client, to pass to [`send`](Self::send).
    pub fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.get(url)
    }

    /// A POST request on the inner client, to pass to [`send`](Self::send).
    pub fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.post(url)
    }

    /// A request with any method on the inner client.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
    ) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// The upstreams table.
    #[must_use]
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// Sends `request` for `caller` with its host's credential.
    ///
    /// # Errors
    ///
    /// The source's [`OutboundError`]; [`OutboundError::Passthrough`] (nothing sent);
    /// [`OutboundError::Request`] when the request cannot be built or sent.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        caller: &Caller,
    ) -> Result<reqwest::Response, OutboundError> {
        let mut req = request
            .build()
            .map_err(|e| OutboundError::Request(e.without_url().to_string()))?;
        let uri: Uri = req
            .url()
            .as_str()
            .parse()
            .map_err(|_| OutboundError::Request("not an HTTP URL".into()))?;
        check_headers(req.headers(), caller)?;
        let Some(source) = self.upstreams.source_for(&uri) else {
            return self.execute(req).await;
        };
        let credential = source.credential(caller).await?;
        credential.check_not_inbound(caller)?;
        let spare = req.try_clone();
        set_credential(req.headers_mut(), &credential)?;
        let res = self.execute(req).await?;
        let (true, Some(mut again)) = (res.status() == StatusCode::UNAUTHORIZED, spare) else {
            return Ok(res);
        };
        source.invalidate(caller, &credential);
        let fresh = source.credential(caller).await?;
        fresh.check_not_inbound(caller)?;
        set_credential(again.headers_mut(), &fresh)?;
        self.execute(again).await
    }

    async fn execute(&self, req: reqwest::Request) -> Result<reqwest::Response, OutboundError> {
        self.client
            .execute(req)
            .await
            .map_err(|e| OutboundError::Request(e.without_url().to_string()))
    }
}
