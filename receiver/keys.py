"""The idempotency keys: one row per alert firing admitted (fingerprint, startsAt, tier) -> its job.

The rows live in the journal's `alert_keys` table, written in the same transaction as the job,
so a re-send, an HA duplicate or a receiver restart finds the key and never repeats the action.

On top of the table, a memory of the keys known to be on disk: the intake adds a batch's keys
once the batch's fsync is done, and a post whose every alert is such a key is answered in the
HTTP loop without a journal transaction (in a webhook storm most posts are re-sends). Those
duplicates are counted in memory and written in one statement later (`flush_duplicates`: the
intake's next batch, the sweeper every few seconds, and every read of the jobs list); a crash
loses at most those few seconds of duplicate counts, never a job or a key. Purged keys leave the
memory with the table's rows, so the memory never knows a key the table forgot.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # fingerprint, startsAt (ISO 8601), tier
MEMORY_KEYS = 100_000  # past this, the oldest half is forgotten (they go through the journal again)
UNKNOWN = object()  # `persisted()` of a key the memory does not hold


class AlertKeys:
    """The `alert_keys` table of one journal, and the memory of its keys already on disk."""

    def __init__(self, journal: Any, capacity: int = MEMORY_KEYS) -> None:  # the Journal (which imports this)
        self.journal = journal
        self.capacity = capacity
        self._persisted: dict[Key, int | None] = {}
        self._pending: dict[int, int] = {}  # job id -> duplicates answered from memory, not yet written
        self._lock = threading.Lock()
        self.purges = 0  # bumped by every purge that deleted keys (see `mark_persisted`)

    # -- the table (inside the caller's transaction when it holds one) ------------------------
    def known(self, fingerprint: str, starts_at: str, tier: str) -> bool:
        """Whether this alert firing was already admitted for this tier (the memory holds only keys
        the table has, so it answers first)."""
        if (fingerprint, starts_at, str(tier)) in self._persisted:
            return True
        return self.stored(fingerprint, starts_at, tier) is not UNKNOWN

    def stored(self, fingerprint: str, starts_at: str, tier: str) -> int | None | object:
        """The job the stored key points at (None: a key without a job), or UNKNOWN."""
        row = self.journal.execute(
            "SELECT job_id FROM alert_keys WHERE fingerprint=? AND starts_at=? AND tier=?",
            (fingerprint, starts_at, tier),
        ).fetchone()
        return UNKNOWN if row is None else row[0]

    def remember(self, fingerprint: str, starts_at: str, tier: str, job_id: int | None) -> None:
        """Store an idempotency key (ignored when it is already there)."""
        self.journal.execute(
            "INSERT OR IGNORE INTO alert_keys(fingerprint, starts_at, tier, job_id, seen_at) VALUES (?,?,?,?,?)",
            (fingerprint, starts_at, tier, job_id, time.time()),
        )

    def purge(self, older_than_seconds: float, limit: int = 5000) -> int:
        """Forget up to `limit` keys older than the retention (table and memory); returns how many went."""
        with self.journal.transaction() as j:
            gone = j.execute(
                "SELECT rowid, fingerprint, starts_at, tier FROM alert_keys WHERE seen_at < ? LIMIT ?",
                (time.time() - older_than_seconds, limit),
            ).fetchall()
            j._conn.executemany("DELETE FROM alert_keys WHERE rowid=?", [(row[0],) for row in gone])
        if gone:
            with self._lock:
                self.purges += 1
                for row in gone:
                    self._persisted.pop((row[1], row[2], row[3]), None)
        return len(gone)

    # -- the memory ---------------------------------------------------------------------------
    def persisted(self, fingerprint: str, starts_at: str, tier: str) -> int | None | object:
        """The job of a key known to be on disk (None: a key without a job), or UNKNOWN."""
        return self._persisted.get((fingerprint, starts_at, tier), UNKNOWN)

    def mark_persisted(self, keys: list[tuple[Key, int | None]], purges: int) -> None:
        """These keys are on disk now (their batch's fsync is done). `purges` is `self.purges` from
        before the batch read them: when a purge ran since, they are left to the table."""
        if not keys:
            return
        with self._lock:
            if purges != self.purges:
                return
            for key, job_id in keys:
                self._persisted[key] = job_id
            if len(self._persisted) > self.capacity:
                for key in list(self._persisted)[: len(self._persisted) // 2]:
                    del self._persisted[key]

    def count_duplicate(self, job_id: int | None) -> None:
        """One more duplicate of `job_id`, answered from memory; written by the next flush."""
        if job_id is None:
            return
        with self._lock:
            self._pending[job_id] = self._pending.get(job_id, 0) + 1

    def flush_duplicates(self) -> int:
        """Write the duplicates counted in memory to their jobs; returns how many (0 if the journal
        refused them: a lost count, logged, never a lost job)."""
        with self._lock:
            taken, self._pending = self._pending, {}
        if not taken:
            return 0
        try:
            with self.journal.transaction(savepoint=True) as j:  # in the intake's batch: fails alone
                j._conn.executemany(
                    "UPDATE jobs SET duplicates = duplicates + ? WHERE id=?", [(n, job) for job, n in taken.items()]
                )
        except sqlite3.Error as exc:
            log.warning("%d duplicate counts not written to the journal: %s", sum(taken.values()), exc)
            return 0
        return sum(taken.values())
