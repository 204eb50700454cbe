"""Fault-to-green on the real loop, default configuration: seconds per stage for each fault.

Starts the loopback stack as `tts-sentinel demo` does (simulator under supervisord, exporter,
receiver with its default configuration, Prometheus, Alertmanager; drill timings: scrape and rule
evaluation every 1 s, rule `for:` scaled by 0.1), injects each fault as `tts-sentinel drill FAULT`
does, follows its incident to the end and prints a table. By default every fault gets a fresh
stack, so each is a first incident; `--one-stack` drills them in a row on one stack, where a
fault of the same family as an earlier one inside the escalation window (900 s) rightly climbs.

    python bench/loop_drills.py [--faults hang,error500,oom,silent,crash] [--rounds 1] [--one-stack]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tts_sentinel.harness.drill import StackEndpoints, run_drill  # noqa: E402
from tts_sentinel.harness.stack import Stack, Timing  # noqa: E402

COMPONENT = {"hang": "web", "error500": "web"}  # as `tts-sentinel drill` picks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", default="hang,error500,oom,silent,crash")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--one-stack", action="store_true", help="drill every fault in a row on one stack")
    ap.add_argument("--settle", type=float, default=20.0, help="seconds between drills on one stack")
    args = ap.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    rows: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        batches = [faults] * args.rounds if args.one_stack else [[f] for _ in range(args.rounds) for f in faults]
        for n, batch in enumerate(batches):
            stack = Stack(Path(tmp) / f"stack{n}", timing=Timing())  # the receiver's defaults: no overrides
            stack.start()
            try:
                endpoints = StackEndpoints.from_dir(stack.dir)
                for i, fault in enumerate(batch):
                    if i:
                        time.sleep(args.settle)
                    result = run_drill(endpoints, fault, COMPONENT.get(fault, "inference"), timeout=180)
                    print(result.summary(), flush=True)
                    rows.setdefault(fault, []).append(result)
            finally:
                stack.stop()
    print(f"\n{'fault':10} {'alert s':>8} {'action s':>9} {'green s':>8}  outcome, tiers  (median of {args.rounds})")
    for fault, results in rows.items():
        def med(attr: str, results: list = results) -> str:
            values = [getattr(r, attr) for r in results if getattr(r, attr) is not None]
            return f"{statistics.median(values):.1f}" if values else "never"
        ends = "; ".join(f"{r.outcome} {'->'.join(r.tiers) or '-'}" for r in results)
        print(f"{fault:10} {med('alert_seconds'):>8} {med('action_seconds'):>9} {med('green_seconds'):>8}  {ends}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
