"""Running one job: guards, the tier's steps through the actuator, verification, escalation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.receiver.actuators import Actuator, ActuatorError, build_actuator
from tts_sentinel.receiver.config import ReceiverConfig, TargetConfig
from tts_sentinel.receiver.echoes import alert_start, alertnames, may_echo, restart_around
from tts_sentinel.receiver.gpu import GpuUnavailable, NvmlGpu, running_as_root
from tts_sentinel.receiver.guards import JobGuards, Refusal
from tts_sentinel.receiver.heavy import PreflightRefusal, preflight
from tts_sentinel.receiver.incidents import EXHAUSTED, REFUSED, IncidentBook
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.metrics import ReceiverMetrics
from tts_sentinel.receiver.plan import build_plan, components_of, is_module_name
from tts_sentinel.receiver.records import Incident, Job
from tts_sentinel.receiver.rollback import rollback_preflight
from tts_sentinel.receiver.rootcause import window_verdict
from tts_sentinel.receiver.slots import JobSlots
from tts_sentinel.receiver.steps import StepContext, StepFailed, step_action
from tts_sentinel.receiver.tiers import Tier
from tts_sentinel.receiver.verification import ExporterVerifier

log = logging.getLogger(__name__)
TAIL = 500


class JobRunner:
    """Executes jobs; one call at a time per target (the worker guarantees single flight)."""

    def __init__(
        self,
        config: ReceiverConfig,
        journal: Journal,
        metrics: ReceiverMetrics,
        book: IncidentBook,
        *,
        gpu: NvmlGpu | None = None,
        now: Callable[[], datetime] | None = None,
        is_root: Callable[[], bool] = running_as_root,
        logs_config: LogsConfig | None = None,
        actuator_factory: Callable[[TargetConfig, dict[str, str]], Actuator] = build_actuator,
        sleep: Callable[[float], None] = time.sleep,
        slots: JobSlots | None = None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.metrics = metrics
        self.book = book
        self.gpu = gpu or NvmlGpu()
        self.is_root = is_root
        self.logs_config = logs_config
        self.actuator_factory = actuator_factory
        self.sleep = sleep
        self.guards = JobGuards(config, journal, now or (lambda: datetime.now(UTC)))
        self.verifier = ExporterVerifier(config.exporter_url, config.verification)
        self.targets = {t.name: t for t in config.targets}
        # The worker's threads take turns at the interpreter; a job lends its turn while it waits.
        self.slots = slots or JobSlots(in_transaction=journal.in_transaction)

    # -- entry point --------------------------------------------------------------------------
    def run(self, job_id: int, queued: Job | None = None) -> int | None:
        """Run a queued job to its end; returns the id of an escalation job it queued, if any.
        `queued`: the job as the caller just read it (saves a read; the claim reads it afresh).

        Its journal writes share fsyncs: they are on disk before each action outside the journal (a
        step, a page, a power limit) and when this returns, not one by one (GroupSync's deferral;
        an fsync costs ~0.4 ms of CPU, a commit without one ~0.1 ms)."""
        sync = self.journal.durability
        sync.begin_deferral()
        try:
            return self._run(job_id, queued)
        finally:
            try:
                sync.end_deferral()
            except OSError as err:
                log.error("journal fsync failed after job %s: %s (a restart resumes the job)", job_id, err)

    def _run(self, job_id: int, queued: Job | None) -> int | None:
        job = queued if queued is not None and queued.id == job_id else self.journal.job(job_id)
        if job is None:
            return None
        target = self.targets.get(job.target)
        if target is None:
            self.journal.update_job(
                job_id,
                status="ignored",
                result="ignored",
                finished_at=time.time(),
                note=f"target {job.target!r} is no longer configured",
            )
            return None
        dry = self.config.dry_run or target.dry_run
        incident, triage, incident_takes_it = None, None, False
        failed: Exception | None = None
        if job.kind != "restore":
            # The triage is read before the claim and written with it: one write transaction less.
            try:
                incident = self.journal.incident(job.incident_id)
                triage, incident_takes_it = self._triage(job, incident)
            except Exception as exc:  # noqa: BLE001 - the claimed job fails with it below, as before
                failed = exc
        claimed = self.journal.claim(job_id, dry, triage,
                                     incident.id if incident is not None and incident_takes_it else None)
        if claimed is None:
            return None  # someone else ran it, or it is not queued any more
        job = claimed
        if incident is not None and incident_takes_it:
            incident.triage = triage
        self.metrics.in_progress.inc()
        t0 = time.monotonic()
        try:
            if failed is not None:
                raise failed
            if job.kind == "restore":
                return self._restore(job, target, dry)
            return self._remediate(job, target, dry, incident)
        except Exception as exc:  # noqa: BLE001 - a bug must end up in the journal, not kill the worker
            log.exception("job %s crashed", job_id)
            self._finish(job, "failed", "failure", note=f"internal error: {exc!r}")
            return None
        finally:
            self.metrics.in_progress.dec()
            self.metrics.duration.labels(tier=job.tier).observe(time.monotonic() - t0)

    # -- remediation --------------------------------------------------------------------------
    def _remediate(self, job: Job, target: TargetConfig, dry: bool, incident: Incident | None) -> int | None:
        tier = job.tier
        steps = build_plan(self.config, job, incident) if tier is not Tier.NONE else []
        echo = None if dry else self._echo(job, target, incident)
        if echo:
            self._finish(job, "ignored", "ignored", note=echo)
            self.book.echo(incident, job, echo)
            return None
        green = None if dry else self._already_green(job, target)
        if green:
            self._finish(job, "ignored", "ignored", note=green)
            self.book.healed(incident, green)
            return None
        try:
            self.guards.check(job, target, dry)
            with self.slots.lent():  # a heavy preflight reads the weights from disk
                record = preflight(target) if tier is Tier.HEAVY and not dry else {}
                if tier is Tier.ROLLBACK and not dry:
                    rollback_preflight(target)  # no known-good version, changed weights: refused and paged
        except Refusal as refusal:
            return self._refuse(job, incident, refusal)
        except PreflightRefusal as exc:
            return self._refuse(job, incident, Refusal("preflight", str(exc), page=REFUSED))
        if tier is Tier.NONE:
            self._finish(job, "succeeded", "success", note="tier none: journal only")
            return None
        actuator = None if dry else self.actuator_factory(target, job.first_labels())
        ctx = StepContext(self.config, target, job, actuator, self.verifier, self.gpu, self.is_root, self.sleep)
        if dry:
            plan = [{"step": step_action(step.action).describe(step, ctx)} for step in steps]
            self.journal.update_job(job.id, steps=plan)
            self._finish(job, "dry_run", "dry_run", note="dry run: nothing was executed")
            return None
        done = _journaled_steps(job, steps, ctx)
        if done:
            # Resumed after a crash: the steps journaled as done stay done; the one in flight runs again.
            steps = steps[len(done):]
            job.note = f"{job.note}; steps 1-{len(done)} done before the crash, resumed at step {len(done) + 1}"
            self.journal.update_job(job.id, note=job.note, steps=done)
        else:
            self.book.acting(incident, job, components_of(steps))
        if record:
            done.append(
                {
                    "step": "record weights and commit",
                    "ok": True,
                    "duration_seconds": 0.0,
                    "output": _tail(str({k: v for k, v in record.items() if k != "weights"})),
                    "record": record,
                }
            )
        verification: dict[str, Any] | None = None
        for index, step in enumerate(steps):
            action = step_action(step.action)
            t0 = time.monotonic()
            entry: dict[str, Any] = {"step": action.describe(step, ctx)}
            self.journal.durability.settle()  # the claim and every step before this one on disk first
            try:
                with self.slots.lent():  # a restart, a verification: seconds to minutes of waiting
                    outcome = action.run(step, ctx)
                extra = outcome.extra or {}
                entry.update(ok=True, output=_tail(outcome.output), **extra)
                verification = extra.get("verification", verification)
            except (ActuatorError, GpuUnavailable, PreflightRefusal, StepFailed, OSError) as exc:
                if isinstance(exc, StepFailed):
                    verification = exc.extra.get("verification", verification)
                    entry.update(exc.extra)
                entry.update(ok=False, output=_tail(str(exc)))
                entry["duration_seconds"] = round(time.monotonic() - t0, 3)
                done.append(entry)
                self.journal.update_job(job.id, steps=done, verification=verification)
                return self._failed(job, incident, f"step '{entry['step']}' failed: {exc}")
            entry["duration_seconds"] = round(time.monotonic() - t0, 3)
            done.append(entry)
            if index < len(steps) - 1:  # a crash from here on resumes after this step
                self.journal.update_job(job.id, steps=done, verification=verification)
        # The last step's entry, the job's end and the healed incident: one transaction, one fsync.
        with self.journal.transaction():
            if steps:
                self.journal.update_job(job.id, steps=done, verification=verification)
            self._finish(job, "succeeded", "success")
            self.book.healed(incident)
        return None

    def _triage(self, job: Job, incident: Incident | None) -> tuple[dict[str, Any], bool]:
        """The root cause from the incident's own window (its start minus the lead), never earlier;
        and whether the incident takes it as its own (it found a root cause the incident lacks).
        Nothing is written here: the claim writes both."""
        # The window starts at the incident's own start (a journal-only record, tier none: the last
        # `triage_since_seconds`), but never before the last job of another incident on the target
        # ended: a recurrence after a heal, or a record after an incident, must not take its lines.
        if incident is None:
            start, other_than = time.time() - self.config.triage_since_seconds, None
        else:
            start, other_than = incident.window_start, incident.id
        others = self.journal.last_job_end(job.target, other_than=other_than, before=job.created_at)
        triage = window_verdict(self.logs_config, max(start, others or 0.0))
        if incident is None:
            return triage, False
        return triage, bool(triage.get("root_cause") and not (incident.triage or {}).get("root_cause"))

    def _echo(self, job: Job, target: TargetConfig, incident: Incident | None) -> str | None:
        """A probe alert that started during a restart (ours, or a crash's) is probed, up to the
        verification timeout, before anything acts: green, it was that restart's echo (the journal
        note); red, it is a fault, and a healed incident it joined is open again."""
        modules = sorted(set(job.verify_labels))
        start = alert_start(job.alerts)
        if start is None or not modules or not all(is_module_name(m) for m in modules):
            return None
        if not may_echo(alertnames(job.alerts)):
            return None
        during = restart_around(self.journal, target.name, start, self.config.incidents.echo_grace_seconds,
                                modules, exclude_job=job.id)
        if during is None:
            return None
        with self.slots.lent():
            checks = [self.verifier.verify(module) for module in modules]
        self.journal.update_job(job.id, verification=checks[-1])
        if not all(c.get("success") for c in checks):
            self.book.reopen(incident, job)
            return None
        return f"no action: the alert started during {during}, and {', '.join(modules)} is green: its echo, not a fault"

    def _already_green(self, job: Job, target: TargetConfig) -> str | None:
        """After a recent successful action on the target, a job raised by probe alerts acts only
        when one of those probes is red now.

        A probe alert counts failures over minutes (increase()), so it can fire after an action
        already healed its cause; one run of the probes it names tells a late alert from a live
        fault. Alerts on log lines carry no probe to ask: they always act. Returns the journal
        note when every probe is green, else None.
        """
        window = self.config.incidents.recheck_seconds
        modules = sorted(set(job.verify_labels))
        if not window or not modules or not all(is_module_name(m) for m in modules):
            return None
        if not may_echo(alertnames(job.alerts)):
            return None  # a restart loop counts crashes, not probe failures: green now does not end it
        last = self.journal.last_finished(target.name, status="succeeded")
        if last is None or last.id == job.id or time.time() - (last.finished_at or 0) > window:
            return None
        with self.slots.lent():
            checks = [self.verifier.verify(module, timeout_seconds=0) for module in modules]
        self.journal.update_job(job.id, verification=checks[-1])
        if not all(c.get("success") for c in checks):
            return None
        return (
            f"no action: {', '.join(modules)} green now, {time.time() - (last.finished_at or 0):.0f}s after "
            f"{last.tier} job {last.id} succeeded on {target.name} (the alert counted failures from before it)"
        )

    def _refuse(self, job: Job, incident: Incident | None, refusal: Refusal) -> None:
        self.metrics.refused.labels(reason=refusal.reason).inc()
        note = str(refusal)
        if refusal.page:
            note += "; " + self._page(incident, refusal.page, refusal.reason, str(refusal), job, "refused")
        self._finish(job, "refused", "refused", note=note, reason_suffix=f"refused: {refusal.reason}")
        return None

    def _failed(self, job: Job, incident: Incident | None, why: str) -> int | None:
        if job.tier is Tier.DERATE:
            # No GPU, no NVML or no root: the card stays hot, so a person must know now.
            self.metrics.refused.labels(reason="derate_unavailable").inc()
            page = self._page(incident, REFUSED, "derate_unavailable", why, job, "failed")
            self._finish(job, "failed", "failure", note=f"{why}; {page}")
            return None
        up = self.book.escalation(incident, job)
        if up is None:
            page = self._page(incident, EXHAUSTED, f"{job.tier}_failed", why, job, "failed")
            self._finish(job, "failed", "failure", note=f"{why}; no higher tier; {page}")
            return None
        new_id = self.book.escalate(incident, job, up, f"escalated from {job.tier} job {job.id}: {why}")
        self.metrics.escalations.inc()
        self._finish(job, "failed", "failure", note=why, escalation=f"escalated to {up} as job {new_id}")
        return new_id

    def _page(self, incident: Incident | None, alertname: str, reason: str, why: str, job: Job, outcome: str) -> str:
        with self.slots.lent():  # a POST to every Alertmanager peer, up to its timeout each
            return self.book.page(incident, alertname, reason, why, job, outcome)

    def _finish(
        self,
        job: Job,
        status: str,
        result: str,
        note: str = "",
        escalation: str | None = None,
        reason_suffix: str = "",
    ) -> None:
        # Keep what recovery noted before this run (e.g. "interrupted ...; resumed").
        note = "; ".join(part for part in (job.note, note) if part)
        fields: dict[str, Any] = {
            "status": status,
            "result": result,
            "finished_at": time.time(),
            "note": note,
        }
        if escalation:
            fields["escalation"] = escalation
        self.journal.update_job(job.id, **fields)
        if result != "ignored":  # nothing was done: not an action
            self.metrics.actions.labels(tier=job.tier, result=result).inc()
        log.info("job %s %s %s on %s: %s %s", job.id, job.tier, status, job.target, note, reason_suffix)

    # -- restore after derate -----------------------------------------------------------------
    def _restore(self, job: Job, target: TargetConfig, dry: bool) -> None:
        last = self.journal.last_derate(target.name)
        previous = None
        for step in last.steps if last else []:
            if step.get("previous_limit_mw"):
                previous = step["previous_limit_mw"]
        if previous is None:
            self._finish(job, "succeeded", "success", note="no derate to undo")
            return None
        entry: dict[str, Any] = {"step": f"restore GPU {target.gpu.index} power limit to {previous} mW"}
        if dry:
            self.journal.update_job(job.id, steps=[entry])
            self._finish(job, "dry_run", "dry_run", note="dry run: nothing was executed")
            return None
        t0 = time.monotonic()
        try:
            if not self.is_root():
                raise GpuUnavailable("restoring the GPU power limit needs root")
            self.journal.durability.settle()
            self.gpu.set_power_limit(target.gpu.index, int(previous))
            entry.update(ok=True, output=f"power limit restored to {previous} mW")
        except GpuUnavailable as exc:
            entry.update(ok=False, output=str(exc))
        entry["duration_seconds"] = round(time.monotonic() - t0, 3)
        self.journal.update_job(job.id, steps=[entry])
        if entry["ok"]:
            self._finish(job, "succeeded", "success")
        else:
            output = str(entry["output"])
            incident = self.journal.incident(job.incident_id)
            page = self._page(incident, REFUSED, "derate_restore_failed", output, job, "failed")
            self._finish(job, "failed", "failure", note=f"{output}; {page}")
        return None


def _journaled_steps(job: Job, steps: list[Any], ctx: StepContext) -> list[dict[str, Any]]:
    """The leading steps of the plan an earlier attempt of this job journaled as done (ok), when a
    receiver restart resumed it; empty otherwise (a first run, or a plan that changed)."""
    if job.attempts < 2 or not job.steps or "resumed" not in (job.note or ""):
        return []
    done: list[dict[str, Any]] = []
    for entry, step in zip(job.steps, steps, strict=False):
        if not entry.get("ok") or entry.get("step") != step_action(step.action).describe(step, ctx):
            break
        done.append({**entry, "resumed": True})
    return done


def _tail(text: str) -> str:
    return text if len(text) <= TAIL else "..." + text[-TAIL:]
