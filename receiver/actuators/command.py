"""Command actuator: a configured argv (no shell), a hard timeout that kills the whole process group.

Alert labels never become arguments. Only labels named in `label_env` reach the program, as
`TTS_LABEL_<NAME>` environment variables, and only when their value matches the configured pattern.
"""

from __future__ import annotations

import os
import re

from tts_sentinel.procgroup import run_group
from tts_sentinel.receiver.actuators.base import ActuatorError, component_name, signal_name
from tts_sentinel.receiver.config import CommandConfig

OUTPUT_TAIL = 2000


class CommandActuator:
    """Runs `restart|stop|start|signal` argv lists from the target's `command` section."""

    kind = "command"

    def __init__(self, config: CommandConfig, labels: dict[str, str] | None = None) -> None:
        self.config = config
        self.labels = labels or {}

    def unit(self, component: str) -> str:
        """The unit name passed as the last argument."""
        return component_name(component, self.config.web_unit, self.config.inference_unit)

    def environment(self, operation: str, unit: str, signame: str = "") -> dict[str, str]:
        """A minimal environment: PATH, the operation, and the allowlisted, validated labels."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TTS_SENTINEL_OPERATION": operation,
            "TTS_SENTINEL_UNIT": unit,
        }
        if signame:
            env["TTS_SENTINEL_SIGNAL"] = signame
        pattern = re.compile(self.config.label_value_pattern)
        for name in self.config.label_env:
            value = self.labels.get(name)
            if value is not None and pattern.fullmatch(value):
                env[f"TTS_LABEL_{name.upper()}"] = value
        return env

    def _run(self, operation: str, component: str, signame: str = "") -> str:
        base = getattr(self.config, operation)
        if not base:
            raise ActuatorError(f"no `{operation}` command configured for this target")
        unit = self.unit(component)
        argv = [*base, unit]
        try:
            # A session of its own: on timeout the whole group goes, grandchildren included.
            done = run_group(argv, self.config.timeout_seconds, env=self.environment(operation, unit, signame))
        except OSError as exc:
            raise ActuatorError(f"cannot run {argv[0]}: {exc}") from None
        text = done.output.decode(errors="replace")[-OUTPUT_TAIL:]
        if done.timed_out:
            raise ActuatorError(
                f"{argv[0]} {operation} timed out after {self.config.timeout_seconds:g}s; "
                "process group killed" + (f": {text}" if text else "")
            )
        if done.returncode != 0:
            raise ActuatorError(f"{argv[0]} {operation} {unit} exited {done.returncode}: {text}")
        return f"{argv[0]} {operation} {unit}: ok" + (f"\n{text}" if text else "")

    def restart(self, component: str) -> str:
        """Run the `restart` argv with the unit appended."""
        return self._run("restart", component)

    def stop(self, component: str) -> str:
        """Run the `stop` argv with the unit appended."""
        return self._run("stop", component)

    def start(self, component: str) -> str:
        """Run the `start` argv with the unit appended."""
        return self._run("start", component)

    def signal(self, component: str, signame: str) -> str:
        """Run the `signal` argv; the signal name is in TTS_SENTINEL_SIGNAL."""
        return self._run("signal", component, signal_name(signame))
