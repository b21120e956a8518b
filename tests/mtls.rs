//! Client certificates (RFC 8705) through the example server on loopback: HTTPS with
//! `MCP_TLS_CLIENT_CA`, certificate-bound JWTs (`cnf.x5t#S256`), the client-certificate
//! authenticator (`MCP_CLIENT_CERT_SUBJECTS`), and certificates passed on by a trusted proxy
//! (`MCP_CLIENT_CERT_HEADER`). Clients are reqwest (rustls, `Identity::from_pem`) and rmcp's
//! MCP client over the same reqwest. Every certificate is made here with rcgen.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use mcp_auth::authenticators::jwt::{Algorithm, JwtMinter};
use mcp_auth::request_info::ClientCertificate;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use support::{Server, start_with};

const SPIFFE: &str = "spiffe://example.org/ns/test/sa/agent";
const JWT_SECRET: &str = "mtls-test-secret-0123456789abcdef-0123";
const ISSUER: &str = "https://as.example.com";
const BOB_KEY: &str = "key-bob-0123456789abcdef";

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl Pem {
    /// The `x5t#S256` thumbprint of the certificate.
    fn thumbprint(&self) -> String {
        ClientCertificate::from_der(self.der.clone())
            .x5t_s256()
            .to_owned()
    }

    /// For `Identity::from_pem`: the certificate, then its key.
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes()).unwrap()
    }
}

/// Two CAs, a server certificate for 127.0.0.1/localhost and client certificates, written to
/// a directory of their own (removed on drop).
struct Pki {
    dir: PathBuf,
    ca: String,
    /// SAN URI (a SPIFFE ID) and CN `agent`.
    spiffe: Pem,
    /// CN `laptop-7` only.
    laptop: Pem,
    /// CN `stranger`: signed by the CA, listed nowhere.
    stranger: Pem,
    /// CN `laptop-7`, signed by another CA.
    foreign: Pem,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn client(ca: &CertifiedIssuer<'static, KeyPair>, cn: &str, sans: Vec<SanType>) -> Pem {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn pki() -> Pki {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mcp-auth-mtls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let authority = ca("mcp-auth test CA");
    let other = ca("another CA");
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "mcp server on loopback");
    let key = KeyPair::generate().unwrap();
    let server = params.signed_by(&key, &authority).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), authority.pem()).unwrap();
    Pki {
        ca: authority.pem(),
        spiffe: client(
            &authority,
            "agent",
            vec![SanType::URI(SPIFFE.try_into().unwrap())],
        ),
        laptop: client(&authority, "laptop-7", vec![]),
        stranger: client(&authority, "stranger", vec![]),
        foreign: client(&other, "laptop-7", vec![]),
        dir,
    }
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    /// `MCP_TLS_*` for HTTPS asking for client certificates, plus `extra`.
    fn tls_env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = vec![
            ("MCP_TLS_CERT".to_owned(), self.path("server.pem")),
            ("MCP_TLS_KEY".to_owned(), self.path("server.key")),
            ("MCP_TLS_CLIENT_CA".to_owned(), self.path("ca.pem")),
        ];
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env
    }

    /// A client trusting only the test CA, presenting `identity` if given.
    fn http(&self, identity: Option<&Pem>) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca.as_bytes()).unwrap()])
            .timeout(Duration::from_secs(10));
        if let Some(id) = identity {
            b = b.identity(id.identity());
        }
        b.build().unwrap()
    }
}

async fn start_tls(pki: &Pki, extra: &[(&str, &str)]) -> Server {
    let env = pki.tls_env(extra);
    start_with(move |_| env).await
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// POSTs `body` to the server's endpoint; the status and `WWW-Authenticate`, or the
/// transport error (a refused handshake).
async fn post_body(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), reqwest::Error> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await?;
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Ok((res.status().as_u16(), challenge))
}

async fn init(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<u16, reqwest::Error> {
    post_body(http, url, headers, INIT).await.map(|(s, _)| s)
}

/// A JWT from `MCP_JWT_SECRET` for `audience`, bound to `thumbprint` when given.
fn jwt(audience: &str, thumbprint: Option<&str>) -> String {
    let minter = JwtMinter::hmac(JWT_SECRET, Algorithm::HS256)
        .unwrap()
        .issuer(ISSUER)
        .audience(audience);
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!("carol"));
    claims.insert("scope".into(), json!("data:read"));
    if let Some(t) = thumbprint {
        claims.insert("cnf".into(), json!({ "x5t#S256": t }));
    }
    minter.mint_claims(claims).unwrap()
}

