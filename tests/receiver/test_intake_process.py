"""The intake process (receiver/intake_process.py): the front's posts admitted in a process of their own.

A real `tts-sentinel receiver` (three processes) against a real supervisord: the intake process
killed with a post in its hands answers that post 503 (Alertmanager sends it again), the front
keeps answering re-sends from memory while it is down and says so on /healthz, a new one admits
the re-send exactly once; what the intake counts (unmatched alerts, the journal's commits) shows
once on the front's /metrics; a reader that fails on a bad answer answers its posts 503 and has
the intake process started again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import httpx

from tests.receiver.conftest import alert, payload, wait_for
from tests.receiver.test_recovery import AUTH, _up
from tests.receiver.test_split import _child, _metrics, _start


def _post(url, body):
    return httpx.post(url + "/alerts", json=body, headers=AUTH, timeout=30)


def test_intake_process_killed_with_a_post_in_hand_is_respawned_and_the_resend_admitted_once(
        supervisor, probe, tmp_path):
    proc, url, _worker, log = _start(tmp_path, supervisor, probe, wait_seconds=1)
    intake = _child(proc.pid, "intake")[0]
    first = payload(alert("TtsCudaOom", tier="medium"))
    second = payload(alert("TtsCudaOom", tier="medium", starts="2026-11-23T11:00:00Z", fingerprint="ffff0000ffff0000"))
    try:
        answer = _post(url, first)
        assert answer.status_code == 202 and len(answer.json()["new_jobs"]) == 1, answer.text
        os.kill(intake, signal.SIGSTOP)  # the next post reaches it and waits there
        held: dict[str, httpx.Response] = {}
        sender = threading.Thread(target=lambda: held.setdefault("answer", _post(url, second)))
        sender.start()
        wait_for(lambda: _unread_bytes(intake) > 0, timeout=10, what="the post to be in the intake process's hands")
        os.kill(intake, signal.SIGKILL)
        sender.join(30)
        assert held["answer"].status_code == 503, held["answer"].text
        assert "retry later" in held["answer"].json()["error"]
        # While no intake process runs, a re-send the memory knows is still answered, and healthz says why.
        again = _post(url, first)
        assert again.status_code == 202 and again.json()["duplicates"] == 1, again.text
        health = httpx.get(url + "/healthz", timeout=5)
        assert health.status_code == 503 and "intake process is dead" in health.text, health.text
        wait_for(lambda: _up(url), timeout=30, what="a new intake process")
        new = _child(proc.pid, "intake")
        assert len(new) == 1 and new[0] != intake, new
        resent = _post(url, second)  # Alertmanager's retry of the post that got the 503
        assert resent.status_code == 202, resent.text
        made = resent.json()["new_jobs"] + resent.json()["joined_jobs"]
        assert len(made) == 1 and resent.json()["duplicates"] == 0, resent.text
        twice = _post(url, second)
        assert twice.status_code == 202 and twice.json()["duplicates"] == 1 and twice.json()["new_jobs"] == []
        metrics = _metrics(url)  # every family once (the helper asserts it)
        assert metrics["tts_receiver_intake_up"][("tts_receiver_intake_up",)] == 1.0
        assert metrics["tts_receiver_intake_restarts"][("tts_receiver_intake_restarts_total",)] == 1.0
        codes = metrics["tts_webhook_requests"]
        assert codes[("tts_webhook_requests_total", ("code", "503"))] == 1.0, codes
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    text = (tmp_path / "receiver.log").read_text()
    assert f"intake process {intake} exited with code -9" in text, text[-2000:]
    assert "1 post(s) not answered" in text, text[-2000:]
    # The refusal log says why in words a person reads (it once printed "None: intake process is dead").
    assert "rejected GET /healthz (503): unhealthy: intake process is dead" in text, text[-2000:]
    assert proc.returncode == 0


def _unread_bytes(pid: int) -> int:
    """Bytes waiting in the receive queues of the process's Unix sockets (`ss -x`: Recv-Q)."""
    out = subprocess.run(["ss", "-x", "-p"], capture_output=True, text=True, check=True).stdout
    return sum(int(line.split()[2]) for line in out.splitlines()[1:] if f"pid={pid}," in line)


def test_what_the_intake_process_counts_shows_once_on_the_fronts_metrics(supervisor, probe, tmp_path):
    proc, url, _worker, log = _start(tmp_path, supervisor, probe, wait_seconds=1)
    try:
        before = _metrics(url)["tts_receiver_journal_commits"][("tts_receiver_journal_commits_total",)]
        stray = alert("SomebodyElsesAlert", service="not-ours")
        answer = _post(url, payload(stray))
        assert answer.status_code == 202 and answer.json()["ignored"] == 1, answer.text
        metrics = _metrics(url)
        unmatched = metrics["tts_receiver_unmatched_alerts"]
        assert unmatched[("tts_receiver_unmatched_alerts_total", ("alertname", "SomebodyElsesAlert"))] == 1.0
        after = metrics["tts_receiver_journal_commits"][("tts_receiver_journal_commits_total",)]
        assert after > before, (before, after)  # the intake process's commit of the unmatched row
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_a_reader_that_fails_answers_its_posts_503_and_starts_a_new_intake_process():
    """A bug while reading an answer (here: a frame whose content is not a list of answers) must not
    leave posts waiting for ever: they get the journal error (503) and the intake process is
    killed, so the monitor starts a new one with a new reader."""
    import asyncio
    import pickle
    import socket
    import sqlite3

    from tts_sentinel.receiver.child import send_frame
    from tts_sentinel.receiver.intake_process import IntakeProcess

    intake = IntakeProcess({}, admission=None, keys=None, wake=lambda _target: None)  # type: ignore[arg-type]
    child = subprocess.Popen(["sleep", "60"])
    front, other = socket.socketpair()
    try:
        async def one_post() -> BaseException:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            intake._proc = child
            intake._generation = 1
            intake._pending[7] = (future, loop, 0, 1)
            reader = threading.Thread(target=intake._read, args=(front, 1), daemon=True)
            reader.start()
            send_frame(other, b"A", pickle.dumps(42))  # not a list of (request id, answer)
            try:
                await asyncio.wait_for(future, 10)
            except BaseException as exc:  # noqa: BLE001 - the answer under test
                return exc
            raise AssertionError("the post was answered as if admitted")

        error = asyncio.run(one_post())
        assert isinstance(error, sqlite3.OperationalError) and "retry later" in str(error), error
        assert child.wait(10) == -signal.SIGKILL, "the intake process was not killed"
        assert intake._pending == {}
    finally:
        if child.poll() is None:
            child.kill()
        front.close()
        other.close()
