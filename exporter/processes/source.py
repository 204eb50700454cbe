"""One shape for every process-manager source: `read()` returns the manager's view of each component.

A source reads; it exports nothing. The collector turns a reading into metric families
at scrape time. `restarts` counts the restarts the manager made on its own after the
process exited unasked; a stop and start that someone asked for (the receiver's
remediation, an operator) is not a crash and is left out wherever the manager can tell.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

COMPONENTS = ("web", "inference")


class SourceError(Exception):
    """The manager could not be read. `reason` becomes the label of tts_process_source_up; the text says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ProcessStatus:
    """What the process manager says about one process of a component (a pod, for Kubernetes)."""

    component: str
    name: str
    up: bool
    state: str
    restarts: int | None = None
    last_exit_code: int | None = None
    start_time_seconds: float | None = None
    # The manager holds off restarting after repeated crashes, or gave up (FATAL, CrashLoopBackOff, ...).
    backoff: bool = False


@dataclass
class Reading:
    """One read of a source. `note` is a reason label for a source that answers but sees less than usual."""

    processes: list[ProcessStatus] = field(default_factory=list)
    note: str = ""


class ProcessSource(Protocol):
    """A process manager, picked from `exporter.processes.kind` by name."""

    kind: str
    # True when restarts are found by watching between scrapes (supervisord has no counter).
    needs_polling: bool

    def read(self) -> Reading:
        """The manager's view now; raises SourceError when it cannot be read."""
        ...


def exit_code_of_signal(name_or_number: str | int) -> int:
    """A death by signal as a shell reports it: 128 + the signal number (SIGSEGV -> 139)."""
    if isinstance(name_or_number, int) or name_or_number.isdigit():
        return 128 + int(name_or_number)
    return 128 + int(signal.Signals[name_or_number])


def unix_time(text: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (nanoseconds allowed); None for empty or year-1 zero times."""
    if not text or text.startswith("0001-01-01"):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
