#!/usr/bin/env bash
# Prometheus end to end, no collector: Debian's `prometheus` scrapes the demo's
# own /metrics (OTEL_METRICS_EXPORTER=prometheus) every second, then every
# PromQL query of the deploy/ dashboards and alert rules is run through its HTTP
# API while the demo is still up, and must return data.
#
# The demo runs until this script closes its standard input
# (DEMO_RUN_ITERATIONS=0), so every query runs while the demo is serving and its
# steps are in flight, however slow the machine: a target that has gone away
# leaves only stale series, which instant queries (steps in flight) do not see.
# It streams (time to first chunk), a tool of it fails now and then, it prices
# its calls and records evaluations: every panel has data from the demo alone.
#
# Checks, each counted: promtool check metrics on the demo's real output, the
# alert rules load and evaluate without error, every dashboard query returns
# data, every series selector of every alert rule has data (but the Collector's
# `up`, which the pull setup has not), steps were seen in flight, the demo exits
# cleanly once told to. Last line: `prometheus-e2e: N passed, M failed`.
#
# Environment: PROMETHEUS_E2E_PORT (Prometheus, default 19090).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROM_PORT=${PROMETHEUS_E2E_PORT:-19090}
DEMO_ADDR=127.0.0.1:9464
PROM_URL=http://127.0.0.1:$PROM_PORT
WORK=$(mktemp -d)
PROM_PID=
DEMO_PID=
DEMO_STDIN=
passed=0
failed=0

