#!/usr/bin/env python3
"""Check what `examples/mcp.rs` (an agent and its MCP tool server, two processes)
exported.

    check_mcp.py --in FILE [--client trip-agent] [--server travel-tools]

FILE holds the records otlp_sink.py wrote for ONE run of the example (start the
sink with a fresh `--out` file or `--truncate`), e.g.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \\
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_METRIC_EXPORT_INTERVAL=1000 \\
    cargo run --example mcp --features rmcp

(no OTEL_SERVICE_NAME: the agent and the server it starts name themselves).
The agent's step `invoke_agent trip_planner` lists the server's tools and calls
two of them over stdio; `book_flight` fails (`isError`). What is checked, with
each process's spans told apart by `service.name`:

- both processes exported spans, and the agent's step, every MCP span of both
  processes and the server tool's own step and model call are in ONE trace,
  whose one root is the agent's step;
- each `tools/call` is a CLIENT span in the agent, under its step, and a SERVER
  span in the server whose parent is that CLIENT span (same trace, parent id =
  the client span's id); the same for `tools/list`;
- the server tool's `execute_tool forecast_lookup` and `chat gpt-4o-mini` nest
  under the SERVER `tools/call get_forecast`;
- the conventions' attributes on both ends: `mcp.method.name`,
  `gen_ai.operation.name` = execute_tool, `gen_ai.tool.name`, the same
  `jsonrpc.request.id`, `mcp.protocol.version`, `network.transport` = pipe;
  the caller's `session.id` on the server's spans (baggage over `_meta`);
- the failing tool: `error.type` = tool_error and status ERROR on both ends;
  no tool arguments or results (content capture is off);
- metrics: `mcp.client.operation.duration` from the agent and
  `mcp.server.operation.duration` from the server, in seconds, with points for
  both tools (the failing one with `error.type`), and both session durations;
  no session or request id on any metric point.

Prints one `ok: ...` / `FAIL: ...` line per check and `mcp: X passed, Y failed`;
exits 1 if any check failed. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys

from check_rig import as_number, attrs, fld, histogram_points, norm_id, service_of
from check_export import Checker

STEP = "invoke_agent trip_planner"
TOOLS = ("get_forecast", "book_flight")
FAILING = "book_flight"
SERVER_STEP = "execute_tool forecast_lookup"
SERVER_CHAT = "chat gpt-4o-mini"
SESSION = "trip-42"
CLIENT_DURATION = "mcp.client.operation.duration"
SERVER_DURATION = "mcp.server.operation.duration"
SESSION_DURATIONS = ("mcp.client.session.duration", "mcp.server.session.duration")
IDS = ("mcp.session.id", "jsonrpc.request.id", "session.id", "user.id")
CONTENT = ("gen_ai.tool.call.arguments", "gen_ai.tool.call.result")


# -- readers: check_rig.py's, plus span kinds and statuses ---------------------

def enum_is(value, name: str, number: int) -> bool:
    """An enum field rendered by name (`SPAN_KIND_CLIENT`) or by number."""
    return value == number or (isinstance(value, str) and value.endswith(name))


class Span:
    def __init__(self, raw: dict, service: str):
        self.service = service
        self.name = fld(raw, "name", "")
        self.trace_id = norm_id(fld(raw, "traceId"))
        self.span_id = norm_id(fld(raw, "spanId"))
        self.parent_id = norm_id(fld(raw, "parentSpanId"))
        self.kind = fld(raw, "kind")
        self.attrs = attrs(fld(raw, "attributes"))
        self.status = fld(fld(raw, "status", {}), "code")

    def is_client(self) -> bool:
        return enum_is(self.kind, "CLIENT", 3)

    def is_server(self) -> bool:
        return enum_is(self.kind, "SERVER", 2)

    def failed(self) -> bool:
        return enum_is(self.status, "ERROR", 2)

    def label(self) -> str:
        return f"{self.service}:{self.name} [{self.span_id[:8]}]"


def load(path: str):
    """Every span (with its service), and each service's metric exports in order."""
    spans, metric_exports = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            request = record.get("request", record)
            for block in fld(request, "resourceSpans", []) or []:
                service = service_of(fld(block, "resource", {}))
                for scope in fld(block, "scopeSpans", []) or []:
                    spans.extend(Span(s, service) for s in fld(scope, "spans", []) or [])
            for block in fld(request, "resourceMetrics", []) or []:
                service = service_of(fld(block, "resource", {}))
                metrics = {}
                for scope in fld(block, "scopeMetrics", []) or []:
                    for m in fld(scope, "metrics", []) or []:
                        metrics.setdefault(fld(m, "name"), []).append(m)
                metric_exports.setdefault(service, []).append(metrics)
    return spans, metric_exports


