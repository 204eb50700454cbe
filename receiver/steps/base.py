"""The one shape every step action has: describe it in words, run it, name the components it acts on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tts_sentinel.receiver.actuators import Actuator
from tts_sentinel.receiver.config import ReceiverConfig, Step, TargetConfig
from tts_sentinel.receiver.gpu import NvmlGpu
from tts_sentinel.receiver.records import Job
from tts_sentinel.receiver.verification import ExporterVerifier

BOTH = ("web", "inference")


class StepFailed(Exception):
    """A step that failed; the job stops and escalates. `extra` goes to the journal entry."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.extra = extra or {}


@dataclass
class StepContext:
    """What a step may use: the target, its actuator (None in a dry run), the job, and the machine."""

    config: ReceiverConfig
    target: TargetConfig
    job: Job
    actuator: Actuator | None
    verifier: ExporterVerifier
    gpu: NvmlGpu
    is_root: Callable[[], bool]
    sleep: Callable[[float], None]

    def require_actuator(self) -> Actuator:
        """The actuator; only dry runs have none, and they never run a step."""
        if self.actuator is None:
            raise StepFailed("no actuator: this step cannot run in a dry run")
        return self.actuator


@dataclass
class StepOutcome:
    """What a step did: its output for people, and extra fields for the journal entry."""

    output: str
    extra: dict[str, Any] | None = None


class Action(Protocol):
    """One kind of step (`action:` in a tier's step list)."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """What the step would do, in words (the dry-run journal shows exactly this)."""
        ...

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Do it; raise StepFailed (or ActuatorError, GpuUnavailable, OSError) when it did not happen."""
        ...

    def components(self, step: Step) -> tuple[str, ...]:
        """The service components the step restarts, stops, starts or signals (none for the others)."""
        ...


def components_of(step: Step) -> tuple[str, ...]:
    """`all` means both components, in the order they stop."""
    return BOTH if step.component == "all" else (step.component,)


class NoComponent:
    """Mixin for steps that touch no service component (wait, verify, GPU, cache)."""

    def components(self, step: Step) -> tuple[str, ...]:
        """None."""
        return ()
