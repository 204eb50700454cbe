"""The journal's group commit: a commit is on disk (fsync'd) before transaction() returns, and
writers that commit while one fsync runs share the next one instead of paying one each."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from tests.receiver.conftest import failing_fsync
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.txn import GroupSync


def test_writers_that_commit_during_an_fsync_share_the_next_one(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    real = GroupSync._fsync
    first_started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow_first_fsync(self):
        calls.append(self._written)
        if len(calls) == 1:
            first_started.set()
            release.wait(10)  # the disk is slow: everyone else commits meanwhile
        real(self)

    journal.durability._fsync = slow_first_fsync.__get__(journal.durability)
    done: list[int] = []

    def write(n: int) -> None:
        done.append(journal.insert_job(target=f"t{n}", tier="light", status="queued", reason="r"))

    first = threading.Thread(target=write, args=(0,))
    first.start()
    assert first_started.wait(10)
    others = [threading.Thread(target=write, args=(n,)) for n in range(1, 9)]
    for t in others:
        t.start()
    # All eight commit (WAL frames written) while the first fsync is held, then wait for theirs.
    deadline = threading.Event()
    for _ in range(100):
        if journal.durability._written == 9:
            break
        deadline.wait(0.05)
    assert journal.durability._written == 9 and len(done) == 0, "nobody returned before its fsync"
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert sorted(done) == list(range(1, 10))
    assert len(calls) == 2, f"one fsync for the first commit, one shared by the other eight: {calls}"
    assert journal.durability._synced == 9
    journal.close()
    reopened = sqlite3.connect(tmp_path / "journal.sqlite3")
    assert reopened.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 9


def test_a_failed_fsync_fails_the_write_so_the_webhook_answers_503(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    failing_fsync(journal.durability)
    with pytest.raises(sqlite3.OperationalError, match="fsync failed"):
        journal.insert_job(target="t", tier="light", status="queued", reason="r")
    journal.close()


def test_a_deferral_pays_one_fsync_for_all_its_commits_when_it_ends(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    sync = journal.durability
    sync.begin_deferral()
    ids = [journal.insert_job(target=f"t{n}", tier="light", status="queued", reason="r") for n in range(3)]
    assert sync.fsyncs == 0 and sync._synced < sync._written == 3, "commits inside a deferral wait for nothing"
    sync.end_deferral()
    assert sync.fsyncs == 1 and sync._synced == 3
    # Another thread never defers because this one did.
    other = threading.Thread(target=journal.insert_job, kwargs={"target": "x", "tier": "light", "status": "queued", "reason": "r"})
    sync.begin_deferral()
    other.start()
    other.join(10)
    assert sync._synced == 4 and sync.fsyncs == 2
    sync.end_deferral()
    assert sync.fsyncs == 2, "nothing of this thread's left to sync"
    assert len(ids) == 3
    journal.close()


def test_a_deferral_whose_fsync_fails_raises(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    failing_fsync(journal.durability)
    journal.durability.begin_deferral()
    journal.insert_job(target="t", tier="light", status="queued", reason="r")
    with pytest.raises(OSError, match="Input/output"):
        journal.durability.end_deferral()
    # The deferral is over: the next write waits for (and fails on) its own fsync.
    with pytest.raises(sqlite3.OperationalError, match="fsync failed"):
        journal.insert_job(target="t2", tier="light", status="queued", reason="r")
    journal.close()
