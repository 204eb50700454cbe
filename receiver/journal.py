"""The SQLite journal: every job (action, refusal, dry run, journal-only alert), the incidents they
belong to, their alerts, the idempotency keys, and the hourly counts of alerts no target matched.

One file holds them all, so admitting a job, placing it in its incident and remembering its
alert keys is one transaction: a re-send, an HA duplicate or a receiver restart finds the key
and never repeats the action. The file, its -wal/-shm and the directories it creates are the
receiver's alone (0600/0700): they hold alert labels and triage log lines.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from tts_sentinel.receiver.incident_rows import IncidentRows, where_equal
from tts_sentinel.receiver.keys import AlertKeys
from tts_sentinel.receiver.readers import ReaderPool, Rows
from tts_sentinel.receiver.records import Incident, Job, encode_columns
from tts_sentinel.receiver.schema import create_schema, private_journal_file, tighten_sidecars
from tts_sentinel.receiver.tiers import Tier
from tts_sentinel.receiver.txn import GroupSync, Transaction, WriterLock
from tts_sentinel.userinfo import strip_userinfo

ALERTS_SHOWN = 10  # alerts of a job that GET /actions and the job's page show; the rest are counted
VERIFY_VALUES = 64  # distinct `verify` label values a job's verification looks at
# Named columns, never `*`: an older journal's bulky legacy columns stay on disk.
_JOB_COLUMNS = ", ".join(f.name for f in fields(Job) if f.name not in ("alerts", "verify_labels"))
SELECT_JOBS = f"SELECT {_JOB_COLUMNS} FROM jobs"  # noqa: S608 - the names of Job's fields
# What `tts-sentinel actions` prints, and nothing more: no alerts, steps or log lines.
SELECT_SUMMARIES = (
    "SELECT id, created_at, target, tier, status, dry_run, started_at, finished_at, incident_id, family, note,"
    " reason, escalation, json_extract(verification, '$.success') AS verified,"
    " json_extract(triage, '$.root_cause.pattern') AS root_cause FROM jobs"
)


class Journal(IncidentRows):
    """Thread-safe access to the journal file; every write is committed before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        private_journal_file(self.path)  # 0600 before SQLite opens it: its -wal/-shm take the same mode
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL + GroupSync's fsync after each commit: the 202 still promises the job survives a
        # power cut, and concurrent posts share one fsync (see receiver/txn.py).
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        # A checkpointed WAL shrinks back to this instead of staying at its largest.
        self._conn.execute("PRAGMA journal_size_limit=4194304")
        self.writers = WriterLock(self.path)  # the write transactions of other processes (receiver/txn.py)
        self.writers.acquire()
        try:
            create_schema(self._conn)
        finally:
            self.writers.release()
        tighten_sidecars(self.path)  # made by the first write above (or left by an older receiver)
        self.lock = threading.RLock()
        self._depth = 0  # nesting of transaction() (the outermost commits; inner ones are savepoints)
        self._owner: int | None = None  # the thread inside transaction(), if any
        # Reads outside a transaction go through a pool of reader connections (WAL: readers never
        # wait for the writer), so a storm of posts and the workers' polls do not queue on one lock.
        self._readers = ReaderPool(self.path)
        self.durability = GroupSync(self.path)
        self.keys = AlertKeys(self)  # the idempotency keys (receiver/keys.py)

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self._conn.close()
            self.durability.close()
            self.writers.close()
            self._readers.close()

    # -- transactions -------------------------------------------------------------------------
    def in_transaction(self) -> bool:
        """True when the calling thread is inside `transaction()`."""
        return self._owner == threading.get_ident()

    def transaction(self, savepoint: bool = False) -> Transaction:
        """`with journal.transaction() as tx:` -- one atomic unit under the journal lock, on disk
        when the `with` ends (nested: part of the outer one; `savepoint=True`: a savepoint of it,
        undone alone when it fails)."""
        return Transaction(self, savepoint)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor | Rows:
        """Run one statement (outside a transaction a write is its own, on disk when this returns;
        a read returns its rows, read out: `Rows`)."""
        if self._owner == threading.get_ident():
            # Inside this thread's transaction: one statement is atomic by itself (SQLite undoes a
            # failed one), so no savepoint around it (two statements less for each write).
            return self._conn.execute(sql, tuple(params))
        if sql.lstrip()[:6].upper() == "SELECT":
            return self._readers.select(sql, tuple(params))
        with self.transaction() as j:
            return j._conn.execute(sql, tuple(params))

    # -- jobs ---------------------------------------------------------------------------------
    def insert_job(self, **fields: Any) -> int:
        """Insert a job row; JSON columns may be given as Python objects, `alerts` go to their table."""
        alerts = fields.pop("alerts", None) or []
        with self.transaction():
            job_id = self._insert("jobs", "created_at", {**fields, "alerts_total": len(alerts)})
            self._insert_alert_rows(job_id, alerts)
        return job_id

    def update_job(self, job_id: int, **fields: Any) -> None:
        """Update columns of one job."""
        self._update("jobs", job_id, fields)

    def _insert(self, table: str, created: str, fields: dict[str, Any]) -> int:
        now = time.time()
        fields = encode_columns({created: now, "updated_at": now, **fields})
        cols, marks = ", ".join(fields), ", ".join("?" for _ in fields)
        sql = f"INSERT INTO {table}({cols}) VALUES ({marks})"  # noqa: S608 - names from code, values bound
        return int(self.execute(sql, fields.values()).lastrowid)

    def _update(self, table: str, row_id: int, fields: dict[str, Any]) -> None:
        fields = encode_columns({**fields, "updated_at": time.time()})
        sets = ", ".join(f"{c}=?" for c in fields)
        self.execute(f"UPDATE {table} SET {sets} WHERE id=?", [*fields.values(), row_id])  # noqa: S608

    def add_alerts(self, job_id: int, records: list[dict[str, Any]]) -> None:
        """Append alert records to a job: rows of their own, so the thousandth costs what the first did."""
        if not records:
            return
        with self.transaction():
            self._insert_alert_rows(job_id, records)
            self._conn.execute("UPDATE jobs SET alerts_total = alerts_total + ? WHERE id=?", (len(records), job_id))

    def _insert_alert_rows(self, job_id: int, records: list[dict[str, Any]]) -> None:
        """The alert rows alone (inside a transaction; `alerts_total` is the caller's)."""
        if not records:
            return
        rows = [
            (
                job_id,
                str(r.get("fingerprint", "")),
                str(r.get("alertname", "")),
                str((r.get("labels") or {}).get("verify", "")),
                strip_userinfo(json.dumps(r, ensure_ascii=False, default=str)),
            )
            for r in records
        ]
        self._conn.executemany(
            "INSERT INTO job_alerts(job_id, fingerprint, alertname, verify, record) VALUES (?,?,?,?,?)", rows
        )

    def copy_alerts(self, from_job: int, to_job: int) -> None:
        """Give `to_job` the alerts of `from_job` (an escalation acts for the same alerts)."""
        with self.transaction():
            cur = self._conn.execute(
                "INSERT INTO job_alerts(job_id, fingerprint, alertname, verify, record)"
                " SELECT ?, fingerprint, alertname, verify, record FROM job_alerts WHERE job_id=? ORDER BY id",
                (to_job, from_job),
            )
            self._conn.execute("UPDATE jobs SET alerts_total = alerts_total + ? WHERE id=?", (cur.rowcount, to_job))

    def claim(self, job_id: int, dry_run: bool, triage: dict[str, Any] | None = None,
              incident_triage: int | None = None) -> Job | None:
        """Atomically move a queued job to running (attempts + 1); None if it is no longer queued.

        `triage`: the job's triage verdict, written by the same UPDATE (a worker's transaction less
        per job: the journal's writers' lock is shared with the intake); `incident_triage`: the id
        of an incident that takes that verdict as its own too, in the same transaction."""
        fields = encode_columns({"started_at": time.time(), "updated_at": time.time(), "dry_run": dry_run,
                                 **({"triage": triage} if triage is not None else {})})
        sets = ", ".join(f"{c}=?" for c in fields)
        with self.transaction():
            cur = self._conn.execute(
                f"UPDATE jobs SET status='running', attempts=attempts+1, {sets} WHERE id=? AND status='queued'",  # noqa: S608
                (*fields.values(), job_id),
            )
            if cur.rowcount != 1:
                return None
            if incident_triage is not None:
                self.update_incident(incident_triage, triage=triage)
        return self.job(job_id)

    def job(self, job_id: int) -> Job | None:
        """One job with its first alerts and the `verify` labels of all its alerts; None when there is no such id."""
        row = self.execute(SELECT_JOBS + " WHERE id=?", (job_id,)).fetchone()
        if row is None:
            return None
        job = self._decode(row)
        job.verify_labels = [
            r[0]
            for r in self.execute(
                "SELECT DISTINCT verify FROM job_alerts WHERE job_id=? ORDER BY verify LIMIT ?", (job_id, VERIFY_VALUES)
            )
        ]
        return job

    def jobs(
        self, limit: int = 100, target: str | None = None, status: str | None = None, since_id: int = 0
    ) -> list[Job]:
        """Newest jobs first, optionally filtered; each with its first ALERTS_SHOWN alerts (and every
        duplicate counted so far: those answered from memory are written first)."""
        self.keys.flush_duplicates()
        sql, params = where_equal(SELECT_JOBS + " WHERE id > ?", [since_id], target=target, status=status)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [self._decode(r) for r in self.execute(sql, params).fetchall()]

    def job_summaries(self, limit: int = 30, target: str | None = None) -> list[dict[str, Any]]:
        """Newest jobs first, only the columns `tts-sentinel actions` prints (shaped like GET /actions)."""
        sql, params = where_equal(SELECT_SUMMARIES + " WHERE 1=1", [], target=target)
        rows = self.execute(sql + " ORDER BY id DESC LIMIT ?", [*params, limit]).fetchall()
        out = []
        for row in rows:
            data = dict(row)
            verified, root = data.pop("verified"), data.pop("root_cause")
            data["verification"] = None if verified is None else {"success": bool(verified)}
            data["triage"] = {"root_cause": {"pattern": root}} if root else None
            data["dry_run"] = bool(data["dry_run"])
            out.append(data)
        return out

    def active_job(
        self, target: str, status: str, kind: str | None = None, incident_id: int | None | Literal["any"] = "any"
    ) -> Job | None:
        """The oldest job of `target` in `status` (queued or running), optionally of one kind and
        one incident (`incident_id=None`: only jobs without an incident)."""
        sql, params = where_equal(SELECT_JOBS + " WHERE target=? AND status=?", [target, status], kind=kind)
        if incident_id is None:
            sql += " AND incident_id IS NULL"
        elif incident_id != "any":
            sql += " AND incident_id=?"
            params.append(incident_id)
        row = self.execute(sql + " ORDER BY id LIMIT 1", params).fetchone()
        return None if row is None else self._decode(row)

    def count_actions(self, target: str, since: float, tier: str | None = None) -> int:
        """Actions really run on `target` (started, not dry runs, not tier none's journal-only lines) since `since`."""
        sql = (
            "SELECT COUNT(*) FROM jobs WHERE target=? AND started_at >= ? AND dry_run=0 AND tier != 'none'"
            " AND status IN ('running','succeeded','failed','interrupted')"
        )
        sql, params = where_equal(sql, [target, since], tier=tier)
        return int(self.execute(sql, params).fetchone()[0])

    def last_finished(
        self, target: str, tier: str | None = None, status: str | None = None, incident_id: int | None = None
    ) -> Job | None:
        """The most recently finished real action on `target` (of one incident, when given)."""
        sql, params = where_equal(
            SELECT_JOBS + " WHERE target=? AND finished_at IS NOT NULL AND dry_run=0 AND kind='remediate'"
            " AND tier != 'none'",
            [target],
            tier=tier,
            status=status,
            incident_id=incident_id,
        )
        sql += " ORDER BY finished_at DESC LIMIT 1"
        row = self.execute(sql, params).fetchone()
        return None if row is None else self._decode(row)

    def last_derate(self, target: str) -> Job | None:
        """The newest derate that changed the power limit (to restore it on resolve)."""
        row = self.execute(
            SELECT_JOBS + " WHERE target=? AND tier='derate' AND kind='remediate'"
            " AND status='succeeded' ORDER BY id DESC LIMIT 1",
            (target,),
        ).fetchone()
        return None if row is None else self._decode(row)

    def _decode(self, row: sqlite3.Row) -> Job:
        job = Job.from_row(dict(row))
        if job.alerts_total:
            rows = self.execute(
                "SELECT record FROM job_alerts WHERE job_id=? ORDER BY id LIMIT ?", (job.id, ALERTS_SHOWN)
            )
            job.alerts = [json.loads(r[0]) for r in rows]
        return job

    # -- placement ----------------------------------------------------------------------------
    def place_job(
        self,
        target: str,
        tier: Tier,
        why: str,
        records: list[dict[str, Any]],
        escalated_from: int | None = None,
        incident: Incident | None = None,
        opened: bool = False,
    ) -> tuple[int, bool]:
        """One action per incident: join its queued job (raising the tier if needed) or its running
        job when that covers this tier; otherwise queue a new job. Call inside a transaction.

        Admission places the jobs alerts ask for, the runner the escalations (whose alerts it copies
        after); both call down here. Without an incident the jobs of the target without one are
        joined. Joining inserts the new alerts only. Returns (job id, joined).
        """
        incident_id = incident.id if incident else None
        # An incident opened in this very transaction (`opened`) has no job yet: nothing to look up.
        queued = None if opened else self.active_job(target, "queued", kind="remediate", incident_id=incident_id)
        if queued is not None:
            fields: dict[str, Any] = {}
            if tier.rank > queued.tier.rank:
                fields["tier"] = tier
                fields["reason"] = f"{why} (raised from {queued.tier}: highest tier of the incident wins)"
            if escalated_from is not None:
                fields["escalated_from"] = escalated_from
            self.update_job(queued.id, **fields)
            self.add_alerts(queued.id, records)
            return queued.id, True
        running = None if opened else self.active_job(target, "running", kind="remediate", incident_id=incident_id)
        if running is not None and escalated_from is None and running.tier.rank >= tier.rank:
            self.add_alerts(running.id, records)
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

    # -- incidents (the incident rows themselves: IncidentRows) -----------------------------
    def incident_jobs(self, incident_id: int) -> list[Job]:
        """The jobs of one incident, oldest first."""
        rows = self.execute(SELECT_JOBS + " WHERE incident_id=? ORDER BY id", (incident_id,)).fetchall()
        return [self._decode(r) for r in rows]

    def open_incident_job_states(self) -> dict[int, list[tuple[int, str]]]:
        """{incident id: [(job id, status), ...]} of every open incident, oldest job first (all the sweep needs)."""
        rows = self.execute(
            "SELECT incident_id, id, status FROM jobs WHERE incident_id IN "
            "(SELECT id FROM incidents WHERE closed_at IS NULL) ORDER BY id"
        ).fetchall()
        states: dict[int, list[tuple[int, str]]] = {}
        for incident_id, job_id, status in rows:
            states.setdefault(int(incident_id), []).append((int(job_id), str(status)))
        return states

    def last_job_end(self, target: str, other_than: int | None = None, before: float | None = None) -> float | None:
        """When the newest job of an incident on this target (acted, dry-ran or refused) finished. A
        journal-only record (tier none, no incident) owns no log lines and bounds nothing. With
        `other_than`, only other incidents' jobs count; with `before`, only jobs finished before it."""
        sql = ("SELECT MAX(finished_at) FROM jobs WHERE target=? AND kind='remediate' AND incident_id IS NOT NULL"
               " AND status IN ('succeeded','failed','dry_run','refused','interrupted')")
        params: list[Any] = [target]
        if other_than is not None:
            sql += " AND incident_id != ?"
            params.append(other_than)
        if before is not None:
            sql += " AND finished_at < ?"
            params.append(before)
        row = self.execute(sql, params).fetchone()
        return None if row is None or row[0] is None else float(row[0])
