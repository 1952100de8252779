#!/usr/bin/env bash
# A/B one fan-out point against two relaycast binaries, alternating runs so
# both see the same machine state: for hot-path changes whose effect is
# smaller than the drift between two `bench.sh` runs.
#
#   loadtest/ab.sh OLD_BINARY NEW_BINARY
#
# Knobs: ROUNDS=3 VIEWERS=100 LAYER=high DURATION=20s RAMP=200/s
#        SERVER_CORE=0 TOOL_CORE=1 OUT=<temp dir>. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
declare -A BIN=([old]=$1 [new]=$2)
ROUNDS=${ROUNDS:-3} VIEWERS=${VIEWERS:-100} LAYER=${LAYER:-high}
DURATION=${DURATION:-20s} RAMP=${RAMP:-200/s}
SERVER_CORE=${SERVER_CORE:-0} TOOL_CORE=${TOOL_CORE:-1}
HTTP_PORT=${HTTP_PORT:-18080} UDP_PORT=${UDP_PORT:-18189}
KEY=bench-stream-key-0001
cargo build --release -p relaycast-loadtest
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
OUT=${OUT:-$(mktemp -d -t relaycast-ab.XXXXXX)}
mkdir -p "$OUT"

SERVER_PID= DATA=
stop_server() {
  [ -z "$SERVER_PID" ] || { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  [ -z "$DATA" ] || rm -rf "$DATA"
  SERVER_PID= DATA=
}
trap stop_server EXIT

for round in $(seq 1 "$ROUNDS"); do
  for which in old new; do
    DATA=$(mktemp -d -t relaycast-ab-data.XXXXXX)
    taskset -c "$SERVER_CORE" "${BIN[$which]}" \
      --http-addr "127.0.0.1:$HTTP_PORT" --udp-port "$UDP_PORT" --public-ip 127.0.0.1 \
      --data-dir "$DATA" --stream-key "live=$KEY" >"$OUT/$which-$round.server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
      curl -sf --noproxy '*' "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && break
      sleep 0.1
    done
    taskset -c "$TOOL_CORE" "$TARGET/release/relaycast-loadtest" \
      --server "http://127.0.0.1:$HTTP_PORT" --stream live --token "$KEY" \
      --viewers "$VIEWERS" --duration "$DURATION" --ramp "$RAMP" --layer "$LAYER" \
      --server-pid "$SERVER_PID" --json --quiet \
      >"$OUT/$which-$round.json" 2>"$OUT/$which-$round.log" || true
    echo "$which $round: $(tail -n 1 "$OUT/$which-$round.log")"
    stop_server
  done
done
echo "reports in $OUT"
