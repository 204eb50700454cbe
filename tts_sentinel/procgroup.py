"""Run a command as the leader of a process group of its own, and end the whole group.

A command (a restart script, `journalctl`, `docker logs`) may start children of its own;
a timeout or a stop that signalled only the command would leave them running. So every
command starts a new session, and every signal goes to its process group.
Standard library only: this module sits on the base floor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

# How long a killed group's output is still read: a grandchild that left the group may hold the pipe forever.
DRAIN_SECONDS = 5.0


def spawn_group(
    argv: Sequence[str], *, merge_stderr: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` (no shell) in a new session: its own process group, stdin closed, stdout a pipe.

    stderr joins stdout when `merge_stderr`, else it is discarded; `env` replaces the environment
    when given. Raises OSError when the program cannot be started.
    """
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.DEVNULL,
        env=None if env is None else dict(env),
        start_new_session=True,
    )


def signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> bool:
    """Send `sig` to every process in the group `proc` leads; False when the group is gone."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return False
    return True


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole group `proc` leads, grandchildren included; nothing happens when it is gone."""
    signal_group(proc, signal.SIGKILL)


def stop_group(proc: subprocess.Popen[bytes], grace_seconds: float = 5.0) -> None:
    """SIGTERM the group; SIGKILL it when the leader has not exited within `grace_seconds`.

    Returns once the leader is reaped, or after a second `grace_seconds` past the SIGKILL.
    A leader that already exited is left alone (its group is not signalled).
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None or not signal_group(proc, sig):
            return
        try:
            proc.wait(timeout=grace_seconds)
            return
        except subprocess.TimeoutExpired:
            continue


class GroupDeadline:
    """Kills the group `proc` leads once `seconds` have passed inside the `with` block.

    For a command whose output is read as it streams; afterwards `expired` says whether the
    deadline struck (then its exit status is the SIGKILL, not its own).
    """

    def __init__(self, proc: subprocess.Popen[bytes], seconds: float) -> None:
        self.proc = proc
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)

    def _expire(self) -> None:
        self.expired = True
        kill_group(self.proc)

    def __enter__(self) -> GroupDeadline:
        self._timer.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._timer.cancel()


@dataclass(frozen=True)
class GroupRun:
    """How a command run by `run_group` ended."""

    output: bytes  # stdout and stderr together; after a timeout, what it printed before the kill
    returncode: int | None  # None when a killed group could not be reaped within DRAIN_SECONDS
    timed_out: bool


def run_group(argv: Sequence[str], timeout_seconds: float, *, env: Mapping[str, str] | None = None) -> GroupRun:
    """Run `argv` in its own group to its end and collect its output (stderr merged into stdout).

    Past `timeout_seconds` the whole group is SIGKILLed and `timed_out` is set. Raises OSError
    when the program cannot be started.
    """
    proc = spawn_group(argv, env=env)
    with _LIVE_LOCK:
        _LIVE.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        try:
            out, _ = proc.communicate(timeout=DRAIN_SECONDS)
        except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipe
            out = b""
        return GroupRun(out, proc.returncode, timed_out=True)
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
        if _EXITING.is_set():  # killed by kill_running_groups: not the command's failure to report
            threading.Event().wait()
    return GroupRun(out, proc.returncode, timed_out=False)


# The groups `run_group` waits for now: a process that exits while some still run ends them first
# (its own timeout would never strike, and nothing would be left to say what they did).
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()
_EXITING = threading.Event()  # set by kill_running_groups: the threads waiting in run_group never return


def running_groups() -> list[str]:
    """What each group `run_group` is waiting for in this process runs (its argv)."""
    with _LIVE_LOCK:
        return [" ".join(map(str, p.args)) if isinstance(p.args, list) else str(p.args) for p in _LIVE]


def kill_running_groups() -> int:
    """SIGKILL every group `run_group` is waiting for in this process; how many were signalled.

    Only for a process about to exit: from now on no `run_group` returns (its thread waits for the
    exit), so nothing journals the killed commands as failed or goes on to a next step."""
    _EXITING.set()
    with _LIVE_LOCK:
        live = list(_LIVE)
    return sum(1 for proc in live if proc.poll() is None and signal_group(proc, signal.SIGKILL))
