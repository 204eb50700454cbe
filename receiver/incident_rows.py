"""The incident rows of the journal: open, read and update incidents, the alerts that fire in
them, and the claim of their one page. Mixed into Journal (receiver/journal.py), whose connection,
transactions and row helpers these use; the jobs of an incident are read there.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from tts_sentinel.receiver.readers import Rows
from tts_sentinel.receiver.records import Incident, encode_columns
from tts_sentinel.receiver.txn import Transaction

SELECT_INCIDENTS = f"SELECT {', '.join(f.name for f in fields(Incident))} FROM incidents"  # noqa: S608 - Incident's fields


class IncidentRows:
    """The incidents table and incident_firing, for Journal."""

    _conn: sqlite3.Connection

    if TYPE_CHECKING:
        def transaction(self, savepoint: bool = False) -> Transaction: ...
        def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor | Rows: ...
        def _insert(self, table: str, created: str, fields: dict[str, Any]) -> int: ...
        def _update(self, table: str, row_id: int, fields: dict[str, Any]) -> None: ...

    def insert_incident(self, **fields: Any) -> Incident:
        """Open an incident; returns it as stored."""
        with self.transaction():
            incident = self.incident(self._insert("incidents", "opened_at", fields))
        assert incident is not None  # noqa: S101 - just inserted under the lock
        return incident

    def update_incident(self, incident_id: int, **fields: Any) -> None:
        """Update columns of one incident."""
        self._update("incidents", incident_id, fields)

    def incident(self, incident_id: int | None) -> Incident | None:
        """One incident, or None."""
        if incident_id is None:
            return None
        row = self.execute(SELECT_INCIDENTS + " WHERE id=?", (incident_id,)).fetchone()
        return None if row is None else Incident.from_row(dict(row))

    def incidents(self, limit: int = 100, target: str | None = None, open_only: bool = False) -> list[Incident]:
        """Newest incidents first."""
        sql, params = where_equal(SELECT_INCIDENTS + " WHERE 1=1", [], target=target)
        if open_only:
            sql += " AND closed_at IS NULL"
        rows = self.execute(sql + " ORDER BY id DESC LIMIT ?", [*params, limit]).fetchall()
        return [Incident.from_row(dict(r)) for r in rows]

    def open_incident(self, target: str, family: str) -> Incident | None:
        """The open incident of this family on this target, if any."""
        row = self.execute(
            SELECT_INCIDENTS + " WHERE target=? AND family=? AND closed_at IS NULL ORDER BY id DESC LIMIT 1",
            (target, family),
        ).fetchone()
        return None if row is None else Incident.from_row(dict(row))

    def add_firing(self, incident_id: int, fingerprints: Iterable[str]) -> None:
        """These alerts of the incident fire (again); counted once each."""
        with self.transaction():
            cur = self._conn.executemany(
                "INSERT OR IGNORE INTO incident_firing(incident_id, fingerprint) VALUES (?,?)",
                [(incident_id, fp) for fp in fingerprints],
            )
            if cur.rowcount > 0:
                self._conn.execute(
                    "UPDATE incidents SET firing_alerts = firing_alerts + ? WHERE id=?", (cur.rowcount, incident_id)
                )

    def open_incidents_firing(self, target: str, fingerprint: str) -> list[Incident]:
        """The open incidents of `target` that hold this alert as firing, newest first."""
        rows = self.execute(
            SELECT_INCIDENTS + " WHERE target=? AND closed_at IS NULL"  # noqa: S608
            " AND id IN (SELECT incident_id FROM incident_firing WHERE fingerprint=?) ORDER BY id DESC",
            (target, fingerprint),
        ).fetchall()
        return [Incident.from_row(dict(r)) for r in rows]

    def drop_firing(self, incident_id: int, fingerprint: str) -> int:
        """This alert of the incident resolved; returns how many of its alerts still fire."""
        with self.transaction():
            cur = self._conn.execute(
                "DELETE FROM incident_firing WHERE incident_id=? AND fingerprint=?", (incident_id, fingerprint)
            )
            self._conn.execute(
                "UPDATE incidents SET firing_alerts = MAX(firing_alerts - ?, 0) WHERE id=?", (cur.rowcount, incident_id)
            )
            row = self._conn.execute("SELECT firing_alerts FROM incidents WHERE id=?", (incident_id,)).fetchone()
        return 0 if row is None else int(row[0])

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


def where_equal(sql: str, params: list[Any], **equal: Any) -> tuple[str, list[Any]]:
    """Append `AND column=?` for every given (not None) column; column names come from code only."""
    for column, value in equal.items():
        if value is not None:
            sql += f" AND {column}=?"
            params.append(value)
    return sql, params
