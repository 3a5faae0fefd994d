#!/usr/bin/env python3
"""Check what examples/openai.rs exported, with content capture on.

    check_openai.py --in FILE [--service openai-example]

FILE holds what otlp_sink.py received while the example ran against the
OpenAI-compatible stand-in (tests/openai_server/server.py) with
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true. The example is
async-openai code as its users write it: a tool loop, a stream returned as
`Result<ChatCompletionResponseStream, OpenAIError>`, a call the server refuses
with 429 (retried by async-openai). Checks the streamed span (usage, finish
reasons, time to first chunk, on the span and the histogram), the tool span
(the model's tool call id, its arguments and result), the messages read from
async-openai's types, the server on the metrics, and each retry as an attempt
event. Prints one `ok:`/`FAIL:` line per check and `openai: X passed, Y failed`.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys

from check_rig import as_number, fld, histogram_points, load
from check_export import Checker
from check_rig import attrs as kv

TTFC = "gen_ai.client.operation.time_to_first_chunk"
DURATION = "gen_ai.client.operation.duration"
ATTEMPT = "otel_agent.request.attempt"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="path", required=True)
    ap.add_argument("--service", default="openai-example")
    args = ap.parse_args()
    spans, exports = load(args.path, args.service)
    checker = Checker()
    check = checker.check

    def messages(span, key):
        try:
            return json.loads(span.attrs.get(key) or "null")
        except ValueError:
            return None

    agent = [s for s in spans if s.name == "invoke_agent assistant"]
    chats = [s for s in spans if s.name.startswith("chat ")]
    tools = [s for s in spans if s.name.startswith("execute_tool ")]
    check(len(agent) == 1, f"one agent span ({len(agent)})")
    check(len(chats) == 4, f"four chat spans: tool round, answer, stream, refused ({len(chats)})")
    if agent:
        under = all(s.parent_id == agent[0].span_id for s in chats + tools)
        check(under, "every chat and tool span is a child of the agent's")

    streamed = [s for s in chats if s.attrs.get("gen_ai.request.stream") is True]
    check(len(streamed) == 1, f"one streamed call ({len(streamed)})")
    if streamed:
        s = streamed[0]
        ttfc = as_number(s.attrs.get("gen_ai.response.time_to_first_chunk"))
        check(ttfc is not None and ttfc > 0, f"the streamed span has its time to first chunk ({ttfc})")
        usage = (s.attrs.get("gen_ai.usage.input_tokens"), s.attrs.get("gen_ai.usage.output_tokens"))
        check(all(isinstance(u, int) and u > 0 for u in usage), f"the streamed span has usage from the final chunk {usage}")
        check(s.attrs.get("gen_ai.response.finish_reasons") == ["stop"], "the streamed span has its finish reason")
        out = messages(s, "gen_ai.output.messages") or []
        text = "".join(p.get("content", "") for m in out for p in m.get("parts", []) if p.get("type") == "text")
        check(text.startswith("Canned answer"), f"the streamed answer is put together from its deltas ({text[:40]!r})")
    ttfc_points = [p for e in exports[-1:] for m in e.get(TTFC, []) for p in histogram_points(m)]
    count = sum(as_number(fld(p, "count", 0)) or 0 for p in ttfc_points)
    check(count == 1, f"the time-to-first-chunk histogram has the streamed call ({count})")

    check(len(tools) == 1, f"one tool span ({len(tools)})")
    if tools and chats:
        tool = tools[0]
        asked = [
            p for s in chats for m in (messages(s, "gen_ai.output.messages") or [])
            for p in m.get("parts", []) if p.get("type") == "tool_call"
        ]
        call_id = tool.attrs.get("gen_ai.tool.call.id")
        check(bool(asked) and call_id == asked[0].get("id"),
              f"the tool span carries the id of the call the model made ({call_id!r})")
        check(tool.attrs.get("gen_ai.tool.name") == "get_weather", "the tool span names the tool the call named")
        check(bool(tool.attrs.get("gen_ai.tool.call.arguments")) and bool(tool.attrs.get("gen_ai.tool.call.result")),
              "the tool span has its arguments and result")
        answered = [
            p for s in chats for m in (messages(s, "gen_ai.input.messages") or [])
            for p in m.get("parts", []) if p.get("type") == "tool_call_response"
        ]
        check(any(p.get("id") == call_id for p in answered),
              "the next call's input has the tool's answer under the same id")

    for s in chats:
        inputs = messages(s, "gen_ai.input.messages") or []
        check(any(m.get("role") == "user" for m in inputs), f"{s.label()}: input messages from the request")
        system = messages(s, "gen_ai.system_instructions")
        if s.attrs.get("error.type") is None and not s.attrs.get("gen_ai.request.stream"):
            check(bool(messages(s, "gen_ai.output.messages")), f"{s.label()}: output messages from the response")
        if system is not None:
            check(isinstance(system, list) and system[0].get("type") == "text", f"{s.label()}: system instructions apart")

    refused = [s for s in chats if s.attrs.get("error.type") == "429"]
    check(len(refused) == 1, "the refused call has error.type 429")
    if refused:
        attempts = [a for name, a in refused[0].events if name == ATTEMPT]
        counts = [a.get("http.request.resend_count") for a in attempts]
        check(counts == [0, 1, 2, 3], f"async-openai's retries show as attempts {counts}")
        check(all(a.get("http.response.status_code") == 429 for a in attempts), "each attempt has its status")

    duration = [p for e in exports[-1:] for m in e.get(DURATION, []) for p in histogram_points(m)]
    servers = {kv(fld(p, "attributes")).get("server.address") for p in duration}
    check(servers == {"127.0.0.1"}, f"server.address on every duration point ({servers})")

    print(f"openai: {checker.passed} passed, {checker.failed} failed")
    return 1 if checker.failed else 0


if __name__ == "__main__":
    sys.exit(main())
