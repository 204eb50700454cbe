"""Retention: jobs, incidents, their alerts and the unmatched counts older than `retention_days`
leave the journal; idempotency keys after `idempotency_retention_seconds`.

The sweeper thread runs one pass in its idle loop, at most every RETENTION_EVERY_SECONDS unless
the last pass left work behind. A pass deletes bounded batches, each in its own short
transaction, so a post never waits long for the journal. A job of an incident that is still open
is kept (its page needs the evidence), and so is a job still queued or running.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tts_sentinel.receiver.journal import Journal

RETENTION_EVERY_SECONDS = 60.0
BATCH_ROWS = 2000  # alert, firing, key and count rows per statement
BATCH_PARENTS = 200  # jobs or incidents per statement

_EXPIRED_JOBS = (
    "SELECT id FROM jobs WHERE created_at < ? AND status NOT IN ('queued', 'running')"
    " AND (incident_id IS NULL OR incident_id NOT IN (SELECT id FROM incidents WHERE closed_at IS NULL))"
    " ORDER BY created_at LIMIT ?"
)
_EXPIRED_INCIDENTS = (
    "SELECT id FROM incidents WHERE closed_at IS NOT NULL AND closed_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.incident_id = incidents.id) LIMIT ?"
)


class JournalRetention:
    """Deletes what is older than the retention, a bounded batch at a time."""

    def __init__(
        self,
        journal: Journal,
        retention_seconds: float,
        keys_seconds: float,
        clock: Callable[[], float] = time.time,
        every_seconds: float = RETENTION_EVERY_SECONDS,
    ) -> None:
        self.journal = journal
        self.retention_seconds = retention_seconds
        self.keys_seconds = keys_seconds
        self.clock = clock
        self.every_seconds = every_seconds
        self._next = 0.0
        self.deleted = 0  # rows deleted since start, for tests and the log

    def maybe_run(self) -> int:
        """Run a pass when one is due (the sweeper calls this every loop); returns the rows deleted."""
        if time.monotonic() < self._next:
            return 0
        deleted, more = self.run_pass()
        self._next = time.monotonic() + (0.0 if more else self.every_seconds)
        return deleted

    def run_pass(self) -> tuple[int, bool]:
        """One bounded pass: (rows deleted, whether expired rows are left for the next pass)."""
        cutoff = self.clock() - self.retention_seconds
        deleted = 0
        more = False
        for step in (self._jobs, self._incidents, self._unmatched):
            n, left = step(cutoff)
            deleted += n
            more = more or left
        keys = self.journal.keys.purge(self.keys_seconds, BATCH_ROWS)
        self.deleted += deleted + keys
        return deleted + keys, more or keys == BATCH_ROWS

    def _jobs(self, cutoff: float) -> tuple[int, bool]:
        with self.journal.transaction() as j:
            ids = [r[0] for r in j.execute(_EXPIRED_JOBS, (cutoff, BATCH_PARENTS)).fetchall()]
            if not ids:
                return 0, False
            marks = ",".join("?" * len(ids))
            alerts = j.execute(
                f"DELETE FROM job_alerts WHERE id IN (SELECT id FROM job_alerts WHERE job_id IN ({marks}) LIMIT ?)",  # noqa: S608
                (*ids, BATCH_ROWS),
            ).rowcount
            if alerts == BATCH_ROWS:
                return alerts, True  # their alerts first; the jobs go in a later batch
            jobs = j.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids).rowcount  # noqa: S608
        return alerts + jobs, len(ids) == BATCH_PARENTS

    def _incidents(self, cutoff: float) -> tuple[int, bool]:
        with self.journal.transaction() as j:
            ids = [r[0] for r in j.execute(_EXPIRED_INCIDENTS, (cutoff, BATCH_PARENTS)).fetchall()]
            if not ids:
                return 0, False
            marks = ",".join("?" * len(ids))
            firing = j.execute(
                "DELETE FROM incident_firing WHERE (incident_id, fingerprint) IN"  # noqa: S608
                f" (SELECT incident_id, fingerprint FROM incident_firing WHERE incident_id IN ({marks}) LIMIT ?)",
                (*ids, BATCH_ROWS),
            ).rowcount
            if firing == BATCH_ROWS:
                return firing, True
            incidents = j.execute(f"DELETE FROM incidents WHERE id IN ({marks})", ids).rowcount  # noqa: S608
        return firing + incidents, len(ids) == BATCH_PARENTS

    def _unmatched(self, cutoff: float) -> tuple[int, bool]:
        with self.journal.transaction() as j:
            n = j.execute(
                "DELETE FROM unmatched_alerts WHERE rowid IN"
                " (SELECT rowid FROM unmatched_alerts WHERE hour < ? LIMIT ?)",
                (cutoff, BATCH_ROWS),
            ).rowcount
        return n, n == BATCH_ROWS
