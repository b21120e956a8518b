#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests (the example server on loopback,
# driven by rmcp's MCP client and raw HTTP; JWT attacks; a JWKS server on loopback), doc
# tests, and the tests of the workspace's other members (the example server's crate in
# examples/server, the load driver in tools/load, mcp-auth-proxy in proxy/), end to end with
# oidc-provider, the official SDKs and the MCP Inspector in Chromium. Installs what the tests
# need first.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
    echo "cargo not found: install Rust 1.88 or newer (https://rustup.rs)" >&2
    exit 1
fi

# The end-to-end tests run a real authorization server (oidc-provider, from npm) on loopback
# and the official TypeScript (npm) and Python (PyPI) SDK clients.
if ! need node || ! need npm; then
    if need apt-get; then
        echo "installing Node.js and npm (Debian packages) for the end-to-end tests"
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "node and npm are needed for the end-to-end tests" >&2
        exit 1
    fi
fi
# Shared state (issued tokens, revocations, failure counters) is tested against a real Redis,
# over TLS too (Debian's redis-server is built with TLS; the test makes its own certificates).
if ! need redis-server; then
    if need apt-get; then
        echo "installing redis-server (Debian package) for the Redis tests"
        apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
    else
        echo "redis-server is needed for the Redis tests" >&2
        exit 1
    fi
fi
# The browser tests drive the MCP Inspector's web client (npm) in Debian's headless Chromium.
if [ ! -x /usr/bin/chromium ]; then
    if need apt-get; then
        echo "installing chromium (Debian package) for the browser tests"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "chromium (/usr/bin/chromium) is needed for the browser tests" >&2
        exit 1
    fi
fi
npm ci --prefix tests/e2e/idp --no-audit --no-fund --loglevel=error
npm ci --prefix tests/e2e/ts-sdk --no-audit --no-fund --loglevel=error
npm ci --prefix tests/e2e/browser --no-audit --no-fund --loglevel=error

# The official Python SDK client (PyPI), in a virtualenv.
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    if need apt-get; then
        echo "installing python3-venv (Debian package) for the end-to-end tests"
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    fi
fi
if [ ! -x tests/e2e/py-sdk/.venv/bin/python ]; then
    python3 -m venv tests/e2e/py-sdk/.venv
fi
tests/e2e/py-sdk/.venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/py-sdk/requirements.txt

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Default features (aws-lc-rs JWT backend, reqwest fetcher) plus the axum and rmcp integrations.
FEATURES="axum,rmcp"
cargo test --features "$FEATURES" --all-targets "$@"
cargo test --features "$FEATURES" --doc "$@"
# The example server's crate (unit and doc tests), the load driver, and mcp-auth-proxy (its
# forwarding tests run against a scriptable upstream on loopback).
cargo test -p mcp-auth-example-server -p mcp-auth-load -p mcp-auth-proxy "$@"
# End to end with the oidc-provider authorization server, the SDK clients and the MCP
# Inspector in Chromium (these are #[ignore]d in plain `cargo test` because they need the
# npm packages installed above).
cargo test --features "$FEATURES" --test e2e_oidc --test e2e_issuers --test e2e_dpop --test step_up --test e2e_outbound --test e2e_oauth --test e2e_ts --test e2e_py --test e2e_browser "$@" -- --ignored
# mcp-auth-proxy in front of the official Python and TypeScript SDK servers (upstreams in
# tests/e2e/upstream-*), driven by rmcp's client, through the OAuth flow against
# oidc-provider by all three SDK clients, and by the MCP Inspector in Chromium.
cargo test -p mcp-auth-proxy --test e2e_upstream --test e2e_oauth --test e2e_browser "$@" -- --ignored
# Redis-backed stores (plain and TLS), two example servers sharing one Redis, and session
# bindings kept in Redis.
cargo test --features "$FEATURES,redis" --test redis --test session "$@" -- --ignored
# The other JWT crypto backend, on the JWT tests.
cargo test --no-default-features --features "rust-crypto,reqwest,api-key,bearer,$FEATURES" --lib --test jwt --test issuers "$@"
# Both backends at once must be a startup error, never a panic.
# (The filter names one test; the run fails if it stops matching, so the check cannot vanish.)
both=$(cargo test --all-features --lib authenticators::jwt::builder::tests::both_backends_is_a_startup_error_not_a_panic "$@" 2>&1) || { echo "$both"; exit 1; }
echo "$both"
echo "$both" | grep -q "test result: ok. 1 passed" || { echo "the two-backends test did not run" >&2; exit 1; }
