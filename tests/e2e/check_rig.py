#!/usr/bin/env python3
"""Check what `examples/rig_agent.rs` (rig + init() + the attributes) exported.

    check_rig.py --in FILE [--service rig-agent]

FILE holds the records otlp_sink.py wrote for ONE run of the example (start the
sink with a fresh `--out` file or `--truncate`), e.g.

    OTEL_SERVICE_NAME=rig-agent OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \\
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_METRIC_EXPORT_INTERVAL=1000 \\
    OPENAI_BASE_URL=http://127.0.0.1:18089/v1 cargo run --example rig_agent --features rig

The example runs one `invoke_workflow order_support` with two of our agent
steps: `support` runs a rig agent that calls the model three times and its two
tools once each, `writer` streams one answer from a rig agent without tools.
What is checked, from rig's own spans (`chat` per model call, declared by
rig-agent with `rig.completion_parent`; `execute_tool` per tool call):

- every span of the run is in one trace, with one root and no orphan;
- rig's chat spans sit under our step spans (3 under `invoke_agent support`,
  1 streamed under `invoke_agent writer`);
- rig's tool spans are there, one per tool, in the trace, under `support`;
- the sum of `gen_ai.usage.input_tokens` (and output) over all spans equals
  the sum over the chat spans: usage is counted once; and no span carries an
  attribute key twice (rig records some fields twice: a backend reading every
  value would count that usage twice);
- `gen_ai.client.operation.duration` and `gen_ai.client.token.usage` have
  points with `gen_ai.request.model` set, and the last (cumulative) export
  counts every chat call and every token once;
- rig's tool spans count as tool steps under their tool's name, and
  `otel_agent.step.active` is back to 0 for every series at the end.

Prints one `ok: ...` / `FAIL: ...` line per check and `rig: X passed, Y failed`;
exits 1 if any check failed. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections import Counter

WORKFLOW = "invoke_workflow order_support"
SUPPORT = "invoke_agent support"
WRITER = "invoke_agent writer"
TOOLS = ("lookup_order", "track_shipment")
CHATS_UNDER = {SUPPORT: 3, WRITER: 1}
DURATION = "gen_ai.client.operation.duration"
TOKENS = "gen_ai.client.token.usage"


# -- tolerant readers for MessageToDict output -------------------------------

def fld(obj, name, default=None):
    """Field `name` (lowerCamelCase) of a dict, also under its proto name."""
    if not isinstance(obj, dict):
        return default
    if name in obj:
        return obj[name]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return obj.get(snake, default)


def as_number(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def any_value(value):
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "boolValue", "intValue", "doubleValue"):
        v = fld(value, key)
        if v is not None:
            return as_number(v) if key in ("intValue", "doubleValue") else v
    array = fld(value, "arrayValue")
    if array is not None:
        return [any_value(v) for v in fld(array, "values", [])]
    return None


def attrs(kvs) -> dict:
    return {kv.get("key"): any_value(kv.get("value")) for kv in kvs or []}


def norm_id(value) -> str:
    """A span or trace id as lowercase hex, from base64 (MessageToDict) or hex."""
    if not value:
        return ""
    if isinstance(value, str) and len(value) in (16, 32):
        try:
            int(value, 16)
            return value.lower()
        except ValueError:
            pass
    try:
        return base64.b64decode(value).hex()
    except (binascii.Error, ValueError, TypeError):
        return str(value)


def service_of(resource: dict):
    return attrs(fld(resource, "attributes")).get("service.name")


class Span:
    def __init__(self, raw: dict):
        self.name = fld(raw, "name", "")
        self.trace_id = norm_id(fld(raw, "traceId"))
        self.span_id = norm_id(fld(raw, "spanId"))
        self.parent_id = norm_id(fld(raw, "parentSpanId"))
        self.attrs = attrs(fld(raw, "attributes"))
        self.events = [(fld(e, "name", ""), attrs(fld(e, "attributes"))) for e in fld(raw, "events") or []]
        keys = Counter(kv.get("key") for kv in fld(raw, "attributes") or [])
        self.duplicate_keys = sorted(k for k, n in keys.items() if n > 1)

    def label(self) -> str:
        return f"{self.name} [{self.span_id[:8]}]"


def load(path: str, service: str):
    """The service's spans, and its metric exports in arrival order."""
    spans, metric_exports = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            request = record.get("request", record)
            for block in fld(request, "resourceSpans", []) or []:
                if service_of(fld(block, "resource", {})) != service:
                    continue
                for scope in fld(block, "scopeSpans", []) or []:
                    spans.extend(Span(s) for s in fld(scope, "spans", []) or [])
            for block in fld(request, "resourceMetrics", []) or []:
                if service_of(fld(block, "resource", {})) != service:
                    continue
                metrics = {}
                for scope in fld(block, "scopeMetrics", []) or []:
                    for m in fld(scope, "metrics", []) or []:
                        metrics.setdefault(fld(m, "name"), []).append(m)
                metric_exports.append(metrics)
    return spans, metric_exports


