"""Webhook payload -> persisted jobs: dedup, target and tier per alert, one action per target.

Everything here runs inside one journal transaction per target, so concurrent HA
duplicates of the same payload cannot both create a job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tts_sentinel.receiver.config import ReceiverConfig
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.payload import WebhookAlert, WebhookPayload
from tts_sentinel.receiver.policy import TierPolicy
from tts_sentinel.receiver.tiers import Tier


@dataclass
class Admission:
    """What one payload became: the jobs it created or joined, and what it ignored."""

    new_jobs: list[int] = field(default_factory=list)
    joined_jobs: list[int] = field(default_factory=list)
    duplicates: int = 0
    ignored: int = 0
    resolved: int = 0
    targets_to_wake: set[str] = field(default_factory=set)

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


def _alert_record(alert: WebhookAlert, tier: Tier, why: str) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "startsAt": alert.startsAt.isoformat(),
        "status": alert.status,
        "alertname": alert.labels.get("alertname", ""),
        "labels": alert.labels,
        "summary": alert.annotations.get("summary", ""),
        "tier": tier.value,
        "why": why,
    }


class AlertAdmission:
    """Turns payloads into jobs in the journal; the workers run them."""

    def __init__(self, config: ReceiverConfig, journal: Journal) -> None:
        self.config = config
        self.journal = journal
        self.policy = TierPolicy(config)

    def admit(self, payload: WebhookPayload) -> Admission:
        """Persist what this payload asks for; raises sqlite3.Error when the journal cannot be written."""
        result = Admission()
        groups: dict[str, list[tuple[WebhookAlert, Tier, str]]] = {}
        for alert in payload.alerts:
            target = self.policy.target_for(alert.labels)
            tier, why = self.policy.tier_for(alert.labels)
            if alert.status == "resolved":
                result.resolved += 1
                if target is not None and tier is Tier.DERATE:
                    self._admit_restore(alert, target.name, result)
                continue
            if target is None:
                self._admit_unmatched(alert, tier, why, result)
                continue
            groups.setdefault(target.name, []).append((alert, tier, why))
        for target_name, alerts in groups.items():
            self._admit_target(target_name, alerts, result)
        return result

    def _admit_unmatched(self, alert: WebhookAlert, tier: Tier, why: str, result: Admission) -> None:
        job_id = self._admit_single(
            alert,
            "unmatched",
            result,
            target="-",
            tier=tier,
            status="ignored",
            result="ignored",
            reason=f"{why}; no configured target matches the labels",
            alerts=[_alert_record(alert, tier, why)],
            finished_at=time.time(),
        )
        if job_id is not None:
            result.ignored += 1

    def _admit_restore(self, alert: WebhookAlert, target: str, result: Admission) -> None:
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
        )
        if job_id is not None:
            result.new_jobs.append(job_id)
            result.targets_to_wake.add(target)

    def _admit_single(self, alert: WebhookAlert, key_tier: str, outcome: Admission, **job: Any) -> int | None:
        """One job for one alert unless its key is known (then count a duplicate and return None)."""
        starts = alert.startsAt.isoformat()
        with self.journal.transaction() as j:
            if j.known_key(alert.fingerprint, starts, key_tier):
                outcome.duplicates += 1
                return None
            job_id = j.insert_job(**job)
            j.remember_key(alert.fingerprint, starts, key_tier, job_id)
        return job_id

    def _admit_target(self, target: str, alerts: list[tuple[WebhookAlert, Tier, str]], result: Admission) -> None:
        now = time.time()
        with self.journal.transaction() as j:
            fresh: list[tuple[WebhookAlert, Tier, str]] = []
            for alert, tier, why in alerts:
                starts = alert.startsAt.isoformat()
                if j.known_key(alert.fingerprint, starts, tier):
                    result.duplicates += 1
                    dup_job = j.key_job(alert.fingerprint, starts, tier)
                    if dup_job is not None:
                        j.execute("UPDATE jobs SET duplicates = duplicates + 1 WHERE id=?", (dup_job,))
                    continue
                fresh.append((alert, tier, why))
            if not fresh:
                return
            # The same alert firing again soon after a "successful" action: that action did not help.
            window = self.config.guards.escalation_window_seconds
            recent = j.recent_succeeded(target, now - window) if window > 0 else []
            records = []
            best_tier, best_why = Tier.NONE, ""
            for alert, tier, why in fresh:
                for prior in recent:
                    prior_fps = {a.get("fingerprint") for a in prior.alerts}
                    up = prior.tier.escalation()
                    if alert.fingerprint in prior_fps and up and up.rank > tier.rank:
                        why = (
                            f"{why}; fired again {now - (prior.finished_at or now):.0f}s after "
                            f"{prior.tier} job {prior.id} succeeded -> escalate to {up}"
                        )
                        tier = up
                        break
                records.append(_alert_record(alert, tier, why))
                if tier.rank > best_tier.rank or not best_why:
                    best_tier, best_why = tier, f"{alert.labels.get('alertname', alert.fingerprint)}: {why}"
            job_id = self._place(j, target, best_tier, best_why, records, result)
            for alert, tier, _why in fresh:
                j.remember_key(alert.fingerprint, alert.startsAt.isoformat(), tier, job_id)

    def _place(
        self, j: Journal, target: str, tier: Tier, why: str, records: list[dict[str, Any]], result: Admission
    ) -> int:
        job_id, joined = j.place_job(target, tier, why, records)
        if joined:
            result.joined_jobs.append(job_id)
        else:
            result.new_jobs.append(job_id)
            result.targets_to_wake.add(target)
        return job_id

