"""Read a command's history (`journalctl --since`, `docker logs --since`) for the matching lines in the window.

Services that log only to stdout (vLLM-Omni) have no files to read: their history comes from
the process manager. The argv runs without a shell, in a process group of its own that is
killed whole when it runs past its timeout.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

from tts_sentinel.loghistory.config import LogCommandConfig
from tts_sentinel.loghistory.scanner import CompiledPattern
from tts_sentinel.loghistory.triage.clock import LineClock
from tts_sentinel.loghistory.triage.events import Event, ReadReport, Window, scan_chunks
from tts_sentinel.loghistory.triage.progress import Progress
from tts_sentinel.procgroup import GroupDeadline, spawn_group


def read_command_history(
    cmd: LogCommandConfig, patterns: list[CompiledPattern], clock: LineClock, window: Window,
    progress: Progress, report: ReadReport,
) -> list[Event]:
    """Run the command's history argv (no shell) and scan what it prints like a file."""
    since_seconds = str(max(1, math.ceil((window.end - window.start).total_seconds())))
    since_local = window.start.strftime("%Y-%m-%d %H:%M:%S")
    argv = [a.replace("{since_seconds}", since_seconds).replace("{since_local}", since_local)
            for a in cmd.history_argv]
    events: list[Event] = []
    try:
        proc = spawn_group(argv, merge_stderr=cmd.include_stderr)
    except OSError as exc:
        report.warnings.append(f"log {cmd.name}: cannot run {argv[0]} ({exc.strerror or exc}); skipped.")
        return events
    assert proc.stdout is not None
    fd = proc.stdout.fileno()

    def chunks() -> Iterator[bytes]:
        while data := os.read(fd, 1024 * 1024):
            progress.advance(len(data))
            yield data

    with GroupDeadline(proc, cmd.history_timeout_seconds) as deadline:
        try:
            events.extend(scan_chunks(chunks(), patterns, clock, window, cmd.name, f"command {argv[0]}", report))
        finally:
            proc.stdout.close()
            rc = proc.wait()
    if rc != 0:
        why = "timed out" if deadline.expired else f"exited with status {rc}"
        report.warnings.append(f"log {cmd.name}: history command {argv[0]} {why}; its lines may be incomplete.")
    return events
