"""CPU priority (receiver/priority.py): the front and the intake process above the worker process,
the actions at the worker's nice, and an unprivileged receiver that says why it cannot."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.receiver.conftest import alert, payload, wait_for
from tests.receiver.test_recovery import AUTH, _job, _start_command_receiver, _up
from tts_sentinel.harness.procstat import child_pids
from tts_sentinel.receiver.child import role_of

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def nice_of(tid: int) -> int:
    """A thread's nice value, from /proc (field 19 of stat)."""
    with open(f"/proc/{tid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[16])


def thread_nices(pid: int) -> set[int]:
    return {nice_of(int(t)) for t in os.listdir(f"/proc/{pid}/task")}


def test_the_front_and_intake_answer_first_and_the_actions_run_at_the_workers_nice(tmp_path):
    assert os.geteuid() == 0, "the tests run as root (CI does): lowering a nice value needs it"
    recorded = tmp_path / "action-nice"
    # coreutils `nice` prints its own nice value
    proc, url, log = _start_command_receiver(tmp_path, ["/bin/sh", "-c", 'nice > "$0"', str(recorded)])
    try:
        wait_for(lambda: _up(url), timeout=30, what="receiver up")
        roles = {role_of(child): child for child in child_pids(proc.pid)}
        assert thread_nices(proc.pid) == {-10}, "every thread of the front, the HTTP loop's included"
        assert thread_nices(roles["intake"]) == {-10}
        assert thread_nices(roles["worker"]) == {0}, "the worker and its per-target threads"
        answer = httpx.post(url + "/alerts", json=payload(alert(service="svc", fingerprint="a")), headers=AUTH)
        job = wait_for(lambda: (j := _job(url, answer.json()["new_jobs"][0]))["status"] == "succeeded" and j,
                       what="the restart")
        assert recorded.read_text().strip() == "0", f"the action ran at the worker's nice: {job}"
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert "receiver front and intake process at nice -10, the worker process at 0" in (
        tmp_path / "receiver.log").read_text()


def _as_nobody(code: str, nice: int = 0) -> subprocess.CompletedProcess:
    script = ("import logging; logging.basicConfig(level=logging.INFO)\n"
              "from tts_sentinel.receiver.priority import current_nice, front_priority, worker_priority\n" + code)
    return subprocess.run(["nice", "-n", str(nice), *NOBODY, sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=60, cwd="/")


def test_without_privilege_the_front_says_why_and_a_units_nice_still_works():
    plain = _as_nobody("front_priority(-10, 0); print(current_nice())")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == "0", "nothing changed"
    assert "cannot set nice -10 (it runs at 0): needs root or CAP_SYS_NICE" in plain.stderr
    assert "set Nice=-10 in its systemd unit" in plain.stderr
    # systemd's Nice=-10 before it drops privileges: the front stays there, the worker goes back to
    # 0 (a higher nice needs no privilege), and back down it may not.
    unit = _as_nobody("front_priority(-10, 0); print(current_nice()); worker_priority(0); print(current_nice());"
                      "worker_priority(-5); print(current_nice())", nice=-10)
    assert unit.returncode == 0, unit.stderr
    assert unit.stdout.split() == ["-10", "0", "0"]
    assert "at nice -10, the worker process at 0" in unit.stderr
    assert "worker process: cannot set nice -5 (it runs at 0)" in unit.stderr
