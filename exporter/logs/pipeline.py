"""The log pipeline: sources -> line assembly -> block scanner -> counters, in background threads."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from tts_sentinel.exporter.logs.command_source import CommandSource
from tts_sentinel.exporter.logs.file_source import FileSourceOptions, RotatingFileSource
from tts_sentinel.exporter.logs.learned import TemplateLearner
from tts_sentinel.exporter.logs.metrics import LogCounter, LogMetrics
from tts_sentinel.exporter.logs.offsets import OffsetStore
from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.loghistory.scanner import compile_pattern

log = logging.getLogger(__name__)


class LogPipeline:
    """Follows every configured log file and command and counts lines and pattern matches.

    `start()` runs one thread polling all files every `poll_interval_seconds` plus one
    thread per command source; `stop()` joins them and saves the file offsets in
    `state_dir` so the next start resumes exactly there. `poll_once()` does one poll
    of the files in the caller's thread (tests and one-shot use).
    """

    def __init__(self, config: LogsConfig, registry: CollectorRegistry, state_dir: Path) -> None:
        self.config = config
        self.metrics = LogMetrics(registry)
        self.store = OffsetStore(Path(state_dir))
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one poll at a time, and no save during a poll
        self._thread: threading.Thread | None = None
        self._stopped = False
        compiled = {p.name: compile_pattern(p.name, p.regex) for p in config.all_patterns()}
        self.learner = TemplateLearner(config, self.metrics.pattern_matches, registry, Path(state_dir)) \
            if config.learning.enabled else None
        self.counters = {
            name: LogCounter(name, [compiled[p.name] for p in config.patterns_for(name)], self.metrics,
                             config.scanner, self.learner)
            for name in config.log_names()
        }
        saved = self.store.load()
        options = FileSourceOptions(
            max_line_bytes=config.max_line_bytes,
            read_block_bytes=config.read_block_bytes,
            rotate_wait_seconds=config.rotate_wait_seconds,
            fingerprint_bytes=config.fingerprint_bytes,
            start_at=config.start_at,
        )
        self.files = [
            RotatingFileSource(
                f.name, f.path, self.counters[f.name], options,
                saved=self._saved_for(saved.get(f.name), f.path), stop_event=self._stop,
            )
            for f in config.files
        ]
        for src in self.files:  # measured at scrape time, not at the last poll
            self.counters[src.name].lag.set_function(src.lag_bytes)
        self.commands = [
            CommandSource(c, self.counters[c.name], config.max_line_bytes, stop_event=self._stop)
            for c in config.commands
        ]

    @staticmethod
    def _saved_for(state: dict | None, path: Path) -> dict | None:
        # A saved state for another path (the config changed) says nothing about this file.
        if state and state.get("path") == str(path):
            return state
        return None

    def start(self) -> None:
        """Start following in background threads; returns at once."""
        if self._thread is not None:
            return
        self._stop.clear()
        with self._lock:
            for src in self.files:
                src.prime()
        for c in self.commands:
            c.start()
        self._thread = threading.Thread(target=self._run, name="log-pipeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop every thread, read what rotated files still hold, save offsets. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for c in self.commands:
            c.stop()
        with self._lock:
            for src in self.files:
                src.finish_rotated()
            self.save_offsets()
            for src in self.files:
                src.close()
        if self.learner is not None:
            self.learner.close()

    def poll_once(self) -> None:
        """Poll every file source once in this thread, then let the learner reload and save."""
        with self._lock:
            for src in self.files:
                src.poll()
        if self.learner is not None:
            self.learner.maintain()

    def save_offsets(self) -> None:
        """Save every file source's position now (atomic)."""
        try:
            states = {src.name: src.state() for src in self.files}
            self.store.save({name: st for name, st in states.items() if st is not None})
        except OSError as exc:
            # Losing the save costs recounting after a restart, not the running counts: keep going.
            self.metrics.read_errors.labels(log="_offsets").inc()
            log.warning("cannot save log offsets to %s (%s); check state_dir.", self.store.path, exc)

    def _run(self) -> None:
        interval = self.config.poll_interval_seconds
        last_save = time.monotonic()
        while not self._stop.is_set():
            try:
                self.poll_once()
                if time.monotonic() - last_save >= self.config.offsets_save_interval_seconds:
                    with self._lock:
                        self.save_offsets()
                    last_save = time.monotonic()
            except Exception:  # a bug in one poll must not stop log counting for good
                log.exception("log pipeline poll failed; retrying")
            self._stop.wait(interval)
