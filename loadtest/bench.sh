#!/usr/bin/env bash
# Fan-out cost benchmark: a release relaycast pinned to core 0, the load tool
# pinned to core 1, loopback only. For each viewer count, N viewers of the top
# layer (then one 60/30/10 layer mix) for $DURATION; prints the one-line
# summary of each run and a table of server CPU µs per forwarded packet.
#
#   loadtest/bench.sh                 # 100 300 1000 viewers, 30 s each
#   DURATION=60s loadtest/bench.sh 100 300
#
# Results (JSON + logs) land in $OUT (default: a fresh temp dir, printed).
# Not yet here: the SRTP/sendmmsg floor micro-benchmark, the capacity sweep,
# the join storm and RSS per viewer (see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNTS=("$@")
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(100 300 1000)
DURATION=${DURATION:-30s}
RAMP=${RAMP:-200/s}
MIX_VIEWERS=${MIX_VIEWERS:-300}
HTTP_PORT=${HTTP_PORT:-18080}
UDP_PORT=${UDP_PORT:-18189}
KEY=bench-stream-key-0001
SERVER_CORE=${SERVER_CORE:-0}
TOOL_CORE=${TOOL_CORE:-1}

cargo build --release -p relaycast -p relaycast-loadtest
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
OUT=${OUT:-$(mktemp -d -t relaycast-bench.XXXXXX)}
mkdir -p "$OUT"
DATA=$(mktemp -d -t relaycast-bench-data.XXXXXX)

taskset -c "$SERVER_CORE" "$TARGET/release/relaycast" \
  --http-addr "127.0.0.1:$HTTP_PORT" --udp-port "$UDP_PORT" --public-ip 127.0.0.1 \
  --data-dir "$DATA" --stream-key "live=$KEY" >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
cleanup() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -sf --noproxy '*' "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log"; exit 1; }
  sleep 0.1
done

run() { # name viewers layer
  local name=$1 viewers=$2 layer=$3
  echo "== $name: $viewers viewers, layer $layer, $DURATION" >&2
  taskset -c "$TOOL_CORE" "$TARGET/release/relaycast-loadtest" \
    --server "http://127.0.0.1:$HTTP_PORT" --stream live --token "$KEY" \
    --viewers "$viewers" --duration "$DURATION" --ramp "$RAMP" --layer "$layer" --json \
    >"$OUT/$name.json" 2>"$OUT/$name.log" || true
  tail -n 1 "$OUT/$name.log" >&2
  sleep 3 # let the server end the sessions of this run
}

for n in "${COUNTS[@]}"; do run "high-$n" "$n" high; done
run "mixed-$MIX_VIEWERS" "$MIX_VIEWERS" mixed

python3 - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print(f"\nresults in {out}\n")
print("| run | viewers | fwd pkt/s | server µs/pkt | worker CPU | loss | latency p99 | TTFF p50/p99 | tool CPU | verdict |")
print("|---|---|---|---|---|---|---|---|---|---|")
for f in sorted(out.glob("*.json"), key=lambda p: p.stat().st_mtime):
    try:
        r = json.loads(f.read_text())
    except ValueError:
        print(f"| {f.stem} | (no report: see {f.stem}.log) |"); continue
    s, t = r["server"], r["tool"]
    lat, ttff = r["latency_us"] or {}, r["ttff_ms"] or {}
    fmt = lambda v, d=1: "n/a" if v is None else f"{v:.{d}f}"
    print(f"| {f.stem} | {r['viewers']} | {fmt(s['forwarded_per_s'],0)} | {fmt(s['us_per_forwarded_packet'],2)} "
          f"| {fmt((s['worker_cpu_cores'] or 0)*100,0)}% | {r['packets']['loss']*100:.3f}% "
          f"| {fmt(lat.get('p99', 0)/1000)} ms | {ttff.get('p50','n/a')}/{ttff.get('p99','n/a')} ms "
          f"| {fmt((t['cpu_cores'] or 0)*100,0)}%{' SATURATED' if t['saturated'] else ''} "
          f"| {'PASS' if r['pass'] else 'FAIL'} |")
PY
