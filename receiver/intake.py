"""POST /alerts' admissions, in one thread and in batches.

The HTTP loop hands each validated payload to the intake thread and awaits the answer. The
thread admits what has queued up in ONE journal transaction (a savepoint per payload, so one
that fails leaves the others), and hands the batch to the answer thread, which waits for the
fsync covering that commit and only then answers the posts and wakes the targets' workers: a
202 still means "on disk". Meanwhile the intake admits the next batch (the fsync, ~1-3 ms on our
VMs, no longer stalls it). A post whose every firing a post ahead of it is admitting right now
(the HA peer's copy, sent at the same instant) waits for that one and is answered from memory.

Why: a sync endpoint costs a thread-pool hop per post (anyio's to_thread, ~0.7 ms of CPU under
the GIL, more than the admission of a duplicate), and concurrent posts then queued on the journal
lock one by one. One thread, batches and one answer per batch to the loop do the same work for a
fraction of the CPU (bench/receiver_storm.py). Admissions were already serialized by the journal
lock, so nothing that ran concurrently before now runs one after the other. One transaction per
batch takes the writers' lock (shared with the worker process) once, not once per payload.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tts_sentinel.receiver.admission import Admission, AlertAdmission
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.keys import Key
from tts_sentinel.receiver.payload import WebhookPayload

log = logging.getLogger(__name__)

Outcome = Admission | BaseException


class Sink(Protocol):
    """Where a batch's answers go once on disk: the HTTP loop's futures, or the channel back to the
    front when the intake runs in a process of its own (receiver/intake_process.py)."""

    def deliver(self, answers: list[tuple[Any, Outcome]]) -> None:
        """(ticket, outcome) of every post of one batch that came through this sink."""


Item = tuple[WebhookPayload, Sink, Any]  # the payload, where its answer goes, and its ticket there


class LoopSink:
    """Answers settle asyncio futures (the tickets) on their event loop, one wake-up per batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def deliver(self, answers: list[tuple[Any, Outcome]]) -> None:
        """Settle the futures in the loop's thread."""
        try:
            self.loop.call_soon_threadsafe(settle, answers)
        except RuntimeError:  # the loop closed (shutdown): nobody waits for these answers
            log.warning("alert intake: %d answers for a closed event loop", len(answers))


class AsyncAdmissions:
    """The HTTP loop's side of the intake: `await admit(payload)`, the payload's jobs on disk
    (sqlite3.Error if not). A post whose every firing a post ahead of it is admitting right now (the
    HA peer's copy) waits for that one and is answered from memory. Subclasses `_submit` the rest:
    to the intake thread here, or to the intake process."""

    def __init__(self, admission: AlertAdmission) -> None:
        self.admission = admission
        # firing key -> the future of the post admitting it now (the event loop's thread only)
        self._inflight: dict[Key, asyncio.Future[Admission]] = {}

    async def admit(self, payload: WebhookPayload, keys: list[Key] | None = None,
                    body: bytes | None = None) -> Admission:
        """Persist the payload's jobs; raises sqlite3.Error when the journal cannot be written.

        `keys` (its firing keys, see `AlertAdmission.firing_keys`): when a post ahead of this one
        carries every one of them and is still being admitted (the HA peer's copy, sent at the same
        instant), this one waits for it and is answered from memory, a duplicate of each, instead
        of queueing a second admission of the same firings. `body`: the JSON the payload was read
        from, when there is one (the intake process reads it again instead of a pickle)."""
        loop = asyncio.get_running_loop()
        if keys:
            ahead = {self._inflight.get(key) for key in keys}
            if None not in ahead and all(f.get_loop() is loop for f in ahead):  # type: ignore[union-attr]
                await asyncio.wait(ahead)  # type: ignore[arg-type]
                again = self.admission.from_memory(payload, keys)
                if again is not None:
                    return again
        future: asyncio.Future[Admission] = loop.create_future()
        if keys:
            for key in keys:
                self._inflight.setdefault(key, future)
            future.add_done_callback(lambda done: self._landed(keys, done))
        self._submit(payload, body, loop, future)
        return await future

    def _landed(self, keys: list[Key], future: asyncio.Future[Admission]) -> None:
        for key in keys:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    def _submit(self, payload: WebhookPayload, body: bytes | None, loop: asyncio.AbstractEventLoop,
                future: asyncio.Future[Admission]) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        """Answer what is queued, then stop."""


