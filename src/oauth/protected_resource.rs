//! [`ProtectedResource`]: the RFC 9728 metadata of this server and the challenge settings
//! that point to it, configured with a [`ProtectedResourceBuilder`]. The document is served by
//! [`MetadataService`] (`metadata_service.rs`).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;

use super::metadata_service::MetadataService;
use super::uri::{
    WELL_KNOWN_PATH, canonical_resource, check_url, split_origin, well_known_path_for,
};
use crate::error::{ConfigError, Problems};
use crate::rejection::Challenge;
use crate::request_info::TrustedProxies;

/// Builds a [`ProtectedResource`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResourceBuilder {
    resource: String,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    basic_scopes: Option<Vec<String>>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    jwks_uri: Option<String>,
    dpop: Option<Dpop>,
    trust_forwarded: Option<Arc<TrustedProxies>>,
}

/// What the metadata says about DPoP (RFC 9728 §2).
#[derive(Debug, Clone)]
struct Dpop {
    algs: Vec<String>,
    required: bool,
}

impl ProtectedResourceBuilder {
    /// Adds an authorization server (its issuer URL). At least one is required.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers
            .push(issuer.into().trim().to_owned());
        self
    }

    /// The scopes listed in `scopes_supported`. `offline_access` is never listed (MCP
    /// 2026-07-28); duplicates are dropped.
    pub fn scopes_supported<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        scopes: I,
    ) -> Self {
        for s in scopes {
            let s = s.into();
            if listable(&s) && !self.scopes_supported.contains(&s) {
                self.scopes_supported.push(s);
            }
        }
        self
    }

    /// The scopes named in 401 challenges: what a client should ask for first (default:
    /// `scopes_supported`). Further scopes come through 403 step-up challenges. Empty means
    /// no `scope` parameter (never `scope=""`).
    pub fn basic_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.basic_scopes = Some(
            scopes
                .into_iter()
                .map(Into::into)
                .filter(|s: &String| listable(s))
                .collect(),
        );
        self
    }

    /// `resource_name`: a human-readable name shown by clients.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// `resource_documentation`: a URL of human-readable documentation.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// `jwks_uri`: the resource's own signing keys, if it signs responses.
    pub fn jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = Some(url.into());
        self
    }

    /// DPoP (RFC 9449): `dpop_signing_alg_values_supported` lists `algs` (the proof
    /// algorithms accepted) and `dpop_bound_access_tokens_required` says whether every
    /// access token must be DPoP-bound. Use the values the DPoP authenticator was built with.
    pub fn dpop<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        algs: I,
        required: bool,
    ) -> Self {
        self.dpop = Some(Dpop {
            algs: algs.into_iter().map(Into::into).collect(),
            required,
        });
        self
    }

    /// Forwarded public host: when a request's TCP peer is one of `proxies`, the origin
    /// (scheme and host) of `resource` and of the metadata URL is taken from
    /// `X-Forwarded-Proto` / `X-Forwarded-Host` if it carries valid ones (the last value of
    /// each, as set by the nearest proxy). From any other peer the headers are ignored. For
    /// one deployment serving several public hostnames; the proxies must set both headers and
    /// drop any a client sent. The metadata is then sent with
    /// `Vary: X-Forwarded-Host, X-Forwarded-Proto`, so shared caches keep the variants apart.
    pub fn trust_forwarded_headers(mut self, proxies: TrustedProxies) -> Self {
        self.trust_forwarded = Some(Arc::new(proxies));
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// Every problem at once: a resource URL that is not `https://` (or `http://` to a
    /// loopback host), has a fragment or no host; no authorization server; an authorization
    /// server, documentation or JWKS URL that is not `https://` (or loopback `http://`).
    pub fn build(self) -> Result<ProtectedResource, ConfigError> {
        let resource = self.resource.trim().to_owned();
        self.validate(&resource)?;
        let (origin, path_and_query) = split_origin(&resource).unwrap_or((&resource, ""));
        let well_known_path = well_known_path_for(path_and_query);
        let basic = self
            .basic_scopes
            .unwrap_or_else(|| self.scopes_supported.clone());
        let inner = Inner {
            metadata_url: format!("{origin}{well_known_path}"),
            path_form: well_known_path
                .split('?')
                .next()
                .unwrap_or(WELL_KNOWN_PATH)
                .to_owned(),
            path_and_query: path_and_query.to_owned(),
            well_known_path,
            document: Bytes::new(),
            resource: resource.clone(),
            authorization_servers: self.authorization_servers,
            scopes_supported: self.scopes_supported,
            basic_scopes: basic,
            resource_name: self.resource_name,
            resource_documentation: self.resource_documentation,
            jwks_uri: self.jwks_uri,
            dpop: self.dpop,
            trust_forwarded: self.trust_forwarded,
        };
        let document = inner.render(&resource);
        Ok(ProtectedResource {
            inner: Arc::new(Inner { document, ..inner }),
        })
    }

    /// Every problem with the URLs and the authorization server list.
    fn validate(&self, resource: &str) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        problems.check(check_url("resource", resource));
        if resource.contains('#') {
            problems.add("resource", "must not have a fragment");
        }
        if self.authorization_servers.is_empty() {
            problems.add(
                "authorization_servers",
                "at least one authorization server is required (RFC 9728, MCP)",
            );
        }
        for url in &self.authorization_servers {
            problems.check(check_url("authorization_servers", url));
        }
        for (name, url) in [
            ("resource_documentation", &self.resource_documentation),
            ("jwks_uri", &self.jwks_uri),
        ] {
            if let Some(url) = url {
                problems.check(check_url(name, url));
            }
        }
        problems.finish(|| ())
    }
}

