//! Who called: [`AuthContext`], placed in request extensions by every auth layer.
//!
//! # Example
//!
//! ```
//! use mcp_auth::{AuthContext, AuthMethod};
//!
//! let ctx = AuthContext::builder("alice", AuthMethod::ApiKey)
//!     .scopes(["data:read", "data:write"])
//!     .roles(["editor"])
//!     .build();
//! assert_eq!(ctx.subject(), "alice");
//! assert!(ctx.scopes().contains("data:read"));
//! assert!(ctx.has_role("editor"));
//! // The principal key is stable and unambiguous: issuer | subject | client.
//! assert_eq!(ctx.principal(), "|alice|");
//! ```

mod confirmation;
mod scopes;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

pub use self::confirmation::Confirmation;
pub use self::scopes::Scopes;

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// An API key in a header such as `X-API-Key`.
    ApiKey,
    /// An opaque bearer token (static or issued by a [`TokenStore`](crate::store::TokenStore)).
    Bearer,
    /// A JWT access token.
    Jwt,
    /// An opaque token checked by token introspection (RFC 7662).
    Introspection,
    /// A client certificate presented on the TLS connection (RFC 8705 §2), mapped to a
    /// subject by `ClientCertAuthenticator` (feature `mtls`).
    ClientCertificate,
    /// A custom scheme, named by its authenticator.
    Custom(Arc<str>),
}

impl AuthMethod {
    /// A short stable name: `api_key`, `bearer`, `jwt`, `introspection`,
    /// `client_certificate`, or the custom name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::ApiKey => "api_key",
            Self::Bearer => "bearer",
            Self::Jwt => "jwt",
            Self::Introspection => "introspection",
            Self::ClientCertificate => "client_certificate",
            Self::Custom(name) => name,
        }
    }
}

impl AuthMethod {
    /// The method named by `name`, the inverse of [`as_str`](Self::as_str): a built-in name
    /// gives its variant, any other name [`AuthMethod::Custom`].
    ///
    /// ```
    /// use mcp_auth::AuthMethod;
    /// assert_eq!(AuthMethod::from_name("jwt"), AuthMethod::Jwt);
    /// assert_eq!(AuthMethod::from_name("mtls").as_str(), "mtls");
    /// ```
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        match name {
            "api_key" => Self::ApiKey,
            "bearer" => Self::Bearer,
            "jwt" => Self::Jwt,
            "introspection" => Self::Introspection,
            "client_certificate" => Self::ClientCertificate,
            other => Self::Custom(other.into()),
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finished context: the builder's fields, and the principal key derived from them.
struct Inner {
    fields: AuthContextBuilder,
    principal: String,
}

/// Raw claims: parsed already, or kept as validated JSON text and parsed on first use (the
/// JWT hot path never builds a map nobody reads).
#[derive(Default)]
enum Claims {
    #[default]
    None,
    Map(serde_json::Map<String, serde_json::Value>),
    #[cfg(feature = "jwt")]
    Json {
        text: String,
        parsed: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>>,
    },
}

/// The authenticated caller, as seen by tool handlers.
///
/// Cheap to clone (one `Arc`). Inserted into request extensions by the auth layers; read it
/// with the axum extractor (feature `axum`), the rmcp helpers (feature `rmcp`), or
/// `parts.extensions.get::<AuthContext>()`. It never holds a credential, and its `Debug`
/// shows no claims values.
#[derive(Clone)]
pub struct AuthContext(Arc<Inner>);

impl AuthContext {
    /// Starts building a context for `subject` authenticated by `method`.
    pub fn builder(subject: impl Into<String>, method: AuthMethod) -> AuthContextBuilder {
        AuthContextBuilder {
            subject: subject.into(),
            method,
            scopes: Scopes::new(),
            roles: BTreeSet::new(),
            client_id: None,
            issuer: None,
            tenant: None,
            audience: Vec::new(),
            expires_at: None,
            credential_id: None,
            confirmation: Confirmation::default(),
            claims: Claims::None,
        }
    }

    /// The subject (user or service) the credential belongs to.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.0.fields.subject
    }

    /// How the caller authenticated.
    #[must_use]
    pub fn method(&self) -> &AuthMethod {
        &self.0.fields.method
    }

    /// The granted scopes.
    #[must_use]
    pub fn scopes(&self) -> &Scopes {
        &self.0.fields.scopes
    }

    /// Whether `scope` was granted (exact match; scope implication is the scope layer's job).
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.fields.scopes.contains(scope)
    }

