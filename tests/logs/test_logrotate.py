"""The tailer against the real /usr/sbin/logrotate, with a writer appending known lines meanwhile.

For each rotation mode the run writes numbered lines in bursts, rotates with logrotate itself
(private state file, `-f`), restarts the exporter's log pipeline in the middle (a rotation
happens while it is down), then compares what the pipeline counted with the lines that are
on disk at the end (current file, numbered copies and .gz archives).

Measured (the `report` lines, `-s`; README, Real logrotate): with the writer pausing while
logrotate runs, no mode loses or repeats a line. With the writer appending meanwhile, rename
still loses none; copytruncate and compress-without-delaycompress have a window no tailer can
close: lines written between logrotate's copy and its truncate, or to the renamed file after gzip
read it, are in no file. The tailer counts those it read before they went, loses the rest (and
only those), and never counts a line twice.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from support import require_binary

from tts_sentinel.exporter.logs.metrics import LogCounter
from tts_sentinel.exporter.logs.pipeline import LogPipeline
from tts_sentinel.loghistory.config import LogFileConfig, LogsConfig

LINE = re.compile(rb"^2024-06-15 14:22:03,102 \[INFO\] seq=(\d+)$", re.M)

MODES = {
    # the service reopens its log after logrotate renamed it (postrotate signal in real life)
    "rename": ("create 0600", "rename"),
    "compress": ("create 0600\n    compress", "rename"),
    "copytruncate": ("copytruncate", "copytruncate"),
}


class Writer:
    """Appends numbered lines to `path`; reopens the file when asked, as a service does on SIGHUP."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seq = 0
        self._fd = open(path, "ab", buffering=0)  # noqa: SIM115 - reopened on demand
        self._lock = threading.Lock()
        self.during_rotation = (0, 0.0)  # lines written while logrotate ran, and for how long (s)

    def write(self, n: int) -> None:
        for _ in range(n):
            with self._lock:
                self.seq += 1
                self._fd.write(b"2024-06-15 14:22:03,102 [INFO] seq=%d\n" % self.seq)

    def write_during(self, done: threading.Event, at_most: int) -> None:
        """Append a line every ~0.1 ms until `done` (logrotate finished) or `at_most` lines."""
        start, lines = time.monotonic(), 0
        for _ in range(at_most):
            if done.is_set():
                break
            self.write(1)
            lines += 1
            time.sleep(0.0001)
        n, seconds = self.during_rotation
        self.during_rotation = (n + lines, seconds + time.monotonic() - start)

    def reopen(self) -> None:
        with self._lock:
            self._fd.close()
            self._fd = open(self.path, "ab", buffering=0)  # noqa: SIM115

    def close(self) -> None:
        self._fd.close()


def on_disk(logdir: Path, name: str) -> set[int]:
    """Sequence numbers of every line in the log, its numbered copies and its .gz archives."""
    seqs: set[int] = set()
    for f in logdir.glob(f"{name}*"):
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        seqs.update(int(m) for m in LINE.findall(data))
    return seqs


