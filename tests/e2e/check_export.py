#!/usr/bin/env python3
"""Check the OTLP traffic that otlp_sink.py recorded from the crew demo.

    check_export.py --in FILE (--expect-spans N | --demo-log LOG)
                    [--protocol grpc|http] [--service NAME]

Prints one `ok: ...` or `FAIL: ...` line per check, then
`e2e-<protocol>: X passed, Y failed`, and exits 1 if any check failed.

Input lines are the records written by otlp_sink.py ({"transport", "signal",
"request": MessageToDict(Export*ServiceRequest)}); a bare
ExportTraceServiceRequest / ExportMetricsServiceRequest dict per line is also
accepted. The reader copes with protobuf's JSON rendering: int64 values as
strings or numbers, enums as names or numbers, fields at their default value
left out, lowerCamelCase or proto field names, ids in base64 or hex.

Standard library only, so it can run with any python3.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import math
import re
import sys
from collections import Counter, defaultdict

# --------------------------------------------------------------------------
# Expected shape
# --------------------------------------------------------------------------
WORKFLOW = "invoke_workflow crew"
REQUIRED_SPANS = [
    WORKFLOW,
    "invoke_agent researcher",
    "invoke_agent writer",
    "execute_tool web_search",
    "chat gpt-4o",
    "chat claude-sonnet-4-5",
]
PARENT_OF = {  # span name -> required parent span name
    "execute_tool web_search": "invoke_agent researcher",
    "chat gpt-4o": "invoke_agent researcher",
    "chat claude-sonnet-4-5": "invoke_agent writer",
}
PROVIDER_OF_MODEL = {"gpt-4o": "openai", "claude-sonnet-4-5": "anthropic"}
STREAMED = "chat claude-sonnet-4-5"  # the writer streams its answer
TOOL = "execute_tool web_search"  # every third search times out
DURATION_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                   10.24, 20.48, 40.96, 81.92]
TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
                4194304, 16777216, 67108864]
STEP_PREFIXES = ("invoke_agent ", "execute_tool ", "invoke_workflow ")
PRODUCED_RE = re.compile(r"otel-agent: produced (\d+) spans")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

SPAN_KINDS = {0: "SPAN_KIND_UNSPECIFIED", 1: "SPAN_KIND_INTERNAL", 2: "SPAN_KIND_SERVER",
              3: "SPAN_KIND_CLIENT", 4: "SPAN_KIND_PRODUCER", 5: "SPAN_KIND_CONSUMER"}
STATUS_CODES = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}
TEMPORALITIES = {0: "AGGREGATION_TEMPORALITY_UNSPECIFIED", 1: "AGGREGATION_TEMPORALITY_DELTA",
                 2: "AGGREGATION_TEMPORALITY_CUMULATIVE"}
METRIC_DATA_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
MAX_DETAILS = 4


# --------------------------------------------------------------------------
# Tolerant readers for MessageToDict output
# --------------------------------------------------------------------------
def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def fld(obj, name, default=None):
    """Field `name` (lowerCamelCase) of a dict, also under its proto name."""
    if not isinstance(obj, dict):
        return default
    if name in obj:
        return obj[name]
    return obj.get(_snake(name), default)


def as_int(value):
    """int64/uint64 fields arrive as JSON strings or numbers."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def as_float(value):
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):  # "NaN", "Infinity" or a quoted number
        try:
            return float(value)
        except ValueError:
            return None
    return None


def enum_name(value, names: dict, default_code=0) -> str:
    if value is None:
        return names[default_code]
    if isinstance(value, int):
        return names.get(value, str(value))
    if isinstance(value, str) and value.isdigit():
        return names.get(int(value), value)
    return str(value)


def norm_id(value):
    """Span/trace id as lowercase hex; MessageToDict gives base64, OTLP/JSON hex."""
    if not value:
        return None
    text = str(value)
    if len(text) in (16, 32) and re.fullmatch(r"[0-9a-fA-F]+", text):
        return text.lower()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
    except (binascii.Error, ValueError):
        return text
    if raw and not any(raw):
        return None  # all-zero id means "no id"
    return raw.hex() if raw else None