def histogram_points(metric: dict):
    for kind in ("histogram", "exponentialHistogram"):
        data = fld(metric, kind)
        if data is not None:
            return fld(data, "dataPoints", []) or []
    return []


# -- the checks ---------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="input", required=True)
    ap.add_argument("--service", default="rig-agent")
    args = ap.parse_args()
    passed = failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        print(("ok: " if ok else "FAIL: ") + what)
        if ok:
            passed += 1
        else:
            failed += 1

    spans, metric_exports = load(args.input, args.service)
    by_id = {s.span_id: s for s in spans}

    def parent(s):
        return by_id.get(s.parent_id)

    def ancestors(s):
        seen = set()
        p = parent(s)
        while p is not None and p.span_id not in seen:
            seen.add(p.span_id)
            yield p
            p = parent(p)

    # rig's spans: chat spans rig-agent declares (`rig.completion_parent`) and
    # rig-core's own `rig::completions` chat spans (same usage fields, no
    # marker); tool spans by their operation and tool name.
    chats = [s for s in spans
             if s.attrs.get("gen_ai.operation.name") == "chat"
             and ("rig.completion_parent" in s.attrs
                  or "rig.provider_request_id" in s.attrs
                  or s.name == "chat")]
    tools = [s for s in spans
             if s.attrs.get("gen_ai.operation.name") == "execute_tool"
             and s.attrs.get("gen_ai.tool.name") in TOOLS]

    # 1. one trace per run
    traces = Counter(s.trace_id for s in spans)
    roots = [s for s in spans if not s.parent_id]
    orphans = [s for s in spans if s.parent_id and s.parent_id not in by_id]
    check(len(spans) > 0, f"spans of service {args.service!r} arrived ({len(spans)})")
    check(len(traces) == 1,
          f"all spans of the run are in one trace ({len(traces)} traces: "
          + ", ".join(f"{t[:8]}:{n}" for t, n in traces.most_common(4)) + ")")
    check([r.name for r in roots] == [WORKFLOW],
          f"one root, {WORKFLOW!r} (roots: {[r.name for r in roots][:4]})")
    check(not orphans,
          f"no span's parent is missing ({[s.label() for s in orphans][:4]})")

    # 2. rig's chat spans under our step spans
    under = Counter(parent(s).name if parent(s) else None for s in chats)
    check(dict(under) == CHATS_UNDER,
          f"rig's chat spans are children of our agent steps "
          f"(want {CHATS_UNDER}, got {dict(under)})")
    check(bool(chats) and all(any(a.name == WORKFLOW for a in ancestors(s)) for s in chats),
          f"every rig chat span is inside {WORKFLOW!r}")
    streamed = [s for s in chats if s.attrs.get("gen_ai.request.stream") is True]
    check(len(streamed) == 1 and parent(streamed[0]) is not None
          and parent(streamed[0]).name == WRITER,
          f"the streamed chat span ({len(streamed)}) is under {WRITER!r}")
    no_model = [s.label() for s in chats if not s.attrs.get("gen_ai.request.model")]
    check(bool(chats) and not no_model,
          f"every rig chat span has gen_ai.request.model (missing: {no_model[:4]})")

    # 3. rig's tool spans
    names = Counter(s.attrs.get("gen_ai.tool.name") for s in tools)
    check(all(names.get(t) == 1 for t in TOOLS),
          f"one rig execute_tool span per tool {TOOLS} (got {dict(names)})")
    check(bool(tools) and all(s.trace_id in traces and len(traces) == 1 for s in tools)
          and all(parent(s) is not None and parent(s).name == SUPPORT for s in tools),
          f"the tool spans are in the run's trace, under {SUPPORT!r} "
          f"(parents: {[parent(s).name if parent(s) else None for s in tools]})")

    # 4. usage counted once
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        everywhere = sum(as_number(s.attrs.get(key)) or 0 for s in spans)
        on_chats = sum(as_number(s.attrs.get(key)) or 0 for s in chats)
        carriers = Counter(s.name for s in spans if s.attrs.get(key) is not None)
        check(on_chats > 0 and everywhere == on_chats,
              f"sum of {key} over all spans ({everywhere}) equals the sum over the "
              f"chat spans ({on_chats}); carried by {dict(carriers)}")
    duplicated = [f"{s.label()}: {', '.join(s.duplicate_keys)}" for s in spans if s.duplicate_keys]
    check(not duplicated,
          f"no span carries an attribute key twice ({len(duplicated)} do: {duplicated[:4]})")
    with_usage = [s for s in chats if s.attrs.get("gen_ai.usage.input_tokens") is not None]
    check(len(with_usage) == len(chats) == sum(CHATS_UNDER.values()),
          f"every rig chat span carries its usage ({len(with_usage)} of {len(chats)})")

    # 5. metrics from rig's chat spans
    def points(name):
        return [(pt, attrs(fld(pt, "attributes")))
                for export in metric_exports for m in export.get(name, [])
                for pt in histogram_points(m)]

    for name in (DURATION, TOKENS):
        pts = points(name)
        with_model = [a for _, a in pts if a.get("gen_ai.request.model")]
        check(bool(with_model),
              f"{name} has points with gen_ai.request.model set "
              f"({len(with_model)} of {len(pts)} points; models "
              f"{sorted({a.get('gen_ai.request.model') for a in with_model})})")

    last = next((e for e in reversed(metric_exports) if DURATION in e or TOKENS in e), {})
    calls = sum(as_number(fld(pt, "count")) or 0
                for m in last.get(DURATION, []) for pt in histogram_points(m)
                if attrs(fld(pt, "attributes")).get("gen_ai.operation.name") == "chat")
    check(calls == len(chats) and calls > 0,
          f"the last export's {DURATION} counts every chat call once "
          f"({calls} recorded, {len(chats)} chat spans)")
    for token_type, key in (("input", "gen_ai.usage.input_tokens"),
                            ("output", "gen_ai.usage.output_tokens")):
        recorded = sum(as_number(fld(pt, "sum")) or 0
                       for m in last.get(TOKENS, []) for pt in histogram_points(m)
                       if attrs(fld(pt, "attributes")).get("gen_ai.token.type") == token_type)
        on_chats = sum(as_number(s.attrs.get(key)) or 0 for s in chats)
        check(on_chats > 0 and recorded == on_chats,
              f"the last export's {TOKENS} ({token_type}) sums to the chat spans' "
              f"usage ({recorded} recorded, {on_chats} on spans)")

    # 6. rig's tools as steps; nothing left in flight
    tool_steps = Counter()
    for m in last.get("otel_agent.step.calls", []):
        for pt in fld(fld(m, "sum", {}), "dataPoints", []) or []:
            a = attrs(fld(pt, "attributes"))
            if a.get("gen_ai.operation.name") == "execute_tool":
                tool_steps[a.get("otel_agent.step.name")] += as_number(fld(pt, "asInt")) or 0
    check(dict(tool_steps) == {t: 1 for t in TOOLS},
          f"otel_agent.step.calls counts each rig tool once under its name "
          f"(got {dict(tool_steps)})")
    active = {}
    for m in last.get("otel_agent.step.active", []):
        for pt in fld(fld(m, "sum", {}), "dataPoints", []) or []:
            a = attrs(fld(pt, "attributes"))
            key = (a.get("gen_ai.operation.name"), a.get("otel_agent.step.name"))
            active[key] = as_number(fld(pt, "asInt")) or 0
    stuck = {f"{op} {name!r}": n for (op, name), n in active.items() if n != 0}
    check(bool(active) and not stuck,
          f"otel_agent.step.active is back to 0 for every series "
          f"({len(active)} series; not 0: {stuck})")

    print(f"rig: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
