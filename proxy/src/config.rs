//! The proxy's own settings ([`ProxyConfig`]): the upstream, its timeout and credential, the
//! identity headers, metrics, worker threads and shutdown. The auth stack reads the rest of the `MCP_*`
//! environment (see the crate's README for the table).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use http::{HeaderValue, Uri};
use mcp_auth::ConfigError;
use mcp_auth::authenticators::jwt::{Algorithm, JwtMinter};
use mcp_auth::env::EnvReader;

use crate::headers::{DEFAULT_IDENTITY_PREFIX, Forwarding, IdentityHeaders};
use crate::mint::UpstreamJwt;

/// Default time to wait for the upstream's response headers (`MCP_UPSTREAM_TIMEOUT`).
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Default lifetime of a minted upstream token (`MCP_UPSTREAM_JWT_TTL`).
pub const DEFAULT_UPSTREAM_JWT_TTL: Duration = Duration::from_secs(60);
/// Default time open connections get to finish after SIGTERM or Ctrl-C
/// (`MCP_PROXY_SHUTDOWN_GRACE`).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The most worker threads `MCP_PROXY_WORKERS` may ask for.
pub const MAX_WORKERS: usize = 1024;
/// The largest listing answer filtered (a JSON body, or one SSE event): 16 MiB. A larger
/// one cannot be filtered and is refused (502).
pub const MAX_LISTING_ANSWER: usize = 16 * 1024 * 1024;
/// The proxy's own settings, which the configuration file (`MCP_AUTH_CONFIG`) may hold too
/// (keyed without `MCP_`, in lower case, like the auth stack's).
pub const PROXY_SETTINGS: &[&str] = &[
    "MCP_UPSTREAM_URL",
    "MCP_UPSTREAM_TIMEOUT",
    "MCP_PROXY_SHUTDOWN_GRACE",
    "MCP_PROXY_IDENTITY_HEADER_PREFIX",
    "MCP_PROXY_METRICS_BIND",
    "MCP_PROXY_WORKERS",
    "MCP_UPSTREAM_JWT_SECRET",
    "MCP_UPSTREAM_JWT_SECRET_FILE",
    "MCP_UPSTREAM_JWT_KEY",
    "MCP_UPSTREAM_JWT_KEY_FILE",
    "MCP_UPSTREAM_JWT_ALG",
    "MCP_UPSTREAM_JWT_AUDIENCE",
    "MCP_UPSTREAM_JWT_ISSUER",
    "MCP_UPSTREAM_JWT_TTL",
];

/// Half the CPUs the process may use, at least one. The proxy runs beside its upstream (the
/// deployment the README recommends), which needs CPUs of its own; and a worker thread that
/// has more to do per wake-up spends less per request: on 2 shared cores one worker added
/// 511 µs to the median request where two added 651 µs (BENCHMARKS.md, "mcp-auth-proxy").
fn default_workers() -> NonZeroUsize {
    let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    NonZeroUsize::new(cpus / 2).unwrap_or(NonZeroUsize::MIN)
}

/// The path of the health check.
pub const HEALTH_PATH: &str = "/healthz";

/// Where settings come from: the process environment, or given pairs (tests, embedding).
#[derive(Clone, Default)]
pub enum Env {
    /// The process environment.
    #[default]
    Process,
    /// These pairs instead of the environment.
    Pairs(Vec<(String, String)>),
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets.
        match self {
            Self::Process => f.write_str("Env::Process"),
            Self::Pairs(p) => f
                .debug_struct("Env::Pairs")
                .field("len", &p.len())
                .finish_non_exhaustive(),
        }
    }
}

impl Env {
    /// A reader over these settings.
    pub(crate) fn reader(&self) -> EnvReader {
        match self {
            Self::Process => EnvReader::new(),
            Self::Pairs(p) => EnvReader::from_pairs(p.iter().cloned()),
        }
    }
}

/// The upstream MCP endpoint (`MCP_UPSTREAM_URL`): plain HTTP, no credentials or query in
/// the URL.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    /// The URL every request is sent to.
    pub(crate) uri: Uri,
    /// The URL as configured (for the default token audience).
    pub(crate) url: String,
}

