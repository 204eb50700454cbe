"""Runs every enabled probe module on its own interval, and one module on demand.

One thread per module, so an hourly L3 run never delays the 5-second L1 check.
`probe_now` is blackbox_exporter's /probe: run once, fresh registry, exposition.
A synthesis probe is a GPU job on the service, so each module runs at most once at a
time: a scheduled run and any number of /probe requests that overlap share one run.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry

from tts_sentinel.exporter.probes.collector import ProbeCollector, single_run_exposition
from tts_sentinel.exporter.probes.config import ProbesConfig
from tts_sentinel.exporter.probes.prober import Prober, ProbeResult
from tts_sentinel.exporter.probes.registry import prober_for

log = logging.getLogger(__name__)


class _Flight:
    """One run of a module that callers arriving while it runs wait for and share."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.outcome: tuple[ProbeResult, float] | None = None
        self.started = time.monotonic()


class ProbeScheduler:
    """Schedules the configured probe modules and exposes their metrics in `registry`."""

    def __init__(self, config: ProbesConfig, registry: CollectorRegistry) -> None:
        self.config = config
        self._modules: dict[str, tuple[Prober, Any]] = {
            name: (prober_for(cfg.prober), cfg) for name, cfg in config.enabled_modules().items()
        }
        self.collector = ProbeCollector({name: p.reasons for name, (p, _) in self._modules.items()})
        registry.register(self.collector)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()

    def module_names(self) -> list[str]:
        """Names of the enabled modules."""
        return list(self._modules)

    def start(self) -> None:
        """Start one background thread per module; each runs at once, then every interval."""
        self._stop.clear()
        for name in self._modules:
            thread = threading.Thread(target=self._loop, args=(name,), name=f"probe-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop scheduling and wait (bounded) for running probes to end."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def run_once(self, module: str) -> tuple[ProbeResult, float]:
        """Run `module` once; a prober bug becomes a failed result, never an exception."""
        prober, cfg = self._modules[module]
        started = time.monotonic()
        try:
            result = prober.run(cfg, self.config)
        except Exception as exc:  # a broken prober must not kill its schedule
            log.exception("probe %s raised", module)
            result = ProbeResult.failed("error", f"prober raised {exc.__class__.__name__}: {exc}")
        return result, time.monotonic() - started

    def run_shared(self, module: str, fresh: bool = False) -> tuple[ProbeResult, float]:
        """Run `module` once, or join the run of it already in progress (single flight).

        `fresh`: a run that started before this call is waited out, not joined (its audio may predate
        what the caller wants heard: the evidence captured before a restart)."""
        asked = time.monotonic()
        while True:
            with self._flights_lock:
                flight = self._flights.get(module)
                leader = flight is None
                if flight is None:
                    flight = self._flights[module] = _Flight()
            if leader or not fresh or flight.started >= asked:
                break
            flight.done.wait()
        if not leader:
            flight.done.wait()
        else:
            try:
                flight.outcome = self.run_once(module)
            finally:
                with self._flights_lock:
                    del self._flights[module]
                flight.done.set()
        if flight.outcome is None:  # the leader was interrupted
            return ProbeResult.failed("error", "the shared probe run was interrupted"), 0.0
        return flight.outcome

    def probe_now(self, module: str, fresh: bool = False) -> tuple[bool, bytes]:
        """Run `module` once with a fresh registry: (success, Prometheus text). KeyError if unknown.

        Requests that arrive while the module runs share that run's result instead of starting another
        (with `fresh`, only a run that started after the request).
        """
        if module not in self._modules:
            raise KeyError(module)
        result, seconds = self.run_shared(module, fresh)
        return result.success, single_run_exposition(module, self._modules[module][0].reasons, result, seconds)

    def _loop(self, module: str) -> None:
        interval = self._modules[module][1].interval_seconds
        while not self._stop.is_set():
            result, seconds = self.run_shared(module)
            self.collector.record(module, result, seconds)
            if not result.success:
                log.warning("probe %s failed: %s %s", module, result.reasons, result.detail)
            self._stop.wait(interval)