/// Whether a scope may be named in the metadata or in challenges: not empty, and never
/// `offline_access` (MCP 2026-07-28).
fn listable(scope: &str) -> bool {
    scope != "offline_access" && !scope.is_empty()
}

struct Inner {
    resource: String,
    metadata_url: String,
    /// `/.well-known/oauth-protected-resource/<path>` without the query.
    path_form: String,
    /// The same with the query, for URLs.
    well_known_path: String,
    /// The resource's path and query.
    path_and_query: String,
    document: Bytes,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    basic_scopes: Vec<String>,
    resource_name: Option<String>,
    resource_documentation: Option<String>,
    jwks_uri: Option<String>,
    dpop: Option<Dpop>,
    trust_forwarded: Option<Arc<TrustedProxies>>,
}

impl Inner {
    fn render(&self, resource: &str) -> Bytes {
        let mut doc = serde_json::Map::new();
        doc.insert("resource".into(), resource.into());
        doc.insert(
            "authorization_servers".into(),
            self.authorization_servers.clone().into(),
        );
        if !self.scopes_supported.is_empty() {
            doc.insert(
                "scopes_supported".into(),
                self.scopes_supported.clone().into(),
            );
        }
        doc.insert("bearer_methods_supported".into(), vec!["header"].into());
        for (name, value) in [
            ("resource_name", &self.resource_name),
            ("resource_documentation", &self.resource_documentation),
            ("jwks_uri", &self.jwks_uri),
        ] {
            if let Some(v) = value {
                doc.insert(name.into(), v.clone().into());
            }
        }
        if let Some(dpop) = &self.dpop {
            doc.insert(
                "dpop_signing_alg_values_supported".into(),
                dpop.algs.clone().into(),
            );
            doc.insert(
                "dpop_bound_access_tokens_required".into(),
                dpop.required.into(),
            );
        }
        Bytes::from(serde_json::Value::Object(doc).to_string())
    }

    /// `scheme://host` from forwarding headers, if this mode is on, the request's peer is a
    /// trusted proxy and the headers are valid.
    fn forwarded_origin(
        &self,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Option<String> {
        self.trust_forwarded
            .as_ref()?
            .forwarded_origin(headers, extensions)
    }
}

/// This server as a protected resource: its metadata document and the challenge settings
/// that point to it. Cheap to clone.
#[derive(Clone)]
pub struct ProtectedResource {
    inner: Arc<Inner>,
}

impl fmt::Debug for ProtectedResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedResource")
            .field("resource", &self.inner.resource)
            .field("metadata_url", &self.inner.metadata_url)
            .field("authorization_servers", &self.inner.authorization_servers)
            .field("scopes_supported", &self.inner.scopes_supported)
            .field("trust_forwarded", &self.inner.trust_forwarded)
            .finish_non_exhaustive()
    }
}

impl ProtectedResource {
    /// Starts from the public URL of the MCP endpoint, byte for byte as clients call it (it
    /// is the metadata's `resource`, and clients compare it exactly).
    pub fn builder(resource: impl Into<String>) -> ProtectedResourceBuilder {
        ProtectedResourceBuilder {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            basic_scopes: None,
            resource_name: None,
            resource_documentation: None,
            jwks_uri: None,
            dpop: None,
            trust_forwarded: None,
        }
    }

    /// The resource identifier (the configured public URL).
    #[must_use]
    pub fn resource(&self) -> &str {
        &self.inner.resource
    }

    /// The canonical form of the resource, for audience checks.
    #[must_use]
    pub fn canonical(&self) -> String {
        canonical_resource(&self.inner.resource)
    }

