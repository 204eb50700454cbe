"""`tts-sentinel mine`: the WARN/ERROR lines of a log inside a time window, mined into templates.

Lines a configured pattern matches are only counted (they are known); lines of a learned
template are counted under its id (a rejected one is skipped); the rest go to Drain3 in
the order they were written, exactly as the exporter mines them online, so the same lines
give the same templates and the same ids.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tts_sentinel.loghistory.archives import is_compressed, rotated_generations
from tts_sentinel.loghistory.mining.learned import LearnedPatterns
from tts_sentinel.loghistory.mining.lines import MINED_LEVELS, LineShape, covering_pattern, warn_error_lines
from tts_sentinel.loghistory.mining.miner import TemplateMiner
from tts_sentinel.loghistory.scanner import CompiledPattern
from tts_sentinel.loghistory.triage.clock import LineClock
from tts_sentinel.loghistory.triage.seek import seek_window_start

BLOCK = 4 * 1024 * 1024


@dataclass
class Window:
    """[start, end] in naive local time like the logs; lines stamped after `recent_start` are recent."""

    start: datetime
    end: datetime
    recent_start: datetime


@dataclass
class WindowMiner:
    """Mines the WARN/ERROR lines of one log's files that fall inside the window."""

    patterns: list[CompiledPattern]
    learned: LearnedPatterns
    shape: LineShape
    clock: LineClock
    window: Window | None
    miner: TemplateMiner
    covered: int = 0
    rejected: int = 0
    without_timestamp: int = 0
    learned_counts: dict[str, int] = field(default_factory=dict)
    recent: dict[int, int] = field(default_factory=dict)  # cluster id -> lines in the recent part
    data_start: datetime | None = None  # the first warning or error of the window
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._learned = [(t, t.pattern()) for t in self.learned.templates]

    @property
    def lines(self) -> int:
        """WARN/ERROR lines read inside the window."""
        return self.covered + self.rejected + sum(self.learned_counts.values()) + self.miner.lines

    def feed_lines(self, lines: Iterable[str]) -> None:
        """Mine text lines (tests, pipes)."""
        self.feed_block("".join(line.rstrip("\n") + "\n" for line in lines).encode("utf-8", "replace"))

    def feed_block(self, block: bytes) -> None:
        """Mine one block of complete lines."""
        for raw in warn_error_lines(block):
            line = raw.decode("utf-8", "replace").rstrip("\r")
            level, body = self.shape.split(line)
            if level not in MINED_LEVELS:
                continue
            when = self.clock.time_of(raw)
            if when is None:
                self.without_timestamp += 1
            elif self.window and not self.window.start <= when <= self.window.end:
                continue
            elif self.data_start is None or when < self.data_start:
                self.data_start = when
            self._mine(raw, level, body, line, when)

    def _mine(self, raw: bytes, level: str, body: str, line: str, when: datetime | None) -> None:
        if covering_pattern(raw, self.patterns) is not None:
            self.covered += 1
            return
        for entry, pattern in self._learned:
            if (pattern.literal is None or pattern.literal in raw) and pattern.regex.search(raw):
                if entry.status == "rejected":
                    self.rejected += 1
                else:
                    self.learned_counts[entry.id] = self.learned_counts.get(entry.id, 0) + 1
                return
        t = self.miner.add(level, body, line, when.timestamp() if when else None)
        if t is not None and when is not None and self.window and when >= self.window.recent_start:
            self.recent[t.cluster_id] = self.recent.get(t.cluster_id, 0) + 1

    def read_file(self, path: Path, max_bytes: int) -> None:
        """Mine one file (plain, or a .gz archive); a damaged archive keeps the lines before the damage."""
        self.files.append(str(path))
        try:
            for block in _complete_lines(self._chunks(path, max_bytes)):
                self.feed_block(block)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            self.warnings.append(f"{path}: damaged archive ({exc}); used the lines before the damage.")

    def _chunks(self, path: Path, max_bytes: int) -> Iterator[bytes]:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                while data := f.read(BLOCK):
                    yield data
            return
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # Binary search to the window's first line (always a line start) ...
            start = seek_window_start(f, size, self.window.start, self.clock) if self.window else 0
            if size - max_bytes > start:  # ... unless --max-mb cuts in later: then the next line start
                f.seek(size - max_bytes)
                f.readline()
                start = f.tell()
            f.seek(start)
            while data := f.read(BLOCK):
                yield data


def _complete_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield data[:cut]
    if rest:
        yield rest + b"\n"


def log_files(path: Path, since: datetime | None) -> tuple[list[Path], list[str]]:
    """The log's rotated generations touched since `since`, oldest first, then the log itself.

    Returns (files, warnings): archives in a format we cannot read are named in a warning.
    """
    warnings = []
    files = []
    for p in rotated_generations(path):
        if is_compressed(p) and not p.name.endswith(".gz"):
            warnings.append(f"{p}: only .gz archives are read; skipped.")
            continue
        try:
            mtime = p.stat().st_mtime
        except OSError:
            continue
        if since is None or datetime.fromtimestamp(mtime) >= since:
            files.append((mtime, p))
    return [p for _, p in sorted(files)] + [path], warnings
