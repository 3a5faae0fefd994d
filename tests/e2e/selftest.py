#!/usr/bin/env python3
"""Self-test of otlp_sink.py + check_export.py without the Rust demo.

A synthetic "crew" workload with the same span tree, attributes and metrics as
the Rust demo is produced with the OpenTelemetry Python SDK and sent with the
OTLP exporters (gRPC and HTTP/protobuf) to a real otlp_sink.py process; the
checker must pass on it. Deliberately broken variants must make the checker
fail with the expected FAIL lines.

    python selftest.py            # needs requirements-selftest.txt installed
    python selftest.py --keep DIR # keep the recorded files in DIR

Not part of CI. The last line is `selftest: X passed, Y failed`.

Internally `selftest.py --emit ...` is the workload process (one per run, so
every run has fresh providers, like one `cargo run --example crew`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SINK = os.path.join(HERE, "otlp_sink.py")
CHECK = os.path.join(HERE, "check_export.py")

DURATION_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12,
                   10.24, 20.48, 40.96, 81.92]
TOKEN_BOUNDS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
                4194304, 16777216, 67108864]
BREAKS = ("orphan", "bounds", "attrs", "service")


# ==========================================================================
# Workload (child process)
# ==========================================================================
def emit(protocol: str, address: str, breaks: set, delta: bool, gzip: bool, iterations: int):
    from opentelemetry import trace
    from opentelemetry.sdk.metrics import (
        Counter, Histogram, MeterProvider, ObservableCounter, ObservableGauge,
        ObservableUpDownCounter, UpDownCounter)
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality, PeriodicExportingMetricReader)
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        span_exporter = OTLPSpanExporter(endpoint=address, insecure=True)
        metric_kwargs = {"endpoint": address, "insecure": True}
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        comp = Compression.Gzip if gzip else Compression.NoCompression
        span_exporter = OTLPSpanExporter(endpoint=f"http://{address}/v1/traces", compression=comp)
        metric_kwargs = {"endpoint": f"http://{address}/v1/metrics", "compression": comp}
    if delta:
        metric_kwargs["preferred_temporality"] = {
            Counter: AggregationTemporality.DELTA,
            Histogram: AggregationTemporality.DELTA,
            ObservableCounter: AggregationTemporality.DELTA,
            UpDownCounter: AggregationTemporality.CUMULATIVE,
            ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
            ObservableGauge: AggregationTemporality.CUMULATIVE,
        }
    metric_exporter = OTLPMetricExporter(**metric_kwargs)

    service = "crew" if "service" in breaks else "crew-demo"
    resource = Resource.create({"service.name": service, "service.version": "selftest"})

    class CountEnded(SpanProcessor):
        ended = 0

        def on_end(self, span):  # noqa: ARG002
            CountEnded.ended += 1

    tp = TracerProvider(resource=resource)
    tp.add_span_processor(CountEnded())
    tp.add_span_processor(BatchSpanProcessor(span_exporter, max_export_batch_size=4,
                                             schedule_delay_millis=100))
    dur_bounds = DURATION_BOUNDS[:-1] if "bounds" in breaks else DURATION_BOUNDS
    mp = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(metric_exporter,
                                                      export_interval_millis=200)],
        views=[
            View(instrument_name="gen_ai.client.operation.duration",
                 aggregation=ExplicitBucketHistogramAggregation(dur_bounds)),
            View(instrument_name="gen_ai.client.token.usage",
                 aggregation=ExplicitBucketHistogramAggregation(TOKEN_BOUNDS)),
        ],
    )
    tracer = tp.get_tracer("otel-agent", "0.1.0")
    meter = mp.get_meter("otel-agent", "0.1.0")
    op_duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    token_usage = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    step_duration = meter.create_histogram("otel_agent.step.duration", unit="s")
    step_calls = meter.create_counter("otel_agent.step.calls", unit="{call}")
    step_active = meter.create_up_down_counter("otel_agent.step.active", unit="{step}")
    rng = random.Random(7)

    @contextlib.contextmanager
    def step(kind, name, span_name, span_attrs, leave_open=False):
        m_attrs = {"otel_agent.step.kind": kind, "otel_agent.step.name": name}
        span = tracer.start_span(span_name, kind=SpanKind.INTERNAL, attributes=span_attrs)
        step_active.add(1, m_attrs)
        t0 = time.perf_counter()
        try:
            with trace.use_span(span, end_on_exit=False):
                yield span
        finally:
            step_active.add(-1, m_attrs)
            step_calls.add(1, m_attrs)
            step_duration.record(time.perf_counter() - t0, m_attrs)
            if not leave_open:  # an unended span is never exported
                span.end()

    def chat(model, provider, fail=False):
        req = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
               "gen_ai.request.model": model}
        if "attrs" in breaks and model.startswith("claude"):
            req["gen_ai.provider.name"] = "openai"
        kind = SpanKind.INTERNAL if "attrs" in breaks else SpanKind.CLIENT
        t0 = time.perf_counter()
        with tracer.start_as_current_span(f"chat {model}", kind=kind, attributes=req,
                                          record_exception=False,
                                          set_status_on_exception=False) as span:
            time.sleep(rng.uniform(0.005, 0.03))
            elapsed = time.perf_counter() - t0
            if fail:
                span.set_status(Status(StatusCode.ERROR, "429 Too Many Requests"))
                span.set_attribute("error.type", "RateLimitError")
                op_duration.record(elapsed, {**req, "error.type": "RateLimitError"})
                return
            tokens_in, tokens_out = rng.randint(200, 900), rng.randint(20, 300)
            if "attrs" in breaks:
                tokens_in = 0
            span.set_attributes({
                "gen_ai.response.model": f"{model}-2025-01-01",
                "gen_ai.response.id": f"resp-{rng.randrange(1 << 30)}",
                "gen_ai.usage.input_tokens": tokens_in,
                "gen_ai.usage.output_tokens": tokens_out,
                "gen_ai.response.finish_reasons": ["stop"],
            })
            resp = {**req, "gen_ai.response.model": f"{model}-2025-01-01"}
            op_duration.record(elapsed, resp)
            token_usage.record(tokens_in, {**resp, "gen_ai.token.type": "input"})
            token_usage.record(tokens_out, {**resp, "gen_ai.token.type": "output"})

    for i in range(iterations):
        with step("workflow", "crew", "invoke_workflow crew",
                  {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "crew"}):
            with step("agent", "researcher", "invoke_agent researcher",
                      {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "researcher"},
                      leave_open=("orphan" in breaks and i == iterations - 1)):
                with step("tool", "web_search", "execute_tool web_search",
                          {"gen_ai.operation.name": "execute_tool",
                           "gen_ai.tool.name": "web_search"}):
                    time.sleep(0.02)
                if i == 0 and "attrs" not in breaks:
                    chat("gpt-4o", "openai", fail=True)  # rate limited, then retried
                chat("gpt-4o", "openai")
            with step("agent", "writer", "invoke_agent writer",
                      {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "writer"}):
                chat("claude-sonnet-4-5", "anthropic")
        time.sleep(0.25)  # let a periodic metrics export happen in between

    mp.force_flush()
    tp.shutdown()
    mp.shutdown()
    print(f"otel-agent: produced {CountEnded.ended} spans", flush=True)


# ==========================================================================
# Orchestration (parent process)
# ==========================================================================
class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"selftest ok: {what}")
        else:
            self.failed += 1
            print(f"selftest FAIL: {what}{' -- ' + detail if detail else ''}")
        sys.stdout.flush()


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class SinkProcess:
    def __init__(self, workdir, name):
        self.out = os.path.join(workdir, f"{name}.jsonl")
        self.ready = os.path.join(workdir, f"{name}.ready.json")
        self.log = open(os.path.join(workdir, f"{name}.sink.log"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, SINK, "--out", self.out, "--truncate", "--grpc-port", "0",
             "--http-port", "0", "--ready-file", self.ready, "--timeout", "300"],
            stdout=self.log, stderr=subprocess.STDOUT, env=clean_env())
        deadline = time.monotonic() + 30
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sink did not become ready, see {self.log.name}")
            time.sleep(0.05)
        with open(self.ready) as fh:
            self.addresses = json.load(fh)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc


def run_emitter(workdir, name, protocol, address, breaks=(), delta=False, gzip=False):
    log = os.path.join(workdir, f"{name}.demo.log")
    cmd = [sys.executable, os.path.abspath(__file__), "--emit", "--protocol", protocol,
           "--address", address]
    if breaks:
        cmd += ["--break", ",".join(breaks)]
    if delta:
        cmd.append("--delta")
    if gzip:
        cmd.append("--gzip")
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=clean_env(),
                            timeout=120).returncode
    return rc, log


def run_checker(args, show=False):
    proc = subprocess.run([sys.executable, CHECK, *args], capture_output=True, text=True,
                          timeout=60, env=clean_env())
    if show:
        for line in proc.stdout.splitlines():
            print(f"    | {line}")
    if proc.stderr.strip():
        print(f"    | stderr: {proc.stderr.strip()}")
    return proc.returncode, proc.stdout


def expect_failures(res, label, rc, out, needles):
    fails = [line for line in out.splitlines() if line.startswith("FAIL:")]
    for line in fails:
        print(f"    | {line}")
    res.check(rc == 1, f"{label}: checker exits 1", f"exit {rc}")
    for needle in needles:
        res.check(any(needle in line for line in fails), f"{label}: FAIL line mentions {needle!r}")


def orchestrate(keep):
    workdir = tempfile.mkdtemp(prefix="otlp-e2e-selftest-")
    res = Results()
    t0 = time.monotonic()
    try:
        # 1. the CI flow: one sink, the demo once over gRPC and once over HTTP
        sink = SinkProcess(workdir, "good")
        print(f"sink ready: grpc={sink.addresses['grpc']} http={sink.addresses['http']}")
        rc_g, log_g = run_emitter(workdir, "good-grpc", "grpc", sink.addresses["grpc"])
        rc_h, log_h = run_emitter(workdir, "good-http", "http", sink.addresses["http"])
        rc = sink.stop()
        res.check(rc == 0, "sink exits 0 on SIGTERM", f"exit {rc}")
        res.check(not os.path.exists(sink.ready), "sink removed its ready file")
        res.check(rc_g == 0 and rc_h == 0, "workload exported over grpc and http",
                  f"exit codes {rc_g}/{rc_h}")
        good = sink.out
        for proto, log in (("grpc", log_g), ("http", log_h)):
            print(f"  check_export.py --in good.jsonl --demo-log {proto}.log --protocol {proto}")
            rc, out = run_checker(["--in", good, "--demo-log", log, "--protocol", proto],
                                  show=True)
            last = out.strip().splitlines()[-1] if out.strip() else ""
            res.check(rc == 0 and last.startswith(f"e2e-{proto}: ")
                      and last.endswith(" passed, 0 failed"),
                      f"checker passes on the good {proto} export")

        with open(log_g) as fh:
            produced = int(fh.read().split("produced ")[1].split()[0])
        rc, out = run_checker(["--in", good, "--expect-spans", str(produced),
                               "--protocol", "grpc"])
        res.check(rc == 0, f"--expect-spans {produced} works like --demo-log")

        # 2. faults injected into the recorded file
        rc, out = run_checker(["--in", good, "--expect-spans", str(produced + 1),
                               "--protocol", "grpc"])
        expect_failures(res, "wrong span count", rc, out, ["distinct spans received"])

        dup = os.path.join(workdir, "duplicate.jsonl")
        with open(good) as src, open(dup, "w") as dst:
            lines = src.readlines()
            dst.writelines(lines)
            first_trace = next(ln for ln in lines
                               if '"transport":"http"' in ln and '"signal":"traces"' in ln)
            dst.write(first_trace)  # as if the exporter had retried a batch
        rc, out = run_checker(["--in", dup, "--demo-log", log_h, "--protocol", "http"])
        expect_failures(res, "re-sent batch", rc, out, ["no span id received twice"])

        empty_log = os.path.join(workdir, "empty.log")
        open(empty_log, "w").close()
        rc, out = run_checker(["--in", good, "--demo-log", empty_log, "--protocol", "grpc"])
        expect_failures(res, "demo log without span count", rc, out,
                        ["demo log reports produced spans"])

        # 3. delta temporality + gzip over http still passes
        sink = SinkProcess(workdir, "delta")
        rc_e, log = run_emitter(workdir, "delta", "http", sink.addresses["http"],
                                delta=True, gzip=True)
        sink.stop()
        rc, out = run_checker(["--in", sink.out, "--demo-log", log, "--protocol", "http"])
        res.check(rc_e == 0 and rc == 0,
                  "checker passes on delta-temporality metrics sent gzip-compressed over http",
                  out.strip().splitlines()[-1] if out.strip() else "")
        if rc:
            run_checker(["--in", sink.out, "--demo-log", log, "--protocol", "http"], show=True)

        # 4. broken workloads
        broken = [
            ("orphan", "http", ["no orphans", "'invoke_agent researcher' parent",
                                "step.calls total"]),
            ("bounds", "grpc", ["gen_ai.client.operation.duration: a histogram"]),
            ("attrs", "grpc", ["SPAN_KIND_CLIENT", "provider.name",
                               "usage tokens", "status ERROR and error.type"]),
            ("service", "http", ["service.name"]),
        ]
        for brk, proto, needles in broken:
            sink = SinkProcess(workdir, f"broken-{brk}")
            rc_e, log = run_emitter(workdir, f"broken-{brk}", proto, sink.addresses[proto],
                                    breaks=[brk])
            sink.stop()
            rc, out = run_checker(["--in", sink.out, "--demo-log", log, "--protocol", proto])
            print(f"  broken workload '{brk}' over {proto}:")
            expect_failures(res, f"broken '{brk}'", rc, out, needles)

        # 5. the sink refuses a non-loopback address
        proc = subprocess.run([sys.executable, SINK, "--out", os.path.join(workdir, "x"),
                               "--host", "0.0.0.0"], capture_output=True, text=True,
                              timeout=30, env=clean_env())
        res.check(proc.returncode != 0 and "loopback" in proc.stderr,
                  "sink refuses --host 0.0.0.0")
    finally:
        print(f"selftest took {time.monotonic() - t0:.1f}s"
              + (f"; recorded files and logs copied to {keep}" if keep else ""))
        if keep:
            os.makedirs(keep, exist_ok=True)
            for f in os.listdir(workdir):
                shutil.copy(os.path.join(workdir, f), keep)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"selftest: {res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", help="copy the recorded files and logs to this directory")
    p.add_argument("--emit", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--protocol", choices=["grpc", "http"], help=argparse.SUPPRESS)
    p.add_argument("--address", help=argparse.SUPPRESS)
    p.add_argument("--break", dest="breaks", default="", help=argparse.SUPPRESS)
    p.add_argument("--delta", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--gzip", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--iterations", type=int, default=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.emit:
        breaks = {b for b in args.breaks.split(",") if b}
        unknown = breaks - set(BREAKS)
        if unknown:
            p.error(f"unknown --break {sorted(unknown)}")
        emit(args.protocol, args.address, breaks, args.delta, args.gzip, args.iterations)
        return 0
    return orchestrate(args.keep)


if __name__ == "__main__":
    sys.exit(main())
