"""`tts-sentinel actions`: the journal as a table and as JSON, from the file or a running receiver."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.receiver.conftest import TOKEN, alert, payload, receiver_config
from tts_sentinel.receiver.journal import Journal


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "tts_sentinel.cli", "actions", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_table_and_json_from_the_journal_file(tmp_path):
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    ok = journal.insert_job(
        target="qwen3-tts",
        tier="light",
        status="succeeded",
        reason="L1 failing",
        verification={"success": True},
        started_at=100.0,
        finished_at=102.5,
    )
    journal.insert_job(
        target="qwen3-tts",
        tier="medium",
        status="failed",
        reason="OOM",
        escalation="escalated to heavy as job 3",
        verification={"success": False},
        incident_id=7,
        family="gpu_memory",
    )
    journal.close()

    table = _cli("--journal", str(path))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:6] == ["id", "when", "target", "tier", "status", "verify"]
    assert "medium" in lines[1] and "FAIL" in lines[1] and "escalated to heavy" in lines[1]
    assert "7:gpu_memory" in lines[1].split() and "incident" in lines[0].split()
    assert lines[2].split()[0] == str(ok) and "2.5" in lines[2] and " ok " in lines[2]

    rows = json.loads(_cli("--journal", str(path), "--json").stdout)
    assert [r["tier"] for r in rows] == ["medium", "light"]


def test_from_a_running_receiver_and_a_missing_journal(make_receiver, tmp_path):
    receiver = make_receiver(receiver_config(None, None, dry_run=True))
    job_id = receiver.post(payload(alert(tier="light"))).json()["new_jobs"][0]
    receiver.wait_job(job_id)
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    assert _cli("--url", receiver.url, "--json").returncode == 2, "the journal needs the token"
    rows = json.loads(_cli("--url", receiver.url, "--token-file", str(token), "--json").stdout)
    assert rows[0]["id"] == job_id and rows[0]["status"] == "dry_run"
    missing = _cli("--journal", str(tmp_path / "nope.sqlite3"))
    assert missing.returncode == 2 and "no journal at" in missing.stderr
