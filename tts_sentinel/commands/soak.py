"""`tts-sentinel soak`: a sequence of faults on the real loopback stack, scored per incident, against a baseline."""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from tts_sentinel.harness.soak.plan import MAX_INJECTIONS, Injection, parse_faults, random_plan
from tts_sentinel.harness.soak.report import markdown, table, write_json
from tts_sentinel.harness.soak.run import BASELINE, SENTINEL, RunRecord, SequenceRunner, SoakStack
from tts_sentinel.harness.soak.score import score_run, summarize
from tts_sentinel.harness.soak.timeline import TimelineUnavailable, render
from tts_sentinel.harness.stack import StackError
from tts_sentinel.harness.timing import Timing, deep_merge, receiver_timings
from tts_sentinel.receiver.config import ReceiverConfig

ALL_WEEK = {"timezone": "UTC", "weekdays": [0, 1, 2, 3, 4, 5, 6], "start": "00:00:00", "end": "23:59:59"}
NO_HOURS = {"timezone": "UTC", "weekdays": []}
RUN_DIRS = (SENTINEL, BASELINE)
OUTPUTS = ("soak.json", "report.md", "timeline.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel soak`."""
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--faults", help="faults in order, e.g. hang,error500,oom,crash:web,weights,silent@during "
                                       "(FAULT[:web|inference][@during]; weights = corrupt weights + segfault)")
    what.add_argument("--count", type=int, default=8, help=f"random faults to inject (default 8, at most "
                                                           f"{MAX_INJECTIONS}); with a recurrence, a fault during a "
                                                           "remediation and an unhealable one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sequence (default 0)")
    parser.add_argument("--gap", type=float, default=20.0,
                        help="seconds between one incident's end and the next fault (default 20)")
    parser.add_argument("--incident-timeout", type=float, default=240.0,
                        help="seconds an incident may take before the soak clears the fault itself (default 240)")
    parser.add_argument("--max-minutes", type=float, default=45.0,
                        help="no new fault after this many minutes of a run (default 45)")
    parser.add_argument("--business-hours", action="store_true",
                        help="make every hour a business hour, so the receiver refuses heavy restarts "
                             "(default: none is, whatever the time of day)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline run")
    parser.add_argument("--dir", default=".soak", help="run directory for the reports (default .soak, wiped)")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="run in DIR and keep it whole: journal database, logs, on-call sink log, configs")
    parser.add_argument("--json", action="store_true", help="print soak.json instead of the table")
    parser.epilog = "exit status: 0 every incident scored ok; 1 some check failed; 2 usage error or the stack failed"


def _plan(args: argparse.Namespace) -> list[Injection]:
    return parse_faults(args.faults) if args.faults else random_plan(args.count, args.seed)


def _prepare(directory: Path) -> None:
    """Wipe a previous soak's directory; refuse to wipe anything else."""
    if directory.exists() and any(directory.iterdir()):
        foreign = [p.name for p in directory.iterdir() if p.name not in (*RUN_DIRS, *OUTPUTS)]
        if foreign:
            raise ValueError(f"{directory} holds files that are not a soak's ({', '.join(sorted(foreign)[:5])}); "
                             "pick an empty or new directory")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_one(mode: str, directory: Path, plan: list[Injection], args: argparse.Namespace,
            overrides: dict[str, Any], say: Any) -> RunRecord:
    """Start a stack, run the plan on it, stop every process it started (also on Ctrl-C)."""
    if mode == BASELINE:
        overrides = {**overrides, "dry_run": True}  # what users run instead: nothing acts but the watchdog
    stack = SoakStack(directory / mode, receiver_overrides=overrides)
    say(f"[{mode}] starting the stack in {stack.dir} ...")
    try:
        stack.start()
        runner = SequenceRunner(stack, plan, mode, args.gap, args.incident_timeout,
                                time.monotonic() + args.max_minutes * 60, say)
        return runner.run()
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stopping short
        try:
            stack.stop()
        finally:
            signal.signal(signal.SIGINT, previous)
        say(f"[{mode}] stack stopped")


