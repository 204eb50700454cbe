"""The one interface every actuator implements: act on the web front or the inference service."""

from __future__ import annotations

from typing import Protocol

COMPONENTS = ("web", "inference")


class ActuatorError(Exception):
    """An action that did not happen; the message says why, for the journal."""


class Actuator(Protocol):
    """Stop, start, restart or signal one component of a target. Each returns a short output text."""

    kind: str

    def restart(self, component: str) -> str:
        """Restart `component` ("web" or "inference")."""
        ...

    def stop(self, component: str) -> str:
        """Stop `component`; stopping a stopped component is not an error."""
        ...

    def start(self, component: str) -> str:
        """Start `component`; starting a running component is not an error."""
        ...

    def signal(self, component: str, signame: str) -> str:
        """Send a signal (e.g. "SIGUSR1") to the main process of `component`."""
        ...


def component_name(component: str, web: str, inference: str) -> str:
    """The configured name (program, unit, container, deployment) of "web" or "inference"."""
    if component == "web":
        return web
    if component == "inference":
        return inference
    raise ActuatorError(f"unknown component {component!r}; components are web and inference")


def signal_name(signame: str) -> str:
    """Normalise "USR1"/"SIGUSR1" to "SIGUSR1"; raise ActuatorError for anything that is not a signal."""
    import signal as _signal

    name = signame.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if not hasattr(_signal.Signals, name) or name.startswith("SIG_"):
        raise ActuatorError(f"{signame!r} is not a signal name")
    return name
