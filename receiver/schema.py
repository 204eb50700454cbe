"""The journal's tables, how a journal written by an older receiver is brought up to them, and the
private files they live in.

Alerts live in tables of their own (`job_alerts`, `incident_firing`), so joining a running job
or incident inserts rows instead of rewriting a growing JSON column; alerts that match no target
are counted per alertname and hour (`unmatched_alerts`), never stored one row each.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

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
    family TEXT,
    alerts_total INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_target_status ON jobs(target, status);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE TABLE IF NOT EXISTS job_alerts (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT '',
    alertname TEXT NOT NULL DEFAULT '',
    verify TEXT NOT NULL DEFAULT '',
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_alerts_job ON job_alerts(job_id, id);
CREATE INDEX IF NOT EXISTS job_alerts_verify ON job_alerts(job_id, verify);
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
    closed_at REAL,
    firing_alerts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS incidents_target_open ON incidents(target, closed_at);
CREATE TABLE IF NOT EXISTS incident_firing (
    incident_id INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS incident_firing_fingerprint ON incident_firing(fingerprint);
CREATE TABLE IF NOT EXISTS alert_keys (
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    tier TEXT NOT NULL,
    job_id INTEGER,
    seen_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, starts_at, tier)
);
CREATE INDEX IF NOT EXISTS alert_keys_seen ON alert_keys(seen_at);
CREATE TABLE IF NOT EXISTS unmatched_alerts (
    hour INTEGER NOT NULL,
    alertname TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    example TEXT NOT NULL DEFAULT '{}',
    UNIQUE (hour, alertname)
);
"""

# Columns added since the first journals, with their type (NULL or the default for old rows).
_ADDED = {
    "jobs": (("incident_id", "INTEGER"), ("family", "TEXT"), ("alerts_total", "INTEGER NOT NULL DEFAULT 0")),
    "incidents": (("firing_alerts", "INTEGER NOT NULL DEFAULT 0"),),
}


def create_schema(conn: sqlite3.Connection) -> None:
    """Create what is missing and move an older journal's JSON alert lists into their tables."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table, added in _ADDED.items():
        if table not in tables:
            continue
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}  # noqa: S608 - our names
        for column, kind in added:
            if column not in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    conn.executescript(SCHEMA)
    conn.execute("CREATE INDEX IF NOT EXISTS jobs_incident ON jobs(incident_id)")
    _move_json_alerts(conn)


def _move_json_alerts(conn: sqlite3.Connection) -> None:
    """Alerts an older receiver kept as JSON lists in `jobs.alerts` / `incidents.firing` go to their
    own tables, once, in one transaction."""
    if conn.execute("SELECT 1 FROM jobs WHERE alerts != '[]' LIMIT 1").fetchone() is None and (
        conn.execute("SELECT 1 FROM incidents WHERE firing != '[]' LIMIT 1").fetchone() is None
    ):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "INSERT INTO job_alerts(job_id, fingerprint, alertname, verify, record)"
            " SELECT jobs.id, COALESCE(json_extract(e.value, '$.fingerprint'), ''),"
            " COALESCE(json_extract(e.value, '$.alertname'), ''),"
            " COALESCE(json_extract(e.value, '$.labels.verify'), ''), e.value"
            " FROM jobs, json_each(jobs.alerts) AS e WHERE jobs.alerts != '[]' AND json_valid(jobs.alerts)"
            " ORDER BY jobs.id, e.key"
        )
        conn.execute(
            "UPDATE jobs SET alerts_total = (SELECT COUNT(*) FROM job_alerts WHERE job_id = jobs.id), alerts = '[]'"
            " WHERE alerts != '[]'"
        )
        conn.execute(
            "INSERT OR IGNORE INTO incident_firing(incident_id, fingerprint)"
            " SELECT incidents.id, e.value FROM incidents, json_each(incidents.firing) AS e"
            " WHERE incidents.firing != '[]' AND json_valid(incidents.firing)"
        )
        conn.execute(
            "UPDATE incidents SET firing_alerts = (SELECT COUNT(*) FROM incident_firing"
            " WHERE incident_id = incidents.id), firing = '[]' WHERE firing != '[]'"
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def private_journal_file(path: Path) -> None:
    """Create the journal's missing directories 0700 and the file itself 0600, whatever the umask;
    an existing journal file is tightened to 0600. Links are not followed to the file."""
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # made by someone else meanwhile: keep theirs
        os.chmod(directory, 0o700)  # mkdir's mode is cut by the umask
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot open the journal {path} ({exc.strerror}); it must be a regular file, not a link"
        ) from None
    try:
        _tighten(fd, path)
    finally:
        os.close(fd)


def tighten_sidecars(path: Path) -> None:
    """The journal's -wal and -shm files (SQLite makes them on the first write) 0600 like the journal."""
    for suffix in ("-wal", "-shm", "-journal", "-lock"):
        sidecar = path.with_name(path.name + suffix)
        try:
            fd = os.open(sidecar, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            _tighten(fd, sidecar)
        finally:
            os.close(fd)


def _tighten(fd: int, path: Path) -> None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path} is not a regular file; the journal must be one")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, 0o600)
