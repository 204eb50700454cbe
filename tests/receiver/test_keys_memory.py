"""Re-sends answered from the memory of keys on disk, on a real uvicorn receiver (receiver/keys.py).

A re-send whose every alert is a key already on disk is answered in the HTTP loop, without the
intake thread or a journal transaction; its duplicate count still reaches the job. A key whose
batch's fsync failed is not in the memory, nor is a key the retention purged: those posts go
through the journal again. A job's writes share fsyncs, but its claim is on disk before its step.
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.receiver.conftest import TOKEN, RunningReceiver, alert, failing_fsync, payload, receiver_config, wait_for
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.keys import UNKNOWN

TRUE = ["/bin/sh", "-c", "exit 0"]


def command_config(**overrides):
    return receiver_config(
        None, None, target={"actuator": "command", "command": {"restart": TRUE, "stop": TRUE, "start": TRUE}},
        **overrides,
    )


@pytest.fixture
def receiver(tmp_path):
    # Dry runs: every job ends at once, nothing escalates while a test counts jobs.
    running = RunningReceiver(command_config(dry_run=True), tmp_path / "journal.sqlite3")
    yield running
    running.close()


@pytest.fixture
def acting_receiver(tmp_path):
    running = RunningReceiver(command_config(tiers={"light": [{"action": "restart", "component": "web"}]}),
                              tmp_path / "journal.sqlite3")
    yield running
    running.close()


def stored_duplicates(journal_path, job_id: int) -> int:
    """The job's duplicate count as the file holds it (another connection, like a restarted receiver)."""
    with sqlite3.connect(journal_path) as conn:
        return conn.execute("SELECT duplicates FROM jobs WHERE id=?", (job_id,)).fetchone()[0]


def test_a_resend_on_disk_is_answered_without_the_intake_and_still_counted(receiver):
    intake, keys = receiver.service.intake, receiver.service.journal.keys
    body = payload(alert("TtsHealthProbeFailing", fingerprint="fp-a"), alert("TtsCudaOutOfMemory", tier="medium",
                                                                              fingerprint="fp-b"))
    first = receiver.post(body)
    assert first.status_code == 202 and len(first.json()["new_jobs"]) == 2, first.text
    batches = intake.batches
    again = [receiver.post(body) for _ in range(3)]
    assert [a.status_code for a in again] == [202] * 3
    assert again[0].json() == {"accepted": True, "new_jobs": [], "joined_jobs": [], "duplicates": 2, "ignored": 0,
                               "resolved": 0}
    assert intake.batches == batches, "the re-sends never reached the intake thread"
    jobs = {j["id"]: j for j in receiver.actions()}
    assert sorted(jobs) == sorted(first.json()["new_jobs"]), "no second job"
    assert [j["duplicates"] for j in jobs.values()] == [3, 3], "GET /actions counts the re-sends"
    path = receiver.service.journal.path
    assert [stored_duplicates(path, j) for j in jobs] == [3, 3], "and the file holds them once read"
    receiver.post(body)
    assert keys.flush_duplicates() == 2, "a later re-send waits in memory for the next flush"
    assert [stored_duplicates(path, j) for j in jobs] == [4, 4]


def test_a_key_whose_fsync_failed_is_not_answered_from_memory(receiver):
    sync, keys, intake = receiver.service.journal.durability, receiver.service.journal.keys, receiver.service.intake
    broken = failing_fsync(sync)
    body = payload(alert("TtsHealthProbeFailing", fingerprint="fp-io"))
    assert receiver.post(body).status_code == 503
    assert keys.persisted("fp-io", "2026-11-23T10:00:00+00:00", "light") is UNKNOWN, "not on disk: not in memory"
    broken.clear()
    batches = intake.batches
    again = receiver.post(body)
    assert again.json()["duplicates"] == 1 and again.json()["new_jobs"] == []
    assert intake.batches == batches + 1, "the journal answered the resend"
    assert keys.persisted("fp-io", "2026-11-23T10:00:00+00:00", "light") is not UNKNOWN, "on disk now: remembered"


def test_purged_keys_leave_the_memory(receiver):
    journal, intake = receiver.service.journal, receiver.service.intake
    body = payload(alert("TtsHealthProbeFailing", fingerprint="fp-old"))
    job_id = receiver.post(body).json()["new_jobs"][0]
    receiver.wait_job(job_id)
    journal.execute("UPDATE alert_keys SET seen_at = 0")
    assert journal.keys.purge(older_than_seconds=3600) == 1
    assert journal.keys.persisted("fp-old", "2026-11-23T10:00:00+00:00", "light") is UNKNOWN
    batches = intake.batches
    late = receiver.post(body).json()
    assert intake.batches == batches + 1, "the journal, not the memory, judged the post after the purge"
    # Past the key retention the table no longer knows the firing: a new job, as without the memory.
    assert len(late["new_jobs"]) == 1 and late["duplicates"] == 0, late


def test_the_fast_path_and_the_route_answer_alike(receiver):
    # `application/vnd.alertmanager+json` is JSON to FastAPI's route, not to the fast path.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = payload(alert("TtsHealthProbeFailing", fingerprint="fp-route"))
    routed = receiver.client.post("/alerts", json=body, headers={**headers,
                                                                 "Content-Type": "application/vnd.am+json"})
    fast = receiver.client.post("/alerts", json=body, headers=headers)
    assert routed.status_code == fast.status_code == 202
    assert routed.headers["content-type"] == fast.headers["content-type"] == "application/json"
    assert set(routed.json()) == set(fast.json()) and fast.json()["duplicates"] == 1
    wrong = receiver.client.post("/alerts", json={**body, "version": "3"}, headers=headers)
    assert wrong.status_code == 422 and any("version" in p for p in wrong.json()["problems"])
    long = receiver.post(payload(alert(fingerprint="fp-long", extra="x" * 5000)))
    assert long.status_code == 422 and "extra" in long.json()["error"]


def test_a_settle_syncs_what_the_thread_deferred_and_keeps_deferring(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    sync = journal.durability
    sync.begin_deferral()
    journal.insert_job(target="t", tier="light", status="queued", reason="r")
    assert sync.fsyncs == 0
    sync.settle()
    assert sync.fsyncs == 1 and sync._synced == sync._written == 1, "on disk before the action"
    journal.insert_job(target="t", tier="light", status="queued", reason="r")
    assert sync.fsyncs == 1, "still deferring after the settle"
    sync.end_deferral()
    assert sync.fsyncs == 2
    sync.settle()  # not deferring: nothing to do
    assert sync.fsyncs == 2
    journal.close()


def test_a_job_is_claimed_on_disk_before_its_step_runs(acting_receiver):
    receiver = acting_receiver
    sync = receiver.service.journal.durability
    seen: list[tuple[int, int]] = []
    runner = receiver.service.runner
    factory = runner.actuator_factory

    def watching(target, labels):
        actuator = factory(target, labels)
        restart = actuator.restart

        def restart_after_check(component):
            seen.append((sync._synced, sync._written))
            return restart(component)

        actuator.restart = restart_after_check
        return actuator

    runner.actuator_factory = watching
    job_id = receiver.post(payload(alert(fingerprint="fp-step"))).json()["new_jobs"][0]
    wait_for(lambda: seen, timeout=30, what="the step to run")
    synced, written = seen[0]
    assert synced == written, "every commit before the step (the claim, the triage) was fsync'd"
    done = receiver.wait_job(job_id)
    assert done["status"] == "succeeded" and done["attempts"] == 1, done
    wait_for(lambda: sync._synced == sync._written, timeout=10, what="the job's end on disk once its worker is done")
