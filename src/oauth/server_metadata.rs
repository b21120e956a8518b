//! Authorization server metadata discovery (OpenID Connect Discovery, RFC 8414): where an
//! issuer's metadata lives and fetching it with the issuer checked.

use super::fetch::DynFetcher;

/// The well-known metadata URLs for `issuer`, OpenID configuration first (OIDC Discovery §4,
/// then RFC 8414 §3 with the path inserted).
pub(crate) fn discovery_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.strip_suffix('/').unwrap_or(issuer);
    let mut urls = vec![format!("{trimmed}/.well-known/openid-configuration")];
    if let Some((scheme, rest)) = trimmed.split_once("://") {
        let (host, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        urls.push(format!(
            "{scheme}://{host}/.well-known/oauth-authorization-server{path}"
        ));
        if !path.is_empty() {
            urls.push(format!(
                "{scheme}://{host}/.well-known/openid-configuration{path}"
            ));
        }
    }
    urls
}

/// Fetches the authorization server metadata of `issuer` (OpenID configuration, then RFC 8414
/// metadata), checking that its `issuer` is exactly the configured one. Returns the URL that
/// answered and the document.
pub(crate) async fn discover_metadata(
    fetcher: &dyn DynFetcher,
    issuer: &str,
    max_bytes: usize,
) -> Result<(String, serde_json::Value), String> {
    let mut last = String::from("no metadata found");
    for url in discovery_urls(issuer) {
        let fetched = match fetcher.get_boxed(&url, max_bytes).await {
            Ok(f) => f,
            Err(e) => {
                last = format!("{url}: {e}");
                continue;
            }
        };
        let meta: serde_json::Value =
            serde_json::from_slice(&fetched.body).map_err(|_| format!("{url}: not JSON"))?;
        if meta.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(format!(
                "{url}: metadata `issuer` does not match the configured issuer"
            ));
        }
        return Ok((url, meta));
    }
    Err(format!("discovery failed: {last}"))
}