/// The proxy's settings beside the auth stack's.
#[derive(Debug)]
pub struct ProxyConfig {
    pub(crate) upstream: Upstream,
    pub(crate) timeout: Duration,
    pub(crate) identity: IdentityHeaders,
    pub(crate) forwarding: Forwarding,
    pub(crate) jwt: Option<UpstreamJwt>,
    pub(crate) metrics_bind: Option<SocketAddr>,
    pub(crate) shutdown_grace: Duration,
    pub(crate) workers: NonZeroUsize,
}

impl ProxyConfig {
    /// Reads the proxy's settings from `env` alone (no configuration file; the proxy's
    /// [`load`](crate::load) reads the file too); `public_url` is the endpoint's public URL as
    /// the auth stack read it (`MCP_PUBLIC_URL`).
    ///
    /// # Errors
    ///
    /// Every problem at once, by variable name, never with a value.
    pub fn load(env: &Env, public_url: &str) -> Result<Self, ConfigError> {
        let mut env = env.reader();
        let read = Self::read(&mut env, public_url);
        env.finish()?;
        read.build()
    }

    /// Reads the proxy's settings from `env` (which may be layered over the configuration
    /// file, see [`PROXY_SETTINGS`]), recording every problem there; the result is complete
    /// when `env` has none ([`ReadSettings::build`] after `env.finish()`).
    pub(crate) fn read(env: &mut EnvReader, public_url: &str) -> ReadSettings {
        let upstream = env.required("MCP_UPSTREAM_URL", parse_upstream);
        let public = match parse_public("MCP_PUBLIC_URL", public_url) {
            Ok(p) => Some(p),
            Err(e) => {
                for p in e.problems() {
                    env.problem(p.setting(), p.message());
                }
                None
            }
        };
        let timeout = env
            .optional("MCP_UPSTREAM_TIMEOUT", parse_duration)
            .unwrap_or(DEFAULT_UPSTREAM_TIMEOUT);
        let shutdown_grace = env
            .optional("MCP_PROXY_SHUTDOWN_GRACE", parse_duration)
            .unwrap_or(DEFAULT_SHUTDOWN_GRACE);
        let identity = env
            .optional("MCP_PROXY_IDENTITY_HEADER_PREFIX", |name, v| {
                IdentityHeaders::new(v.trim()).map_err(|m| ConfigError::new(name, m))
            })
            .or_else(|| IdentityHeaders::new(DEFAULT_IDENTITY_PREFIX).ok());
        let metrics_bind = env.optional("MCP_PROXY_METRICS_BIND", |name, v| {
            v.trim()
                .parse::<SocketAddr>()
                .map_err(|_| ConfigError::new(name, "is not an address such as 127.0.0.1:9090"))
        });
        let workers = env
            .optional("MCP_PROXY_WORKERS", |name, v| {
                v.trim()
                    .parse::<NonZeroUsize>()
                    .ok()
                    .filter(|n| n.get() <= MAX_WORKERS)
                    .ok_or_else(|| ConfigError::new(name, "is not a whole number from 1 to 1024"))
            })
            .unwrap_or_else(default_workers);
        let jwt = match (&upstream, &public) {
            (Some(u), Some(p)) => load_jwt(env, u, &p.url),
            _ => None,
        };
        ReadSettings {
            upstream,
            public,
            timeout,
            shutdown_grace,
            identity,
            metrics_bind,
            workers,
            jwt,
        }
    }

    /// The listener for `/metrics`, when `MCP_PROXY_METRICS_BIND` is set.
    #[must_use]
    pub fn metrics_bind(&self) -> Option<SocketAddr> {
        self.metrics_bind
    }

    /// How many worker threads serve connections (`MCP_PROXY_WORKERS`, default: half the
    /// available CPUs, at least one).
    #[must_use]
    pub fn workers(&self) -> NonZeroUsize {
        self.workers
    }

    /// How long open connections get to finish after a shutdown signal.
    #[must_use]
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// The upstream's URL.
    #[must_use]
    pub fn upstream_url(&self) -> &str {
        &self.upstream.url
    }
}

