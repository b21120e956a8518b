//! The example server on a loopback port, driven by rmcp's real MCP client and by raw HTTP.
//!
//! Every rejected request is checked to never reach the MCP service (a counter sits between
//! the auth layer and rmcp's `StreamableHttpService`).

mod support;

use support::{Server, example, start, whoami};

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use mcp_auth::authenticators::bearer::TokenSpec;
use mcp_auth::env::EnvReader;
use mcp_auth::testing::assert_challenge;

const KEY: &str = "key-alice-0123456789abcdef";
const TOKEN: &str = "token-bob-0123456789abcdef";
const EXPIRED_KEY: &str = "key-old-0123456789abcdef";

fn default_env() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "MCP_API_KEYS",
            "key-alice-0123456789abcdef;sub=alice;scopes=data:read, key-old-0123456789abcdef;sub=old;exp=1700000000",
        ),
        (
            "MCP_AUTH_TOKENS",
            "token-bob-0123456789abcdef;sub=bob;roles=admin",
        ),
    ]
}

#[tokio::test]
async fn whoami_with_api_key_reports_the_key_subject_and_scopes() {
    let srv = start(&default_env()).await;
    let who = whoami(srv.url(), &[("x-api-key", KEY)]).await.unwrap();
    assert_eq!(who["subject"], "alice");
    assert_eq!(who["method"], "api_key");
    assert_eq!(who["scopes"], serde_json::json!(["data:read"]));
    assert!(
        srv.reached.load(Ordering::SeqCst) >= 2,
        "initialize and tools/call reached rmcp"
    );
}

#[tokio::test]
async fn whoami_with_static_bearer_token_reports_bearer_and_default_scopes() {
    let srv = start(&default_env()).await;
    let auth = format!("Bearer {TOKEN}");
    let who = whoami(srv.url(), &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(who["subject"], "bob");
    assert_eq!(who["method"], "bearer");
    assert_eq!(who["roles"], serde_json::json!(["admin"]));
    assert_eq!(
        who["scopes"],
        serde_json::json!(["data:admin", "data:read", "data:write"])
    );
}

#[tokio::test]
async fn without_configured_credentials_a_generated_token_is_required() {
    let srv = start(&[]).await;
    let token = srv.generated.clone().expect("a token was generated");
    assert!(token.starts_with("mcp_") && token.len() == 47);
    let who = whoami(srv.url(), &[("authorization", &format!("Bearer {token}"))])
        .await
        .unwrap();
    assert_eq!(who["subject"], "local-admin");
    // And without it, nothing gets through.
    let err = whoami(srv.url(), &[]).await.unwrap_err();
    assert!(err.to_lowercase().contains("auth"), "{err}");
}

#[tokio::test]
async fn rmcp_client_with_bad_credentials_cannot_connect_and_never_reaches_the_server() {
    let srv = start(&default_env()).await;
    for headers in [
        vec![],
        vec![("x-api-key", "key-alice-0123456789abcdeX")],
        vec![("x-api-key", EXPIRED_KEY)],
        vec![("authorization", "Bearer token-bob-0123456789abcdeX")],
    ] {
        let err = whoami(srv.url(), &headers).await.unwrap_err();
        assert!(err.to_lowercase().contains("auth"), "{headers:?}: {err}");
    }
    assert_eq!(srv.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn revoked_issued_token_is_refused_at_once() {
    let srv = start(&default_env()).await;
    let issued = srv
        .tokens
        .issue(TokenSpec::new("carol", Duration::from_secs(300)).scopes(["data:read"]))
        .await
        .unwrap();
    let auth = format!("Bearer {}", issued.token.expose());
    let who = whoami(srv.url(), &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(who["subject"], "carol");
    assert!(srv.tokens.revoke(issued.token.expose()).await.unwrap());
    let before = srv.reached.load(Ordering::SeqCst);
    let res = post(&srv, &[("authorization", auth.as_bytes())]).await;
    assert_eq!(res.status, 401);
    assert_eq!(
        res.challenge[0],
        "Bearer error=\"invalid_token\", error_description=\"invalid access token\""
    );
    assert_eq!(srv.reached.load(Ordering::SeqCst), before);
}

// --- raw HTTP: exact statuses and challenges ----------------------------------------------

struct Reply {
    status: u16,
    challenge: Vec<String>,
    headers: http::HeaderMap,
    body: String,
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

async fn post_to(srv: &Server, path_and_query: &str, headers: &[(&str, &[u8])]) -> Reply {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("http://{}{path_and_query}", srv.addr))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT);
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v).unwrap(),
        );
    }
    req = req.headers(map);
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let headers = res.headers().clone();
    let body = res.text().await.unwrap();
    Reply {
        status,
        challenge,
        headers,
        body,
    }
}

