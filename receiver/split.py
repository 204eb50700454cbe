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
import pickle
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client.metrics_core import Metric

from tts_sentinel.receiver.child import ChildProcess, recv_frame

log = logging.getLogger(__name__)


class WorkerProcess(ChildProcess):
    """The front's handle on its worker process: start, wake, metrics, stop, respawn."""

    what = "worker process"
    while_down = "its queued and interrupted jobs resume in the next one"

    def __init__(self, startup: dict[str, Any], housekeeping: Callable[[], object] | None = None,
                 housekeeping_seconds: float = 2.0) -> None:
        super().__init__(startup)
        self.housekeeping = housekeeping  # the journal's housekeeping, run by the front
        self.housekeeping_seconds = housekeeping_seconds
        self._request = threading.Lock()  # one metrics request at a time (its answer is read under it)

    def start(self) -> None:
        """Spawn the worker process and wait until it is ready; RuntimeError when it cannot start."""
        super().start()
        self._thread("journal-housekeeping", self._housekeep)

    def _send_stop(self, sock: socket.socket) -> None:
        sock.sendall(b"s\n")  # stop after the running jobs

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
