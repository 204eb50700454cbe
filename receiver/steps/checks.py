"""Steps that change nothing: wait a while, verify through the exporter's probe, capture evidence first."""

from __future__ import annotations

import time

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
    leaves its failing clip (the exporter keeps the evidence of a failed probe). Never fails the job:
    evidence is a by-product, and `seconds` bounds how long the restart waits for it."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`capture evidence: synthesis, semantic, quality (at most 10s)`."""
        return f"capture evidence: {', '.join(step.modules)} (at most {step.seconds:g}s)"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Probe each module once, while time is left; the output says which were red."""
        deadline = time.monotonic() + step.seconds
        seen: dict[str, str] = {}
        for module in step.modules:
            if time.monotonic() >= deadline:
                seen[module] = "skipped (time bound)"
                continue
            try:
                answer = httpx.get(f"{ctx.config.exporter_url.rstrip('/')}/probe", params={"module": module},
                                   timeout=max(0.1, deadline - time.monotonic()))
            except httpx.HTTPError as exc:
                seen[module] = f"not run ({exc.__class__.__name__})"
                continue
            verdict = probe_succeeded(answer.text)
            seen[module] = {True: "green", False: "red"}.get(verdict, f"not run (HTTP {answer.status_code})")
        red = [m for m, state in seen.items() if state == "red"]
        summary = "; ".join(f"{m} {state}" for m, state in seen.items())
        note = "the exporter keeps the failing clips" if red else "no probe failed: no clip to keep"
        return StepOutcome(f"{summary}: {note}", {"capture": seen})
