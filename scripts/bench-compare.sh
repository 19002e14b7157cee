#!/usr/bin/env bash
# client_credentials tokens/s, p99 and the server's CPU time per token of two builds side by
# side (SQLite), alternating runs so that the machine's drift hits both alike. CPU per token
# (utime+stime of the server process over the tokens it issued) is the steadier number: the
# load generator shares the two cores and moves throughput from run to run. Used for issue 12's "the hardening must not cost the
# token path more than 5%" (docs/benchmarks.md).
#   scripts/bench-compare.sh OLD_BINARY NEW_BINARY [ROUNDS] [DURATION]
#   ENDPOINT=introspect scripts/bench-compare.sh …   # introspection of an ES256 access token instead
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-3} DURATION=${4:-10s} CONNS=${CONNS:-32} ENDPOINT=${ENDPOINT:-token}
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
  echo $! > "$dir/pid"
  for _ in $(seq 1 200); do curl -sf http://127.0.0.1:"$3"/readyz >/dev/null && break; sleep 0.05; done
  local basic token
  basic=$(printf '%s:%s' "$(field "$c" client_id)" "$(field "$c" client_secret)" | base64 -w0)
  token=$(curl -sf -H "Authorization: Basic $basic" -d grant_type=client_credentials \
      http://127.0.0.1:"$3"/t/default/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  cat > "$dir/introspect.lua" <<LUA
wrk.method = "POST"
wrk.body = "token=$token"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA
}
script=$([ "$ENDPOINT" = introspect ] && echo introspect.lua || echo cc.lua)
start old "$OLD" 18180
start new "$NEW" 18181
for name in old new; do # warm-up
  port=$([ $name = old ] && echo 18180 || echo 18181)
  wrk -t1 -c"$CONNS" -d3s -s "$WORK/$name/$script" http://127.0.0.1:$port/t/default/$ENDPOINT >/dev/null
done
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$(cat "$WORK/$1/pid")/stat"; }
for r in $(seq 1 "$ROUNDS"); do
  for name in old new; do
    port=$([ $name = old ] && echo 18180 || echo 18181)
    c0=$(cpu $name)
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/$name/$script" http://127.0.0.1:$port/t/default/$ENDPOINT)
    c1=$(cpu $name)
    n=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    us=$(python3 -c "print(round(($c1 - $c0) / $tick * 1e6 / $n, 1))")
    echo "round $r $name: ${rps} tokens/s, p99 ${p99}, ${us} µs CPU/token${non2xx:+, non-2xx $non2xx}" | tee -a "$WORK/rounds"
  done
done
python3 - "$WORK/rounds" <<'PY'
import re, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def num(t):  # "5.29ms," "980.00us," "1.02s," "12593.38"
    v = float(re.sub(r"[^0-9.]", "", t))
    return v / 1000 if "us" in t else v * 1000 if re.search(r"[0-9]s", t) else v
def col(name, i):
    return [num(r[i]) for r in rows if r[2] == name + ":"]
for name in ("old", "new"):
    print(f"mean {name}: {statistics.mean(col(name, 3)):.0f} tokens/s, "
          f"p99 {statistics.mean(col(name, 6)):.2f} ms, {statistics.mean(col(name, 7)):.1f} µs CPU/token")
ratio = lambda i: statistics.mean(col("new", i)) / statistics.mean(col("old", i)) - 1
print(f"new vs old: tokens/s {ratio(3):+.1%}, p99 {ratio(6):+.1%}, CPU per token {ratio(7):+.1%}")
PY
