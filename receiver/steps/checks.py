"""Steps that change nothing: wait a while, verify through the exporter's probe, capture evidence first."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tts_sentinel.receiver.config import Step
from tts_sentinel.receiver.steps.base import NoComponent, StepContext, StepFailed, StepOutcome
from tts_sentinel.receiver.verification import probe_succeeded


class WaitStep(NoComponent):
    """Give a restarted component time to load (the seed's "run L2 10 s later")."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`wait 10s`."""
        return f"wait {step.seconds:g}s"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Sleep."""
        ctx.sleep(step.seconds)
        return StepOutcome(f"waited {step.seconds:g}s")


class VerifyStep(NoComponent):
    """Run the exporter's /probe for one module until it succeeds; failing it fails the job."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`verify http://exporter/probe?module=health`."""
        return f"verify {ctx.config.exporter_url}/probe?module={step.module}"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Poll the probe; StepFailed (with the verification record) when it stays red."""
        result = ctx.verifier.verify(step.module)
        if not result.get("success"):
            raise StepFailed(
                f"verification {step.module} failed: {result.get('detail')}", {"verification": result}
            )
        return StepOutcome(result["detail"], {"verification": result})


class CaptureStep(NoComponent):
    """Run the exporter's speech probes once before a restart, so a fault seen only in the logs still
    leaves its failing clips (the exporter keeps the evidence of a failed probe). The probes run side by
    side, all within `seconds`; the step never fails the job: evidence is a by-product."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`capture evidence: synthesis, quality, semantic (at most 10s)`."""
        return f"capture evidence: {', '.join(step.modules)} (at most {step.seconds:g}s)"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Probe every module once, at the same time; the output says which were red."""
        deadline = time.monotonic() + step.seconds
        url = f"{ctx.config.exporter_url.rstrip('/')}/probe"
        with ThreadPoolExecutor(max_workers=max(1, len(step.modules)), thread_name_prefix="capture") as pool:
            running = {module: pool.submit(_probe_once, url, module, deadline) for module in step.modules}
            seen = {module: future.result() for module, future in running.items()}
        red = [m for m, state in seen.items() if state == "red"]
        summary = "; ".join(f"{m} {state}" for m, state in seen.items())
        note = "the exporter keeps the failing clips" if red else "no probe failed: no clip to keep"
        return StepOutcome(f"{summary}: {note}", {"capture": seen})


def _probe_once(url: str, module: str, deadline: float) -> str:
    """green, red, or why it did not run (the exporter unreachable or slower than the deadline)."""
    try:
        # fresh: a scheduled run that started before the fault would answer with healthy audio
        answer = httpx.get(url, params={"module": module, "fresh": "1"}, timeout=max(0.1, deadline - time.monotonic()))
    except httpx.HTTPError as exc:
        return f"not run ({exc.__class__.__name__})"
    verdict = probe_succeeded(answer.text)
    return {True: "green", False: "red"}.get(verdict, f"not run (HTTP {answer.status_code})")
