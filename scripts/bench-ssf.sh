#!/usr/bin/env bash
# SSF revocation-to-event latency (docs/benchmarks.md, "Shared Signals"): the real server, a
# push stream to a receiver inside the test process, then N mandates granted and revoked one at
# a time through the self-service API; each revocation's SET is awaited at the receiver.
#   scripts/bench-ssf.sh                       # 1,000 revocations on SQLite, debug build
#   BACKEND=postgres N=200 scripts/bench-ssf.sh
#   VIA=cli scripts/bench-ssf.sh               # revoke with the CLI (another process)
#   PROFILE=release scripts/bench-ssf.sh       # release build of server and test
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
BACKEND=${BACKEND:-sqlite}
if [ "$BACKEND" = postgres ]; then scripts/ensure-postgres.sh; fi
ARGS=()
if [ -n "${PROFILE:-}" ]; then ARGS=(--profile "$PROFILE"); fi
SSF_BENCH_N=$N SSF_BENCH_BACKEND=$BACKEND SSF_BENCH_VIA=${VIA:-api} \
  cargo test "${ARGS[@]}" -q -p mandate --test e2e -- --ignored --nocapture ssf_bench 2>&1 |
  grep -E '^ssf_bench|panicked|test result'
