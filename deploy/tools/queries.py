#!/usr/bin/env python3
"""List, check and run the PromQL queries of the otel-agent Grafana dashboards.

Every Prometheus query of the dashboards (panel targets and template-variable
queries) is extracted and Grafana's template variables are replaced, so the
result is plain PromQL:

  $__rate_interval, $__interval  -> --rate-interval (default 1m)
  $__range                       -> --range (default 1h); $__range_s, $__range_ms too
  $job, ${job}, ${job:regex}...  -> the variable's allValue (".*" if none) when its
                                    default is "All", else its default value
  label_values(SEL, label)       -> group by (label) (SEL)   (variable queries)

Modes (combinable):
  --list                 print the substituted queries (the default)
  --rules-file FILE      write them as recording rules, so that
                         `promtool check rules FILE` parses every expression
  --check-names          fail if a query uses a metric the runtime does not emit
  --check-data --prometheus-url URL
                         run every query against a live Prometheus HTTP API
                         (/api/v1/query) and fail if one returns no series;
                         --allow-empty REGEX (repeatable) excuses panels whose
                         "dashboard / panel title" matches

Python standard library only.
"""

import argparse
import glob
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DASHBOARDS = os.path.join(HERE, "..", "grafana", "dashboards", "*.json")

# Prometheus names of the metrics otel-agent emits (plus target_info and up).
_HISTOGRAMS = [
    "gen_ai_client_operation_duration_seconds",
    "gen_ai_client_token_usage",
    "gen_ai_client_operation_time_to_first_chunk_seconds",
    "otel_agent_step_duration_seconds",
    "otel_agent_evaluation_score",
]
KNOWN_METRICS = frozenset(
    [f"{h}_{s}" for h in _HISTOGRAMS for s in ("bucket", "sum", "count")]
    + [
        "otel_agent_step_calls_total",
        "otel_agent_step_active",
        "otel_agent_llm_cost_usd_total",
        "target_info",
        "up",
    ]
)

_KEYWORDS = frozenset(
    "by without on ignoring group_left group_right bool and or unless offset "
    "inf nan start end".split()
)


class Query:
    def __init__(self, source, where, raw, expr):
        self.source = source  # dashboard file name
        self.where = where  # "panel title [A]" or "variable job"
        self.raw = raw
        self.expr = expr

    @property
    def label(self):
        return f"{self.source} / {self.where}"


# --------------------------------------------------------------------------
# Template substitution


def variable_values(dashboard):
    """Value substituted for each dashboard variable."""
    values = {}
    for var in (dashboard.get("templating") or {}).get("list") or []:
        name = var.get("name")
        if not name:
            continue
        current = (var.get("current") or {}).get("value")
        if isinstance(current, list):
            current = current[0] if len(current) == 1 else "(" + "|".join(current) + ")"
        if current in (None, "", "$__all"):
            if var.get("type") in ("custom", "constant", "interval", "textbox") and \
                    isinstance(var.get("query"), str) and current != "$__all":
                current = var["query"].split(",")[0].strip()
            else:
                current = var.get("allValue") or ".*"
        values[name] = current
    return values


_VAR_RE = re.compile(r"\$\{(\w+)(?::[\w-]+)?\}|\[\[(\w+)(?::[\w-]+)?\]\]|\$(\w+)")


def substitute(expr, variables, rate_interval="1m", range_="1h"):
    range_s = _duration_seconds(range_)
    builtins = {
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__interval_ms": str(_duration_seconds(rate_interval) * 1000),
        "__range": range_,
        "__range_s": str(range_s),
        "__range_ms": str(range_s * 1000),
    }

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return variables[name]
        if name.startswith("__"):
            raise ValueError(f"unknown Grafana macro ${name} in: {expr}")
        return ".*"

    return _VAR_RE.sub(repl, expr)


