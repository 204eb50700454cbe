"""What the soak sees while it runs: alerts firing in Prometheus, pages at the on-call sink, and
whether each simulator component is really well (its fault cleared and its health endpoint 200).

The last one is ground truth that neither the receiver nor the baseline decides: a component is
green when the simulator's admin API says its fault is gone and `/health` answers 200 in time.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tts_sentinel.harness.drill import StackEndpoints, firing_alerts, rule_durations

COMPONENTS = ("web", "inference")


@dataclass
class AlertSpan:
    """One firing of one alert, as often as the soak looked."""

    name: str
    labels: dict[str, str]
    active_at: float  # when it went pending
    first_seen: float  # when the soak first saw it firing
    last_seen: float
    for_seconds: float = 0.0  # the rule's `for:` as Prometheus runs it

    @property
    def firing_at(self) -> float:
        """When it started firing: pending plus the rule's `for:` (never after the soak saw it firing)."""
        return min(self.active_at + self.for_seconds, self.first_seen)


@dataclass
class Page:
    """One alert that reached on-call (first notification of a firing)."""

    arrived: float
    alertname: str
    starts_at: float
    labels: dict[str, str]


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def component_green(endpoints: StackEndpoints, component: str, timeout: float = 1.0,
                    client: httpx.Client | None = None) -> bool:
    """Ground truth: the component's simulated fault is `none` and its /health answers 200 in time."""
    base = endpoints.web if component == "web" else endpoints.api
    http = client or httpx.Client()
    try:
        fault = http.get(f"{base}/admin/fault", timeout=timeout).json().get("fault")
        return fault == "none" and http.get(f"{base}/health", timeout=timeout).status_code == 200
    except (httpx.HTTPError, ValueError):
        return False
    finally:
        if client is None:
            http.close()


@dataclass
class Observer:
    """Polls the stack; `poll()` is cheap to call often (it looks at most every `every` seconds)."""

    endpoints: StackEndpoints
    oncall_log: Path
    every: float = 1.0
    alerts: dict[tuple[str, float, str], AlertSpan] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    green: dict[str, bool] = field(default_factory=dict)
    green_changes: list[tuple[float, str, bool]] = field(default_factory=list)
    for_seconds: dict[str, float] = field(default_factory=dict)
    _last: float = 0.0
    _offset: int = 0
    _paged: set[tuple[str, str]] = field(default_factory=set)
    _client: httpx.Client = field(default_factory=httpx.Client)

    def poll(self, force: bool = False) -> None:
        """Record what changed since the last look."""
        now = time.time()
        if not force and now - self._last < self.every:
            return
        self._last = now
        self._poll_alerts(now)
        self._poll_pages(now)
        for component in COMPONENTS:
            ok = component_green(self.endpoints, component, client=self._client)
            if self.green.get(component) != ok:
                self.green_changes.append((now, component, ok))
            self.green[component] = ok

    def _poll_alerts(self, now: float) -> None:
        try:
            firing = firing_alerts(self.endpoints.prometheus, self.endpoints.auth)
            if not self.for_seconds:
                self.for_seconds = rule_durations(self.endpoints.prometheus, self.endpoints.auth)
        except (httpx.HTTPError, ValueError, KeyError):
            return
        for a in firing:
            labels = a.get("labels", {})
            key = (labels.get("alertname", ""), _epoch(a["activeAt"]), json.dumps(labels, sort_keys=True))
            span = self.alerts.get(key)
            if span is None:
                self.alerts[key] = AlertSpan(key[0], labels, key[1], now, now, self.for_seconds.get(key[0], 0.0))
            else:
                span.last_seen = now

    def _poll_pages(self, now: float) -> None:
        """New firing alerts in the on-call sink's JSON lines (re-sends of one firing count once)."""
        try:
            with self.oncall_log.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            try:
                payload = json.loads(line)
            except ValueError:
                continue
            for alert in payload.get("alerts", []):
                if alert.get("status") != "firing":
                    continue
                labels = alert.get("labels", {})
                key = (alert.get("fingerprint") or json.dumps(labels, sort_keys=True), alert.get("startsAt", ""))
                if key in self._paged:
                    continue
                self._paged.add(key)
                starts = _epoch(alert["startsAt"]) if alert.get("startsAt") else now
                self.pages.append(Page(now, labels.get("alertname", ""), starts, labels))

    def green_since(self, component: str, after: float) -> float | None:
        """When `component` last turned green after time `after` and stayed so (None if not green now)."""
        if not self.green.get(component):
            return None
        turned = [t for t, c, ok in self.green_changes if c == component and ok and t > after]
        return turned[-1] if turned else None

    def as_dict(self) -> dict[str, Any]:
        """JSON shape for reports."""
        return {
            "alerts": [{"name": s.name, "active_at": s.active_at, "firing_at": s.firing_at, "first_seen": s.first_seen,
                        "last_seen": s.last_seen, "tier": s.labels.get("tier", ""),
                        "severity": s.labels.get("severity", "")} for s in self.alerts.values()],
            "pages": [{"arrived": p.arrived, "alertname": p.alertname, "starts_at": p.starts_at,
                       "reason": p.labels.get("reason", "")} for p in self.pages],
            "green_changes": [{"at": t, "component": c, "green": ok} for t, c, ok in self.green_changes],
        }
