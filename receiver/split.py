"""The receiver as two processes: the HTTP front and a worker process that runs the jobs.

Why: the receiver is Python, one interpreter lock per process. In one process the workers'
jobs (their journal writes, triage, the actuator's fork and exec) took the lock from the HTTP
loop and the intake, and a webhook storm topped out near one core at ~1.5 ms of CPU per post
(bench/receiver_storm.py). Split, the front (HTTP, validation, intake, idempotency keys, the
journal's housekeeping) and the worker process (one thread per target, the incident sweeps) each
have a core. Everything they share is in the journal (SQLite in WAL mode serializes their writes
across processes; each fsyncs what it committed before acting on it), so no state is copied
between them. The channel is a private socket pair:

- front -> worker: the pickled start-up (config, token, logging), then `w <target>` lines (a
  job was queued), `m` (send your metrics), `s` (stop after the running jobs);
- worker -> front: framed replies, `R` (ready: interrupted jobs recovered, threads started) and
  `M` (the runner's metric families, pickled).

The front respawns a worker process that died (with a back-off; each respawn recovers the jobs
its predecessor left `running`, as a receiver restart does), and reports it on /healthz and in
`tts_receiver_worker_up` / `tts_receiver_worker_restarts_total`. The worker process ignores
SIGINT and SIGTERM (a terminal's Ctrl-C and systemd's stop reach both processes; the front stops
it after its last answer) and exits at once when the front is gone (the socket's end of file):
a SIGKILLed receiver leaves no process acting behind it, as before the split.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

FRAME = struct.Struct("!cI")  # kind, length
READY_SECONDS = 120.0  # a worker process that is not ready by then is killed (and respawned)
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


class WorkerProcess:
    """The front's handle on its worker process: start, wake, metrics, stop, respawn."""

    def __init__(self, startup: dict[str, Any], housekeeping: Callable[[], object] | None = None,
                 housekeeping_seconds: float = 2.0) -> None:
        self.startup = startup  # what the worker process builds its ReceiverService from (pickled)
        self.housekeeping = housekeeping  # the journal's housekeeping, run by the front
        self.housekeeping_seconds = housekeeping_seconds
        self.restarts = 0
        self._lock = threading.Lock()  # the channel's writes (and its swap on a respawn): short
        self._request = threading.Lock()  # one metrics request at a time (its answer is read under it)
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the worker process and wait until it is ready; RuntimeError when it cannot start."""
        self._spawn()
        for name, target in (("worker-process-monitor", self._monitor), ("journal-housekeeping", self._housekeep)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 15.0) -> None:
        """Let the running jobs end, then end the worker process (killed past `timeout`)."""
        self._stop.set()
        with self._lock:
            proc, sock = self._proc, self._sock
            if sock is not None:
                try:
                    sock.sendall(b"s\n")
                except OSError:
                    pass
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("worker process %d did not stop within %.0f s; killed", proc.pid, timeout)
                proc.kill()
                proc.wait()
        if sock is not None:
            sock.close()
        for thread in self._threads:
            thread.join(timeout)

    def dead(self) -> list[str]:
        """['process'] while the worker process is not running, else []; also a dead helper thread."""
        proc = self._proc
        problems = [] if proc is not None and proc.poll() is None else ["process"]
        return problems + [t.name for t in self._threads if not t.is_alive() and not self._stop.is_set()]

    def _spawn(self) -> None:
        front, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-m", "tts_sentinel.receiver.workermain", str(child.fileno())]
        try:
            # The interpreter that runs us, by /proc/self/exe: a receiver dropped to an unprivileged
            # user may not traverse the path sys.executable links to (a venv on a python under
            # /root); argv[0] stays sys.executable, so the child finds the same venv.
            proc = subprocess.Popen(argv, executable=INTERPRETER, pass_fds=(child.fileno(),),
                                    stdin=subprocess.DEVNULL)
        except OSError as exc:
            front.close()
            raise RuntimeError(f"cannot start the worker process: {exc}") from exc
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
            raise RuntimeError(f"the worker process did not start (exit code {code}): {exc}") from exc
        with self._lock:
            self._proc, self._sock = proc, front
        log.info("worker process %d ready: %s", proc.pid, payload.decode("utf-8", "replace"))

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
            delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
            log.error("worker process %d exited with code %s; its queued and interrupted jobs resume in a "
                      "new one in %.0f s", proc.pid, code, delay)
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

    def _housekeep(self) -> None:
        while not self._stop.wait(self.housekeeping_seconds):
            if self.housekeeping is None:
                return
            try:
                self.housekeeping()
            except Exception:  # noqa: BLE001 - it runs again on the next round
                log.exception("journal housekeeping")

    # -- the channel --------------------------------------------------------------------------
    def wake(self, target: str) -> None:
        """A job was queued for `target` (a worker process that misses it finds the job within its poll)."""
        with self._lock:
            sock = self._sock
            if sock is None:
                return
            try:
                sock.sendall(f"w {target}\n".encode())
            except OSError as exc:
                log.warning("cannot wake the worker of %s: %s; it polls the journal", target, exc)

    def runner_metrics(self, timeout: float = 5.0) -> list[Metric] | None:
        """The runner's metrics from the worker process, or None when it does not answer."""
        with self._request:
            with self._lock:
                sock = self._sock
                if sock is None:
                    return None
                try:
                    sock.sendall(b"m\n")
                except OSError as exc:
                    log.warning("cannot ask the worker process for its metrics: %s", exc)
                    return None
            ready, _, _ = select.select([sock], [], [], timeout)
            try:
                if not ready:
                    raise TimeoutError(f"no answer within {timeout:.0f} s")
                kind, payload = recv_frame(sock)
            except (OSError, EOFError, ValueError) as exc:
                log.warning("the worker process did not send its metrics: %s", exc)
                return None
        if kind != b"M":
            return None
        # Pickled metric families, from our own child over a socket pair nobody else holds (it runs
        # as the front does): parsing their text exposition cost the front ~6 ms of CPU a scrape.
        return pickle.loads(payload)  # noqa: S301


class WorkerMetrics(Collector):
    """The runner's metrics (actions, refusals, durations, jobs in progress, escalations) read from
    the worker process at each scrape, and the worker process's own state."""

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        runner = self.worker.runner_metrics()
        up = GaugeMetricFamily("tts_receiver_worker_up",
                               "1 when the worker process that runs the jobs answers, 0 when it does not.")
        up.add_metric([], 0.0 if runner is None else 1.0)
        yield up
        yield CounterMetricFamily("tts_receiver_worker_restarts",
                                  "Worker processes started again after one died.", value=self.worker.restarts)
        if runner is not None:
            yield from runner


def startup_of(service_kwargs: dict[str, Any], log_format: str, log_level: str) -> dict[str, Any]:
    """What the worker process needs: the service's arguments, logging, and its parent's pid."""
    return {"service": service_kwargs, "log_format": log_format, "log_level": log_level, "parent": os.getpid()}
