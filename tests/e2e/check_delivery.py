#!/usr/bin/env python3
"""Check that one run delivered every span and every call's metrics.

    check_delivery.py --in FILE --service NAME --calls N [--spans-per-call K]

FILE holds what otlp_sink.py received. For SERVICE, checks that exactly
N * K spans arrived, that N of them are `chat` spans, and that the last
(cumulative) export of `gen_ai.client.operation.duration` counts N calls.
Used after a burst that ends with a clean exit, and after SIGTERM to a program
that asked to flush on signals. Prints one `ok:`/`FAIL:` line per check and
`delivery: X passed, Y failed`. Standard library only.
"""

from __future__ import annotations

import argparse
import sys

from check_rig import as_number, fld, histogram_points, load
from check_export import Checker

DURATION = "gen_ai.client.operation.duration"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="path", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--calls", type=int, required=True)
    ap.add_argument("--spans-per-call", type=int, default=1)
    args = ap.parse_args()
    spans, exports = load(args.path, args.service)
    checker = Checker()
    check = checker.check

    want = args.calls * args.spans_per_call
    check(len(spans) == want, f"{len(spans)} of {want} spans arrived")
    chats = sum(1 for s in spans if s.name.startswith("chat "))
    check(chats == args.calls, f"{chats} of {args.calls} chat spans arrived")
    last = [e[DURATION] for e in exports if DURATION in e]
    counted = 0
    if last:
        for metric in last[-1]:
            counted += sum(as_number(fld(p, "count", 0)) or 0 for p in histogram_points(metric))
    check(counted == args.calls, f"the duration histogram counts {counted} of {args.calls} calls")
    print(f"delivery: {checker.passed} passed, {checker.failed} failed")
    return 1 if checker.failed else 0


if __name__ == "__main__":
    sys.exit(main())