fn parse_upstream(name: &str, v: &str) -> Result<Upstream, ConfigError> {
    let v = v.trim();
    let uri: Uri = v
        .parse()
        .map_err(|_| ConfigError::new(name, "is not a URL such as http://127.0.0.1:9000/mcp"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(ConfigError::new(
                name,
                "https upstreams are not supported: run the proxy beside the upstream and use http",
            ));
        }
        _ => return Err(ConfigError::new(name, "must be an http:// URL")),
    }
    let Some(authority) = uri.authority() else {
        return Err(ConfigError::new(name, "has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(ConfigError::new(name, "must not hold credentials"));
    }
    if uri.query().is_some() || v.contains('#') {
        return Err(ConfigError::new(name, "must have no query or fragment"));
    }
    Ok(Upstream {
        uri,
        url: v.to_owned(),
    })
}

/// What the proxy takes from `MCP_PUBLIC_URL`.
struct Public {
    url: String,
    path: String,
    proto: HeaderValue,
    host: HeaderValue,
}

fn parse_public(name: &str, v: &str) -> Result<Public, ConfigError> {
    let v = v.trim();
    let uri: Uri = v
        .parse()
        .map_err(|_| ConfigError::new(name, "is not a URL such as https://mcp.example.com/mcp"))?;
    let proto = match uri.scheme_str() {
        Some("http") => HeaderValue::from_static("http"),
        Some("https") => HeaderValue::from_static("https"),
        _ => return Err(ConfigError::new(name, "must be an http:// or https:// URL")),
    };
    let host = uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .ok_or_else(|| ConfigError::new(name, "has no host"))?;
    let path = match uri.path() {
        "" => "/".to_owned(),
        p if p.len() > 1 => p.trim_end_matches('/').to_owned(),
        p => p.to_owned(),
    };
    Ok(Public {
        url: v.to_owned(),
        path,
        proto,
        host,
    })
}

/// `30` or `30s` (seconds), `500ms`, `2m`: more than zero, at most an hour.
pub(crate) fn parse_duration(name: &str, v: &str) -> Result<Duration, ConfigError> {
    let v = v.trim();
    let bad = || ConfigError::new(name, "is not a duration such as 30s, 500ms or 2m");
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => v.split_at(at),
        None => (v, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    if d.is_zero() || d > Duration::from_secs(3600) {
        return Err(ConfigError::new(name, "must be more than 0 and at most 1h"));
    }
    Ok(d)
}

/// The upstream token minter, when `MCP_UPSTREAM_JWT_SECRET(_FILE)` or
/// `MCP_UPSTREAM_JWT_KEY(_FILE)` is set.
fn load_jwt(env: &mut EnvReader, upstream: &Upstream, public_url: &str) -> Option<UpstreamJwt> {
    let alg = env.optional("MCP_UPSTREAM_JWT_ALG", |name, v| {
        Algorithm::from_str(v.trim()).map_err(|_| ConfigError::new(name, "is not a JWT algorithm"))
    });
    let mut key_set = false;
    let secret = env.optional_secret("MCP_UPSTREAM_JWT_SECRET", |name, v, _| {
        key_set = true;
        let alg = alg.unwrap_or(Algorithm::HS256);
        if !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(ConfigError::new(
                "MCP_UPSTREAM_JWT_ALG",
                "must be HS256, HS384 or HS512 with a secret",
            ));
        }
        JwtMinter::hmac(v.trim(), alg)
            .map_err(|_| ConfigError::new(name, "must be at least 32 bytes"))
    });
    let key = env.optional_secret("MCP_UPSTREAM_JWT_KEY", |name, v, _| {
        key_set = true;
        let alg = alg.unwrap_or(Algorithm::RS256);
        if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(ConfigError::new(
                "MCP_UPSTREAM_JWT_ALG",
                "must be an asymmetric algorithm (RS256, ES256, ...) with a private key",
            ));
        }
        JwtMinter::pem(v.as_bytes(), alg)
            .map_err(|_| ConfigError::new(name, "is not a PEM private key for the algorithm"))
    });
    let audience = env.raw("MCP_UPSTREAM_JWT_AUDIENCE");
    let issuer = env.raw("MCP_UPSTREAM_JWT_ISSUER");
    let ttl = env.optional("MCP_UPSTREAM_JWT_TTL", parse_duration);
    let minter = match (secret, key) {
        (Some(_), Some(_)) => {
            env.problem(
                "MCP_UPSTREAM_JWT_SECRET",
                "set MCP_UPSTREAM_JWT_SECRET or MCP_UPSTREAM_JWT_KEY_FILE, not both",
            );
            return None;
        }
        (Some(m), None) | (None, Some(m)) => m,
        (None, None) => {
            let others = alg.is_some() || audience.is_some() || issuer.is_some() || ttl.is_some();
            if others && !key_set {
                env.problem(
                    "MCP_UPSTREAM_JWT_SECRET",
                    "is needed (or MCP_UPSTREAM_JWT_KEY_FILE) for the other MCP_UPSTREAM_JWT_* settings",
                );
            }
            return None;
        }
    };
    let ttl = ttl.unwrap_or(DEFAULT_UPSTREAM_JWT_TTL);
    let minter = minter
        .issuer(issuer.map_or_else(|| public_url.to_owned(), |i| i.trim().to_owned()))
        .audience(audience.map_or_else(|| upstream.url.clone(), |a| a.trim().to_owned()))
        .ttl(ttl);
    // Sign once now: a key that cannot sign is a startup error, not a 502 per request.
    if minter.mint("startup-check", [""; 0]).is_err() {
        env.problem("MCP_UPSTREAM_JWT_KEY", "cannot sign a token");
        return None;
    }
    Some(UpstreamJwt::new(minter, ttl))
}

/// The proxy's settings as read, before the checks that need them all (see
/// [`ProxyConfig::read`]).
pub(crate) struct ReadSettings {
    upstream: Option<Upstream>,
    public: Option<Public>,
    timeout: Duration,
    shutdown_grace: Duration,
    identity: Option<IdentityHeaders>,
    metrics_bind: Option<SocketAddr>,
    workers: NonZeroUsize,
    jwt: Option<UpstreamJwt>,
}

impl ReadSettings {
    /// The configuration, once the reader reported no problem.
    pub(crate) fn build(self) -> Result<ProxyConfig, ConfigError> {
        let Self {
            upstream,
            public,
            timeout,
            shutdown_grace,
            identity,
            metrics_bind,
            workers,
            jwt,
        } = self;
        // Each is `Some` when no problem was recorded.
        let (Some(upstream), Some(public), Some(identity)) = (upstream, public, identity) else {
            return Err(ConfigError::new("MCP_UPSTREAM_URL", "could not be read"));
        };
        let upstream_host = upstream
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .ok_or_else(|| ConfigError::new("MCP_UPSTREAM_URL", "has no host"))?;
        if public.path == HEALTH_PATH {
            return Err(ConfigError::new(
                "MCP_PUBLIC_URL",
                "its path is the health check's (/healthz)",
            ));
        }
        Ok(ProxyConfig {
            upstream,
            timeout,
            identity,
            forwarding: Forwarding {
                upstream_host,
                proto: public.proto,
                host: public.host,
            },
            jwt,
            metrics_bind,
            shutdown_grace,
            workers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<ProxyConfig, ConfigError> {
        let env = Env::Pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        let public = pairs
            .iter()
            .find(|(k, _)| *k == "MCP_PUBLIC_URL")
            .map_or("http://127.0.0.1:8080/mcp", |(_, v)| *v);
        ProxyConfig::load(&env, public)
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
        load(pairs)
            .unwrap_err()
            .problems()
            .iter()
            .map(|p| p.setting().to_owned())
            .collect()
    }

    #[test]
    fn defaults() {
        let c = load(&[("MCP_UPSTREAM_URL", "http://127.0.0.1:9000/mcp")]).unwrap();
        assert_eq!(c.timeout, DEFAULT_UPSTREAM_TIMEOUT);
        assert_eq!(c.forwarding.host, "127.0.0.1:8080");
        assert_eq!(c.forwarding.proto, "http");
        assert_eq!(c.forwarding.upstream_host, "127.0.0.1:9000");
        assert!(c.jwt.is_none() && c.metrics_bind.is_none());
        assert_eq!(c.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
    }

    #[test]
    fn the_upstream_url_is_required_and_checked() {
        assert_eq!(problems(&[]), ["MCP_UPSTREAM_URL"]);
        for bad in [
            "https://up.example/mcp",
            "ftp://x/",
            "http://user:pw@127.0.0.1:9000/mcp",
            "http://127.0.0.1:9000/mcp?token=x",
            "not a url",
        ] {
            assert_eq!(
                problems(&[("MCP_UPSTREAM_URL", bad)]),
                ["MCP_UPSTREAM_URL"],
                "{bad}"
            );
        }
    }

    #[test]
    fn settings_are_parsed_and_every_problem_reported_at_once() {
        let c = load(&[
            ("MCP_UPSTREAM_URL", "http://127.0.0.1:9000/mcp"),
            ("MCP_PUBLIC_URL", "https://mcp.example.com/api/mcp/"),
            ("MCP_UPSTREAM_TIMEOUT", "500ms"),
            ("MCP_PROXY_IDENTITY_HEADER_PREFIX", "X-Auth-"),
            ("MCP_PROXY_METRICS_BIND", "127.0.0.1:9090"),
        ])
        .unwrap();
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.forwarding.proto, "https");
        assert_eq!(
            c.metrics_bind,
            Some(SocketAddr::from(([127, 0, 0, 1], 9090)))
        );
        let mut p = problems(&[
            ("MCP_UPSTREAM_URL", "http://127.0.0.1:9000/mcp"),
            ("MCP_UPSTREAM_TIMEOUT", "0"),
            ("MCP_PROXY_IDENTITY_HEADER_PREFIX", "Mcp-"),
            ("MCP_PROXY_METRICS_BIND", "nope"),
            ("MCP_PROXY_SHUTDOWN_GRACE", "1d"),
        ]);
        p.sort();
        assert_eq!(
            p,
            [
                "MCP_PROXY_IDENTITY_HEADER_PREFIX",
                "MCP_PROXY_METRICS_BIND",
                "MCP_PROXY_SHUTDOWN_GRACE",
                "MCP_UPSTREAM_TIMEOUT"
            ]
        );
    }

    #[test]
    fn worker_threads_default_to_half_the_cpus_and_are_bounded() {
        let url = ("MCP_UPSTREAM_URL", "http://127.0.0.1:9000/mcp");
        let c = load(&[url]).unwrap();
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(
            c.workers().get(),
            (cpus / 2).max(1),
            "half the CPUs, at least one"
        );
        let c = load(&[url, ("MCP_PROXY_WORKERS", " 3 ")]).unwrap();
        assert_eq!(c.workers().get(), 3);
        let c = load(&[url, ("MCP_PROXY_WORKERS", "1024")]).unwrap();
        assert_eq!(c.workers().get(), MAX_WORKERS);
        for bad in ["0", "1025", "-1", "two", ""] {
            assert_eq!(
                problems(&[url, ("MCP_PROXY_WORKERS", bad)]),
                ["MCP_PROXY_WORKERS"],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn upstream_jwt_settings() {
        let secret = "an-upstream-secret-of-at-least-32-bytes";
        let c = load(&[
            ("MCP_UPSTREAM_URL", "http://127.0.0.1:9000/mcp"),
            ("MCP_UPSTREAM_JWT_SECRET", secret),
        ])
        .unwrap();
        assert!(c.jwt.is_some());
        assert_eq!(
            problems(&[
                ("MCP_UPSTREAM_URL", "http://127.0.0.1:9000/mcp"),
                ("MCP_UPSTREAM_JWT_SECRET", "short"),
            ]),
            ["MCP_UPSTREAM_JWT_SECRET"]
        );
        assert_eq!(
            problems(&[
                ("MCP_UPSTREAM_URL", "http://127.0.0.1:9000/mcp"),
                ("MCP_UPSTREAM_JWT_TTL", "60s"),
            ]),
            ["MCP_UPSTREAM_JWT_SECRET"],
            "a setting without a key"
        );
        assert_eq!(
            problems(&[
                ("MCP_UPSTREAM_URL", "http://127.0.0.1:9000/mcp"),
                ("MCP_UPSTREAM_JWT_SECRET", secret),
                ("MCP_UPSTREAM_JWT_ALG", "RS256"),
            ]),
            ["MCP_UPSTREAM_JWT_ALG"]
        );
        assert_eq!(
            problems(&[
                ("MCP_UPSTREAM_URL", "http://127.0.0.1:9000/mcp"),
                ("MCP_UPSTREAM_JWT_KEY", "not a pem"),
                ("MCP_UPSTREAM_JWT_ALG", "ES256"),
            ]),
            ["MCP_UPSTREAM_JWT_KEY"]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("x", "30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("x", "2m").unwrap(), Duration::from_secs(120));
        for bad in ["", "s", "-1", "1h", "1.5s", "3601"] {
            assert!(parse_duration("x", bad).is_err(), "{bad}");
        }
    }
}
