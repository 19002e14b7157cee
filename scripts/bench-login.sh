#!/usr/bin/env bash
# Password logins under a burst against the Argon2 ceiling, side by side (docs/benchmarks.md,
# issue 12's "≥ 90% of what Argon2 allows on the cores, and flat RSS"). Each round measures the
# ceiling (`cargo bench -p mandate-core --bench argon2`: checks/s through the server's own
# bounded path, nothing else running) and then a burst of failed logins against a release
# server on SQLite (wrk, scripts/bench-login.lua), so that the machine's drift hits both alike.
#   scripts/bench-login.sh [ROUNDS] [DURATION]       # CONNS=40 BACKOFF_MS=0 BIN=target/release/mandate
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3} DURATION=${2:-15s} CONNS=${CONNS:-40} BACKOFF_MS=${BACKOFF_MS:-0}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ -z "${BIN:-}" ]; then
  cargo build --release -q -p mandate
  BIN=$PWD/target/release/mandate
fi
cargo bench -q -p mandate-core --bench argon2 --no-run 2>/dev/null
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export MANDATE_LOG=warn MANDATE_DATA_DIR=$WORK/data
# Throttling out of the way: only the hashing bound is measured.
export MANDATE_LOGIN_FAILURES_BEFORE_DELAY=1000000 MANDATE_LOGIN_FAILURES_BEFORE_LOCKOUT=1000000 \
       MANDATE_LOGIN_IP_FAILURES_BEFORE_DELAY=1000000 MANDATE_LOGIN_IP_FAILURES_BEFORE_LOCKOUT=1000000
PORT=${PORT:-18080}
"$BIN" init >/dev/null
# Every attempt types another name from one address: the risk engine's credential-stuffing rule
# would block the burst. The engine stays on (its work per attempt is part of what is measured);
# only that rule allows.
"$BIN" tenant risk default --rule credential_stuffing=allow >/dev/null
CLIENT_ID=$("$BIN" --json client create --tenant default --name bench \
  --redirect-uri https://app.example/callback | jq -r .client_id)
"$BIN" serve --listen 127.0.0.1:$PORT &
SERVER=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {printf "%d", $2 / 1024}' /proc/$SERVER/status; }
echo "server RSS at start: $(rss) MiB"
sum_ratio=0
for r in $(seq "$ROUNDS"); do
  ceiling=$(BENCH_SECS=10 cargo bench -q -p mandate-core --bench argon2 2>/dev/null \
    | sed -nE 's/.*: ([0-9.]+) checks\/s.*/\1/p')
  out=$(CLIENT_ID=$CLIENT_ID BACKOFF_MS=$BACKOFF_MS wrk -t"$CONNS" -c"$CONNS" -d"$DURATION" --latency \
    -s scripts/bench-login.lua http://127.0.0.1:$PORT)
  judged=$(sed -nE 's/^judged [0-9]+ \(([0-9.]+)\/s\).*/\1/p' <<<"$out")
  refused=$(sed -nE 's/.*refused_429 [0-9]+ \(([0-9.]+)\/s\).*/\1/p' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  ratio=$(awk -v j="$judged" -v c="$ceiling" 'BEGIN {printf "%.1f", 100 * j / c}')
  sum_ratio=$(awk -v s="$sum_ratio" -v x="$ratio" 'BEGIN {print s + x}')
  echo "round $r: ceiling $ceiling checks/s; burst judged $judged/s ($ratio%), 429 $refused/s, p99 $p99, RSS $(rss) MiB"
done
echo "mean: $(awk -v s="$sum_ratio" -v n="$ROUNDS" 'BEGIN {printf "%.1f", s / n}')% of the ceiling; RSS after the burst $(rss) MiB (peak $(awk '/VmHWM/ {printf "%d", $2 / 1024}' /proc/$SERVER/status))"
