"""The rollback tier's switch: point the service at the previous known-good version."""

from __future__ import annotations

from tts_sentinel.receiver.config import Step
from tts_sentinel.receiver.rollback import rollback_preflight, switch_version
from tts_sentinel.receiver.steps.base import NoComponent, StepContext, StepOutcome


class SwitchVersionStep(NoComponent):
    """current -> versions/PREVIOUS (the restart and verify steps after it load and check it)."""

    def describe(self, step: Step, ctx: StepContext) -> str:
        """`switch /opt/tts/current to the previous known-good version in /opt/tts/versions`."""
        cfg = ctx.target.versions
        if ctx.target.actuator == "kubernetes":
            k8s = ctx.target.kubernetes
            return f"rollout undo {k8s.namespace}/{k8s.inference_deployment} to its previous revision"
        if ctx.target.actuator == "docker":
            return (f"recreate container {ctx.target.docker.inference_container} from the previous known-good "
                    "version's image (the old container is kept, stopped)")
        return f"switch {cfg.current_link} to the previous known-good version in {cfg.versions_dir}"

    def run(self, step: Step, ctx: StepContext) -> StepOutcome:
        """Re-check (the runner's preflight ran moments ago), switch, record; the plan goes to the journal."""
        plan = rollback_preflight(ctx.target)
        return StepOutcome(switch_version(ctx.target, plan), {"rollback": plan})
