"""POST /alerts' admissions, in one thread and in batches.

The HTTP loop hands each validated payload to the intake thread and awaits the answer. The
thread admits what has queued up (each payload in its own journal transactions, exactly as
`AlertAdmission.admit` does alone), then waits for ONE fsync covering all those commits, and only
then answers them and wakes the targets' workers: a 202 still means "on disk".

Why: a sync endpoint costs a thread-pool hop per post (anyio's to_thread, ~0.7 ms of CPU under
the GIL, more than the admission of a duplicate), and concurrent posts then queued on the journal
lock one by one. One thread, batches and one answer per batch to the loop do the same work for a
fraction of the CPU (bench/receiver_storm.py). Admissions were already serialized by the journal
lock, so nothing that ran concurrently before now runs one after the other.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable

from tts_sentinel.receiver.admission import Admission, AlertAdmission
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.payload import WebhookPayload

log = logging.getLogger(__name__)

Item = tuple[WebhookPayload, asyncio.AbstractEventLoop, "asyncio.Future[Admission]"]


class Intake:
    """`await intake.admit(payload)`: the payload's jobs, persisted and on disk (sqlite3.Error if not)."""

    def __init__(self, admission: AlertAdmission, journal: Journal, wake: Callable[[str], None],
                 batch_size: int = 8) -> None:
        self.admission = admission
        self.journal = journal
        self.wake = wake
        # Every post of a batch is answered after the last one's admission and the fsync: a new
        # incident costs a few ms to admit, so 8 keep that wait short; an fsync costs ~0.4 ms.
        self.batch_size = batch_size
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0  # how many batches ran (one fsync each at most)

    async def admit(self, payload: WebhookPayload) -> Admission:
        """Persist the payload's jobs; raises sqlite3.Error when the journal cannot be written."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Admission] = loop.create_future()
        self._start()
        self._queue.put((payload, loop, future))
        return await future

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="alert-intake", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Answer what is queued, then end the thread."""
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.batch_size:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._admit(batch)
            except Exception:  # noqa: BLE001 - the thread must live on; _admit answers every item itself
                log.exception("alert intake: a batch of %d payloads", len(batch))
            if stop:
                return

    def _admit(self, batch: list[Item]) -> None:
        outcomes: list[Admission | BaseException] = []
        sync = self.journal.durability
        keys = self.journal.keys
        purges = keys.purges
        now = time.time()  # one clock for the batch: its new incidents share a triage window
        sync.begin_deferral()
        try:
            keys.flush_duplicates()  # the duplicates answered from memory since the last batch, same fsync
            for payload, _loop, _future in batch:
                try:
                    outcomes.append(self.admission.admit(payload, now))
                except Exception as exc:  # noqa: BLE001 - handed to the request, which answers 503 or 500
                    outcomes.append(exc)
        finally:
            try:
                sync.end_deferral()
            except OSError as err:
                failed = sqlite3.OperationalError(f"journal fsync failed: {err}")
                outcomes = [failed if isinstance(o, Admission) else o for o in outcomes]
                outcomes += [failed] * (len(batch) - len(outcomes))
        self.batches += 1
        for outcome in outcomes:
            if isinstance(outcome, Admission):
                keys.mark_persisted(outcome.keys, purges)  # on disk now: their re-sends skip the journal
                for target in outcome.targets_to_wake:
                    self.wake(target)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Admission], object]]] = {}
        for (_payload, loop, future), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop closed (shutdown): nobody waits for these answers
                log.warning("alert intake: %d answers for a closed event loop", len(settled))


def _settle(settled: list[tuple[asyncio.Future[Admission], object]]) -> None:
    for future, outcome in settled:
        if future.done():  # the client went away and the request was cancelled
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]
