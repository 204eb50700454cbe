"""The incident as the unit of remediation: open, join, escalate, heal, page once, close.

An incident is a target plus a fault family, from its first firing alert to resolved plus
`incidents.quiet_seconds`. Its escalation state (ladder, rung reached, tiers run, components
acted on, page) lives in the journal's `incidents` table; admission and the runner call
down here, and the workers' idle loop sweeps (closes quiet incidents, pages slow ones).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from tts_sentinel.receiver.config import ReceiverConfig
from tts_sentinel.receiver.echoes import may_echo, restart_around
from tts_sentinel.receiver.families import FamilyDecision, start_rung
from tts_sentinel.receiver.incident_links import IncidentLinks
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.pager import OnCallPager, incident_evidence
from tts_sentinel.receiver.records import Incident, Job
from tts_sentinel.receiver.tiers import Tier

log = logging.getLogger(__name__)
EXHAUSTED = "TtsRemediationExhausted"
REFUSED = "TtsRemediationRefused"


@dataclass(frozen=True)
class FreshAlert:
    """A new firing of one alert, as the incident sees it."""

    fingerprint: str
    alertname: str
    tier: Tier
    why: str
    starts_at: float = 0.0  # its `startsAt`, epoch seconds (0 when unknown)
    probe: str = ""  # the probe module its `verify` label names ("" for none): it may be a restart's echo


@dataclass(frozen=True)
class Placement:
    """Where new firings of an open incident's family go: the rung, why, and what kind of return it is.

    `kind`: join (an action of it is queued or running, or it is not healed), escalate (a recurrence
    after our action healed it), repeat (a recurrence at the top of the ladder or past the window),
    start_over (it healed with no action of ours: a new episode from the base), echo (it started
    during a restart: probed before acting, and it stays healed unless the probe is red)."""

    rung: int
    why: str
    escalated_from: int | None = None
    kind: str = "join"


class IncidentBook:
    """Every decision about incidents; the state it decides on is in the journal."""

    def __init__(self, config: ReceiverConfig, journal: Journal, pager: OnCallPager,
                 links: IncidentLinks | None = None) -> None:
        self.config = config
        self.settings = config.incidents
        self.journal = journal
        self.pager = pager
        self.links = links  # on-call's page links to the incident page with a signed link

    # -- admission ----------------------------------------------------------------------------
    @staticmethod
    def answered_by(j: Journal, fingerprint: str, starts_at: float, tier: str) -> int | None:
        """The job that already answered this firing under another `startsAt`, if any.

        The copies of one firing (Prometheus HA replicas, Alertmanager peers, a merged alert)
        carry `startsAt` values that all precede the first notification, so a job of this
        alert created after `starts_at` answered the same firing: this copy is its duplicate. A
        real recurrence starts after the action, later than the job's creation, and still counts.
        """
        row = j.execute(
            "SELECT k.job_id FROM alert_keys k JOIN jobs ON jobs.id = k.job_id"
            " WHERE k.fingerprint=? AND k.tier=? AND jobs.created_at > ? ORDER BY k.job_id DESC LIMIT 1",
            (fingerprint, tier, starts_at),
        ).fetchone()
        return None if row is None else int(row[0])

    def window_start(self, target: str, now: float) -> float:
        """Where a new incident's triage window starts: `triage_lead_seconds` before now, but never
        before the last job on this target finished (earlier lines belong to that job's incident)."""
        start = now - self.settings.triage_lead_seconds
        last = self.journal.last_job_end(target)
        return start if last is None else max(start, last)

    def place(
        self,
        j: Journal,
        target: str,
        decision: FamilyDecision,
        fresh: list[FreshAlert],
        records: list[dict[str, Any]],
        verdict: dict[str, Any] | None,
        now: float,
        window_start: float | None = None,
    ) -> tuple[int, bool]:
        """Put new firings of one family into its open incident (or a new one) and place the job
        for the rung they call for. Inside admission's transaction. Returns (job id, joined).

        `window_start`: this target's `window_start(target, now)` when the caller already read it."""
        best = max(fresh, key=lambda a: a.tier.rank)
        why = f"{best.alertname}: {best.why}"
        incident = j.open_incident(target, decision.name)
        escalated_from = None
        placed = Placement(0, "opens")
        opened = incident is None
        if incident is None:
            rung = max(start_rung(decision.ladder, a.tier) for a in fresh)
            incident = j.insert_incident(
                target=target,
                family=decision.name,
                family_reason=decision.reason,
                ladder=list(decision.ladder),
                rung=rung,
                window_start=self.window_start(target, now) if window_start is None else window_start,
                unhealed_since=now,
                triage=verdict,
            )
            why += f"; opens incident {incident.id}, family {decision.name} ({decision.reason})"
        else:
            placed = self._rung_for(j, incident, fresh, now)
            rung, escalated_from = placed.rung, placed.escalated_from
            why += f"; {placed.why}"
        tier = incident.ladder[rung]
        job_id, joined = j.place_job(target, tier, why, records, escalated_from=escalated_from, incident=incident,
                                     opened=opened)
        if not opened:  # a new incident was inserted with its rung, open and unresolved
            fields: dict[str, Any] = {"rung": max(incident.rung, rung), "resolved_at": None}
            if incident.status in ("healed", "resolved") and not joined:
                if placed.kind == "echo":
                    del fields["rung"]  # healed it stays, unless the runner's probe finds it red (reopen)
                else:
                    if placed.kind == "start_over":
                        fields["rung"] = rung
                    fields.update(status="open", unhealed_since=now)  # it is broken again
            j.update_incident(incident.id, **fields)
        j.add_firing(incident.id, (a.fingerprint for a in fresh))
        return job_id, joined

    def _rung_for(self, j: Journal, incident: Incident, fresh: list[FreshAlert], now: float) -> Placement:
        """Where new firings of an open incident's family go."""
        asked = max(start_rung(tuple(incident.ladder), a.tier) for a in fresh)
        at = max(incident.rung, asked)
        label = f"incident {incident.id} ({incident.family})"
        for status in ("queued", "running"):
            active = j.active_job(incident.target, status, kind="remediate", incident_id=incident.id)
            if active is not None:
                return Placement(at, f"joins {label} while its job {active.id} is {status}")
        if incident.status != "healed" or incident.healed_at is None:
            return Placement(at, f"joins {label}, {incident.status}")
        ago = now - incident.healed_at
        echo = self._echo(j, incident.target, fresh)
        if echo:
            return Placement(asked, f"started during {echo}: probed before acting, an echo is no recurrence "
                                    f"of {label}", kind="echo")
        healer = next((job for job in reversed(j.incident_jobs(incident.id))
                       if job.status == "succeeded" and job.tier is not Tier.NONE), None)
        if healer is None:
            return Placement(asked, f"fired again {ago:.0f}s after {label} healed with no action of ours: "
                                    "starts over at its base", kind="start_over")
        by = f"{healer.tier} job {healer.id}"
        window = self.config.guards.escalation_window_seconds
        up = incident.next_rung()
        if window > 0 and ago <= window and up is not None:
            rung = max(up, asked)
            return Placement(rung, f"fired again {ago:.0f}s after {by} succeeded: {label} recurs -> escalate "
                                   f"to {incident.ladder[rung]}", healer.id, kind="escalate")
        if window > 0 and ago <= window:
            return Placement(at, f"fired again {ago:.0f}s after {by} succeeded at the top of {label}'s ladder",
                             kind="repeat")
        return Placement(at, f"fired again {ago:.0f}s after {by} succeeded (past the escalation window): {label}",
                         kind="repeat")

    def _echo(self, j: Journal, target: str, fresh: list[FreshAlert]) -> str | None:
        """The restart these firings started during, when every one of them is a probe's alert."""
        starts = [a.starts_at for a in fresh if a.starts_at]
        if not starts or not all(a.probe for a in fresh) or not may_echo([a.alertname for a in fresh]):
            return None
        modules = sorted({a.probe for a in fresh})
        return restart_around(j, target, min(starts), self.settings.echo_grace_seconds, modules or None)

    def resolved(self, j: Journal, target: str, fingerprint: str, now: float) -> Incident | None:
        """An alert resolved: drop it from the open incidents that hold it; the last one to go
        starts the quiet period. Returns the newest such incident, if any."""
        held = j.open_incidents_firing(target, fingerprint)
        for incident in held:
            still = j.drop_firing(incident.id, fingerprint)
            j.update_incident(incident.id, resolved_at=None if still else now)
        return held[0] if held else None

    # -- the runner's outcomes ----------------------------------------------------------------
    def acting(self, incident: Incident | None, job: Job, components: list[str]) -> None:
        """A job of the incident runs its steps: its tier and the components it touches are recorded."""
        if incident is None:
            return
        current = self.journal.incident(incident.id) or incident
        merged = list(current.components) + [c for c in components if c not in current.components]
        fields: dict[str, Any] = {"tiers": [*current.tiers, job.tier.value], "components": merged}
        if current.status == "healed":  # placed as a possible echo, and it was not one
            fields.update(status="open", unhealed_since=time.time())
        self.journal.update_incident(incident.id, **fields)

    def healed(self, incident: Incident | None, note: str = "") -> None:
        """A verified action (or a probe found green) healed the incident."""
        if incident is None:
            return
        current = self.journal.incident(incident.id) or incident
        status = "healed" if current.status in ("open", "healed", "resolved") else current.status
        self.journal.update_incident(incident.id, status=status, healed_at=time.time())
        if note:
            log.info("incident %s healed: %s", incident.id, note)

    def echo(self, incident: Incident | None, job: Job, note: str) -> None:
        """The job's alert was a restart's echo (green when probed): an incident opened for it alone
        closes as resolved; an incident it found healed stays as it was."""
        if incident is None:
            return
        current = self.journal.incident(incident.id) or incident
        if all(other.id == job.id for other in self.journal.incident_jobs(incident.id)) and current.status == "open":
            self.journal.update_incident(incident.id, status="resolved", closed_at=time.time(), healed_at=time.time())
        log.info("incident %s: job %s was an echo: %s", incident.id, job.id, note)

    def reopen(self, incident: Incident | None, job: Job) -> None:
        """A possible echo's probe was red: the incident (healed before) is broken again, from this job's rung."""
        if incident is None:
            return
        current = self.journal.incident(incident.id) or incident
        if current.status == "healed":
            rung = current.ladder.index(job.tier) if job.tier in current.ladder else current.rung
            self.journal.update_incident(incident.id, status="open", unhealed_since=time.time(), rung=rung)

    def escalation(self, incident: Incident | None, job: Job) -> Tier | None:
        """The tier after the failed job's rung on the incident's ladder; None when exhausted."""
        if incident is None:
            return job.tier.escalation()
        rung = incident.ladder.index(job.tier) if job.tier in incident.ladder else incident.rung
        return incident.ladder[rung + 1] if rung + 1 < len(incident.ladder) else None

    def escalate(self, incident: Incident | None, job: Job, up: Tier, why: str) -> int:
        """Queue the next rung for the incident (a queued job of it absorbs the escalation)."""
        with self.journal.transaction() as j:
            new_id, _joined = j.place_job(job.target, up, why, [], escalated_from=job.id, incident=incident)
            j.copy_alerts(job.id, new_id)
            if incident is not None:
                current = j.incident(incident.id) or incident
                rung = current.ladder.index(up) if up in current.ladder else current.rung
                j.update_incident(incident.id, rung=max(current.rung, rung))
        return new_id

    def page(
        self,
        incident: Incident | None,
        alertname: str,
        reason: str,
        why: str,
        job: Job,
        job_status: str | None = None,
        only_if_open: bool = False,
    ) -> str:
        """Page on-call about the incident, once: later calls return a note and post nothing.

        `job_status` is the status `job` is about to be journaled with (the page goes out first,
        so whoever sees the job finished also sees the incident paged)."""
        # A worker defers its fsyncs (JobRunner.run): what it wrote, the claim of the page included,
        # is on disk before anyone is paged.
        self.journal.durability.settle()
        if incident is None:
            return self.pager.page(alertname, job.target, reason, why, job.id)
        status = "refused" if alertname == REFUSED else "paged"
        claim = {"alertname": alertname, "reason": reason, "why": why}
        if not self.journal.claim_page(incident.id, claim, status, "open" if only_if_open else None):
            current = self.journal.incident(incident.id) or incident
            return f"on-call already paged for incident {incident.id} ({(current.page or {}).get('reason')})"
        self.journal.durability.settle()
        current = self.journal.incident(incident.id) or incident
        jobs = [
            replace(j, status=job_status, note=why) if job_status and j.id == job.id else j
            for j in self.journal.incident_jobs(incident.id)
        ]
        evidence = incident_evidence(current, jobs, why)
        if self.links is not None:
            evidence["incident_page"] = self.links.url(incident.id)
        labels = {"incident": str(incident.id), "family": incident.family}
        note = self.pager.page(alertname, incident.target, reason, why, job.id, labels=labels, annotations=evidence)
        self.journal.update_incident(incident.id, page={**claim, "note": note})
        return note

    # -- the workers' sweep -------------------------------------------------------------------
    def sweep_all(self, targets: Collection[str], now: float | None = None) -> list[str]:
        """Close the incidents of `targets` quiet since their alerts resolved; page those not healed
        within the bound. Two queries in all, not two per target (a receiver with two hundred
        targets sweeps every two seconds). An incident that fails is logged and the others are
        still swept."""
        now = time.time() if now is None else now
        wanted = set(targets)
        states = self.journal.open_incident_job_states()  # every sweep, every open incident: ids only
        notes: list[str] = []
        for incident in self.journal.incidents(open_only=True, limit=1000 * max(1, len(wanted))):
            if incident.target not in wanted:
                continue
            try:
                notes += self._sweep_one(incident, states.get(incident.id, []), now)
            except Exception:  # noqa: BLE001 - one incident's failure must not stop the others' sweep
                log.exception("incident sweep of incident %s (%s)", incident.id, incident.target)
        return notes

    def _sweep_one(self, incident: Incident, jobs: list[tuple[int, str]], now: float) -> list[str]:
        notes = []
        since = incident.unhealed_since or incident.opened_at
        # The bound holds even while a job still runs: a person hears of it once, in time. An
        # incident whose alerts all resolved (on their own, or after a refusal) is not paged.
        overdue = now - since > self.settings.heal_bound_seconds
        if incident.status == "open" and overdue and incident.firing_alerts and jobs:
            why = (
                f"incident {incident.id} ({incident.family}) not healed {now - since:.0f}s after it "
                f"opened (bound {self.settings.heal_bound_seconds:.0f}s)"
            )
            last = self.journal.job(jobs[-1][0])
            if last is not None:
                notes.append(self.page(incident, EXHAUSTED, "not_healed_in_time", why, last, only_if_open=True))
        active = any(status in ("queued", "running") for _id, status in jobs)
        quiet = incident.resolved_at is not None and now - incident.resolved_at >= self.settings.quiet_seconds
        # Healed and nothing new past the escalation window and the quiet period: over, even if a
        # resolved notification never came (receiver down at the time, send_resolved off).
        stale = (
            incident.status == "healed"
            and incident.healed_at is not None
            and now - incident.healed_at
            > self.config.guards.escalation_window_seconds + self.settings.quiet_seconds
        )
        if not active and ((not incident.firing_alerts and quiet) or stale):
            current = self.journal.incident(incident.id) or incident
            status = "resolved" if current.status == "open" else current.status
            self.journal.update_incident(incident.id, closed_at=now, status=status)
            notes.append(f"incident {incident.id} closed ({status})")
        return notes