async fn post(srv: &Server, headers: &[(&str, &[u8])]) -> Reply {
    post_to(srv, "/mcp", headers).await
}

#[tokio::test]
async fn missing_credentials_get_401_with_both_challenges_and_no_error_code() {
    let srv = start(&default_env()).await;
    let res = post(&srv, &[]).await;
    assert_eq!(res.status, 401);
    assert_eq!(res.challenge, ["Bearer", "ApiKey header=\"x-api-key\""]);
    assert_eq!(
        res.body,
        r#"{"error":"unauthorized","error_description":"authentication required"}"#
    );
    let basic = post(&srv, &[("authorization", b"Basic dXNlcjpwYXNz")]).await;
    assert_eq!((basic.status, basic.challenge.len()), (401, 2));
    assert_eq!(srv.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn invalid_and_expired_api_keys_get_identical_invalid_token_responses() {
    let srv = start(&default_env()).await;
    let unknown = post(&srv, &[("x-api-key", b"key-alice-0123456789abcdeX")]).await;
    let expired = post(&srv, &[("x-api-key", EXPIRED_KEY.as_bytes())]).await;
    for r in [&unknown, &expired] {
        assert_eq!(r.status, 401);
        assert_eq!(
            r.challenge[0],
            "Bearer error=\"invalid_token\", error_description=\"invalid API key\""
        );
    }
    assert_eq!(
        (unknown.challenge, unknown.body),
        (expired.challenge, expired.body)
    );
    assert_eq!(srv.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bad_inputs_are_refused_with_the_right_status_before_reaching_the_server() {
    let srv = start(&default_env()).await;
    let long = {
        let mut v = b"Bearer ".to_vec();
        v.extend(std::iter::repeat_n(b'a', 64 * 1024));
        v
    };
    // (name, headers, expected status, expected error code)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a [u8])>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "two Authorization headers",
            vec![
                ("authorization", b"Bearer token-bob-0123456789abcdef"),
                ("authorization", b"Bearer x"),
            ],
            400,
            "invalid_request",
        ),
        (
            "empty bearer token",
            vec![("authorization", b"Bearer ")],
            401,
            "invalid_token",
        ),
        (
            "bare Bearer",
            vec![("authorization", b"Bearer")],
            401,
            "invalid_token",
        ),
        (
            "token with inner space",
            vec![("authorization", b"Bearer token-bob 0123456789abcdef")],
            401,
            "invalid_token",
        ),
        (
            "non-ASCII bearer",
            vec![("authorization", b"Bearer token-bob-\xc3\xa9")],
            401,
            "invalid_token",
        ),
        (
            "non-ASCII api key",
            vec![("x-api-key", b"key-alice-\xff\xfe")],
            401,
            "invalid_token",
        ),
        (
            "empty api key",
            vec![("x-api-key", b"")],
            401,
            "invalid_token",
        ),
        (
            "two api key headers",
            vec![("x-api-key", KEY.as_bytes()), ("x-api-key", KEY.as_bytes())],
            400,
            "invalid_request",
        ),
        (
            "64 KiB header",
            vec![("authorization", &long)],
            401,
            "invalid_token",
        ),
    ];
    for (name, headers, status, code) in cases {
        let res = post(&srv, &headers).await;
        assert_eq!(res.status, status, "{name}");
        assert_challenge(&res.headers, "Bearer").first().error(code);
        assert!(
            !res.body.contains("token-bob") && !res.body.contains("key-alice"),
            "{name}"
        );
    }
    assert_eq!(srv.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn query_string_token_is_a_bad_request_even_with_a_valid_header() {
    let srv = start(&default_env()).await;
    let auth = format!("Bearer {TOKEN}");
    let res = post_to(
        &srv,
        "/mcp?access_token=token-bob-0123456789abcdef",
        &[("authorization", auth.as_bytes())],
    )
    .await;
    assert_eq!(res.status, 400);
    assert_challenge(&res.headers, "Bearer")
        .first()
        .error("invalid_request");
    assert_eq!(srv.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn scheme_case_does_not_matter() {
    let srv = start(&default_env()).await;
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let v = format!("{scheme} {TOKEN}");
        let res = post(&srv, &[("authorization", v.as_bytes())]).await;
        assert_eq!(res.status, 200, "{scheme}: {}", res.body);
    }
    assert_eq!(srv.reached.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn env_key_with_trailing_newline_is_trimmed() {
    let srv = start(&[("MCP_API_KEYS", "key-alice-0123456789abcdef\n")]).await;
    let res = post(&srv, &[("x-api-key", KEY.as_bytes())]).await;
    assert_eq!(res.status, 200, "{}", res.body);
}

#[tokio::test]
async fn invalid_environment_reports_every_problem_without_values() {
    let env = EnvReader::from_pairs([
        (
            "MCP_API_KEYS",
            "short, ,key-alice-0123456789abcdef;exp=never",
        ),
        ("MCP_AUTH_TOKENS", "has space 0123456789abcdef"),
        ("MCP_BIND", "nowhere"),
    ]);
    let err = example::load_config(env).expect_err("config must fail");
    let text = err.to_string();
    assert_eq!(err.problems().len(), 5, "{text}");
    for var in ["MCP_API_KEYS", "MCP_AUTH_TOKENS", "MCP_BIND"] {
        assert!(text.contains(var), "{text}");
    }
    assert!(
        !text.contains("key-alice") && !text.contains("has space"),
        "{text}"
    );
}

#[tokio::test]
async fn cors_preflight_passes_without_credentials_and_401_exposes_the_challenge() {
    let srv = start(&default_env()).await;
    let client = reqwest::Client::new();
    let pre = client
        .request(reqwest::Method::OPTIONS, srv.url())
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );
    let res = client
        .post(srv.url())
        .header("origin", "http://localhost:6274")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    assert_eq!(srv.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn get_and_delete_need_credentials_too() {
    let srv = start(&default_env()).await;
    let client = reqwest::Client::new();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::DELETE,
        reqwest::Method::HEAD,
    ] {
        let res = client
            .request(method.clone(), srv.url())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method}");
    }
    assert_eq!(srv.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn jwts_signed_with_the_configured_secret_work_beside_static_tokens() {
    use mcp_auth::authenticators::jwt::{Algorithm, JwtMinter};
    const SECRET: &str = "example-hmac-secret-0123456789abcdef";
    const AUD: &str = "https://mcp.example.com/mcp";
    let srv = start(&[
        ("MCP_AUTH_TOKENS", "token-bob-0123456789abcdef;sub=bob"),
        ("MCP_JWT_SECRET", SECRET),
        ("MCP_JWT_AUDIENCE", AUD),
    ])
    .await;
    let minter = JwtMinter::hmac(SECRET, Algorithm::HS256).unwrap();
    let token = minter
        .clone()
        .audience(AUD)
        .mint("carol", ["data:read"])
        .unwrap();
    let who = whoami(srv.url(), &[("authorization", &format!("Bearer {token}"))])
        .await
        .unwrap();
    assert_eq!(who["subject"], "carol");
    assert_eq!(who["method"], "jwt");
    assert_eq!(who["scopes"], serde_json::json!(["data:read"]));
    // Static tokens are looked up first and still work.
    let who = whoami(srv.url(), &[("authorization", &format!("Bearer {TOKEN}"))])
        .await
        .unwrap();
    assert_eq!(who["subject"], "bob");

    let reached = srv.reached.load(Ordering::SeqCst);
    let other = minter
        .audience("https://other.example.com/mcp")
        .mint("carol", ["data:read"])
        .unwrap();
    for bad in [other.as_str(), "opaque-unknown-token-0000", "a.b.c"] {
        let v = format!("Bearer {bad}");
        let res = post(&srv, &[("authorization", v.as_bytes())]).await;
        assert_eq!(res.status, 401, "{bad}");
        assert_eq!(
            res.challenge[0],
            "Bearer error=\"invalid_token\", error_description=\"invalid access token\""
        );
    }
    assert_eq!(srv.reached.load(Ordering::SeqCst), reached);
}

#[tokio::test]
async fn a_short_jwt_secret_is_a_config_error_naming_the_variable() {
    let err = example::load_config(EnvReader::from_pairs([("MCP_JWT_SECRET", "short")]))
        .err()
        .unwrap();
    assert!(err.to_string().contains("MCP_JWT_SECRET"), "{err}");
    assert!(
        !err.to_string().contains("short,") && !err.to_string().contains(": short"),
        "{err}"
    );
}

/// A file in the system temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "mcp-auth-example-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const ODD_KEY: &str = "k,ey;with=odd-chars-0123456789";

#[tokio::test]
async fn api_keys_file_holds_keys_with_comma_and_semicolon() {
    // Review L9: such a key cannot be written in MCP_API_KEYS; in the file it works whole.
    let file = TempFile::new(
        "keys",
        &format!("# keys\n{ODD_KEY} sub=carol;scopes=data:read\r\n\n{KEY} ;sub=alice\n"),
    );
    let tokens = TempFile::new("tokens", &format!("{TOKEN} sub=bob\n"));
    let srv = start(&[
        ("MCP_API_KEYS_FILE", file.path()),
        ("MCP_AUTH_TOKENS_FILE", tokens.path()),
    ])
    .await;
    let who = whoami(srv.url(), &[("x-api-key", ODD_KEY)]).await.unwrap();
    assert_eq!(who["subject"], "carol");
    assert_eq!(who["scopes"], serde_json::json!(["data:read"]));
    let who = whoami(srv.url(), &[("x-api-key", KEY)]).await.unwrap();
    assert_eq!(who["subject"], "alice");
    let auth = format!("Bearer {TOKEN}");
    let who = whoami(srv.url(), &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(who["subject"], "bob");
    // Neither half of the odd key is a key.
    for half in ODD_KEY.split([',', ';']) {
        let res = post(&srv, &[("x-api-key", half.as_bytes())]).await;
        assert_eq!(res.status, 401, "{half}");
    }
}

#[tokio::test]
async fn api_key_with_comma_or_semicolon_in_the_variable_is_refused_without_its_fragments() {
    // Review L9: the variable's syntax splits at `,` and `;`; the error never echoes a part.
    for value in [
        "short-half,QJWQJWQJWQJWQJWQJW-fragment".to_owned(),
        "QJWQJWQJWQJWQJWQJW;QJWfragment=1".to_owned(),
        "QJWQJWQJWQJWQJWQJW;QJWQJWQJWQJWQJWQJWQJW".to_owned(),
        format!("{ODD_KEY};sub=carol"),
    ] {
        let env = EnvReader::from_pairs([("MCP_API_KEYS", value.as_str())]);
        let err = example::load_config(env).expect_err("config must fail");
        let text = err.to_string();
        assert!(text.contains("MCP_API_KEYS: entry "), "{text}");
        for fragment in value.split([',', ';', '=']) {
            if fragment.len() >= 4 && !["scopes", "roles"].contains(&fragment) {
                assert!(!text.contains(fragment), "{fragment:?} in {text}");
            }
        }
        assert!(!text.contains("QJW"), "{text}");
    }
}

#[tokio::test]
async fn secret_file_problems_name_the_variable_never_the_contents() {
    let file = TempFile::new("bad", "QJWQJW-not-long\n");
    let env = EnvReader::from_pairs([
        ("MCP_API_KEYS_FILE", file.path()),
        ("MCP_AUTH_TOKENS", TOKEN),
        ("MCP_AUTH_TOKENS_FILE", "/nonexistent/mcp-auth-tokens"),
    ]);
    let err = example::load_config(env).expect_err("config must fail");
    let text = err.to_string();
    assert!(
        text.contains("MCP_API_KEYS_FILE: line 1: the secret is shorter than 16 characters"),
        "{text}"
    );
    assert!(
        text.contains("MCP_AUTH_TOKENS: set MCP_AUTH_TOKENS or MCP_AUTH_TOKENS_FILE, not both"),
        "{text}"
    );
    assert!(!text.contains("QJW") && !text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn credentials_in_the_query_are_refused_on_the_api_key_path() {
    // Review I3 / README R8: `?access_token=` or `?api_key=` next to a valid X-API-Key was
    // ignored (200); now 400 like the bearer path, before the MCP service.
    let srv = start(&default_env()).await;
    for query in [
        "/mcp?access_token=abc",
        "/mcp?api_key=key-alice-0123456789abcdef",
        "/mcp?api%5Fkey=x",
        "/mcp?ACCESS%5ftoken",
    ] {
        let res = post_to(&srv, query, &[("x-api-key", KEY.as_bytes())]).await;
        assert_eq!(res.status, 400, "{query}: {}", res.body);
        assert_challenge(&res.headers, "Bearer")
            .first()
            .error("invalid_request");
    }
    assert_eq!(srv.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_jwt_and_introspection_secrets_can_come_from_files() {
    // Issue 10 (L9): every secret has a `*_FILE` variable, so none has to sit in the
    // environment. A JWT minted with the secret read from MCP_JWT_SECRET_FILE is accepted.
    use mcp_auth::authenticators::jwt::{Algorithm, JwtMinter};
    const SECRET: &str = "file-hmac-secret-0123456789abcdef-xyz";
    const AUD: &str = "https://mcp.example.com/mcp";
    let file = TempFile::new("jwt-secret", &format!("{SECRET}\n"));
    let srv = start(&[
        ("MCP_JWT_SECRET_FILE", file.path()),
        ("MCP_JWT_AUDIENCE", AUD),
    ])
    .await;
    let token = JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .audience(AUD)
        .mint("dana", ["data:read"])
        .unwrap();
    let who = whoami(srv.url(), &[("authorization", &format!("Bearer {token}"))])
        .await
        .unwrap();
    assert_eq!(who["subject"], "dana");

    // Setting both the variable and its file is refused, and neither value is echoed.
    let err = example::load_config(EnvReader::from_pairs([
        ("MCP_JWT_SECRET", "env-hmac-secret-0123456789abcdef-QQQ"),
        ("MCP_JWT_SECRET_FILE", file.path()),
    ]))
    .expect_err("both set must fail");
    let text = err.to_string();
    assert!(text.contains("MCP_JWT_SECRET"), "{text}");
    assert!(!text.contains("QQQ") && !text.contains(SECRET), "{text}");

    // The introspection client secret: a missing file is a problem naming MCP_..._FILE.
    let err = example::load_config(EnvReader::from_pairs([
        ("MCP_INTROSPECTION_URL", "http://127.0.0.1:9/introspect"),
        ("MCP_INTROSPECTION_CLIENT_ID", "rs"),
        (
            "MCP_INTROSPECTION_CLIENT_SECRET_FILE",
            "/nonexistent/mcp-auth-introspection-secret",
        ),
    ]))
    .expect_err("an unreadable secret file must fail");
    assert!(
        err.to_string()
            .contains("MCP_INTROSPECTION_CLIENT_SECRET_FILE"),
        "{err}"
    );
    let secret_file = TempFile::new("introspection-secret", "rs-secret-0123456789\n");
    example::load_config(EnvReader::from_pairs([
        ("MCP_INTROSPECTION_URL", "http://127.0.0.1:9/introspect"),
        ("MCP_INTROSPECTION_CLIENT_ID", "rs"),
        ("MCP_INTROSPECTION_CLIENT_SECRET_FILE", secret_file.path()),
        ("MCP_AUTHORIZATION_SERVERS", "http://127.0.0.1:9"),
    ]))
    .expect("the introspection secret read from its file");
}

/// A refusal sent before the request body was read says `Connection: close`: the server
/// closes such a connection, and a client that reused it would see it drop (seen as
/// "Server disconnected without sending a response" in the Python SDK under load).
#[tokio::test]
async fn a_refusal_before_the_body_was_read_closes_the_connection_and_says_so() {
    let srv = start(&[("MCP_AUTH_TOKENS", "tok-alice-0123456789abcdef;sub=alice")]).await;
    let http = reqwest::Client::new();
    let post = http
        .post(srv.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
    assert_eq!(post.headers()["connection"], "close");
    // The Origin guard's refusal too.
    let foreign = http
        .post(srv.url())
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert_eq!(foreign.headers()["connection"], "close");
    // A request without a body keeps its connection.
    let get = http.get(srv.url()).send().await.unwrap();
    assert_eq!(get.status(), 401);
    assert!(get.headers().get("connection").is_none());
}
