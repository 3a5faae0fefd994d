#!/usr/bin/env python3
"""Serve synthetic otel-agent metrics on /metrics, for testing without Docker.

The series have the names and labels that the Collector's prometheus
exporter (or otel-agent's own Prometheus exporter) produces for the
otel-agent runtime: LLM call duration / tokens / time to first chunk, agent
step duration / calls / active, LLM cost, evaluation scores and target_info,
for two services, a few models, agents, tools, tenants and errors. Counters
grow with wall-clock time so that rate() and histogram_quantile() give real
values. validate.sh points a local Prometheus at it and runs
`queries.py --check-data` to prove every dashboard query finds its series.

Usage: fake_exporter.py [--host 127.0.0.1] [--port 0] [--port-file FILE]
(--port 0 picks a free port; --port-file receives the port actually used).
Python standard library only.
"""

import argparse
import http.server
import math
import time

START = time.time() - 120  # pretend the process has been running for 2 minutes

DURATION_BUCKETS = [0.01 * 2 ** i for i in range(14)]  # 0.01 .. 81.92
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304]
SCORE_BUCKETS = [0.1 * i for i in range(1, 11)]


def fmt_labels(labels):
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


def fmt_num(x):
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


def lognormal_cdf(x, median, sigma=0.5):
    if x <= 0:
        return 0.0
    return 0.5 * (1 + math.erf(math.log(x / median) / (sigma * math.sqrt(2))))


class Out:
    """Collects samples grouped per metric family, as the text format requires."""

    def __init__(self):
        self.families = {}  # name -> [header lines..., samples...]

    def type(self, name, kind, help_):
        if name not in self.families:
            self.families[name] = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]

    def sample(self, family, name, labels, value):
        self.families[family].append(f"{name}{fmt_labels(labels)} {fmt_num(value)}")

    def histogram(self, name, help_, labels, count, median, buckets, sigma=0.5):
        self.type(name, "histogram", help_)
        for le in buckets:
            c = math.floor(count * lognormal_cdf(le, median, sigma))
            self.sample(name, f"{name}_bucket", {**labels, "le": fmt_num(round(le, 6))}, c)
        self.sample(name, f"{name}_bucket", {**labels, "le": "+Inf"}, math.floor(count))
        self.sample(name, f"{name}_sum", labels, round(math.floor(count) * median, 3))
        self.sample(name, f"{name}_count", labels, math.floor(count))

    def text(self):
        return "\n".join(line for lines in self.families.values() for line in lines) + "\n"


SERVICES = [("research-crew", "crew-1"), ("support-bot", "bot-1")]
MODELS = [  # provider, model, calls/s, median latency s, error share, streaming
    ("openai", "gpt-4o-mini", 0.8, 1.2, 0.02, True),
    ("anthropic", "claude-sonnet-4", 0.3, 4.0, 0.0, False),
]
STEPS = [  # operation, name, calls/s, median s, failure share
    ("invoke_agent", "planner", 0.2, 6.0, 0.05),
    ("invoke_agent", "researcher", 0.1, 15.0, 0.0),
    ("execute_tool", "web_search", 0.5, 0.8, 0.1),
    ("execute_tool", "calculator", 0.4, 0.02, 0.0),
    ("invoke_workflow", "research_flow", 0.05, 30.0, 0.0),
]
TENANTS = [("acme", 0.6), ("globex", 0.4)]


def render(now):
    t = now - START
    o = Out()
    o.type("target_info", "gauge", "Target metadata")
    for job, inst in SERVICES:
        o.sample("target_info", "target_info", {"job": job, "instance": inst, "service_name": job,
                                 "telemetry_sdk_language": "rust"}, 1)
    for si, (job, inst) in enumerate(SERVICES):
        base = {"job": job, "instance": inst}
        scale = 1.0 if si == 0 else 0.4
        for provider, model, cps, median, err_share, streaming in MODELS:
            llm = {**base, "gen_ai_operation_name": "chat", "gen_ai_provider_name": provider,
                   "gen_ai_request_model": model, "gen_ai_response_model": model + "-2025",
                   "server_address": f"api.{provider}.com", "server_port": "443"}
            calls = cps * scale * t
            o.histogram("gen_ai_client_operation_duration_seconds", "GenAI operation duration",
                        llm, calls * (1 - err_share), median, DURATION_BUCKETS)
            if err_share:
                err = {k: v for k, v in llm.items() if k != "gen_ai_response_model"}
                o.histogram("gen_ai_client_operation_duration_seconds", "GenAI operation duration",
                            {**err, "error_type": "timeout"}, calls * err_share, 30.0,
                            DURATION_BUCKETS)
            for token_type, per_call in (("input", 900), ("output", 250)):
                o.histogram("gen_ai_client_token_usage", "Tokens used",
                            {**llm, "gen_ai_token_type": token_type}, calls, per_call,
                            TOKEN_BUCKETS, sigma=0.8)
            if streaming:
                o.histogram("gen_ai_client_operation_time_to_first_chunk_seconds",
                            "Time to first chunk", llm, calls * 0.7, 0.4, DURATION_BUCKETS)
            o.type("otel_agent_llm_cost_usd_total", "counter", "Estimated LLM cost")
            for tenant, share in TENANTS:
                o.sample("otel_agent_llm_cost_usd_total", "otel_agent_llm_cost_usd_total",
                         {**base, "gen_ai_provider_name": provider, "gen_ai_request_model": model,
                          "otel_agent_tenant": tenant},
                         round(calls * share * 0.0021, 6))
        for op, name, cps, median, fail_share in STEPS:
            step = {**base, "gen_ai_operation_name": op, "otel_agent_step_name": name}
            calls = cps * scale * t
            outcomes = [("success", 1 - fail_share, None)]
            if fail_share:
                outcomes.append(("failure", fail_share, "ToolError" if op == "execute_tool" else "Timeout"))
            if op == "invoke_agent":
                outcomes.append(("cancelled", 0.01, None))
            for outcome, share, error_type in outcomes:
                labels = {**step, "otel_agent_step_outcome": outcome}
                if error_type:
                    labels["error_type"] = error_type
                o.histogram("otel_agent_step_duration_seconds", "Agent step duration", labels,
                            calls * share, median, DURATION_BUCKETS)
                o.type("otel_agent_step_calls_total", "counter", "Agent steps finished")
                o.sample("otel_agent_step_calls_total", "otel_agent_step_calls_total", labels, math.floor(calls * share))
            o.type("otel_agent_step_active", "gauge", "Agent steps in flight")
            o.sample("otel_agent_step_active", "otel_agent_step_active", step,
                     max(0, round(cps * median * scale * (1 + math.sin(t / 30)))))
        o.histogram("otel_agent_evaluation_score", "Evaluation score",
                    {**base, "gen_ai_evaluation_name": "relevance"}, 0.1 * t, 0.8,
                    SCORE_BUCKETS, sigma=0.2)
    return o.text()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        body = render(time.time()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    ap = argparse.ArgumentParser(description="Serve synthetic otel-agent metrics.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--print", action="store_true", help="print one scrape and exit")
    args = ap.parse_args()
    if args.print:
        print(render(time.time()), end="")
        return
    server = http.server.ThreadingHTTPServer((args.host, args.port), Handler)
    if args.port_file:
        with open(args.port_file, "w") as f:
            f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
