//! Static API keys and bearer tokens, and the token generated when no credential is set.

use crate::authenticators::bearer::generate_token;
use crate::env::EnvReader;
use crate::{ApiKeyAuthenticator, BearerAuthenticator, ConfigError, Credential, Secret};

/// Static API keys and bearer tokens (`MCP_API_KEYS`, `MCP_AUTH_TOKENS`), each also as
/// `<NAME>_FILE`: one credential per line, where the secret may hold `,` and `;`. Credentials
/// that name no scopes carry `default_scopes`.
pub(super) fn load_credentials(
    env: &mut EnvReader,
    default_scopes: &[String],
) -> (Option<ApiKeyAuthenticator>, Option<BearerAuthenticator>) {
    let api_keys = env.optional_secret("MCP_API_KEYS", |name, v, origin| {
        ApiKeyAuthenticator::new()
            .default_scopes(default_scopes)
            .with_setting(name, v, origin)
    });
    let tokens = env.optional_secret("MCP_AUTH_TOKENS", |name, v, origin| {
        BearerAuthenticator::new()
            .default_scopes(default_scopes)
            .with_setting(name, v, origin)
    });
    (api_keys, tokens)
}

/// The bearer token for a server configured with no credential: subject `local-admin`, the
/// default scopes.
pub(super) fn generated_credential(
    default_scopes: &[String],
) -> Result<(BearerAuthenticator, Secret), ConfigError> {
    let token = generate_token("mcp_")?;
    let auth = BearerAuthenticator::new()
        .default_scopes(default_scopes)
        .with_token(Credential::new(token.clone()).subject("local-admin"))?;
    Ok((auth, token))
}
