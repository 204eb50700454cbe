"""systemd: `systemctl show -p ... UNIT` (argv only, never a shell), one call per unit.

NRestarts counts only the restarts systemd made by itself under `Restart=` and is reset by
an explicit start, so a requested restart never looks like a crash.
"""

from __future__ import annotations

import subprocess
import time

from tts_sentinel.exporter.processes.config import SystemdSourceConfig
from tts_sentinel.exporter.processes.source import ProcessStatus, Reading, SourceError, exit_code_of_signal

PROPERTIES = (
    "NRestarts",
    "Result",
    "ExecMainStartTimestampMonotonic",
    "ExecMainCode",
    "ExecMainStatus",
    "LoadState",
    "ActiveState",
    "SubState",
)
# ExecMainCode is the waitid() si_code of the main process: exited, killed, dumped core.
_CLD_EXITED = 1
_CLD_KILLED = (2, 3)


def parse_show(text: str) -> dict[str, str]:
    """`Key=value` lines of `systemctl show` as a dict (values may themselves contain `=`)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


def wall_clock(monotonic_usec: int) -> float | None:
    """A CLOCK_MONOTONIC time in microseconds (systemd's ...Monotonic) as seconds since the epoch."""
    if monotonic_usec <= 0:
        return None
    return round(time.time() - (time.monotonic() - monotonic_usec / 1e6), 3)


class SystemdSource:
    """The units named in `exporter.processes.systemd`."""

    kind = "systemd"
    needs_polling = False

    def __init__(self, config: SystemdSourceConfig) -> None:
        self.config = config
        self.units = {"web": config.web_unit, "inference": config.inference_unit}

    def read(self) -> Reading:
        """Both units now."""
        return Reading(processes=[self._unit(component, unit) for component, unit in self.units.items()])

    def _show(self, unit: str) -> dict[str, str]:
        argv = [self.config.systemctl, "show", "-p", ",".join(PROPERTIES), unit]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.config.timeout_seconds)
        except subprocess.TimeoutExpired:
            raise SourceError(
                "unreachable", f"{' '.join(argv)} did not answer in {self.config.timeout_seconds:g}s"
            ) from None
        except OSError as exc:
            raise SourceError(
                "unreachable", f"cannot run {argv[0]} ({exc}); set exporter.processes.systemd.systemctl"
            ) from None
        if proc.returncode != 0:
            said = (proc.stderr or proc.stdout).strip()[-300:]
            raise SourceError("unreachable", f"{' '.join(argv)} exited {proc.returncode}: {said}")
        return parse_show(proc.stdout)

    def _unit(self, component: str, unit: str) -> ProcessStatus:
        props = self._show(unit)
        if props.get("LoadState") == "not-found":
            raise SourceError(
                "not_found", f"systemd has no unit {unit!r}; set exporter.processes.systemd.{component}_unit"
            )
        try:
            active, sub = props["ActiveState"], props["SubState"]
            code = int(props.get("ExecMainCode") or 0)
            status = int(props.get("ExecMainStatus") or 0)
            restarts = int(props["NRestarts"])
            started = int(props.get("ExecMainStartTimestampMonotonic") or 0)
        except (KeyError, ValueError) as exc:
            raise SourceError("bad_answer", f"systemctl show {unit} answered without a usable {exc}") from None
        last_exit = None
        if code == _CLD_EXITED:
            last_exit = status
        elif code in _CLD_KILLED:
            last_exit = exit_code_of_signal(status)
        return ProcessStatus(
            component=component,
            name=unit,
            up=active == "active",
            state=f"{active}/{sub}",
            restarts=restarts,
            last_exit_code=last_exit,
            start_time_seconds=wall_clock(started),
            # auto-restart lasts RestartSec between crash and restart; start-limit-hit means systemd gave up.
            backoff=sub == "auto-restart" or props.get("Result") == "start-limit-hit",
        )