fn jwt_env() -> [(&'static str, &'static str); 2] {
    [("MCP_JWT_SECRET", JWT_SECRET), ("MCP_JWT_ISSUER", ISSUER)]
}

/// rmcp's MCP client over `http`, with `headers`, calling `whoami`.
async fn whoami(
    http: reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Value, String> {
    let map: HashMap<HeaderName, HeaderValue> = headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(map),
    );
    let client = ClientConfig::default()
        .serve(transport)
        .await
        .map_err(|e| e.to_string())?;
    let result = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .map_err(|e| e.to_string())?;
    let _ = client.cancel().await;
    let text = result.content[0].as_text().expect("text").text.clone();
    Ok(serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn a_certificate_bound_token_works_only_over_a_connection_with_that_certificate() {
    let pki = pki();
    let srv = start_tls(&pki, &jwt_env()).await;
    let url = srv.url();
    assert!(url.starts_with("https://"));
    let bound = format!("Bearer {}", jwt(&url, Some(&pki.spiffe.thumbprint())));
    let unbound = format!("Bearer {}", jwt(&url, None));
    let with_spiffe = pki.http(Some(&pki.spiffe));
    let with_laptop = pki.http(Some(&pki.laptop));
    let without = pki.http(None);
    let b = [("authorization", bound.as_str())];
    let u = [("authorization", unbound.as_str())];
    assert_eq!(init(&with_spiffe, &url, &b).await.unwrap(), 200);
    assert_eq!(init(&without, &url, &b).await.unwrap(), 401);
    assert_eq!(init(&with_laptop, &url, &b).await.unwrap(), 401);
    assert_eq!(init(&with_spiffe, &url, &u).await.unwrap(), 200);
    assert_eq!(init(&without, &url, &u).await.unwrap(), 200);
    let (status, challenge) = post_body(&without, &url, &b, INIT).await.unwrap();
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    // rmcp's client, end to end, on the certificate's connection.
    let who = whoami(pki.http(Some(&pki.spiffe)), &url, &b).await.unwrap();
    assert_eq!(who["subject"], "carol");
    assert_eq!(who["method"], "jwt");
    let err = whoami(pki.http(Some(&pki.laptop)), &url, &b)
        .await
        .unwrap_err();
    assert!(err.to_lowercase().contains("auth"), "{err}");
}

#[tokio::test]
async fn a_certificate_bound_opaque_token_is_checked_through_introspection() {
    let pki = pki();
    let mock = mcp_auth::testing::MockAuthServer::start().await;
    let (client, secret) = mock.introspection_client();
    let (issuer, introspect) = (mock.issuer().to_owned(), mock.introspection_endpoint());
    let srv = start_tls(
        &pki,
        &[
            ("MCP_AUTHORIZATION_SERVERS", issuer.as_str()),
            ("MCP_INTROSPECTION_URL", introspect.as_str()),
            ("MCP_INTROSPECTION_CLIENT_ID", client.as_str()),
            ("MCP_INTROSPECTION_CLIENT_SECRET", secret.as_str()),
        ],
    )
    .await;
    let url = srv.url();
    // The introspection answer carries the token's `cnf` (`x5t#S256`), as a real AS's does.
    let opaque = |thumbprint: Option<&str>| {
        let token = mock
            .token()
            .subject("carol")
            .audience(url.as_str())
            .scopes(["data:read"]);
        match thumbprint {
            Some(t) => token.cnf_x5t_s256(t),
            None => token,
        }
        .opaque()
    };
    let bound = format!("Bearer {}", opaque(Some(&pki.spiffe.thumbprint())));
    let unbound = format!("Bearer {}", opaque(None));
    let b = [("authorization", bound.as_str())];
    let u = [("authorization", unbound.as_str())];
    assert_eq!(
        init(&pki.http(Some(&pki.spiffe)), &url, &b).await.unwrap(),
        200
    );
    assert_eq!(init(&pki.http(None), &url, &b).await.unwrap(), 401);
    assert_eq!(
        init(&pki.http(Some(&pki.laptop)), &url, &b).await.unwrap(),
        401
    );
    assert_eq!(init(&pki.http(None), &url, &u).await.unwrap(), 200);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_in_the_handshake_and_the_server_goes_on() {
    let pki = pki();
    let srv = start_tls(&pki, &jwt_env()).await;
    let url = srv.url();
    let unbound = format!("Bearer {}", jwt(&url, None));
    let headers = [("authorization", unbound.as_str())];
    for _ in 0..3 {
        let err = init(&pki.http(Some(&pki.foreign)), &url, &headers)
            .await
            .unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err:?}");
    }
    // Plain HTTP to the TLS port, and a client that stalls in the handshake: neither stops
    // the server.
    let plain = reqwest::Client::new()
        .post(format!("http://{}/mcp", srv.addr))
        .body(INIT)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err());
    let _stalled = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    assert_eq!(init(&pki.http(None), &url, &headers).await.unwrap(), 200);
    assert_eq!(
        init(&pki.http(Some(&pki.laptop)), &url, &headers)
            .await
            .unwrap(),
        200
    );
}

#[tokio::test]
async fn a_stalled_handshake_is_dropped_after_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;
    let pki = pki();
    let srv = start_tls(
        &pki,
        &[
            ("MCP_TLS_HANDSHAKE_TIMEOUT", "1"),
            ("MCP_API_KEYS", BOB_KEY),
        ],
    )
    .await;
    let mut stalled = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    // The server closes the connection (read returns 0 or an error) after about a second.
    let read = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf))
        .await
        .expect("the server dropped the stalled connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let headers = [("x-api-key", BOB_KEY)];
    assert_eq!(
        init(&pki.http(None), &srv.url(), &headers).await.unwrap(),
        200
    );
}

