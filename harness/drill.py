"""`tts-sentinel drill FAULT`: inject a fault into a running stack and follow its incident to the end.

Measures three intervals from the moment of injection: until Prometheus fires an
alert that the receiver acts on, until the receiver journals an action, and until
the incident is healed and the L1 probe is green again. Every action of the incident
is followed, escalations included, until it is healed, paged or refused (or the
timeout passes). The end-to-end tests call `run_drill` directly.
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

from tts_sentinel.harness.incidents import (
    TERMINAL,
    Incident,
    actions,
    combined_status,
    incidents_by_window,
    journal,
)
from tts_sentinel.harness.webauth import WebAuth
from tts_sentinel.receiver.tiers import Tier
from tts_sentinel.receiver.verification import probe_succeeded

__all__ = ["DrillResult", "StackEndpoints", "actions", "firing_alerts", "inject", "journal", "run_drill",
           "wait_until"]

ACTING_TIERS = {t.value for t in Tier if t is not Tier.NONE}
RESTARTED = "restarted"
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
    auth: httpx.Auth | None = None  # Prometheus' and Alertmanager's basic auth (the stack's WebAuth)

    @classmethod
    def from_dir(cls, directory: Path) -> StackEndpoints:
        """Endpoints of the stack whose configs live in `directory` (a `tts-sentinel demo` run)."""
        info = json.loads((directory / "stack.json").read_text())
        ports = info["ports"]
        token = (directory / "receiver.token").read_text().strip()
        auth = WebAuth.from_record(info["web_auth"]).auth() if "web_auth" in info else None
        return cls(**{k: f"http://127.0.0.1:{ports[k]}" for k in
                      ("web", "api", "exporter", "receiver", "prometheus", "alertmanager")}, token=token, auth=auth)


@dataclass
class DrillResult:
    """What happened after one injected fault, in seconds from the injection."""

    fault: str
    component: str
    alert: str = ""
    alert_seconds: float | None = None
    action_seconds: float | None = None
    green_seconds: float | None = None
    # healed | paged | refused (the incident's end), open (still acting at the timeout), no action;
    # restarted: the process manager restarted a crashed process, the receiver journaled the crash and
    # had nothing to do (supervisord's autorestart), and the service is green again
    outcome: str = "no action"
    tiers: list[str] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)  # usually one; a fault may open several
    actions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def healed(self) -> bool:
        """The incident ended healed and the health probe is green."""
        return self.outcome in ("healed", RESTARTED) and self.green_seconds is not None

    def summary(self) -> str:
        """One line for people."""
        def fmt(v: float | None) -> str:
            return "never" if v is None else f"{v:.1f}s"
        ladder = " -> ".join(self.tiers) or "-"
        end = {"healed": f"healed, green after {fmt(self.green_seconds)}", "open": "still open at the timeout",
               "no action": "no action by the receiver",
               RESTARTED: f"restarted by its process manager, crash journaled by the receiver, green after "
                          f"{fmt(self.green_seconds)}"}.get(self.outcome, self.outcome)
        if self.outcome == "healed" and self.green_seconds is None:
            end = "healed by the receiver, but the health probe never came back"
        pages = "".join(f"\nincident page: {url}" for url in self.page_urls)
        return (f"{self.fault} on {self.component}: alert {self.alert or '-'} after {fmt(self.alert_seconds)}, "
                f"action after {fmt(self.action_seconds)}, tiers {ladder}: {end}{pages}")

    @property
    def page_urls(self) -> list[str]:
        """The signed links to the pages of this fault's incidents (they open in a browser)."""
        return [i["page_url"] for i in self.incidents if i.get("page_url")]


def firing_alerts(prometheus: str, auth: httpx.Auth | None = None) -> list[dict[str, Any]]:
    """Alerts Prometheus has in state firing."""
    resp = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5, auth=auth)
    resp.raise_for_status()
    data = resp.json()
    return [a for a in data["data"]["alerts"] if a["state"] == "firing"]


def rule_durations(prometheus: str, auth: httpx.Auth | None = None) -> dict[str, float]:
    """alertname -> the `for:` of its rule, in seconds, as the running Prometheus has it."""
    resp = httpx.get(f"{prometheus}/api/v1/rules", params={"type": "alert"}, timeout=5, auth=auth)
    resp.raise_for_status()
    groups = resp.json()["data"]["groups"]
    return {r["name"]: float(r.get("duration") or 0) for g in groups for r in g["rules"]}


