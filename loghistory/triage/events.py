"""The window, the matching lines found in it, and the scan of a byte stream for them.

Files (plain and gzip) and command output are all read as a stream of chunks; this module
turns such a stream into the matching lines whose time falls inside the window.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tts_sentinel.loghistory.scanner import CompiledPattern
from tts_sentinel.loghistory.triage.clock import LineClock


@dataclass
class Window:
    """The stretch of time triage looks at, in naive local time like the logs."""

    start: datetime
    end: datetime


@dataclass
class Event:
    """One matching line in the window."""

    time: datetime
    log: str
    file: str
    pattern: str
    line: str

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(timespec="milliseconds"), "log": self.log, "file": self.file,
                "pattern": self.pattern, "line": self.line}


@dataclass
class ReadReport:
    """What triage read and skipped, and what went wrong, for the verdict's footnote."""

    files_read: int = 0
    bytes_read: int = 0
    files_skipped: int = 0
    warnings: list[str] = field(default_factory=list)


def scan_chunks(
    chunks: Iterator[bytes], patterns: list[CompiledPattern], clock: LineClock, window: Window,
    log: str, file: str, report: ReadReport,
) -> Iterator[Event]:
    """Matching lines of one stream (a file, a command's output) inside the window, in order.

    The stream counts as one file read in `report`. An error raised by `chunks` comes out of
    the iteration after every event before it.
    """
    report.files_read += 1
    last_time = None
    for block in _blocks(chunks):
        report.bytes_read += len(block)
        found, last_time = _events_in_block(block, patterns, clock, window.start, window.end, log, file, last_time)
        yield from found


def _blocks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Whole-line blocks of a stream of chunks."""
    pending = b""
    for data in chunks:
        data = pending + data
        last = data.rfind(b"\n")
        if last < 0:
            pending = data
            continue
        pending = data[last + 1 :]
        yield data[: last + 1]
    if pending:
        yield pending + b"\n"


def _events_in_block(
    block: bytes, patterns: list[CompiledPattern], clock: LineClock, start: datetime, end: datetime,
    log: str, file: str, last_time: datetime | None,
) -> tuple[list[Event], datetime | None]:
    """Matching lines of one block inside [start, end]; lines without a timestamp take the previous one."""
    hits: dict[int, tuple[int, str]] = {}
    for p in patterns:
        lit = p.literal
        pos = 0
        while True:
            if lit is not None:
                j = block.find(lit, pos)
                if j < 0:
                    break
            else:
                m = p.regex.search(block, pos)
                if m is None:
                    break
                j = m.start()
            ls = block.rfind(b"\n", 0, j) + 1
            le = block.find(b"\n", j)
            if p.regex.search(block, ls, le):
                hits.setdefault(ls, (le, p.name))
            pos = le + 1
    events = []
    for ls in sorted(hits):
        le, name = hits[ls]
        line = block[ls:le]
        t = clock.time_of(line) or _time_before(block, ls, clock) or last_time
        if t is None or t < start or t > end:
            continue
        events.append(Event(t, log, file, name, line.rstrip(b"\r").decode("utf-8", "replace")))
    tail_time = _time_before(block, len(block), clock) or last_time
    return events, tail_time


def _time_before(block: bytes, pos: int, clock: LineClock, max_lines: int = 200) -> datetime | None:
    """Timestamp of the nearest timestamped line before `pos` in the block (for traceback lines)."""
    end = pos - 1 if pos > 0 else 0
    for _ in range(max_lines):
        if end <= 0:
            return None
        ls = block.rfind(b"\n", 0, end) + 1
        t = clock.time_of(block[ls:end])
        if t is not None:
            return t
        end = ls - 1
    return None
