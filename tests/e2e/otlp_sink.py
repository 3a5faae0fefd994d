#!/usr/bin/env python3
"""OTLP receiver for the end-to-end export check, built on the `oteltest` sink.

It listens for OTLP/gRPC and OTLP/HTTP (protobuf or JSON bodies) on a loopback
address only and appends every export request it decodes to a JSON-lines file,
one object per request:

    {"seq": 3, "transport": "grpc", "signal": "traces",
     "received_unix_nano": 1700000000000000000, "user_agent": "...",
     "request": <ExportTraceServiceRequest rendered by MessageToDict>}

`signal` is "traces", "metrics" or "logs"; `transport` is "grpc" or "http".
Each line is flushed as soon as it is written.

Readiness: once both listeners are bound it prints one line starting with
`READY` to stdout and, with --ready-file, writes a small JSON document there
(atomically) giving the bound addresses and its pid. The ready file is removed
again on exit.

Stopping: SIGTERM or SIGINT stops both listeners (in-flight gRPC calls get a
short grace period), closes the output file and exits with status 0.

Why not just `otelsink`: oteltest's GrpcSink hard-codes the address 0.0.0.0
and its HttpSink binds "" (every interface) on a port chosen at construction;
neither takes a host. The subclasses below keep oteltest's request decoding
(its gRPC servicers, its HttpSink path table and protobuf/JSON parsing, its
RequestHandler callback interface) and only replace the socket binding.
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import zlib
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from oteltest.sink import GrpcSink, HttpSink
from oteltest.sink.handler import RequestHandler
from oteltest.sink.private import (
    _LogsServiceServicer,
    _MetricsServiceServicer,
    _TraceServiceServicer,
)

LOG = logging.getLogger("otlp_sink")


# --------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------
class JsonlWriter:
    """Thread-safe appender: one JSON object per line, flushed per line."""

    def __init__(self, path: str, truncate: bool):
        self._fh = open(path, "w" if truncate else "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._seq = 0
        self.counts = {"traces": 0, "metrics": 0, "logs": 0}

    def write(self, transport: str, signal_name: str, request, user_agent):
        record_body = MessageToDict(request)
        with self._lock:
            if self._fh.closed:
                raise RuntimeError("sink is shutting down")
            self._seq += 1
            record = {
                "seq": self._seq,
                "transport": transport,
                "signal": signal_name,
                "received_unix_nano": time.time_ns(),
                "user_agent": user_agent,
                "request": record_body,
            }
            self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._fh.flush()
            self.counts[signal_name] += 1

    def close(self):
        with self._lock:
            if not self._fh.closed:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()


class JsonlRecorder(RequestHandler):
    """oteltest RequestHandler that tags each request with its transport."""

    def __init__(self, writer: JsonlWriter, transport: str):
        self._writer = writer
        self._transport = transport

    @staticmethod
    def _user_agent(headers):
        if not headers:
            return None
        for key, value in dict(headers).items():
            if str(key).lower() == "user-agent":
                return value
        return None

    def _record(self, signal_name, request, headers):
        self._writer.write(self._transport, signal_name, request, self._user_agent(headers))
        LOG.debug("%s %s request recorded", self._transport, signal_name)

    def handle_trace(self, request, headers):
        self._record("traces", request, headers)

    def handle_metrics(self, request, headers):
        self._record("metrics", request, headers)

    def handle_logs(self, request, headers):
        self._record("logs", request, headers)


# --------------------------------------------------------------------------
# Listeners bound to loopback only
# --------------------------------------------------------------------------
def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LoopbackGrpcSink(GrpcSink):
    """oteltest's GrpcSink with an explicit (loopback) listen address."""

    def __init__(self, request_handler: RequestHandler, logger, host: str, port: int,
                 max_workers: int = 8):
        # GrpcSink.__init__ would call add_insecure_port("0.0.0.0:<port>"), so it
        # is not called; the same servicers are wired up here instead.
        # so_reuseport=0: gRPC enables SO_REUSEPORT by default on Linux, which
        # would let a second (stale) receiver silently share the port.
        self.svr = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            options=[("grpc.so_reuseport", 0)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceServiceServicer(request_handler.handle_trace), self.svr)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _MetricsServiceServicer(request_handler.handle_metrics), self.svr)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(
            _LogsServiceServicer(request_handler.handle_logs), self.svr)
        self.logger = logger
        address = _host_port(host, port)
        try:
            bound = self.svr.add_insecure_port(address)
        except RuntimeError as exc:  # newer grpcio raises instead of returning 0
            raise OSError(f"cannot listen for gRPC on {address}: {exc}") from exc
        if not bound:
            raise OSError(f"cannot listen for gRPC on {address} (port in use?)")
        self.port = bound
        self.address = _host_port(host, bound)

    def stop(self, grace: float = 2.0):  # noqa: D102 - lets in-flight exports finish
        self.svr.stop(grace).wait()