    /// The metadata URL (path-inserted form, RFC 9728 §3.1), as `resource_metadata` says.
    #[must_use]
    pub fn metadata_url(&self) -> &str {
        &self.inner.metadata_url
    }

    /// The paths to mount [`service`](Self::service) at: the path-inserted form for the MCP
    /// endpoint, then the root form (clients try them in this order). For a resource at the
    /// root both are the same.
    #[must_use]
    pub fn well_known_paths(&self) -> [&str; 2] {
        [&self.inner.path_form, WELL_KNOWN_PATH]
    }

    /// `scopes_supported`.
    #[must_use]
    pub fn scopes_supported(&self) -> &[String] {
        &self.inner.scopes_supported
    }

    /// The metadata document (JSON) as served without forwarding headers.
    #[must_use]
    pub fn document(&self) -> &[u8] {
        &self.inner.document
    }

    /// `challenge` with `resource_metadata` pointing here and, for 401s, `scope` set to the
    /// basic scopes (left out when there are none).
    #[must_use]
    pub fn apply(&self, challenge: Challenge) -> Challenge {
        let challenge = challenge
            .scope(&self.inner.basic_scopes)
            .resource_metadata(self.inner.metadata_url.clone());
        match &self.inner.trust_forwarded {
            Some(proxies) => {
                challenge.forwarded_metadata(proxies.clone(), self.inner.well_known_path.clone())
            }
            None => challenge,
        }
    }

    /// A `Bearer` challenge pointing here ([`apply`](Self::apply) to `Challenge::bearer()`).
    #[must_use]
    pub fn challenge(&self) -> Challenge {
        self.apply(Challenge::bearer())
    }

    /// The tower service answering metadata requests (see [`MetadataService`]).
    #[must_use]
    pub fn service(&self) -> MetadataService {
        MetadataService::new(self.clone())
    }

    /// Whether `path` is one of [`well_known_paths`](Self::well_known_paths) (a trailing `/`
    /// is ignored).
    pub(super) fn serves(&self, path: &str) -> bool {
        let path = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        path == self.inner.path_form || path == WELL_KNOWN_PATH
    }

    /// The metadata document for one request: rebuilt from the forwarding headers of a
    /// trusted proxy (see [`ProtectedResourceBuilder::trust_forwarded_headers`]), otherwise
    /// the configured one.
    pub(super) fn document_for(&self, headers: &HeaderMap, extensions: &http::Extensions) -> Bytes {
        let inner = &self.inner;
        match inner.forwarded_origin(headers, extensions) {
            Some(origin) => inner.render(&format!("{origin}{}", inner.path_and_query)),
            None => inner.document.clone(),
        }
    }

    /// Whether the document follows forwarding headers (then it varies on them).
    pub(super) fn follows_forwarded_headers(&self) -> bool {
        self.inner.trust_forwarded.is_some()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::oauth::uri::WELL_KNOWN_PATH;

    /// A resource at `resource` with one authorization server (also for the service's tests).
    pub(in crate::oauth) fn pr(resource: &str) -> ProtectedResource {
        ProtectedResource::builder(resource)
            .authorization_server("https://as.example.com")
            .build()
            .unwrap()
    }

    #[test]
    fn metadata_urls_insert_the_well_known_path_and_keep_the_query() {
        let cases = [
            (
                "https://h.example/mcp",
                "https://h.example/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://h.example/public/mcp/",
                "https://h.example/.well-known/oauth-protected-resource/public/mcp",
            ),
            (
                "https://h.example",
                "https://h.example/.well-known/oauth-protected-resource",
            ),
            (
                "https://h.example/",
                "https://h.example/.well-known/oauth-protected-resource",
            ),
            (
                "https://h.example/mcp?tenant=a",
                "https://h.example/.well-known/oauth-protected-resource/mcp?tenant=a",
            ),
            (
                "http://127.0.0.1:8080/mcp",
                "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp",
            ),
        ];
        for (resource, url) in cases {
            assert_eq!(pr(resource).metadata_url(), url, "{resource}");
        }
        assert_eq!(
            pr("https://h.example").well_known_paths(),
            [WELL_KNOWN_PATH, WELL_KNOWN_PATH]
        );
    }

    #[test]
    fn configuration_problems_are_reported_together() {
        let err = ProtectedResource::builder("http://mcp.example.com/mcp#x")
            .authorization_server("http://as.example.com")
            .build()
            .unwrap_err();
        let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
        assert_eq!(settings, ["resource", "resource", "authorization_servers"]);
        let err = ProtectedResource::builder("https://mcp.example.com/mcp")
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("at least one authorization server")
        );
    }
}
