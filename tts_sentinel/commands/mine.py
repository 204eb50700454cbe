"""`tts-sentinel mine`: new or fast-growing WARN/ERROR log templates; accept or reject learned ones."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tts_sentinel.config import ConfigError, SentinelConfig, load_config
from tts_sentinel.loghistory.config import LABEL_VALUE, LogsConfig
from tts_sentinel.loghistory.mining.learned import LearnedFileError, LearnedPatterns, editing_learned, load_learned
from tts_sentinel.loghistory.mining.lines import LineShape
from tts_sentinel.loghistory.mining.miner import TemplateMiner
from tts_sentinel.loghistory.mining.offline import Window, WindowMiner, log_files
from tts_sentinel.loghistory.mining.report import build_report, format_report
from tts_sentinel.loghistory.scanner import compile_pattern
from tts_sentinel.loghistory.triage import parse_duration
from tts_sentinel.loghistory.triage.clock import LineClock
from tts_sentinel.runbook_urls import DEFAULT_RUNBOOK_BASE, runbook_url

TIERS = ("none", "light", "medium", "heavy", "derate", "rollback")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel mine` and of its `list`, `accept`, `reject` actions."""
    parser.add_argument("--config", default=None, help="config file (default: $TTS_SENTINEL_CONFIG, else defaults)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--log", default=None, help="name of a configured log (default: inference, else the first)")
    src.add_argument("--file", type=Path, default=None, help="any log file (.gz archives too)")
    parser.add_argument("--since", default="7d", help="window ending at the log's last line: 1d, 7d, 12h (default 7d)")
    parser.add_argument("--recent", default="1d",
                        help="the end of the window a template must first appear in to be new (default 1d)")
    parser.add_argument("--growth", type=float, default=2.0,
                        help="rate in the recent part against before it that counts as fast-growing (default 2)")
    parser.add_argument("--top", type=int, default=20, help="templates to print (default 20)")
    parser.add_argument("--min-count", type=int, default=2, help="ignore templates seen fewer times (default 2)")
    parser.add_argument("--similarity", type=float, default=None,
                        help="token agreement to join a template, 0..1 (default: exporter.logs.learning.similarity)")
    parser.add_argument("--max-mb", type=float, default=512, help="read at most the last N MB of each plain file")
    parser.add_argument("--all", action="store_true", help="also list steady templates, not only new or growing")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--now", default=None, help=argparse.SUPPRESS)  # window end for tests
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    common = {"default": argparse.SUPPRESS, "help": "config file"}
    p = actions.add_parser("list", help="templates the exporter learned, and their status")
    p.add_argument("--config", **common)
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    p = actions.add_parser("accept", help="name a learned template: counted as a pattern from now on")
    p.add_argument("template_id", metavar="TEMPLATE_ID")
    p.add_argument("--name", required=True, help="pattern name (becomes the `pattern` label)")
    p.add_argument("--tier", choices=TIERS, default="none", help="tier of the alert rule printed (default none)")
    p.add_argument("--config", **common)
    p = actions.add_parser("reject", help="reject a learned template: never counted or announced again")
    p.add_argument("template_id", metavar="TEMPLATE_ID")
    p.add_argument("--config", **common)


