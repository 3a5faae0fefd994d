#!/usr/bin/env python3
"""A small OpenAI-compatible chat-completions server with canned answers.

Standard library only. It lets the `openai` example and `tests/openai.rs` drive the
real async-openai client (real HTTP, real JSON, real server-sent events) without a
model or a network:

    python3 tests/openai_server/server.py --port 8089

It listens on 127.0.0.1 only and prints one line `READY http://127.0.0.1:PORT/v1`
once it accepts connections (`--port 0` picks a free port; read it from that line).

    POST /v1/chat/completions
        The answer is "Canned answer to: <last user message>". The response model is
        the request's model with a date suffix (as OpenAI answers `gpt-4o-mini` with
        `gpt-4o-mini-2024-07-18`); the id is derived from the conversation, so the
        same request gets the same id. Usage counts words (prompt: every message's
        text; completion: the answer's), and 2 prompt tokens are reported cached
        when the prompt has more than 8.
        - `max_completion_tokens` / `max_tokens` cut the answer to that many words
          and end it with finish_reason `length`.
        - With `tools`, when the last message is the user's, the model calls the
          first tool with `{"query": <the user's text>}` (finish_reason
          `tool_calls`); once the last message is a tool result, it answers.
        - With `tools` and a user message containing "use every tool", the model
          calls each offered tool once, one per turn in the order offered (each
          with `{"query": <the user's text>}`), and answers once every tool has
          been called since the last user message.
        - `"stream": true` sends the answer as server-sent events, a few words per
          chunk, the finish reason in the last choice chunk, then, when
          `stream_options.include_usage` is true, a final chunk with empty
          `choices` and the usage (every earlier chunk has `"usage": null`), then
          `data: [DONE]`.
        - A user message containing "please fail" gets 429 with OpenAI's error body
          (type `requests`, code `rate_limit_exceeded`) and `retry-after: 1` (change
          it with `--retry-after SECONDS`); "please crash" gets 500. Note that
          async-openai retries 429, 5xx and refused connections itself (3 retries,
          honouring `retry-after`) before it returns the error.
        - No `Authorization: Bearer ...` header gets 401.
    GET /v1/models      the models it "serves" (any model name is accepted).
    GET /health         200 "ok".

`--exit-on-stdin-eof` ends the server when its standard input closes, so a test
that starts it with a pipe never leaves it behind, even if the test is killed.
"""

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_SUFFIX = "-2024-07-18"
CREATED = 1_700_000_000
CHUNK_DELAY_S = 0.01
WORDS_PER_CHUNK = 2


