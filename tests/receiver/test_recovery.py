"""A receiver killed mid-action (SIGKILL): the job is resumed at start-up, never lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import yaml
from support import free_port

from tests.receiver.conftest import TOKEN, alert, payload, receiver_config, wait_for
from tts_sentinel.receiver.journal import Journal


def _start_receiver(config_path, token_path, log):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tts_sentinel.cli",
            "receiver",
            "--config",
            str(config_path),
            "--token-file",
            str(token_path),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _start_command_receiver(tmp_path, restart, receiver=None, **command):
    """A real receiver process whose one target "svc" restarts with the command actuator's
    `restart` argv (light tier: that restart alone), with `receiver` settings over the test's;
    (process, url, its log file)."""
    port = free_port()
    target = {"name": "svc", "match": {"service": "svc"}, "actuator": "command",
              "command": {"restart": restart, **command},
              "cache_dir": None, "weights_dir": None, "service_config": None, "git_dir": None}
    config = tmp_path / "sentinel.yml"
    config.write_text(yaml.safe_dump({"receiver": {
        "listen_port": port, "journal_path": str(tmp_path / "journal.sqlite3"), "alertmanager_url": None,
        "targets": [target], "tiers": {"light": [{"action": "restart", "component": "web"}]}, **(receiver or {}),
    }}))
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    log = (tmp_path / "receiver.log").open("w")
    return _start_receiver(config, token, log), f"http://127.0.0.1:{port}", log


def _write_config(path, supervisor, probe, journal, port, wait_seconds):
    cfg = receiver_config(supervisor, probe).model_dump(mode="json")
    cfg.update(listen_port=port, journal_path=str(journal))
    cfg["tiers"]["medium"][3]["seconds"] = wait_seconds
    path.write_text(yaml.safe_dump({"receiver": cfg}))


def test_job_interrupted_by_a_crash_is_resumed(supervisor, probe, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    journal_path = tmp_path / "journal.sqlite3"
    config_path = tmp_path / "sentinel.yml"
    token_path = tmp_path / "token"
    token_path.write_text(TOKEN + "\n")
    token_path.chmod(0o600)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    log = (tmp_path / "receiver.log").open("w")
    # A long wait step gives us a moment in the middle of the job to kill the receiver.
    _write_config(config_path, supervisor, probe, journal_path, port, wait_seconds=60)
    proc = _start_receiver(config_path, token_path, log)
    try:
        wait_for(lambda: _up(url), timeout=30, what="receiver up")
        supervisor.inject("inference", "oom")
        job_id = httpx.post(url + "/alerts", json=payload(alert("TtsCudaOom", tier="medium")), headers=headers).json()[
            "new_jobs"
        ][0]
        wait_for(
            lambda: any(s["step"].startswith("start inference") for s in _job(url, job_id)["steps"] or []),
            timeout=30,
            what="the job to reach its wait step",
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert Journal(journal_path).job(job_id).status == "running", "the crash left it running"

        _write_config(config_path, supervisor, probe, journal_path, port, wait_seconds=0.2)
        restarted = supervisor.pid("tts-inference")  # by the job, before the crash
        proc = _start_receiver(config_path, token_path, log)
        wait_for(lambda: _up(url), timeout=30, what="receiver up again")
        job = wait_for(
            lambda: (j := _job(url, job_id))["status"] not in ("queued", "running") and j,
            timeout=30,
            what="the resumed job",
        )
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2 and "resumed at step 4" in job["note"], job["note"]
        assert supervisor.pid("tts-inference") == restarted, "the resumed job did not restart it again"
        assert supervisor.healthy("inference")
        again = httpx.post(url + "/alerts", json=payload(alert("TtsCudaOom", tier="medium")), headers=headers)
        assert again.json()["duplicates"] == 1 and again.json()["new_jobs"] == []
        assert [j["id"] for j in httpx.get(url + "/actions", headers=AUTH).json()] == [job_id]
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_interrupted_heavy_job_is_reported_not_resumed(make_receiver, tmp_path):
    journal_path = tmp_path / "journal.sqlite3"
    journal = Journal(journal_path)
    heavy = journal.insert_job(target="qwen3-tts", tier="heavy", status="running", attempts=1, reason="segfault")
    light = journal.insert_job(target="qwen3-tts", tier="light", status="running", attempts=2, reason="l1")
    journal.close()
    receiver = make_receiver(receiver_config(None, None), journal_path=journal_path)
    for job_id in (heavy, light):
        job = receiver.job(job_id)
        assert job["status"] == "interrupted" and "not resumed" in job["note"]
        assert "on-call NOT told" in job["note"], "no Alertmanager configured: the journal says so"


def _write_split_config(path, supervisor, probe, journal, port, gap_seconds):
    """Medium tier with a gap between stopping and starting the inference service: while the
    gap's wait step runs, the journal says "stopped, not started", the window a crash hits."""
    cfg = receiver_config(supervisor, probe).model_dump(mode="json")
    cfg.update(listen_port=port, journal_path=str(journal))
    cfg["tiers"]["medium"] = [
        {"action": "stop", "component": "inference"},
        {"action": "wait", "seconds": gap_seconds},
        {"action": "start", "component": "inference"},
        {"action": "wait", "seconds": 0.3},
        {"action": "verify", "module": "synthesis"},
    ]
    path.write_text(yaml.safe_dump({"receiver": cfg}))


def _supervisord_log_count(supervisor, text):
    return (supervisor.workdir / "supervisord.log").read_text().count(text)