    /// The granted roles.
    pub fn roles(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.fields.roles.iter().map(String::as_str)
    }

    /// Whether the caller has `role`.
    #[must_use]
    pub fn has_role(&self, role: &str) -> bool {
        self.0.fields.roles.contains(role)
    }

    /// The OAuth client id (`client_id` / `azp`), if known.
    #[must_use]
    pub fn client_id(&self) -> Option<&str> {
        self.0.fields.client_id.as_deref()
    }

    /// The issuer (`iss`), if known.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.0.fields.issuer.as_deref()
    }

    /// The tenant of a multi-tenant issuer whose token this was (the `{tenant}` part of its
    /// issuer template, e.g. an Entra tenant id), if known. The issuer already names the
    /// tenant, so the [principal](Self::principal) key tells tenants apart without it.
    #[must_use]
    pub fn tenant(&self) -> Option<&str> {
        self.0.fields.tenant.as_deref()
    }

    /// The audiences the credential was issued for.
    #[must_use]
    pub fn audience(&self) -> &[String] {
        &self.0.fields.audience
    }

    /// When the credential expires, if it does.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.fields.expires_at
    }

    /// A non-secret identifier of the credential used (an API key's configured id, an issued
    /// token's id, a JWT's `jti`), for logs and revocation. Never the credential itself.
    #[must_use]
    pub fn credential_id(&self) -> Option<&str> {
        self.0.fields.credential_id.as_deref()
    }

    /// What the credential is bound to (a DPoP key, a client certificate); empty for an
    /// unbound credential.
    #[must_use]
    pub fn confirmation(&self) -> &Confirmation {
        &self.0.fields.confirmation
    }

    /// The raw claims, when the credential carried any (JWT, introspection).
    #[must_use]
    pub fn claims(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        match &self.0.fields.claims {
            Claims::None => None,
            Claims::Map(m) => Some(m),
            // The text was checked to be a JSON object when the context was built.
            #[cfg(feature = "jwt")]
            Claims::Json { text, parsed } => {
                Some(parsed.get_or_init(|| serde_json::from_str(text).unwrap_or_default()))
            }
        }
    }

    /// The raw claims as your own type (e.g. a `#[derive(Deserialize)]` struct); `None`
    /// without claims.
    ///
    /// # Errors
    ///
    /// When the claims do not deserialize into `T`.
    pub fn claims_as<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Option<Result<T, serde_json::Error>> {
        match &self.0.fields.claims {
            Claims::None => None,
            Claims::Map(m) => Some(serde_json::from_value(serde_json::Value::Object(m.clone()))),
            #[cfg(feature = "jwt")]
            Claims::Json { text, .. } => Some(serde_json::from_str(text)),
        }
    }

    /// A stable key for the principal: `issuer|subject|client_id`, each part with `%` and `|`
    /// percent-encoded, absent parts empty. Bind MCP sessions and per-user state to this, not
    /// to the subject alone (two issuers may both have a user `alice`).
    #[must_use]
    pub fn principal(&self) -> &str {
        &self.0.principal
    }
}

impl fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0.fields;
        f.debug_struct("AuthContext")
            .field("subject", &i.subject)
            .field("method", &i.method)
            .field("scopes", &i.scopes)
            .field("roles", &i.roles)
            .field("client_id", &i.client_id)
            .field("issuer", &i.issuer)
            .field("tenant", &i.tenant)
            .field("audience", &i.audience)
            .field("expires_at", &i.expires_at)
            .field("credential_id", &i.credential_id)
            .field("confirmation", &i.confirmation)
            .field("claims", &self.claims().map(ClaimNames))
            .finish()
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Map(m) => fmt::Debug::fmt(&ClaimNames(m), f),
            #[cfg(feature = "jwt")]
            Self::Json { .. } => f.write_str("<claims>"),
        }
    }
}

