//! Static API keys and bearer tokens, and the token generated when no credential is set.

use mcp_auth::authenticators::bearer::generate_token;
use mcp_auth::env::EnvReader;
use mcp_auth::{ApiKeyAuthenticator, BearerAuthenticator, ConfigError, Credential, Secret};

use crate::policy::DEFAULT_SCOPES;

/// Static API keys and bearer tokens (`MCP_API_KEYS`, `MCP_AUTH_TOKENS`), each also as
/// `<NAME>_FILE`: one credential per line, where the secret may hold `,` and `;`.
pub(super) fn load_credentials(
    env: &mut EnvReader,
) -> (Option<ApiKeyAuthenticator>, Option<BearerAuthenticator>) {
    let api_keys = env.optional_secret("MCP_API_KEYS", |name, v, origin| {
        ApiKeyAuthenticator::new()
            .default_scopes(DEFAULT_SCOPES)
            .with_setting(name, v, origin)
    });
    let tokens = env.optional_secret("MCP_AUTH_TOKENS", |name, v, origin| {
        BearerAuthenticator::new()
            .default_scopes(DEFAULT_SCOPES)
            .with_setting(name, v, origin)
    });
    (api_keys, tokens)
}

/// The bearer token for a server configured with no credential: `local-admin`, every
/// default scope.
pub(super) fn generated_credential() -> Result<(BearerAuthenticator, Secret), ConfigError> {
    let token = generate_token("mcp_")?;
    let auth = BearerAuthenticator::new()
        .default_scopes(DEFAULT_SCOPES)
        .with_token(Credential::new(token.clone()).subject("local-admin"))?;
    Ok((auth, token))
}
