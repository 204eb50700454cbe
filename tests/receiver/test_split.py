"""The receiver as several processes (receiver/split.py): the front answers, the worker process acts
(and the intake process admits: tests/receiver/test_intake_process.py).

A real `tts-sentinel receiver` against a real supervisord: the worker process killed in the middle
of a job is started again and the job resumes where it stopped (not from the top, not lost); the
front killed leaves no child process acting behind it; /metrics shows the worker's counters once.
"""

from __future__ import annotations

import os
import signal
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support import free_port

from tests.receiver.conftest import TOKEN, alert, payload, wait_for
from tests.receiver.test_recovery import AUTH, _job, _start_command_receiver, _start_receiver, _up, _write_config
from tts_sentinel.harness.procstat import child_pids
from tts_sentinel.receiver.child import role_of
from tts_sentinel.receiver.journal import Journal


def _child(pid: int, role: str) -> list[int]:
    return [child for child in child_pids(pid) if role_of(child) == role]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _metrics(url: str) -> dict[str, dict[tuple, float]]:
    families: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=10).text):
        assert family.name not in families, f"{family.name} exposed twice"
        families[family.name] = {(s.name, *sorted(s.labels.items())): s.value for s in family.samples}
    return families


def _start(tmp_path, supervisor, probe, wait_seconds):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    journal = tmp_path / "journal.sqlite3"
    config = tmp_path / "sentinel.yml"
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    _write_config(config, supervisor, probe, journal, port, wait_seconds=wait_seconds)
    log = (tmp_path / "receiver.log").open("w")
    proc = _start_receiver(config, token, log)
    try:
        wait_for(lambda: _up(url), timeout=30, what="receiver up")
        workers, intakes = _child(proc.pid, "worker"), _child(proc.pid, "intake")
        assert len(workers) == 1 and len(intakes) == 1, f"one worker and one intake process: {workers} {intakes}"
        assert len(child_pids(proc.pid)) == 2, child_pids(proc.pid)
    except BaseException:
        proc.terminate()  # its children end with it
        proc.wait(30)
        log.close()
        raise
    return proc, url, workers[0], log


def test_worker_process_killed_mid_job_is_respawned_and_the_job_resumes(supervisor, probe, tmp_path):
    proc, url, worker, log = _start(tmp_path, supervisor, probe, wait_seconds=6)
    try:
        supervisor.inject("inference", "oom")
        answer = httpx.post(url + "/alerts", json=payload(alert("TtsCudaOom", tier="medium")), headers=AUTH)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["new_jobs"][0]
        wait_for(lambda: any(s["step"].startswith("start inference") for s in _job(url, job_id)["steps"] or []),
                 timeout=30, what="the job to reach its wait step")
        restarted = supervisor.pid("tts-inference")
        os.kill(worker, signal.SIGKILL)
        # The front answers on: a re-send while the worker process is down is a duplicate, not a new job.
        again = httpx.post(url + "/alerts", json=payload(alert("TtsCudaOom", tier="medium")), headers=AUTH)
        assert again.status_code == 202 and again.json()["new_jobs"] == [], again.text
        job = wait_for(lambda: (j := _job(url, job_id))["status"] not in ("queued", "running") and j,
                       timeout=60, what="the job resumed by a new worker process")
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2 and "resumed at step 4" in job["note"], job["note"]
        assert supervisor.pid("tts-inference") == restarted, "resumed after its start step: no second restart"
        new_workers = _child(proc.pid, "worker")
        assert len(new_workers) == 1 and new_workers[0] != worker, new_workers
        wait_for(lambda: _up(url), timeout=30, what="healthz ok again")
        metrics = _metrics(url)
        assert metrics["tts_receiver_worker_up"][("tts_receiver_worker_up",)] == 1.0
        assert metrics["tts_receiver_worker_restarts"][("tts_receiver_worker_restarts_total",)] == 1.0
        # The new worker process counts the job it finished; the front's own counters stay with it.
        actions = metrics["tts_remediation_actions"]
        assert actions[("tts_remediation_actions_total", ("result", "success"), ("tier", "medium"))] == 1.0
        assert metrics["tts_webhook_requests"][("tts_webhook_requests_total", ("code", "202"))] == 2.0
        assert [j["id"] for j in httpx.get(url + "/actions", headers=AUTH).json()] == [job_id]
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    text = (tmp_path / "receiver.log").read_text()
    assert f"worker process {worker} exited with code -9" in text, text[-2000:]
    assert proc.returncode == 0


