use super::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Verifies `token` against the server's JWKS (as served), returning header and claims.
async fn verify(server: &MockAuthServer, token: &str) -> (jsonwebtoken::Header, Value) {
    let jwks: JwkSet = client()
        .get(server.jwks_uri())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.validate_aud = false;
    validation.validate_exp = false;
    let data =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap();
    (data.header, data.claims)
}

async fn introspect(server: &MockAuthServer, token: &str) -> Value {
    let (id, secret) = server.introspection_client();
    let res = client()
        .post(server.introspection_endpoint())
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn now() -> i64 {
    unix_seconds(SystemTime::now())
}

#[tokio::test]
async fn serves_metadata_at_both_well_known_paths_on_loopback() {
    let server = MockAuthServer::start().await;
    assert!(
        server.issuer().starts_with("http://127.0.0.1:"),
        "{}",
        server.issuer()
    );
    for path in [OAUTH_METADATA_PATH, OPENID_CONFIGURATION_PATH] {
        let res = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/json");
        let meta: Value = res.json().await.unwrap();
        assert_eq!(meta["issuer"], server.issuer());
        assert_eq!(meta["jwks_uri"], server.jwks_uri());
        assert_eq!(
            meta["introspection_endpoint"],
            server.introspection_endpoint()
        );
        assert_eq!(meta["token_endpoint"], server.token_endpoint());
        assert!(
            meta["dpop_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&"ES256".into())
        );
        assert_eq!(meta, server.metadata());
        assert_eq!(server.requests(path), 1);
    }
    let res = client().get(server.url("/nothing")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = client().post(server.jwks_uri()).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(server.requests("/nothing"), 1);
    assert_eq!(server.requests(JWKS_PATH), 1);
    assert_eq!(server.requests("/never"), 0);
}

#[tokio::test]
async fn jwks_publishes_both_algorithms_and_rotation_keeps_old_keys() {
    let server = MockAuthServer::start().await;
    let jwks = server.jwks();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none(), "{key}");
        assert!(key["kid"].is_string());
    }
    let es1 = server.current_kid(Algorithm::ES256).unwrap();
    let rs1 = server.current_kid(Algorithm::RS256).unwrap();
    let old_token = server.token().jwt();

    let new = server.rotate_keys();
    assert_eq!(new.len(), 2);
    assert_eq!(server.key_ids().len(), 4);
    let es2 = server.current_kid(Algorithm::ES256).unwrap();
    assert_ne!(es1, es2);
    assert!(new.contains(&es2));
    let new_token = server.token().jwt();
    let (header, _) = verify(&server, &new_token).await;
    assert_eq!(header.kid.as_deref(), Some(es2.as_str()));
    // The old key is still published: old tokens still verify.
    let (header, _) = verify(&server, &old_token).await;
    assert_eq!(header.kid.as_deref(), Some(es1.as_str()));

    assert!(server.remove_key(&es1));
    assert!(!server.remove_key(&es1));
    assert_eq!(server.key_ids(), vec![rs1, new[0].clone(), new[1].clone()]);
    let served: Value = client()
        .get(server.jwks_uri())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["keys"].as_array().unwrap().len(), 3);
    assert!(!served.to_string().contains(&es1));
}

