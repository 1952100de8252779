# Sourced by bench.sh and ab.sh: one relaycast server at a time, pinned to
# $SERVER_CORE, on loopback ports $HTTP_PORT/$UDP_PORT with the stream key
# $KEY and a fresh data dir, stopped (and its data dir removed) on exit.
# $WORKERS media workers (default 0: one per core it may use, which is one
# under taskset to a single core). $SERVER_ARGS (word-split) are added to
# its flags.
#
#   start_server BINARY LOG   # returns once /healthz answers
#   stop_server

SERVER_PID=
DATA=
stop_server() {
  [ -z "$SERVER_PID" ] || { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  [ -z "$DATA" ] || rm -rf "$DATA"
  SERVER_PID= DATA=
}
trap stop_server EXIT
start_server() { # binary log
  DATA=$(mktemp -d -t relaycast-bench-data.XXXXXX)
  taskset -c "$SERVER_CORE" "$1" \
    --http-addr "127.0.0.1:$HTTP_PORT" --udp-port "$UDP_PORT" --public-ip 127.0.0.1 \
    --data-dir "$DATA" --stream-key "live=$KEY" --workers "${WORKERS:-0}" \
    ${SERVER_ARGS:-} >"$2" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -sf --noproxy '*' "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$2" >&2; exit 1; }
    sleep 0.1
  done
  echo "relaycast did not answer /healthz within 10 s" >&2
  exit 1
}
