"""`tts-sentinel drill FAULT`: inject a fault into a running stack and time the healing.

Measures three intervals from the moment of injection: until Prometheus fires an
alert that the receiver acts on, until the receiver journals an action, and until
the L1 probe is green again. The end-to-end tests call `run_drill` directly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tts_sentinel.receiver.verification import probe_succeeded

ACTING_TIERS = {"light", "medium", "heavy", "derate"}
# Which alert each simulator fault is expected to raise first.
EXPECTED_ALERT = {
    "hang": "TtsHealthProbeFailing",
    "error500": "TtsHealthProbeFailing",
    "crash": "TtsProcessCrashed",
    "oom": "TtsCudaOutOfMemory",
    "silent": "TtsAudioSilent",
    "underflow": "TtsStreamUnderflow",
}


@dataclass
class StackEndpoints:
    """Where the parts of a running stack answer (read from its stack.json)."""

    web: str
    api: str
    exporter: str
    receiver: str
    prometheus: str
    alertmanager: str
    token: str

    @classmethod
    def from_dir(cls, directory: Path) -> StackEndpoints:
        """Endpoints of the stack whose configs live in `directory` (a `tts-sentinel demo` run)."""
        info = json.loads((directory / "stack.json").read_text())
        ports = info["ports"]
        token = (directory / "receiver.token").read_text().strip()
        return cls(**{k: f"http://127.0.0.1:{ports[k]}" for k in
                      ("web", "api", "exporter", "receiver", "prometheus", "alertmanager")}, token=token)


@dataclass
class DrillResult:
    """What happened after one injected fault, in seconds from the injection."""

    fault: str
    component: str
    alert: str = ""
    alert_seconds: float | None = None
    action_seconds: float | None = None
    green_seconds: float | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        def fmt(v: float | None) -> str:
            return "never" if v is None else f"{v:.1f}s"
        return (f"{self.fault} on {self.component}: alert {self.alert or '-'} after {fmt(self.alert_seconds)}, "
                f"action after {fmt(self.action_seconds)}, green after {fmt(self.green_seconds)}")


def firing_alerts(prometheus: str) -> list[dict[str, Any]]:
    """Alerts Prometheus has in state firing."""
    data = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()
    return [a for a in data["data"]["alerts"] if a["state"] == "firing"]


def journal(receiver: str, token: str) -> list[dict[str, Any]]:
    """The receiver's action journal (newest last)."""
    r = httpx.get(f"{receiver}/actions", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    r.raise_for_status()
    body = r.json()
    rows = body.get("actions", []) if isinstance(body, dict) else body
    return sorted(rows, key=lambda row: row.get("id", 0))


ACTION_STATUSES = {"queued", "running", "succeeded", "failed", "interrupted"}


def actions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The journal rows that are actions (not alerts the receiver journaled and ignored)."""
    return [r for r in rows if r.get("status") in ACTION_STATUSES]


def health_probe_green(exporter: str) -> bool:
    """True when the exporter's L1 probe, run now, succeeds."""
    text = httpx.get(f"{exporter}/probe", params={"module": "health"}, timeout=10).text
    return bool(probe_succeeded(text))


def inject(endpoints: StackEndpoints, fault: str, component: str) -> None:
    """Ask the simulator component to misbehave."""
    base = endpoints.web if component == "web" else endpoints.api
    r = httpx.post(f"{base}/admin/fault", json={"fault": fault, "component": component}, timeout=5)
    r.raise_for_status()


def wait_until(predicate: Callable[[], Any], deadline: float, every: float = 0.25) -> Any:
    """The first truthy value of `predicate()` before `deadline` (monotonic), else None; HTTP errors count as no."""
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (httpx.HTTPError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(every)
    return None


def run_drill(endpoints: StackEndpoints, fault: str, component: str = "web", timeout: float = 120.0,
              on_event: Callable[[str], None] = lambda _: None) -> DrillResult:
    """Inject `fault` and wait (at most `timeout` s) for alert, action and green; never raises on a timeout."""
    result = DrillResult(fault=fault, component=component)
    expected = EXPECTED_ALERT.get(fault)

    def acting_alerts() -> list[dict[str, Any]]:
        return [a for a in firing_alerts(endpoints.prometheus)
                if (expected is None or a["labels"].get("alertname") == expected)
                and a["labels"].get("tier") in ACTING_TIERS]

    # An alert still firing from an earlier incident would hide this one: wait for quiet first.
    if acting_alerts():
        on_event("waiting for the alerts of an earlier incident to resolve")
        wait_until(lambda: not acting_alerts(), time.monotonic() + timeout)
    before = len(journal(endpoints.receiver, endpoints.token))
    t0 = time.monotonic()
    injected_at = time.time()
    deadline = t0 + timeout
    inject(endpoints, fault, component)
    on_event(f"injected {fault} into {component}")

    def acting_alert() -> str | None:
        for a in acting_alerts():
            if datetime.fromisoformat(a["activeAt"].replace("Z", "+00:00")).timestamp() >= injected_at - 1:
                return a["labels"]["alertname"]
        return None

    name = wait_until(acting_alert, deadline)
    if name:
        result.alert, result.alert_seconds = name, time.monotonic() - t0
        on_event(f"alert {name} firing after {result.alert_seconds:.1f}s")
    rows = wait_until(lambda: actions(journal(endpoints.receiver, endpoints.token)[before:]) or None, deadline)
    if rows:
        result.action_seconds = time.monotonic() - t0
        on_event(f"receiver started a {rows[0].get('tier')} action after {result.action_seconds:.1f}s")
        action_id = rows[0].get("id")

        def healed() -> bool:
            row = next(r for r in journal(endpoints.receiver, endpoints.token) if r.get("id") == action_id)
            if row.get("status") in ("failed", "interrupted"):
                raise ValueError("the action failed")  # keep waiting: an escalation may still heal it
            return row.get("status") == "succeeded" and health_probe_green(endpoints.exporter)

        if wait_until(healed, deadline):
            result.green_seconds = time.monotonic() - t0
            on_event(f"action verified and health probe green after {result.green_seconds:.1f}s")
    result.actions = actions(journal(endpoints.receiver, endpoints.token)[before:])
    return result
