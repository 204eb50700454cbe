"""`tts-sentinel triage`: what happened in the last N minutes, and its root cause."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from tts_sentinel.config import ConfigError, load_config
from tts_sentinel.loghistory.triage import diagnose, format_verdict, parse_duration


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel triage`."""
    parser.add_argument("--since", default="10m", help="window length ending now: 90s, 10m, 2h (default 10m)")
    parser.add_argument("--json", action="store_true", help="print one JSON document for machines")
    parser.add_argument("--config", default=None,
                        help="config file (default: $TTS_SENTINEL_CONFIG, else built-in defaults)")
    parser.add_argument("--now", default=None, help=argparse.SUPPRESS)  # fixed clock for tests and drills


def run(args: argparse.Namespace) -> int:
    """Print the window's matching lines and the verdict.

    Exit status: 0 nothing matched, 1 something matched, 2 bad arguments or config.
    """
    try:
        since = parse_duration(args.since)
        now = datetime.fromisoformat(args.now) if args.now else None
        config = load_config(args.config).exporter.logs
    except (ValueError, ConfigError) as exc:
        print(f"tts-sentinel triage: {exc}", file=sys.stderr)
        return 2
    result = diagnose(config, since, now, show_progress=sys.stderr.isatty() and not args.json)
    for w in result["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 1 if result["event_count"] else 0
    hidden = result["event_count"] - len(result["events"])
    if hidden:
        print(f"... {hidden} earlier matching lines not shown (raise triage.max_lines to see them)")
    for e in result["events"]:
        print(f"{e['log']:<10} {e['line']}")
    if result["events"]:
        print()
    print(format_verdict(result))
    return 1 if result["event_count"] else 0
