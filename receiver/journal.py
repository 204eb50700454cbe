"""The SQLite journal: every job (action, refusal, dry run, ignored alert), the incidents they
belong to, and the idempotency keys.

One file holds all three, so admitting a job, placing it in its incident and remembering its
alert keys is one transaction: a re-send, an HA duplicate or a receiver restart finds the key
and never repeats the action.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from tts_sentinel.receiver.records import Incident, Job, encode_columns
from tts_sentinel.receiver.tiers import Tier

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    target TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'remediate',
    tier TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    result TEXT,
    alerts TEXT NOT NULL DEFAULT '[]',
    steps TEXT NOT NULL DEFAULT '[]',
    verification TEXT,
    escalated_from INTEGER,
    escalation TEXT,
    triage TEXT,
    dry_run INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    note TEXT NOT NULL DEFAULT '',
    duplicates INTEGER NOT NULL DEFAULT 0,
    incident_id INTEGER,
    family TEXT
);
CREATE INDEX IF NOT EXISTS jobs_target_status ON jobs(target, status);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    family TEXT NOT NULL,
    family_reason TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'open',
    opened_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ladder TEXT NOT NULL DEFAULT '[]',
    rung INTEGER NOT NULL DEFAULT 0,
    tiers TEXT NOT NULL DEFAULT '[]',
    components TEXT NOT NULL DEFAULT '[]',
    firing TEXT NOT NULL DEFAULT '[]',
    window_start REAL NOT NULL DEFAULT 0,
    unhealed_since REAL,
    resolved_at REAL,
    healed_at REAL,
    paged_at REAL,
    page TEXT,
    triage TEXT,
    closed_at REAL
);
CREATE INDEX IF NOT EXISTS incidents_target_open ON incidents(target, closed_at);
CREATE TABLE IF NOT EXISTS alert_keys (
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    tier TEXT NOT NULL,
    job_id INTEGER,
    seen_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, starts_at, tier)
);
"""


