"""POST /alerts through the intake thread, on a real uvicorn receiver: posts that queue up while
one fsync runs are admitted together and answered only after the next fsync (one for the batch);
a failed fsync answers 503 to the whole batch, and the resend finds the job, never a second one."""

from __future__ import annotations

import threading

import pytest

from tests.receiver.conftest import RunningReceiver, alert, payload, receiver_config, wait_for

TRUE = ["/bin/sh", "-c", "exit 0"]


def command_config():
    return receiver_config(
        None, None, target={"actuator": "command", "command": {"restart": TRUE, "stop": TRUE, "start": TRUE}}
    )


@pytest.fixture
def receiver(tmp_path):
    running = RunningReceiver(command_config(), tmp_path / "journal.sqlite3")
    yield running
    running.close()


def test_posts_queued_during_an_fsync_share_the_next_one_and_are_answered_after_it(receiver):
    sync = receiver.service.journal.durability
    intake = receiver.service.intake
    real = type(sync)._fsync
    held, release = threading.Event(), threading.Event()
    holding = threading.Lock()

    def slow_fsync(self):
        # The first fsync after `held` is armed waits for the release: the disk is slow.
        if holding.acquire(blocking=False):
            held.set()
            release.wait(10)
        real(self)

    answers: dict[int, object] = {}

    def post(n: int) -> None:
        answers[n] = receiver.post(payload(alert(f"Alert{n}", fingerprint=f"fp-{n}")))

    sync._fsync = slow_fsync.__get__(sync)
    batches0 = intake.batches
    first = threading.Thread(target=post, args=(0,))
    first.start()
    assert held.wait(10), "the first post's batch reached its fsync"
    others = [threading.Thread(target=post, args=(n,)) for n in range(1, 9)]
    for t in others:
        t.start()
    wait_for(lambda: intake._queue.qsize() == 8, timeout=10, what="eight posts queued behind the fsync")
    assert answers == {}, "no post is answered before its commit is on disk"
    release.set()
    for t in [first, *others]:
        t.join(15)
    assert sorted(answers) == list(range(9))
    assert {r.status_code for r in answers.values()} == {202}
    jobs = {j for r in answers.values() for j in r.json()["new_jobs"]}
    assert len(jobs) == 9, "one job per distinct alert"
    assert intake.batches - batches0 == 2, "the first post alone, then the eight queued behind it together"
    for job in jobs:  # each woken and run once (its verification fails: no exporter in this test)
        done = receiver.wait_job(job)
        assert done["started_at"] is not None and done["attempts"] == 1, done


def test_a_failed_fsync_answers_503_and_the_resend_finds_the_same_job(receiver):
    sync = receiver.service.journal.durability
    real = type(sync)._fsync
    broken = threading.Event()
    broken.set()

    def flaky(self):
        if broken.is_set():
            raise OSError(5, "Input/output error")
        real(self)

    sync._fsync = flaky.__get__(sync)
    body = payload(alert("TtsHealthProbeFailing", fingerprint="fp-io"))
    failed = receiver.post(body)
    assert failed.status_code == 503
    assert "fsync failed" in failed.json()["error"]
    broken.clear()
    again = receiver.post(body)
    assert again.status_code == 202
    assert again.json()["new_jobs"] == [] and again.json()["duplicates"] == 1
    jobs = receiver.actions()
    assert len(jobs) == 1, "the committed job is found by the resend, not made twice"
    done = receiver.wait_job(jobs[0]["id"])
    assert done["started_at"] is not None and done["attempts"] == 1, done
    # The intake thread lives on after the failure.
    later = receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", fingerprint="fp-later")))
    assert later.status_code == 202 and len(later.json()["new_jobs"]) == 1
