#!/usr/bin/env python3
"""Read the crew demo back from real LLM-observability backends, through their APIs.

    check_backends.py --demo-log LOG [--capture]
                      [--mlflow URL [--mlflow-experiment ID]]
                      [--phoenix URL [--phoenix-project NAME]]
                      [--service NAME] [--wait SECONDS]

The demo (examples/crew.rs) was run once per backend with OTEL_* variables only
(tests/e2e/requirements-backends.txt pins the backends; .ci/run starts them).
LOG is that run's standard output: its `[i/N] topic: article` lines say what
each iteration asked and answered (or that it failed), and its last line how
many spans it produced. Each backend is then asked, through its own API:

  - every trace and span arrived (one trace per iteration, N spans in all);
  - span types: chat -> MLflow CHAT_MODEL / Phoenix LLM, invoke_agent -> AGENT,
    execute_tool -> TOOL, invoke_workflow -> CHAIN;
  - tokens counted once: the backend's per-span usage equals the
    gen_ai.usage.* the call reported and sits on provider calls only; its trace
    total equals the sum over the calls and the demo's own roll-up on the root
    (otel_agent.rollup.usage.*);
  - model and provider of every call;
  - error status on the failing calls, the failing tool and the failed runs'
    roots, and on nothing else; session and user of every trace;
  - with --capture (the demo ran with content capture on): every answered chat's
    messages, every tool call's arguments and (if it succeeded) result, and each
    run's request and answer on its root - MLflow's trace request/response
    preview, Phoenix's root input/output.

MLflow is read with its Python client (MlflowClient.search_traces), Phoenix with
its REST (/v1/projects/{project}/spans) and GraphQL (/graphql) APIs. Prints one
`ok: backend: ...` or `FAIL: backend: ...` line per check and ends with
`backends: N passed, M failed`; exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict

from check_export import Checker  # one ok/FAIL line per check, as the export check's

WORKFLOW = "invoke_workflow crew"
PROVIDER_OF_MODEL = {"gpt-4o": "openai", "claude-sonnet-4-5": "anthropic"}
ITERATION_RE = re.compile(r"^\[(\d+)/[^\]]+\] (.*?): (.*)$")
PRODUCED_RE = re.compile(r"otel-agent: produced (\d+) spans")

# What each backend calls our span kinds.
EXPECTED_TYPE = {
    "mlflow": {"chat": "CHAT_MODEL", "invoke_agent": "AGENT",
               "execute_tool": "TOOL", "invoke_workflow": "CHAIN"},
    "phoenix": {"chat": "LLM", "invoke_agent": "AGENT",
                "execute_tool": "TOOL", "invoke_workflow": "CHAIN"},
}


# --------------------------------------------------------------------------
# What the demo did
# --------------------------------------------------------------------------
class Iteration:
    def __init__(self, number: int, topic: str, rest: str):
        self.number = number
        self.session = f"session-{number}"
        self.topic = topic
        self.failed = rest.startswith("failed: ")
        self.article = None if self.failed else rest


def read_demo_log(path: str):
    iterations, produced = [], None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if m := ITERATION_RE.match(line):
                iterations.append(Iteration(int(m.group(1)), m.group(2), m.group(3)))
            if m := PRODUCED_RE.search(line):
                produced = int(m.group(1))
    return iterations, produced


# --------------------------------------------------------------------------
# One neutral view of a stored span, whatever the backend
# --------------------------------------------------------------------------
class Span:
    """A span as the backend stored and interpreted it.

    raw: our attributes as stored (gen_ai.*, otel_agent.*, session.id, ...);
    kind: the backend's span type; error: the backend's status says error;
    tokens: the backend's own (input, output) reading, or None;
    model / provider: the backend's reading; inputs / outputs: what the backend
    shows as the span's input and output (None when it shows nothing)."""

    def __init__(self, **kw):
        self.name = kw["name"]
        self.span_id = kw["span_id"]
        self.parent_id = kw["parent_id"]
        self.trace_id = kw["trace_id"]
        self.raw = kw["raw"]
        self.kind = kw["kind"]
        self.error = kw["error"]
        self.tokens = kw["tokens"]
        self.model = kw["model"]
        self.provider = kw["provider"]
        self.inputs = kw["inputs"]
        self.outputs = kw["outputs"]

    @property
    def operation(self) -> str:
        return self.name.split(" ", 1)[0]

    def label(self) -> str:
        return f"'{self.name}' {self.span_id}"


