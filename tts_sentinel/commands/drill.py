"""`tts-sentinel drill FAULT`: inject a fault into a running demo and time the healing."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import httpx

from tts_sentinel.harness.drill import StackEndpoints, run_drill


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel drill`."""
    parser.add_argument("fault", help="simulator fault: hang, error500, silent, oom, crash, underflow, ...")
    parser.add_argument("--component", choices=["web", "inference"], default=None,
                        help="which program misbehaves (default: web for hang/error500, inference otherwise)")
    parser.add_argument("--dir", default=".demo", help="the running demo's directory (default .demo)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for healing (default 120)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Run one drill against a running `tts-sentinel demo`; exit 0 when it healed."""
    directory = Path(args.dir)
    if not (directory / "stack.json").exists():
        print(f"no running demo in {directory}: start one with `make demo` (or `tts-sentinel demo --dir {directory}`).")
        return 2
    component = args.component or ("web" if args.fault in ("hang", "error500") else "inference")
    endpoints = StackEndpoints.from_dir(directory)
    try:
        result = run_drill(endpoints, args.fault, component, args.timeout,
                           on_event=(lambda _: None) if args.json else print)
    except httpx.HTTPError as exc:
        print(f"the demo in {directory} does not answer ({exc}); is `make demo` still running?")
        return 2
    print(json.dumps(asdict(result), indent=2) if args.json else result.summary())
    return 0 if result.green_seconds is not None else 1