def run(args: argparse.Namespace) -> int:
    """Run the soak; exit 0 when every incident scored ok, 1 when one did not, 2 when it could not run."""
    try:
        plan = _plan(args)
        directory = Path(args.keep or args.dir)
        _prepare(directory)
    except ValueError as exc:
        print(f"cannot soak: {exc}")
        return 2

    def say(text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)

    # Heavy restarts are refused in business hours (the receiver's default: weekdays 09:00-18:59,
    # Asia/Shanghai): without --business-hours no hour is one, so a soak scores the same at any time.
    overrides = {"business_hours": ALL_WEEK if args.business_hours else NO_HOURS}
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C stops the soak even when it was started with SIGINT ignored (a background job, a test
    # runner's worker): Python installs its own handler only when SIGINT is not ignored at start.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    say("plan: " + ", ".join(i.label for i in plan))
    try:
        sentinel = run_one(SENTINEL, directory, plan, args, overrides, say)
        baseline = None if args.no_baseline else run_one(BASELINE, directory, plan, args, overrides, say)
    except StackError as exc:
        print(f"soak failed to start the stack: {exc}")
        return 2
    except KeyboardInterrupt:
        print("soak interrupted; every process it started is stopped.")
        return 130
    finally:
        if not args.keep:
            for name in RUN_DIRS:
                shutil.rmtree(directory / name, ignore_errors=True)
    scores = score_run(plan, sentinel, baseline, heavy_refused=args.business_hours)
    # The stack's receiver windows: the drill timings' scaled defaults, then the soak's overrides.
    receiver = deep_merge(receiver_timings(Timing().for_scale, Timing().bound_scale), overrides)
    window = ReceiverConfig.model_validate(receiver).guards.escalation_window_seconds
    summary = summarize(scores, plan, sentinel, baseline, window)
    settings = {
        "command": "tts-sentinel soak " + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["soak"] else sys.argv[1:]),
        "plan": ", ".join(i.label for i in plan),
        "gap_seconds": args.gap, "incident_timeout_seconds": args.incident_timeout,
        "business_hours_all_week": args.business_hours, "escalation_window_seconds": window,
        "incidents_from": next((s.source for s in scores if s.source), "-"),
    }
    picture: str | None = "timeline.png"
    try:
        render(directory / "timeline.png", sentinel, baseline)
    except TimelineUnavailable as exc:
        say(f"no timeline: {exc}")
        picture = None
    document = {"settings": settings, "summary": summary, "incidents": [s.as_dict() for s in scores],
                "runs": {r.mode: _run_dict(r) for r in (sentinel, baseline) if r is not None}}
    write_json(directory / "soak.json", document)
    (directory / "report.md").write_text(markdown(scores, summary, settings, picture), encoding="utf-8")
    if args.json:
        print((directory / "soak.json").read_text(encoding="utf-8"), end="")
    else:
        print(table(scores, summary))
        print(f"\nreport: {directory / 'report.md'}  json: {directory / 'soak.json'}"
              + (f"  timeline: {directory / picture}" if picture else ""))
    return 0 if all(s.ok for s in scores) and len(scores) == len(plan) else 1


def _run_dict(record: RunRecord) -> dict[str, Any]:
    t0 = record.started_at
    return {
        "started_at": t0, "seconds": round(record.finished_at - t0, 1), "stopped_early": record.stopped_early,
        "budget_waits_seconds": {str(i + 1): w for i, w in record.budget_waits.items()},
        "injections": [r.as_dict(t0) for r in record.records],
        "incidents": [[i.as_dict() for i in found] for found in record.incidents],
        "observed": record.observer.as_dict() if record.observer else {},
        "watchdog_restarts": [{"at": round(t - t0, 1), "program": p} for t, p in record.watchdog_restarts],
    }