#[tokio::test]
async fn minted_jwts_carry_what_was_set() {
    let server = MockAuthServer::start().await;
    let (header, claims) = verify(&server, &server.token().jwt()).await;
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(claims["iss"], server.issuer());
    assert_eq!(claims["sub"], DEFAULT_SUBJECT);
    assert_eq!(claims["client_id"], DEFAULT_CLIENT_ID);
    assert!(claims.get("aud").is_none() && claims.get("scope").is_none());
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - now()).abs() <= 2);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 3600);
    assert!(claims["jti"].as_str().unwrap().len() >= 16);

    let dpop = DpopKey::es256();
    let nbf = SystemTime::now() + Duration::from_secs(60);
    let token = server
        .token()
        .subject("alice")
        .audience(vec!["https://a.example/mcp", "https://b.example/mcp"])
        .scopes(["data:read", "data:write"])
        .client_id("app")
        .claim("roles", json!(["admin"]))
        .expires_in(Duration::from_secs(120))
        .not_before(nbf)
        .dpop_bound(&dpop)
        .cnf_x5t_s256("x5t-value")
        .typ_at_jwt()
        .algorithm(Algorithm::RS256)
        .without("jti")
        .jwt();
    let (header, claims) = verify(&server, &token).await;
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid, server.current_kid(Algorithm::RS256));
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["aud"],
        json!(["https://a.example/mcp", "https://b.example/mcp"])
    );
    assert_eq!(claims["scope"], "data:read data:write");
    assert_eq!(claims["client_id"], "app");
    assert_eq!(claims["roles"], json!(["admin"]));
    assert_eq!(claims["nbf"].as_i64().unwrap(), unix_seconds(nbf));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    assert_eq!(
        claims["cnf"],
        json!({"jkt": dpop.thumbprint(), "x5t#S256": "x5t-value"})
    );
    assert!(claims.get("jti").is_none());

    let (_, claims) = verify(
        &server,
        &server.token().audience("https://a/").expired().jwt(),
    )
    .await;
    assert_eq!(claims["aud"], "https://a/");
    assert!(claims["exp"].as_i64().unwrap() <= now() - 600);
    assert!(claims["iat"].as_i64().unwrap() < claims["exp"].as_i64().unwrap());

    // issued_at moves exp along; kid overrides the header's.
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let token = server.token().issued_at(at).kid("unpublished").jwt();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("unpublished"));
    let claims = payload(&token);
    assert_eq!(claims["iat"], 1_000_000_000);
    assert_eq!(claims["exp"], 1_000_003_600);
}

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn introspection_needs_client_authentication() {
    let server = MockAuthServer::start().await;
    let token = server.token().opaque();
    let res = client()
        .post(server.introspection_endpoint())
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let (id, secret) = server.introspection_client();
    let res = client()
        .post(server.introspection_endpoint())
        .basic_auth(&id, Some("wrong"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // client_secret_post works too; both at once is refused.
    let post = [
        ("token", token.as_str()),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let res = client()
        .post(server.introspection_endpoint())
        .form(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["active"], true);
    let res = client()
        .post(server.introspection_endpoint())
        .basic_auth(&id, Some(&secret))
        .form(&post)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // No token: 400.
    let res = client()
        .post(server.introspection_endpoint())
        .basic_auth(&id, Some(&secret))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(server.requests(INTROSPECTION_PATH), 5);
}

#[tokio::test]
async fn introspection_answers_active_only_for_live_known_tokens() {
    let server = MockAuthServer::start().await;
    let key = DpopKey::es256();
    let opaque = server
        .token()
        .subject("bob")
        .audience("https://mcp.example/mcp")
        .scopes(["a", "b"])
        .dpop_bound(&key)
        .opaque();
    assert!(opaque.starts_with("mock_"));
    let answer = introspect(&server, &opaque).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], "bob");
    assert_eq!(answer["aud"], "https://mcp.example/mcp");
    assert_eq!(answer["scope"], "a b");
    assert_eq!(answer["iss"], server.issuer());
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["cnf"]["jkt"], key.thumbprint());
    assert!(answer["exp"].as_i64().unwrap() > now());

    // JWTs minted here are known too.
    let jwt = server.token().jwt();
    let answer = introspect(&server, &jwt).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "Bearer");

    server.revoke(&opaque);
    assert_eq!(introspect(&server, &opaque).await, json!({"active": false}));
    server.revoke(&jwt);
    assert_eq!(introspect(&server, &jwt).await, json!({"active": false}));
    assert_eq!(
        introspect(&server, "never-minted").await,
        json!({"active": false})
    );
    let expired = server.token().expired().opaque();
    assert_eq!(
        introspect(&server, &expired).await,
        json!({"active": false})
    );
    let later = server
        .token()
        .not_before(SystemTime::now() + Duration::from_secs(600))
        .opaque();
    assert_eq!(introspect(&server, &later).await, json!({"active": false}));
}

