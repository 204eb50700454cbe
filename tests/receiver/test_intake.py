"""POST /alerts through the intake thread, on a real uvicorn receiver: posts that queue up while
one fsync runs are admitted together and answered only after the next fsync (one for the batch);
a failed fsync answers 503 to the whole batch, and the resend finds the job, never a second one."""

from __future__ import annotations

import threading

import pytest

from tests.receiver.conftest import (
    RunningReceiver,
    alert,
    failing_fsync,
    held_fsync,
    payload,
    receiver_config,
    wait_for,
)

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


def test_posts_admitted_during_an_fsync_share_the_next_one_and_are_answered_after_it(receiver):
    """While a batch waits for its fsync, the intake admits the posts behind it (committed, not yet
    answered); they share the next fsync, and none is answered before its commit is on disk."""
    sync = receiver.service.journal.durability
    journal = receiver.service.journal
    answers: dict[int, object] = {}

    def post(n: int) -> None:
        answers[n] = receiver.post(payload(alert(f"Alert{n}", fingerprint=f"fp-{n}")))

    held, release = held_fsync(sync)
    first = threading.Thread(target=post, args=(0,))
    first.start()
    assert held.wait(10), "the first post's batch reached its fsync"
    fsyncs0 = sync.fsyncs
    others = [threading.Thread(target=post, args=(n,)) for n in range(1, 9)]
    for t in others:
        t.start()
    wait_for(lambda: len(journal.jobs(limit=100)) == 9, timeout=10, what="eight posts admitted behind the fsync")
    assert answers == {}, "no post is answered before its commit is on disk"
    release.set()
    for t in [first, *others]:
        t.join(15)
    assert sorted(answers) == list(range(9))
    assert {r.status_code for r in answers.values()} == {202}
    jobs = {j for r in answers.values() for j in r.json()["new_jobs"]}
    assert len(jobs) == 9, "one job per distinct alert"
    # The held fsync, then one for the eight admitted meanwhile; the first job, woken at the first
    # answer, runs meanwhile and fsyncs its own steps (one target: one job at a time). Fewer than
    # one fsync per post either way.
    assert 2 <= sync.fsyncs - fsyncs0 < 8, sync.fsyncs - fsyncs0
    for job in jobs:  # each woken and run once (its verification fails: no exporter in this test)
        done = receiver.wait_job(job)
        assert done["started_at"] is not None and done["attempts"] == 1, done


def test_a_failed_fsync_answers_503_and_the_resend_finds_the_same_job(receiver):
    sync = receiver.service.journal.durability
    broken = failing_fsync(sync)
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


def test_the_ha_copy_of_a_post_being_admitted_waits_for_it_and_is_a_duplicate(receiver):
    """Two Alertmanager peers send the same group at the same instant: the copy waits for the first
    post's admission instead of being admitted again, and is answered from memory once that is on disk."""
    sync = receiver.service.journal.durability
    admission = receiver.service.admission
    real_admit = admission.admit
    admitted: list[object] = []

    def counting_admit(payload, now=None):
        admitted.append(payload)
        return real_admit(payload, now)

    held, release = held_fsync(sync)
    admission.admit = counting_admit
    answers: dict[str, object] = {}
    body = payload(alert("TtsCudaOom", tier="medium", fingerprint="fp-ha"))

    def post(peer: str) -> None:
        answers[peer] = receiver.post(body)

    peers = [threading.Thread(target=post, args=(peer,)) for peer in ("am-1", "am-2")]
    peers[0].start()
    assert held.wait(10), "the first peer's post reached its fsync"
    peers[1].start()
    peers[1].join(1.0)
    assert answers == {}, "the copy is not answered before the first post's job is on disk"
    release.set()
    for t in peers:
        t.join(15)
    first, copy = answers["am-1"].json(), answers["am-2"].json()
    assert answers["am-1"].status_code == answers["am-2"].status_code == 202
    assert len(first["new_jobs"]) == 1 and copy["new_jobs"] == [] and copy["duplicates"] == 1, (first, copy)
    assert len(admitted) == 1, "one admission for the two copies"
    receiver.service.journal.keys.flush_duplicates()
    job = receiver.service.journal.job(first["new_jobs"][0])
    assert job.duplicates == 1
