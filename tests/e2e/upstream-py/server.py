"""An upstream MCP server for the mcp-auth-proxy tests: the official Python SDK (`mcp` from
PyPI; `MCPServer`, the SDK's FastMCP) over streamable HTTP, stateful, on loopback.

    python server.py <port>

Serves MCP at /mcp and, beside it, GET /_requests: every request the server received so far
(method, path, headers), so tests can check what the proxy forwarded. Prints `listening <url>`
once it accepts connections. Tools:

- whoami: the X-MCP-* identity headers (and whether Authorization / X-API-Key arrived)
- read_data / write_data / delete_data: an in-memory map
- slow_progress: a progress notification every 100 ms, 10 times
"""

import asyncio
import sys

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.responses import JSONResponse

mcp = MCPServer("upstream-py")
data: dict[str, str] = {}
requests: list[dict] = []


@mcp.tool()
def whoami(ctx: Context) -> dict:
    """The caller's identity as the proxy forwarded it."""
    headers = ctx.headers or {}
    return {
        "identity": {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-mcp-")},
        "authorization": headers.get("authorization"),
        "x_api_key": headers.get("x-api-key"),
    }


@mcp.tool()
def read_data(key: str) -> str:
    """Reads a value."""
    return data.get(key, "")


@mcp.tool()
def write_data(key: str, value: str) -> str:
    """Writes a value."""
    data[key] = value
    return "ok"


@mcp.tool()
def delete_data(key: str) -> str:
    """Deletes a value."""
    data.pop(key, None)
    return "ok"


@mcp.tool()
async def slow_progress(ctx: Context) -> str:
    """Ten progress notifications, 100 ms apart."""
    for i in range(10):
        await ctx.report_progress(i + 1, 10)
        await asyncio.sleep(0.1)
    return "done"


def recording(app):
    """ASGI middleware: records each request's method, path and headers; answers
    GET /_requests with the record."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            if scope["path"] == "/_requests":
                await JSONResponse(requests)(scope, receive, send)
                return
            requests.append(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                }
            )
        await app(scope, receive, send)

    return wrapped


class Server(uvicorn.Server):
    async def startup(self, sockets=None):
        await super().startup(sockets)
        print(f"listening http://127.0.0.1:{self.config.port}/mcp", flush=True)


def main() -> None:
    port = int(sys.argv[1])
    app = mcp.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(recording(app), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    asyncio.run(Server(config).serve())


if __name__ == "__main__":
    main()
