"""Steps that act on the service's processes through the target's actuator."""

from __future__ import annotations

from tts_sentinel.receiver.config import Step
from tts_sentinel.receiver.steps.base import StepContext, StepOutcome, components_of


class ReloadStep:
    """The light tier's action: SIGUSR1 when the web front hot-reloads, a restart otherwise."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`signal SIGUSR1 web via supervisord (hot_reload=True)` or `restart ...`."""
        how = f"signal {step.signal}" if ctx.target.hot_reload else "restart"
        return f"{how} {step.component} via {ctx.target.actuator} (hot_reload={ctx.target.hot_reload})"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Signal or restart the component."""
        actuator = ctx.require_actuator()
        if ctx.target.hot_reload:
            return StepOutcome(actuator.signal(step.component, step.signal))
        return StepOutcome(actuator.restart(step.component))

    def components(self, step: Step) -> tuple[str, ...]:
        """The component it reloads."""
        return components_of(step)


class ComponentStep:
    """restart, stop or start one component, or both (`all`: stop web first, start inference first)."""

    verb = ""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`stop web+inference via supervisord`."""
        return f"{self.verb} {'+'.join(components_of(step))} via {ctx.target.actuator}"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Call the actuator's verb for each component, in order."""
        actuator = ctx.require_actuator()
        act = getattr(actuator, self.verb)
        return StepOutcome("; ".join(act(c) for c in self.order(step)))

    def order(self, step: Step) -> tuple[str, ...]:
        """The components in the order the verb touches them."""
        return components_of(step)

    def components(self, step: Step) -> tuple[str, ...]:
        """The components it touches."""
        return components_of(step)


class RestartStep(ComponentStep):
    """Restart a component."""

    verb = "restart"


class StopStep(ComponentStep):
    """Stop a component (stopping a stopped one is fine)."""

    verb = "stop"


class StartStep(ComponentStep):
    """Start a component; with `all`, inference first, then the web front that calls it."""

    verb = "start"

    def order(self, step: Step) -> tuple[str, ...]:
        """Inference before web."""
        return tuple(reversed(components_of(step)))


class SignalStep:
    """Send a signal to the main process of one component."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`signal SIGUSR1 web via systemd`."""
        return f"signal {step.signal} {step.component} via {ctx.target.actuator}"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Signal it."""
        return StepOutcome(ctx.require_actuator().signal(step.component, step.signal))

    def components(self, step: Step) -> tuple[str, ...]:
        """The component it signals."""
        return components_of(step)
