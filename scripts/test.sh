#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests (the example server on loopback,
# driven by rmcp's MCP client and raw HTTP; JWT attacks; a JWKS server on loopback), and doc
# tests. Installs what the tests need first. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
    echo "cargo not found: install Rust 1.88 or newer (https://rustup.rs)" >&2
    exit 1
fi

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Default features (aws-lc-rs JWT backend, reqwest fetcher) plus the axum and rmcp integrations.
FEATURES="axum,rmcp"
cargo test --features "$FEATURES" --all-targets "$@"
cargo test --features "$FEATURES" --doc "$@"
# The other JWT crypto backend, on the JWT tests.
cargo test --no-default-features --features "rust-crypto,reqwest,api-key,bearer,$FEATURES" --lib --test jwt "$@"
# Both backends at once must be a startup error, never a panic.
cargo test --all-features --lib jwt::tests "$@"
