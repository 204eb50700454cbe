"""Probe metrics built at scrape time from the latest results (client_python custom collector).

Probe threads only call `record()`, which swaps in the new result under a lock;
`collect()` creates the metric families from that state on every scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tts_sentinel.exporter.probes.prober import ProbeResult


class ProbeCollector(Collector):
    """tts_probe_success, tts_probe_duration_seconds, tts_probe_failures_total and each probe's own gauges."""

    def __init__(self, reasons: dict[str, tuple[str, ...]]) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, tuple[ProbeResult, float, float]] = {}
        # Failure counters pre-created at 0 for every module and reason, so rate() works from the start.
        self._failures = {(module, reason): 0.0 for module, rs in reasons.items() for reason in rs}
        self._counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._help: dict[str, str] = {}

    def record(self, module: str, result: ProbeResult, duration_seconds: float) -> None:
        """Keep `result` as the module's latest and count its failure reasons."""
        with self._lock:
            self._last[module] = (result, duration_seconds, time.time())
            for reason in result.reasons:
                key = (module, reason)
                self._failures[key] = self._failures.get(key, 0.0) + 1
            for m in result.counts:
                key2 = (m.name, tuple(sorted({"probe": module, **m.labels}.items())))
                self._counts[key2] = self._counts.get(key2, 0.0) + m.value
                self._help[m.name] = m.help

    def collect(self) -> Iterator[Metric]:
        """The metric families from the current state."""
        with self._lock:
            last = dict(self._last)
            failures = dict(self._failures)
            counts = dict(self._counts)
            helps = dict(self._help)
        success = GaugeMetricFamily("tts_probe_success", "1 when the last run of the probe succeeded.",
                                    labels=["probe"])
        duration = GaugeMetricFamily("tts_probe_duration_seconds", "Seconds the last run of the probe took.",
                                     labels=["probe"])
        stamp = GaugeMetricFamily("tts_probe_last_run_timestamp_seconds",
                                  "Unix time of the last run of the probe.", labels=["probe"])
        gauges: dict[str, tuple[GaugeMetricFamily, list[str]]] = {}
        for module, (result, seconds, when) in sorted(last.items()):
            success.add_metric([module], 1.0 if result.success else 0.0)
            duration.add_metric([module], seconds)
            stamp.add_metric([module], when)
            for m in result.gauges:
                labels = {"probe": module, **m.labels}
                if m.name not in gauges:
                    gauges[m.name] = (GaugeMetricFamily(m.name, m.help, labels=list(labels)), list(labels))
                family, names = gauges[m.name]
                family.add_metric([labels.get(k, "") for k in names], m.value)
        failed = CounterMetricFamily("tts_probe_failures_total", "Probe runs that failed, by reason.",
                                     labels=["probe", "reason"])
        for (module, reason), value in sorted(failures.items()):
            failed.add_metric([module, reason], value)
        yield from (success, duration, stamp, failed)
        yield from (family for family, _ in gauges.values())
        by_name: dict[str, CounterMetricFamily] = {}
        for (name, labels), value in sorted(counts.items()):
            family = by_name.get(name)
            if family is None:
                family = by_name[name] = CounterMetricFamily(
                    name.removesuffix("_total"), helps[name], labels=[k for k, _ in labels],
                )
            family.add_metric([v for _, v in labels], value)
        yield from by_name.values()


def single_run_exposition(module: str, reasons: tuple[str, ...], result: ProbeResult, seconds: float) -> bytes:
    """Prometheus text of one run in a fresh registry (blackbox_exporter's /probe answer)."""
    registry = CollectorRegistry()
    collector = ProbeCollector({module: reasons})
    collector.record(module, result, seconds)
    registry.register(collector)
    return generate_latest(registry)