def any_value(value):
    """Decode an AnyValue dict into a Python value.

    stringValue -> str, intValue -> int, doubleValue -> float, boolValue -> bool,
    arrayValue -> list, kvlistValue -> dict, bytesValue -> bytes, empty -> None.
    """
    if not isinstance(value, dict):
        return value
    if "stringValue" in value or "string_value" in value:
        return str(fld(value, "stringValue"))
    if "intValue" in value or "int_value" in value:
        return as_int(fld(value, "intValue"))
    if "doubleValue" in value or "double_value" in value:
        return as_float(fld(value, "doubleValue"))
    if "boolValue" in value or "bool_value" in value:
        return bool(fld(value, "boolValue"))
    if "arrayValue" in value or "array_value" in value:
        return [any_value(v) for v in fld(fld(value, "arrayValue"), "values", []) or []]
    if "kvlistValue" in value or "kvlist_value" in value:
        return attrs(fld(fld(value, "kvlistValue"), "values", []))
    if "bytesValue" in value or "bytes_value" in value:
        try:
            return base64.b64decode(fld(value, "bytesValue"))
        except (binascii.Error, ValueError):
            return fld(value, "bytesValue")
    return None


def attrs(kvs) -> dict:
    out = {}
    for kv in kvs or []:
        out[fld(kv, "key")] = any_value(fld(kv, "value"))
    return out


def freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def is_pos_int(value) -> bool:
    return type(value) is int and value > 0  # noqa: E721 - bool is not ok


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
class Span:
    def __init__(self, raw: dict, resource: dict, order: int):
        self.raw = raw
        self.resource = resource
        self.order = order
        self.name = fld(raw, "name", "") or ""
        self.trace_id = norm_id(fld(raw, "traceId"))
        self.span_id = norm_id(fld(raw, "spanId"))
        self.parent_id = norm_id(fld(raw, "parentSpanId"))
        self.kind = enum_name(fld(raw, "kind"), SPAN_KINDS)
        self.status = enum_name(fld(fld(raw, "status", {}), "code"), STATUS_CODES)
        self.attrs = attrs(fld(raw, "attributes"))

    def label(self) -> str:
        return f"'{self.name}' {self.span_id or '?'}"


class Metric:
    def __init__(self, raw: dict, resource: dict, scope: str, order: int):
        self.raw = raw
        self.resource = resource
        self.scope = scope
        self.order = order
        self.name = fld(raw, "name", "")
        self.unit = fld(raw, "unit", "") or ""
        self.kind = next((k for k in METRIC_DATA_KINDS
                          if k in raw or _snake(k) in raw), None)
        data = fld(raw, self.kind, {}) if self.kind else {}
        self.temporality = enum_name(fld(data, "aggregationTemporality"), TEMPORALITIES)
        self.monotonic = bool(fld(data, "isMonotonic", False))
        self.points = fld(data, "dataPoints", []) or []


class Export:
    def __init__(self):
        self.records = 0
        self.transports = Counter()
        self.trace_requests = 0
        self.metric_requests = 0
        self.bad_lines = []
        self.spans: list[Span] = []
        self.metrics: list[Metric] = []
        self.resources: list[tuple[str, dict]] = []  # (signal, attributes)