cleanup() {
  # Closing its standard input ends the demo, even if it outlived cargo.
  [ -n "$DEMO_STDIN" ] && exec {DEMO_STDIN}>&-
  for pid in $DEMO_PID $PROM_PID; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
finish() {
  echo "prometheus-e2e: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# GET a URL (python3: no curl needed); prints the body, fails on HTTP errors.
http_get() {
  python3 - "$1" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    sys.stdout.write(r.read().decode())
EOF
}

# The number of series an instant query returns (0 on any error).
series() {
  python3 - "$PROM_URL" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + "/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
try:
    with urllib.request.urlopen(url, timeout=10) as r:
        print(len(json.load(r)["data"]["result"]))
except Exception:
    print(0)
EOF
}

# ---- Debian's prometheus and promtool ---------------------------------------
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  echo "installing Debian's prometheus package"
  # Do not let the package's service start: this script runs its own instance.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    POLICY_ADDED=1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >"$WORK/apt.log" 2>&1
  status=$?
  [ "${POLICY_ADDED:-0}" = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ $status -ne 0 ]; then
    tail -20 "$WORK/apt.log"
    fail "apt-get install prometheus"
    finish
  fi
fi
echo "$(prometheus --version 2>&1 | head -1)"

# ---- the demo, built first so that its start is quick -----------------------
if ! cargo build -q --example crew; then
  fail "cargo build --example crew"
  finish
fi
if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', 9464)) != 0)"; then
  fail "port 9464 is already in use: the demo cannot serve /metrics there"
  finish
fi

# ---- our own Prometheus: 1 s scrapes of the demo, the deploy/ alert rules ----
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: crew-demo
    static_configs:
      - targets: ["$DEMO_ADDR"]
EOF
if promtool check config "$WORK/prometheus.yml" >"$WORK/check-config.log" 2>&1; then
  ok "promtool check config (1 s scrapes of $DEMO_ADDR, deploy/prometheus/alerts.yml)"
else
  cat "$WORK/check-config.log"
  fail "promtool check config"
  finish
fi
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
for _ in $(seq 100); do
  http_get "$PROM_URL/-/ready" >/dev/null 2>&1 && break
  kill -0 "$PROM_PID" 2>/dev/null || break
  sleep 0.2
done
if ! http_get "$PROM_URL/-/ready" >/dev/null 2>&1; then
  cat "$WORK/prometheus.log"
  fail "Prometheus ready on $PROM_URL"
  finish
fi
ok "Prometheus ready on $PROM_URL"

# ---- the demo, serving /metrics ---------------------------------------------
# It runs until its standard input, a FIFO whose writing end this script holds,
# is closed.
echo "demo: DEMO_RUN_ITERATIONS=0 OTEL_METRICS_EXPORTER=prometheus cargo run --example crew"
mkfifo "$WORK/demo.stdin"
env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_METRICS_ENDPOINT \
  OTEL_METRICS_EXPORTER=prometheus OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1 \
  OTEL_EXPORTER_PROMETHEUS_PORT=9464 OTEL_TRACES_EXPORTER=none \
  DEMO_RUN_ITERATIONS=0 cargo run -q --example crew <"$WORK/demo.stdin" >"$WORK/demo.log" 2>&1 &
DEMO_PID=$!
exec {DEMO_STDIN}>"$WORK/demo.stdin"
for _ in $(seq 150); do
  http_get "http://$DEMO_ADDR/metrics" >"$WORK/metrics.txt" 2>/dev/null && break
  kill -0 "$DEMO_PID" 2>/dev/null || break
  sleep 0.2
done
if [ ! -s "$WORK/metrics.txt" ]; then
  cat "$WORK/demo.log"
  fail "the demo serves http://$DEMO_ADDR/metrics"
  finish
fi
ok "the demo serves http://$DEMO_ADDR/metrics"

# Several scrapes with data, so that rate() and increase() have points: wait
# until every histogram and counter the dashboards use has 12 samples (12 s).
ready=0
for _ in $(seq 120); do
  kill -0 "$DEMO_PID" 2>/dev/null || break
  n=$(series 'min(count_over_time(gen_ai_client_operation_duration_seconds_count[1m])) >= 12 and min(count_over_time(otel_agent_step_calls_total[1m])) >= 12')
  if [ "$n" -gt 0 ]; then ready=1; break; fi
  sleep 1
done
if [ "$ready" -ne 1 ]; then
  tail -20 "$WORK/demo.log"
  fail "Prometheus scraped the demo 12 times within 2 minutes"
  finish
fi
ok "Prometheus scraped the demo's metrics 12+ times"

# promtool on what the demo really serves, now that every metric has points.
http_get "http://$DEMO_ADDR/metrics" >"$WORK/metrics.txt"
if promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.log" 2>&1 && [ ! -s "$WORK/promtool.log" ]; then
  ok "promtool check metrics: clean ($(grep -vc '^#' "$WORK/metrics.txt") samples)"
else
  cat "$WORK/promtool.log"
  fail "promtool check metrics"
fi
for name in gen_ai_client_operation_duration_seconds_bucket gen_ai_client_token_usage_bucket \
  otel_agent_step_duration_seconds_bucket otel_agent_step_calls_total otel_agent_step_active; do
  if grep -q "^$name{" "$WORK/metrics.txt"; then ok "served: $name"; else fail "served: $name"; fi
done

# ---- every dashboard and alert-rule query, against the live Prometheus -------
# No query is excused: the demo streams, fails a tool call now and then, prices
# its calls and records evaluations.
# The steps-in-flight panels show a gauge: seen above 0 at least once.
if [ "$(series 'max_over_time(otel_agent_step_active[5m]) > 0')" -gt 0 ]; then
  ok "steps in flight: otel_agent_step_active seen above 0"
else
  fail "steps in flight: otel_agent_step_active never seen above 0"
fi
if [ -f deploy/tools/queries.py ]; then
  python3 deploy/tools/queries.py --prometheus-url "$PROM_URL" --check-data \
    >"$WORK/queries.log" 2>&1
  status=$?
  cat "$WORK/queries.log"
  summary=$(grep -Eo 'check-data: [0-9]+ of [0-9]+' "$WORK/queries.log" | tail -1)
  if [ -n "$summary" ]; then
    good=$(echo "$summary" | awk '{print $2}')
    total=$(echo "$summary" | awk '{print $4}')
    passed=$((passed + good))
    failed=$((failed + total - good))
  fi
  if [ "$status" -ne 0 ] && { [ -z "$summary" ] || [ "$good" -eq "$total" ]; }; then
    fail "deploy/tools/queries.py --check-data (exit $status)"
  fi
else
  fail "deploy/tools/queries.py is missing"
fi

# The alert rules. A thresholded alert expression returns data only while it
# fires, so: every rule loads and evaluates without error, and every series
# selector in every rule's expression returns data.
python3 - "$PROM_URL" "$ROOT/deploy/tools" >"$WORK/rules.log" 2>&1 <<'EOF'
import json, re, sys, time, urllib.parse, urllib.request
base, tools = sys.argv[1], sys.argv[2]
sys.path.insert(0, tools)
try:
    from queries import metric_names
except ImportError:  # queries.py missing: a plain approximation
    def metric_names(expr):
        return set(re.findall(r"\b(?:gen_ai|otel_agent|up)\w*", expr))

# Selectors that cannot have data when the application is scraped directly.
NOT_IN_PULL_SETUP = {'up{job="otel-collector"}': "no Collector in the pull setup"}

def get(path, **params):
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)["data"]

deadline = time.time() + 10
while True:
    rules = [r for g in get("/api/v1/rules")["groups"] for r in g["rules"]]
    evaluated = all(not r.get("lastEvaluation", "0001").startswith("0001") for r in rules)
    if (rules and evaluated) or time.time() > deadline:
        break
    time.sleep(1)
good = bad = 0
for r in rules:
    if r.get("health") == "ok" and not r.get("lastError"):
        print(f"ok     alert rule {r['name']}: evaluates ({r.get('state')})")
        good += 1
    else:
        print(f"ERROR  alert rule {r['name']}: health={r.get('health')} {r.get('lastError', '')}")
        bad += 1
    expr = r["query"]
    names = metric_names(expr)
    seen = set()
    for m in re.finditer(r"([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?", expr):
        name, matchers = m.group(1), m.group(2) or ""
        selector = name + matchers.replace(" ", "")
        if name not in names or selector in seen:
            continue
        seen.add(selector)
        if selector in NOT_IN_PULL_SETUP:
            print(f"empty  alert rule {r['name']}: {selector} (expected: {NOT_IN_PULL_SETUP[selector]})")
            continue
        n = len(get("/api/v1/query", query=f"last_over_time({name}{matchers}[5m])")["result"])
        if n:
            print(f"ok     alert rule {r['name']}: {selector}: {n} series")
            good += 1
        else:
            print(f"EMPTY  alert rule {r['name']}: {selector}: no series")
            bad += 1
print(f"rules: {good} of {good + bad} checks pass ({len(rules)} alert rules)")
sys.exit(1 if bad or not rules else 0)
EOF
rules_status=$?
cat "$WORK/rules.log"
summary=$(grep -Eo 'rules: [0-9]+ of [0-9]+' "$WORK/rules.log" | tail -1)
if [ -n "$summary" ]; then
  good=$(echo "$summary" | awk '{print $2}')
  total=$(echo "$summary" | awk '{print $4}')
  passed=$((passed + good))
  failed=$((failed + total - good))
fi
if [ "$rules_status" -ne 0 ] && { [ -z "$summary" ] || [ "$good" -eq "$total" ]; }; then
  fail "deploy/prometheus/alerts.yml: the rules could not be checked"
fi

# ---- the demo ends when its standard input closes ---------------------------
exec {DEMO_STDIN}>&-
DEMO_STDIN=
for _ in $(seq 150); do kill -0 "$DEMO_PID" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$DEMO_PID" 2>/dev/null; then
  tail -30 "$WORK/demo.log"
  fail "the demo exits within 30 s of its standard input closing"
else
  wait "$DEMO_PID"
  demo_status=$?
  DEMO_PID=
  if [ "$demo_status" -eq 0 ] && grep -q 'otel-agent: produced' "$WORK/demo.log"; then
    ok "the demo exits cleanly ($(grep -c '^\[' "$WORK/demo.log") iterations)"
  else
    tail -30 "$WORK/demo.log"
    fail "the demo exits cleanly (status $demo_status)"
  fi
fi
kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
PROM_PID=
finish
