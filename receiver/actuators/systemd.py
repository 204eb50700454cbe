"""Systemd actuator: `systemctl` with an argv list (never a shell)."""

from __future__ import annotations

import subprocess

from tts_sentinel.managers import SystemdConfig
from tts_sentinel.receiver.actuators.base import ActuatorError, component_name, signal_name


class SystemdActuator:
    """Acts on the units named in the target's `systemd` section."""

    kind = "systemd"

    def __init__(self, config: SystemdConfig) -> None:
        self.config = config

    def unit(self, component: str) -> str:
        """The systemd unit of a component."""
        return component_name(component, self.config.web_unit, self.config.inference_unit)

    def _systemctl(self, *args: str) -> str:
        argv = [self.config.systemctl, *args]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.config.timeout_seconds)
        except subprocess.TimeoutExpired:
            raise ActuatorError(f"{' '.join(argv)} did not finish in {self.config.timeout_seconds:g}s") from None
        except OSError as exc:
            raise ActuatorError(f"cannot run {argv[0]}: {exc}") from None
        output = (proc.stdout + proc.stderr).strip()
        if proc.returncode != 0:
            raise ActuatorError(f"{' '.join(argv)} exited {proc.returncode}: {output[-300:]}")
        return f"{' '.join(argv)}: ok" + (f" ({output[-200:]})" if output else "")

    def restart(self, component: str) -> str:
        """`systemctl restart UNIT`."""
        return self._systemctl("restart", self.unit(component))

    def stop(self, component: str) -> str:
        """`systemctl stop UNIT`."""
        return self._systemctl("stop", self.unit(component))

    def start(self, component: str) -> str:
        """`systemctl start UNIT`."""
        return self._systemctl("start", self.unit(component))

    def signal(self, component: str, signame: str) -> str:
        """`systemctl kill --kill-whom=main --signal=SIG UNIT`: the main process only (hot reload)."""
        return self._systemctl("kill", "--kill-whom=main", f"--signal={signal_name(signame)}", self.unit(component))
