"""The heavy tier's cache step."""

from __future__ import annotations

from tts_sentinel.receiver.config import Step
from tts_sentinel.receiver.heavy import clear_cache
from tts_sentinel.receiver.steps.base import NoComponent, StepContext, StepOutcome


class ClearCacheStep(NoComponent):
    """Delete what is inside the target's cache_dir, never anything outside it."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`clear cache dir /tmp/qwen3-tts-cache`."""
        return f"clear cache dir {ctx.target.cache_dir}"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Clear it (nothing configured: nothing to do)."""
        if ctx.target.cache_dir is None:
            return StepOutcome("no cache_dir configured; nothing to clear")
        return StepOutcome(clear_cache(ctx.target.cache_dir))
