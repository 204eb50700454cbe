"""The job threads' turns at the interpreter (receiver/slots.py): at most a few run Python at once,
a job lends its turn while it waits on the world, and never from inside a journal transaction."""

from __future__ import annotations

import threading

import pytest

from tests.receiver.conftest import alert, payload, receiver_config, wait_for
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.slots import DEFAULT_SLOTS, JobSlots


def free_slots(slots: JobSlots) -> int:
    """How many slots a newcomer could take now (taken and given back: the state is unchanged)."""
    taken = 0
    while slots._free.acquire(blocking=False):
        taken += 1
    for _ in range(taken):
        slots._free.release()
    return taken


def hold_in_thread(slots: JobSlots, lend: bool = False) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """A thread that takes a slot (and lends it when `lend`), says so, and waits to be let go."""
    inside, go = threading.Event(), threading.Event()

    def run():
        with slots.held():
            if lend:
                with slots.lent():
                    inside.set()
                    go.wait(10)
            else:
                inside.set()
                go.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert inside.wait(10)
    return inside, go, thread


def test_no_more_threads_than_slots_hold_one_and_a_lender_frees_its_own():
    slots = JobSlots(2)
    first = hold_in_thread(slots)
    second = hold_in_thread(slots)
    assert free_slots(slots) == 0, "two held: a third thread waits"
    for _, go, thread in (first, second):
        go.set()
        thread.join(10)
    assert free_slots(slots) == 2
    # A thread that lends its slot while it waits leaves it to another, and takes one back after.
    inside, go_lender, lender = hold_in_thread(slots, lend=True)
    assert free_slots(slots) == 2, "lent while it waits"
    _, go, holder = hold_in_thread(slots)
    assert free_slots(slots) == 1
    go_lender.set()
    lender.join(10)
    go.set()
    holder.join(10)
    assert free_slots(slots) == 2, "every slot back, none made up"


def test_lending_without_a_slot_or_inside_a_transaction_keeps_the_count(tmp_path):
    journal = Journal(tmp_path / "j.sqlite3")
    slots = JobSlots(1, in_transaction=journal.in_transaction)
    with slots.lent():  # a thread that holds none (the sweeper): runs, gives nothing back
        assert free_slots(slots) == 1
    assert free_slots(slots) == 1, "lending an unheld slot must not make a second one"
    with slots.held():
        with slots.held():  # re-entrant
            assert free_slots(slots) == 0
        assert free_slots(slots) == 0, "the inner block does not give back the outer's slot"
        with journal.transaction():
            with slots.lent():
                # The threads waiting for a slot may be the ones waiting for this transaction's lock.
                assert free_slots(slots) == 0
        with slots.lent():
            assert free_slots(slots) == 1
        assert free_slots(slots) == 0
    assert free_slots(slots) == 1
    journal.close()
    with pytest.raises(ValueError, match="at least 1"):
        JobSlots(0)


def test_jobs_waiting_on_their_steps_leave_the_turns_to_other_targets_jobs(make_receiver, tmp_path):
    """Two targets' restarts wait on the world (here: a file that appears later) and hold both of
    the default slots' worth of jobs; a third target's job still runs to its end meanwhile."""
    gate = tmp_path / "gate"
    waiting = ["/bin/sh", "-c", 'while [ ! -e "$0" ]; do sleep 0.05; done', str(gate)]
    quick = ["/bin/sh", "-c", "exit 0"]

    def target(name, restart):
        return {"name": name, "match": {"service": name}, "actuator": "command",
                "command": {"restart": restart, "timeout_seconds": 60},
                "cache_dir": None, "weights_dir": None, "service_config": None, "git_dir": None}

    slow = [f"slow-{i}" for i in range(DEFAULT_SLOTS)]
    config = receiver_config(None, None, targets=[*(target(n, waiting) for n in slow), target("quick", quick)],
                             tiers={"light": [{"action": "restart", "component": "web"}]})
    receiver = make_receiver(config)
    held = []
    try:
        for name in slow:
            held += receiver.post(payload(alert(service=name, fingerprint=name))).json()["new_jobs"]
        wait_for(lambda: all(receiver.job(j)["status"] == "running" for j in held), what="the slow restarts running")
        [quick_job] = receiver.post(payload(alert(service="quick", fingerprint="quick"))).json()["new_jobs"]
        done = receiver.wait_job(quick_job, timeout=20)
        assert done["status"] == "succeeded", done
        assert all(receiver.job(j)["status"] == "running" for j in held), "still waiting on their gate"
    finally:
        gate.touch()  # also when the test fails: no waiting shell outlives it
    for job_id in held:
        assert receiver.wait_job(job_id, timeout=20)["status"] == "succeeded"
