#!/usr/bin/env bash
# Runs the whole test suite: unit tests, integration tests (the example server on loopback,
# driven by rmcp's MCP client and raw HTTP), and doc tests, with every feature enabled.
# Installs what the tests need first. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

# The Rust toolchain is the only requirement today. Later test suites that need npm, PyPI
# or Debian packages install them here, so a fresh machine needs nothing but this script.
if ! need cargo; then
    echo "cargo not found: install Rust 1.88 or newer (https://rustup.rs)" >&2
    exit 1
fi

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
cargo test --all-features --all-targets "$@"
cargo test --all-features --doc "$@"
