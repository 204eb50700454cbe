"""`tts-sentinel drill FAULT`: inject a fault into a running demo and follow its incident to the end."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import httpx

from tts_sentinel.harness.drill import StackEndpoints, run_drill
from tts_sentinel.simulator.faults import FaultError, check_fault

# Exit codes: the incident healed; it did not (paged, refused, still open, no action); the drill could not run.
HEALED, NOT_HEALED, USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel drill`."""
    parser.add_argument("fault", help="simulator fault: hang, error500, silent, oom, crash, underflow, ...")
    parser.add_argument("--component", choices=["web", "inference"], default=None,
                        help="which program misbehaves (default: web for hang/error500, inference otherwise)")
    parser.add_argument("--dir", default=".demo", help="the running demo's directory (default .demo)")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to follow the incident, escalations included (default 180)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.epilog = ("exit status: 0 the incident healed (or, for a crash, the process manager restarted it) and "
                     "the health probe is green; 1 it did not "
                     "(paged, refused, still open at the timeout, or no action); 2 usage error or no running demo")


def run(args: argparse.Namespace) -> int:
    """Run one drill against a running `tts-sentinel demo`; exit 0 healed, 1 not healed, 2 cannot run."""
    component = args.component or ("web" if args.fault in ("hang", "error500") else "inference")
    try:
        check_fault(args.fault, component)
    except FaultError as exc:
        print(f"cannot drill: {exc}")
        return USAGE
    directory = Path(args.dir)
    if not (directory / "stack.json").exists():
        print(f"no running demo in {directory}: start one with `make demo` (or `tts-sentinel demo --dir {directory}`).")
        return USAGE
    endpoints = StackEndpoints.from_dir(directory)
    try:
        result = run_drill(endpoints, args.fault, component, args.timeout,
                           on_event=(lambda _: None) if args.json else print)
    except httpx.HTTPError as exc:
        print(f"the demo in {directory} does not answer ({exc}); is `make demo` still running?")
        return USAGE
    print(json.dumps(asdict(result), indent=2) if args.json else result.summary())
    return HEALED if result.healed else NOT_HEALED