class Trace:
    """A trace: its spans, and the backend's trace-level reading."""

    def __init__(self, trace_id, spans, total, error, session, user, request, response):
        self.trace_id = trace_id
        self.spans = spans
        self.total = total  # (input, output) as the backend sums them, or None
        self.error = error
        self.session = session
        self.user = user
        self.request = request  # what the backend shows as the run's request
        self.response = response

    @property
    def root(self):
        return next((s for s in self.spans if not s.parent_id), None)


def text_of(value) -> str:
    """Everything a shown input/output says, as one string (JSON flattened)."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            return text_of(json.loads(value)) if value[:1] in "[{\"" else value
        except ValueError:
            return value
    if isinstance(value, dict):
        return " ".join(text_of(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(text_of(v) for v in value)
    return str(value)


def as_int(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    try:
        return int(str(value))
    except ValueError:
        return None


# --------------------------------------------------------------------------
# MLflow: the Python client
# --------------------------------------------------------------------------
def load_mlflow(url: str, experiment: str, service: str):
    from mlflow import MlflowClient  # the backends' venv

    client = MlflowClient(tracking_uri=url)
    traces, token = [], None
    while True:
        page = client.search_traces(locations=[experiment], max_results=100,
                                    page_token=token, include_spans=True)
        traces.extend(page)
        token = page.token
        if not token:
            break
    out = []
    for t in traces:
        info = t.info
        if info.tags.get("service.name", service) != service:
            continue
        spans = []
        for s in t.data.spans:
            attrs = dict(s.attributes)
            usage = attrs.get("mlflow.chat.tokenUsage")
            if isinstance(usage, str):
                usage = json.loads(usage)
            spans.append(Span(
                name=s.name, span_id=s.span_id, parent_id=s.parent_id, trace_id=info.trace_id,
                raw={k: v for k, v in attrs.items() if not k.startswith("mlflow.")},
                kind=s.span_type or "UNKNOWN",
                error=str(getattr(s.status.status_code, "value", s.status.status_code)) == "ERROR",
                tokens=(usage.get("input_tokens"), usage.get("output_tokens")) if usage else None,
                model=attrs.get("mlflow.llm.model"), provider=attrs.get("mlflow.llm.provider"),
                inputs=s.inputs, outputs=s.outputs))
        usage = info.token_usage
        meta = info.trace_metadata or {}
        out.append(Trace(
            info.trace_id, spans,
            (usage.get("input_tokens"), usage.get("output_tokens")) if usage else None,
            str(getattr(info.state, "value", info.state)) == "ERROR",
            meta.get("mlflow.trace.session"), meta.get("mlflow.trace.user"),
            info.request_preview, info.response_preview))
    return out


# --------------------------------------------------------------------------
# Phoenix: REST for spans, GraphQL for trace-level readings
# --------------------------------------------------------------------------
def http_json(url: str, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


PHOENIX_TRACE_QUERY = """
query ($project: ID!, $trace: ID!) {
  node(id: $project) {
    ... on Project {
      trace(traceId: $trace) {
        session { sessionId }
        rootSpan {
          statusCode
          cumulativeTokenCountPrompt
          cumulativeTokenCountCompletion
          input { value }
          output { value }
        }
      }
    }
  }
}"""


def load_phoenix(url: str, project: str):
    url = url.rstrip("/")
    projects = http_json(f"{url}/v1/projects")["data"]
    project_id = next((p["id"] for p in projects if p["name"] == project), None)
    if project_id is None:
        return []
    raw_spans, cursor = [], None
    while True:
        query = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = http_json(f"{url}/v1/projects/{urllib.parse.quote(project)}/spans?"
                         + urllib.parse.urlencode(query))
        raw_spans.extend(page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    by_trace = defaultdict(list)
    for s in raw_spans:
        a = s.get("attributes") or {}
        prompt, completion = a.get("llm.token_count.prompt"), a.get("llm.token_count.completion")
        shown_input = a.get("input.value")
        if s["span_kind"] == "TOOL" and shown_input is None:
            # The tool panel's input: tool.parameters, a JSON object stored unfolded.
            shown_input = {k: v for k, v in a.items()
                           if k == "tool.parameters" or k.startswith("tool.parameters.")} or None
        if s["span_kind"] == "LLM":
            # An LLM span shows its chat messages.
            ins = [a[k] for k in sorted(a) if k.startswith("llm.input_messages.")
                   and k.endswith(".message.content")]
            outs = [a[k] for k in sorted(a) if k.startswith("llm.output_messages.")
                    and k.endswith(".message.content")]
            shown_input, shown_output = (ins or None), (outs or None)
        else:
            shown_output = a.get("output.value")
        by_trace[s["context"]["trace_id"]].append(Span(
            name=s["name"], span_id=s["context"]["span_id"], parent_id=s.get("parent_id"),
            trace_id=s["context"]["trace_id"],
            raw={k: v for k, v in a.items()
                 if not k.startswith(("llm.", "input.", "output.", "tool.", "openinference."))},
            kind=s["span_kind"], error=s["status_code"] == "ERROR",
            tokens=(prompt, completion) if prompt is not None or completion is not None else None,
            model=a.get("llm.model_name"), provider=a.get("llm.provider"),
            inputs=shown_input, outputs=shown_output))
    out = []
    for trace_id, spans in by_trace.items():
        got = http_json(f"{url}/graphql", {"query": PHOENIX_TRACE_QUERY,
                                           "variables": {"project": project_id, "trace": trace_id}})
        t = ((got.get("data") or {}).get("node") or {}).get("trace") or {}
        root = t.get("rootSpan") or {}
        prompt, completion = root.get("cumulativeTokenCountPrompt"), root.get("cumulativeTokenCountCompletion")
        root_span = next((s for s in spans if not s.parent_id), None)
        out.append(Trace(
            trace_id, spans,
            (as_int(prompt), as_int(completion)) if root else None,
            root.get("statusCode") == "ERROR",
            (t.get("session") or {}).get("sessionId"),
            root_span.raw.get("user.id") if root_span else None,
            (root.get("input") or {}).get("value"), (root.get("output") or {}).get("value")))
    return out


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
def fetch_until_complete(backend, load, iterations, produced, wait):
    """The backend's traces of this run, polled until all the spans are in."""
    deadline = time.monotonic() + wait
    error = None
    while True:
        try:
            traces = [t for t in load() if any(s.name == WORKFLOW for s in t.spans)]
            error = None
        except Exception as exc:  # the backend is down or answers nonsense
            traces, error = [], f"{type(exc).__name__}: {exc}"
        spans = sum(len(t.spans) for t in traces)
        if (len(traces) >= len(iterations) and (produced is None or spans >= produced)) \
                or time.monotonic() > deadline:
            return traces, error
        time.sleep(1)


