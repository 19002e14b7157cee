#!/usr/bin/env bash
# client_credentials tokens/s and p99 of two builds side by side (SQLite), alternating runs so
# that the machine's drift hits both alike. Used for issue 12's "the hardening must not cost the
# token path more than 5%" (docs/benchmarks.md).
#   scripts/bench-compare.sh OLD_BINARY NEW_BINARY [ROUNDS] [DURATION]
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-3} DURATION=${4:-10s} CONNS=${CONNS:-32}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export MANDATE_LOG=warn
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
start() { # name binary port
  local dir=$WORK/$1
  mkdir -p "$dir"
  # Older builds create the data directory on any command; newer ones need `init`.
  MANDATE_DATA_DIR=$dir/data "$2" init >/dev/null 2>&1 || true
  local c
  c=$(MANDATE_DATA_DIR=$dir/data "$2" --json client create --tenant default --name bench \
      --grant-type client_credentials --scope api:read)
  cat > "$dir/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=api%3Aread"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s:%s' "$(field "$c" client_id)" "$(field "$c" client_secret)" | base64 -w0)"
LUA
  MANDATE_DATA_DIR=$dir/data "$2" serve --listen 127.0.0.1:"$3" &
  for _ in $(seq 1 200); do curl -sf http://127.0.0.1:"$3"/readyz >/dev/null && return 0; sleep 0.05; done
  return 1
}
start old "$OLD" 18180
start new "$NEW" 18181
for name in old new; do # warm-up
  port=$([ $name = old ] && echo 18180 || echo 18181)
  wrk -t1 -c"$CONNS" -d3s -s "$WORK/$name/cc.lua" http://127.0.0.1:$port/t/default/token >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
  for name in old new; do
    port=$([ $name = old ] && echo 18180 || echo 18181)
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/$name/cc.lua" http://127.0.0.1:$port/t/default/token)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    echo "round $r $name: ${rps} tokens/s, p99 ${p99}${non2xx:+, non-2xx $non2xx}"
  done
done
