"""tts_process_* metrics: the process manager's view, read at scrape time (client_python custom collector).

Every scrape reads the source and builds the families from that reading. Sources that must
watch between scrapes to count restarts (supervisord) are also read by a background poll;
that poll only advances the source's own count, the families are still made in `collect()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tts_sentinel.exporter.processes import build_source
from tts_sentinel.exporter.processes.config import ProcessesConfig
from tts_sentinel.exporter.processes.source import ProcessSource, Reading, SourceError

log = logging.getLogger(__name__)


class ProcessCollector(Collector):
    """Emits tts_process_source_up and, per managed process, up, state, restarts, last exit, start time, backoff."""

    def __init__(self, config: ProcessesConfig, source: ProcessSource | None = None) -> None:
        self._config = config
        self._source = source if source is not None else (build_source(config) if config.enabled else None)
        self._lock = threading.Lock()
        # Some managers forget the exit code once the process runs again; keep the last one seen.
        self._last_exit: dict[tuple[str, str], int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged_reason = ""

    @property
    def kind(self) -> str:
        """The configured manager kind (the `kind` label)."""
        return self._source.kind if self._source is not None else self._config.kind

    def start(self) -> None:
        """Start the background poll when the source needs one; otherwise nothing runs between scrapes."""
        if self._source is None or not self._source.needs_polling or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name=f"processes-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background poll."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._config.poll_interval_seconds + 5)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self._config.poll_interval_seconds):
            reading, error = self.read()
            if error is not None:
                log.debug("process source %s: %s", self.kind, error)

    def read(self) -> tuple[Reading | None, SourceError | None]:
        """Read the source once: (reading, None), or (None, the error that says why not)."""
        if self._source is None:
            return None, SourceError("disabled", "exporter.processes.enabled is false")
        with self._lock:
            try:
                reading = self._source.read()
            except SourceError as exc:
                return None, exc
            except Exception as exc:  # noqa: BLE001 - a source bug must show as a down source, not a failed scrape
                log.exception("reading the %s process source failed unexpectedly", self.kind)
                return None, SourceError("error", f"unexpected {type(exc).__name__}: {exc}")
            for p in reading.processes:
                if p.last_exit_code is not None:
                    self._last_exit[(p.component, p.name)] = p.last_exit_code
            return reading, None

    def collect(self) -> Iterator[Metric]:
        """Read the manager now and yield the families."""
        source_up = GaugeMetricFamily(
            "tts_process_source_up",
            "1 when the process manager answered; the reason says why not (or what it cannot see).",
            labels=["kind", "reason"],
        )
        reading, error = self.read()
        if reading is None:
            assert error is not None
            if error.reason not in ("disabled", self._logged_reason):  # once per new reason, not every scrape
                log.warning("process manager %s not read: %s", self.kind, error)
            self._logged_reason = error.reason
            source_up.add_metric([self.kind, error.reason], 0)
            yield source_up
            return
        self._logged_reason = ""
        source_up.add_metric([self.kind, reading.note], 1)
        yield source_up
        yield from self._families(reading)

    def _families(self, reading: Reading) -> Iterator[Metric]:
        labels = ["component", "name"]
        up = GaugeMetricFamily(
            "tts_process_up", "1 when the process manager reports the process running.", labels=labels
        )
        state = GaugeMetricFamily(
            "tts_process_state", "The process manager's state of the process (value 1).", labels=[*labels, "state"]
        )
        restarts = CounterMetricFamily(
            "tts_process_restarts",
            "Restarts the process manager made on its own after the process exited unasked (crashes).",
            labels=labels,
        )
        exit_code = GaugeMetricFamily(
            "tts_process_last_exit_code", "Exit code of the last exit (128+N for death by signal N).", labels=labels
        )
        started = GaugeMetricFamily(
            "tts_process_start_time_seconds", "When the running process started, seconds since the epoch.",
            labels=labels,
        )
        backoff = GaugeMetricFamily(
            "tts_process_backoff",
            "1 while the manager holds off restarting after crashes or gave up (BACKOFF/FATAL, CrashLoopBackOff).",
            labels=labels,
        )
        with self._lock:
            last_exit = dict(self._last_exit)
        for p in reading.processes:
            key = [p.component, p.name]
            up.add_metric(key, 1 if p.up else 0)
            state.add_metric([*key, p.state], 1)
            backoff.add_metric(key, 1 if p.backoff else 0)
            if p.restarts is not None:
                restarts.add_metric(key, p.restarts)
            if (p.component, p.name) in last_exit:
                exit_code.add_metric(key, last_exit[(p.component, p.name)])
            if p.start_time_seconds is not None:
                started.add_metric(key, p.start_time_seconds)
        yield from (up, state, restarts, exit_code, started, backoff)
