"""Actuators: one small class per kind behind `Actuator`, picked by the target's `actuator` name.

Adding a kind: one file and one line in ACTUATORS.
"""

from __future__ import annotations

from collections.abc import Callable

from tts_sentinel.receiver.actuators.base import Actuator, ActuatorError
from tts_sentinel.receiver.actuators.command import CommandActuator
from tts_sentinel.receiver.actuators.docker import DockerActuator
from tts_sentinel.receiver.actuators.kubernetes import KubernetesActuator
from tts_sentinel.receiver.actuators.supervisord import SupervisordActuator
from tts_sentinel.receiver.actuators.systemd import SystemdActuator
from tts_sentinel.receiver.config import TargetConfig

# actuator name -> how to build it from the target (and the alert's labels, for `command` only)
ACTUATORS: dict[str, Callable[[TargetConfig, dict[str, str]], Actuator]] = {
    "supervisord": lambda target, _labels: SupervisordActuator(target.supervisord),
    "systemd": lambda target, _labels: SystemdActuator(target.systemd),
    "docker": lambda target, _labels: DockerActuator(target.docker),
    "command": lambda target, labels: CommandActuator(target.command, labels),
    "kubernetes": lambda target, _labels: KubernetesActuator(target.kubernetes),
}


def build_actuator(target: TargetConfig, labels: dict[str, str] | None = None) -> Actuator:
    """The actuator named in the target's config; `labels` reach only the command actuator."""
    if target.actuator not in ACTUATORS:
        raise ActuatorError(f"unknown actuator {target.actuator!r}; known: {', '.join(ACTUATORS)}")
    return ACTUATORS[target.actuator](target, labels or {})


__all__ = ["ACTUATORS", "Actuator", "ActuatorError", "build_actuator"]
