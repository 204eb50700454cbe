"""The intake in a process of its own: the front's HTTP loop hands it the posts the memory cannot
answer, it admits them in batches (receiver/intake.py) and answers each once it is on disk.

Why: with the intake a thread of the front, a storm's admissions (~1 ms of CPU for a new incident)
and the HTTP loop (~0.4 ms a post) shared one interpreter lock. At the start of a storm, when
most posts are new incidents, the front needed more than a core: posts queued and the p99
passed 100 ms, also with the worker process stopped. With admission replaced by a sleep that
releases the lock, the same start was answered within 10-20 ms (bench/receiver_storm.py). A
process of its own gives the admissions a core while the loop reads the next posts.

What stays in the front: HTTP, validation, the memory of the keys on disk (the re-sends it
answers without the journal), the HA copy that waits for the post admitting its firings, the
duplicate counts and the journal's housekeeping (the purges that the memory must follow), and
the wakes to the worker process. The intake process holds the journal's writes of admission.

The channel is a private socket pair, framed both ways (receiver/child.py):
- front -> intake: `J` (a request id and the post's JSON body, validated again there), `P` (a
  request id and the pickled payload, when there is no body), `m` (send your metrics), `s` (answer
  what is queued, then stop);
- intake -> front: `A` (a batch's answers, pickled: request id and the Admission, or the error),
  `M` (its metric families, pickled).

A post sent to an intake process that dies before answering gets a 503: Alertmanager sends it
again, and the journal's keys make the second send a duplicate if the first was committed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import queue
import socket
import sqlite3
import struct
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client.metrics_core import Metric

from tts_sentinel.receiver.admission import Admission, AlertAdmission
from tts_sentinel.receiver.child import ChildProcess, recv_frame, send_frame
from tts_sentinel.receiver.intake import AsyncAdmissions, Intake, LoopSink, Outcome
from tts_sentinel.receiver.keys import AlertKeys
from tts_sentinel.receiver.payload import WebhookPayload

log = logging.getLogger(__name__)

REQUEST = struct.Struct("!Q")  # a post's id on the channel


def _wire(outcome: Outcome) -> Admission | tuple[str, str]:
    """An outcome as it crosses the channel: the Admission, or (kind, message) of an error."""
    if isinstance(outcome, Admission):
        return outcome
    if isinstance(outcome, sqlite3.Error):
        return ("sqlite", str(outcome))
    return ("error", f"{type(outcome).__name__}: {outcome}")


def _unwire(answer: Admission | tuple[str, str]) -> Outcome:
    if isinstance(answer, Admission):
        return answer
    kind, message = answer
    # A journal error answers 503 in the front (admit_payload), anything else 500, as in one process.
    return sqlite3.OperationalError(message) if kind == "sqlite" else RuntimeError(message)


class IntakeProcess(ChildProcess, AsyncAdmissions):
    """The front's handle on its intake process: `await admit(payload)` as with the intake thread."""

    role = "intake"
    what = "intake process"
    while_down = "posts that need the journal are answered 503 until the next one is ready"

    def __init__(self, startup: dict[str, Any], admission: AlertAdmission, keys: AlertKeys,
                 wake: Callable[[str], None]) -> None:
        ChildProcess.__init__(self, startup)
        AsyncAdmissions.__init__(self, admission)
        self.keys = keys  # the front's memory of the keys on disk
        self.wake = wake  # the worker process's wake-up
        self.batches = 0  # answered batches (one fsync each at most)
        self._ids = itertools.count(1)
        self._generation = 0  # bumped by every spawn: a dead one's reader fails only its own posts
        # request id -> (future, its loop, the keys' purge count when sent, generation)
        self._pending: dict[int, tuple[asyncio.Future[Admission], asyncio.AbstractEventLoop, int, int]] = {}
        self._request = threading.Lock()  # one metrics request at a time
        self._metrics: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._readers: list[threading.Thread] = []

    # -- the HTTP loop's side -------------------------------------------------------------------
    def _submit(self, payload: WebhookPayload, body: bytes | None, loop: asyncio.AbstractEventLoop,
                future: asyncio.Future[Admission]) -> None:
        rid = next(self._ids)
        kind, data = (b"J", REQUEST.pack(rid) + body) if body is not None else \
            (b"P", REQUEST.pack(rid) + pickle.dumps(payload))
        with self._lock:
            sock = self._sock
            self._pending[rid] = (future, loop, self.keys.purges, self._generation)
            try:
                if sock is None:
                    raise OSError("not running")
                send_frame(sock, kind, data)
                return
            except OSError as exc:
                problem = exc
        if self._pending.pop(rid, None) is not None:
            future.set_exception(sqlite3.OperationalError(f"the intake process cannot take posts ({problem}); "
                                                          "retry later"))

    # -- the channel's reader -------------------------------------------------------------------
    def _attached(self, sock: socket.socket) -> None:
        self._generation += 1
        reader = threading.Thread(target=self._read, args=(sock, self._generation), name="intake-answers",
                                  daemon=True)
        reader.start()
        self._readers = [r for r in self._readers if r.is_alive()] + [reader]

    def _read(self, sock: socket.socket, generation: int) -> None:
        try:
            while True:
                kind, payload = recv_frame(sock)
                if kind == b"A":
                    # From our own child over a socket pair nobody else holds (it runs as we do).
                    self._answer(pickle.loads(payload))  # noqa: S301
                elif kind == b"M":
                    self._metrics.put(payload)
        except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            if not self._stop.is_set():
                log.warning("intake process channel closed: %s", exc)
        except Exception:  # noqa: BLE001 - a bug here must not leave posts waiting for ever
            log.exception("intake process channel: reading an answer failed; its posts are answered 503 "
                          "and the intake process is started again")
            proc = self._proc
            if proc is not None:
                proc.kill()  # nobody would read its answers: the monitor starts a new one with a new reader
        finally:
            self._fail(generation)

    def _answer(self, answers: list[tuple[int, Admission | tuple[str, str]]]) -> None:
        """A batch's answers: keys remembered and targets woken (the Admissions), futures settled."""
        self.batches += 1
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Outcome]]] = {}
        for rid, answer in answers:
            entry = self._pending.pop(rid, None)
            if entry is None:
                continue
            future, loop, purges, _generation = entry
            outcome = _unwire(answer)
            if isinstance(outcome, Admission):
                self.keys.mark_persisted(outcome.keys, purges)  # on disk now: their re-sends skip the journal
                for target in outcome.targets_to_wake:
                    self.wake(target)
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, settled in by_loop.items():
            LoopSink(loop).deliver(settled)

    def _fail(self, generation: int) -> None:
        """The posts a dead intake process did not answer: 503 (they may be committed: a re-send
        then finds their keys)."""
        lost = [rid for rid, entry in list(self._pending.items()) if entry[3] == generation]
        failed: list[tuple[int, Admission | tuple[str, str]]] = [
            (rid, ("sqlite", "the intake process stopped before answering; retry later")) for rid in lost]
        if failed:
            log.error("intake process: %d post(s) not answered (503; Alertmanager sends them again)", len(failed))
            self._answer(failed)

    # -- life cycle and metrics -----------------------------------------------------------------
    def _send_stop(self, sock: socket.socket) -> None:
        send_frame(sock, b"s", b"")  # answer what is queued, then stop

    def _stopped(self) -> None:
        for reader in self._readers:
            reader.join(5.0)

    def intake_metrics(self, timeout: float = 5.0) -> list[Metric] | None:
        """The intake process's metric families, or None when it does not answer."""
        with self._request:
            while not self._metrics.empty():  # a late answer to an earlier request that timed out
                self._metrics.get_nowait()
            with self._lock:
                sock = self._sock
                if sock is None:
                    return None
                try:
                    send_frame(sock, b"m", b"")
                except OSError as exc:
                    log.warning("cannot ask the intake process for its metrics: %s", exc)
                    return None
            try:
                payload = self._metrics.get(timeout=timeout)
            except queue.Empty:
                log.warning("the intake process did not send its metrics within %.0f s", timeout)
                return None
        return pickle.loads(payload)  # noqa: S301 - our own child, see _read