def test_a_crash_between_stop_and_start_resumes_at_start_not_from_the_top(supervisor, probe, tmp_path):
    """SIGKILL after the stop step, supervisord restarted while the receiver is down, Alertmanager's
    re-sends (same and earlier startsAt) at the restart: one job, resumed at its journaled step."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    journal_path, config_path, token_path = tmp_path / "journal.sqlite3", tmp_path / "sentinel.yml", tmp_path / "token"
    token_path.write_text(TOKEN + "\n")
    token_path.chmod(0o600)
    log = (tmp_path / "receiver.log").open("w")
    # The gap is the deterministic window: the job sits in it for 120 s unless killed.
    _write_split_config(config_path, supervisor, probe, journal_path, port, gap_seconds=120)
    proc = _start_receiver(config_path, token_path, log)
    firing = alert("TtsCudaOom", tier="medium", starts="2026-11-23T10:00:05Z")
    try:
        wait_for(lambda: _up(url), timeout=30, what="receiver up")
        supervisor.inject("inference", "oom")
        job_id = httpx.post(url + "/alerts", json=payload(firing), headers=AUTH).json()["new_jobs"][0]
        wait_for(lambda: [s["step"] for s in _job(url, job_id)["steps"] or []] == ["stop inference via supervisord"],
                 timeout=30, what="the job to journal its stop step")
        assert supervisor.rpc().getProcessInfo("tts-inference")["statename"] == "STOPPED"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert Journal(journal_path).job(job_id).status == "running", "the crash left it running"
        stops = _supervisord_log_count(supervisor, "stopped: tts-inference")
        assert stops == 1
        # The host's process manager restarts during the action: it brings the programs back itself.
        supervisor.rpc().restart()
        wait_for(lambda: supervisor._all_running() and supervisor.healthy("inference"), timeout=30,
                 what="supervisord back with both programs")
        spawned = _supervisord_log_count(supervisor, "spawned: 'tts-inference'")

        _write_split_config(config_path, supervisor, probe, journal_path, port, gap_seconds=0.2)
        proc = _start_receiver(config_path, token_path, log)
        wait_for(lambda: _up(url), timeout=30, what="receiver up again")
        # Alertmanager re-sends what it could not deliver, from both peers (one with the merged startsAt).
        earlier = {**firing, "startsAt": "2026-11-23T10:00:00Z"}
        resent = [httpx.post(url + "/alerts", json=payload(a), headers=AUTH).json() for a in (firing, earlier)]
        assert [r["new_jobs"] for r in resent] == [[], []] and [r["duplicates"] for r in resent] == [1, 1], resent
        job = wait_for(lambda: (j := _job(url, job_id))["status"] not in ("queued", "running") and j,
                       timeout=60, what="the resumed job")
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2 and "resumed at step 2" in job["note"], job["note"]
        steps = [(s["step"], s.get("resumed", False)) for s in job["steps"]]
        assert steps[0] == ("stop inference via supervisord", True), steps
        assert [name for name, _ in steps].count("stop inference via supervisord") == 1
        start = next(s for s in job["steps"] if s["step"] == "start inference via supervisord")
        assert "ALREADY_STARTED" in start["output"], "the resumed start found supervisord's own restart"
        # supervisord's own log: the resumed job neither stopped it again nor started it a second time.
        assert _supervisord_log_count(supervisor, "stopped: tts-inference") == stops, "stopped once, before the crash"
        assert _supervisord_log_count(supervisor, "spawned: 'tts-inference'") == spawned, "not started twice"
        assert supervisor.healthy("inference")
        assert [j["id"] for j in httpx.get(url + "/actions", headers=AUTH).json()] == [job_id]
        [incident] = httpx.get(url + "/incidents", headers=AUTH).json()
        assert incident["tiers"] == ["medium"], "the resumed job is one action of the incident"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_the_target_crashing_during_verification_escalates_once(supervisor, probe, make_receiver):
    """The inference service dies (SIGKILL, no autorestart) at the verification's first probe."""
    receiver = make_receiver(receiver_config(supervisor, probe))
    killed: list[int] = []

    def crash_target(module):
        if module == "synthesis" and not killed:
            killed.append(supervisor.pid("tts-inference"))
            os.kill(killed[0], signal.SIGKILL)

    probe.on_probe = crash_target
    supervisor.inject("inference", "oom")
    answer = receiver.post(payload(alert("TtsCudaOom", tier="medium"))).json()
    medium = receiver.wait_job(answer["new_jobs"][0], timeout=60)
    assert killed, "the hook ran during the verification"
    assert medium["status"] == "failed" and medium["verification"]["success"] is False, medium
    assert "escalated to heavy as job" in (medium["escalation"] or ""), medium
    resent = receiver.post(payload(alert("TtsCudaOom", tier="medium"))).json()
    assert resent["duplicates"] == 1 and resent["new_jobs"] == []
    wait_for(receiver.idle, timeout=60, what="the escalation to end")
    jobs = receiver.actions()
    assert [(j["tier"], j["escalated_from"]) for j in reversed(jobs)] == [("medium", None), ("heavy", medium["id"])]


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _up(url):
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _job(url, job_id):
    return next(j for j in httpx.get(url + "/actions", headers=AUTH).json() if j["id"] == job_id)


def test_refuses_to_start_without_a_token(tmp_path):
    config = tmp_path / "sentinel.yml"
    config.write_text(
        yaml.safe_dump({"receiver": {"listen_port": free_port(), "journal_path": str(tmp_path / "j.sqlite3")}})
    )
    cli = [sys.executable, "-m", "tts_sentinel.cli", "receiver", "--config", str(config)]
    no_token = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert no_token.returncode == 2 and "--insecure" in no_token.stderr
    short = tmp_path / "short.token"
    short.write_text("abc\n")
    weak = subprocess.run([*cli, "--token-file", str(short)], capture_output=True, text=True, timeout=60)
    assert weak.returncode == 2 and "shorter than 16" in weak.stderr
    assert not (tmp_path / "j.sqlite3").exists(), "nothing started"
