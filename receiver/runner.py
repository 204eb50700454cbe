"""Running one job: guards, the tier's steps through the actuator, verification, escalation."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tts_sentinel.receiver.actuators import Actuator, ActuatorError, build_actuator
from tts_sentinel.receiver.admission import place_job
from tts_sentinel.receiver.config import ReceiverConfig, Step, TargetConfig
from tts_sentinel.receiver.gpu import GpuUnavailable, NvmlGpu, reset_gpu, running_as_root
from tts_sentinel.receiver.heavy import PreflightRefusal, clear_cache, preflight
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.metrics import ReceiverMetrics
from tts_sentinel.receiver.pager import OnCallPager
from tts_sentinel.receiver.policy import next_tier
from tts_sentinel.receiver.rootcause import triage_verdict
from tts_sentinel.receiver.verification import ExporterVerifier

log = logging.getLogger(__name__)
TAIL = 500


class StepFailed(Exception):
    """A step that failed; the job stops and escalates."""


class Refusal(Exception):
    """A guard refused the job; `reason` is the metric label, the message is for people."""

    def __init__(self, reason: str, message: str, page: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.page = page  # alertname to page on-call with, or None


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
        logs_config: object | None = None,
        actuator_factory: Callable[[TargetConfig, dict[str, str]], Actuator] = build_actuator,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.journal = journal
        self.metrics = metrics
        self.pager = pager
        self.gpu = gpu or NvmlGpu()
        self.now = now or (lambda: datetime.now(UTC))
        self.is_root = is_root
        self.logs_config = logs_config
        self.actuator_factory = actuator_factory
        self.sleep = sleep
        self.verifier = ExporterVerifier(config.exporter_url, config.verification)
        self.targets = {t.name: t for t in config.targets}

    # -- entry point --------------------------------------------------------------------------
    def run(self, job_id: int) -> int | None:
        """Run a queued job to its end; returns the id of an escalation job it queued, if any."""
        job = self.journal.job(job_id)
        if job is None:
            return None
        target = self.targets.get(job["target"])
        if target is None:
            self.journal.update_job(
                job_id,
                status="ignored",
                result="ignored",
                finished_at=time.time(),
                note=f"target {job['target']!r} is no longer configured",
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
            if job["kind"] == "restore":
                return self._restore(job, target, dry)
            return self._remediate(job, target, dry)
        except Exception as exc:  # noqa: BLE001 - a bug must end up in the journal, not kill the worker
            log.exception("job %s crashed", job_id)
            self._finish(job, "failed", "failure", note=f"internal error: {exc!r}")
            return None
        finally:
            self.metrics.in_progress.dec()
            self.metrics.duration.labels(tier=job["tier"]).observe(time.monotonic() - t0)

    # -- remediation --------------------------------------------------------------------------
    def _remediate(self, job: dict[str, Any], target: TargetConfig, dry: bool) -> int | None:
        tier = job["tier"]
        labels = _first_labels(job)
        try:
            self._guard(job, target, dry)
            record = preflight(target) if tier == "heavy" and not dry else {}
        except Refusal as refusal:
            return self._refuse(job, target, refusal)
        except PreflightRefusal as exc:
            return self._refuse(job, target, Refusal("preflight", str(exc), page="TtsRemediationRefused"))
        triage = triage_verdict(self.logs_config, self.config.triage_since_seconds)
        self.journal.update_job(job["id"], triage=triage)
        steps = self.config.tiers.get(tier, [])
        if tier == "none":
            self._finish(job, "succeeded", "success", note="tier none: journal only")
            return None
        steps = steps + _alert_verifications(job, steps)
        if dry:
            plan = [self._describe(step, target) for step in steps]
            self.journal.update_job(job["id"], steps=plan)
            self._finish(job, "dry_run", "dry_run", note="dry run: nothing was executed")
            return None
        actuator = self.actuator_factory(target, labels)
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
            t0 = time.monotonic()
            entry: dict[str, Any] = {"step": self._describe(step, target)["step"]}
            try:
                output, extra = self._execute(step, target, actuator, job)
                entry.update(ok=True, output=_tail(output), **extra)
                if step.action == "verify":
                    verification = extra.get("verification")
                    if not verification or not verification.get("success"):
                        entry["ok"] = False
                        raise StepFailed(f"verification {step.module} failed: {(verification or {}).get('detail')}")
            except (ActuatorError, GpuUnavailable, PreflightRefusal, StepFailed, OSError) as exc:
                entry.update(ok=False, output=_tail(str(exc)))
                entry["duration_seconds"] = round(time.monotonic() - t0, 3)
                done.append(entry)
                self.journal.update_job(job["id"], steps=done, verification=verification)
                return self._failed(job, target, f"step '{entry['step']}' failed: {exc}", entry)
            entry["duration_seconds"] = round(time.monotonic() - t0, 3)
            done.append(entry)
            self.journal.update_job(job["id"], steps=done, verification=verification)
        self._finish(job, "succeeded", "success")
        return None

    def _guard(self, job: dict[str, Any], target: TargetConfig, dry: bool) -> None:
        """Raise Refusal when the job must not run now."""
        tier = job["tier"]
        now = time.time()
        if tier == "heavy" and self._business_hours():
            raise Refusal(
                "business_hours",
                f"heavy restart refused during business hours ({self._local_now():%a %H:%M %Z}); "
                "do it by hand if it cannot wait (re-sends of this firing are not retried; "
                "a new firing after hours runs)",
                page="TtsRemediationRefused",
            )
        if dry or tier == "none":
            return
        cooldown = self.config.guards.cooldown_seconds.get(tier, 0.0)
        last = self.journal.last_finished(target.name, tier=tier)
        if (
            cooldown
            and last
            and last["id"] != job["id"]
            and last["status"] in ("succeeded", "failed")
            and now - (last["finished_at"] or 0) < cooldown
            and not job.get("escalated_from")
        ):
            raise Refusal(
                "cooldown",
                f"{tier} ran on {target.name} {now - last['finished_at']:.0f}s ago "
                f"(job {last['id']}); cooldown is {cooldown:.0f}s",
            )
        window = self.config.guards.budget_window_seconds
        used = self.journal.count_actions(target.name, now - window) - 1  # this job is already 'running'
        if used >= self.config.guards.budget_actions:
            raise Refusal(
                "budget_exhausted",
                f"{used} actions on {target.name} in the last {window:.0f}s reach the budget of "
                f"{self.config.guards.budget_actions}; a person must look",
                page="TtsRemediationExhausted",
            )

    def _local_now(self) -> datetime:
        return self.now().astimezone(ZoneInfo(self.config.business_hours.timezone))

    def _business_hours(self) -> bool:
        hours = self.config.business_hours
        local = self._local_now()
        return local.weekday() in hours.weekdays and hours.start <= local.time().replace(tzinfo=None) <= hours.end

    def _refuse(self, job: dict[str, Any], target: TargetConfig, refusal: Refusal) -> None:
        self.metrics.refused.labels(reason=refusal.reason).inc()
        note = str(refusal)
        if refusal.page:
            note += "; " + self.pager.page(refusal.page, target.name, refusal.reason, str(refusal), job["id"])
        self._finish(job, "refused", "refused", note=note, reason_suffix=f"refused: {refusal.reason}")
        return None

    def _failed(self, job: dict[str, Any], target: TargetConfig, why: str, entry: dict[str, Any]) -> int | None:
        up = next_tier(job["tier"])
        if job["tier"] == "derate":
            # No GPU, no NVML or no root: the card stays hot, so a person must know now.
            self.metrics.refused.labels(reason="derate_unavailable").inc()
            note = (
                why + "; " + self.pager.page("TtsRemediationRefused", target.name, "derate_unavailable", why, job["id"])
            )
            self._finish(job, "failed", "failure", note=note)
            return None
        if up is None:
            note = (
                why
                + "; no higher tier; "
                + self.pager.page("TtsRemediationExhausted", target.name, f"{job['tier']}_failed", why, job["id"])
            )
            self._finish(job, "failed", "failure", note=note)
            return None
        why_up = f"escalated from {job['tier']} job {job['id']}: {why}"
        with self.journal.transaction() as j:
            # A job already queued for this target absorbs the escalation: still one action per incident.
            new_id, _joined = place_job(j, target.name, up, why_up, job.get("alerts") or [], escalated_from=job["id"])
        self.metrics.escalations.inc()
        self._finish(job, "failed", "failure", note=why, escalation=f"escalated to {up} as job {new_id}")
        return new_id

    def _finish(
        self,
        job: dict[str, Any],
        status: str,
        result: str,
        note: str = "",
        escalation: str | None = None,
        reason_suffix: str = "",
    ) -> None:
        # Keep what recovery noted before this run (e.g. "interrupted ...; resumed").
        note = "; ".join(part for part in (job.get("note") or "", note) if part)
        fields: dict[str, Any] = {
            "status": status,
            "result": result,
            "finished_at": time.time(),
            "note": note,
        }
        if escalation:
            fields["escalation"] = escalation
        self.journal.update_job(job["id"], **fields)
        self.metrics.actions.labels(tier=job["tier"], result=result).inc()
        log.info("job %s %s %s on %s: %s %s", job["id"], job["tier"], status, job["target"], note, reason_suffix)

    # -- steps --------------------------------------------------------------------------------
    def _describe(self, step: Step, target: TargetConfig) -> dict[str, Any]:
        """What a step would do, in words (the dry-run journal shows exactly this)."""
        act = step.action
        kind = target.actuator
        if act == "reload":
            act_text = f"signal {step.signal}" if target.hot_reload else "restart"
            return {"step": f"{act_text} {step.component} via {kind} (hot_reload={target.hot_reload})"}
        if act in ("restart", "stop", "start"):
            comps = ["web", "inference"] if step.component == "all" else [step.component]
            return {"step": f"{act} {'+'.join(comps)} via {kind}"}
        if act == "signal":
            return {"step": f"signal {step.signal} {step.component} via {kind}"}
        if act == "release_gpu":
            how = "reset if no process holds it (root only)" if target.gpu.reset else "no reset configured"
            return {"step": f"release GPU {target.gpu.index}: {how}"}
        if act == "wait":
            return {"step": f"wait {step.seconds:g}s"}
        if act == "verify":
            return {"step": f"verify {self.config.exporter_url}/probe?module={step.module}"}
        if act == "clear_cache":
            return {"step": f"clear cache dir {target.cache_dir}"}
        if act == "derate":
            return {"step": f"lower GPU {target.gpu.index} power limit to {target.gpu.derate_ratio:g} x default"}
        return {"step": act}

    def _execute(
        self, step: Step, target: TargetConfig, actuator: Actuator, job: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        act = step.action
        comps = ["web", "inference"] if step.component == "all" else [step.component]
        if act == "reload":
            if target.hot_reload:
                return actuator.signal(step.component, step.signal), {}
            return actuator.restart(step.component), {}
        if act in ("restart", "stop", "start"):
            if act == "start":
                comps = list(reversed(comps)) if step.component == "all" else comps
            return "; ".join(getattr(actuator, act)(c) for c in comps), {}
        if act == "signal":
            return actuator.signal(step.component, step.signal), {}
        if act == "wait":
            self.sleep(step.seconds)
            return f"waited {step.seconds:g}s", {}
        if act == "verify":
            result = self.verifier.verify(step.module)
            return result["detail"], {"verification": result}
        if act == "release_gpu":
            return self._release_gpu(target), {}
        if act == "clear_cache":
            if target.cache_dir is None:
                return "no cache_dir configured; nothing to clear", {}
            return clear_cache(target.cache_dir), {}
        if act == "derate":
            return self._derate(target, job)
        raise StepFailed(f"unknown step {act}")

    def _release_gpu(self, target: TargetConfig) -> str:
        """The medium tier's GPU step: a reset only when configured, as root, with no process on it."""
        index = target.gpu.index
        if not target.gpu.reset:
            return "skipped: GPU reset not configured; stopping inference released its memory"
        if not self.is_root():
            return "skipped: GPU reset needs root"
        try:
            pids = self.gpu.processes(index)
        except GpuUnavailable as exc:
            return f"skipped: {exc}"
        if pids:
            return f"skipped: GPU {index} still has processes {pids}; a reset would kill them"
        return "reset: " + reset_gpu(target.gpu.nvidia_smi, index)

    def _derate(self, target: TargetConfig, job: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        index = target.gpu.index
        if not self.is_root():
            raise GpuUnavailable("lowering the GPU power limit needs root; the receiver does not run as root")
        limits = self.gpu.power_limits(index)
        wanted = int(limits["default_mw"] * target.gpu.derate_ratio)
        new = max(limits["min_mw"], min(limits["max_mw"], wanted))
        if new >= limits["current_mw"]:
            return (
                f"power limit already {limits['current_mw']} mW <= {new} mW; nothing to lower",
                {"previous_limit_mw": None, "limits": limits},
            )
        self.gpu.set_power_limit(index, new)
        return (
            f"power limit {limits['current_mw']} -> {new} mW (card range {limits['min_mw']}-{limits['max_mw']})",
            {"previous_limit_mw": limits["current_mw"], "new_limit_mw": new, "limits": limits},
        )

    # -- restore after derate -----------------------------------------------------------------
    def _restore(self, job: dict[str, Any], target: TargetConfig, dry: bool) -> None:
        last = self.journal.last_derate(target.name)
        previous = None
        for step in (last or {}).get("steps") or []:
            if step.get("previous_limit_mw"):
                previous = step["previous_limit_mw"]
        if previous is None:
            self._finish(job, "succeeded", "success", note="no derate to undo")
            return None
        entry: dict[str, Any] = {"step": f"restore GPU {target.gpu.index} power limit to {previous} mW"}
        if dry:
            self.journal.update_job(job["id"], steps=[entry])
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
        self.journal.update_job(job["id"], steps=[entry])
        if entry["ok"]:
            self._finish(job, "succeeded", "success")
        else:
            note = (
                str(entry["output"])
                + "; "
                + self.pager.page(
                    "TtsRemediationRefused",
                    target.name,
                    "derate_restore_failed",
                    str(entry["output"]),
                    job["id"],
                )
            )
            self._finish(job, "failed", "failure", note=note)
        return None


def _alert_verifications(job: dict[str, Any], steps: list[Step]) -> list[Step]:
    """Extra verify steps for the probe modules the alerts name in their `verify` label.

    The tier's own verification checks what the tier restarts (L1 for light, L2 for medium);
    an alert raised by another probe must see that probe green too, or the action did not
    fix what was broken (e.g. a light restart for an L2 failure that L1 never saw).
    """
    have = {step.module for step in steps if step.action == "verify"}
    extra: list[Step] = []
    for alert in job.get("alerts") or []:
        module = (alert.get("labels") or {}).get("verify", "")
        if _MODULE_NAME.match(module) and module not in have:
            have.add(module)
            extra.append(Step(action="verify", module=module))
    return extra


def _first_labels(job: dict[str, Any]) -> dict[str, str]:
    alerts = job.get("alerts") or []
    return dict(alerts[0].get("labels") or {}) if alerts else {}


_MODULE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


def _tail(text: str) -> str:
    return text if len(text) <= TAIL else "..." + text[-TAIL:]
