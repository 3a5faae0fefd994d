#!/usr/bin/env python3
"""Check what `examples/content_guard.rs` got past the export boundary.

    check_canary.py --in FILE --off SERVICE --on SERVICE --log LOG [--log LOG ...]

FILE holds the records otlp_sink.py wrote. The run named SERVICE_OFF ran with
content capture off: the canary must appear nowhere in what it exported. The run
named SERVICE_ON ran with capture on: the canary must arrive, the API key in the
prompt must not (redacted). No log (stdout and stderr of either run) may hold
the canary. Prints one line per check and `canary: X passed, Y failed`.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys

CANARY = "CANARY-e2e-7b41-prompt"
SECRET = "sk-proj-E2ESECRETabcdefghijklmnop"


def service_of(resource: dict) -> str | None:
    for kv in resource.get("attributes", []):
        if kv.get("key") == "service.name":
            return kv.get("value", {}).get("stringValue")
    return None


def exported_by_service(path: str) -> dict[str, list[str]]:
    """Each service's exported resource blocks (spans and metrics), as JSON text."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            request = record.get("request", record)
            for key in ("resourceSpans", "resourceMetrics", "resource_spans", "resource_metrics"):
                for block in request.get(key, []):
                    name = service_of(block.get("resource", {}))
                    out.setdefault(name or "", []).append(json.dumps(block))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="input", required=True)
    ap.add_argument("--off", required=True)
    ap.add_argument("--on", required=True)
    ap.add_argument("--log", action="append", default=[])
    args = ap.parse_args()
    passed = failed = 0

    def check(ok: bool, what: str) -> None:
        nonlocal passed, failed
        print(("ok: " if ok else "FAIL: ") + what)
        if ok:
            passed += 1
        else:
            failed += 1

    by_service = exported_by_service(args.input)
    off = "\n".join(by_service.get(args.off, []))
    on = "\n".join(by_service.get(args.on, []))
    check("chat stand-in" in off and "invoke_agent guarded" in off,
          f"capture off: the run's spans arrived ({len(by_service.get(args.off, []))} blocks)")
    check(CANARY not in off, f"capture off: the canary is in nothing exported ({off.count(CANARY)} found)")
    check("response received" in off, "capture off: the library's INFO event still arrived")
    check(CANARY in on, "capture on: the content arrived")
    check(SECRET not in on and "[REDACTED]" in on, "capture on: the API key in it was redacted")
    check("connecting for" not in on and "sending request" not in on,
          "capture on: DEBUG/TRACE library events still stayed in")
    for log in args.log:
        with open(log, encoding="utf-8", errors="replace") as f:
            text = f.read()
        check(CANARY not in text, f"{log}: no canary printed")
    print(f"canary: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