#[tokio::test]
async fn required_client_auth_refuses_a_handshake_without_a_certificate() {
    let pki = pki();
    let srv = start_tls(
        &pki,
        &[
            ("MCP_TLS_CLIENT_AUTH", "required"),
            ("MCP_API_KEYS", BOB_KEY),
        ],
    )
    .await;
    let headers = [("x-api-key", BOB_KEY)];
    let err = init(&pki.http(None), &srv.url(), &headers)
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    assert_eq!(
        init(&pki.http(Some(&pki.laptop)), &srv.url(), &headers)
            .await
            .unwrap(),
        200
    );
}

const SUBJECTS: &str = "spiffe://example.org/ns/test/sa/agent;scopes=data:read;roles=agent, laptop-7;scopes=data:read data:write";

#[tokio::test]
async fn client_certificates_name_the_caller_and_its_scopes() {
    let pki = pki();
    let srv = start_tls(
        &pki,
        &[
            ("MCP_CLIENT_CERT_SUBJECTS", SUBJECTS),
            ("MCP_API_KEYS", "key-bob-0123456789abcdef;sub=bob"),
        ],
    )
    .await;
    let url = srv.url();
    // SAN URI (a SPIFFE ID) first.
    let who = whoami(pki.http(Some(&pki.spiffe)), &url, &[])
        .await
        .unwrap();
    assert_eq!(who["subject"], SPIFFE);
    assert_eq!(who["method"], "client_certificate");
    assert_eq!(who["scopes"], json!(["data:read"]));
    assert_eq!(who["roles"], json!(["agent"]));
    // CN when the certificate has no SAN.
    let who = whoami(pki.http(Some(&pki.laptop)), &url, &[])
        .await
        .unwrap();
    assert_eq!(who["subject"], "laptop-7");
    assert_eq!(who["scopes"], json!(["data:read", "data:write"]));
    // A credential in a header decides before the certificate.
    let who = whoami(pki.http(Some(&pki.spiffe)), &url, &[("x-api-key", BOB_KEY)])
        .await
        .unwrap();
    assert_eq!(who["subject"], "bob");
    // A certificate of the CA whose subject is not listed: 401; no certificate: 401.
    assert_eq!(
        init(&pki.http(Some(&pki.stranger)), &url, &[])
            .await
            .unwrap(),
        401
    );
    assert_eq!(init(&pki.http(None), &url, &[]).await.unwrap(), 401);
    // Scopes per subject reach the per-tool check: the SPIFFE agent may not write.
    let write = json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
        "params":{"name":"write_data","arguments":{"key":"k","value":"v"}}})
    .to_string();
    let before = srv.posts();
    let (status, challenge) = post_body(&pki.http(Some(&pki.spiffe)), &url, &[], &write)
        .await
        .unwrap();
    assert_eq!(status, 403);
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("scope=\"data:write\""),
        "{challenge}"
    );
    assert_eq!(srv.posts(), before, "the refused call never reached rmcp");
}