class ChannelSink:
    """In the intake process: a batch's answers go back to the front in one frame."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()

    def deliver(self, answers: list[tuple[Any, Outcome]]) -> None:
        """Send (request id, outcome) of each post of a batch."""
        self.send(b"A", pickle.dumps([(rid, _wire(outcome)) for rid, outcome in answers]))

    def send(self, kind: bytes, payload: bytes) -> None:
        """One frame to the front (lost when the front is gone: this process ends at its end of file)."""
        with self._lock:
            try:
                send_frame(self.sock, kind, payload)
            except OSError as exc:
                log.error("intake process: cannot answer the front: %s", exc)


def serve_intake(sock: socket.socket, intake: Intake, metrics: Callable[[], list[Metric]]) -> int:
    """The intake process's loop: the front's posts into the intake thread until `s` or end of file."""
    sink = ChannelSink(sock)
    while True:
        try:
            kind, payload = recv_frame(sock)
        except (OSError, EOFError):
            log.error("intake process: the receiver's front is gone; exiting (what was committed is in "
                      "the journal, and Alertmanager sends the rest again)")
            os._exit(75)
        if kind in (b"J", b"P"):
            (rid,) = REQUEST.unpack_from(payload)
            try:
                post = (WebhookPayload.model_validate_json(payload[REQUEST.size:]) if kind == b"J"
                        else pickle.loads(payload[REQUEST.size:]))  # noqa: S301 - from our own parent
            except Exception as exc:  # noqa: BLE001 - the front validated it; answered as an error, not lost
                sink.deliver([(rid, exc)])
                continue
            intake.submit(post, sink, rid)
        elif kind == b"m":
            sink.send(b"M", pickle.dumps(metrics()))
        elif kind == b"s":
            intake.stop()
            return 0