def check_backend(c: Checker, backend: str, traces, iterations, produced, capture):
    b = backend
    types = EXPECTED_TYPE[backend]
    spans = [s for t in traces for s in t.spans]
    c.check(len(traces) == len(iterations),
            f"{b}: one trace per iteration ({len(traces)} traces with a '{WORKFLOW}' root, "
            f"{len(iterations)} iterations)")
    c.check(produced is not None and len(spans) == produced,
            f"{b}: every span arrived ({len(spans)} stored, the demo produced {produced})")

    by_session = {t.session: t for t in traces}
    c.all_of(iterations, lambda it: None if it.session in by_session
             else f"no trace with session {it.session}",
             f"{b}: each iteration's trace carries its session id (session-N)")
    c.all_of(traces, lambda t: None if t.user == "demo-user" else f"trace {t.trace_id}: user {t.user!r}",
             f"{b}: each trace carries user demo-user")

    # ---- types
    for operation, want in types.items():
        these = [s for s in spans if s.operation == operation]
        c.all_of(these, lambda s, want=want: None if s.kind == want else f"{s.label()} is {s.kind}",
                 f"{b}: '{operation}' spans are typed {want}")

    # ---- tokens, counted once
    chats = [s for s in spans if s.operation == "chat"]
    answered = [s for s in chats if not s.error]

    def span_tokens(s):
        want = (as_int(s.raw.get("gen_ai.usage.input_tokens")),
                as_int(s.raw.get("gen_ai.usage.output_tokens")))
        if None in want:
            return f"{s.label()}: no gen_ai.usage.* sent"
        got = tuple(as_int(x) for x in s.tokens) if s.tokens else None
        return None if got == want else f"{s.label()}: {b} reads {got}, the call reported {want}"

    c.all_of(answered, span_tokens,
             f"{b}: each answered call's tokens (in, out) as reported by the call")
    others = [s for s in spans if s.operation != "chat" or s.error]
    c.all_of(others, lambda s: None if not s.tokens else f"{s.label()}: {b} reads tokens {s.tokens}",
             f"{b}: no tokens on steps or failed calls (roll-ups use otel_agent.rollup.usage.*)")

    def trace_tokens(t):
        calls = [s for s in t.spans if s.tokens]
        summed = (sum(as_int(s.tokens[0]) or 0 for s in calls),
                  sum(as_int(s.tokens[1]) or 0 for s in calls))
        root = t.root
        rolled = (as_int(root.raw.get("otel_agent.rollup.usage.input_tokens")),
                  as_int(root.raw.get("otel_agent.rollup.usage.output_tokens"))) if root else None
        total = tuple(as_int(x) for x in t.total) if t.total else None
        if total == summed == rolled:
            return None
        return (f"trace {t.session or t.trace_id}: {b} total {total}, sum over calls {summed}, "
                f"demo's roll-up on the root {rolled}")

    c.all_of(traces, trace_tokens,
             f"{b}: each trace's token total == sum over its calls == the demo's roll-up")

    # ---- model and provider
    def model_provider(s):
        asked = s.raw.get("gen_ai.request.model")
        want_provider = PROVIDER_OF_MODEL.get(asked)
        bad = []
        if not (isinstance(s.model, str) and asked and s.model.startswith(asked)):
            bad.append(f"model {s.model!r} (asked {asked!r})")
        if s.provider != want_provider:
            bad.append(f"provider {s.provider!r} (want {want_provider!r})")
        return f"{s.label()}: {', '.join(bad)}" if bad else None

    c.all_of(chats, model_provider, f"{b}: each call's model and provider")

    # ---- errors
    failed = {it.session for it in iterations if it.failed}
    c.check(bool(failed), f"{b}: the demo had failed iterations to check ({sorted(failed)})")
    c.all_of(traces, lambda t: None if t.error == (t.session in failed)
             else f"trace {t.session}: {b} says {'error' if t.error else 'ok'}",
             f"{b}: exactly the failed iterations' traces are errors")
    with_error_type = [s for s in spans if s.raw.get("error.type")]
    c.check(any(s.operation == "chat" for s in with_error_type)
            and any(s.operation == "execute_tool" for s in with_error_type),
            f"{b}: a failed call and a failed tool to check "
            f"({sorted({s.name for s in with_error_type})})")
    c.all_of(spans, lambda s: None if s.error == bool(s.raw.get("error.type"))
             else f"{s.label()}: status {'ERROR' if s.error else 'ok'}, "
                  f"error.type {s.raw.get('error.type')!r}",
             f"{b}: error status on exactly the spans with error.type")

    if not capture:
        return

    # ---- content (capture on)
    def chat_content(s):
        shown_in, shown_out = text_of(s.inputs), text_of(s.outputs)
        bad = []
        if not shown_in.strip():
            bad.append("no input messages shown")
        if not s.error and not shown_out.strip():
            bad.append("no output messages shown")
        return f"{s.label()}: {', '.join(bad)}" if bad else None

    c.all_of(chats, chat_content, f"{b}: each call shows its input messages (and answer)")

    def writer_answer(t):
        it = next((i for i in iterations if i.session == t.session), None)
        if it is None or it.failed:
            return None
        writer = [s for s in t.spans if s.raw.get("gen_ai.request.model") == "claude-sonnet-4-5"]
        if not any(it.article in text_of(s.outputs) for s in writer):
            return f"trace {t.session}: the streamed answer {it.article!r} is not shown"
        return None

    c.all_of(traces, writer_answer, f"{b}: each streamed answer is shown whole on its call")

    tools = [s for s in spans if s.operation == "execute_tool"]

    topic_of = {t.trace_id: it.topic for t in traces for it in iterations
                if it.session == t.session}

    def tool_content(s):
        bad = []
        topic = topic_of.get(s.trace_id)
        if not text_of(s.inputs).strip():
            bad.append("no arguments shown")
        elif topic and topic not in text_of(s.inputs):
            bad.append(f"arguments {text_of(s.inputs)[:60]!r} do not name the query {topic!r}")
        if not s.error and not text_of(s.outputs).strip():
            bad.append("no result shown")
        return f"{s.label()}: {', '.join(bad)}" if bad else None

    c.all_of(tools, tool_content, f"{b}: each tool call shows its arguments (and result)")

    def root_content(t):
        it = next((i for i in iterations if i.session == t.session), None)
        if it is None:
            return f"trace {t.trace_id}: no iteration for session {t.session!r}"
        bad = []
        if it.topic not in text_of(t.request):
            bad.append(f"request shows {text_of(t.request)[:60]!r}, not the topic {it.topic!r}")
        if not it.failed and it.article not in text_of(t.response):
            bad.append(f"response shows {text_of(t.response)[:60]!r}, not {it.article!r}")
        return f"trace {t.session}: {'; '.join(bad)}" if bad else None

    where = {"mlflow": "trace request/response preview", "phoenix": "root input/output"}[backend]
    c.all_of(traces, root_content,
             f"{b}: each run's request and answer shown ({where})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo-log", required=True, help="the demo run's standard output")
    p.add_argument("--capture", action="store_true",
                   help="the demo ran with content capture on: check the content too")
    p.add_argument("--mlflow", metavar="URL", help="MLflow tracking server")
    p.add_argument("--mlflow-experiment", default="0", help="experiment id (default 0)")
    p.add_argument("--mlflow-demo-log", help="the MLflow run's log, if not --demo-log")
    p.add_argument("--phoenix", metavar="URL", help="Phoenix server")
    p.add_argument("--phoenix-project", default="default", help="project (default 'default')")
    p.add_argument("--phoenix-demo-log", help="the Phoenix run's log, if not --demo-log")
    p.add_argument("--service", default="crew-demo", help="the demo's service.name")
    p.add_argument("--wait", type=float, default=30,
                   help="seconds to wait for every span to be stored (default 30)")
    args = p.parse_args(argv)
    if not (args.mlflow or args.phoenix):
        p.error("give --mlflow URL and/or --phoenix URL")

    c = Checker()
    backends = []
    if args.mlflow:
        backends.append(("mlflow", args.mlflow_demo_log or args.demo_log,
                         lambda: load_mlflow(args.mlflow, args.mlflow_experiment, args.service)))
    if args.phoenix:
        backends.append(("phoenix", args.phoenix_demo_log or args.demo_log,
                         lambda: load_phoenix(args.phoenix, args.phoenix_project)))
    for backend, log, load in backends:
        try:
            iterations, produced = read_demo_log(log)
        except OSError as exc:
            c.check(False, f"{backend}: demo log {log} readable", [exc])
            continue
        c.check(bool(iterations) and produced is not None,
                f"{backend}: the demo log names its iterations and spans "
                f"({len(iterations)} iterations, {produced} spans)")
        traces, error = fetch_until_complete(backend, load, iterations, produced, args.wait)
        c.check(error is None, f"{backend}: API answers", [error] if error else None)
        check_backend(c, backend, traces, iterations, produced, args.capture)

    print(f"backends: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