/// Prints only the claim names, never their values.
struct ClaimNames<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl fmt::Debug for ClaimNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Builds an [`AuthContext`]. See [`AuthContext::builder`].
#[derive(Debug)]
#[must_use]
pub struct AuthContextBuilder {
    subject: String,
    method: AuthMethod,
    scopes: Scopes,
    roles: BTreeSet<String>,
    client_id: Option<String>,
    issuer: Option<String>,
    tenant: Option<String>,
    audience: Vec<String>,
    expires_at: Option<SystemTime>,
    credential_id: Option<String>,
    confirmation: Confirmation,
    claims: Claims,
}

impl AuthContextBuilder {
    /// Adds granted scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes.extend(scopes);
        self
    }

    /// Adds roles.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Sets the OAuth client id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// Sets the issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Sets the tenant (of a multi-tenant issuer).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Adds audiences.
    pub fn audience<I: IntoIterator<Item = S>, S: Into<String>>(mut self, aud: I) -> Self {
        self.audience.extend(aud.into_iter().map(Into::into));
        self
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the non-secret credential id. Never pass the credential itself.
    pub fn credential_id(mut self, id: impl Into<String>) -> Self {
        self.credential_id = Some(id.into());
        self
    }

    /// Sets what the token is bound to (its `cnf`).
    pub fn confirmation(mut self, confirmation: Confirmation) -> Self {
        self.confirmation = confirmation;
        self
    }

    /// Attaches raw claims.
    pub fn claims(mut self, claims: serde_json::Map<String, serde_json::Value>) -> Self {
        self.claims = Claims::Map(claims);
        self
    }

    /// Attaches raw claims as JSON text already checked to be an object; parsed on first use.
    #[cfg(feature = "jwt")]
    pub(crate) fn claims_json(mut self, text: String) -> Self {
        self.claims = Claims::Json {
            text,
            parsed: std::sync::OnceLock::new(),
        };
        self
    }

    /// Finishes the context.
    #[must_use]
    pub fn build(self) -> AuthContext {
        let mut principal = String::with_capacity(self.subject.len().saturating_add(2));
        push_escaped(&mut principal, self.issuer.as_deref().unwrap_or(""));
        principal.push('|');
        push_escaped(&mut principal, &self.subject);
        principal.push('|');
        push_escaped(&mut principal, self.client_id.as_deref().unwrap_or(""));
        AuthContext(Arc::new(Inner {
            fields: self,
            principal,
        }))
    }
}

/// Marker placed in request extensions by an [optional](crate::AuthLayer::optional) layer
/// when a request passed without credentials. Extractors use it to tell "anonymous" from
/// "no auth layer ran" (a wiring bug).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Anonymous;

/// Appends `part` with `%` and `|` escaped (`%25`, `%7C`), so `|`-joined keys built from
/// several parts can never collide.
pub(crate) fn push_escaped(out: &mut String, part: &str) {
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            '|' => out.push_str("%7C"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_key_cannot_be_forged_with_separators() {
        let a = AuthContext::builder("b|c", AuthMethod::Jwt)
            .issuer("a")
            .build();
        let b = AuthContext::builder("c", AuthMethod::Jwt)
            .issuer("a|b")
            .build();
        assert_ne!(a.principal(), b.principal());
        assert_eq!(a.principal(), "a|b%7Cc|");
    }

    #[test]
    fn principal_key_includes_issuer_subject_and_client() {
        let c = AuthContext::builder("alice", AuthMethod::Jwt)
            .issuer("https://idp")
            .client_id("app")
            .build();
        assert_eq!(c.principal(), "https://idp|alice|app");
    }

    #[test]
    fn debug_shows_claim_names_but_not_values() {
        let mut claims = serde_json::Map::new();
        claims.insert(
            "secretish".into(),
            serde_json::Value::String("v4lue-xyz".into()),
        );
        let c = AuthContext::builder("s", AuthMethod::Jwt)
            .claims(claims)
            .build();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("secretish"));
        assert!(!dbg.contains("v4lue-xyz"));
    }

    #[test]
    fn clones_share_one_allocation() {
        let c = AuthContext::builder("s", AuthMethod::Bearer).build();
        let d = c.clone();
        assert!(Arc::ptr_eq(&c.0, &d.0));
    }
}