def _duration_seconds(d):
    m = re.fullmatch(r"(\d+)([smhd])", d)
    if not m:
        raise ValueError(f"duration like 1m or 1h expected, got {d!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def variable_query_to_promql(q):
    """Grafana Prometheus variable query -> PromQL, or None if it has none."""
    q = q.strip()
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\s*\)", q, re.S)
    if m:
        return f"group by ({m.group(2)}) ({m.group(1).strip()})"
    m = re.fullmatch(r"label_values\(\s*(\w+)\s*\)", q)
    if m:
        return f'group by ({m.group(1)}) ({{{m.group(1)}!=""}})'
    m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
    if m:
        return m.group(1)
    m = re.fullmatch(r"metrics\((.*)\)", q, re.S)
    if m:
        return f'group by (__name__) ({{__name__=~"{m.group(1).strip()}"}})'
    if q.startswith("label_names("):
        return None
    return q


# --------------------------------------------------------------------------
# Extraction


def _walk_panels(panels):
    for p in panels or []:
        yield p
        yield from _walk_panels(p.get("panels"))


def _is_prometheus(ds, default=True):
    if ds is None:
        return default
    if isinstance(ds, str):  # legacy: data source name
        return "prom" in ds.lower()
    return ds.get("type", "prometheus" if default else "") == "prometheus"


def extract(path, rate_interval="1m", range_="1h"):
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    source = os.path.basename(path)
    variables = variable_values(dash)
    out = []
    for var in (dash.get("templating") or {}).get("list") or []:
        if var.get("type") != "query" or not _is_prometheus(var.get("datasource")):
            continue
        q = var.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if not q:
            continue
        promql = variable_query_to_promql(q)
        if promql is None:
            continue
        out.append(Query(source, f"variable {var['name']}", q,
                         substitute(promql, variables, rate_interval, range_)))
    for panel in _walk_panels(dash.get("panels")):
        if panel.get("type") == "row":
            continue
        for t in panel.get("targets") or []:
            expr = t.get("expr")
            if not expr:
                continue
            if not _is_prometheus(t.get("datasource"),
                                  default=_is_prometheus(panel.get("datasource"))):
                continue
            where = f"{panel.get('title', 'untitled')} [{t.get('refId', '?')}]"
            out.append(Query(source, where, expr,
                             substitute(expr, variables, rate_interval, range_)))
    return out


# --------------------------------------------------------------------------
# Metric names


