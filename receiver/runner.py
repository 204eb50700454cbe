"""Running one job: guards, the tier's steps through the actuator, verification, escalation."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.receiver.actuators import Actuator, ActuatorError, build_actuator
from tts_sentinel.receiver.config import ReceiverConfig, Step, TargetConfig
from tts_sentinel.receiver.gpu import GpuUnavailable, NvmlGpu, running_as_root
from tts_sentinel.receiver.guards import JobGuards, Refusal
from tts_sentinel.receiver.heavy import PreflightRefusal, preflight
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.metrics import ReceiverMetrics
from tts_sentinel.receiver.pager import OnCallPager
from tts_sentinel.receiver.records import Job
from tts_sentinel.receiver.rootcause import triage_verdict
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
        pager: OnCallPager,
        *,
        gpu: NvmlGpu | None = None,
        now: Callable[[], datetime] | None = None,
        is_root: Callable[[], bool] = running_as_root,
        logs_config: LogsConfig | None = None,
        actuator_factory: Callable[[TargetConfig, dict[str, str]], Actuator] = build_actuator,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.journal = journal
        self.metrics = metrics
        self.pager = pager
        self.gpu = gpu or NvmlGpu()
        self.is_root = is_root
        self.logs_config = logs_config
        self.actuator_factory = actuator_factory
        self.sleep = sleep
        self.guards = JobGuards(config, journal, now or (lambda: datetime.now(UTC)))
        self.verifier = ExporterVerifier(config.exporter_url, config.verification)
        self.targets = {t.name: t for t in config.targets}

    # -- entry point --------------------------------------------------------------------------
    def run(self, job_id: int) -> int | None:
        """Run a queued job to its end; returns the id of an escalation job it queued, if any."""
        job = self.journal.job(job_id)
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
        claimed = self.journal.claim(job_id, dry)
        if claimed is None:
            return None  # someone else ran it, or it is not queued any more
        job = claimed
        self.metrics.in_progress.inc()
        t0 = time.monotonic()
        try:
            if job.kind == "restore":
                return self._restore(job, target, dry)
            return self._remediate(job, target, dry)
        except Exception as exc:  # noqa: BLE001 - a bug must end up in the journal, not kill the worker
            log.exception("job %s crashed", job_id)
            self._finish(job, "failed", "failure", note=f"internal error: {exc!r}")
            return None
        finally:
            self.metrics.in_progress.dec()
            self.metrics.duration.labels(tier=job.tier).observe(time.monotonic() - t0)

    # -- remediation --------------------------------------------------------------------------
    def _remediate(self, job: Job, target: TargetConfig, dry: bool) -> int | None:
        tier = job.tier
        try:
            self.guards.check(job, target, dry)
            record = preflight(target) if tier is Tier.HEAVY and not dry else {}
        except Refusal as refusal:
            return self._refuse(job, target, refusal)
        except PreflightRefusal as exc:
            return self._refuse(job, target, Refusal("preflight", str(exc), page="TtsRemediationRefused"))
        triage = triage_verdict(self.logs_config, self.config.triage_since_seconds)
        self.journal.update_job(job.id, triage=triage)
        if tier is Tier.NONE:
            self._finish(job, "succeeded", "success", note="tier none: journal only")
            return None
        steps = self.config.tiers.get(tier, [])
        steps = steps + _alert_verifications(job, steps)
        actuator = None if dry else self.actuator_factory(target, job.first_labels())
        ctx = StepContext(self.config, target, job, actuator, self.verifier, self.gpu, self.is_root, self.sleep)
        if dry:
            plan = [{"step": step_action(step.action).describe(step, ctx)} for step in steps]
            self.journal.update_job(job.id, steps=plan)
            self._finish(job, "dry_run", "dry_run", note="dry run: nothing was executed")
            return None
        done: list[dict[str, Any]] = []
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
        for step in steps:
            action = step_action(step.action)
            t0 = time.monotonic()
            entry: dict[str, Any] = {"step": action.describe(step, ctx)}
            try:
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
                return self._failed(job, target, f"step '{entry['step']}' failed: {exc}")
            entry["duration_seconds"] = round(time.monotonic() - t0, 3)
            done.append(entry)
            self.journal.update_job(job.id, steps=done, verification=verification)
        self._finish(job, "succeeded", "success")
        return None

    def _refuse(self, job: Job, target: TargetConfig, refusal: Refusal) -> None:
        self.metrics.refused.labels(reason=refusal.reason).inc()
        note = str(refusal)
        if refusal.page:
            note += "; " + self.pager.page(refusal.page, target.name, refusal.reason, str(refusal), job.id)
        self._finish(job, "refused", "refused", note=note, reason_suffix=f"refused: {refusal.reason}")
        return None

    def _failed(self, job: Job, target: TargetConfig, why: str) -> int | None:
        up = job.tier.escalation()
        if job.tier is Tier.DERATE:
            # No GPU, no NVML or no root: the card stays hot, so a person must know now.
            self.metrics.refused.labels(reason="derate_unavailable").inc()
            note = why + "; " + self.pager.page("TtsRemediationRefused", target.name, "derate_unavailable", why, job.id)
            self._finish(job, "failed", "failure", note=note)
            return None
        if up is None:
            note = (
                why
                + "; no higher tier; "
                + self.pager.page("TtsRemediationExhausted", target.name, f"{job.tier}_failed", why, job.id)
            )
            self._finish(job, "failed", "failure", note=note)
            return None
        why_up = f"escalated from {job.tier} job {job.id}: {why}"
        with self.journal.transaction() as j:
            # A job already queued for this target absorbs the escalation: still one action per incident.
            new_id, _joined = j.place_job(target.name, up, why_up, job.alerts, escalated_from=job.id)
        self.metrics.escalations.inc()
        self._finish(job, "failed", "failure", note=why, escalation=f"escalated to {up} as job {new_id}")
        return new_id

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
            page = self.pager.page("TtsRemediationRefused", target.name, "derate_restore_failed", output, job.id)
            self._finish(job, "failed", "failure", note=f"{output}; {page}")
        return None


def _alert_verifications(job: Job, steps: list[Step]) -> list[Step]:
    """Extra verify steps for the probe modules the alerts name in their `verify` label.

    The tier's own verification checks what the tier restarts (L1 for light, L2 for medium);
    an alert raised by another probe must see that probe green too, or the action did not
    fix what was broken (e.g. a light restart for an L2 failure that L1 never saw).
    """
    have = {step.module for step in steps if step.action == "verify"}
    extra: list[Step] = []
    for alert in job.alerts:
        module = (alert.get("labels") or {}).get("verify", "")
        if _MODULE_NAME.match(module) and module not in have:
            have.add(module)
            extra.append(Step(action="verify", module=module))
    return extra


_MODULE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


def _tail(text: str) -> str:
    return text if len(text) <= TAIL else "..." + text[-TAIL:]
