"""The steps one job runs: its tier's steps, what the incident's earlier rungs acted on and
verified (an escalation never drops a component), and the probes its alerts name."""

from __future__ import annotations

import re

from tts_sentinel.receiver.config import ReceiverConfig, Step
from tts_sentinel.receiver.records import Incident, Job
from tts_sentinel.receiver.steps import step_action

_MODULE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_TRAILING = ("wait", "verify")


def build_plan(config: ReceiverConfig, job: Job, incident: Incident | None) -> list[Step]:
    """The job's steps, in order."""
    steps = list(config.tiers.get(job.tier, []))
    if incident is not None:
        steps = _carry_components(steps, incident.components)
        steps += _verifications(steps, [s.module for t in incident.tiers for s in config.tiers.get(t, [])
                                        if s.action == "verify"])
    return steps + _alert_verifications(job, steps)


def components_of(steps: list[Step]) -> list[str]:
    """The service components the steps act on, in first-touched order."""
    out: list[str] = []
    for step in steps:
        for component in step_action(step.action).components(step):
            if component not in out:
                out.append(component)
    return out


def is_module_name(text: str) -> bool:
    """Whether a label value can name a probe module (it becomes part of a URL)."""
    return _MODULE_NAME.match(text) is not None


def verify_modules(steps: list[Step]) -> list[str]:
    """The probe modules the steps verify."""
    return [step.module for step in steps if step.action == "verify"]


def _carry_components(steps: list[Step], earlier: list[str]) -> list[Step]:
    """A restart for every component an earlier rung acted on that these steps leave alone,
    placed before the trailing wait and verify steps (so the verification sees it)."""
    missing = [c for c in earlier if c not in components_of(steps)]
    if not missing:
        return steps
    cut = len(steps)
    while cut > 0 and steps[cut - 1].action in _TRAILING:
        cut -= 1
    carried = [Step(action="restart", component=c) for c in missing]  # type: ignore[arg-type]
    return steps[:cut] + carried + steps[cut:]


def _verifications(steps: list[Step], modules: list[str]) -> list[Step]:
    have = set(verify_modules(steps))
    extra: list[Step] = []
    for module in modules:
        if module not in have and is_module_name(module):
            have.add(module)
            extra.append(Step(action="verify", module=module))
    return extra


def _alert_verifications(job: Job, steps: list[Step]) -> list[Step]:
    """Extra verify steps for the probe modules the alerts name in their `verify` label.

    The tier's own verification checks what the tier restarts (L1 for light, L2 for medium);
    an alert raised by another probe must see that probe green too, or the action did not
    fix what was broken (e.g. a light restart for an L2 failure that L1 never saw).
    """
    return _verifications(steps, job.verify_labels)
