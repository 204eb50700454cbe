"""The journal's transactions and its group commit.

SQLite runs in WAL mode with `synchronous=NORMAL`: a COMMIT writes its frames to the -wal file
without waiting for the disk. Durability comes from `GroupSync`: after its COMMIT, every writer
calls `sync()`, which fsyncs the -wal file; writers that committed while one fsync ran share the
next one. So a 202 still means "on disk" (as with `synchronous=FULL`), but a storm of
concurrent posts pays one fsync per group instead of one per post. A checkpoint (SQLite's own
NORMAL rule) syncs the WAL before copying it and the database after, so what a reset WAL no
longer holds is already durable in the database file.

A thread may defer its waits (`begin_deferral`): the intake thread admits a batch of posts and
waits once before answering them; a worker runs a job and waits before each action outside the
journal (`settle`: a step, a page) and when the job ends. An fsync costs ~0.4 ms of CPU, a commit
without one ~0.1 ms, so fewer waits, shared by more commits, are most of a job's journal cost.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any


class GroupSync:
    """fsync of the journal's -wal file, shared by every writer that committed before it began."""

    def __init__(self, db_path: Path) -> None:
        self.wal = Path(f"{db_path}-wal")
        self._fd: int | None = None
        self._cond = threading.Condition()
        self._written = 0  # commits made so far (a sequence number)
        self._synced = 0  # commits known to be on disk
        self._syncing = False
        self.fsyncs = 0  # how many fsyncs ran (the bench prints commits per fsync)
        self._deferral = threading.local()  # per thread: the last commit a deferral still has to sync

    @property
    def commits(self) -> int:
        """How many commits were made (the bench and /metrics print commits per fsync)."""
        return self._written

    def begin_deferral(self) -> None:
        """From now on this thread's commits do not wait for their fsync (see `end_deferral`)."""
        self._deferral.upto = 0

    def deferring(self, seq: int) -> bool:
        """True (and `seq` noted) when this thread defers its syncs; False: wait for `seq` now."""
        upto = getattr(self._deferral, "upto", None)
        if upto is None:
            return False
        self._deferral.upto = max(upto, seq)
        return True

    def settle(self) -> None:
        """Wait now for the commits this thread deferred so far, and go on deferring (before an
        action outside the journal: what led to it must be on disk first). No-op when not deferring."""
        upto = getattr(self._deferral, "upto", None)
        if upto:
            self.wait(upto)
            self._deferral.upto = 0

    def take_deferral(self) -> int:
        """Stop deferring without waiting: the last commit made since `begin_deferral` (0: none),
        for another thread to `wait` for (the intake answers a batch there while it admits the next)."""
        upto = getattr(self._deferral, "upto", None)
        self._deferral.upto = None
        return upto or 0

    def end_deferral(self) -> None:
        """Stop deferring; return once every commit this thread made since `begin_deferral` is on
        disk (one fsync for all of them). Raises OSError when the fsync fails."""
        upto = self.take_deferral()
        if upto:
            self.wait(upto)

    def committed(self) -> int:
        """A commit just happened (call under the journal lock); returns its sequence number."""
        with self._cond:
            self._written += 1
            return self._written

    def wait(self, seq: int) -> None:
        """Return once commit `seq` is on disk; raises OSError when the fsync fails."""
        with self._cond:
            while self._synced < seq:
                if self._syncing:
                    self._cond.wait()
                    continue
                self._syncing = True
                upto = self._written
                self._cond.release()
                try:
                    self._fsync()
                finally:
                    self._cond.acquire()
                    self._syncing = False
                    self._cond.notify_all()
                self._synced = max(self._synced, upto)

    def _fsync(self) -> None:
        if self._fd is not None and os.fstat(self._fd).st_nlink == 0:
            os.close(self._fd)  # the last other connection closed and SQLite deleted the WAL file
            self._fd = None
        if self._fd is None:
            self._fd = os.open(self.wal, os.O_RDONLY | os.O_CLOEXEC)
        os.fsync(self._fd)
        self.fsyncs += 1

    def close(self) -> None:
        """Close the -wal file descriptor."""
        with self._cond:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class WriterLock:
    """The journal's writers across processes (the receiver's front and its worker process): an
    flock on `JOURNAL-lock`, taken before `BEGIN IMMEDIATE` and released after the commit.

    SQLite alone makes a second process's writer retry on a timer (1, 2, 5, 10 ms, ...); under a
    storm the front's intake slept through those retries while the worker process committed. The
    kernel wakes an flock's waiter the moment the holder lets go. Within one process the journal's
    thread lock is taken first, so the flock is only ever contended between processes."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(f"{db_path}-lock")
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self._fd: int | None = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot open the journal's lock file {self.path} ({exc.strerror}); "
                                     "it must be a regular file, not a link") from None

    def acquire(self) -> None:
        """Wait for the other processes' write transactions (OSError: the lock file is closed)."""
        if self._fd is None:
            raise sqlite3.ProgrammingError("the journal is closed")
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        """Let the other processes write."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (its lock goes with it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT` under the journal lock. The outermost returns only once its
    commit is on disk (a group fsync, after the lock is released), unless the thread defers its
    syncs (GroupSync.begin_deferral): then the deferral's end waits for it.

    Nested, it is part of the outer one: its failure propagates and the outermost rolls back
    everything. One that must fail alone, the outer one going on (the intake's payload in its
    batch), asks for `savepoint=True` (SAVEPOINT ... RELEASE, or ROLLBACK TO on an exception).
    Savepoints at every level were 43% of the statements a new incident cost."""

    def __init__(self, journal: Any, savepoint: bool = False) -> None:  # the Journal (which imports this)
        self.journal = journal
        self.savepoint = savepoint
        self._seq = 0

    def __enter__(self) -> Any:
        journal = self.journal
        journal.lock.acquire()
        depth = journal._depth
        try:
            if depth == 0:
                journal.writers.acquire()
                journal._conn.execute("BEGIN IMMEDIATE")
            elif self.savepoint:
                journal._conn.execute(f"SAVEPOINT s{depth}")
        except BaseException:
            # A failed BEGIN (locked, closed, disk error) must not leave the locks held forever.
            if depth == 0:
                journal.writers.release()
            journal.lock.release()
            raise
        journal._depth = depth + 1
        journal._owner = threading.get_ident()
        return journal

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        journal = self.journal
        conn = journal._conn
        journal._depth -= 1
        depth = journal._depth
        if depth == 0:
            journal._owner = None
        try:
            if depth > 0:
                if self.savepoint:
                    if exc_type is not None:
                        _quiet(conn, f"ROLLBACK TO s{depth}")
                    conn.execute(f"RELEASE s{depth}")
            elif exc_type is None:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error:
                    _quiet(conn, "ROLLBACK")  # leave no half-open transaction behind for the next caller
                    raise
                self._seq = journal.durability.committed()
            else:
                _quiet(conn, "ROLLBACK")
        finally:
            if depth == 0:
                journal.writers.release()
            journal.lock.release()
        if self._seq and not journal.durability.deferring(self._seq):
            try:
                journal.durability.wait(self._seq)
            except OSError as err:
                raise sqlite3.OperationalError(f"journal fsync failed: {err}") from err


def _quiet(conn: sqlite3.Connection, sql: str) -> None:
    try:
        conn.execute(sql)
    except sqlite3.Error:
        pass
