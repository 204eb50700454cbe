"""A later job of an old incident takes its root cause from its own time, never from another incident's lines."""

from __future__ import annotations

import time

from tests.receiver.conftest import alert, now_iso, payload, receiver_config
from tests.receiver.test_incidents import _line, _logs


def test_a_recurrence_in_an_old_incident_does_not_take_the_lines_of_an_incident_in_between(make_receiver, tmp_path):
    # As in the demo: hang (web_front), then an OOM (gpu_memory, its own incident), then error500 on the
    # web front again: the third job joins the first incident, whose window began before the OOM.
    receiver = make_receiver(receiver_config(None, None, dry_run=True), logs_config=_logs(tmp_path))
    (tmp_path / "health.log").write_text("")
    (tmp_path / "inference.log").write_text(_line(1, "Stream buffer underflow: expected 2048 samples, got 0"))
    first = receiver.wait_job(receiver.post(payload(alert(starts=now_iso()))).json()["new_jobs"][0])
    with (tmp_path / "inference.log").open("a") as f:
        f.write(_line(0, "[CUDA] Out of memory on device 0"))
    oom = receiver.wait_job(receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", pattern="cuda_oom",
                                                        starts=now_iso()))).json()["new_jobs"][0])
    assert oom["incident_id"] != first["incident_id"]
    time.sleep(1.2)  # the web front fails again after the OOM's incident was dealt with
    with (tmp_path / "inference.log").open("a") as f:
        f.write(_line(0, "Stream buffer underflow: expected 2048 samples, got 0"))
    answer = receiver.post(payload(alert(fingerprint="again", starts=now_iso()))).json()
    again = receiver.wait_job((answer["new_jobs"] + answer["joined_jobs"])[0])
    assert again["id"] != first["id"] and again["incident_id"] == first["incident_id"], again
    patterns = {e["pattern"] for e in again["triage"]["events"]}
    assert "cuda_oom" not in patterns and "stream_underflow" in patterns, again["triage"]["events"]
