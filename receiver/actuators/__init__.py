"""Actuators: one small class per kind behind `Actuator`, picked by the target's `actuator` name."""

from __future__ import annotations

from receiver.actuators.base import Actuator, ActuatorError
from receiver.config import TargetConfig


def build_actuator(target: TargetConfig, labels: dict[str, str] | None = None) -> Actuator:
    """The actuator named in the target's config; `labels` reach only the command actuator."""
    if target.actuator == "supervisord":
        from receiver.actuators.supervisord import SupervisordActuator

        return SupervisordActuator(target.supervisord)
    if target.actuator == "systemd":
        from receiver.actuators.systemd import SystemdActuator

        return SystemdActuator(target.systemd)
    if target.actuator == "docker":
        from receiver.actuators.docker import DockerActuator

        return DockerActuator(target.docker)
    if target.actuator == "command":
        from receiver.actuators.command import CommandActuator

        return CommandActuator(target.command, labels or {})
    if target.actuator == "kubernetes":
        from receiver.actuators.kubernetes import KubernetesActuator

        return KubernetesActuator(target.kubernetes)
    raise ActuatorError(f"unknown actuator {target.actuator!r}")


__all__ = ["Actuator", "ActuatorError", "build_actuator"]
