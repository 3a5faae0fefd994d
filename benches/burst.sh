#!/usr/bin/env bash
# Burst test (issue 6): examples/burst.rs makes CALLS `#[llm_call]` calls as fast as
# one core can and exports over OTLP/gRPC to the real receiver of the end-to-end
# check (tests/e2e/otlp_sink.py); then the same with nothing listening, and with
# telemetry off as the memory baseline. Prints one table.
#
#   bash benches/burst.sh                      # ~2 min, most of it installing the receiver once
#   CALLS=200000 PROTOCOL=http bash benches/burst.sh
#
# The receiver's Python environment is made once in $VENV (default target/e2e-venv).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CALLS=${CALLS:-1000000}
PROTOCOL=${PROTOCOL:-grpc}
VENV=${VENV:-$ROOT/target/e2e-venv}
WORK=$(mktemp -d)
SINK_PID=
cleanup() {
  if [ -n "$SINK_PID" ]; then kill -TERM "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x "$VENV/bin/python" ]; then
  echo "installing the receiver into $VENV ..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$ROOT/tests/e2e/requirements.txt"
fi

cargo build -q --release --example burst --manifest-path "$ROOT/Cargo.toml"
BURST="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/burst"

free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GRPC_PORT=$(free_port)
HTTP_PORT=$(free_port)
if [ "$PROTOCOL" = grpc ]; then ENDPOINT="http://127.0.0.1:$GRPC_PORT"; else ENDPOINT="http://127.0.0.1:$HTTP_PORT"; fi

"$VENV/bin/python" "$ROOT/tests/e2e/otlp_sink.py" --out "$WORK/otlp.jsonl" --truncate \
  --grpc-port "$GRPC_PORT" --http-port "$HTTP_PORT" --ready-file "$WORK/sink.ready" >"$WORK/sink.log" 2>&1 &
SINK_PID=$!
for _ in $(seq 1 300); do
  [ -e "$WORK/sink.ready" ] && break
  kill -0 "$SINK_PID" 2>/dev/null || { cat "$WORK/sink.log" >&2; echo "receiver did not start" >&2; exit 1; }
  sleep 0.1
done
[ -e "$WORK/sink.ready" ] || { echo "receiver not ready after 30 s" >&2; exit 1; }

echo "receiver up at $ENDPOINT; $CALLS calls ..." >&2
"$BURST" --calls "$CALLS" --endpoint "$ENDPOINT" --protocol "$PROTOCOL" | tee "$WORK/up.txt" >&2
sleep 1
kill -TERM "$SINK_PID"; wait "$SINK_PID" || true; SINK_PID=

received=$("$VENV/bin/python" - "$WORK/otlp.jsonl" <<'EOF'
import json, sys
spans = 0
requests = 0
for line in open(sys.argv[1], encoding="utf-8"):
    record = json.loads(line)
    if record.get("signal") != "traces":
        continue
    requests += 1
    for rs in record["request"].get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            spans += len(ss.get("spans", []))
print(spans, requests)
EOF
)
read -r spans_received trace_requests <<<"$received"

echo "receiver down; $CALLS calls ..." >&2
"$BURST" --calls "$CALLS" --protocol "$PROTOCOL" --down | tee "$WORK/down.txt" >&2
echo "telemetry disabled; $CALLS calls ..." >&2
"$BURST" --calls "$CALLS" --disabled | tee "$WORK/off.txt" >&2

val() { grep -o "$2=[^ ]*" "$1" | head -1 | cut -d= -f2; }
row() {
  local name=$1 file=$2 received=$3
  awk -v name="$name" -v rate="$(val "$file" calls_per_second)" -v secs="$(val "$file" seconds)" \
    -v produced="$(val "$file" spans_produced)" -v received="$received" \
    -v shut="$(val "$file" shutdown_seconds)" -v peak="$(val "$file" peak_rss_kib)" -v after="$(val "$file" rss_after_calls_kib)" \
    'BEGIN { printf "| %s | %.0f | %.2f s | %s | %s | %.2f s | %.1f MiB | %.1f MiB |\n", name, rate, secs, produced, received, shut, after / 1024, peak / 1024 }'
}
echo
echo "burst: $CALLS calls of an #[llm_call] function, OTLP/$PROTOCOL, $(nproc) cores"
echo
echo "| run | calls/s | calls took | spans produced | spans received | shutdown | RSS after calls | peak RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
row "receiver up ($trace_requests trace requests)" "$WORK/up.txt" "$spans_received"
row "receiver down" "$WORK/down.txt" "0"
row "telemetry disabled" "$WORK/off.txt" "—"