class Journal:
    """Thread-safe access to the journal file; every write is committed before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: the 202 we answer promises the job survives a power cut.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA)
        # A journal written before incidents existed gains the two job columns (NULL for old jobs).
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(jobs)")}
        for column, kind in (("incident_id", "INTEGER"), ("family", "TEXT")):
            if column not in columns:
                self._conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        self._conn.execute("CREATE INDEX IF NOT EXISTS jobs_incident ON jobs(incident_id)")
        self.lock = threading.RLock()

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self._conn.close()

    # -- transactions -------------------------------------------------------------------------
    def transaction(self) -> _Transaction:
        """`with journal.transaction() as tx:` -- one atomic unit under the journal lock."""
        return _Transaction(self)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """Run one statement (autocommit unless inside a transaction)."""
        with self.lock:
            return self._conn.execute(sql, tuple(params))

    # -- keys ---------------------------------------------------------------------------------
    def known_key(self, fingerprint: str, starts_at: str, tier: str) -> bool:
        """Whether this alert firing was already admitted for this tier."""
        row = self.execute(
            "SELECT 1 FROM alert_keys WHERE fingerprint=? AND starts_at=? AND tier=?",
            (fingerprint, starts_at, tier),
        ).fetchone()
        return row is not None

    def remember_key(self, fingerprint: str, starts_at: str, tier: str, job_id: int | None) -> None:
        """Store an idempotency key (ignored when it is already there)."""
        self.execute(
            "INSERT OR IGNORE INTO alert_keys(fingerprint, starts_at, tier, job_id, seen_at) VALUES (?,?,?,?,?)",
            (fingerprint, starts_at, tier, job_id, time.time()),
        )

    def key_job(self, fingerprint: str, starts_at: str, tier: str) -> int | None:
        """The job an existing key points at."""
        row = self.execute(
            "SELECT job_id FROM alert_keys WHERE fingerprint=? AND starts_at=? AND tier=?",
            (fingerprint, starts_at, tier),
        ).fetchone()
        return None if row is None else row[0]

    def purge_keys(self, older_than_seconds: float) -> int:
        """Forget keys older than the retention; returns how many went."""
        cur = self.execute("DELETE FROM alert_keys WHERE seen_at < ?", (time.time() - older_than_seconds,))
        return cur.rowcount

    # -- jobs ---------------------------------------------------------------------------------
    def insert_job(self, **fields: Any) -> int:
        """Insert a job row; JSON columns may be given as Python objects."""
        now = time.time()
        fields.setdefault("created_at", now)
        fields.setdefault("updated_at", now)
        fields = encode_columns(fields)
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = self.execute(f"INSERT INTO jobs({cols}) VALUES ({marks})", fields.values())  # noqa: S608
        return int(cur.lastrowid)

    def update_job(self, job_id: int, **fields: Any) -> None:
        """Update columns of one job."""
        fields["updated_at"] = time.time()
        fields = encode_columns(fields)
        sets = ", ".join(f"{c}=?" for c in fields)
        self.execute(f"UPDATE jobs SET {sets} WHERE id=?", [*fields.values(), job_id])  # noqa: S608

    def claim(self, job_id: int, dry_run: bool) -> Job | None:
        """Atomically move a queued job to running (attempts + 1); None if it is no longer queued."""
        with self.transaction():
            cur = self._conn.execute(
                "UPDATE jobs SET status='running', started_at=?, updated_at=?, attempts=attempts+1, dry_run=?"
                " WHERE id=? AND status='queued'",
                (time.time(), time.time(), int(dry_run), job_id),
            )
            if cur.rowcount != 1:
                return None
            row = self._conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _decode(row)

    def job(self, job_id: int) -> Job | None:
        """One job, or None when there is no such id."""
        row = self.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _decode(row)

    def jobs(
        self, limit: int = 100, target: str | None = None, status: str | None = None, since_id: int = 0
    ) -> list[Job]:
        """Newest jobs first, optionally filtered."""
        sql, params = _where("SELECT * FROM jobs WHERE id > ?", [since_id], target=target, status=status)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_decode(r) for r in self.execute(sql, params).fetchall()]

    def active_job(
        self, target: str, status: str, kind: str | None = None, incident_id: int | None | Literal["any"] = "any"
    ) -> Job | None:
        """The oldest job of `target` in `status` (queued or running), optionally of one kind and
        one incident (`incident_id=None`: only jobs without an incident)."""
        sql, params = _where("SELECT * FROM jobs WHERE target=? AND status=?", [target, status], kind=kind)
        if incident_id is None:
            sql += " AND incident_id IS NULL"
        elif incident_id != "any":
            sql += " AND incident_id=?"
            params.append(incident_id)
        row = self.execute(sql + " ORDER BY id LIMIT 1", params).fetchone()
        return None if row is None else _decode(row)

    def count_actions(self, target: str, since: float, tier: str | None = None) -> int:
        """Actions really run on `target` (started, not dry runs) since `since`."""
        sql = (
            "SELECT COUNT(*) FROM jobs WHERE target=? AND started_at >= ? AND dry_run=0"
            " AND status IN ('running','succeeded','failed','interrupted')"
        )
        sql, params = _where(sql, [target, since], tier=tier)
        return int(self.execute(sql, params).fetchone()[0])

    def last_finished(
        self, target: str, tier: str | None = None, status: str | None = None, incident_id: int | None = None
    ) -> Job | None:
        """The most recently finished real action on `target` (of one incident, when given)."""
        sql, params = _where(
            "SELECT * FROM jobs WHERE target=? AND finished_at IS NOT NULL AND dry_run=0 AND kind='remediate'",
            [target],
            tier=tier,
            status=status,
            incident_id=incident_id,
        )
        sql += " ORDER BY finished_at DESC LIMIT 1"
        row = self.execute(sql, params).fetchone()
        return None if row is None else _decode(row)

    def last_derate(self, target: str) -> Job | None:
        """The newest derate that changed the power limit (to restore it on resolve)."""
        row = self.execute(
            "SELECT * FROM jobs WHERE target=? AND tier='derate' AND kind='remediate' AND status='succeeded'"
            " ORDER BY id DESC LIMIT 1",
            (target,),
        ).fetchone()
        return None if row is None else _decode(row)

    # -- placement ----------------------------------------------------------------------------
    def place_job(
        self,
        target: str,
        tier: Tier,
        why: str,
        records: list[dict[str, Any]],
        escalated_from: int | None = None,
        incident: Incident | None = None,
    ) -> tuple[int, bool]:
        """One action per incident: join its queued job (raising the tier if needed) or its running
        job when that covers this tier; otherwise queue a new job. Call inside a transaction.

        Admission places the jobs alerts ask for, the runner the escalations; both call down here.
        Without an incident the jobs of the target without one are joined. Returns (job id, joined).
        """
        incident_id = incident.id if incident else None
        queued = self.active_job(target, "queued", kind="remediate", incident_id=incident_id)
        if queued is not None:
            fields: dict[str, Any] = {"alerts": queued.alerts + records}
            if tier.rank > queued.tier.rank:
                fields["tier"] = tier
                fields["reason"] = f"{why} (raised from {queued.tier}: highest tier of the incident wins)"
            if escalated_from is not None:
                fields["escalated_from"] = escalated_from
            self.update_job(queued.id, **fields)
            return queued.id, True
        running = self.active_job(target, "running", kind="remediate", incident_id=incident_id)
        if running is not None and escalated_from is None and running.tier.rank >= tier.rank:
            self.update_job(running.id, alerts=running.alerts + records)
            return running.id, True
        job_id = self.insert_job(
            target=target,
            tier=tier,
            reason=why,
            status="queued",
            alerts=records,
            escalated_from=escalated_from,
            incident_id=incident_id,
            family=incident.family if incident else None,
        )
        return job_id, False

    # -- incidents ----------------------------------------------------------------------------
    def insert_incident(self, **fields: Any) -> Incident:
        """Open an incident; returns it as stored."""
        now = time.time()
        fields.setdefault("opened_at", now)
        fields.setdefault("updated_at", now)
        fields = encode_columns(fields)
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = self.execute(f"INSERT INTO incidents({cols}) VALUES ({marks})", fields.values())  # noqa: S608
        incident = self.incident(int(cur.lastrowid))
        assert incident is not None  # noqa: S101 - just inserted under the lock
        return incident

    def update_incident(self, incident_id: int, **fields: Any) -> None:
        """Update columns of one incident."""
        fields["updated_at"] = time.time()
        fields = encode_columns(fields)
        sets = ", ".join(f"{c}=?" for c in fields)
        self.execute(f"UPDATE incidents SET {sets} WHERE id=?", [*fields.values(), incident_id])  # noqa: S608

    def incident(self, incident_id: int | None) -> Incident | None:
        """One incident, or None."""
        if incident_id is None:
            return None
        row = self.execute("SELECT * FROM incidents WHERE id=?", (incident_id,)).fetchone()
        return None if row is None else Incident.from_row(dict(row))

    def incidents(self, limit: int = 100, target: str | None = None, open_only: bool = False) -> list[Incident]:
        """Newest incidents first."""
        sql, params = _where("SELECT * FROM incidents WHERE 1=1", [], target=target)
        if open_only:
            sql += " AND closed_at IS NULL"
        rows = self.execute(sql + " ORDER BY id DESC LIMIT ?", [*params, limit]).fetchall()
        return [Incident.from_row(dict(r)) for r in rows]

    def open_incident(self, target: str, family: str) -> Incident | None:
        """The open incident of this family on this target, if any."""
        row = self.execute(
            "SELECT * FROM incidents WHERE target=? AND family=? AND closed_at IS NULL ORDER BY id DESC LIMIT 1",
            (target, family),
        ).fetchone()
        return None if row is None else Incident.from_row(dict(row))

    def incident_jobs(self, incident_id: int) -> list[Job]:
        """The jobs of one incident, oldest first."""
        rows = self.execute("SELECT * FROM jobs WHERE incident_id=? ORDER BY id", (incident_id,)).fetchall()
        return [_decode(r) for r in rows]

    def claim_page(
        self, incident_id: int, page: dict[str, Any], status: str, only_if_status: str | None = None
    ) -> bool:
        """Mark the incident paged (and set its status); False when it already was (on-call is paged
        once per incident) or, with `only_if_status`, when its status is another by now."""
        fields = encode_columns({"page": page})
        sql = "UPDATE incidents SET paged_at=?, page=?, status=?, updated_at=? WHERE id=? AND paged_at IS NULL"
        params: list[Any] = [time.time(), fields["page"], status, time.time(), incident_id]
        if only_if_status is not None:
            sql += " AND status=?"
            params.append(only_if_status)
        return self.execute(sql, params).rowcount == 1

    def last_job_end(self, target: str) -> float | None:
        """When the newest job that looked at this target's logs (acted, dry-ran or refused) finished."""
        row = self.execute(
            "SELECT MAX(finished_at) FROM jobs WHERE target=? AND kind='remediate'"
            " AND status IN ('succeeded','failed','dry_run','refused','interrupted')",
            (target,),
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])


class _Transaction:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def __enter__(self) -> Journal:
        self.journal.lock.acquire()
        try:
            self.journal._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            # A failed BEGIN (locked, closed, disk error) must not leave the lock held forever.
            self.journal.lock.release()
            raise
        return self.journal

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self.journal._conn
        try:
            if exc_type is None:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error:
                    _rollback(conn)  # leave no half-open transaction behind for the next caller
                    raise
            else:
                _rollback(conn)
        finally:
            self.journal.lock.release()


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def _where(sql: str, params: list[Any], **equal: Any) -> tuple[str, list[Any]]:
    """Append `AND column=?` for every given (not None) column; column names come from code only."""
    for column, value in equal.items():
        if value is not None:
            sql += f" AND {column}=?"
            params.append(value)
    return sql, params


def _decode(row: sqlite3.Row) -> Job:
    return Job.from_row(dict(row))
