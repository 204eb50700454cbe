"""The whole window: which files to read, every matching line in them, and the verdict as a dict."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tts_sentinel.loghistory.archives import is_compressed, rotated_generations
from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.loghistory.scanner import compile_pattern
from tts_sentinel.loghistory.triage.clock import LineClock
from tts_sentinel.loghistory.triage.events import Event, ReadReport, Window
from tts_sentinel.loghistory.triage.files import read_file
from tts_sentinel.loghistory.triage.history import read_command_history
from tts_sentinel.loghistory.triage.progress import Progress
from tts_sentinel.loghistory.triage.verdict import explain


def _candidates(config: LogsConfig) -> list[tuple[str, Path]]:
    """(log name, file) for each log's rotated generations, oldest first, then its current file."""
    out = []
    for f in config.files:
        gens = sorted(rotated_generations(f.path, compressed=True), key=lambda p: _mtime(p) or 0)
        out.extend((f.name, p) for p in gens)
        out.append((f.name, f.path))
    return out


def _mtime(p: Path) -> float | None:
    try:
        return p.stat().st_mtime
    except OSError:
        return None


def collect_events(
    config: LogsConfig, window: Window, show_progress: bool = False
) -> tuple[list[Event], ReadReport]:
    """Every line of every configured log (current and rotated) in the window that matches a pattern."""
    report = ReadReport()
    clock = LineClock(config.triage.timestamp_regex, config.triage.timestamp_format)
    compiled = {p.name: compile_pattern(p.name, p.regex) for p in config.all_patterns()}
    by_log = {f.name: [compiled[p.name] for p in config.patterns_for(f.name)] for f in config.files}
    start_ts = window.start.timestamp()
    todo: list[tuple[str, Path, int]] = []
    for log, path in _candidates(config):
        try:
            st = path.stat()
        except FileNotFoundError:
            if not is_compressed(path):
                report.warnings.append(f"{path}: no such file (log {log}); is the path in the config right?")
            continue
        except OSError as exc:
            report.warnings.append(f"{path}: cannot read ({exc.strerror}); skipped.")
            continue
        # Last written before the window opened: nothing in it can be inside the window.
        if st.st_mtime < start_ts - 1:
            report.files_skipped += 1
            continue
        todo.append((log, path, st.st_size))
    progress = Progress(sum(s for _, _, s in todo), show_progress)
    events: list[Event] = []
    try:
        for log, path, _size in todo:
            events.extend(read_file(log, path, by_log[log], clock, window, progress, report))
        for cmd in config.commands:
            if cmd.history_argv:
                patterns = [compiled[p.name] for p in config.patterns_for(cmd.name)]
                events.extend(read_command_history(cmd, patterns, clock, window, progress, report))
    finally:
        progress.close()
    events.sort(key=lambda e: e.time)
    return events, report


def diagnose(
    config: LogsConfig, since_seconds: float, now: datetime | None = None, show_progress: bool = False
) -> dict[str, Any]:
    """The triage verdict for the last `since_seconds`, as a JSON-able dict.

    Keys: window {start, end}, root_cause (None when nothing matched; else pattern, count,
    first event), derived (patterns explained by the root, with counts), other_causes
    (independent roots), events (matching lines, time-sorted, the latest triage.max_lines),
    event_count, warnings, files_read, bytes_read, files_skipped. Naive local time, like the logs.
    """
    end = now or datetime.now()
    window = Window(end - timedelta(seconds=since_seconds), end)
    events, report = collect_events(config, window, show_progress)
    verdict = explain(events, config.triage.rules)
    shown = events[-config.triage.max_lines:]
    return {
        "window": {"start": window.start.isoformat(timespec="seconds"),
                   "end": window.end.isoformat(timespec="seconds")},
        **verdict,
        "events": [e.as_dict() for e in shown],
        "event_count": len(events),
        "warnings": report.warnings,
        "files_read": report.files_read,
        "bytes_read": report.bytes_read,
        "files_skipped": report.files_skipped,
    }
