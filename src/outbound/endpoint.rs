//! [`TokenEndpoint`]: the authorization server's token endpoint as a client sees it (client
//! authentication, timeout, the answer read into a typed result).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use super::error::OutboundError;
use crate::error::ConfigError;
use crate::secret::Secret;

/// Default timeout of one token request.
pub const DEFAULT_TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest token response read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`, the default).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form (`client_secret_post`).
    Post,
    /// `client_id` only (a public client).
    None,
}

/// A token endpoint and the client that calls it.
///
/// ```
/// use mcp_auth::Secret;
/// use mcp_auth::outbound::TokenEndpoint;
///
/// let ep = TokenEndpoint::new("https://as.example.com/token", "mcp-server", Secret::new("s3cret"))
///     .unwrap()
///     .timeout(std::time::Duration::from_secs(3));
/// assert!(!format!("{ep:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct TokenEndpoint {
    url: String,
    client_id: String,
    secret: Secret,
    auth: ClientAuth,
    timeout: Duration,
    http: reqwest::Client,
}

impl fmt::Debug for TokenEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEndpoint")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl TokenEndpoint {
    /// The endpoint `url` (https, or http on loopback), called as `client_id` with `secret`
    /// (`client_secret_basic`), 10 s timeout, its own HTTP client (no redirects).
    ///
    /// # Errors
    ///
    /// When `url` is not an absolute `https` URL (or `http` on a loopback host), or the
    /// HTTP client cannot be built.
    pub fn new(url: &str, client_id: &str, secret: Secret) -> Result<Self, ConfigError> {
        let parsed = url::Url::parse(url)
            .map_err(|_| ConfigError::new("token endpoint", "not an absolute URL"))?;
        let loopback = matches!(
            parsed.host(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback()
        ) || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
            || parsed.host_str() == Some("localhost");
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
            return Err(ConfigError::new(
                "token endpoint",
                "must be https (http only on loopback)",
            ));
        }
        if client_id.is_empty() {
            return Err(ConfigError::new("client id", "is empty"));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ConfigError::new("http client", e.to_string()))?;
        Ok(Self {
            url: url.to_owned(),
            client_id: client_id.to_owned(),
            secret,
            auth: ClientAuth::Basic,
            timeout: DEFAULT_TOKEN_TIMEOUT,
            http,
        })
    }

    /// How the client authenticates (default [`ClientAuth::Basic`]).
    #[must_use]
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// The longest one token request may take, connection included (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses your HTTP client (proxies, custom roots). Configure it not to follow redirects.
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.http = client;
        self
    }

    /// The endpoint's URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client's id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// POSTs the grant `form` with client authentication; the token answer.
    pub(crate) async fn request(
        &self,
        form: &[(&str, &str)],
    ) -> Result<TokenAnswer, OutboundError> {
        let req = self
            .http
            .post(&self.url)
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .timeout(self.timeout);
        let req = self.authenticate(req, form)?;
        let work = async {
            let res = req.send().await.map_err(|e| transport(&e))?;
            let status = res.status();
            let bytes = read_limited(res).await?;
            Ok::<_, OutboundError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| OutboundError::Timeout)??;
        if status.is_server_error() {
            return Err(OutboundError::Unavailable {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            #[derive(Deserialize)]
            struct ErrorAnswer {
                error: Option<String>,
            }
            let code = serde_json::from_slice::<ErrorAnswer>(&bytes)
                .ok()
                .and_then(|a| a.error);
            return Err(OutboundError::refused(code.as_deref()));
        }
        TokenAnswer::parse(&bytes)
    }
}

impl TokenEndpoint {
    /// The form body with client authentication (synchronous: the serializer is not `Send`).
    fn authenticate(
        &self,
        mut req: reqwest::RequestBuilder,
        form: &[(&str, &str)],
    ) -> Result<reqwest::RequestBuilder, OutboundError> {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            body.append_pair(k, v);
        }
        match self.auth {
            ClientAuth::Basic => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = zeroize::Zeroizing::new(format!(
                    "{}:{}",
                    enc(&self.client_id),
                    enc(self.secret.expose())
                ));
                let mut value = http::HeaderValue::try_from(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
                ))
                .map_err(|_| OutboundError::Request("bad client credentials".into()))?;
                value.set_sensitive(true);
                req = req.header(http::header::AUTHORIZATION, value);
            }
            ClientAuth::Post => {
                body.append_pair("client_id", &self.client_id);
                body.append_pair("client_secret", self.secret.expose());
            }
            ClientAuth::None => {
                body.append_pair("client_id", &self.client_id);
            }
        }
        let body = zeroize::Zeroizing::new(body.finish());
        Ok(req.body(body.as_bytes().to_vec()))
    }
}

fn transport(e: &reqwest::Error) -> OutboundError {
    if e.is_timeout() {
        OutboundError::Timeout
    } else {
        OutboundError::Unreachable
    }
}

async fn read_limited(mut res: reqwest::Response) -> Result<Vec<u8>, OutboundError> {
    if res
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(OutboundError::BadAnswer("the answer is too large"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| transport(&e))? {
        if body.len().saturating_add(chunk.len()) > MAX_ANSWER_BYTES {
            return Err(OutboundError::BadAnswer("the answer is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
pub(crate) struct TokenAnswer {
    pub(crate) access_token: Secret,
    pub(crate) expires_in: Option<u64>,
    pub(crate) refresh_token: Option<Secret>,
}

impl TokenAnswer {
    fn parse(bytes: &[u8]) -> Result<Self, OutboundError> {
        #[derive(Deserialize)]
        struct Raw {
            access_token: Option<String>,
            token_type: Option<String>,
            expires_in: Option<serde_json::Value>,
            refresh_token: Option<String>,
        }
        let raw: Raw =
            serde_json::from_slice(bytes).map_err(|_| OutboundError::BadAnswer("not JSON"))?;
        let access_token = raw
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or(OutboundError::BadAnswer("no access_token"))?;
        match raw.token_type.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("bearer") || t.eq_ignore_ascii_case("N_A") => {}
            Some(_) => return Err(OutboundError::BadAnswer("token_type is not Bearer")),
            None => return Err(OutboundError::BadAnswer("no token_type")),
        }
        let expires_in = match raw.expires_in {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => Some(
                n.as_u64()
                    .ok_or(OutboundError::BadAnswer("expires_in is not a whole number"))?,
            ),
            // Some servers send it as a string.
            Some(serde_json::Value::String(s)) => Some(
                s.parse::<u64>()
                    .map_err(|_| OutboundError::BadAnswer("expires_in is not a whole number"))?,
            ),
            Some(_) => return Err(OutboundError::BadAnswer("expires_in is not a number")),
        };
        Ok(Self {
            access_token: Secret::new(access_token),
            expires_in,
            refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        })
    }
}
