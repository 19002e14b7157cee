#!/usr/bin/env bash
# The whole test suite: unit tests, store contract tests on SQLite and PostgreSQL, and the
# end-to-end tests that run the real server over HTTP on both backends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
cargo test --workspace --locked "$@"
