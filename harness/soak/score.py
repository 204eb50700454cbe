"""Scoring a soak: each injected fault against its right outcome, and the baseline beside it.

Per incident: the right component (every action touched the component that broke), the right
ladder (tiers in the fault family's order, starting at its base unless it is a recurrence of
the same family), no cross-incident escalation (never an escalation from a job of an incident of
another family), and paged exactly once if and only if not healed. `healed` is the receiver's
word checked against ground truth: the component is green and the soak did not have to clear it.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from tts_sentinel.harness.incidents import RESTART_TIERS, Incident, components_acted_on, window_of
from tts_sentinel.harness.soak.observe import AlertSpan, Page
from tts_sentinel.harness.soak.plan import Expectation, Injection, expectation, in_restart_loop, loop_expectation
from tts_sentinel.harness.soak.run import InjectionRecord, RunRecord

# Alerts about the remediation itself (pages), not about the fault.
META_ALERTS = ("TtsRemediation", "TtsNotHealed", "TtsReceiverDown")


@dataclass
class IncidentScore:
    """One injected fault: what happened on the sentinel run, its checks, and the baseline's time."""

    index: int
    fault: str
    component: str
    during_planned: bool
    during: str  # the action it was injected during ("" when that one had already ended)
    expected: dict[str, Any]
    incident_ids: list[str] = field(default_factory=list)
    source: str = ""
    family: str = ""
    family_reason: str = ""
    components: list[str] = field(default_factory=list)
    tiers: list[str] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)
    status: str = ""
    healed: bool = False
    cleared_by_soak: bool = False
    pages: int = 0
    page_alerts: list[str] = field(default_factory=list)
    alert: str = ""
    alert_seconds: float | None = None
    action_seconds: float | None = None
    green_seconds: float | None = None
    baseline: str = ""  # green | missed, "" without a baseline run
    baseline_green_seconds: float | None = None
    refusals: list[str] = field(default_factory=list)
    checks: dict[str, bool | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No check failed (a check that does not apply is None)."""
        return all(v is not False for v in self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON shape, with `ok`."""
        return {**asdict(self), "ok": self.ok}



def _dedupe(tiers: list[str]) -> list[str]:
    return [t for i, t in enumerate(tiers) if i == 0 or tiers[i - 1] != t]


def ladder_ok(tiers: list[str], expected: Expectation, recurrence: bool) -> bool | None:
    """Tiers climb the expected ladder in order, from its base unless a recurrence escalated it."""
    climbed = _dedupe([t for t in tiers if t in RESTART_TIERS])
    if not climbed:
        return None
    if any(t not in expected.ladder for t in climbed):
        return False
    steps = [expected.ladder.index(t) for t in climbed]
    in_order = all(a < b for a, b in zip(steps, steps[1:], strict=False))
    return in_order and (steps[0] == 0 or recurrence)


def _seconds(t: float | None, since: float) -> float | None:
    return None if t is None else round(max(0.0, t - since), 1)


def score_run(plan: list[Injection], run: RunRecord, baseline: RunRecord | None = None,
              heavy_refused: bool = False) -> list[IncidentScore]:
    """One score per injected fault of the sentinel run, with the baseline's time to green beside it."""
    records = run.records
    starts = [r.injected_at for r in records]
    expected = [expectation(r.injection.fault, r.injection.component, heavy_refused) for r in records]
    for i, r in enumerate(records):  # the third crash of a component in ten minutes is a restart loop
        earlier = [(e.injection.fault, e.injection.component, e.injected_at) for e in records[:i]]
        if in_restart_loop(r.injection.fault, r.injection.component, r.injected_at, earlier):
            expected[i] = loop_expectation(r.injection.component)
    job_window: dict[int, int] = {}
    job_tier: dict[int, str] = {}
    for i, found in enumerate(run.incidents):
        for incident in found:
            job_window.update({row["id"]: i for row in incident.rows})
            job_tier.update({row["id"]: row.get("tier", "?") for row in incident.rows})
    alerts: list[AlertSpan] = list(run.observer.alerts.values()) if run.observer else []
    pages: list[Page] = list(run.observer.pages) if run.observer else []
    scores = []
    for i, record in enumerate(records):
        found = run.incidents[i] if i < len(run.incidents) else []
        earlier = {x.id: j for j in range(i) for x in run.incidents[j] if x.source == "receiver"}
        joined = [expected[earlier[x.id]].family for x in found if x.id in earlier]
        score = _score_one(record, expected[i], found, job_window, expected, joined)
        for esc in score.escalations:  # a recurrence escalates from a job of an earlier fault's window
            if esc["from"] == "?":
                esc["from"] = job_tier.get(esc["from_job"], "?")
        mine = sorted((a for a in alerts if window_of(a.active_at, starts) == i
                       and not a.name.startswith(META_ALERTS)), key=lambda a: a.firing_at)
        if mine:
            score.alert, score.alert_seconds = mine[0].name, _seconds(mine[0].firing_at, record.injected_at)
        paged = [p for p in pages if window_of(p.starts_at, starts) == i]
        score.pages, score.page_alerts = len(paged), [p.alertname for p in paged]
        score.checks["paged_iff_not_healed"] = score.pages == (0 if score.healed else 1)
        if baseline and i < len(baseline.records):
            other = baseline.records[i]
            score.baseline = "missed"
            if other.green_at and not other.cleared_by_soak:
                score.baseline, score.baseline_green_seconds = "green", _seconds(other.green_at, other.injected_at)
        scores.append(score)
    return scores


def _score_one(record: InjectionRecord, exp: Expectation, found: list[Incident], job_window: dict[int, int],
               families: list[Expectation], joined: list[str]) -> IncidentScore:
    """`joined`: the expected families of earlier faults whose receiver incident this fault joined."""
    i = record.index
    rows = [row for incident in found for row in incident.rows]
    score = IncidentScore(
        index=i + 1, fault=record.injection.fault, component=record.injection.component,
        during_planned=record.injection.during, during=record.during_action, expected=asdict(exp),
        incident_ids=[x.id for x in found], source=found[0].source if found else "",
        family=", ".join(x.family for x in found if x.family),
        family_reason="; ".join(x.family_reason for x in found if x.family_reason),
        components=[c for x in found for c in x.components],
        tiers=[t for x in found for t in x.tiers], status=", ".join(x.status for x in found),
        cleared_by_soak=record.cleared_by_soak,
        refusals=[f"{r['tier']} job {r['id']}: {r.get('note') or r.get('reason', '')}" for r in rows
                  if r.get("status") == "refused"],
        action_seconds=_seconds(min((x.first_action_at for x in found if x.first_action_at), default=None),
                                record.injected_at),
    )
    score.healed = (record.green_at is not None and not record.cleared_by_soak
                    and all(x.status == "healed" for x in found))
    if score.healed:
        score.green_seconds = _seconds(record.green_at, record.injected_at)
    recurrence = exp.family in joined  # the receiver kept the incident of the same fault that came back
    for incident in found:
        for esc in incident.escalations():
            other = job_window.get(esc["from_job"], i)
            esc["cross_incident"] = other != i and families[other].family != exp.family
            recurrence = recurrence or (other != i and not esc["cross_incident"])
            score.escalations.append(esc)
    acting = [components_acted_on(row) for row in rows if components_acted_on(row)]
    score.checks = {
        "right_component": all(exp.component in c for c in acting) if acting else None,
        "right_ladder": ladder_ok(score.tiers, exp, recurrence),
        "no_cross_incident_escalation": not any(e["cross_incident"] for e in score.escalations),
        "healed_as_expected": score.healed == exp.healable,
    }
    return score


def _same(a: InjectionRecord, b: InjectionRecord) -> bool:
    return (a.injection.fault, a.injection.component) == (b.injection.fault, b.injection.component)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def summarize(scores: list[IncidentScore], plan: list[Injection], run: RunRecord,
              baseline: RunRecord | None, escalation_window: float) -> dict[str, Any]:
    """The soak's headline numbers."""
    healable = [s for s in scores if s.expected["healable"]]
    unhealable = [s for s in scores if not s.expected["healable"]]
    starts = [r.injected_at for r in run.records]
    summary: dict[str, Any] = {
        "injected": len(run.records),
        "planned": len(plan),
        "ok": sum(s.ok for s in scores),
        "healable": len(healable),
        "healed": sum(s.healed for s in healable),
        "healed_right": sum(s.healed and s.checks["right_component"] is not False
                            and s.checks["right_ladder"] is not False for s in healable),
        "cross_incident_escalations": sum(bool(e.get("cross_incident")) for s in scores for e in s.escalations),
        "pages_for_healed": sum(s.pages for s in scores if s.healed),
        "unhealable": len(unhealable),
        "unhealable_paged_once": sum(s.pages == 1 for s in unhealable),
        "within_one_escalation_window": sum(b - a < escalation_window for a, b in zip(starts, starts[1:],
                                                                                        strict=False)),
        "injected_during_remediation": sum(bool(s.during) for s in scores),
        "recurrences": sum(any(_same(a, b) and b.injected_at - a.injected_at < escalation_window
                               for a in run.records[:i]) for i, b in enumerate(run.records)),
        "median_green_seconds": _median([s.green_seconds for s in scores if s.green_seconds is not None]),
        "seconds": round(run.finished_at - run.started_at, 1),
        "stopped_early": run.stopped_early,
        "paced_seconds": round(sum(run.budget_waits.values()), 1),
    }
    if baseline is not None:
        greens = [s.baseline_green_seconds for s in scores]
        summary["baseline"] = {
            "green": sum(s.baseline == "green" for s in scores),
            "missed": sum(s.baseline == "missed" for s in scores),
            "median_green_seconds": _median([g for g in greens if g is not None]),
            "restarts": len(baseline.watchdog_restarts),
            "seconds": round(baseline.finished_at - baseline.started_at, 1),
        }
        both = [(s.green_seconds, s.baseline_green_seconds) for s in scores
                if s.green_seconds is not None and s.baseline_green_seconds is not None]
        summary["baseline"]["median_green_seconds_both_green"] = {
            "sentinel": _median([a for a, _ in both]), "baseline": _median([b for _, b in both])}
        summary["baseline"]["missed_by_baseline_healed_by_sentinel"] = sum(
            s.healed and s.baseline_green_seconds is None for s in scores)
    return summary
