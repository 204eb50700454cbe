"""The journal stays bounded: retention deletes old jobs, incidents, their alerts and the unmatched
counts in bounded batches; alerts live in their own tables; an older journal is moved into them."""

from __future__ import annotations

import json
import sqlite3
import time

from tests.receiver.conftest import alert, payload, receiver_config, wait_for
from tts_sentinel.receiver import retention as retention_module
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.retention import JournalRetention
from tts_sentinel.receiver.tiers import Tier

DAY = 86400.0


def _count(journal, table):
    return journal.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_old_jobs_incidents_and_their_alerts_go_in_bounded_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(retention_module, "BATCH_ROWS", 50)
    journal = Journal(tmp_path / "j.sqlite3")
    now = time.time()
    old = now - 100 * DAY
    records = [{"fingerprint": f"f{i}", "alertname": "A", "labels": {}} for i in range(120)]
    closed = journal.insert_incident(target="t", family="f", ladder=["light"], opened_at=old, closed_at=old + 60).id
    journal.add_firing(closed, [f"f{i}" for i in range(70)])
    still_open = journal.insert_incident(target="t", family="g", ladder=["light"], opened_at=old).id
    gone = journal.insert_job(target="t", tier="light", status="succeeded", created_at=old, alerts=records,
                              incident_id=closed)
    kept_open = journal.insert_job(target="t", tier="light", status="failed", created_at=old, incident_id=still_open)
    kept_running = journal.insert_job(target="t", tier="light", status="running", created_at=old)
    recent = journal.insert_job(target="t", tier="light", status="succeeded", alerts=records[:3])
    journal.execute("INSERT INTO unmatched_alerts(hour, alertname, count, first_seen, last_seen)"
                    " VALUES (?, 'Old', 5, ?, ?), (?, 'New', 1, ?, ?)", (old, old, old, now, now, now))

    retention = JournalRetention(journal, retention_seconds=90 * DAY, keys_seconds=7 * DAY)
    passes = []
    while True:
        deleted, more = retention.run_pass()
        passes.append(deleted)
        if not more:
            break
    assert len(passes) >= 3 and max(passes) <= 50 + 50 + 50 + 3, "bounded batches, several passes"
    assert retention.run_pass() == (0, False), "nothing left"
    assert {j.id for j in journal.jobs()} == {kept_open, kept_running, recent}
    assert gone not in {j.id for j in journal.jobs()}
    assert _count(journal, "job_alerts") == 3 and _count(journal, "incident_firing") == 0
    assert [i.id for i in journal.incidents()] == [still_open], "an open incident and its jobs stay"
    assert [r[0] for r in journal.execute("SELECT alertname FROM unmatched_alerts")] == ["New"]


def test_a_job_keeps_its_alerts_in_rows_and_shows_the_first_ten(tmp_path):
    journal = Journal(tmp_path / "j.sqlite3")
    with journal.transaction() as j:
        job_id, _ = j.place_job("t", Tier.LIGHT, "why", [{"fingerprint": "a0", "labels": {"verify": "health"}}])
        for n in range(1, 30):
            again, joined = j.place_job("t", Tier.LIGHT, "why", [{"fingerprint": f"a{n}", "labels": {}}])
            assert joined and again == job_id
    row = journal.execute("SELECT alerts FROM jobs WHERE id=?", (job_id,)).fetchone()[0]
    assert row == "[]", "the job's row does not grow with its alerts"
    job = journal.job(job_id)
    assert job.alerts_total == 30 and [a["fingerprint"] for a in job.alerts] == [f"a{n}" for n in range(10)]
    assert job.verify_labels == ["", "health"], "every alert's verify label, not only the shown ones"
    assert "verify_labels" not in job.as_dict()
    [summary] = journal.job_summaries()
    assert set(summary) >= {"id", "status", "verification", "triage", "note"} and "alerts" not in summary


def test_an_older_journal_moves_its_json_alerts_into_their_tables(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
            target TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'remediate', tier TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, result TEXT, alerts TEXT NOT NULL DEFAULT '[]',
            steps TEXT NOT NULL DEFAULT '[]', verification TEXT, escalated_from INTEGER, escalation TEXT,
            triage TEXT, dry_run INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
            started_at REAL, finished_at REAL, note TEXT NOT NULL DEFAULT '', duplicates INTEGER NOT NULL DEFAULT 0,
            incident_id INTEGER, family TEXT);
        CREATE TABLE incidents (id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, family TEXT NOT NULL,
            family_reason TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'open', opened_at REAL NOT NULL,
            updated_at REAL NOT NULL, ladder TEXT NOT NULL DEFAULT '[]', rung INTEGER NOT NULL DEFAULT 0,
            tiers TEXT NOT NULL DEFAULT '[]', components TEXT NOT NULL DEFAULT '[]',
            firing TEXT NOT NULL DEFAULT '[]', window_start REAL NOT NULL DEFAULT 0, unhealed_since REAL,
            resolved_at REAL, healed_at REAL, paged_at REAL, page TEXT, triage TEXT, closed_at REAL);
    """)
    alerts = [{"fingerprint": f"f{i}", "alertname": "TtsX", "labels": {"verify": "synthesis"}} for i in range(3)]
    conn.execute("INSERT INTO incidents(target, family, opened_at, updated_at, ladder, firing)"
                 " VALUES ('t', 'web_front', 1, 1, '[\"light\"]', '[\"f0\", \"f1\"]')")
    conn.execute("INSERT INTO jobs(created_at, updated_at, target, tier, status, alerts, incident_id)"
                 " VALUES (1, 1, 't', 'light', 'succeeded', ?, 1)", (json.dumps(alerts),))
    conn.commit()
    conn.close()

    journal = Journal(path)
    job = journal.job(1)
    assert job.alerts == alerts and job.alerts_total == 3 and job.verify_labels == ["synthesis"]
    incident = journal.incident(1)
    assert incident.firing_alerts == 2 and [i.id for i in journal.open_incidents_firing("t", "f1")] == [1]
    assert journal.drop_firing(1, "f0") == 1
    journal.close()
    assert Journal(path).job(1).alerts_total == 3, "moved once, not again at the next start"


def test_the_sweeper_applies_the_retention_while_the_receiver_runs(make_receiver):
    receiver = make_receiver(receiver_config(None, None, dry_run=True, retention_days=1))
    job_id = receiver.post(payload(alert())).json()["new_jobs"][0]
    receiver.wait_job(job_id)
    journal = receiver.service.journal
    journal.update_job(job_id, created_at=time.time() - 2 * DAY)
    journal.execute("UPDATE incidents SET closed_at = ?", (time.time() - 2 * DAY,))
    receiver.service.retention.every_seconds = 0.1
    receiver.service.retention._next = 0.0
    wait_for(lambda: journal.job(job_id) is None, timeout=15, what="the old job to be deleted")
    assert receiver.incidents() == [] and _count(journal, "job_alerts") == 0
