"""supervisord over XML-RPC: `getAllProcessInfo` for state, pid and start; its main log for exits.

supervisord keeps no restart counter, and autorestart spawns a crashed program again within
one turn of its loop, resetting `exitstatus`: a moment later getProcessInfo shows a healthy
process with a new pid. Its main log keeps what happened: every exit nobody asked for is a
line `exited: NAME (exit status 1; not expected)`, a requested stop is `stopped: NAME (...)`.
Counting the `exited:` lines counts the crashes and leaves out the receiver's own stop/start.
The log is read from its tail on every poll (once a second by default, as well as at scrape
time), so nothing depends on catching the short EXITED state.

A new pid that the log does not explain counts as a restart too. That is every restart,
requested ones included, where the main log is unreadable or empty (logfile=syslog, a pipe,
/dev/null); the reading then says so: `tts_process_source_up{reason="no_main_log"} 1`.
The lines need supervisord's default loglevel (info) or lower.
"""

from __future__ import annotations

import http.client
import re
import threading
import xmlrpc.client
from collections import deque
from typing import Any

from tts_sentinel.exporter.processes.config import SupervisordSourceConfig
from tts_sentinel.exporter.processes.source import COMPONENTS, ProcessStatus, Reading, SourceError, exit_code_of_signal
from tts_sentinel.managers import supervisord_proxy

# supervisor.xmlrpc.Faults: the main log is not a readable file.
_NO_FILE = 20
_FAILED = 30
TAIL_BYTES = 32 * 1024
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) [A-Z]+ (.*)$")
# `exited: NAME (exit status 1; not expected)` for an exit nobody asked for, `stopped: NAME (...)` for a stop.
_EVENT = re.compile(r"^(?P<what>exited|stopped): (?P<name>\S+) \((?P<how>.*?)(?:; (?:not )?expected)?\)$")
_EXIT_STATUS = re.compile(r"^exit status (\d+)")
_KILLED = re.compile(r"^terminated by (?:(SIG[A-Z0-9]+)|signal (\d+))")


def exit_code(how: str) -> int | None:
    """The exit code in supervisord's words: `exit status 1` -> 1, `terminated by SIGSEGV (core dumped)` -> 139."""
    if m := _EXIT_STATUS.match(how):
        return int(m.group(1))
    if m := _KILLED.match(how):
        try:
            return exit_code_of_signal(m.group(1) or m.group(2))
        except KeyError:
            return None
    return None


