#!/usr/bin/env bash
# Reproduces the numbers in docs/benchmarks.md: Mandate (release build, SQLite) and the peer
# oidc-provider side by side on this machine, load from wrk on the same machine.
#   scripts/bench.sh            # all measurements, 15 s per run
#   DURATION=5s scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
CONNS=${CONNS:-32}
PEER_DIR=${PEER_DIR:-/tmp/mandate-bench-peer}
SHARED=${SHARED:-../shared/bench/peer-oidc-provider}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p mandate
BIN=$PWD/target/release/mandate
WORK=$(mktemp -d)
export MANDATE_DATA_DIR=$WORK/data MANDATE_LOG=warn
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

wait_ready() { for _ in $(seq 1 2000); do curl -sf "$1" >/dev/null && return 0; sleep 0.005; done; return 1; }
rss_kb() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }
basic() { printf '%s:%s' "$1" "$2" | base64 -w0; }
run_wrk() { # name url script
  echo "## $1"; wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$3" "$2" | grep -E 'Requests/sec|99%|50%|Non-2xx'; }

# Data: tenants with ES256 (default) and EdDSA access tokens, one client_credentials client each.
$BIN init >/dev/null
$BIN tenant create bench-eddsa --access-token-alg EdDSA >/dev/null
mk_client() { $BIN --json client create --tenant "$1" --name bench --grant-type client_credentials --scope api:read; }
ES=$(mk_client default); ED=$(mk_client bench-eddsa)
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# Cold start (data directory already initialised).
start=$(date +%s%N)
$BIN serve --listen 127.0.0.1:18080 & PID=$!
wait_ready http://127.0.0.1:18080/readyz
echo "## cold start to ready: $(( ($(date +%s%N) - start) / 1000000 )) ms"
sleep 1; echo "## idle RSS: $(rss_kb $PID) kB"

cc_script() { # file auth
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=api%3Aread"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $2"
LUA
}
cc_script "$WORK/es.lua" "$(basic "$(field "$ES" client_id)" "$(field "$ES" client_secret)")"
cc_script "$WORK/ed.lua" "$(basic "$(field "$ED" client_id)" "$(field "$ED" client_secret)")"
run_wrk "mandate client_credentials ES256" http://127.0.0.1:18080/t/default/token "$WORK/es.lua"
run_wrk "mandate client_credentials EdDSA" http://127.0.0.1:18080/t/bench-eddsa/token "$WORK/ed.lua"
echo "## loaded RSS (after load): $(rss_kb $PID) kB"

TOKEN=$(curl -s -u "$(field "$ES" client_id):$(field "$ES" client_secret)" -d grant_type=client_credentials http://127.0.0.1:18080/t/default/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
cat > "$WORK/introspect.lua" <<LUA
wrk.method = "POST"
wrk.body = "token=$TOKEN"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(basic "$(field "$ES" client_id)" "$(field "$ES" client_secret)")"
LUA
run_wrk "mandate introspection" http://127.0.0.1:18080/t/default/introspect "$WORK/introspect.lua"
echo 'wrk.method = "GET"' > "$WORK/get.lua"
run_wrk "mandate JWKS" http://127.0.0.1:18080/t/default/jwks.json "$WORK/get.lua"
kill $PID; wait $PID 2>/dev/null || true

# The same token load with PostgreSQL as the store (audit records committed to PostgreSQL).
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  SCHEMA=bench_$$
  PGURL="postgres://postgres@127.0.0.1:5432/test?schema=$SCHEMA"
  PG=$(MANDATE_DATABASE_URL=$PGURL $BIN --json client create --tenant default --name bench --grant-type client_credentials --scope api:read)
  cc_script "$WORK/pg.lua" "$(basic "$(field "$PG" client_id)" "$(field "$PG" client_secret)")"
  MANDATE_DATABASE_URL=$PGURL $BIN serve --listen 127.0.0.1:18081 & PID=$!
  wait_ready http://127.0.0.1:18081/readyz
  run_wrk "mandate client_credentials ES256 (PostgreSQL)" http://127.0.0.1:18081/t/default/token "$WORK/pg.lua"
  kill $PID; wait $PID 2>/dev/null || true
  psql -q -h 127.0.0.1 -U postgres -d test -c "SET client_min_messages = warning; DROP SCHEMA $SCHEMA CASCADE" >/dev/null
fi

# The peer, same machine, same load.
if command -v node >/dev/null; then
  if [ ! -d "$PEER_DIR/node_modules/oidc-provider" ]; then
    mkdir -p "$PEER_DIR" && (cd "$PEER_DIR" && npm init -y >/dev/null && npm install -s oidc-provider@9 >/dev/null)
  fi
  cp "$SHARED/server.mjs" "$SHARED/cc.lua" "$PEER_DIR/"
  for alg in ES256 EdDSA; do
    (cd "$PEER_DIR" && PORT=18090 ALG=$alg exec node server.mjs >/dev/null) & NPID=$!
    wait_ready http://127.0.0.1:18090/.well-known/openid-configuration
    [ "$alg" = ES256 ] && echo "## peer idle RSS: $(rss_kb $(pgrep -f 'node server.mjs' | head -1)) kB"
    run_wrk "peer oidc-provider client_credentials $alg" http://127.0.0.1:18090/token "$PEER_DIR/cc.lua"
    kill $NPID; wait $NPID 2>/dev/null || true
  done
fi
