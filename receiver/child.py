"""The front's child processes (the worker process, the intake process): spawn, ready, respawn, stop.

Each child is `python -m tts_sentinel.receiver.workermain FD ROLE` with one end of a private socket pair
as FD. The front sends the pickled start-up (`S`: its role, the service's arguments, logging, the
front's pid) and waits for `R` (ready) or `E` (what failed). A child that dies is spawned again
with a back-off; while it is down `dead()` names it (/healthz) and the subclass answers for it.
Children ignore SIGINT and SIGTERM (the front decides when they stop) and exit at once at the
socket's end of file: a SIGKILLed front leaves nothing acting behind it.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

FRAME = struct.Struct("!cI")  # kind, length
READY_SECONDS = 120.0  # a child that is not ready by then is killed (and respawned)
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
INTERPRETER = "/proc/self/exe" if os.path.exists("/proc/self/exe") else sys.executable


def send_frame(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    """One framed message: a kind byte, a length, the payload."""
    sock.sendall(FRAME.pack(kind, len(payload)) + payload)


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes]:
    """The next framed message; raises EOFError when the other end closed."""
    kind, length = FRAME.unpack(_recv_exactly(sock, FRAME.size))
    return kind, _recv_exactly(sock, length)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            raise EOFError("the other process closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class ChildProcess:
    """One child of the front. Subclasses name it (`what`), say what its death means
    (`while_down`), how to ask it to stop (`_send_stop`) and what to do with a new channel
    (`_attached`) or a lost one (`_detached`)."""

    role = "worker"  # what the child runs (its start-up says it; its command line shows it to `ps`)
    what = "child process"
    while_down = "it is started again"

    def __init__(self, startup: dict[str, Any]) -> None:
        self.startup = startup  # what the child builds its ReceiverService from (pickled)
        self.restarts = 0
        self._lock = threading.Lock()  # the channel's writes (and its swap on a respawn): short
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Spawn the child and wait until it is ready; RuntimeError when it cannot start."""
        self._spawn()
        self._thread(f"{self.what.replace(' ', '-')}-monitor", self._monitor)

    def _thread(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the child to finish and stop (killed past `timeout`)."""
        self._stop.set()
        with self._lock:
            proc, sock = self._proc, self._sock
            if sock is not None:
                try:
                    self._send_stop(sock)
                except OSError:
                    pass
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("%s %d did not stop within %.0f s; killed", self.what, proc.pid, timeout)
                proc.kill()
                proc.wait()
        self._stopped()
        if sock is not None:
            sock.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def dead(self) -> list[str]:
        """['process'] while the child is not running, else []; also a dead helper thread."""
        proc = self._proc
        problems = [] if proc is not None and proc.poll() is None else ["process"]
        return problems + [t.name for t in self._threads if not t.is_alive() and not self._stop.is_set()]

    # -- for subclasses -------------------------------------------------------------------------
    def _send_stop(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def _attached(self, sock: socket.socket) -> None:
        """A ready child's channel (called before it is published to other threads)."""

    def _detached(self) -> None:
        """The child died: its channel is closed."""

    def _stopped(self) -> None:
        """The child ended after `stop` (or was killed)."""

    # -- spawn and respawn ----------------------------------------------------------------------
    def _spawn(self) -> None:
        front, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-m", "tts_sentinel.receiver.workermain", str(child.fileno()), self.role]
        try:
            # The interpreter that runs us, by /proc/self/exe: a receiver dropped to an unprivileged
            # user may not traverse the path sys.executable links to (a venv on a python under
            # /root); argv[0] stays sys.executable, so the child finds the same venv.
            proc = subprocess.Popen(argv, executable=INTERPRETER, pass_fds=(child.fileno(),),
                                    stdin=subprocess.DEVNULL)
        except OSError as exc:
            front.close()
            raise RuntimeError(f"cannot start the {self.what}: {exc}") from exc
        finally:
            child.close()
        try:
            send_frame(front, b"S", pickle.dumps(self.startup))
            front.settimeout(READY_SECONDS)
            kind, payload = recv_frame(front)
            front.settimeout(None)
            if kind != b"R":
                raise RuntimeError(payload.decode("utf-8", "replace") or f"unexpected reply {kind!r}")
        except (OSError, EOFError, RuntimeError) as exc:
            front.close()
            proc.kill()
            code = proc.wait()
            raise RuntimeError(f"the {self.what} did not start (exit code {code}): {exc}") from exc
        self._attached(front)
        with self._lock:
            self._proc, self._sock = proc, front
        log.info("%s %d ready: %s", self.what, proc.pid, payload.decode("utf-8", "replace"))

    def _monitor(self) -> None:
        failures = 0
        while not self._stop.is_set():
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            if self._stop.is_set():
                return
            with self._lock:
                if self._sock is not None:
                    self._sock.close()
                self._proc, self._sock = None, None
            self._detached()
            delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
            log.error("%s %d exited with code %s; %s (a new one in %.0f s)", self.what, proc.pid, code,
                      self.while_down, delay)
            if self._stop.wait(delay):
                return
            try:
                self._spawn()
            except RuntimeError as exc:
                failures += 1
                log.error("%s", exc)
                self._proc = proc  # wait() on the dead one returns at once: the loop retries after its back-off
                continue
            failures = 0
            self.restarts += 1


class ChildMetrics(Collector):
    """A child's metric families, read from it at each scrape (`families`: None when it does not
    answer), and its state: `tts_receiver_<role>_up` and `tts_receiver_<role>_restarts_total`."""

    def __init__(self, child: ChildProcess, families: Callable[[], list[Metric] | None], does: str) -> None:
        self.child = child
        self.families = families
        self.does = does  # what the child does, for the help texts: "runs the jobs"

    def collect(self) -> Iterator[Metric]:
        families = self.families()
        role = self.child.role
        up = GaugeMetricFamily(f"tts_receiver_{role}_up",
                               f"1 when the {role} process that {self.does} answers, 0 when it does not.")
        up.add_metric([], 0.0 if families is None else 1.0)
        yield up
        yield CounterMetricFamily(f"tts_receiver_{role}_restarts",
                                  f"{role.capitalize()} processes started again after one died.",
                                  value=self.child.restarts)
        if families is not None:
            yield from families


def role_of(pid: int) -> str:
    """The role a running child shows at the end of its command line (`... workermain FD ROLE`);
    "" when the process is gone (Linux /proc)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return ""
    return argv[-1].decode("utf-8", "replace")


def startup_of(role: str, service_kwargs: dict[str, Any], log_format: str, log_level: str) -> dict[str, Any]:
    """What a child process needs: its role, the service's arguments, logging, and its parent's pid."""
    return {"role": role, "service": service_kwargs, "log_format": log_format, "log_level": log_level,
            "parent": os.getpid()}