def load(path: str, protocol: str | None) -> Export:
    exp = Export()
    order = 0
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                exp.bad_lines.append(f"line {lineno}: {exc}")
                continue
            if "request" in rec:
                transport, body = rec.get("transport"), rec["request"]
            else:  # a bare Export*ServiceRequest
                transport, body = None, rec
            if protocol and transport and transport != protocol:
                continue
            exp.records += 1
            exp.transports[transport or "?"] += 1
            if "resourceSpans" in body or "resource_spans" in body:
                exp.trace_requests += 1
                for rs in fld(body, "resourceSpans", []):
                    res = attrs(fld(fld(rs, "resource", {}), "attributes"))
                    exp.resources.append(("traces", res))
                    for ss in fld(rs, "scopeSpans", []) or []:
                        for sp in fld(ss, "spans", []) or []:
                            order += 1
                            exp.spans.append(Span(sp, res, order))
            if "resourceMetrics" in body or "resource_metrics" in body:
                exp.metric_requests += 1
                for rm in fld(body, "resourceMetrics", []):
                    res = attrs(fld(fld(rm, "resource", {}), "attributes"))
                    exp.resources.append(("metrics", res))
                    for sm in fld(rm, "scopeMetrics", []) or []:
                        scope = fld(fld(sm, "scope", {}), "name", "") or ""
                        for m in fld(sm, "metrics", []) or []:
                            order += 1
                            exp.metrics.append(Metric(m, res, scope, order))
    return exp


def expected_from_log(path: str):
    """N from the last `otel-agent: produced N spans` line, plus all values seen."""
    seen = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = PRODUCED_RE.search(ANSI_RE.sub("", line))
            if m:
                seen.append(int(m.group(1)))
    return (seen[-1] if seen else None), seen


# --------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------
class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str, problems=None):
        if ok:
            self.passed += 1
            print(f"ok: {what}")
        else:
            self.failed += 1
            detail = ""
            if problems:
                shown = "; ".join(str(p) for p in problems[:MAX_DETAILS])
                more = len(problems) - MAX_DETAILS
                detail = f" -- {shown}" + (f" (+{more} more)" if more > 0 else "")
            print(f"FAIL: {what}{detail}")
        sys.stdout.flush()

    def all_of(self, items, predicate, what: str, empty_ok=False):
        """One check over many items; predicate returns None if fine, else a problem."""
        items = list(items)
        problems = [p for p in (predicate(i) for i in items) if p]
        if not items and not empty_ok:
            self.check(False, what, ["nothing to check (no matching items)"])
            return
        self.check(not problems, f"{what} [{len(items)} checked]", problems)


def bounds_equal(got, want) -> bool:
    got = [as_float(b) for b in (got or [])]
    return len(got) == len(want) and all(
        g is not None and math.isclose(g, w, rel_tol=1e-12, abs_tol=0.0)
        for g, w in zip(got, want))


def latest_total(metric_list, value_of, point_filter=lambda a: True):
    """Total over series: latest point per series if cumulative, sum if delta."""
    latest = {}
    delta_total = 0
    for m in metric_list:
        for idx, pt in enumerate(m.points):
            pattrs = attrs(fld(pt, "attributes"))
            if not point_filter(pattrs):
                continue
            val = value_of(pt)
            if m.temporality == "AGGREGATION_TEMPORALITY_DELTA":
                delta_total += val
                continue
            key = (freeze(m.resource), m.scope, m.name, freeze(pattrs))
            stamp = (as_int(fld(pt, "timeUnixNano")) or 0, m.order, idx)
            if key not in latest or stamp > latest[key][0]:
                latest[key] = (stamp, val)
    return delta_total + sum(v for _, v in latest.values()), len(latest)


def point_count(pt):
    return as_int(fld(pt, "count")) or 0


def point_number(pt):
    if "asInt" in pt or "as_int" in pt:
        return as_int(fld(pt, "asInt")) or 0
    return as_float(fld(pt, "asDouble")) or 0


