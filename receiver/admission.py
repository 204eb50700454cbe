"""Webhook payload -> persisted jobs: dedup, target, tier and fault family per alert, one action
per incident.

Everything here runs inside one journal transaction per target, so concurrent HA
duplicates of the same payload cannot both create a job. The triage verdict that helps
decide the family is read only for firings that are new, once per triage window (the new
incidents of one intake batch share it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.receiver.config import ReceiverConfig
from tts_sentinel.receiver.families import FamilyDecision, classify
from tts_sentinel.receiver.incidents import FreshAlert, IncidentBook
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.keys import UNKNOWN, Key
from tts_sentinel.receiver.payload import WebhookAlert, WebhookPayload
from tts_sentinel.receiver.policy import TierPolicy
from tts_sentinel.receiver.records import Incident
from tts_sentinel.receiver.rootcause import window_verdict
from tts_sentinel.receiver.tiers import Tier
from tts_sentinel.receiver.unmatched import UnmatchedAlerts


@dataclass
class Admission:
    """What one payload became: the jobs it created or joined, and what it ignored (matched no target)."""

    new_jobs: list[int] = field(default_factory=list)
    joined_jobs: list[int] = field(default_factory=list)
    duplicates: int = 0
    ignored: int = 0
    resolved: int = 0
    targets_to_wake: set[str] = field(default_factory=set)
    # The keys this payload admitted or found, with their jobs: on disk once the intake's fsync is done.
    keys: list[tuple[Key, int | None]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON answer of POST /alerts."""
        return {
            "accepted": True,
            "new_jobs": self.new_jobs,
            "joined_jobs": self.joined_jobs,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "resolved": self.resolved,
        }


def _alert_record(alert: WebhookAlert, tier: Tier, why: str, family: str | None = None) -> dict[str, Any]:
    record = {
        "fingerprint": alert.fingerprint,
        "startsAt": alert.startsAt.isoformat(),
        "status": alert.status,
        "alertname": alert.labels.get("alertname", ""),
        "labels": alert.labels,
        "summary": alert.annotations.get("summary", ""),
        "tier": tier.value,
        "why": why,
    }
    if family:
        record["family"] = family
    return record


