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
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
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

# shellcheck source=loadtest/server.sh
source "$HERE/server.sh"

for round in $(seq 1 "$ROUNDS"); do
  for which in old new; do
    start_server "${BIN[$which]}" "$OUT/$which-$round.server.log"
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
