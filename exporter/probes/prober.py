"""One shape for every prober (blackbox_exporter's `ProbeFn`).

A prober is a function `probe(module_config, probes_config) -> ProbeResult` (the
second argument gives the shared parts: baseline folder, model identity): it runs one check against
its target and returns success, the failure reasons (from its fixed REASONS), a
line for people, and the measurements it took. It touches no registry: the
collector turns results into metrics at scrape time, and `probe_now` turns one
result into a fresh exposition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """One sample a probe took: metric name, help, labels (the `probe` label is added later), value."""

    name: str
    help: str
    labels: dict[str, str]
    value: float


@dataclass
class ProbeResult:
    """The outcome of one probe run."""

    success: bool
    detail: str
    reasons: list[str] = field(default_factory=list)
    gauges: list[Measurement] = field(default_factory=list)
    # Counter increments (name ending in _total), accumulated by the collector.
    counts: list[Measurement] = field(default_factory=list)

    @classmethod
    def failed(cls, reason: str, detail: str) -> ProbeResult:
        """A failed run with one reason."""
        return cls(success=False, detail=detail, reasons=[reason])


@dataclass(frozen=True)
class Prober:
    """A prober kind: its function and its fixed failure reasons (pre-created at 0)."""

    run: Callable[[Any, Any], ProbeResult]
    reasons: tuple[str, ...]


def verdict(module: str, result: ProbeResult, seconds: float) -> str:
    """One line for people and scripts: `health: ok (0.004s) ...` or `... FAIL [reason] ...`."""
    state = "ok" if result.success else "FAIL [" + ",".join(result.reasons) + "]"
    return f"{module}: {state} ({seconds:.3f}s) {result.detail}"