class _LoopbackHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # do not wait in server_close() for idle keep-alive connections
    block_on_close = False
    request_queue_size = 64


class LoopbackHttpSink(HttpSink):
    """oteltest's HttpSink with an explicit (loopback) listen address.

    oteltest's own handler always answers 200 "OK" (text/html), needs a
    Content-Length and ignores Content-Encoding; this one answers with an
    empty Export*ServiceResponse of the request's content type, accepts
    gzip/deflate and chunked bodies, and reports undecodable bodies as 400.
    Decoding still goes through oteltest's HttpSink.handle_* methods.
    """

    def __init__(self, listener: RequestHandler, logger, host: str, port: int):
        super().__init__(listener, logger, port=port, daemon=True)
        self.host = host
        self.address = None

    def start(self):
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "otlp-e2e-sink"
            timeout = 30  # drop idle keep-alive connections

            def log_message(self, fmt, *args):  # route access log to logging
                LOG.debug("http %s - %s", self.address_string(), fmt % args)

            def _reply(self, code: int, body: bytes, content_type: str):
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _read_body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    data = b"".join(chunks)
                else:
                    data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "").strip().lower()
                if encoding in ("", "identity"):
                    return data
                if encoding == "gzip":
                    return gzip.decompress(data)
                if encoding == "deflate":
                    return zlib.decompress(data)
                raise ValueError(f"unsupported Content-Encoding {encoding!r}")

            def do_POST(self):  # noqa: N802
                path = self.path.split("?", 1)[0]
                handler = sink.handlers.get(path)
                is_json = "application/json" in self.headers.get("Content-Type", "").lower()
                if handler is None:
                    self._reply(404, b"unknown OTLP path\n", "text/plain")
                    return
                try:
                    body = self._read_body()
                except Exception as exc:  # noqa: BLE001
                    LOG.warning("http %s: bad body: %s", path, exc)
                    self._reply(400, f"bad request body: {exc}\n".encode(), "text/plain")
                    return
                headers = dict(self.headers.items())
                headers.pop("Content-Encoding", None)  # body is decoded now
                try:
                    handler(body, headers)  # oteltest: parse + listener callback
                except Exception as exc:  # noqa: BLE001
                    LOG.warning("http %s: cannot decode/record request: %s", path, exc)
                    self._reply(400, f"cannot decode request: {exc}\n".encode(), "text/plain")
                    return
                if is_json:
                    self._reply(200, b"{}", "application/json")
                else:
                    # an empty protobuf message serialises to zero bytes
                    self._reply(200, b"", "application/x-protobuf")

        server_cls = _LoopbackHttpServer
        if ":" in self.host:
            server_cls = type("_LoopbackHttpServer6", (_LoopbackHttpServer,),
                              {"address_family": socket.AF_INET6})
        # Bind here, synchronously, so a busy port is reported at start-up.
        address = _host_port(self.host, self.port)
        try:
            self.httpd = server_cls((self.host, self.port), Handler)
        except OSError as exc:
            raise OSError(f"cannot listen for HTTP on {address}: {exc}") from exc
        self.port = self.httpd.server_address[1]
        self.address = _host_port(self.host, self.port)
        super().start()  # thread running self.run_server

    def run_server(self):
        self.httpd.serve_forever(poll_interval=0.2)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def loopback_host(value: str) -> str:
    if value == "localhost":
        value = "127.0.0.1"
    try:
        addr = ipaddress.ip_address(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an IP address") from exc
    if not addr.is_loopback:
        raise argparse.ArgumentTypeError(
            f"{value} is not a loopback address; this sink only listens on loopback")
    return str(addr)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="JSON-lines file to append requests to")
    p.add_argument("--host", type=loopback_host, default="127.0.0.1",
                   help="loopback address to listen on (default 127.0.0.1)")
    p.add_argument("--grpc-port", type=int, default=4317,
                   help="OTLP/gRPC port (default 4317; 0 = any free port)")
    p.add_argument("--http-port", type=int, default=4318,
                   help="OTLP/HTTP port (default 4318; 0 = any free port)")
    p.add_argument("--no-grpc", action="store_true", help="do not start the gRPC listener")
    p.add_argument("--no-http", action="store_true", help="do not start the HTTP listener")
    p.add_argument("--ready-file", help="write a JSON readiness file here once listening")
    p.add_argument("--truncate", action="store_true",
                   help="truncate --out at start instead of appending")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="stop by itself after this many seconds (default 1800; 0 = never)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = p.parse_args(argv)
    if args.no_grpc and args.no_http:
        p.error("--no-grpc and --no-http together leave nothing to run")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="otlp_sink: %(levelname)s %(message)s",
        stream=sys.stderr,
    )

    stop = threading.Event()
    received = {"signal": None}

    def on_signal(signum, _frame):
        received["signal"] = signal.Signals(signum).name
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    # oteltest's own start-up messages (e.g. "Set up http sink on port 0") are
    # noise here; the READY line reports the real addresses.
    oteltest_log = logging.getLogger("otlp_sink.oteltest")
    oteltest_log.setLevel(logging.DEBUG if args.verbose else logging.WARNING)

    writer = JsonlWriter(args.out, args.truncate)
    grpc_sink = http_sink = None
    try:
        if not args.no_grpc:
            grpc_sink = LoopbackGrpcSink(JsonlRecorder(writer, "grpc"), oteltest_log,
                                         args.host, args.grpc_port)
            grpc_sink.start()
        if not args.no_http:
            http_sink = LoopbackHttpSink(JsonlRecorder(writer, "http"), oteltest_log,
                                         args.host, args.http_port)
            http_sink.start()
    except OSError as exc:
        LOG.error("start-up failed: %s", exc)
        if grpc_sink is not None:
            grpc_sink.stop(0)
        writer.close()
        return 2

    ready = {
        "pid": os.getpid(),
        "grpc": grpc_sink.address if grpc_sink else None,
        "http": http_sink.address if http_sink else None,
        "out": os.path.abspath(args.out),
    }
    if args.ready_file:
        tmp = f"{args.ready_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(ready, fh)
            fh.write("\n")
        os.replace(tmp, args.ready_file)
    print(f"READY grpc={ready['grpc'] or '-'} http={ready['http'] or '-'} pid={ready['pid']}",
          flush=True)

    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    while not stop.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            LOG.warning("--timeout of %ss reached, stopping", args.timeout)
            break
        stop.wait(0.5)

    if grpc_sink is not None:
        grpc_sink.stop(2.0)
    if http_sink is not None:
        http_sink.stop()
    writer.close()
    if args.ready_file:
        try:
            os.remove(args.ready_file)
        except FileNotFoundError:
            pass
    LOG.info("stopped (%s); recorded %d trace, %d metrics, %d logs requests to %s",
             received["signal"] or "timeout", writer.counts["traces"],
             writer.counts["metrics"], writer.counts["logs"], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
