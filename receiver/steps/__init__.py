"""Step actions by name (the `action:` of a tier's step). Adding one: one class, one line here."""

from __future__ import annotations

from tts_sentinel.receiver.steps.base import Action, StepContext, StepFailed, StepOutcome
from tts_sentinel.receiver.steps.cache import ClearCacheStep
from tts_sentinel.receiver.steps.checks import CaptureStep, VerifyStep, WaitStep
from tts_sentinel.receiver.steps.gpu import DerateStep, ReleaseGpuStep
from tts_sentinel.receiver.steps.process import ReloadStep, RestartStep, SignalStep, StartStep, StopStep
from tts_sentinel.receiver.steps.version import SwitchVersionStep

STEP_ACTIONS: dict[str, Action] = {
    "reload": ReloadStep(),
    "restart": RestartStep(),
    "stop": StopStep(),
    "start": StartStep(),
    "signal": SignalStep(),
    "release_gpu": ReleaseGpuStep(),
    "wait": WaitStep(),
    "verify": VerifyStep(),
    "clear_cache": ClearCacheStep(),
    "derate": DerateStep(),
    "switch_version": SwitchVersionStep(),
    "capture": CaptureStep(),
}


def step_action(name: str) -> Action:
    """The action named `name` (the config allows only these names, so KeyError means a bug)."""
    if name not in STEP_ACTIONS:
        raise KeyError(f"unknown step action {name!r}; known: {', '.join(STEP_ACTIONS)}")
    return STEP_ACTIONS[name]


__all__ = ["STEP_ACTIONS", "Action", "StepContext", "StepFailed", "StepOutcome", "step_action"]
