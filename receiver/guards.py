"""The guards a job passes before it acts: business hours for heavy, cooldown, the action budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from tts_sentinel.receiver.config import ReceiverConfig, TargetConfig
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.records import Job
from tts_sentinel.receiver.tiers import Tier
from tts_sentinel.receiver.versions import VersionError, VersionHistory


class Refusal(Exception):
    """A guard refused the job; `reason` is the metric label, the message is for people."""

    def __init__(self, reason: str, message: str, page: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.page = page  # alertname to page on-call with, or None


class JobGuards:
    """Decides whether a job may act now; raises Refusal when it must not."""

    def __init__(self, config: ReceiverConfig, journal: Journal, now: Callable[[], datetime]) -> None:
        self.config = config
        self.journal = journal
        self.now = now

    def check(self, job: Job, target: TargetConfig, dry: bool) -> None:
        """Raise Refusal when the job must not run now."""
        tier = job.tier
        if tier is Tier.HEAVY and self.business_hours():
            raise Refusal(
                "business_hours",
                f"heavy restart refused during business hours ({self.local_now():%a %H:%M %Z}); "
                "do it by hand if it cannot wait (re-sends of this firing are not retried; "
                "a new firing after hours runs)",
                page="TtsRemediationRefused",
            )
        if tier in (Tier.HEAVY, Tier.ROLLBACK):
            self._canary(target)
        if dry or tier is Tier.NONE:
            return
        self._cooldown(job, target)
        self._budget(target)

    def _canary(self, target: TargetConfig) -> None:
        """While a candidate is validated the current version is read-only: no heavy, no rollback."""
        try:
            why = VersionHistory(target.versions).protection()
        except VersionError as exc:
            why = f"version history unreadable ({exc})"
        if why:
            raise Refusal("protected_canary", f"{target.name} is {why}; try again after the validation",
                          page="TtsRemediationRefused")

    def _cooldown(self, job: Job, target: TargetConfig) -> None:
        now = time.time()
        cooldown = self.config.guards.cooldown_seconds.get(job.tier, 0.0)
        # Cooldowns belong to the incident: another fault family's action does not hold this one back.
        last = self.journal.last_finished(target.name, tier=job.tier, incident_id=job.incident_id)
        if (
            cooldown
            and last
            and last.id != job.id
            and last.status in ("succeeded", "failed")
            and now - (last.finished_at or 0) < cooldown
            and not job.escalated_from
        ):
            raise Refusal(
                "cooldown",
                f"{job.tier} ran on {target.name} {now - (last.finished_at or 0):.0f}s ago "
                f"(job {last.id}{_of_incident(job.incident_id)}); cooldown is {cooldown:.0f}s",
            )

    def _budget(self, target: TargetConfig) -> None:
        window = self.config.guards.budget_window_seconds
        used = self.journal.count_actions(target.name, time.time() - window) - 1  # this job is already 'running'
        if used >= self.config.guards.budget_actions:
            raise Refusal(
                "budget_exhausted",
                f"{used} actions on {target.name} in the last {window:.0f}s reach the budget of "
                f"{self.config.guards.budget_actions}; a person must look",
                page="TtsRemediationExhausted",
            )

    def local_now(self) -> datetime:
        """Now in the business-hours time zone."""
        return self.now().astimezone(ZoneInfo(self.config.business_hours.timezone))

    def business_hours(self) -> bool:
        """Whether now is inside the configured business hours (heavy is refused then)."""
        hours = self.config.business_hours
        local = self.local_now()
        return local.weekday() in hours.weekdays and hours.start <= local.time().replace(tzinfo=None) <= hours.end


def _of_incident(incident_id: int | None) -> str:
    return "" if incident_id is None else f" of incident {incident_id}"