class AlertAdmission:
    """Turns payloads into jobs in the journal; the workers run them."""

    def __init__(
        self,
        config: ReceiverConfig,
        journal: Journal,
        book: IncidentBook,
        unmatched: UnmatchedAlerts,
        logs_config: LogsConfig | None = None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.book = book
        self.unmatched = unmatched
        self.logs_config = logs_config
        self.policy = TierPolicy(config)
        self._last_verdict: tuple[tuple[float, float], dict[str, Any]] | None = None

    def admit(self, payload: WebhookPayload, now: float | None = None) -> Admission:
        """Persist what this payload asks for; raises sqlite3.Error when the journal cannot be written.

        `now`: the clock of its batch (the intake's), so new incidents of one batch share a triage
        window, read once."""
        result = Admission()
        groups: dict[str, list[tuple[WebhookAlert, Tier, str]]] = {}
        resolved: dict[str, list[tuple[WebhookAlert, Tier]]] = {}
        unmatched: list[WebhookAlert] = []
        for alert in payload.alerts:
            target = self.policy.target_for(alert.labels)
            if target is None:
                # Outside the allowlist: counted by name and hour, nothing more (a flood costs a counter).
                if alert.status == "resolved":
                    result.resolved += 1
                else:
                    unmatched.append(alert)
                continue
            tier, why = self.policy.tier_for(alert.labels)
            if alert.status == "resolved":
                result.resolved += 1
                resolved.setdefault(target.name, []).append((alert, tier))
                continue
            groups.setdefault(target.name, []).append((alert, tier, why))
        self.unmatched.record(unmatched)
        result.ignored += len(unmatched)
        for target_name, gone in resolved.items():
            self._admit_resolved(target_name, gone, result)
        for target_name, alerts in groups.items():
            self._admit_target(target_name, alerts, result, time.time() if now is None else now)
        return result

    def firing_keys(self, payload: WebhookPayload) -> list[Key] | None:
        """The idempotency keys of a payload whose every alert is a firing of a known target, else
        None (a resolved or unmatched alert needs the journal)."""
        keys = []
        for alert in payload.alerts:
            if alert.status != "firing" or self.policy.target_for(alert.labels) is None:
                return None
            tier, _why = self.policy.tier_for(alert.labels)
            keys.append((alert.fingerprint, alert.startsAt.isoformat(), str(tier)))
        return keys or None

    def from_memory(self, payload: WebhookPayload, keys: list[Key] | None = None) -> Admission | None:
        """The answer to a payload whose every alert is a firing already admitted and on disk (a
        re-send, an HA copy): a duplicate each, counted in memory, no journal transaction. None
        when any alert needs the journal (new, resolved, unmatched); `admit` then decides.
        `keys`: its `firing_keys`, when the caller has them."""
        keys = self.firing_keys(payload) if keys is None else keys
        if not keys:
            return None
        memory = self.journal.keys
        jobs = []
        for key in keys:
            job_id = memory.persisted(*key)
            if job_id is UNKNOWN:
                return None
            jobs.append(job_id)
        for job_id in jobs:
            memory.count_duplicate(job_id)  # type: ignore[arg-type]
        return Admission(duplicates=len(jobs))

    def _admit_resolved(self, target: str, alerts: list[tuple[WebhookAlert, Tier]], result: Admission) -> None:
        """Resolved alerts leave the incidents holding them (one transaction); a derate alert's
        resolution queues the power limit's restore."""
        restores = []
        with self.journal.transaction() as j:
            for alert, tier in alerts:
                incident = self.book.resolved(j, target, alert.fingerprint, time.time())
                if tier is Tier.DERATE:
                    restores.append((alert, incident))
        for alert, incident in restores:
            self._admit_restore(alert, target, result, incident)

    def _admit_restore(
        self, alert: WebhookAlert, target: str, result: Admission, incident: Incident | None
    ) -> None:
        job_id = self._admit_single(
            alert,
            "derate-restore",
            result,
            target=target,
            kind="restore",
            tier=Tier.DERATE,
            status="queued",
            reason="derate alert resolved: restore the GPU power limit",
            alerts=[_alert_record(alert, Tier.DERATE, "resolved")],
            incident_id=incident.id if incident else None,
            family=incident.family if incident else None,
        )
        if job_id is not None:
            result.new_jobs.append(job_id)
            result.targets_to_wake.add(target)

    def _admit_single(self, alert: WebhookAlert, key_tier: str, outcome: Admission, **job: Any) -> int | None:
        """One job for one alert unless its key is known (then count a duplicate and return None)."""
        starts = alert.startsAt.isoformat()
        with self.journal.transaction() as j:
            if j.keys.known(alert.fingerprint, starts, key_tier):
                outcome.duplicates += 1
                return None
            job_id = j.insert_job(**job)
            j.keys.remember(alert.fingerprint, starts, key_tier, job_id)
        return job_id

    def _admit_target(
        self, target: str, alerts: list[tuple[WebhookAlert, Tier, str]], result: Admission, now: float
    ) -> None:
        with self.journal.transaction() as j:
            fresh: list[tuple[WebhookAlert, Tier, str]] = []
            for alert, tier, why in alerts:
                starts = alert.startsAt.isoformat()
                dup_job = j.keys.stored(alert.fingerprint, starts, tier)
                if dup_job is not UNKNOWN:
                    result.duplicates += 1
                    result.keys.append(((alert.fingerprint, starts, str(tier)), dup_job))  # type: ignore[arg-type]
                    if dup_job is not None:
                        j.execute("UPDATE jobs SET duplicates = duplicates + 1 WHERE id=?", (dup_job,))
                    continue
                copy_of = self.book.answered_by(j, alert.fingerprint, alert.startsAt.timestamp(), tier)
                if copy_of is not None:
                    # Another copy of a firing a job already answered: remembered, never acted on again.
                    result.duplicates += 1
                    j.execute("UPDATE jobs SET duplicates = duplicates + 1 WHERE id=?", (copy_of,))
                    j.keys.remember(alert.fingerprint, starts, tier, copy_of)
                    result.keys.append(((alert.fingerprint, starts, str(tier)), copy_of))
                    continue
                fresh.append((alert, tier, why))
            verdict, window_start = self._verdict(target, fresh, now)
            # Alerts asking for no action are journaled without an incident; the others go to the
            # incident of their fault family (a different family is a different incident).
            journal_only = [(a, t, w) for a, t, w in fresh if t is Tier.NONE]
            families: dict[str, tuple[FamilyDecision, list[tuple[WebhookAlert, Tier, str]]]] = {}
            for alert, tier, why in fresh:
                if tier is not Tier.NONE:
                    decision = classify(alert.labels, tier, verdict, self.config.incidents.families)
                    families.setdefault(decision.name, (decision, []))[1].append((alert, tier, why))
            for decision, group in families.values():
                records = [_alert_record(a, t, w, decision.name) for a, t, w in group]
                fresh_alerts = [
                    FreshAlert(a.fingerprint, a.labels.get("alertname", a.fingerprint), t, w,
                               starts_at=a.startsAt.timestamp(), probe=a.labels.get("verify", ""))
                    for a, t, w in group
                ]
                job_id, joined = self.book.place(j, target, decision, fresh_alerts, records, verdict, now,
                                                 window_start)
                self._count(target, job_id, joined, result)
                self._remember(j, group, job_id, result)
            if journal_only:
                alert, tier, why = journal_only[0]
                records = [_alert_record(a, t, w) for a, t, w in journal_only]
                job_id, joined = j.place_job(target, tier, f"{alert.labels.get('alertname', '')}: {why}", records)
                self._count(target, job_id, joined, result)
                self._remember(j, journal_only, job_id, result)

    def _verdict(self, target: str, fresh: list[tuple[WebhookAlert, Tier, str]],
                 now: float) -> tuple[dict[str, Any] | None, float | None]:
        """(the triage verdict, the window's start) a new incident of these firings would get; (None,
        None) when none of them asks for an action. The window's start is read once and handed to
        the placement; the verdict is read once per window (a batch's new incidents share it)."""
        if all(t is Tier.NONE for _a, t, _w in fresh):
            return None, None
        start = self.book.window_start(target, now)
        if self.logs_config is None:
            return None, start
        window = (start, now)
        last = self._last_verdict
        if last is not None and last[0] == window:  # another new incident of the batch, same window
            return last[1], start
        verdict = window_verdict(self.logs_config, *window)
        self._last_verdict = (window, verdict)
        return verdict, start

    @staticmethod
    def _remember(j: Journal, alerts: list[tuple[WebhookAlert, Tier, str]], job_id: int, result: Admission) -> None:
        for alert, tier, _why in alerts:
            key = (alert.fingerprint, alert.startsAt.isoformat(), str(tier))
            j.keys.remember(*key, job_id)
            result.keys.append((key, job_id))

    @staticmethod
    def _count(target: str, job_id: int, joined: bool, result: Admission) -> None:
        if joined:
            if job_id not in result.joined_jobs:
                result.joined_jobs.append(job_id)
        elif job_id not in result.new_jobs:
            result.new_jobs.append(job_id)
            result.targets_to_wake.add(target)
