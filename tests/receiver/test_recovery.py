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
        supervisor.inject("inference", "oom")  # the fault is back: only a real re-run heals it
        proc = _start_receiver(config_path, token_path, log)
        wait_for(lambda: _up(url), timeout=30, what="receiver up again")
        job = wait_for(
            lambda: (j := _job(url, job_id))["status"] not in ("queued", "running") and j,
            timeout=30,
            what="the resumed job",
        )
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2 and "resumed" in job["note"]
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
