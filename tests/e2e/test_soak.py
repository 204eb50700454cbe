"""`tts-sentinel soak` on the real stack: a short sequence, scored, reported, and nothing left running."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from support import require_binary

from tests.e2e.test_demo import processes_mentioning

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def binaries():
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")


def test_a_short_soak_scores_each_incident_compares_the_baseline_and_leaves_its_files(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "tts_sentinel.cli", "soak", "--faults", "hang,oom", "--gap", "15",
         "--incident-timeout", "60", "--keep", str(run_dir), "--json"],
        capture_output=True, text=True, timeout=540)
    print(proc.stderr)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    hang, oom = report["incidents"]

    assert (hang["fault"], hang["component"], oom["fault"], oom["component"]) == ("hang", "web", "oom", "inference")
    for incident in (hang, oom):
        assert incident["healed"] is True, incident
        assert set(incident["checks"]) == {"right_component", "right_ladder", "no_cross_incident_escalation",
                                           "healed_as_expected", "paged_iff_not_healed"}
        assert incident["checks"]["right_component"] is True and incident["checks"]["right_ladder"] is True
        assert 0 <= incident["alert_seconds"] <= incident["green_seconds"]
        assert incident["action_seconds"] <= incident["green_seconds"]
        assert incident["pages"] == 0 and incident["checks"]["paged_iff_not_healed"] is True  # healed: no page
    assert hang["components"] == ["web"] and hang["tiers"][0] == "light"
    assert oom["components"] == ["inference"] and oom["tiers"][0] == "medium"
    assert report["summary"]["healed"] == 2 and report["summary"]["cross_incident_escalations"] == 0
    # the liveness check restarts a hung web front, but an OOM leaves /health green: the baseline misses it
    assert (hang["baseline"], oom["baseline"]) == ("green", "missed")
    assert report["summary"]["baseline"]["missed"] == 1
    assert proc.returncode == (0 if all(i["ok"] for i in report["incidents"]) else 1)

    assert (run_dir / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 1 | hang:web |" in (run_dir / "report.md").read_text()
    assert json.loads((run_dir / "soak.json").read_text())["summary"] == report["summary"]
    for kept in ("sentinel/state/journal.sqlite3", "sentinel/run/supervisord.log", "sentinel/logs/webui.log",
                 "baseline/logs/inference.log"):
        assert (run_dir / kept).exists(), kept
    assert processes_mentioning(str(run_dir)) == []


def test_ctrl_c_stops_every_process_the_soak_started(tmp_path):
    run_dir = tmp_path / "soak"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tts_sentinel.cli", "soak", "--faults", "hang,oom,silent", "--dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "injected hang" in line:
                break
        assert processes_mentioning(str(run_dir)), "".join(lines)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(lines) + rest
    assert "every process it started is stopped" in rest
    time.sleep(0.5)
    assert processes_mentioning(str(run_dir)) == []
    assert not (run_dir / "sentinel").exists(), "without --keep the stack's directory is removed"
