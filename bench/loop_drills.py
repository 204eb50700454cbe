"""Fault-to-green on the real loop: one stack, several injected faults, seconds per stage.

Starts the loopback stack (simulator under supervisord, exporter, receiver, Prometheus,
Alertmanager, rule `for:` scaled by 0.1 as in the tests), injects each fault in turn,
waits for the alert, the receiver's action and the verified recovery, and prints a table.

    python bench/loop_drills.py [--faults hang,oom,silent,error500] [--rounds 1]
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

COMPONENT = {"hang": "web", "error500": "web"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", default="hang,error500,oom,silent")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--settle", type=float, default=20.0, help="seconds between drills for alerts to resolve")
    args = ap.parse_args()
    rows: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Each drill is a new incident: without this, the second fault inside the cooldown of the
        # first would (rightly) escalate, and the bench would time escalations instead.
        guards = {"cooldown_seconds": {"light": 1, "medium": 1, "heavy": 1, "derate": 1},
                  "escalation_window_seconds": 0, "budget_actions": 100}
        stack = Stack(Path(tmp), timing=Timing(), receiver_overrides={"guards": guards})
        stack.start()
        try:
            endpoints = StackEndpoints.from_dir(stack.dir)
            for _ in range(args.rounds):
                for fault in args.faults.split(","):
                    result = run_drill(endpoints, fault, COMPONENT.get(fault, "inference"), timeout=120)
                    print(result.summary(), flush=True)
                    rows.setdefault(fault, []).append(result)
                    time.sleep(args.settle)
        finally:
            stack.stop()
    print(f"\n{'fault':10} {'alert s':>8} {'action s':>9} {'green s':>8}  (median of {args.rounds})")
    for fault, results in rows.items():
        def med(attr: str, results: list = results) -> str:
            values = [getattr(r, attr) for r in results if getattr(r, attr) is not None]
            return f"{statistics.median(values):.1f}" if values else "never"
        print(f"{fault:10} {med('alert_seconds'):>8} {med('action_seconds'):>9} {med('green_seconds'):>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
