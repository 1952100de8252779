#!/usr/bin/env bash
# What recording costs the server: the same OBS-faithful broadcast (3 layers
# of x264 + Opus from web-client/tests/obs-publisher.js, no viewers) into a
# release server pinned to one core, with recording on and off, alternating
# so both see the same machine; server CPU (utime + stime from /proc) over
# the steady window ÷ RTP packets received. The difference is the recorder's
# cost per recorded packet (it runs off the media threads, but on the same
# core here). Also reports the bytes written per hour per rendition.
#
#   loadtest/recording_cost.sh
#
# Knobs: ROUNDS=2 WINDOW=30 (seconds measured, after 8 s of warm-up)
#        SERVER_CORE=0 TOOL_CORE=1. Loopback only; needs ffmpeg, node and
#        web-client/tests' npm packages (scripts/test-browser installs them).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
ROUNDS=${ROUNDS:-2} WINDOW=${WINDOW:-30}
SERVER_CORE=${SERVER_CORE:-0} TOOL_CORE=${TOOL_CORE:-1}
HTTP_PORT=${HTTP_PORT:-18080} UDP_PORT=${UDP_PORT:-18189}
KEY=bench-stream-key-0001
cargo build --release --locked --bin relaycast
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
TICK=$(getconf CLK_TCK)

# shellcheck source=loadtest/server.sh
source "$HERE/server.sh"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
packets_in() {
  curl -sf --noproxy '*' "http://127.0.0.1:$HTTP_PORT/metrics" \
    | awk '/^relaycast_rtp_packets_in_total/ {print $2}'
}

publisher() { # seconds
  taskset -c "$TOOL_CORE" node --input-type=module -e "
    import { ObsPublisher } from '$PWD/web-client/tests/obs-publisher.js';
    const pub = new ObsPublisher({ base: 'http://127.0.0.1:$HTTP_PORT', key: '$KEY', layers: 3 });
    await pub.start();
    await new Promise((r) => setTimeout(r, $1 * 1000));
    await pub.stop();
    process.exit(0);"
}

declare -A total_us total_pkts
for round in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    SERVER_ARGS=$([ "$mode" = off ] && echo --no-recordings || true)
    export SERVER_ARGS
    start_server "$TARGET/release/relaycast" "$(mktemp -t relaycast-reccost.XXXXXX.log)"
    publisher $((WINDOW + 12)) &
    pub=$!
    sleep 8
    c0=$(cpu_ticks) p0=$(packets_in)
    sleep "$WINDOW"
    c1=$(cpu_ticks) p1=$(packets_in)
    if [ "$mode" = on ]; then
      du -sb "$DATA/recordings"/*/*/ 2>/dev/null | awk -v w="$WINDOW" '
        { n = split($2, p, "/"); if (p[n] == "") n--; printf "  %s: %.0f MB per hour\n", p[n], $1 / (w + 8) * 3600 / 1e6 }'
    fi
    wait "$pub" || true
    stop_server
    us=$(( (c1 - c0) * 1000000 / TICK )) pkts=$(( ${p1%.*} - ${p0%.*} ))
    total_us[$mode]=$(( ${total_us[$mode]:-0} + us )) total_pkts[$mode]=$(( ${total_pkts[$mode]:-0} + pkts ))
    echo "round $round recording $mode: $us µs of CPU for $pkts packets in: $(python3 -c "print(f'{$us / max($pkts, 1):.2f}')") µs per packet"
  done
done
python3 - "${total_us[on]}" "${total_pkts[on]}" "${total_us[off]}" "${total_pkts[off]}" <<'PY'
import sys
on_us, on_p, off_us, off_p = map(int, sys.argv[1:])
on, off = on_us / max(on_p, 1), off_us / max(off_p, 1)
print(f"recording on: {on:.2f} µs/packet, off: {off:.2f} µs/packet; the recorder: {on - off:.2f} µs per recorded packet")
PY
