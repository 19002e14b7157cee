#!/usr/bin/env bash
# AuthZEN evaluation over HTTP (docs/benchmarks.md): a release server on SQLite, a generated
# relationship graph loaded through the admin API, then wrk POSTing evaluations.
#   scripts/bench-authz.sh                 # 100 orgs × (users, nested groups, folders, docs)
#   ORGS=20 DURATION=5s scripts/bench-authz.sh
#   RATE=3200 scripts/bench-authz.sh      # also a fixed-rate run (needs hey): p99 below saturation
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
ORGS=${ORGS:-100}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p mandate
BIN=$PWD/target/release/mandate
WORK=$(mktemp -d)
export MANDATE_DATA_DIR=$WORK/data MANDATE_LOG=warn MANDATE_CACHE_TTL_MS=1000
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
$BIN init >/dev/null
mk() { $BIN --json client create --tenant default --name "$1" --grant-type client_credentials --scope "$1"; }
ADMIN=$(mk mandate:admin); PEP=$(mk mandate:authz)
$BIN serve --listen 127.0.0.1:18090 & PID=$!
for _ in $(seq 1 2000); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.01; done
tok() { curl -s -u "$(field "$1" client_id):$(field "$1" client_secret)" -d grant_type=client_credentials \
  http://127.0.0.1:18090/t/default/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
AT=$(tok "$ADMIN"); PT=$(tok "$PEP")
A=http://127.0.0.1:18090/admin/v1/tenants/default/authz
curl -sf -H "Authorization: Bearer $AT" --data-binary @- $A/models >/dev/null <<'FGA'
model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, group#member] or owner or viewer from parent
FGA
# The graph per org: 1000 users, 100 groups nested 10 deep, 121 folders 5 deep, 2500 docs.
start=$(date +%s)
python3 - "$ORGS" > "$WORK/batches.jsonl" <<'PY'
import json, random, sys
random.seed(7)
orgs = int(sys.argv[1]); batch = []
def t(o, r, u):
    batch.append({"object": o, "relation": r, "user": u})
    if len(batch) == 400: flush()
def flush():
    global batch
    if batch: print(json.dumps({"writes": batch})); batch = []
for o in range(orgs):
    for g in range(100):
        t(f"group:o{o}g{g}", "member", f"user:o{o}u{random.randrange(1000)}")
        if g % 10: t(f"group:o{o}g{g}", "member", f"group:o{o}g{g-1}#member")
    folders = [f"folder:o{o}f0"]
    for i in range(1, 121):
        f = f"folder:o{o}f{i}"; t(f, "parent", folders[(i - 1) // 3]); folders.append(f)
    for f in folders: t(f, "viewer", f"group:o{o}g{random.randrange(100)}#member")
    for d in range(2500):
        doc = f"doc:o{o}d{d}"
        t(doc, "parent", random.choice(folders)); t(doc, "owner", f"user:o{o}u{random.randrange(1000)}")
flush()
PY
while read -r line; do
  curl -sf -H "Authorization: Bearer $AT" -H 'content-type: application/json' -d "$line" $A/tuples >/dev/null
done < "$WORK/batches.jsonl"
echo "## tuples loaded: $(python3 -c "import sys,json; print(sum(len(json.loads(l)[\"writes\"]) for l in open(sys.argv[1])))" "$WORK/batches.jsonl") in $(( $(date +%s) - start )) s"
cat > "$WORK/eval.lua" <<LUA
math.randomseed(42)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $PT"
request = function()
  local o = math.random(0, $ORGS - 1)
  local body = string.format('{"subject":{"type":"user","id":"o%du%d"},"action":{"name":"viewer"},"resource":{"type":"doc","id":"o%dd%d"}}',
    o, math.random(0, 999), o, math.random(0, 2499))
  return wrk.format(nil, nil, nil, body)
end
LUA
curl -s -H "Authorization: Bearer $PT" -H 'content-type: application/json' \
  -d '{"subject":{"type":"user","id":"o0u1"},"action":{"name":"viewer"},"resource":{"type":"doc","id":"o0d1"}}' \
  http://127.0.0.1:18090/t/default/access/v1/evaluation; echo
echo "## AuthZEN evaluation over HTTP, $CONNS connections (saturation), load average $(cut -d' ' -f1 /proc/loadavg)"
wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$WORK/eval.lua" http://127.0.0.1:18090/t/default/access/v1/evaluation \
  | grep -E 'Requests/sec|50%|99%|Non-2xx'
if [ -n "${RATE:-}" ]; then
  command -v hey >/dev/null || { apt-get update -qq && apt-get install -y -qq hey >/dev/null; }
  # hey paces each of its 16 workers at RATE/16 requests/s; one body (a denied check, which
  # visits every branch of the model), as hey cannot vary it.
  echo "## AuthZEN evaluation over HTTP at a fixed $RATE requests/s (hey, 16 workers)"
  hey -z "$DURATION" -c 16 -q $(( RATE / 16 )) -m POST -T application/json -H "Authorization: Bearer $PT" \
    -d '{"subject":{"type":"user","id":"o3u17"},"action":{"name":"viewer"},"resource":{"type":"doc","id":"o3d1234"}}' \
    http://127.0.0.1:18090/t/default/access/v1/evaluation | grep -E 'Requests/sec|50% in|99% in|responses'
fi
echo "## RSS after load: $(awk '/VmRSS/ {print $2}' /proc/$PID/status) kB"
