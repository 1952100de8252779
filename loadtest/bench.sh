#!/usr/bin/env bash
# The benchmark of issue 6, in one bounded run (about 10–13 minutes): a
# release relaycast pinned to core $SERVER_CORE, the load tool pinned to
# core $TOOL_CORE, loopback only.
#
#   1. floor      relaycast-floor on the server's core: SRTP protect of a
#                 1,200-byte packet per profile + one sendmmsg slot
#   2. fan-out    100, 300, 1000 viewers of the top layer, and a 60/30/10 mix
#                 of $MIX_VIEWERS: server CPU µs per forwarded packet, RSS
#   3. capacity   top-layer viewers per core with < 1% unrecovered loss and
#                 p99 forwarding latency < 50 ms: 3 runs per point, median;
#                 the sweep stops at the first point that fails
#   4. storm      300 viewers joining within 1 s: TTFF p50/p99, failures
#   5. churn      $CHURN_VIEWERS (100) viewers, 5% leaving and rejoining every 10 s
#
# Then a summary with cost ÷ floor. Every JSON report and log lands in $OUT
# (default: a fresh temp dir, printed). Environment knobs:
#   DURATION=20s  CAPACITY_POINTS="80 110 140 170 200"  FANOUT="100 300 1000"
#   MIX_VIEWERS=300  CHURN_VIEWERS=100  RAMP=200/s  SERVER_CORE=0  TOOL_CORE=1  WORKERS=0  SKIP_BUILD=1
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."

DURATION=${DURATION:-20s}
RAMP=${RAMP:-200/s}
read -r -a FANOUT <<<"${FANOUT:-100 300 1000}"
read -r -a CAPACITY_POINTS <<<"${CAPACITY_POINTS:-80 110 140 170 200}"
MIX_VIEWERS=${MIX_VIEWERS:-300}
CHURN_VIEWERS=${CHURN_VIEWERS:-100}
HTTP_PORT=${HTTP_PORT:-18080}
UDP_PORT=${UDP_PORT:-18189}
KEY=bench-stream-key-0001
SERVER_CORE=${SERVER_CORE:-0}
TOOL_CORE=${TOOL_CORE:-1}

[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p relaycast -p relaycast-loadtest
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
OUT=${OUT:-$(mktemp -d -t relaycast-bench.XXXXXX)}
mkdir -p "$OUT"
BEGAN=$(date +%s)
git rev-parse --short HEAD >"$OUT/commit" 2>/dev/null || true

echo "== floor (core $SERVER_CORE)" >&2
taskset -c "$SERVER_CORE" "$TARGET/release/relaycast-floor" --budget 2s --json >"$OUT/floor.json"
python3 -c 'import json,sys; f=json.load(open(sys.argv[1])); print("   floor µs:", {k: round(v,3) for k,v in f["floor_us"].items()})' "$OUT/floor.json" >&2

# A fresh server for every run: RSS growth per viewer is then measured from
# a clean baseline, and no session of one run lingers into the next.
# shellcheck source=loadtest/server.sh
source "$HERE/server.sh"

run() { # name viewers layer [extra loadtest flags…]
  local name=$1 viewers=$2 layer=$3
  shift 3
  echo "== $name: $viewers viewers, layer $layer, $DURATION $*" >&2
  start_server "$TARGET/release/relaycast" "$OUT/$name.server.log"
  taskset -c "$TOOL_CORE" "$TARGET/release/relaycast-loadtest" \
    --server "http://127.0.0.1:$HTTP_PORT" --stream live --token "$KEY" \
    --viewers "$viewers" --duration "$DURATION" --ramp "$RAMP" --layer "$layer" \
    --server-pid "$SERVER_PID" --json --quiet "$@" \
    >"$OUT/$name.json" 2>"$OUT/$name.log" || true
  echo "   $(tail -n 1 "$OUT/$name.log")" >&2
  stop_server
}

# Whether a capacity run met the bar: every join, < 1% loss, p99 < 50 ms.
meets_bar() {
  python3 - "$1" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(1)
p99 = (r["latency_us"] or {}).get("p99")
ok = r["joins"]["failed"] == 0 and r["packets"]["loss"] < 0.01 and p99 is not None and p99 < 50_000
sys.exit(0 if ok else 1)
PY
}

for n in "${FANOUT[@]}"; do run "fanout-high-$n" "$n" high; done
run "fanout-mixed-$MIX_VIEWERS" "$MIX_VIEWERS" mixed

for n in "${CAPACITY_POINTS[@]}"; do
  passes=0
  for k in 1 2 3; do
    run "capacity-$n-$k" "$n" high
    if meets_bar "$OUT/capacity-$n-$k.json"; then passes=$((passes + 1)); fi
  done
  echo "   capacity point $n: $passes/3 runs met the bar" >&2
  [ "$passes" -ge 2 ] || break
done

RAMP=300/s run "storm-300" 300 high
run "churn-$CHURN_VIEWERS" "$CHURN_VIEWERS" high --churn 5%/10s

echo "   bench took $(( $(date +%s) - BEGAN )) s" >&2
python3 "$HERE/bench_summary.py" "$OUT"