def firing_since(alert: dict[str, Any], for_seconds: dict[str, float]) -> float:
    """When a firing alert started firing (epoch): pending since `activeAt`, plus its rule's `for:`."""
    active = datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00")).timestamp()
    return active + for_seconds.get(alert["labels"].get("alertname", ""), 0.0)


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
    """Inject `fault`, then follow the alert and every action of its incident until the incident is
    healed (and the health probe green), paged or refused, or `timeout` s pass; never raises on a timeout."""
    result = DrillResult(fault=fault, component=component)
    expected = EXPECTED_ALERT.get(fault)

    def acting_alerts() -> list[dict[str, Any]]:
        return [a for a in firing_alerts(endpoints.prometheus, endpoints.auth)
                if (expected is None or a["labels"].get("alertname") == expected)
                and a["labels"].get("tier") in ACTING_TIERS]

    # An alert still firing from an earlier incident would hide this one: wait for quiet first.
    if acting_alerts():
        on_event("waiting for the alerts of an earlier incident to resolve")
        wait_until(lambda: not acting_alerts(), time.monotonic() + timeout)
    t0 = time.monotonic()
    injected_at = time.time()
    inject(endpoints, fault, component)
    on_event(f"injected {fault} into {component}")

    for_seconds = rule_durations(endpoints.prometheus, endpoints.auth)

    def acting_alert() -> tuple[str, float] | None:
        for a in acting_alerts():
            if datetime.fromisoformat(a["activeAt"].replace("Z", "+00:00")).timestamp() >= injected_at - 1:
                return a["labels"]["alertname"], firing_since(a, for_seconds)
        return None

    follower = _IncidentFollower(endpoints, injected_at, on_event)

    def _restarted_by_manager() -> bool:
        """A crash the process manager restarted: its alert (tier none) journaled, nothing to act on,
        the service green. A crash loop opens an incident instead (TtsProcessRestartLoop), followed above."""
        if expected != "TtsProcessCrashed":
            return False
        seen = [row for row in journal(endpoints.receiver, endpoints.token)
                if row.get("tier") == "none" and (row.get("created_at") or 0) >= injected_at
                and any(a.get("alertname") == expected for a in row.get("alerts") or [])]
        if not seen or not health_probe_green(endpoints.exporter):
            return False
        result.alert = result.alert or expected
        if result.alert_seconds is None:
            result.alert_seconds = max(0.0, float(seen[0]["created_at"]) - injected_at)
        result.outcome, result.tiers = RESTARTED, ["none"]
        result.green_seconds = time.monotonic() - t0
        on_event(f"{expected} journaled; the process manager restarted it; green after {result.green_seconds:.1f}s")
        return True

    def done() -> bool:
        if not result.alert:
            found = acting_alert()
            if found:
                # Prometheus' own firing time: this loop may look only after the receiver already acted.
                result.alert = found[0]
                result.alert_seconds = min(max(0.0, found[1] - injected_at), time.monotonic() - t0)
                on_event(f"alert {result.alert} firing after {result.alert_seconds:.1f}s")
        incidents = follower.poll()
        if not incidents:
            return _restarted_by_manager()
        if result.action_seconds is None:
            first = min((i.first_action_at for i in incidents if i.first_action_at), default=None)
            result.action_seconds = max(0.0, first - injected_at) if first else time.monotonic() - t0
        status = combined_status(incidents)
        if status not in TERMINAL:
            return False
        if status == "healed" and not health_probe_green(endpoints.exporter):
            return False  # verified by the receiver, but not green for users yet
        if status == "healed":
            result.green_seconds = time.monotonic() - t0
            on_event(f"incident healed and health probe green after {result.green_seconds:.1f}s")
        else:
            on_event(f"incident ended {status} after {time.monotonic() - t0:.1f}s")
        return True

    wait_until(done, t0 + timeout, every=0.5)
    if follower.latest and result.outcome != RESTARTED:
        result.outcome = combined_status(follower.latest)
        result.tiers = [t for i in follower.latest for t in i.tiers]
        result.incidents = [i.as_dict() for i in follower.latest]
        result.actions = [row for i in follower.latest for row in i.rows]
    return result


class _IncidentFollower:
    """Polls the receiver for the incidents one injection opened and narrates each job's changes."""

    def __init__(self, endpoints: StackEndpoints, injected_at: float, on_event: Callable[[str], None]) -> None:
        self.endpoints = endpoints
        self.injected_at = injected_at
        self.on_event = on_event
        self.latest: list[Incident] = []
        self._seen: dict[Any, Any] = {}

    def poll(self) -> list[Incident]:
        """The incidents as the receiver has them now (none before the first job)."""
        found = incidents_by_window(self.endpoints.receiver, self.endpoints.token, [self.injected_at])[0]
        if found:
            self.latest = found
        for row in (r for incident in found for r in incident.rows):
            if self._seen.get(row["id"]) != row.get("status"):
                self._seen[row["id"]] = row.get("status")
                self.on_event(_describe_job(row))
        return found


def _describe_job(row: dict[str, Any]) -> str:
    text = f"receiver {row.get('tier')} job {row['id']}: {row.get('status')}"
    if row.get("status") == "refused":
        text += f" ({row.get('note') or row.get('reason', '')})"
    elif row.get("status") == "failed":
        text += f" ({row.get('note', '')}{'; ' + row['escalation'] if row.get('escalation') else ''})"
    return text