# -- the checks ---------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="input", required=True)
    ap.add_argument("--client", default="trip-agent")
    ap.add_argument("--server", default="travel-tools")
    args = ap.parse_args()
    checker = Checker()
    check = checker.check

    all_spans, metric_exports = load(args.input)
    client = [s for s in all_spans if s.service == args.client]
    server = [s for s in all_spans if s.service == args.server]
    by_id = {s.span_id: s for s in all_spans}
    check(bool(client) and bool(server),
          f"both processes exported spans ({args.client}: {len(client)}, "
          f"{args.server}: {len(server)})")

    def one(spans, name, want):
        found = [s for s in spans if s.name == name and want(s)]
        return found[0] if len(found) == 1 else None

    step = one(client, STEP, lambda s: True)
    check(step is not None, f"the agent's step {STEP!r} arrived once")
    if step is None:
        print(f"mcp: {checker.passed} passed, {checker.failed} failed")
        return 1

    # 1. one trace across both processes
    trace = [s for s in all_spans if s.trace_id == step.trace_id]
    mcp_spans = [s for s in all_spans if "mcp.method.name" in s.attrs]
    in_trace = [s for s in mcp_spans if s.trace_id == step.trace_id]
    # The server's `initialize` is sent by rmcp before any step: its own trace.
    called = [s for s in mcp_spans if s.attrs.get("mcp.method.name") != "initialize"]
    check(bool(called) and all(s.trace_id == step.trace_id for s in called),
          f"every MCP call span of both processes is in the step's trace "
          f"({len(in_trace)} of {len(called)}; others: "
          f"{[s.label() for s in called if s.trace_id != step.trace_id][:4]})")
    services = sorted({s.service for s in trace})
    check(services == sorted([args.client, args.server]),
          f"the trace holds spans of both processes ({services})")
    roots = [s for s in trace if not s.parent_id or s.parent_id not in by_id]
    check([r.name for r in roots] == [STEP],
          f"the trace's one root is {STEP!r} (roots: {[r.label() for r in roots][:4]})")

    # 2. CLIENT under the step, SERVER under the CLIENT
    for tool in TOOLS:
        name = f"tools/call {tool}"
        c = one(client, name, Span.is_client)
        s = one(server, name, Span.is_server)
        check(c is not None and s is not None,
              f"{name!r}: one CLIENT span in {args.client}, one SERVER span in {args.server}")
        if c is None or s is None:
            continue
        check(c.parent_id == step.span_id,
              f"{name!r} CLIENT is a child of {STEP!r}")
        check(s.trace_id == c.trace_id and s.parent_id == c.span_id,
              f"{name!r} SERVER is a child of its CLIENT span across the processes "
              f"(parent {s.parent_id[:8]}, client {c.span_id[:8]})")
        for span in (c, s):
            a = span.attrs
            check(a.get("mcp.method.name") == "tools/call"
                  and a.get("gen_ai.operation.name") == "execute_tool"
                  and a.get("gen_ai.tool.name") == tool,
                  f"{span.label()}: mcp.method.name, gen_ai.operation.name, gen_ai.tool.name")
            check(a.get("network.transport") == "pipe" and bool(a.get("mcp.protocol.version")),
                  f"{span.label()}: network.transport=pipe, mcp.protocol.version="
                  f"{a.get('mcp.protocol.version')!r}")
            check(not any(k in a for k in CONTENT),
                  f"{span.label()}: no tool arguments or results with capture off")
        check(c.attrs.get("jsonrpc.request.id") is not None
              and c.attrs.get("jsonrpc.request.id") == s.attrs.get("jsonrpc.request.id"),
              f"{name!r}: the same jsonrpc.request.id on both ends "
              f"({c.attrs.get('jsonrpc.request.id')!r}, {s.attrs.get('jsonrpc.request.id')!r})")
        check(s.attrs.get("session.id") == SESSION,
              f"{name!r} SERVER carries the caller's session.id ({s.attrs.get('session.id')!r})")
        if tool == FAILING:
            check(all(x.attrs.get("error.type") == "tool_error" and x.failed() for x in (c, s)),
                  f"{name!r}: error.type=tool_error and status ERROR on both ends")
        else:
            check(not any(x.failed() or "error.type" in x.attrs for x in (c, s)),
                  f"{name!r}: no error on either end")

    lc = one(client, "tools/list", Span.is_client)
    ls = one(server, "tools/list", Span.is_server)
    check(lc is not None and ls is not None and lc.parent_id == step.span_id
          and ls.parent_id == lc.span_id,
          "'tools/list': CLIENT under the step, SERVER under the CLIENT")

    # 3. the server tool's own work nests under its SERVER span
    forecast = one(server, "tools/call get_forecast", Span.is_server)
    tool_step = one(server, SERVER_STEP, lambda s: True)
    chat = one(server, SERVER_CHAT, lambda s: True)
    check(forecast is not None and tool_step is not None
          and tool_step.parent_id == forecast.span_id,
          f"{SERVER_STEP!r} is a child of the SERVER 'tools/call get_forecast'")
    check(tool_step is not None and chat is not None and chat.parent_id == tool_step.span_id
          and chat.trace_id == step.trace_id,
          f"{SERVER_CHAT!r} is a child of {SERVER_STEP!r}, in the agent's trace")

    # 4. metrics
    def last_points(service, name):
        exports = [e for e in metric_exports.get(service, []) if name in e]
        if not exports:
            return None, []
        metric = exports[-1][name][0]
        return metric, [(attrs(fld(pt, "attributes")), as_number(fld(pt, "count")) or 0)
                        for m in exports[-1][name] for pt in histogram_points(m)]

    for service, name in ((args.client, CLIENT_DURATION), (args.server, SERVER_DURATION)):
        metric, points = last_points(service, name)
        check(metric is not None and fld(metric, "unit") == "s",
              f"{service}: {name} arrived, unit 's' ({fld(metric, 'unit') if metric else None!r})")
        for tool in TOOLS:
            mine = [(a, n) for a, n in points if a.get("gen_ai.tool.name") == tool]
            count = sum(n for _, n in mine)
            want_error = "tool_error" if tool == FAILING else None
            check(count == 1 and all(a.get("error.type") == want_error
                                     and a.get("mcp.method.name") == "tools/call"
                                     and a.get("network.transport") == "pipe" for a, _ in mine),
                  f"{service}: {name} counts {tool} once, error.type={want_error!r} "
                  f"({[(a.get('error.type'), n) for a, n in mine]})")
        leaked = sorted({k for a, _ in points for k in IDS if k in a})
        check(bool(points) and not leaked,
              f"{service}: no session or request id on {name} ({leaked})")
    for service, name in ((args.client, SESSION_DURATIONS[0]), (args.server, SESSION_DURATIONS[1])):
        metric, points = last_points(service, name)
        check(metric is not None and fld(metric, "unit") == "s"
              and sum(n for _, n in points) >= 1,
              f"{service}: {name} recorded the session ({sum(n for _, n in points)} points)")

    print(f"mcp: {checker.passed} passed, {checker.failed} failed")
    return 1 if checker.failed else 0


if __name__ == "__main__":
    sys.exit(main())
