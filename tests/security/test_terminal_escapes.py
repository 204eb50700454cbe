"""Attack 9: control characters from an alert never reach the operator's terminal or a log line raw.

A careless config (a label pattern that lets anything through) hands an alert label to a command
that echoes it and fails; the label's escapes travel into the job's note, the receiver's log line
about the job, and `tts-sentinel actions`. Each prints them as visible `\\x1b`-style escapes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

from tests.security.conftest import CLI, alert, command_target, receiver_section, wait_for

EVIL = "\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil"
# What must never be printed raw: C0 controls but the newline, DEL, C1, bidi overrides.
RAW = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]")


def test_escapes_from_an_alert_are_printed_escaped(tmp_path, start_receiver):
    ops = tmp_path / "ops"
    target = command_target("t", ops, fail=True, command={"label_value_pattern": "^.*$"})
    receiver = start_receiver(receiver_section(tmp_path, [target]))
    job_id = receiver.post(alert("TtsHealthProbeFailing", service="t", job=EVIL)).json()["new_jobs"][0]
    job = receiver.wait_job(job_id)
    assert job["status"] == "failed" and EVIL in job["note"], "the raw text really reached the journal"

    log_line = wait_for(
        lambda: next((line for line in receiver.output().splitlines() if b"label was:" in line), None),
        what="the receiver's log line about the job",
    )
    assert not RAW.search(receiver.output()), receiver.output()[-600:]
    assert rb"label was: \x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil" in log_line

    journal = ["--journal", str(receiver.journal_path)]
    wide = {**os.environ, "COLUMNS": "1000"}  # the note column is cut to the terminal's width
    table = subprocess.run([*CLI, "actions", *journal], capture_output=True, timeout=60, env=wide)
    assert table.returncode == 0, table.stderr
    assert not RAW.search(table.stdout), table.stdout
    assert rb"\x1b[2J\x1b]0;pwned" in table.stdout

    as_json = subprocess.run([*CLI, "actions", *journal, "--json"], capture_output=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    assert not RAW.search(as_json.stdout), as_json.stdout
    rows = json.loads(as_json.stdout)
    assert EVIL in next(r for r in rows if r["id"] == job_id)["note"], "JSON escapes keep the exact text"