def text_of(content):
    """The text of a message's content: a string or a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p.get("text", "") for p in content if isinstance(p, dict)
        )
    return ""


def words(text):
    return text.split()


def completion_id(messages):
    digest = hashlib.sha256(
        json.dumps(messages, sort_keys=True).encode()
    ).hexdigest()
    return "chatcmpl-" + digest[:24]


def next_uncalled_tool(tools, messages):
    """The first offered tool not called since the last user message, if any."""
    called = set()
    for m in reversed(messages):
        if m.get("role") == "user":
            break
        for call in m.get("tool_calls") or []:
            called.add((call.get("function") or {}).get("name"))
    for tool in tools:
        name = tool.get("function", {}).get("name", "tool")
        if name not in called:
            return name
    return None


def error_body(message, type_, code=None, param=None):
    return {
        "error": {"message": message, "type": type_, "param": param, "code": code}
    }


class Answer:
    """What the canned model says to one request."""

    def __init__(self, request):
        self.request = request
        self.model = str(request.get("model", "")) + MODEL_SUFFIX
        messages = request.get("messages") or []
        self.id = completion_id(messages)
        prompt_words = sum(len(words(text_of(m.get("content")))) for m in messages)
        last = messages[-1] if messages else {}
        last_user = next(
            (text_of(m.get("content")) for m in reversed(messages)
             if m.get("role") == "user"),
            "",
        )
        self.tool_call = None
        tools = request.get("tools") or []
        name = None
        if tools and last.get("role") == "user":
            name = tools[0].get("function", {}).get("name", "tool")
        elif tools and last.get("role") == "tool" and "use every tool" in last_user:
            name = next_uncalled_tool(tools, messages)
        if name is not None:
            self.tool_call = {
                "id": "call_" + self.id[-12:],
                "name": name,
                "arguments": json.dumps({"query": last_user}),
            }
            self.text = None
            answer_words = words(self.tool_call["arguments"])
            self.finish_reason = "tool_calls"
        else:
            if last.get("role") == "tool":
                answer = "Canned answer using the tool result: " + text_of(
                    last.get("content")
                )
            else:
                answer = "Canned answer to: " + last_user
            answer_words = words(answer)
            limit = request.get("max_completion_tokens") or request.get("max_tokens")
            self.finish_reason = "stop"
            if isinstance(limit, int) and 0 < limit < len(answer_words):
                answer_words = answer_words[:limit]
                self.finish_reason = "length"
            self.text = " ".join(answer_words)
        self.usage = {
            "prompt_tokens": prompt_words,
            "completion_tokens": len(answer_words),
            "total_tokens": prompt_words + len(answer_words),
            "prompt_tokens_details": {
                "cached_tokens": 2 if prompt_words > 8 else 0,
                "audio_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def message(self):
        message = {"role": "assistant", "content": self.text, "refusal": None}
        if self.tool_call:
            message["tool_calls"] = [
                {
                    "id": self.tool_call["id"],
                    "type": "function",
                    "function": {
                        "name": self.tool_call["name"],
                        "arguments": self.tool_call["arguments"],
                    },
                }
            ]
        return message

    def completion(self):
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": CREATED,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": self.message(),
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage,
            "service_tier": "default",
            "system_fingerprint": "fp_canned",
        }

    def chunks(self, include_usage):
        """The chunk objects of a streamed answer, in order."""

        def chunk(delta, finish_reason=None):
            c = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": self.model,
                "system_fingerprint": "fp_canned",
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
            }
            if include_usage:
                c["usage"] = None
            return c

        out = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if self.tool_call:
            args = self.tool_call["arguments"]
            half = len(args) // 2
            out.append(chunk({"tool_calls": [{
                "index": 0, "id": self.tool_call["id"], "type": "function",
                "function": {"name": self.tool_call["name"], "arguments": args[:half]},
            }]}))
            out.append(chunk({"tool_calls": [{
                "index": 0, "function": {"arguments": args[half:]},
            }]}))
        else:
            ws = words(self.text)
            for i in range(0, len(ws), WORDS_PER_CHUNK):
                piece = " ".join(ws[i:i + WORDS_PER_CHUNK])
                out.append(chunk({"content": piece if i == 0 else " " + piece}))
        out.append(chunk({}, self.finish_reason))
        if include_usage:
            final = chunk({})
            final["choices"] = []
            final["usage"] = self.usage
            out.append(final)
        return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "canned-openai/1.0"
    verbose = False
    retry_after = 1

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("server: " + (fmt % args) + "\n")

    # -- responses -------------------------------------------------------

    def send_json(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, status, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_event_stream(self, events):
        """Server-sent events over chunked transfer encoding, flushed one by one."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in events:
            data = ("data: " + event + "\n\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            time.sleep(CHUNK_DELAY_S)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- routes ----------------------------------------------------------

    def do_GET(self):
        if self.path == "/health":
            self.send_text(200, "ok")
        elif self.path.rstrip("/") == "/v1/models":
            self.send_json(200, {"object": "list", "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": CREATED,
                 "owned_by": "canned"},
            ]})
        else:
            self.not_found()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.not_found()
            return
        if not (self.headers.get("Authorization") or "").startswith("Bearer "):
            self.send_json(401, error_body(
                "You didn't provide an API key.", "invalid_request_error",
                "invalid_api_key"))
            return
        try:
            request = json.loads(raw or b"{}")
            if not isinstance(request, dict) or not request.get("messages"):
                raise ValueError("`messages` is required")
        except ValueError as e:
            self.send_json(400, error_body(
                "Invalid request: %s" % e, "invalid_request_error", None, "messages"))
            return
        prompt = " ".join(text_of(m.get("content")) for m in request["messages"]
                          if m.get("role") == "user")
        if "please fail" in prompt:
            self.send_json(429, error_body(
                "Rate limit reached for requests. Please try again in 1s.",
                "requests", "rate_limit_exceeded"),
                headers=[("retry-after", str(self.retry_after))])
            return
        if "please crash" in prompt:
            self.send_text(500, "Internal Server Error")
            return
        answer = Answer(request)
        if request.get("stream"):
            options = request.get("stream_options") or {}
            include_usage = bool(options.get("include_usage"))
            events = [json.dumps(c) for c in answer.chunks(include_usage)]
            self.send_event_stream(events + ["[DONE]"])
        else:
            self.send_json(200, answer.completion())

    def not_found(self):
        self.send_json(404, error_body(
            "Unknown request URL: %s" % self.path, "invalid_request_error",
            "unknown_url"))


def exit_when_stdin_closes():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8089,
                        help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--retry-after", type=int, default=1, metavar="SECONDS",
                        help="the retry-after header of 429 answers (default 1)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when standard input closes")
    args = parser.parse_args()
    Handler.verbose = args.verbose
    Handler.retry_after = args.retry_after
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.exit_on_stdin_eof:
        threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    print("READY http://127.0.0.1:%d/v1" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
