"""`tts-sentinel mine`: log templates that no configured pattern covers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tts_sentinel.config import ConfigError, load_config
from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.loghistory.mining import LEVEL_RANK, mine, read_lines, suggest_name
from tts_sentinel.loghistory.scanner import compile_pattern


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel mine`."""
    parser.add_argument("--config", default=None, help="config file (default: $TTS_SENTINEL_CONFIG, else defaults)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--log", default=None, help="name of a configured log (default: inference, else the first)")
    src.add_argument("--file", type=Path, default=None, help="any log file (.gz archives too)")
    parser.add_argument("--top", type=int, default=20, help="templates to print (default 20)")
    parser.add_argument("--min-count", type=int, default=2, help="ignore templates seen fewer times (default 2)")
    parser.add_argument("--similarity", type=float, default=0.6, help="token agreement to merge, 0..1 (default 0.6)")
    parser.add_argument("--max-mb", type=float, default=64, help="read at most the last N MB of a plain file")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def _log_path(config: LogsConfig, name: str | None) -> tuple[str, Path]:
    files = {f.name: f.path for f in config.files}
    if name is None:
        if not files:
            raise ValueError("no log files are configured; pass --file PATH")
        name = "inference" if "inference" in files else next(iter(files))
    if name not in files:
        raise ValueError(f"no configured log named {name!r}; configured: {', '.join(files) or 'none'}")
    return name, files[name]


def run(args: argparse.Namespace) -> int:
    """Print the templates no configured pattern covers, most frequent first. 2 on bad input."""
    try:
        config = load_config(args.config).exporter.logs
        if args.file is not None:
            log_name, path = None, args.file
        else:
            log_name, path = _log_path(config, args.log)
        if not 0 < args.similarity <= 1:
            raise ValueError("--similarity must be in (0, 1]")
    except (ValueError, ConfigError) as exc:
        print(f"tts-sentinel mine: {exc}", file=sys.stderr)
        return 2
    patterns = [compile_pattern(p.name, p.regex)
                for p in (config.patterns_for(log_name) if log_name else config.all_patterns())]
    ts_regex = config.triage.timestamp_regex + r"(?:\s+)?"
    try:
        templates, seen, covered = mine(read_lines(path, int(args.max_mb * 1e6)), patterns, args.similarity, ts_regex)
    except FileNotFoundError:
        print(f"tts-sentinel mine: {path}: no such file", file=sys.stderr)
        return 2
    except (OSError, EOFError) as exc:
        print(f"tts-sentinel mine: {path}: cannot read ({exc})", file=sys.stderr)
        return 2
    shown = [t for t in templates if t.count >= args.min_count][: args.top]
    if args.json:
        doc: dict[str, Any] = {
            "file": str(path), "lines": seen, "covered_by_patterns": covered, "templates": [
                {"template": t.text, "count": t.count, "level": t.level(), "example": t.example,
                 "regex": t.regex(), "suggested_name": suggest_name(t)} for t in shown
            ],
        }
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0
    print(f"{path}: {seen:,} lines, {covered:,} matched by configured patterns, "
          f"{len(templates):,} templates in the rest; top {len(shown)} by count:")
    for t in shown:
        print(f"{t.count:>9,}  {t.level() or '-':<8} {t.text}")
    interesting = [t for t in shown if LEVEL_RANK.get(t.level(), 5) <= 2]
    if interesting:
        print("\nTo count a warning/error template, add it to exporter.logs.extra_patterns, e.g.:")
        for t in interesting[:5]:
            logs = f", logs: [{log_name}]" if log_name else ""
            regex = t.regex().replace("'", "''")  # YAML single-quoted
            print(f"  - {{name: {suggest_name(t)}, regex: '{regex}'{logs}}}")
    return 0