class Intake(AsyncAdmissions):
    """The intake thread: batches of admissions, one transaction and one fsync each.

    `remember`: add a batch's keys to the journal's memory of keys on disk once its fsync is done
    (the HTTP front's fast path reads it; an intake process leaves that to its front)."""

    def __init__(self, admission: AlertAdmission, journal: Journal, wake: Callable[[str], None],
                 batch_size: int = 32, remember: bool = True) -> None:
        super().__init__(admission)
        self.journal = journal
        self.wake = wake
        self.remember = remember
        # A batch is what queued up while the last one was admitted, up to 32: under a burst of
        # new incidents (~1 ms each) bigger batches share the fsync, the writers' lock and the
        # triage read; a quiet receiver admits each post alone, at once.
        self.batch_size = batch_size
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._answerer: threading.Thread | None = None
        self._answers: queue.SimpleQueue[Landing | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.batches = 0  # how many batches ran (one fsync each at most)
        self._sinks: dict[asyncio.AbstractEventLoop, LoopSink] = {}

    def _submit(self, payload: WebhookPayload, body: bytes | None, loop: asyncio.AbstractEventLoop,
                future: asyncio.Future[Admission]) -> None:
        sink = self._sinks.get(loop)
        if sink is None:
            sink = self._sinks[loop] = LoopSink(loop)
        self.submit(payload, sink, future)

    def submit(self, payload: WebhookPayload, sink: Sink, ticket: Any) -> None:
        """Queue a payload; its outcome reaches `sink.deliver` with `ticket` once on disk."""
        self._start()
        self._queue.put((payload, sink, ticket))

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._answers = queue.SimpleQueue()
                self._answerer = threading.Thread(target=self._answer_loop, args=(self._answers,),
                                                  name="alert-answers", daemon=True)
                self._answerer.start()
                self._thread = threading.Thread(target=self._run, args=(self._answers,), name="alert-intake",
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Answer what is queued, then end the threads."""
        with self._lock:
            thread, answerer = self._thread, self._answerer
            self._thread = self._answerer = None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)
        if answerer is not None:
            answerer.join(timeout)

    def _run(self, answers: queue.SimpleQueue[Landing | None]) -> None:
        try:
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
                    answers.put(self._admit(batch))
                except Exception as exc:  # noqa: BLE001 - the thread must live on; every post gets an answer
                    log.exception("alert intake: a batch of %d payloads", len(batch))
                    answers.put(Landing(batch, [exc] * len(batch), 0, self.journal.keys.purges))
                if stop:
                    return
        finally:
            answers.put(None)  # the answerer ends after the last batch

    def _admit(self, batch: list[Item]) -> Landing:
        """The batch's admissions, committed (one transaction, a savepoint each); not yet on disk."""
        outcomes: list[Outcome] = []
        sync = self.journal.durability
        keys = self.journal.keys
        purges = keys.purges
        now = time.time()  # one clock for the batch: its new incidents share a triage window
        sync.begin_deferral()
        try:
            # One transaction (one commit, one turn of the writers' lock) for the batch, a savepoint
            # for each payload: a payload that fails leaves the others' writes in place.
            with self.journal.transaction() as j:
                keys.flush_duplicates()  # the duplicates answered from memory since the last batch
                for payload, _sink, _ticket in batch:
                    if not j._conn.in_transaction:  # SQLite ended it after an I/O error: the rest waits
                        outcomes.append(sqlite3.OperationalError("the batch's transaction was rolled back"))
                        continue
                    try:
                        with j.transaction(savepoint=True):
                            outcomes.append(self.admission.admit(payload, now))
                    except Exception as exc:  # noqa: BLE001 - handed to the request, which answers 503 or 500
                        outcomes.append(exc)
        except sqlite3.Error as exc:  # the commit failed: nothing of the batch is on disk
            outcomes = [exc] * len(batch)
        finally:
            seq = sync.take_deferral()
        self.batches += 1
        return Landing(batch, outcomes, seq, purges)

    def _answer_loop(self, answers: queue.SimpleQueue[Landing | None]) -> None:
        # While this thread waits for a batch's fsync, the intake admits the next one.
        while (landing := answers.get()) is not None:
            try:
                self._land(landing)
            except Exception:  # noqa: BLE001 - the thread must live on for the next batches
                log.exception("alert intake: answering a batch of %d payloads", len(landing.batch))

    def _land(self, landing: Landing) -> None:
        """Wait for the batch's fsync, then remember its keys, wake its targets and answer it."""
        batch, outcomes = landing.batch, landing.outcomes
        if landing.seq:
            try:
                self.journal.durability.wait(landing.seq)
            except OSError as err:
                failed = sqlite3.OperationalError(f"journal fsync failed: {err}")
                outcomes = [failed if isinstance(o, Admission) else o for o in outcomes]
        keys = self.journal.keys
        for outcome in outcomes:
            if isinstance(outcome, Admission):
                if self.remember:  # on disk now: their re-sends skip the journal
                    keys.mark_persisted(outcome.keys, landing.purges)
                for target in outcome.targets_to_wake:
                    self.wake(target)
        by_sink: dict[Sink, list[tuple[Any, Outcome]]] = {}
        for (_payload, sink, ticket), outcome in zip(batch, outcomes, strict=True):
            by_sink.setdefault(sink, []).append((ticket, outcome))
        for sink, answers in by_sink.items():
            sink.deliver(answers)


@dataclass
class Landing:
    """A batch admitted and committed, to be answered once commit `seq` is on disk."""

    batch: list[Item]
    outcomes: list[Outcome]
    seq: int  # 0: nothing to wait for
    purges: int  # the keys' purge count before the batch read them (see AlertKeys.mark_persisted)


def settle(settled: list[tuple[Any, Outcome]]) -> None:
    """Each (future, outcome): the future's result or exception (in the future's loop)."""
    for future, outcome in settled:
        if future.done():  # the client went away and the request was cancelled
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)  # type: ignore[arg-type]
