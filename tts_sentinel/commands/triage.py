"""`tts-sentinel triage`: what happened in the last N minutes, and its root cause."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from tts_sentinel.config import ConfigError, find_config, load_config
from tts_sentinel.loghistory.triage import diagnose, format_verdict, parse_duration


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel triage`."""
    parser.add_argument("--since", default="10m", help="window length ending now: 90s, 10m, 2h (default 10m)")
    parser.add_argument("--json", action="store_true", help="print one JSON document for machines")
    parser.add_argument("--config", default=None,
                        help="config file (default: $TTS_SENTINEL_CONFIG, ./tts-sentinel.yml, "
                             "/etc/tts-sentinel/config.yml)")
    parser.add_argument("--now", default=None, help=argparse.SUPPRESS)  # fixed clock for tests and drills


def reading_status(result: dict[str, Any]) -> str:
    """`unreadable` when no configured log could be read at all, `no_lines` when the logs were read
    but none has a line in the window, `ok` otherwise (lines were read; the verdict says what matched)."""
    if result["files_read"] == 0 and result["files_skipped"] == 0:
        return "unreadable"
    if result["bytes_read"] == 0:
        return "no_lines"
    return "ok"


def run(args: argparse.Namespace) -> int:
    """Print the window's matching lines and the verdict.

    Exit status: 0 nothing matched, 1 something matched, 2 bad arguments or config, or no
    configured log could be read (an all-clear from logs nobody read would be a lie).
    """
    try:
        since = parse_duration(args.since)
        now = datetime.fromisoformat(args.now) if args.now else None
        config = load_config(args.config).exporter.logs
    except (ValueError, ConfigError) as exc:
        print(f"tts-sentinel triage: {exc}", file=sys.stderr)
        return 2
    result = diagnose(config, since, now, show_progress=sys.stderr.isatty() and not args.json)
    result["status"] = reading_status(result)
    for w in result["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if result["status"] == "unreadable":
        print(
            "tts-sentinel triage: could not read any configured log (every file is missing or unreadable and "
            "no log command has a history_argv), so nothing can be said about the window. Check exporter.logs "
            f"in {find_config(args.config) or 'the built-in defaults'}, or run `tts-sentinel doctor`.",
            file=sys.stderr,
        )
        if args.json:
            print(json.dumps(result, ensure_ascii=False, indent=2))
        return 2
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
    if result["status"] == "no_lines":
        win = result["window"]
        sources = result["files_read"] + result["files_skipped"]
        print(f"VERDICT: no log lines at all between {win['start']} and {win['end']} in the {sources} "
              "readable log(s): the service wrote nothing (is it running and logging where the config says?).")
        return 0
    print(format_verdict(result))
    return 1 if result["event_count"] else 0