class SupervisordSource:
    """The programs named in `exporter.processes.supervisord`."""

    kind = "supervisord"
    needs_polling = True

    def __init__(self, config: SupervisordSourceConfig) -> None:
        self.config = config
        self.programs = {"web": config.web_program, "inference": config.inference_program}
        self._lock = threading.Lock()
        self._restarts = dict.fromkeys(COMPONENTS, 0)
        self._last_exit: dict[str, int] = {}
        self._processes: dict[str, tuple[int, int]] = {}  # component -> (pid, start) of its last live process
        self._cursor: str | None = None  # the last main-log line consumed; None before the first read
        # Event lines already taken, timestamp included: a supervisord whose stdout goes to its own
        # logfile (nodaemon=true) writes every line twice, and a copy is not a second crash.
        self._events: deque[str] = deque(maxlen=256)
        self._explained: dict[str, bool] = {}  # component -> a logged exit or stop awaits its new pid

    def _proxy(self) -> Any:
        try:
            return supervisord_proxy(self.config)
        except ValueError as exc:
            raise SourceError("denied", str(exc)) from None

    def read(self) -> Reading:
        """Process states now, with the exits logged since the last read counted as restarts."""
        with self._lock:
            infos = self._process_infos()
            lines = self._new_log_lines()
            self._count_exits(lines or [])
            for component, info in infos.items():
                pid, start = int(info.get("pid") or 0), int(info.get("start") or 0)
                seen = self._processes.get(component)
                # A new process that no exited/stopped line accounts for (no main log, loglevel above
                # info) counts as well.
                if pid and seen and seen != (pid, start) and not self._explained.pop(component, False):
                    self._restarts[component] += 1
                if pid:
                    self._processes[component] = (pid, start)
                if lines is None and info["statename"] in ("EXITED", "BACKOFF", "FATAL") and info.get("exitstatus"):
                    self._last_exit[component] = int(info["exitstatus"])
            return Reading(
                processes=[self._status(component, info) for component, info in infos.items()],
                note="" if lines is not None else "no_main_log",
            )

    def _status(self, component: str, info: dict[str, Any]) -> ProcessStatus:
        statename = str(info["statename"])
        return ProcessStatus(
            component=component,
            name=self.programs[component],
            up=statename == "RUNNING",
            state=statename.lower(),
            restarts=self._restarts[component],
            last_exit_code=self._last_exit.get(component),
            start_time_seconds=float(info["start"]) if info.get("start") else None,
            backoff=statename in ("BACKOFF", "FATAL"),
        )

    def _process_infos(self) -> dict[str, dict[str, Any]]:
        try:
            infos = self._proxy().supervisor.getAllProcessInfo()
        except xmlrpc.client.Fault as fault:
            raise SourceError("error", f"supervisord at {self.config.url}: {fault.faultString}") from None
        except xmlrpc.client.ProtocolError as exc:
            if exc.errcode == 401:
                raise SourceError(
                    "denied",
                    f"supervisord at {self.config.url} refused the credentials (401); set "
                    "exporter.processes.supervisord.username and password_file as in its [inet_http_server]",
                ) from None
            answer = f"{exc.errcode} {exc.errmsg}"
            raise SourceError("unreachable", f"supervisord at {self.config.url} answered {answer}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(
                "unreachable",
                f"supervisord at {self.config.url} does not answer ({exc}); "
                "check its [inet_http_server] or set exporter.processes.supervisord.url",
            ) from None
        by_name: dict[str, dict[str, Any]] = {}
        for info in infos:
            by_name[f"{info['group']}:{info['name']}"] = info
            by_name.setdefault(info["name"], info)
        out = {}
        for component, program in self.programs.items():
            if program not in by_name:
                known = ", ".join(sorted(i["name"] for i in infos)) or "none"
                raise SourceError(
                    "not_found",
                    f"supervisord has no program {program!r} (it runs: {known}); "
                    f"set exporter.processes.supervisord.{component}_program",
                )
            out[component] = by_name[program]
        return out

    def _read_tail(self) -> str | None:
        """The last TAIL_BYTES of the main log; None when supervisord has no readable main log."""
        proxy = self._proxy()
        # supervisord decodes the bytes as UTF-8 and fails when the tail starts inside a
        # character: one of four neighbouring starts is on a character boundary.
        for size in range(TAIL_BYTES, TAIL_BYTES - 4, -1):
            try:
                return str(proxy.supervisor.readLog(-size, 0))
            except xmlrpc.client.Fault as fault:
                if fault.faultCode in (_NO_FILE, _FAILED):
                    return None
                raise SourceError("error", f"supervisord readLog: {fault.faultString}") from None
            except xmlrpc.client.ProtocolError:
                continue
            except (OSError, http.client.HTTPException) as exc:
                raise SourceError(
                    "unreachable", f"supervisord at {self.config.url} stopped answering ({exc})"
                ) from None
        raise SourceError("bad_answer", "supervisord's main log could not be read as text")

    def _new_log_lines(self) -> list[str] | None:
        """Complete main-log lines written since the last read ([] on the first); None when there is no log to read."""
        tail = self._read_tail()
        if not tail:  # unreadable, or empty as /dev/null is
            if tail == "" and self._cursor is None:
                self._cursor = ""
            return None
        lines = tail.split("\n")
        lines.pop()  # the part after the last newline is still being written
        if len(tail.encode()) >= TAIL_BYTES - 3 and lines:
            lines.pop(0)  # the read began inside a line
        stamped = [line for line in lines if _LOG_LINE.match(line)]
        if self._cursor is None:
            # First read: older exits happened before we watched; they give the last exit code only.
            self._cursor = stamped[-1] if stamped else ""
            for line in stamped:
                self._note_line(line)
            return []
        new = self._after_cursor(stamped)
        if new:
            self._cursor = new[-1]
        return new

    def _after_cursor(self, stamped: list[str]) -> list[str]:
        cursor = self._cursor
        if not cursor:
            return stamped
        for index in range(len(stamped) - 1, -1, -1):
            if stamped[index] == cursor:
                return stamped[index + 1:]
        # Rotated, or more than TAIL_BYTES written since the last read: go by time.
        since = cursor[:23]
        return [line for line in stamped if line[:23] > since]

    def _count_exits(self, lines: list[str]) -> None:
        """Count the `exited:` lines as restarts; an exited or stopped line accounts for the next new pid."""
        for line in lines:
            noted = self._note_line(line)
            if noted is not None:
                component, what = noted
                self._explained[component] = True
                if what == "exited":
                    self._restarts[component] += 1

    def _note_line(self, line: str) -> tuple[str, str] | None:
        """(component, "exited"|"stopped") for such a line about one of our programs; keeps an exit's code."""
        m = _LOG_LINE.match(line)
        event = _EVENT.match(m.group(2)) if m else None
        if event is None or line in self._events:
            return None
        self._events.append(line)
        for component, program in self.programs.items():
            if event.group("name") == program.rsplit(":", 1)[-1]:
                code = exit_code(event.group("how"))
                if event.group("what") == "exited" and code is not None:
                    self._last_exit[component] = code
                return component, event.group("what")
        return None