#[tokio::test]
async fn the_subject_source_order_is_configurable() {
    let pki = pki();
    let srv = start_tls(
        &pki,
        &[
            ("MCP_CLIENT_CERT_SUBJECTS", "agent;scopes=data:read"),
            ("MCP_CLIENT_CERT_SUBJECT_FROM", "cn"),
        ],
    )
    .await;
    let who = whoami(pki.http(Some(&pki.spiffe)), &srv.url(), &[])
        .await
        .unwrap();
    assert_eq!(who["subject"], "agent");
    // With the default order the same certificate is its SPIFFE ID, which is not listed.
    let srv = start_tls(
        &pki,
        &[("MCP_CLIENT_CERT_SUBJECTS", "agent;scopes=data:read")],
    )
    .await;
    assert_eq!(
        init(&pki.http(Some(&pki.spiffe)), &srv.url(), &[])
            .await
            .unwrap(),
        401
    );
}

/// URL-encodes every byte but unreserved ones, as nginx's `$ssl_client_escaped_cert`.
fn escape(pem: &str) -> String {
    pem.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A plain-HTTP client from a given loopback address.
fn from(local: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(local))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_trusted_proxys_certificate_header_counts_and_an_untrusted_peers_does_not() {
    let pki = pki();
    let env = |header: &'static str| {
        move |url: &str| {
            vec![
                ("MCP_TRUSTED_PROXIES".into(), "127.0.0.1".into()),
                ("MCP_FAILURE_LIMIT".into(), "off".into()),
                ("MCP_CLIENT_CERT_HEADER".into(), header.into()),
                ("MCP_CLIENT_CERT_SUBJECTS".into(), SUBJECTS.into()),
                ("MCP_JWT_SECRET".into(), JWT_SECRET.into()),
                ("MCP_JWT_ISSUER".into(), ISSUER.into()),
                ("MCP_JWT_AUDIENCE".into(), url.into()),
            ]
        }
    };
    let nginx = escape(&pki.laptop.cert);
    let envoy = format!(
        "By=spiffe://mesh/mcp;Hash=00;Cert=\"{}\";Subject=\"CN=laptop-7\"",
        escape(&pki.laptop.cert)
    );
    for (kind, name, value) in [
        ("nginx", "x-ssl-client-cert", nginx),
        ("envoy", "x-forwarded-client-cert", envoy),
    ] {
        let srv = start_with(env(kind)).await;
        let url = srv.url();
        let proxy = from([127, 0, 0, 1]);
        let stranger = from([127, 0, 0, 2]);
        let cert = [(name, value.as_str())];
        assert_eq!(init(&proxy, &url, &cert).await.unwrap(), 200, "{kind}");
        assert_eq!(init(&stranger, &url, &cert).await.unwrap(), 401, "{kind}");
        // A token bound to the certificate the proxy verified.
        let bound = format!("Bearer {}", jwt(&url, Some(&pki.laptop.thumbprint())));
        let with_token = [(name, value.as_str()), ("authorization", bound.as_str())];
        assert_eq!(
            init(&proxy, &url, &with_token).await.unwrap(),
            200,
            "{kind}"
        );
        assert_eq!(
            init(&stranger, &url, &with_token).await.unwrap(),
            401,
            "{kind}: from an untrusted peer the header is no certificate"
        );
        // Malformed and oversized values: no certificate.
        let huge = "A".repeat(17 * 1024);
        for bad in ["garbage", "%ZZ", huge.as_str()] {
            assert_eq!(
                init(&proxy, &url, &[(name, bad)]).await.unwrap(),
                401,
                "{kind}"
            );
        }
    }
    // The whoami through the proxy path names the certificate's subject.
    let srv = start_with(env("nginx")).await;
    let who = whoami(
        from([127, 0, 0, 1]),
        &srv.url(),
        &[("x-ssl-client-cert", &escape(&pki.spiffe.cert))],
    )
    .await
    .unwrap();
    assert_eq!(who["subject"], SPIFFE);
}

#[tokio::test]
async fn a_header_never_replaces_the_certificate_of_the_tls_connection() {
    let pki = pki();
    let srv = start_tls(
        &pki,
        &[
            ("MCP_TRUSTED_PROXIES", "127.0.0.1"),
            ("MCP_FAILURE_LIMIT", "off"),
            ("MCP_CLIENT_CERT_HEADER", "nginx"),
            ("MCP_JWT_SECRET", JWT_SECRET),
            ("MCP_JWT_ISSUER", ISSUER),
        ],
    )
    .await;
    let url = srv.url();
    let header = escape(&pki.spiffe.cert);
    let bound_to_header = format!("Bearer {}", jwt(&url, Some(&pki.spiffe.thumbprint())));
    let bound_to_tls = format!("Bearer {}", jwt(&url, Some(&pki.laptop.thumbprint())));
    let laptop = pki.http(Some(&pki.laptop));
    assert_eq!(
        init(
            &laptop,
            &url,
            &[
                ("x-ssl-client-cert", header.as_str()),
                ("authorization", bound_to_header.as_str())
            ]
        )
        .await
        .unwrap(),
        401
    );
    assert_eq!(
        init(
            &laptop,
            &url,
            &[
                ("x-ssl-client-cert", header.as_str()),
                ("authorization", bound_to_tls.as_str())
            ]
        )
        .await
        .unwrap(),
        200
    );
    // Without a certificate on the connection, the trusted peer's header counts.
    assert_eq!(
        init(
            &pki.http(None),
            &url,
            &[
                ("x-ssl-client-cert", header.as_str()),
                ("authorization", bound_to_header.as_str())
            ]
        )
        .await
        .unwrap(),
        200
    );
}

