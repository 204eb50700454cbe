"""Running one plan on one stack: inject, watch each incident to its end, clean up what was not healed.

The same plan runs twice: once with the receiver acting (`sentinel`), once with the receiver in
dry run and the baseline liveness watchdog restarting programs instead (`baseline`). An
injection's incident ends when the receiver says healed and the component is really green; with
no incident, when the component is green and stays quiet; when it is not healed, once on-call
has been paged for it; in the baseline, when the component is green. Whatever is still broken
then (or at the per-incident timeout) is cleared by the soak, as the person on call would,
before the next fault.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from tts_sentinel.harness.baseline_watchdog import LivenessWatchdog
from tts_sentinel.harness.drill import StackEndpoints, inject
from tts_sentinel.harness.incidents import Incident, combined_status, incidents_by_window, journal, window_of
from tts_sentinel.harness.soak.observe import Observer, component_green
from tts_sentinel.harness.soak.plan import WEIGHTS, Injection
from tts_sentinel.harness.stack import INFERENCE_PROGRAM, WEB_PROGRAM, Stack
from tts_sentinel.receiver.config import ReceiverConfig

SENTINEL, BASELINE = "sentinel", "baseline"
QUIET = 20.0  # a fault healed without any incident counts as ended after this long
SETTLE = 10.0  # after the last incident: Alertmanager's group_wait and interval, so late pages arrive
BUDGET_ROOM = 2  # a fault may need two actions (its base tier and one escalation)
WEIGHTS_BYTES = bytes(range(256)) * 256  # 64 KiB of stand-in model weights


class SoakStack(Stack):
    """The demo stack plus what a heavy restart checks: stand-in model weights with a manifest, and a
    cache directory of its own (the default one is shared by everything on the machine)."""

    @property
    def weights_file(self) -> Any:
        return self.dir / "models" / "model.safetensors"

    def sentinel_config(self) -> dict[str, Any]:
        config = super().sentinel_config()
        for target in config["receiver"]["targets"]:
            target.update(weights_dir=str(self.dir / "models"), weights_manifest=str(self.dir / "models.sha256.json"),
                          cache_dir=str(self.dir / "cache"), service_config=None, git_dir=None)
        return config

    def write_configs(self) -> None:
        super().write_configs()
        (self.dir / "cache").mkdir(exist_ok=True)
        self.restore_weights()
        manifest = {"model.safetensors": hashlib.sha256(WEIGHTS_BYTES).hexdigest()}
        (self.dir / "models.sha256.json").write_text(json.dumps(manifest))

    def corrupt_weights(self) -> None:
        """Change the weights so that they no longer match the manifest (a bad download, a bad disk)."""
        self.weights_file.write_bytes(WEIGHTS_BYTES[::-1])

    def restore_weights(self) -> None:
        """Put the recorded weights back (what a person does after the page)."""
        self.weights_file.parent.mkdir(parents=True, exist_ok=True)
        self.weights_file.write_bytes(WEIGHTS_BYTES)

    def weights_intact(self) -> bool:
        return self.weights_file.read_bytes() == WEIGHTS_BYTES

    def restart_program(self, program: str) -> None:
        """Stop and start one supervisord program (what the baseline watchdog does)."""
        rpc = self.supervisor()
        try:
            rpc.stopProcess(program)
        except Exception:  # noqa: BLE001, S110 - not running (crashed, or autorestart is at it): just start it
            pass
        rpc.startProcess(program)


@dataclass
class InjectionRecord:
    """One injected fault and how its incident ended on this run."""

    index: int
    injection: Injection
    injected_at: float = 0.0
    green_at: float | None = None
    ended_at: float | None = None
    end: str = ""  # healed | paged | refused | green | timeout
    during_action: str = ""  # the previous incident's action that was running at injection
    cleared_by_soak: bool = False

    def as_dict(self, t0: float) -> dict[str, Any]:
        def rel(v: float | None) -> float | None:
            return None if v is None else round(v - t0, 2)
        return {"index": self.index, "fault": self.injection.fault, "component": self.injection.component,
                "during": self.injection.during, "during_action": self.during_action,
                "injected_at": rel(self.injected_at), "green_at": rel(self.green_at),
                "ended_at": rel(self.ended_at), "end": self.end, "cleared_by_soak": self.cleared_by_soak}


@dataclass
class RunRecord:
    """Everything one run of the plan produced."""

    mode: str
    started_at: float
    records: list[InjectionRecord] = field(default_factory=list)
    incidents: list[list[Incident]] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    observer: Observer | None = None
    watchdog_restarts: list[tuple[float, str]] = field(default_factory=list)
    finished_at: float = 0.0
    stopped_early: str = ""
    budget_waits: dict[int, float] = field(default_factory=dict)  # injection index -> seconds paced


class SequenceRunner:
    """Injects a plan into a running SoakStack and records every incident to its end."""

    def __init__(self, stack: SoakStack, plan: list[Injection], mode: str, gap: float, incident_timeout: float,
                 deadline: float, on_event: Callable[[str], None] = lambda _: None) -> None:
        self.stack = stack
        self.plan = plan
        self.mode = mode
        self.gap = gap
        self.timeout = incident_timeout
        self.deadline = deadline  # time.monotonic() after which no new fault goes in
        self.say = on_event
        self.endpoints = StackEndpoints.from_dir(stack.dir)
        self.observer = Observer(self.endpoints, stack.dir / "run" / "oncall.jsonl")
        self.record = RunRecord(mode, time.time(), observer=self.observer)
        self.incidents: list[list[Incident]] = []
        self.watchdog: LivenessWatchdog | None = None
        guards = ReceiverConfig.model_validate(
            yaml.safe_load(stack.config_path.read_text()).get("receiver") or {}).guards
        self.budget: tuple[int, float] | None = (guards.budget_actions, guards.budget_window_seconds)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> RunRecord:
        """Run the whole plan; returns what happened (also after a timeout, never raises for one)."""
        stop: threading.Event | None = None
        if self.mode == BASELINE:
            self.watchdog = LivenessWatchdog(
                {WEB_PROGRAM: self.endpoints.web + "/health", INFERENCE_PROGRAM: self.endpoints.api + "/health"},
                self.stack.restart_program)
            _, stop = self.watchdog.start()
        try:
            self._tick(until=lambda: all(self.observer.green.get(c) for c in ("web", "inference")), bound=30)
            for i, injection in enumerate(self.plan):
                if time.monotonic() > self.deadline:
                    self.record.stopped_early = f"time bound reached before fault {i + 1}"
                    self.say(self.record.stopped_early)
                    break
                previous = i - 1
                if i > 0 and injection.during:
                    self._tick(until=lambda p=previous: bool(self._remediating(p)) or self._ended(p),
                               bound=self.timeout)
                elif i > 0:
                    self._tick(until=lambda: all(r.ended_at for r in self.record.records), bound=2 * self.timeout)
                    self._tick(until=lambda: False, bound=self.gap)
                    self._pace(i)
                self._inject(i, injection)
            self._tick(until=lambda: all(r.ended_at for r in self.record.records), bound=2 * self.timeout)
            self._tick(until=lambda: False, bound=SETTLE)
        finally:
            if stop is not None:
                stop.set()
        self.record.finished_at = time.time()
        if self.mode == SENTINEL:
            self.incidents = self._fetch_incidents() or self.incidents
            self.record.journal = journal(self.endpoints.receiver, self.endpoints.token)
        self.record.incidents = self.incidents
        self.record.watchdog_restarts = list(self.watchdog.restarts) if self.watchdog else []
        return self.record

    def _pace(self, index: int) -> None:
        """Wait until the receiver's restart budget has room for this fault and one escalation.

        The budget (`guards.budget_actions` per `budget_window_seconds`, scaled with the drill
        timings) stops a restart storm: faults coming faster than it allows are refused and paged, as
        they should be. A soak injects as fast as its gaps allow, so it keeps to the budget's pace
        instead, and records how long it waited."""
        if self.mode != SENTINEL or self.budget is None:
            return
        actions, window = self.budget
        t0 = time.monotonic()
        self._tick(until=lambda: self._actions_in(window) <= actions - BUDGET_ROOM, bound=window)
        waited = time.monotonic() - t0
        if waited >= 1:
            self.record.budget_waits[index] = round(waited, 1)
            self.say(f"[{self.mode}] waited {waited:.0f}s for room in the restart budget "
                     f"({actions} actions per {window:.0f}s)")

    def _actions_in(self, window: float) -> int:
        """Actions the receiver ran in the last `window` seconds (what its budget counts)."""
        try:
            rows = journal(self.endpoints.receiver, self.endpoints.token, limit=200)
        except (httpx.HTTPError, ValueError):
            return 0
        since = time.time() - window
        return sum(1 for r in rows if r.get("tier") != "none" and not r.get("dry_run")
                   and r.get("status") in ("running", "succeeded", "failed", "interrupted")
                   and (r.get("started_at") or 0) >= since)

    def _tick(self, until: Callable[[], bool], bound: float) -> None:
        """Poll and update every open injection until `until()` or `bound` seconds pass."""
        end = time.monotonic() + bound
        while True:
            self.observer.poll(force=True)
            if self.mode == SENTINEL:
                self.incidents = self._fetch_incidents() or self.incidents
            for record in self.record.records:
                if record.ended_at is None:
                    self._update(record)
            if until() or time.monotonic() >= end:
                return
            time.sleep(0.5)

    def _fetch_incidents(self) -> list[list[Incident]] | None:
        starts = [r.injected_at for r in self.record.records]
        try:
            return incidents_by_window(self.endpoints.receiver, self.endpoints.token, starts) if starts else []
        except (httpx.HTTPError, ValueError):
            return None

    # -- one injection ----------------------------------------------------------------------------
    def _inject(self, index: int, injection: Injection) -> None:
        record = InjectionRecord(index, injection)
        if injection.during and index > 0:
            record.during_action = self._remediating(index - 1) or ""
        if injection.fault == WEIGHTS:
            self.stack.corrupt_weights()
        fault = "segfault" if injection.fault == WEIGHTS else injection.fault
        end = time.monotonic() + 15
        while True:  # the component may be restarting from the previous fault
            # The window of this fault starts when it is asked for: whatever follows is its doing.
            record.injected_at = time.time()
            try:
                inject(self.endpoints, fault, injection.component)
                break
            except httpx.HTTPError as exc:
                if time.monotonic() > end:
                    record.end, record.ended_at = f"not injected ({exc})", time.time()
                    break
                time.sleep(0.5)
        self.record.records.append(record)
        self.say(f"[{self.mode}] {index + 1}/{len(self.plan)} injected {injection.label}"
                 + (f" during {record.during_action}" if record.during_action else ""))

    def _green(self, record: InjectionRecord) -> bool:
        ok = bool(self.observer.green.get(record.injection.component))
        return ok and (record.injection.fault != WEIGHTS or self.stack.weights_intact())

    def _found(self, index: int) -> list[Incident]:
        return self.incidents[index] if index < len(self.incidents) else []


    def _remediating(self, index: int) -> str | None:
        """What is remediating injection `index` now: a receiver job, or a watchdog restart since it."""
        if self.mode == BASELINE and self.watchdog:
            since = self.record.records[index].injected_at
            return next((f"watchdog restart of {p}" for t, p in self.watchdog.restarts if t >= since), None)
        running = [r for incident in self._found(index) for r in incident.rows
                   if r.get("status") in ("running", "queued")]
        return f"{running[0]['tier']} job {running[0]['id']}" if running else None

    def _ended(self, index: int) -> bool:
        return self.record.records[index].ended_at is not None

    def _update(self, record: InjectionRecord) -> None:
        """End an injection's incident when its outcome is known; a fault that is not healed is left
        alone until on-call is paged for it (or the timeout passes), as a person would only then act."""
        now = time.time()
        record.green_at = (record.green_at or now) if self._green(record) else None
        if self.mode == BASELINE:
            if record.green_at:
                self._end(record, "green")
        else:
            status = combined_status(self._found(record.index))
            if record.green_at and status == "healed":
                self._end(record, "healed")
            elif record.green_at and not status and now - record.injected_at > QUIET:
                self._end(record, "green")
            elif status != "open" and self._paged(record.index):
                self._end(record, status if status in ("paged", "refused") else "paged")
        if record.ended_at is None and now - record.injected_at > self.timeout:
            self._end(record, "timeout")

    def _paged(self, index: int) -> bool:
        """Whether a page for injection `index` reached the on-call sink."""
        starts = [r.injected_at for r in self.record.records]
        return any(window_of(p.starts_at, starts) == index for p in self.observer.pages)

    def _end(self, record: InjectionRecord, how: str) -> None:
        record.ended_at, record.end = time.time(), how
        injection = record.injection
        if not self._green(record):
            record.cleared_by_soak = True
            if injection.fault == WEIGHTS:
                self.stack.restore_weights()
            elif not component_green(self.endpoints, injection.component):
                base = self.endpoints.web if injection.component == "web" else self.endpoints.api
                try:
                    if httpx.get(f"{base}/admin/fault", timeout=2).json().get("fault") == injection.fault:
                        httpx.delete(f"{base}/admin/fault", timeout=2)
                except (httpx.HTTPError, ValueError):
                    pass  # a crashed process is back with no fault once supervisord restarts it
        cleared = "; cleared by the soak" if record.cleared_by_soak else ""
        self.say(f"[{self.mode}] {record.index + 1}: {injection.label} ended {how} after "
                 f"{record.ended_at - record.injected_at:.0f}s{cleared}")
