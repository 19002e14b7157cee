#!/usr/bin/env bash
# The whole test suite: unit tests, store contract tests on SQLite and PostgreSQL, and the
# end-to-end tests that run the real server over HTTP on both backends. Ends with one summary
# line counting every test of every binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-postgres.sh
# The browser tests (crates/mandate/tests/e2e/browser) drive Debian's Chromium through node and
# playwright-core: install what is missing and tell the tests where node and Chromium are.
browser_env=$(scripts/browser-setup.sh --print-env)
while IFS= read -r kv; do export "${kv?}"; done <<<"$browser_env"
# The docs' commands (tests/docs_commands) use curl, jq and openssl, as the docs tell readers to.
missing=()
for tool in curl jq openssl; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
# webauthn-rs (passkeys) links the system OpenSSL: its headers and pkg-config to build.
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} from Debian packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
passed=$(grep -Eo '^test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "tests: $passed passed, $failed failed"
exit "$status"