#[tokio::test]
async fn tls_settings_are_checked_at_start_up() {
    let pki = pki();
    let load = |pairs: Vec<(String, String)>| {
        support::example::load_config(mcp_auth::env::EnvReader::from_pairs(pairs))
    };
    let err = |pairs: Vec<(String, String)>| load(pairs).unwrap_err().to_string();
    let s = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let cert = pki.path("server.pem");
    let key = pki.path("server.key");
    let ca = pki.path("ca.pem");
    // A key without a certificate; a file that is no key; a CA file that holds none.
    assert!(err(s(&[("MCP_TLS_KEY", &key)])).contains("MCP_TLS_CERT"));
    let e = err(s(&[("MCP_TLS_CERT", &cert), ("MCP_TLS_KEY", &cert)]));
    assert!(e.contains("MCP_TLS_KEY: holds no PEM private key"), "{e}");
    let e = err(s(&[
        ("MCP_TLS_CERT", &cert),
        ("MCP_TLS_KEY", &key),
        ("MCP_TLS_CLIENT_CA", &key),
    ]));
    assert!(
        e.contains("MCP_TLS_CLIENT_CA: holds no PEM certificate"),
        "{e}"
    );
    assert!(!e.contains("PRIVATE KEY"), "{e}");
    let e = err(s(&[
        ("MCP_TLS_CERT", &cert),
        ("MCP_TLS_KEY", &key),
        ("MCP_TLS_CLIENT_AUTH", "sometimes"),
        ("MCP_TLS_HANDSHAKE_TIMEOUT", "0"),
    ]));
    assert!(
        e.contains("MCP_TLS_CLIENT_AUTH") && e.contains("MCP_TLS_HANDSHAKE_TIMEOUT"),
        "{e}"
    );
    // Subjects with no way for a certificate to arrive.
    let e = err(s(&[
        ("MCP_TLS_CERT", &cert),
        ("MCP_TLS_KEY", &key),
        ("MCP_CLIENT_CERT_SUBJECTS", "agent"),
    ]));
    assert!(
        e.contains("MCP_CLIENT_CERT_SUBJECTS: no client certificate"),
        "{e}"
    );
    // A header needs trusted proxies.
    let e = err(s(&[
        ("MCP_CLIENT_CERT_HEADER", "nginx"),
        ("MCP_API_KEYS", BOB_KEY),
    ]));
    assert!(
        e.contains("MCP_CLIENT_CERT_HEADER: needs MCP_TRUSTED_PROXIES"),
        "{e}"
    );
    // With a certificate, the public URL is https by default.
    let config = load(s(&[
        ("MCP_TLS_CERT", &cert),
        ("MCP_TLS_KEY", &key),
        ("MCP_TLS_CLIENT_CA", &ca),
    ]))
    .unwrap();
    assert!(
        config.public_url.starts_with("https://"),
        "{}",
        config.public_url
    );
    assert_eq!(
        config.tls.as_ref().unwrap().client_auth(),
        mcp_auth::config::ClientAuth::Optional
    );
    // An application that does not serve TLS itself refuses the settings.
    let e = mcp_auth::config::Loader::from_env(mcp_auth::env::EnvReader::from_pairs(s(&[
        ("MCP_TLS_CERT", &cert),
        ("MCP_TLS_KEY", &key),
    ])))
    .load()
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("MCP_TLS_CERT: this server does not terminate TLS itself"),
        "{e}"
    );
    // A certificate is a credential: with only subjects, no token is generated.
    let config = load(s(&[
        ("MCP_TLS_CERT", &cert),
        ("MCP_TLS_KEY", &key),
        ("MCP_TLS_CLIENT_CA", &ca),
        ("MCP_CLIENT_CERT_SUBJECTS", SUBJECTS),
    ]))
    .unwrap();
    assert!(config.generated_token.is_none());
}
