"""The log pipeline's metrics, and the per-log counter that feeds them from scanned blocks."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from tts_sentinel.exporter.logs.learned import TemplateLearner
from tts_sentinel.loghistory.scanner import BlockScanner, CompiledPattern, Engine


class LogMetrics:
    """Every `tts_log_*` series, registered once on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pattern_matches = Counter(
            "tts_log_pattern_matches", "Log lines that matched a configured pattern.",
            ["log", "pattern"], registry=registry,
        )
        # When the last match was read: alert rules compare it with the process's start time, so a
        # count alert ends when the process that logged it is replaced, and a repeat fires anew.
        self.pattern_last_match = Gauge(
            "tts_log_pattern_last_match_timestamp_seconds",
            "When a line matching the pattern was last read, seconds since the epoch (absent before the first).",
            ["log", "pattern"], registry=registry,
        )
        self.lines = Counter("tts_log_lines", "Complete log lines read.", ["log"], registry=registry)
        self.bytes = Counter("tts_log_bytes", "Bytes of complete log lines read.", ["log"], registry=registry)
        self.rotations = Counter(
            "tts_log_rotations", "Rotations seen (rename or delete and create).", ["log"], registry=registry
        )
        self.truncations = Counter(
            "tts_log_truncations", "Truncations seen (copytruncate or rewrite in place).", ["log"],
            registry=registry,
        )
        self.invalid_utf8 = Counter(
            "tts_log_invalid_utf8_lines", "Lines that are not valid UTF-8 (still counted and scanned).",
            ["log"], registry=registry,
        )
        self.long_lines = Counter(
            "tts_log_long_lines", "Lines longer than max_line_bytes, cut to that length.", ["log"],
            registry=registry,
        )
        self.read_errors = Counter(
            "tts_log_read_errors", "Failures to open, read or run a log source (it is retried).", ["log"],
            registry=registry,
        )
        self.lag = Gauge(
            "tts_log_lag_bytes", "Bytes in the followed file not read yet, measured at scrape (0 for commands).",
            ["log"], registry=registry,
        )
        self.source_up = Gauge(
            "tts_log_source_up", "1 when the log source is open (file readable or command running).",
            ["log"], registry=registry,
        )


class LogCounter:
    """Scans blocks of one log and adds what they contain to that log's series.

    Every (log, pattern) series is created at 0 up front so alert rules using
    `increase()` see the first match.
    """

    def __init__(self, log: str, patterns: Sequence[CompiledPattern], metrics: LogMetrics,
                 engine: Engine = "auto", learner: TemplateLearner | None = None) -> None:
        self.log = log
        self.learner = learner
        self.scanner = BlockScanner(patterns, engine)
        self._matches = [metrics.pattern_matches.labels(log=log, pattern=p.name) for p in patterns]
        self._metrics = metrics
        self._names = [p.name for p in patterns]
        self._lines = metrics.lines.labels(log=log)
        self._bytes = metrics.bytes.labels(log=log)
        self._invalid = metrics.invalid_utf8.labels(log=log)
        self._long = metrics.long_lines.labels(log=log)
        self.rotations = metrics.rotations.labels(log=log)
        self.truncations = metrics.truncations.labels(log=log)
        self.read_errors = metrics.read_errors.labels(log=log)
        self.lag = metrics.lag.labels(log=log)
        self.up = metrics.source_up.labels(log=log)
        # Sources of one log may feed from more than one thread (a draining file, a command).
        self._lock = threading.Lock()

    def feed(self, block: bytes | bytearray, long_lines: int = 0) -> None:
        """Count one block of complete lines; `long_lines` of them were cut by the assembler."""
        if not block:
            return
        counts = self.scanner.scan(block)
        with self._lock:
            self._lines.inc(counts.lines)
            self._bytes.inc(counts.nbytes)
            if counts.invalid_utf8:
                self._invalid.inc(counts.invalid_utf8)
            if long_lines:
                self._long.inc(long_lines)
            now = 0.0
            for child, name, n in zip(self._matches, self._names, counts.matches, strict=True):
                if n:
                    child.inc(n)
                    now = now or time.time()
                    self._metrics.pattern_last_match.labels(log=self.log, pattern=name).set(now)
        if self.learner is not None:  # its own lock; a block without WARN/ERROR costs a few bytes.find
            self.learner.feed(self.log, block)
