"""Steps on the GPU: release it after inference stopped (medium), lower its power limit (derate)."""

from __future__ import annotations

from tts_sentinel.receiver.config import Step
from tts_sentinel.receiver.gpu import GpuUnavailable, reset_gpu
from tts_sentinel.receiver.steps.base import NoComponent, StepContext, StepOutcome


class ReleaseGpuStep(NoComponent):
    """The medium tier's GPU step: a reset only when configured, as root, with no process on it."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`release GPU 0: no reset configured`."""
        gpu = ctx.target.gpu
        how = "reset if no process holds it (root only)" if gpu.reset else "no reset configured"
        return f"release GPU {gpu.index}: {how}"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Reset the card, or say why it was skipped (skipping is not a failure)."""
        gpu = ctx.target.gpu
        if not gpu.reset:
            return StepOutcome("skipped: GPU reset not configured; stopping inference released its memory")
        if not ctx.is_root():
            return StepOutcome("skipped: GPU reset needs root")
        try:
            pids = ctx.gpu.processes(gpu.index)
        except GpuUnavailable as exc:
            return StepOutcome(f"skipped: {exc}")
        if pids:
            return StepOutcome(f"skipped: GPU {gpu.index} still has processes {pids}; a reset would kill them")
        return StepOutcome("reset: " + reset_gpu(gpu.nvidia_smi, gpu.index))


class DerateStep(NoComponent):
    """Lower the power limit to `derate_ratio` x the default, within the card's range (root only)."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`lower GPU 0 power limit to 0.8 x default`."""
        gpu = ctx.target.gpu
        return f"lower GPU {gpu.index} power limit to {gpu.derate_ratio:g} x default"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Set the new limit; the previous one is journaled so the resolve can restore it."""
        index = ctx.target.gpu.index
        if not ctx.is_root():
            raise GpuUnavailable("lowering the GPU power limit needs root; the receiver does not run as root")
        limits = ctx.gpu.power_limits(index)
        wanted = int(limits["default_mw"] * ctx.target.gpu.derate_ratio)
        new = max(limits["min_mw"], min(limits["max_mw"], wanted))
        if new >= limits["current_mw"]:
            return StepOutcome(
                f"power limit already {limits['current_mw']} mW <= {new} mW; nothing to lower",
                {"previous_limit_mw": None, "limits": limits},
            )
        ctx.gpu.set_power_limit(index, new)
        return StepOutcome(
            f"power limit {limits['current_mw']} -> {new} mW (card range {limits['min_mw']}-{limits['max_mw']})",
            {"previous_limit_mw": limits["current_mw"], "new_limit_mw": new, "limits": limits},
        )