def rotate(conf: Path, state: Path) -> None:
    done = subprocess.run([require_binary("logrotate", "/usr/sbin/logrotate"), "-f", "-s", str(state), str(conf)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"logrotate failed: {done.stderr}"


def counted(registry: CollectorRegistry) -> int:
    return int(registry.get_sample_value("tts_log_lines_total", {"log": "inference"}) or 0)


def lag(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("tts_log_lag_bytes", {"log": "inference"}) or 0.0


def run_with_a_restart(mode: str, tmp_path: Path, wait_for, concurrent: bool) -> tuple[int, int, int]:
    """Three rotations, an exporter restart with a rotation while it is down, three more rotations.

    With `concurrent` the writer appends while logrotate works (it reopens only afterwards, as a
    service signalled by postrotate does). Returns (written, on disk at the end, counted).
    """
    logdir = tmp_path / "logs"
    logdir.mkdir(mode=0o700)
    path = logdir / "inference.log"
    directive, rotation = MODES[mode]
    conf = tmp_path / "logrotate.conf"
    conf.write_text(f"{path} {{\n    rotate 50\n    missingok\n    {directive}\n}}\n")
    conf.chmod(0o644)
    lr_state = tmp_path / "logrotate.state"
    config = LogsConfig(files=[LogFileConfig(name="inference", path=path, rotation=rotation)],
                        start_at="beginning", poll_interval_seconds=0.02, rotate_wait_seconds=0.5)
    state = tmp_path / "state"
    writer = Writer(path)
    totals: list[int] = []

    def run_pipeline(rotations: int, burst: int) -> None:
        registry = CollectorRegistry()
        pipeline = LogPipeline(config, registry, state)
        pipeline.start()
        try:
            for _ in range(rotations):
                if concurrent:  # the writer keeps going, into the old file, while logrotate works
                    done = threading.Event()
                    t = threading.Thread(target=writer.write_during, args=(done, burst))
                    t.start()
                    rotate(conf, lr_state)
                    done.set()
                    t.join()
                else:
                    writer.write(burst)
                    rotate(conf, lr_state)
                writer.reopen()
            writer.write(burst)
            # Read to the end of the live file before stopping (a stop cuts a backlog short, to be read
            # after the restart): the lag, not a count alone, as lines read and then gone from the disk
            # (copytruncate) make the count reach the lines on disk early.
            expected = len(on_disk(logdir, "inference.log")) - sum(totals)
            assert wait_for(lambda: counted(registry) >= expected and lag(registry) == 0, 30), \
                f"{mode}: counted {counted(registry)} of {expected}, {lag(registry)} bytes not read"
        finally:
            pipeline.stop()
        totals.append(counted(registry))

    run_pipeline(rotations=3, burst=400)
    writer.write(300)  # the exporter is down: written, then rotated away before it comes back
    rotate(conf, lr_state)
    writer.reopen()
    run_pipeline(rotations=3, burst=400)
    writer.close()
    disk = on_disk(logdir, "inference.log")
    total = sum(totals)
    lines, seconds = writer.during_rotation
    rate = f", writer at {lines / seconds:,.0f} lines/s while logrotate ran" if seconds else ""
    print(f"report {mode}{' concurrent' if concurrent else ''}: 7 rotations{rate}: written {writer.seq}, "
          f"on disk {len(disk)} ({writer.seq - len(disk)} left the disk during a rotation), "
          f"counted {total}")
    return writer.seq, len(disk), total


@pytest.mark.parametrize("mode", list(MODES))
def test_real_logrotate_with_a_restart_in_the_middle(mode, tmp_path, wait_for):
    written, disk, total = run_with_a_restart(mode, tmp_path, wait_for, concurrent=False)
    if mode == "copytruncate":
        # Lines written between logrotate's copy and its truncate are gone from the disk, though a
        # tailer may read them through its open file: never more than written, never less than on disk.
        assert total <= written, f"{mode}: {total - written} lines counted twice"
        assert total >= disk, f"{mode}: the tailer lost {disk - total} lines that are on disk"
    else:
        assert disk == written, f"{mode}: logrotate itself lost {written - disk} lines"
        assert total == written, f"{mode}: counted {total} of {written} lines"


@pytest.mark.parametrize("mode", list(MODES))
def test_real_logrotate_while_the_writer_keeps_writing(mode, tmp_path, wait_for, monkeypatch, record_property):
    """The writer appends during every logrotate run: no line is counted twice, none on disk is lost,
    in rename and compress modes every line written is counted exactly once, and in copytruncate
    mode the lines lost are only some of those written in logrotate's copy -> truncate window.

    Which lines were counted is recorded by wrapping LogCounter.feed (the real one still counts):
    a total alone could hide a line counted twice behind one lost.
    """
    seen: Counter[int] = Counter()
    feed = LogCounter.feed

    def recording_feed(self: LogCounter, block: bytes, long_lines: int = 0) -> None:
        seen.update(int(m) for m in LINE.findall(block))
        feed(self, block, long_lines)

    monkeypatch.setattr(LogCounter, "feed", recording_feed)
    written, disk, total = run_with_a_restart(mode, tmp_path, wait_for, concurrent=True)
    twice = sorted(seq for seq, n in seen.items() if n > 1)
    window = written - disk  # in no file at the end (copytruncate: written between a copy and its truncate)
    lost = written - len(seen)
    print(f"report {mode} concurrent: lost {lost}, counted twice {len(twice)}, left the disk {window}")
    record_property("lost", lost)
    record_property("counted_twice", len(twice))
    record_property("left_the_disk", window)
    assert not twice, f"{mode}: {len(twice)} lines counted more than once, from seq={twice[0]}"
    assert sum(seen.values()) == total
    missing = on_disk(tmp_path / "logs", "inference.log") - set(seen)
    assert not missing, f"{mode}: the tailer lost {len(missing)} lines that are on disk"
    # The lines in neither file at the end (copytruncate: written between the copy and the truncate;
    # compress: written to the renamed file after gzip read it, before the writer reopened) can be
    # lost; the tailer counts those it read before they went. Nothing else.
    assert lost <= window, f"{mode}: lost {lost} lines, more than the {window} that left the disk"
    if mode == "rename":  # nothing leaves the disk: every line written is counted
        assert disk == written and total == written, f"rename: counted {total} of {written} lines"


def test_a_log_compressed_before_any_poll_saw_it_is_counted_from_its_archive(tmp_path):
    logdir = tmp_path / "logs"
    logdir.mkdir(mode=0o700)
    path = logdir / "inference.log"
    conf = tmp_path / "logrotate.conf"
    conf.write_text(f"{path} {{\n    rotate 50\n    create 0600\n    compress\n}}\n")
    lr_state = tmp_path / "logrotate.state"
    config = LogsConfig(files=[LogFileConfig(name="inference", path=path, rotation="rename")],
                        start_at="beginning", rotate_wait_seconds=0)
    registry = CollectorRegistry()
    pipeline = LogPipeline(config, registry, tmp_path / "state")
    writer = Writer(path)
    writer.write(10)
    pipeline.poll_once()
    rotate(conf, lr_state)  # the 10 lines we read, compressed: not counted again
    writer.reopen()
    writer.write(5)
    rotate(conf, lr_state)  # created, written and compressed between two polls
    writer.reopen()
    writer.write(3)
    pipeline.poll_once()
    pipeline.poll_once()
    pipeline.stop()
    writer.close()
    assert sorted(p.name for p in logdir.iterdir()) == ["inference.log", "inference.log.1.gz", "inference.log.2.gz"]
    assert counted(registry) == 18


@pytest.mark.parametrize("before_copy", [10, 1], ids=["copy-longer-than-the-fingerprint", "copy-shorter"])
@pytest.mark.parametrize("restart", [False, True], ids=["live", "restart-after-the-truncate"])
def test_lines_read_in_the_copytruncate_window_are_not_counted_again(restart, before_copy, tmp_path):
    """logrotate's copy -> truncate window, held open by hand (logrotate itself cannot be paused there):
    lines appended after the copy and read from the original before the truncate make our offset
    larger than the copy. The copy is recognised and nothing in it is read again, whether the
    truncate is seen live or only after a restart, and also when the copy is shorter than the first
    bytes the tailer recognises a file by (a rotation soon after the last one: 1 line, 39 bytes, of
    the 256; before the fix that copy was read whole, its line counted twice; seen once in 25 runs
    of the real-logrotate test on a loaded machine).
    """
    logdir = tmp_path / "logs"
    logdir.mkdir(mode=0o700)
    path = logdir / "inference.log"
    config = LogsConfig(files=[LogFileConfig(name="inference", path=path, rotation="copytruncate")],
                        start_at="beginning", rotate_wait_seconds=0)
    registries = [CollectorRegistry()]
    pipeline = LogPipeline(config, registries[0], tmp_path / "state")
    writer = Writer(path)
    writer.write(before_copy)
    pipeline.poll_once()
    shutil.copyfile(path, logdir / "inference.log.1")  # logrotate's copy
    writer.write(3)  # in the window: in neither file once truncated, but read now
    pipeline.poll_once()
    os.truncate(path, 0)  # logrotate's truncate
    writer.write(2)
    if restart:
        pipeline.stop()
        registries.append(CollectorRegistry())
        pipeline = LogPipeline(config, registries[1], tmp_path / "state")
    for _ in range(3):
        pipeline.poll_once()
    pipeline.stop()
    writer.close()
    assert sum(counted(r) for r in registries) == before_copy + 5


def test_a_generation_first_seen_rotated_is_drained_until_its_writer_reopens(tmp_path):
    """A log created and renamed away between two polls is found as a rotated generation; its writer
    may still append to it (and gzip may delete it meanwhile: compress without delaycompress) until
    it reopens. It is kept open and read like a renamed log, so those lines are counted, once.
    """
    logdir = tmp_path / "logs"
    logdir.mkdir(mode=0o700)
    path = logdir / "inference.log"
    config = LogsConfig(files=[LogFileConfig(name="inference", path=path, rotation="rename")],
                        start_at="beginning", rotate_wait_seconds=0)
    registry = CollectorRegistry()
    pipeline = LogPipeline(config, registry, tmp_path / "state")
    writer = Writer(path)
    writer.write(3)
    pipeline.poll_once()
    os.rename(path, logdir / "inference.log.1")
    writer.reopen()  # a new log the tailer has not seen yet
    writer.write(5)
    os.rename(logdir / "inference.log.1", logdir / "inference.log.2")
    os.rename(path, logdir / "inference.log.1")  # rotated again before any poll saw it
    pipeline.poll_once()  # found as a generation: its 5 lines
    with open(logdir / "inference.log.1", "rb") as src, gzip.open(logdir / "inference.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(logdir / "inference.log.1")
    writer.write(2)  # into the deleted file, before the writer reopens
    writer.reopen()
    writer.write(1)
    for _ in range(4):
        pipeline.poll_once()
    pipeline.stop()
    writer.close()
    assert counted(registry) == 11


def test_an_archive_missing_from_one_listing_is_not_read_again(tmp_path):
    """A listing can miss an archive that logrotate renames meanwhile (.1.gz -> .2.gz): held out of
    the directory for one poll by hand here. It is still the archive we knew, not a new one."""
    logdir = tmp_path / "logs"
    logdir.mkdir(mode=0o700)
    path = logdir / "inference.log"
    with gzip.open(logdir / "inference.log.1.gz", "wb") as z:
        z.write(b"2024-06-15 14:22:03,102 [INFO] seq=1\n" * 7)  # history: there before the first start
    config = LogsConfig(files=[LogFileConfig(name="inference", path=path, rotation="rename")],
                        start_at="beginning", rotate_wait_seconds=0)
    registry = CollectorRegistry()
    pipeline = LogPipeline(config, registry, tmp_path / "state")
    writer = Writer(path)
    writer.write(2)
    pipeline.poll_once()
    os.rename(logdir / "inference.log.1.gz", tmp_path / "aside.gz")
    pipeline.poll_once()  # the listing that missed it
    os.rename(tmp_path / "aside.gz", logdir / "inference.log.2.gz")
    for _ in range(3):
        pipeline.poll_once()
    pipeline.stop()
    writer.close()
    assert counted(registry) == 2


def test_an_archive_that_appeared_just_before_a_stop_is_read_before_it_becomes_history(tmp_path):
    """A new archive waits a poll to settle before it is read; a stop in between reads it then, as a
    restart takes every archive there as history."""
    logdir = tmp_path / "logs"
    logdir.mkdir(mode=0o700)
    path = logdir / "inference.log"
    config = LogsConfig(files=[LogFileConfig(name="inference", path=path, rotation="rename")],
                        start_at="beginning", rotate_wait_seconds=0)
    registries = [CollectorRegistry()]
    pipeline = LogPipeline(config, registries[0], tmp_path / "state")
    writer = Writer(path)
    writer.write(2)
    pipeline.poll_once()
    with gzip.open(logdir / "inference.log.1.gz", "wb") as z:  # a log created, written, compressed between polls
        z.write(b"2024-06-15 14:22:03,102 [INFO] seq=100\n" * 4)
    pipeline.poll_once()  # seen once: not settled yet
    pipeline.stop()
    registries.append(CollectorRegistry())
    pipeline = LogPipeline(config, registries[1], tmp_path / "state")
    for _ in range(2):
        pipeline.poll_once()
    pipeline.stop()
    writer.close()
    assert sum(counted(r) for r in registries) == 6
