#!/usr/bin/env bash
# Runs every check and test of the workspace: the README's test command, and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format"
cargo fmt --all -- --check
echo "== lint"
cargo clippy --workspace --all-targets -- -D warnings
echo "== tests"
cargo test --workspace
