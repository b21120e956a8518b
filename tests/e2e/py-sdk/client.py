"""The official MCP Python SDK client (`mcp` from PyPI) against the example server, driven by
tests/e2e_py.rs. Loopback only. Prints one JSON line describing what happened; never a token.

    python client.py auth-code <mcp-url>                  full OAuth flow from a cold start
    python client.py step-up <mcp-url>                    auth-code, then 403 -> re-authorize
    python client.py client-credentials <mcp-url> <id> <secret> <issuer>
"""

import asyncio
import json
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

REDIRECT = "http://127.0.0.1:1/callback"
observed: list[dict] = []


class MemoryStorage(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


async def record(response: httpx2.Response) -> None:
    observed.append(
        {
            "method": response.request.method,
            "path": response.request.url.path,
            "status": response.status_code,
            "challenge": response.headers.get("www-authenticate"),
        }
    )


class Browser:
    """A headless browser: follows the authorization server's redirects (keeping cookies)
    until it is sent to the redirect URI."""

    def __init__(self):
        self.result: AuthorizationCodeResult | None = None
        self.authorizations = 0

    async def redirect(self, authorization_url: str) -> None:
        self.authorizations += 1
        query = parse_qs(urlparse(authorization_url).query)
        observed.append(
            {
                "method": "GET",
                "path": urlparse(authorization_url).path,
                "status": 0,
                "resource": query.get("resource", [None])[0],
                "scope": query.get("scope", [None])[0],
                "codeChallengeMethod": query.get("code_challenge_method", [None])[0],
            }
        )
        url = authorization_url
        async with httpx2.AsyncClient(follow_redirects=False) as http:
            for _ in range(10):
                res = await http.get(url)
                location = res.headers.get("location")
                if not location:
                    raise RuntimeError(f"no redirect from {urlparse(url).path}: {res.status_code}")
                url = urljoin(url, location)
                if url.startswith(REDIRECT):
                    q = parse_qs(urlparse(url).query)
                    if "code" not in q:
                        raise RuntimeError(f"authorization failed: {q.get('error')} {q.get('error_description')}")
                    self.result = AuthorizationCodeResult(
                        code=q["code"][0], state=q.get("state", [None])[0], iss=q.get("iss", [None])[0]
                    )
                    return
        raise RuntimeError("too many redirects")

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        result, self.result = self.result, None
        return result


def text(result) -> str:
    return result.content[0].text


async def run(mode: str, url: str, rest: list[str]) -> dict:
    out: dict = {"mode": mode}
    browser = Browser()
    if mode in ("auth-code", "step-up"):
        auth = OAuthClientProvider(
            server_url=url,
            client_metadata=OAuthClientMetadata(
                client_name="mcp-auth e2e (Python SDK)",
                redirect_uris=[REDIRECT],
                grant_types=["authorization_code"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=MemoryStorage(),
            redirect_handler=browser.redirect,
            callback_handler=browser.callback,
        )
    elif mode == "client-credentials":
        client_id, secret, issuer = rest
        auth = ClientCredentialsOAuthProvider(
            server_url=url,
            storage=MemoryStorage(),
            client_id=client_id,
            client_secret=secret,
            scope="data:read data:write",
            issuer=issuer,
        )
    else:
        raise ValueError(f"unknown mode {mode}")
    http = httpx2.AsyncClient(auth=auth, event_hooks={"response": [record]}, timeout=30)
    async with http, streamable_http_client(url, http_client=http) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            out["whoami"] = json.loads(text(await session.call_tool("whoami", {})))
            if mode == "step-up":
                # The SDK answers the 403 by re-authorizing with the challenged scope, then
                # retries the same request.
                wrote = await session.call_tool("write_data", {"key": "k", "value": "v"})
                out["write"] = {"isError": bool(getattr(wrote, "is_error", False)), "text": text(wrote)}
                out["whoamiAfter"] = json.loads(text(await session.call_tool("whoami", {})))
    out["authorizations"] = browser.authorizations
    out["observed"] = observed
    return out


def main() -> None:
    mode, url, *rest = sys.argv[1:]
    try:
        out = asyncio.run(run(mode, url, rest))
    except BaseException as e:  # noqa: BLE001 - report whatever stopped the flow
        print(json.dumps({"mode": mode, "fatal": repr(e), "observed": observed}))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