def run(args: argparse.Namespace) -> int:
    """The report (0), or a decision about a learned template (0); 2 on bad input."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"tts-sentinel mine: {exc}", file=sys.stderr)
        return 2
    if args.action is not None:
        return _decide(args, config)
    return _report(args, config)


def _log_path(config: LogsConfig, name: str | None) -> tuple[str, Path]:
    files = {f.name: f.path for f in config.files}
    if name is None:
        if not files:
            raise ValueError("no log files are configured; pass --file PATH")
        name = "inference" if "inference" in files else next(iter(files))
    if name in {c.name for c in config.commands}:
        raise ValueError(f"log {name!r} is read from a command; save its history to a file "
                         "(e.g. journalctl -u UNIT --since -7d > f.log) and pass --file f.log")
    if name not in files:
        raise ValueError(f"no configured log named {name!r}; configured: {', '.join(files) or 'none'}")
    return name, files[name]


def _last_time(files: list[Path], clock: LineClock) -> datetime | None:
    """The time of the newest stamped line among the plain files (the window ends there)."""
    for path in reversed(files):
        if path.name.endswith(".gz"):
            continue
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - 256 * 1024))
                tail = f.read()
        except OSError:
            continue
        for line in reversed(tail.splitlines()):
            when = clock.time_of(line)
            if when is not None:
                return when
    return None


def _learned_or_empty(config: SentinelConfig, warnings: list[str]) -> LearnedPatterns:
    try:
        return load_learned(config.exporter.logs.learning.learned_path(config.exporter.state_dir))
    except LearnedFileError as exc:
        warnings.append(f"{exc} (the report shows every template as if nothing had been learned)")
        return LearnedPatterns()


def _report(args: argparse.Namespace, config: SentinelConfig) -> int:
    logs = config.exporter.logs
    learning = logs.learning
    try:
        if args.file is not None:
            log_name, path = None, args.file
        else:
            log_name, path = _log_path(logs, args.log)
        since = parse_duration(args.since)
        recent = min(parse_duration(args.recent), since / 2)
        similarity = learning.similarity if args.similarity is None else args.similarity
        if not 0 < similarity <= 1:
            raise ValueError("--similarity must be in (0, 1]")
        now = datetime.fromisoformat(args.now) if args.now else None
    except ValueError as exc:
        print(f"tts-sentinel mine: {exc}", file=sys.stderr)
        return 2
    if not path.exists():
        print(f"tts-sentinel mine: {path}: no such file", file=sys.stderr)
        return 2
    clock = LineClock(logs.triage.timestamp_regex, logs.triage.timestamp_format)
    files, warnings = ([path], []) if args.file is not None else log_files(path, None)
    end = now or _last_time(files, clock)
    window = Window(end - timedelta(seconds=since), end, end - timedelta(seconds=recent)) if end else None
    if window is not None and args.file is None:
        files, warnings = log_files(path, window.start)
    patterns = [compile_pattern(p.name, p.regex)
                for p in (logs.patterns_for(log_name) if log_name else logs.all_patterns())]
    learned = _learned_or_empty(config, warnings)
    if log_name is not None:  # a template learned on another log says nothing about this one
        learned = LearnedPatterns(templates=[t for t in learned.templates if log_name in t.logs])
    mined = WindowMiner(patterns, learned, LineShape(logs.triage.timestamp_regex),
                        clock, window, TemplateMiner(similarity, learning.depth, learning.max_clusters))
    mined.warnings.extend(warnings)
    for f in files:
        try:
            mined.read_file(f, int(args.max_mb * 1e6))
        except OSError as exc:
            print(f"tts-sentinel mine: {f}: cannot read ({exc.strerror or exc})", file=sys.stderr)
            return 2
    doc = build_report(mined, args.growth, args.min_count, args.top, args.all)
    print(json.dumps(doc, ensure_ascii=False, indent=2) if args.json else format_report(doc, log_name))
    return 0


def _decide(args: argparse.Namespace, config: SentinelConfig) -> int:
    path = config.exporter.logs.learning.learned_path(config.exporter.state_dir)
    try:
        if args.action == "list":
            return _list(load_learned(path), getattr(args, "json", False))
        configured = {p.name for p in config.exporter.logs.all_patterns()}
        with editing_learned(path) as learned:
            entry = learned.get(args.template_id)
            if entry is None:
                known = ", ".join(t.id for t in learned.templates) or "none yet"
                raise ValueError(f"no learned template {args.template_id!r} in {path} (learned: {known}); "
                                 "`tts-sentinel mine list` shows them")
            if args.action == "accept":
                if not re.fullmatch(LABEL_VALUE, args.name):
                    raise ValueError(f"--name {args.name!r}: use lower case letters, digits and _ (a label value)")
                taken = configured | {t.name for t in learned.templates if t.name and t.id != entry.id}
                if args.name in taken:
                    raise ValueError(f"--name {args.name!r} is already a pattern; choose another name")
                entry.name = args.name
            entry.status = "accepted" if args.action == "accept" else "rejected"
            entry.decided_at = datetime.now().timestamp()
    except (ValueError, LearnedFileError) as exc:
        print(f"tts-sentinel mine: {exc}", file=sys.stderr)
        return 2
    if args.action == "reject":
        print(f"{entry.id} rejected: the exporter stops counting it at its next poll and never promotes it again.")
        return 0
    print(_accepted_text(entry.id, entry.as_pattern_config().model_dump(), args.tier))
    return 0


def _list(learned: LearnedPatterns, as_json: bool) -> int:
    if as_json:
        print(json.dumps(learned.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return 0
    if not learned.templates:
        print("No learned templates yet.")
    for t in learned.templates:
        when = datetime.fromtimestamp(t.promoted_at).isoformat(sep=" ", timespec="seconds")
        label = f"{t.status} as {t.name}" if t.name else t.status
        print(f"{t.id}  {label:<28} {when}  [{','.join(t.logs)}] {t.level:<8} {t.template}")
    return 0


def _accepted_text(template_id: str, pattern: dict[str, Any], tier: str) -> str:
    name = pattern["name"]
    alert = "Tts" + "".join(w.capitalize() for w in name.split("_"))
    regex = pattern["regex"].replace("'", "''")
    severity = "info" if tier == "none" else "warning"
    return "\n".join([
        f"{template_id} accepted as {name}: the exporter counts it as "
        f'tts_log_pattern_matches_total{{pattern="{name}"}} from its next poll (no restart).',
        "To keep it in the config instead, add under exporter.logs.extra_patterns (the config wins):",
        f"  - {{name: {name}, regex: '{regex}', logs: [{', '.join(pattern['logs'])}]}}",
        "To act on it, add an alert with its tier to your rules and a section to the runbooks, e.g.:",
        f"  - alert: {alert}",
        f'    expr: sum by (service, job, instance, log) (increase(tts_log_pattern_matches_total{{pattern="{name}"}}'
        "[10m])) > 0",
        f"    labels: {{tier: {tier}, severity: {severity}}}",
        "    annotations:",
        f'      summary: "{name} lines in the {{{{ $labels.log }}}} log"',
        f'      description: "{{{{ $value | humanize }}}} lines of learned template {template_id} in 10 minutes."',
        f"      runbook_url: {runbook_url(DEFAULT_RUNBOOK_BASE, alert)}",
    ])
