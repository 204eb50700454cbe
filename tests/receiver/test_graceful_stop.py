"""SIGTERM while an action hangs: the receiver stops within its grace and leaves the job as a crash
would, `running` for the next start to resume, with the action's commands killed (not orphaned,
still acting beside the resumed step) and nothing journaled as failed or escalated.

A real `tts-sentinel receiver` whose command actuator's restart hangs the first time it runs;
systemd's stop reaches every process of the unit, so every process here gets the SIGTERM.
"""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from tests.receiver.conftest import alert, payload, wait_for
from tests.receiver.test_recovery import AUTH, _start_command_receiver, _start_receiver, _up
from tests.receiver.test_split import _action_pids, _alive, _child, _kill_actions
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.records import Job


@pytest.mark.parametrize("worker_process", [True, False], ids=["worker-process", "one-process"])
def test_sigterm_past_the_grace_leaves_a_hung_action_to_the_next_start(tmp_path, worker_process):
    marker = f"tts-stop-{os.getpid()}-{worker_process}"
    once = tmp_path / "hung-once"  # the first restart hangs; the resumed one finds this and succeeds
    script = f'if [ -e "$0" ]; then exit 0; fi; : > "$0"; sleep 300; : {marker}'
    settings = {"stop_grace_seconds": 1, "worker_process": worker_process}
    proc, url, log = _start_command_receiver(tmp_path, ["/bin/sh", "-c", script, str(once)],
                                             receiver=settings, timeout_seconds=600)
    children: list[int] = []
    try:
        wait_for(lambda: _up(url), timeout=30, what="receiver up")
        children = _child(proc.pid, "worker") + _child(proc.pid, "intake")
        assert len(children) == (2 if worker_process else 0), children
        answer = httpx.post(url + "/alerts", json=payload(alert(service="svc", fingerprint="a")), headers=AUTH)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: _action_pids(marker), timeout=30, what="the action hanging")
        for pid in (proc.pid, *children):
            os.kill(pid, signal.SIGTERM)
        assert proc.wait(60) == 0
        wait_for(lambda: not any(map(_alive, children)), timeout=30, what="the children to exit")
        wait_for(lambda: not _action_pids(marker), timeout=10, what="the hung action to be killed")
    finally:
        _kill_actions(marker)
        if proc.poll() is None:
            proc.kill()
        log.close()
    text = (tmp_path / "receiver.log").read_text()
    job_id = answer.json()["new_jobs"][0]
    where = "worker process: stopping" if worker_process else "receiver: stopping"
    assert f"{where}: light job {job_id} on svc left running" in text, text[-3000:]
    assert f"{where}: killing the running action /bin/sh -c {script}" in text, text[-3000:]
    assert [(j.id, j.status) for j in _jobs(tmp_path)] == [(job_id, "running")], "not failed, not escalated"

    # The next start resumes it from its step: the restart runs again, once, and succeeds.
    with (tmp_path / "receiver-2.log").open("w") as log:
        again = _start_receiver(tmp_path / "sentinel.yml", tmp_path / "token", log)
        try:
            wait_for(lambda: _up(url), timeout=30, what="receiver up again")
            wait_for(lambda: [j.status for j in _jobs(tmp_path)] == ["succeeded"], timeout=30, what="the job resumed")
        finally:
            again.terminate()
            assert again.wait(30) == 0
    (job,) = _jobs(tmp_path)
    assert "interrupted by a receiver restart (attempt 1); resumed" in job.note, job.note


def _jobs(tmp_path) -> list[Job]:
    """The journal's jobs, newest first, read by a connection of the test's own."""
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        return journal.jobs(limit=10)
    finally:
        journal.close()