async fn token_request(
    server: &MockAuthServer,
    client: (&str, &str),
    form: &[(&str, &str)],
    proofs: &[&str],
) -> reqwest::Response {
    let mut req = self::client()
        .post(server.token_endpoint())
        .basic_auth(client.0, Some(client.1))
        .form(form);
    for proof in proofs {
        req = req.header("dpop", *proof);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn token_endpoint_issues_client_credentials_tokens() {
    let server = MockAuthServer::start().await;
    server.register_client("svc", "svc-secret");
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "data:read tools:call"),
        ("resource", "https://mcp.example/mcp"),
    ];
    let res = token_request(&server, ("svc", "svc-secret"), &form, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    assert_eq!(answer["scope"], "data:read tools:call");
    let token = answer["access_token"].as_str().unwrap();
    let (header, claims) = verify(&server, token).await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["client_id"], "svc");
    assert_eq!(claims["aud"], "https://mcp.example/mcp");
    assert_eq!(claims["scope"], "data:read tools:call");
    assert!(claims.get("cnf").is_none());
    assert_eq!(introspect(&server, token).await["active"], true);

    // Two resources: an audience list.
    let form = [
        ("grant_type", "client_credentials"),
        ("resource", "https://a/"),
        ("resource", "https://b/"),
    ];
    let answer: Value = token_request(&server, ("svc", "svc-secret"), &form, &[])
        .await
        .json()
        .await
        .unwrap();
    let claims = payload(answer["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], json!(["https://a/", "https://b/"]));
    assert!(claims.get("scope").is_none());

    let grant = [("grant_type", "client_credentials")];
    let res = token_request(&server, ("svc", "wrong"), &grant, &[]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let res = token_request(&server, ("nobody", "x"), &grant, &[]).await;
    assert_eq!(res.status(), 401);
    let res = token_request(
        &server,
        ("svc", "svc-secret"),
        &[("grant_type", "password")],
        &[],
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let twice = [
        ("grant_type", "client_credentials"),
        ("grant_type", "client_credentials"),
    ];
    let res = token_request(&server, ("svc", "svc-secret"), &twice, &[]).await;
    assert_eq!(res.status(), 400);
    let res = token_request(&server, ("svc", "svc-secret"), &[], &[]).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn token_endpoint_binds_tokens_to_a_valid_dpop_proof() {
    let server = MockAuthServer::start().await;
    server.register_client("svc", "pw");
    let grant = [("grant_type", "client_credentials")];
    let key = DpopKey::es256();
    let url = server.token_endpoint();

    let proof = key.proof("POST", &url).sign();
    let res = token_request(&server, ("svc", "pw"), &grant, &[&proof]).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["token_type"], "DPoP");
    let claims = payload(answer["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"], json!({"jkt": key.thumbprint()}));

    // An RSA proof key works as well.
    let rsa = DpopKey::generate(Algorithm::PS256).unwrap();
    let proof = rsa.proof("POST", &url).sign();
    let answer: Value = token_request(&server, ("svc", "pw"), &grant, &[&proof])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        payload(answer["access_token"].as_str().unwrap())["cnf"]["jkt"],
        rsa.thumbprint()
    );

    let other = DpopKey::es256();
    let bad = [
        ("alg none", key.proof("POST", &url).sign_alg_none()),
        ("hmac", key.proof("POST", &url).sign_hmac(&[7; 32])),
        ("tampered", key.proof("POST", &url).sign_tampered()),
        (
            "private jwk",
            key.proof("POST", &url).with_private_jwk().sign(),
        ),
        (
            "other jwk",
            key.proof("POST", &url)
                .header_jwk(other.public_jwk())
                .sign(),
        ),
        ("typ", key.proof("POST", &url).typ("jwt").sign()),
        ("htm", key.proof("GET", &url).sign()),
        ("htu", key.proof("POST", &server.url("/other")).sign()),
        ("old", key.proof("POST", &url).iat_offset(-3600).sign()),
        ("no jti", key.proof("POST", &url).without("jti").sign()),
        ("no iat", key.proof("POST", &url).without("iat").sign()),
        ("garbage", "not-a-proof".to_owned()),
    ];
    for (what, proof) in &bad {
        let res = token_request(&server, ("svc", "pw"), &grant, &[proof]).await;
        assert_eq!(res.status(), 400, "{what}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["error"],
            "invalid_dpop_proof",
            "{what}"
        );
    }
    let good = key.proof("POST", &url).sign();
    let res = token_request(&server, ("svc", "pw"), &grant, &[&good, &good]).await;
    assert_eq!(res.status(), 400, "two DPoP headers");
}

#[tokio::test]
async fn set_down_makes_every_endpoint_answer_503() {
    let server = MockAuthServer::start().await;
    server.set_down(true);
    for path in [OPENID_CONFIGURATION_PATH, JWKS_PATH, "/anything"] {
        let res = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 503, "{path}");
    }
    let (id, secret) = server.introspection_client();
    let res = client()
        .post(server.introspection_endpoint())
        .basic_auth(id, Some(secret))
        .form(&[("token", "t")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(server.requests(JWKS_PATH), 1, "counted while down");
    server.set_down(false);
    let res = client().get(server.jwks_uri()).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn shutdown_and_drop_stop_serving() {
    let server = MockAuthServer::start().await;
    let url = server.jwks_uri();
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    server.shutdown().await;
    // A new client: no pooled connection.
    assert!(client().get(&url).send().await.is_err());

    let server = MockAuthServer::start().await;
    let url = server.jwks_uri();
    drop(server);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match client().get(&url).send().await {
            Err(_) => break,
            Ok(res) => assert_eq!(res.status(), 503, "answers only 503 once dropped"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still serving 5 s after drop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn debug_shows_no_secret() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = MockAuthServer::start().await;
        let (_, secret) = server.introspection_client();
        let debug = format!("{server:?} {:?}", server.token());
        assert!(!debug.contains(&secret), "{debug}");
        assert!(debug.contains(server.issuer()));
    });
}
