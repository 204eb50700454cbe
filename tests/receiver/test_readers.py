"""The journal's reads outside a transaction: a pool of connections, rows read out before the
connection is lent again (receiver/readers.py)."""

from __future__ import annotations

import threading

from tts_sentinel.receiver.journal import Journal


def test_reads_from_many_threads_one_after_another_share_one_connection(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        ids = [journal.insert_job(target=f"t{n}", tier="light", status="queued", reason="r") for n in range(20)]
        seen: dict[int, str] = {}

        def read(job_id: int) -> None:
            seen[job_id] = journal.job(job_id).target

        for job_id in ids:  # twenty threads, one at a time (a worker thread per target did this)
            thread = threading.Thread(target=read, args=(job_id,))
            thread.start()
            thread.join()
        assert seen == {job_id: f"t{n}" for n, job_id in enumerate(ids)}
        assert len(journal._readers._all) == 1, "one connection, lent to each read in turn"
    finally:
        journal.close()


def test_concurrent_reads_beside_a_writer_each_get_their_whole_result(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        for n in range(50):
            journal.insert_job(target="t", tier="light", status="queued", reason=f"r{n}")
        problems: list[str] = []
        stop = threading.Event()

        def writer() -> None:
            n = 50
            while not stop.is_set():
                journal.insert_job(target="t", tier="light", status="queued", reason=f"r{n}")
                n += 1

        def reader() -> None:
            for _ in range(30):
                rows = journal.execute("SELECT id FROM jobs WHERE target=? ORDER BY id", ("t",))
                first = rows.fetchone()
                rest = rows.fetchall()
                ids = [first[0], *(r[0] for r in rest)]
                if ids != list(range(1, len(ids) + 1)) or len(ids) < 50 or rows.fetchone() is not None:
                    problems.append(f"a read saw {len(ids)} rows, not a prefix of the ids")

        threads = [threading.Thread(target=reader) for _ in range(8)]
        w = threading.Thread(target=writer)
        w.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        stop.set()
        w.join(60)
        assert problems == []
        assert 1 <= len(journal._readers._all) <= 8, "no more connections than reads at once"
    finally:
        journal.close()
