"""The job threads' turns at the interpreter: at most a few of them run Python at once.

A worker has one thread per target. When a storm queues a job on most targets at the same time,
two hundred threads woken together fight over the interpreter lock: each journal statement and
each fsync hands it on, and the holder of the journal's writers' lock waits behind the others to
get it back. Measured on 250 jobs from 200 threads (2 CPUs): 4.4 ms of CPU per job, 2.4 of them
in the kernel, against 2.3 ms with four threads at a time, which also finished sooner.

So a job thread holds one of a few slots while it runs Python, and lends it while it waits on the
world: a step (a restart, a verification that polls for minutes), a probe, a page. A healing that
takes seconds never keeps another target's job from starting.

Never lent while the thread is inside a journal transaction: the threads queued for a slot may be
the ones waiting for that transaction's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Two: one thread runs Python while another is in a call that lets the interpreter go (an fsync,
# SQLite, a fork); more only brings back the fight they are here to end.
DEFAULT_SLOTS = 2


class JobSlots:
    """`with slots.held():` around a job thread's turn; `with slots.lent():` around its waits."""

    def __init__(self, size: int = DEFAULT_SLOTS, in_transaction: Callable[[], bool] = lambda: False) -> None:
        if size < 1:
            raise ValueError(f"job slots: need at least 1, got {size}")
        self.size = size
        self.in_transaction = in_transaction
        self._free = threading.Semaphore(size)
        self._mine = threading.local()

    def holding(self) -> bool:
        """True when this thread holds a slot."""
        return getattr(self._mine, "held", False)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Wait for a slot and hold it for the block (re-entrant: a holder just goes on)."""
        if self.holding():
            yield
            return
        self._free.acquire()
        self._mine.held = True
        try:
            yield
        finally:
            self._mine.held = False
            self._free.release()

    @contextmanager
    def lent(self) -> Iterator[None]:
        """Give the slot back for the block (a wait outside the process) and take one again after;
        a thread without a slot, or inside a journal transaction, just runs the block."""
        if not self.holding() or self.in_transaction():
            yield
            return
        self._mine.held = False
        self._free.release()
        try:
            yield
        finally:
            self._free.acquire()
            self._mine.held = True
