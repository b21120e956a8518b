use super::*;

/// A TOML file in the temp dir, removed on drop.
struct TempToml(std::path::PathBuf);

impl TempToml {
    fn new(tag: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("mcp-auth-config-{tag}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempToml {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn load_pairs(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Loader::from_env(EnvReader::from_pairs(pairs.iter().copied())).load()
}

#[test]
fn no_credential_generates_one_and_requires_it() {
    let config = load_pairs(&[]).unwrap();
    let token = config.generated_token.as_ref().expect("generated");
    assert!(token.expose().starts_with("mcp_"));
    assert_eq!(config.scheme_names(), ["Bearer"]);
    assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(config.public_url, "http://127.0.0.1:8080/mcp");
    assert_eq!(config.mcp_path(), "/mcp");
    // The Debug form names no secret.
    assert!(!format!("{config:?}").contains(token.expose()));
}

#[test]
fn the_environment_overrides_the_file_and_the_file_the_defaults() {
    let tokens = TempToml::new("layers-tokens", "tok-from-file-0123456789abcdef sub=file\n");
    let file = TempToml::new(
        "layers",
        &format!(
            r#"
            bind = "127.0.0.1:9001"
            public_url = "https://mcp.example.com/tools/mcp"
            auth_tokens_file = "{}"
            tool_scopes = {{ whoami = "", read_data = "data:read" }}
            "#,
            tokens.path()
        ),
    );
    let config = Loader::from_env(EnvReader::from_pairs([
        ("MCP_AUTH_CONFIG", file.path()),
        ("MCP_BIND", "127.0.0.1:9002"),
    ]))
    .default_value("MCP_BIND", "127.0.0.1:9003")
    .default_value("MCP_PUBLIC_URL", "https://defaults.example.com/mcp")
    .default_value("MCP_TOOL_SCOPES", "whoami=;write_data=data:write")
    .default_value("MCP_SCOPE_IMPLIES", "data:write>data:read")
    .load()
    .unwrap();
    // The environment over the file.
    assert_eq!(config.bind.to_string(), "127.0.0.1:9002");
    // The file over the defaults.
    assert_eq!(config.public_url, "https://mcp.example.com/tools/mcp");
    assert_eq!(config.mcp_path(), "/tools/mcp");
    assert!(config.generated_token.is_none());
    assert!(config.policy.scopes().contains("data:read"));
    assert!(!config.policy.scopes().contains("data:write"));
    // The defaults where neither sets a value: data:write implies data:read.
    let ctx = crate::AuthContext::builder("w", crate::AuthMethod::Bearer)
        .scopes(["data:write"])
        .build();
    let read = crate::scope::Operation::new("tools/call", Some("read_data".to_owned()), None);
    assert!(config.policy.permits(&ctx, &read));
}

#[test]
fn a_file_form_in_the_environment_hides_the_value_in_the_file() {
    let secret_file = TempToml::new("secret", "tok-env-file-0123456789abcdef sub=env\n");
    let file = TempToml::new("hidden", "auth_tokens_file = \"/nonexistent/tokens\"\n");
    // Both in one layer would be "set X or X_FILE, not both"; across layers the higher wins
    // (the file's path, which does not exist, is never read).
    let config = Loader::from_env(EnvReader::from_pairs([
        ("MCP_AUTH_CONFIG", file.path()),
        ("MCP_AUTH_TOKENS_FILE", secret_file.path()),
    ]))
    .load()
    .unwrap();
    assert!(config.generated_token.is_none());
}

#[test]
fn every_problem_is_reported_at_once_by_setting_and_file_never_by_value() {
    let file = TempToml::new(
        "problems",
        r#"
        bind = "not-an-address"
        jwt_secret = "short-s3cret"
        public_url = "https://u:s3cret-pw@mcp.example.com/mcp"
        unknown_thing = "v4lue"
        "#,
    );
    let err = Loader::from_env(EnvReader::from_pairs([
        ("MCP_AUTH_CONFIG", file.path()),
        ("MCP_TOOL_SCOPES", "whoami"),
        ("MCP_SCOPE_IMPLIES", "data:write"),
    ]))
    .load()
    .unwrap_err();
    let text = err.to_string();
    let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
    assert!(
        settings
            .iter()
            .any(|s| s.starts_with("\"unknown_thing\" (in ")),
        "{text}"
    );
    assert!(
        settings.contains(&format!("MCP_BIND (from {})", file.path()).as_str()),
        "{text}"
    );
    assert!(
        settings.iter().any(|s| s.starts_with("jwt_secret (in ")),
        "{text}"
    );
    assert!(
        settings
            .iter()
            .any(|s| s.starts_with("MCP_PUBLIC_URL (from ")),
        "{text}"
    );
    assert!(settings.contains(&"MCP_TOOL_SCOPES"), "{text}");
    assert!(settings.contains(&"MCP_SCOPE_IMPLIES"), "{text}");
    for value in ["not-an-address", "short-s3cret", "v4lue", "s3cret-pw"] {
        assert!(!text.contains(value), "{text}");
    }
}

#[test]
fn an_unreadable_or_oversized_file_is_a_problem_of_mcp_auth_config() {
    let err = load_pairs(&[("MCP_AUTH_CONFIG", "/nonexistent/mcp-auth.toml")]).unwrap_err();
    assert_eq!(err.problems()[0].setting(), "MCP_AUTH_CONFIG");
    let big = TempToml::new("big", &"#".repeat(MAX_CONFIG_FILE as usize + 1));
    let err = load_pairs(&[("MCP_AUTH_CONFIG", big.path())]).unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[test]
fn applications_read_their_own_settings_through_the_same_layers() {
    let file = TempToml::new("app", "upstream_url = \"http://127.0.0.1:9000/mcp\"\n");
    let (config, upstream) =
        Loader::from_env(EnvReader::from_pairs([("MCP_AUTH_CONFIG", file.path())]))
            .load_with(&["MCP_UPSTREAM_URL"], |env| env.raw("MCP_UPSTREAM_URL"))
            .unwrap();
    assert_eq!(upstream.as_deref(), Some("http://127.0.0.1:9000/mcp"));
    assert!(config.generated_token.is_some());
    // Without naming it, the same file is refused.
    assert!(load_pairs(&[("MCP_AUTH_CONFIG", file.path())]).is_err());
}

#[test]
fn an_application_problem_is_reported_with_the_configurations() {
    let err = Loader::from_env(EnvReader::from_pairs([("MCP_BIND", "nope")]))
        .load_with(&["MCP_UPSTREAM_URL"], |env| {
            env.required("MCP_UPSTREAM_URL", |_, v| Ok(v.to_owned()))
        })
        .unwrap_err();
    assert_eq!(err.problems().len(), 2, "{err}");
}

#[test]
fn without_a_tool_table_every_tool_is_open_and_with_one_unnamed_tools_are_refused() {
    use crate::AuthContext;
    use crate::scope::Operation;
    let call = |tool: &str| Operation::new("tools/call", Some(tool.to_owned()), None);
    let ctx = AuthContext::builder("alice", crate::AuthMethod::Bearer).build();
    let open = load_pairs(&[]).unwrap();
    assert!(open.policy.permits(&ctx, &call("anything")));
    let table = load_pairs(&[("MCP_TOOL_SCOPES", "whoami=")]).unwrap();
    assert!(table.policy.permits(&ctx, &call("whoami")));
    assert!(!table.policy.permits(&ctx, &call("anything")));
}

#[test]
fn default_scopes_go_to_static_and_generated_credentials() {
    let config = load_pairs(&[("MCP_DEFAULT_SCOPES", "data:read, data:write")]).unwrap();
    let token = config.generated_token.clone().unwrap();
    let req = http::Request::builder()
        .header("authorization", format!("Bearer {}", token.expose()))
        .body(())
        .unwrap();
    let (parts, ()) = req.into_parts();
    let ctx = config
        .auth
        .authenticate_now(&parts)
        .expect("answered at once")
        .unwrap();
    assert!(ctx.scopes().contains("data:read") && ctx.scopes().contains("data:write"));
}

#[test]
fn redis_settings_name_their_variable() {
    let err =
        load_pairs(&[("MCP_REDIS_RECORD_KEY", "0123456789abcdef0123456789abcdef")]).unwrap_err();
    assert_eq!(err.problems()[0].setting(), "MCP_REDIS_RECORD_KEY");
}

#[test]
fn a_public_url_that_is_not_a_plain_http_url_is_refused() {
    for bad in [
        "ftp://x/mcp",
        "https://user:pw@x/mcp",
        "https://x/mcp?a=1",
        "https://x/:mcp",
        "https://x/*mcp",
    ] {
        let err = load_pairs(&[("MCP_PUBLIC_URL", bad)]).unwrap_err();
        assert_eq!(err.problems()[0].setting(), "MCP_PUBLIC_URL", "{bad}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
}

#[test]
fn the_loader_debug_form_names_defaults_without_their_values() {
    let loader = Loader::from_env(EnvReader::from_pairs([("MCP_X", "y")]))
        .default_value("MCP_JWT_SECRET", "s3cret-default-0123456789abcdef0123");
    let shown = format!("{loader:?}");
    assert!(
        shown.contains("MCP_JWT_SECRET") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn a_builders_problem_names_the_variable_and_the_file() {
    let file = TempToml::new("builder", "oidc_issuer = \"http://idp.example.com\"\n");
    let err = load_pairs(&[("MCP_AUTH_CONFIG", file.path())]).unwrap_err();
    assert_eq!(
        err.problems()[0].setting(),
        format!("MCP_OIDC_ISSUER (from {})", file.path()),
        "{err}"
    );
}

#[test]
fn dpop_wraps_the_authorization_servers_tokens_and_shows_in_the_metadata() {
    let secret = "0123456789abcdef0123456789abcdef";
    let base = [
        ("MCP_JWT_SECRET", secret),
        ("MCP_PUBLIC_URL", "https://mcp.example.com/mcp"),
        ("MCP_AUTHORIZATION_SERVERS", "https://as.example.com"),
    ];
    let optional = load_pairs(&base).unwrap();
    assert_eq!(optional.scheme_names(), ["Bearer", "DPoP"]);
    let doc: serde_json::Value =
        serde_json::from_slice(optional.resource.as_ref().unwrap().document()).unwrap();
    assert_eq!(doc["dpop_bound_access_tokens_required"], false);
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "ES384", "EdDSA", "PS256", "RS256"])
    );

    let mut pairs = base.to_vec();
    pairs.extend([("MCP_DPOP", "required"), ("MCP_DPOP_ALGS", "ES256")]);
    let required = load_pairs(&pairs).unwrap();
    assert_eq!(required.scheme_names(), ["DPoP"]);
    let doc: serde_json::Value =
        serde_json::from_slice(required.resource.as_ref().unwrap().document()).unwrap();
    assert_eq!(doc["dpop_bound_access_tokens_required"], true);
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );

    // API keys alone: no DPoP.
    let keys = load_pairs(&[("MCP_API_KEYS", "k-0123456789abcdef;sub=ci")]).unwrap();
    assert_eq!(keys.scheme_names(), ["ApiKey"]);
}

#[test]
fn dpop_settings_problems_are_reported_by_variable() {
    let err = load_pairs(&[
        ("MCP_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("MCP_DPOP", "sometimes"),
        ("MCP_DPOP_ALGS", "ES256,HS999"),
        ("MCP_DPOP_IAT_WINDOW", "0"),
        ("MCP_DPOP_NONCE_KEY", "short"),
        ("MCP_DPOP_REPLAY_CAPACITY", "-1"),
    ])
    .unwrap_err()
    .to_string();
    for var in [
        "MCP_DPOP:",
        "MCP_DPOP_ALGS",
        "MCP_DPOP_IAT_WINDOW",
        "MCP_DPOP_NONCE_KEY",
        "MCP_DPOP_REPLAY_CAPACITY",
    ] {
        assert!(err.contains(var), "{var}: {err}");
    }
    assert!(!err.contains("short"), "a secret value leaked: {err}");
    // HMAC refused by the builder, named by its variable.
    let err = load_pairs(&[
        ("MCP_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("MCP_DPOP_ALGS", "ES256 HS256"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("MCP_DPOP_ALGS") && err.contains("asymmetric"),
        "{err}"
    );
}

// --- several issuers ----------------------------------------------------------------------

fn hs256(iss: &str, aud: &str) -> String {
    crate::authenticators::jwt::JwtMinter::hmac(
        "0123456789abcdef0123456789abcdef",
        crate::authenticators::jwt::Algorithm::HS256,
    )
    .unwrap()
    .issuer(iss)
    .audience(aud)
    .mint("svc", ["data:read"])
    .unwrap()
}

fn authorization_servers(config: &Config) -> serde_json::Value {
    let doc: serde_json::Value =
        serde_json::from_slice(config.resource.as_ref().unwrap().document()).unwrap();
    doc["authorization_servers"].clone()
}

#[test]
fn several_oidc_issuers_are_each_trusted_and_all_listed_in_the_metadata() {
    const PUBLIC: &str = "https://mcp.example.com/mcp";
    let config = load_pairs(&[
        (
            "MCP_OIDC_ISSUER",
            "https://a.example.com, https://b.example.com/realms/x",
        ),
        ("MCP_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("MCP_PUBLIC_URL", PUBLIC),
    ])
    .unwrap();
    assert_eq!(
        authorization_servers(&config),
        serde_json::json!(["https://a.example.com", "https://b.example.com/realms/x"])
    );
    let jwt = config.jwt().unwrap();
    // Nothing was fetched: a trusted issuer's token waits for its keys (503), an unknown
    // issuer's is refused at once, and the secret still serves this server's own issuer.
    let err = jwt
        .verify(&hs256("https://a.example.com", PUBLIC))
        .unwrap_err();
    assert_eq!(err.kind(), crate::AuthErrorKind::Unavailable, "{err:?}");
    let err = jwt
        .verify(&hs256("https://c.example.com", PUBLIC))
        .unwrap_err();
    assert_eq!(err.detail(), Some("unknown_issuer"));
    assert_eq!(jwt.verify(&hs256(PUBLIC, PUBLIC)).unwrap().subject(), "svc");
}

#[test]
fn one_oidc_issuer_is_configured_as_before() {
    let config = load_pairs(&[
        ("MCP_OIDC_ISSUER", " https://a.example.com "),
        ("MCP_JWT_ISSUER", "https://a.example.com/v2"),
    ])
    .unwrap();
    assert_eq!(
        authorization_servers(&config),
        serde_json::json!(["https://a.example.com"])
    );
    // MCP_JWT_ISSUER still names the `iss` of the discovered keys: no routing, so an
    // unknown issuer's token is judged by the keys (none loaded yet: 503, as before).
    let err = config
        .jwt()
        .unwrap()
        .verify(&hs256("https://c.example.com", "http://127.0.0.1:8080/mcp"))
        .unwrap_err();
    assert_eq!(err.kind(), crate::AuthErrorKind::Unavailable, "{err:?}");
}

#[test]
fn several_oidc_issuers_refuse_what_would_be_ambiguous() {
    for (pairs, var) in [
        (
            vec![
                (
                    "MCP_OIDC_ISSUER",
                    "https://a.example.com,https://b.example.com",
                ),
                ("MCP_JWT_ISSUER", "https://a.example.com"),
            ],
            "MCP_JWT_ISSUER",
        ),
        (
            vec![
                (
                    "MCP_OIDC_ISSUER",
                    "https://a.example.com,https://b.example.com",
                ),
                ("MCP_JWKS_URL", "https://a.example.com/jwks"),
            ],
            "MCP_JWKS_URL",
        ),
        (
            vec![("MCP_OIDC_ISSUER", "https://login.example.com/{tenant}/v2.0")],
            "MCP_OIDC_ISSUER",
        ),
        (vec![("MCP_OIDC_ISSUER", " , ")], "MCP_OIDC_ISSUER"),
        (
            vec![
                ("MCP_ISSUERS", r#"[{"issuer": "https://a.example.com"}]"#),
                ("MCP_JWT_ISSUER", "https://a.example.com"),
            ],
            "MCP_JWT_ISSUER",
        ),
        (
            // The same issuer twice: a builder problem, named by the variable.
            vec![(
                "MCP_OIDC_ISSUER",
                "https://a.example.com,https://a.example.com",
            )],
            "MCP_OIDC_ISSUER",
        ),
        (
            vec![(
                "MCP_OIDC_ISSUER",
                "https://a.example.com,http://b.example.com",
            )],
            "MCP_OIDC_ISSUER",
        ),
    ] {
        let err = load_pairs(&pairs).unwrap_err();
        let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
        assert!(settings.contains(&var), "{pairs:?}: {err}");
    }
}

const ISSUERS_TOML: &str = r#"
public_url = "https://mcp.example.com/mcp"

[[issuers]]
issuer = "https://a.example.com"
jwks_url = "https://a.example.com/jwks"
audience = "https://mcp.example.com/mcp"
leeway = 30
roles_claims = ["realm_access.roles"]

[[issuers]]
issuer = "https://idp.test/{tenant}/v2.0"
jwks_url = "https://idp.test/common/keys"
tenants = ["t-1", "t-2"]
tenant_claim = "tid"
permissions_as_scopes = true
"#;

#[test]
fn issuer_tables_configure_trusted_issuers_and_the_metadata() {
    let file = TempToml::new("issuers", ISSUERS_TOML);
    let config = load_pairs(&[("MCP_AUTH_CONFIG", file.path())]).unwrap();
    assert_eq!(
        authorization_servers(&config),
        serde_json::json!([
            "https://a.example.com",
            "https://idp.test/t-1/v2.0",
            "https://idp.test/t-2/v2.0"
        ])
    );
    let jwt = config.jwt().unwrap();
    let aud = "https://mcp.example.com/mcp";
    // An allowed tenant reaches its key source (none loaded: 503); another tenant, or an
    // issuer nobody configured, is refused before any key or fetch.
    let err = jwt
        .verify(&hs256("https://idp.test/t-1/v2.0", aud))
        .unwrap_err();
    assert_eq!(err.kind(), crate::AuthErrorKind::Unavailable, "{err:?}");
    let err = jwt
        .verify(&hs256("https://idp.test/t-3/v2.0", aud))
        .unwrap_err();
    assert_eq!(err.detail(), Some("tenant_not_allowed"));
    let err = jwt
        .verify(&hs256("https://b.example.com", aud))
        .unwrap_err();
    assert_eq!(err.detail(), Some("unknown_issuer"));

    // The same in the environment, as JSON; the environment wins over the file.
    let env_form =
        r#"[{"issuer": "https://b.example.com", "jwks_url": "https://b.example.com/jwks"}]"#;
    let config =
        load_pairs(&[("MCP_AUTH_CONFIG", file.path()), ("MCP_ISSUERS", env_form)]).unwrap();
    assert_eq!(
        authorization_servers(&config),
        serde_json::json!(["https://b.example.com"])
    );
}

#[test]
fn issuer_table_problems_are_all_reported_by_entry_and_key_never_by_value() {
    let file = TempToml::new(
        "issuers-bad",
        r#"
        [[issuers]]
        jwks_url = "https://a.example.com/jwks"
        audience = 7
        leeway = "s3cret-ish"
        colour = "blue"

        [[issuers]]
        issuer = "https://idp.test/{tenant}/v2.0"
        jwks_url = "https://idp.test/keys"
        tenants = ["t-1"]
        any_tenant = "yes"
        permissions_as_scopes = 1
        "#,
    );
    let err = load_pairs(&[("MCP_AUTH_CONFIG", file.path())]).unwrap_err();
    let origin = format!(" (from {})", file.path());
    let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
    for key in [
        "[0].issuer",
        "[0].audience",
        "[0].leeway",
        "[0].\"colour\"",
        "[1].any_tenant",
        "[1].permissions_as_scopes",
    ] {
        let want = format!("MCP_ISSUERS{key}{origin}");
        assert!(settings.contains(&want.as_str()), "{want}: {err}");
    }
    assert_eq!(settings.len(), 6, "{err}");
    let text = err.to_string();
    assert!(!text.contains("s3cret") && !text.contains("blue"), "{text}");

    // What only the builder can judge is named by entry and key too.
    let file = TempToml::new(
        "issuers-builder",
        r#"
        [[issuers]]
        issuer = "https://a.example.com"
        jwks_url = "https://a.example.com/jwks"

        [[issuers]]
        issuer = "https://idp.test/{tenant}/v2.0"
        jwks_url = "https://idp.test/keys"
        leeway = 900
        "#,
    );
    let err = load_pairs(&[("MCP_AUTH_CONFIG", file.path())]).unwrap_err();
    let settings: Vec<String> = err
        .problems()
        .iter()
        .map(|p| p.setting().to_owned())
        .collect();
    for key in ["[1].tenants", "[1].leeway"] {
        let want = format!("MCP_ISSUERS{key} (from {})", file.path());
        assert!(settings.contains(&want), "{want}: {err}");
    }
    // In the environment, a value that is not a JSON array of objects.
    for bad in [
        "https://a.example.com",
        "{\"issuer\": \"x\"}",
        "[{\"issuer\":\"a\",\"issuer\":\"b\"}]",
    ] {
        let err = load_pairs(&[("MCP_ISSUERS", bad)]).unwrap_err();
        assert_eq!(err.problems()[0].setting(), "MCP_ISSUERS", "{bad}");
    }
}

#[cfg(feature = "outbound")]
#[test]
fn outbound_settings_build_a_client_or_name_every_missing_one() {
    let config = load_pairs(&[
        ("MCP_API_KEYS", "k1=0123456789abcdef0123"),
        ("MCP_OUTBOUND_MODE", "exchange"),
        ("MCP_UPSTREAM_API_URL", "https://files.example.com:8443/v1"),
        ("MCP_UPSTREAM_SCOPES", "files:read files:write"),
        ("MCP_OUTBOUND_CLIENT_ID", "mcp-server"),
        ("MCP_OUTBOUND_CLIENT_SECRET", "s3cret-outbound-value"),
        ("MCP_OUTBOUND_TOKEN_URL", "https://as.example.com/token"),
    ])
    .unwrap();
    let client = config.outbound.as_ref().unwrap();
    let uri: http::Uri = "https://files.example.com:8443/v1/x".parse().unwrap();
    assert!(client.upstreams().source_for(&uri).is_some());
    assert!(!format!("{client:?}").contains("s3cret-outbound-value"));

    let err = load_pairs(&[
        ("MCP_API_KEYS", "k1=0123456789abcdef0123"),
        ("MCP_OUTBOUND_MODE", "client_credentials"),
    ])
    .unwrap_err()
    .to_string();
    for var in [
        "MCP_UPSTREAM_API_URL",
        "MCP_OUTBOUND_CLIENT_ID",
        "MCP_OUTBOUND_CLIENT_SECRET",
        "MCP_OUTBOUND_TOKEN_URL",
    ] {
        assert!(err.contains(var), "{var} not named in: {err}");
    }
    let err = load_pairs(&[
        ("MCP_API_KEYS", "k1=0123456789abcdef0123"),
        ("MCP_OUTBOUND_MODE", "forward"),
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("MCP_OUTBOUND_MODE"), "{err}");
    let none = load_pairs(&[("MCP_API_KEYS", "k1=0123456789abcdef0123")]).unwrap();
    assert!(none.outbound.is_none());
}
