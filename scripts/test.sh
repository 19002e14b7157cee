#!/usr/bin/env bash
# The whole test suite: unit tests, store contract tests on SQLite and PostgreSQL, and the
# end-to-end tests that run the real server over HTTP on both backends. Ends with one summary
# line counting every test of every binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo '^test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "tests: $passed passed, $failed failed"
exit "$status"