def run_checks(exp: Export, args, expected, c: Checker):
    proto = args.protocol or "any transport"
    c.check(not exp.bad_lines, f"input: every line of {args.input} is JSON", exp.bad_lines)
    c.check(exp.trace_requests > 0,
            f"input: trace export requests received over {proto} ({exp.trace_requests})")
    c.check(exp.metric_requests > 0,
            f"input: metrics export requests received over {proto} ({exp.metric_requests})")

    # ---- resource -------------------------------------------------------
    c.all_of(exp.resources,
             lambda r: None if r[1].get("service.name") == args.service
             else f"{r[0]} resource has service.name={r[1].get('service.name')!r}",
             f"resource: service.name == {args.service!r} on every resource")

    # ---- span identity --------------------------------------------------
    ids = Counter(s.span_id for s in exp.spans)
    dups = [f"span id {sid} x{n}" for sid, n in ids.items() if n > 1]
    distinct = len(ids)
    if expected is None:
        c.check(False, "spans: expected span count known",
                ["no --expect-spans and no 'otel-agent: produced N spans' line"])
    else:
        c.check(distinct == expected,
                f"spans: {distinct} distinct spans received, demo produced {expected}")
    c.check(not dups, f"spans: no span id received twice ({len(exp.spans)} span records)", dups)
    c.all_of(exp.spans, lambda s: None if s.trace_id and s.span_id
             else f"{s.label()} lacks traceId/spanId", "spans: every span has trace and span ids")

    by_name = defaultdict(list)
    for s in exp.spans:
        by_name[s.name].append(s)
    for name in REQUIRED_SPANS:
        c.check(bool(by_name.get(name)), f"spans: '{name}' present ({len(by_name.get(name, []))})")

    chats = [s for s in exp.spans if s.name.startswith("chat ")]
    others = [s for s in exp.spans if not s.name.startswith("chat ")]
    c.all_of(chats, lambda s: None if s.kind == "SPAN_KIND_CLIENT" else f"{s.label()} is {s.kind}",
             "kind: 'chat *' spans are SPAN_KIND_CLIENT")
    c.all_of(others, lambda s: None if s.kind == "SPAN_KIND_INTERNAL" else f"{s.label()} is {s.kind}",
             "kind: non-chat spans are SPAN_KIND_INTERNAL")

    # ---- parent links ---------------------------------------------------
    index = {}
    for s in exp.spans:
        index.setdefault((s.trace_id, s.span_id), s)

    def parent(s):
        return index.get((s.trace_id, s.parent_id)) if s.parent_id else None

    c.all_of(by_name.get(WORKFLOW, []),
             lambda s: None if not s.parent_id else f"{s.label()} has parent {s.parent_id}",
             f"parents: every '{WORKFLOW}' is a root span")

    def parent_named(want):
        def pred(s):
            p = parent(s)
            if p is None:
                return f"{s.label()}: parent {s.parent_id or '(none)'} not received"
            if p.name != want:
                return f"{s.label()}: parent is '{p.name}'"
            return None
        return pred

    agents = [s for s in exp.spans if s.name.startswith("invoke_agent ")]
    c.all_of(agents, parent_named(WORKFLOW),
             f"parents: every 'invoke_agent *' has a '{WORKFLOW}' parent in its trace")
    for child, want in PARENT_OF.items():
        c.all_of(by_name.get(child, []), parent_named(want),
                 f"parents: every '{child}' has a '{want}' parent")
    c.all_of([s for s in exp.spans if s.parent_id],
             lambda s: None if parent(s) else f"{s.label()}: parent {s.parent_id} missing",
             "parents: every parentSpanId refers to a received span (no orphans)")

    # ---- attributes -----------------------------------------------------
    def chat_request_attrs(s):
        model = s.name[len("chat "):]
        a = s.attrs
        bad = []
        if a.get("gen_ai.operation.name") != "chat":
            bad.append(f"gen_ai.operation.name={a.get('gen_ai.operation.name')!r}")
        want_provider = PROVIDER_OF_MODEL.get(model)
        got_provider = a.get("gen_ai.provider.name")
        if want_provider and got_provider != want_provider:
            bad.append(f"gen_ai.provider.name={got_provider!r} (want {want_provider!r})")
        if not want_provider and not (isinstance(got_provider, str) and got_provider):
            bad.append("gen_ai.provider.name missing")
        if a.get("gen_ai.request.model") != model:
            bad.append(f"gen_ai.request.model={a.get('gen_ai.request.model')!r}")
        return f"{s.label()}: {', '.join(bad)}" if bad else None

    c.all_of(chats, chat_request_attrs,
             "attrs: chat spans carry operation.name=chat, provider.name, request.model")

    def chat_response_attrs(s):
        a = s.attrs
        bad = []
        for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
            if not is_pos_int(a.get(key)):
                bad.append(f"{key}={a.get(key)!r}")
        if not (isinstance(a.get("gen_ai.response.model"), str) and a["gen_ai.response.model"]):
            bad.append(f"gen_ai.response.model={a.get('gen_ai.response.model')!r}")
        fr = a.get("gen_ai.response.finish_reasons")
        if not (isinstance(fr, list) and fr and all(isinstance(x, str) for x in fr)):
            bad.append(f"gen_ai.response.finish_reasons={fr!r} (want non-empty string array)")
        return f"{s.label()}: {', '.join(bad)}" if bad else None

    ok_chats = [s for s in chats if s.status != "STATUS_CODE_ERROR"]
    c.all_of(ok_chats, chat_response_attrs,
             "attrs: OK/UNSET chat spans carry usage tokens > 0, response.model, finish_reasons[]")

    err_chats = [s for s in chats if s.status == "STATUS_CODE_ERROR"]
    c.check(any(s.attrs.get("error.type") for s in err_chats),
            f"errors: a chat span has status ERROR and error.type ({len(err_chats)} ERROR chat spans)")
    c.all_of(err_chats, lambda s: None if s.attrs.get("error.type")
             else f"{s.label()} lacks error.type",
             "errors: every ERROR chat span carries error.type", empty_ok=True)

    def agent_attrs(s):
        a = s.attrs
        bad = []
        if a.get("gen_ai.operation.name") != "invoke_agent":
            bad.append(f"gen_ai.operation.name={a.get('gen_ai.operation.name')!r}")
        if not a.get("gen_ai.agent.name"):
            bad.append("gen_ai.agent.name missing")
        return f"{s.label()}: {', '.join(bad)}" if bad else None

    c.all_of(agents, agent_attrs, "attrs: invoke_agent spans carry operation.name, agent.name")

    def exact_attrs(want: dict):
        def pred(s):
            bad = [f"{k}={s.attrs.get(k)!r}" for k, v in want.items() if s.attrs.get(k) != v]
            return f"{s.label()}: {', '.join(bad)}" if bad else None
        return pred

    c.all_of(by_name.get("execute_tool web_search", []),
             exact_attrs({"gen_ai.tool.name": "web_search",
                          "gen_ai.operation.name": "execute_tool"}),
             "attrs: execute_tool web_search carries tool.name, operation.name")
    failed_tools = [s for s in by_name.get(TOOL, []) if s.status == "STATUS_CODE_ERROR"]
    c.check(bool(failed_tools) and all(s.attrs.get("error.type") for s in failed_tools),
            f"errors: a '{TOOL}' span has status ERROR and error.type "
            f"({sorted({str(s.attrs.get('error.type')) for s in failed_tools})})")

    def streamed_attrs(s):
        ttfc = s.attrs.get("gen_ai.response.time_to_first_chunk")
        bad = []
        if s.attrs.get("gen_ai.request.stream") is not True:
            bad.append(f"gen_ai.request.stream={s.attrs.get('gen_ai.request.stream')!r}")
        if not (isinstance(ttfc, float) and ttfc > 0):
            bad.append(f"gen_ai.response.time_to_first_chunk={ttfc!r}")
        return f"{s.label()}: {', '.join(bad)}" if bad else None

    streamed = by_name.get(STREAMED, [])
    c.all_of([s for s in streamed if s.status != "STATUS_CODE_ERROR"], streamed_attrs,
             f"attrs: answered '{STREAMED}' (streamed) carries request.stream=true, "
             "response.time_to_first_chunk > 0")
    first_chunks = [s for s in streamed if "gen_ai.response.time_to_first_chunk" in s.attrs]
    c.all_of(by_name.get(WORKFLOW, []),
             exact_attrs({"gen_ai.workflow.name": "crew",
                          "gen_ai.operation.name": "invoke_workflow"}),
             "attrs: workflow span carries workflow.name=crew, operation.name=invoke_workflow")

    # ---- metrics --------------------------------------------------------
    metrics = defaultdict(list)
    for m in exp.metrics:
        metrics[m.name].append(m)

    def shape(name, kind=None, unit=None, bounds=None, monotonic=None):
        """One check on type/unit/monotonicity/bounds of every export of `name`."""
        ms = metrics.get(name, [])
        props = []
        if kind is not None:
            props.append(f"a {'monotonic ' if monotonic else 'non-monotonic ' if monotonic is not None else ''}{kind}")
        if unit is not None:
            props.append(f"unit {unit!r}")
        if bounds is not None:
            props.append("bucket bounds as specified")
        what = f"metrics: {name}: {', '.join(props)}"
        if not ms:
            c.check(False, what, ["not received"])
            return []
        problems = []
        for m in ms:
            if kind is not None and m.kind != kind:
                problems.append(f"type {m.kind}")
            if unit is not None and m.unit != unit:
                problems.append(f"unit {m.unit!r}")
            if monotonic is not None and m.monotonic != monotonic:
                problems.append(f"isMonotonic {str(m.monotonic).lower()}")
            if bounds is not None:
                for pt in m.points:
                    if not bounds_equal(fld(pt, "explicitBounds"), bounds):
                        problems.append(f"explicitBounds {fld(pt, 'explicitBounds')}")
                        break
        c.check(not problems, f"{what} [{len(ms)} exports]", sorted(set(problems)))
        return ms

    dur = shape("gen_ai.client.operation.duration", "histogram", "s", DURATION_BOUNDS)
    if dur:
        c.all_of([pt for m in dur for pt in m.points],
                 lambda pt: None if all(attrs(fld(pt, "attributes")).get(k) for k in (
                     "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model"))
                 else f"point attributes {sorted(attrs(fld(pt, 'attributes')))}",
                 "metrics: operation.duration points carry operation/provider/request.model")
        total, series = latest_total(
            dur, point_count, lambda a: a.get("gen_ai.operation.name") == "chat")
        c.check(total == len(chats),
                f"metrics: operation.duration chat count {total} ({series} series) "
                f"== chat spans received {len(chats)}")

    ttfc = shape("gen_ai.client.operation.time_to_first_chunk", "histogram", "s",
                 DURATION_BOUNDS)
    if ttfc:
        total, series = latest_total(ttfc, point_count)
        c.check(total == len(first_chunks) and total > 0,
                f"metrics: time_to_first_chunk count {total} ({series} series) == "
                f"streamed spans with a time to first chunk {len(first_chunks)}")

    tok = shape("gen_ai.client.token.usage", "histogram", "{token}", TOKEN_BOUNDS)
    if tok:
        types = {attrs(fld(pt, "attributes")).get("gen_ai.token.type")
                 for m in tok for pt in m.points}
        c.check({"input", "output"} <= types,
                f"metrics: token.usage has gen_ai.token.type input and output (saw {sorted(map(str, types))})")
        # Every successful call records one input and one output measurement;
        # the exports are cumulative, so the last one holds them all, including
        # those recorded just before exit.
        for kind in ("input", "output"):
            total, series = latest_total(
                tok, point_count, lambda a, k=kind: a.get("gen_ai.token.type") == k)
            c.check(total == len(ok_chats),
                    f"metrics: token.usage {kind}: {total} of {len(ok_chats)} measurements "
                    f"arrived ({series} series; one per OK chat span)")

    # Counted once: backends (Langfuse, a Tempo or Honeycomb query) sum
    # gen_ai.usage.* over every span of a trace, so only the spans of calls
    # that talked to the model may carry it; steps carry our roll-up keys.
    traces = defaultdict(list)
    for s in exp.spans:
        traces[s.trace_id].append(s)
    for kind in ("input", "output"):
        key = f"gen_ai.usage.{kind}_tokens"
        rollup = f"otel_agent.rollup.usage.{kind}_tokens"
        problems = []
        for trace_id, spans in traces.items():
            over_all = sum(as_int(s.attrs.get(key)) or 0 for s in spans)
            over_chats = sum(as_int(s.attrs.get(key)) or 0 for s in spans
                             if s.attrs.get("gen_ai.operation.name") == "chat")
            rolled = [as_int(s.attrs.get(rollup)) for s in spans if s.name == WORKFLOW]
            if over_all != over_chats or any(r != over_chats for r in rolled):
                problems.append(f"trace {trace_id}: all spans {over_all}, chat spans "
                                f"{over_chats}, workflow {rollup} {rolled}")
        c.check(not problems and bool(traces),
                f"usage: in each of {len(traces)} traces, sum of {key} over all spans == "
                f"over the chat spans == the workflow's {rollup}", problems)
        if tok:
            over_all = sum(as_int(s.attrs.get(key)) or 0 for s in exp.spans)
            reported, _ = latest_total(
                tok, lambda pt: as_float(fld(pt, "sum")) or 0,
                lambda a, k=kind: a.get("gen_ai.token.type") == k)
            c.check(over_all == round(reported) and over_all > 0,
                    f"usage: sum of {key} over all spans {over_all} == the tokens the "
                    f"model reported (token.usage {kind} sum {reported:g})")
    with_usage = [s.label() for s in exp.spans if s.name.startswith(STEP_PREFIXES)
                  and any(k.startswith("gen_ai.usage.") for k in s.attrs)]
    c.check(not with_usage, "usage: no step span carries gen_ai.usage.*", with_usage)

    steps = [s for s in exp.spans if s.name.startswith(STEP_PREFIXES)]
    step_duration = shape("otel_agent.step.duration", unit="s")
    if step_duration:
        total, series = latest_total(step_duration, point_count)
        c.check(total == len(steps),
                f"metrics: otel_agent.step.duration: {total} of {len(steps)} measurements "
                f"arrived ({series} series; one per step span)")
    calls = shape("otel_agent.step.calls", "sum", monotonic=True)
    if calls:
        total, series = latest_total(calls, point_number)
        c.check(total == len(steps),
                f"metrics: otel_agent.step.calls total {total} ({series} series) == "
                f"invoke_agent+execute_tool+invoke_workflow spans received {len(steps)}")
    active = shape("otel_agent.step.active", "sum", monotonic=False)
    if active:
        total, series = latest_total(active, point_number)
        c.check(total == 0,
                f"metrics: otel_agent.step.active is back to 0 in the last export ({total}, "
                f"{series} series): the export at exit arrived")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Check OTLP export recorded by otlp_sink.py")
    p.add_argument("--in", dest="input", required=True, help="JSON-lines file from otlp_sink.py")
    p.add_argument("--expect-spans", type=int, help="number of spans the demo produced")
    p.add_argument("--demo-log", help="demo output containing 'otel-agent: produced N spans'")
    p.add_argument("--protocol", choices=["grpc", "http"],
                   help="only look at requests that came in over this transport")
    p.add_argument("--service", default="crew-demo", help="expected service.name")
    args = p.parse_args(argv)
    if args.expect_spans is None and not args.demo_log:
        p.error("give --expect-spans N or --demo-log FILE")

    label = f"e2e-{args.protocol or 'all'}"
    c = Checker()

    expected = args.expect_spans
    if args.demo_log:
        try:
            from_log, seen = expected_from_log(args.demo_log)
        except OSError as exc:
            from_log, seen = None, []
            c.check(False, f"demo log {args.demo_log} readable", [exc])
        else:
            c.check(from_log is not None,
                    f"demo log reports produced spans ({', '.join(map(str, seen)) or 'none'})")
        if args.expect_spans is not None and from_log is not None:
            c.check(from_log == args.expect_spans,
                    f"--expect-spans {args.expect_spans} agrees with demo log ({from_log})")
        if expected is None:
            expected = from_log

    try:
        exp = load(args.input, args.protocol)
    except OSError as exc:
        c.check(False, f"input: {args.input} readable", [exc])
    else:
        run_checks(exp, args, expected, c)

    print(f"{label}: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
