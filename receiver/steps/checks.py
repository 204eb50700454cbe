"""Steps that change nothing: wait a while, verify through the exporter's probe."""

from __future__ import annotations

from tts_sentinel.receiver.config import Step
from tts_sentinel.receiver.steps.base import NoComponent, StepContext, StepFailed, StepOutcome


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