def test_front_killed_leaves_no_child_process_acting(supervisor, probe, tmp_path):
    proc, url, worker, log = _start(tmp_path, supervisor, probe, wait_seconds=30)
    intake = _child(proc.pid, "intake")[0]
    try:
        supervisor.inject("inference", "oom")
        job_id = httpx.post(url + "/alerts", json=payload(alert("TtsCudaOom", tier="medium")),
                            headers=AUTH).json()["new_jobs"][0]
        wait_for(lambda: any(s["step"].startswith("start inference") for s in _job(url, job_id)["steps"] or []),
                 timeout=30, what="the job to reach its wait step")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not _alive(worker), timeout=10, what="the worker process to end with its front")
        wait_for(lambda: not _alive(intake), timeout=10, what="the intake process to end with its front")
    finally:
        for child in (worker, intake):
            if _alive(child):
                os.kill(child, signal.SIGKILL)
        log.close()
    text = (tmp_path / "receiver.log").read_text()
    assert "worker process: the receiver's front is gone" in text, text[-2000:]
    assert "intake process: the receiver's front is gone" in text, text[-2000:]


def test_sigterm_stops_all_after_the_running_job(supervisor, probe, tmp_path):
    """systemd's stop and Ctrl-C reach every process: the children wait for their front, which
    answers, then lets the running job end before all exit."""
    proc, url, worker, log = _start(tmp_path, supervisor, probe, wait_seconds=1)
    intake = _child(proc.pid, "intake")[0]
    try:
        supervisor.inject("inference", "oom")
        job_id = httpx.post(url + "/alerts", json=payload(alert("TtsCudaOom", tier="medium")),
                            headers=AUTH).json()["new_jobs"][0]
        wait_for(lambda: _job(url, job_id)["status"] == "running", timeout=30, what="the job to run")
        os.kill(worker, signal.SIGTERM)  # as systemd's stop: every process gets it
        os.kill(intake, signal.SIGTERM)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
        deadline = time.monotonic() + 10
        while (_alive(worker) or _alive(intake)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker) and not _alive(intake)
    finally:
        log.close()
    job = Journal(tmp_path / "journal.sqlite3").job(job_id)
    assert job.status == "succeeded", (job.status, job.note)


def _action_pids(marker: str) -> list[int]:
    """The processes whose command line carries `marker` (the action's shell)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if marker.encode() in cmdline.read() and _alive(int(pid)):
                    found.append(int(pid))
        except OSError:
            continue
    return found


def _kill_actions(marker: str) -> None:
    """When a test fails: end each action still running, its whole group (its sleep too)."""
    for pid in _action_pids(marker):
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_front_killed_mid_action_takes_the_action_with_it(tmp_path):
    """A command actuator's action runs in a session of its own; a SIGKILLed front must not leave it
    running (its timeout unwatched, the next receiver running the same step again)."""
    marker = f"tts-split-{os.getpid()}-{time.monotonic_ns()}"
    proc, url, log = _start_command_receiver(tmp_path, ["/bin/sh", "-c", f"sleep 300; : {marker}"],
                                             timeout_seconds=600)
    try:
        wait_for(lambda: _up(url), timeout=30, what="receiver up")
        worker = _child(proc.pid, "worker")[0]
        answer = httpx.post(url + "/alerts", json=payload(alert(service="svc", fingerprint="a")), headers=AUTH)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: _action_pids(marker), timeout=30, what="the action running")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not _alive(worker), timeout=10, what="the worker process to end with its front")
        wait_for(lambda: not _action_pids(marker), timeout=10, what="the action to end with its receiver")
    finally:
        _kill_actions(marker)
        log.close()
    text = (tmp_path / "receiver.log").read_text()
    assert f"worker process: the front is gone: killing the running action /bin/sh -c sleep 300; : {marker}" in text, \
        text[-2000:]
    job_id = answer.json()["new_jobs"][0]
    job = Journal(tmp_path / "journal.sqlite3").job(job_id)
    assert job.status == "running", "left to the next receiver to resume, not journaled as failed"