def metric_names(expr):
    """Metric names a PromQL expression selects (best effort, no full parser)."""
    names = set()
    for m in re.finditer(r'__name__\s*(=~|=)\s*"([^"]*)"', expr):
        if m.group(1) == "=":
            names.add(m.group(2))
        else:
            names.update(n for n in m.group(2).split("|") if re.fullmatch(r"[a-zA-Z_:][\w:]*", n))
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    s = re.sub(r"#[^\n]*", "", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\b\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b", " ", s)  # offset 5m
    s = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", " ", s)
    for m in re.finditer(r"(?<![\w:.])[a-zA-Z_:][\w:]*", s):
        word = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def unknown_metrics(expr):
    return sorted(n for n in metric_names(expr) if n not in KNOWN_METRICS)


# --------------------------------------------------------------------------
# Output modes


def one_line(expr):
    return re.sub(r"\s+", " ", expr).strip()


def write_rules_file(queries, path):
    lines = [
        "# Generated by deploy/tools/queries.py: dashboard queries as recording",
        "# rules, so that `promtool check rules` parses each one.",
        "groups:",
        "  - name: dashboard_queries",
        "    rules:",
    ]
    for i, q in enumerate(queries):
        lines.append(f"      # {one_line(q.label)}")
        lines.append(f"      - record: dashboard_query_{i}")
        # A JSON string is a valid YAML double-quoted scalar.
        lines.append(f"        expr: {json.dumps(q.expr)}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def run_query(base_url, expr, timeout):
    url = base_url.rstrip("/") + "/api/v1/query"
    body = urllib.parse.urlencode({"query": expr}).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            payload = json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            payload = json.load(e)
        except ValueError:
            raise RuntimeError(f"HTTP {e.code} from {url}") from None
    if payload.get("status") != "success":
        raise RuntimeError(f"{payload.get('errorType')}: {payload.get('error')}")
    data = payload["data"]
    if data["resultType"] in ("vector", "matrix"):
        return len(data["result"])
    return 1  # scalar / string


def check_data(queries, base_url, allow_empty, timeout):
    allowed = [re.compile(a) for a in allow_empty]
    bad = 0
    for q in queries:
        try:
            n = run_query(base_url, q.expr, timeout)
        except (RuntimeError, OSError, ValueError) as e:
            print(f"ERROR  {q.label}: {e}\n       {one_line(q.expr)}")
            bad += 1
            continue
        if n:
            print(f"ok     {q.label}: {n} series")
        elif any(a.search(q.label) for a in allowed):
            print(f"empty  {q.label} (allowed)")
        else:
            print(f"EMPTY  {q.label}: no series\n       {one_line(q.expr)}")
            bad += 1
    total = len(queries)
    print(f"check-data: {total - bad} of {total} queries returned data")
    return bad == 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="List, check and run the PromQL queries of the Grafana dashboards.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--dashboards", nargs="+", metavar="FILE",
                    help="dashboard JSON files (default: deploy/grafana/dashboards/*.json)")
    ap.add_argument("--list", action="store_true", help="print the substituted queries")
    ap.add_argument("--rules-file", metavar="FILE",
                    help="write the queries as recording rules for `promtool check rules`")
    ap.add_argument("--check-names", action="store_true",
                    help="fail on metric names the otel-agent runtime does not emit")
    ap.add_argument("--check-data", action="store_true",
                    help="run every query against --prometheus-url; fail on empty results")
    ap.add_argument("--prometheus-url", metavar="URL", help="e.g. http://localhost:9090")
    ap.add_argument("--allow-empty", action="append", default=[], metavar="REGEX",
                    help='with --check-data: accept no data for queries whose '
                         '"dashboard / panel [ref]" matches (repeatable)')
    ap.add_argument("--rate-interval", default="1m", help="value of $__rate_interval (1m)")
    ap.add_argument("--range", default="1h", dest="range_", help="value of $__range (1h)")
    ap.add_argument("--timeout", type=float, default=15.0, help="HTTP timeout in seconds")
    args = ap.parse_args(argv)
    if args.check_data and not args.prometheus_url:
        ap.error("--check-data needs --prometheus-url")

    files = args.dashboards or sorted(glob.glob(DEFAULT_DASHBOARDS))
    if not files:
        ap.error("no dashboard files found")
    queries = []
    try:
        for path in files:
            queries += extract(path, args.rate_interval, args.range_)
    except (OSError, ValueError) as e:
        print(f"queries.py: {e}", file=sys.stderr)
        return 2

    ok = True
    if args.list or not (args.rules_file or args.check_names or args.check_data):
        for q in queries:
            print(f"# {q.label}\n{one_line(q.expr)}")
    if args.rules_file:
        write_rules_file(queries, args.rules_file)
        print(f"wrote {len(queries)} queries to {args.rules_file}")
    if args.check_names:
        bad = [(q, unknown_metrics(q.expr)) for q in queries]
        bad = [(q, names) for q, names in bad if names]
        for q, names in bad:
            print(f"UNKNOWN METRIC {', '.join(names)} in {q.label}")
        print(f"check-names: {len(queries) - len(bad)} of {len(queries)} queries use only "
              "metrics emitted by otel-agent")
        ok = ok and not bad
    if args.check_data:
        ok = check_data(queries, args.prometheus_url, args.allow_empty, args.timeout) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `queries.py --list | head`
        sys.stderr.close()
        sys.exit(1)
