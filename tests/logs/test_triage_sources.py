"""`triage` never turns "could not read anything" into an all-clear."""

from __future__ import annotations

import io
import json
import os
import time
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta

from tts_sentinel.cli import main

NOW = datetime(2024, 6, 15, 14, 30, 0)


def run_triage(config, *extra):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["triage", "--since", "10m", "--config", str(config), "--now", NOW.isoformat(), *extra])
    return rc, out.getvalue(), err.getvalue()


def files_config(tmp_path, *names):
    cfg = tmp_path / "sentinel.yml"
    cfg.write_text("exporter:\n  logs:\n    files:\n"
                   + "".join(f"      - {{name: {n}, path: {tmp_path / (n + '.log')}}}\n" for n in names))
    return cfg


def test_every_source_missing_is_an_error_with_exit_2(tmp_path):
    rc, out, err = run_triage(files_config(tmp_path, "webui", "inference"))
    assert rc == 2
    assert "could not read any configured log" in err
    assert "VERDICT" not in out
    rc, out, _ = run_triage(files_config(tmp_path, "webui"), "--json")
    assert rc == 2 and json.loads(out)["status"] == "unreadable"


def test_readable_logs_with_nothing_in_the_window_say_so(tmp_path):
    old = tmp_path / "webui.log"
    old.write_text((NOW - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S,000 [INFO] started\n"))
    stamp = time.mktime((NOW - timedelta(hours=2)).timetuple())
    os.utime(old, (stamp, stamp))
    rc, out, err = run_triage(files_config(tmp_path, "webui", "inference"))
    assert rc == 0
    assert "no log lines at all" in out
    assert "inference.log: no such file" in err


def test_lines_without_a_pattern_are_an_all_clear(tmp_path):
    (tmp_path / "webui.log").write_text((NOW - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S,000 [INFO] ok\n"))
    rc, out, _ = run_triage(files_config(tmp_path, "webui"))
    assert rc == 0
    assert "no known error pattern" in out
    rc, out, _ = run_triage(files_config(tmp_path, "webui"), "--json")
    assert json.loads(out)["status"] == "ok"
