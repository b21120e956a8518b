//! The TOML files in `examples/config/` load as they are, with only their secret files
//! replaced (the environment's `*_FILE` overrides the file's), and mean what their comments
//! say.

mod support;

use mcp_auth::env::EnvReader;
use support::example;

/// A secret file in the temp dir, removed on drop.
struct SecretFile(std::path::PathBuf);

impl SecretFile {
    fn new(tag: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "mcp-auth-config-files-{tag}-{}",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn example_file(name: &str) -> String {
    format!("{}/examples/config/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn load(name: &str, env: &[(&str, &str)]) -> example::Config {
    let path = example_file(name);
    let mut pairs = vec![("MCP_AUTH_CONFIG", path.as_str())];
    pairs.extend_from_slice(env);
    example::load_config(EnvReader::from_pairs(pairs)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn api_keys() {
    let keys = SecretFile::new(
        "keys",
        "key-alice-0123456789abcdef sub=alice;scopes=data:read\n\
         key-admin-0123456789abcdef sub=admin;scopes=data:admin;roles=admin\n",
    );
    let config = load("api-keys.toml", &[("MCP_API_KEYS_FILE", keys.path())]);
    assert_eq!(config.scheme_names(), ["ApiKey"]);
    assert!(config.generated_token.is_none());
    assert!(config.resource.is_none());
    // The file's table: delete_data needs the admin role besides the scope, and a key that
    // names no scopes carries the file's default_scopes.
    use mcp_auth::scope::Operation;
    let call = |tool: &str| Operation::new("tools/call", Some(tool.to_owned()), None);
    let scoped = |scopes: &[&str], roles: &[&str]| {
        mcp_auth::AuthContext::builder("t", mcp_auth::AuthMethod::ApiKey)
            .scopes(scopes.iter().copied())
            .roles(roles.iter().copied())
            .build()
    };
    assert!(
        !config
            .policy
            .permits(&scoped(&["data:admin"], &[]), &call("delete_data"))
    );
    assert!(
        config
            .policy
            .permits(&scoped(&["data:admin"], &["admin"]), &call("delete_data"))
    );
}

#[test]
fn api_keys_without_the_secret_file_names_the_setting_and_the_file() {
    let path = example_file("api-keys.toml");
    let err = example::load_config(EnvReader::from_pairs([("MCP_AUTH_CONFIG", path.as_str())]))
        .expect_err("the secret file does not exist here");
    let setting = err.problems()[0].setting();
    assert!(
        setting.starts_with("MCP_API_KEYS_FILE (from ") && setting.contains("api-keys.toml"),
        "{err}"
    );
}

#[test]
fn oidc_providers() {
    for (name, issuer) in [
        ("oidc-auth0.toml", "https://YOUR_TENANT.us.auth0.com/"),
        (
            "oidc-keycloak.toml",
            "https://keycloak.example.com/realms/mcp",
        ),
        (
            "oidc-entra.toml",
            "https://login.microsoftonline.com/YOUR_TENANT_ID/v2.0",
        ),
    ] {
        let config = load(name, &[]);
        // The identity provider's tokens as Bearer, or DPoP-bound with proofs (MCP_DPOP).
        assert_eq!(config.scheme_names(), ["Bearer", "DPoP"], "{name}");
        assert!(config.jwt().is_some(), "{name}");
        assert!(config.generated_token.is_none(), "{name}");
        let metadata: serde_json::Value =
            serde_json::from_slice(config.resource.as_ref().unwrap().document()).unwrap();
        assert_eq!(metadata["authorization_servers"][0], issuer, "{name}");
        assert_eq!(
            metadata["resource"], "https://mcp.example.com/mcp",
            "{name}"
        );
        assert!(config.guards.require_https, "{name}");
    }
}

#[test]
fn introspection() {
    let secret = SecretFile::new("introspection", "s3cret\n");
    let config = load(
        "introspection.toml",
        &[("MCP_INTROSPECTION_CLIENT_SECRET_FILE", secret.path())],
    );
    // JWTs verified locally, opaque tokens introspected: one Bearer scheme for both (and
    // DPoP for bound tokens of either kind).
    assert_eq!(config.scheme_names(), ["Bearer", "DPoP"]);
    assert!(config.jwt().is_some());
    assert!(config.resource.is_some());
}

#[test]
fn redis() {
    let url = SecretFile::new("redis-url", "redis://127.0.0.1:1/0\n");
    let key = SecretFile::new("redis-key", "0123456789abcdef0123456789abcdef\n");
    let config = load(
        "redis.toml",
        &[
            ("MCP_REDIS_URL_FILE", url.path()),
            ("MCP_REDIS_RECORD_KEY_FILE", key.path()),
        ],
    );
    assert!(matches!(config.tokens.store(), example::Tokens::Redis(_)));
    assert!(matches!(
        config.guards.counters,
        example::Counters::Redis(_)
    ));
    assert!(matches!(
        config.guards.sessions,
        example::Sessions::Redis(_)
    ));
    assert_eq!(
        config.guards.failure_limit,
        Some((20, std::time::Duration::from_secs(600)))
    );
    assert!(config.guards.forwarded_host && config.guards.require_https);
}

#[test]
fn multi_issuer() {
    use mcp_auth::authenticators::jwt::{Algorithm, JwtMinter};
    let config = load("multi-issuer.toml", &[]);
    assert_eq!(config.scheme_names(), ["Bearer", "DPoP"]);
    let metadata: serde_json::Value =
        serde_json::from_slice(config.resource.as_ref().unwrap().document()).unwrap();
    assert_eq!(
        metadata["authorization_servers"],
        serde_json::json!([
            "https://keycloak.example.com/realms/mcp",
            "https://YOUR_TENANT.us.auth0.com/",
            "https://login.microsoftonline.com/11111111-1111-4111-8111-111111111111/v2.0",
            "https://login.microsoftonline.com/22222222-2222-4222-8222-222222222222/v2.0",
        ])
    );
    // Routing happens before any key is fetched: an issuer or tenant the file does not name
    // is refused at once; a listed tenant's token waits for Entra's keys (not fetched in a
    // test: 503).
    let jwt = config.jwt().unwrap();
    let token = |iss: &str| {
        JwtMinter::hmac("0123456789abcdef0123456789abcdef", Algorithm::HS256)
            .unwrap()
            .issuer(iss)
            .audience("YOUR_APPLICATION_CLIENT_ID")
            .mint("alice", ["data.read"])
            .unwrap()
    };
    let other_tenant =
        token("https://login.microsoftonline.com/33333333-3333-4333-8333-333333333333/v2.0");
    assert_eq!(
        jwt.verify(&other_tenant).unwrap_err().detail(),
        Some("tenant_not_allowed")
    );
    let stranger = token("https://login.microsoftonline.com/common/v2.0/x");
    assert_eq!(
        jwt.verify(&stranger).unwrap_err().detail(),
        Some("unknown_issuer")
    );
    let listed =
        token("https://login.microsoftonline.com/11111111-1111-4111-8111-111111111111/v2.0");
    assert_eq!(
        jwt.verify(&listed).unwrap_err().kind(),
        mcp_auth::AuthErrorKind::Unavailable
    );
}
