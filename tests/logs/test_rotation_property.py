"""Property: whatever the rotation scheme and however polls and restarts interleave with the writes,
every line written is counted exactly once, lines written in two pieces and lines longer than
the limit (cut) included.

A writer model appends numbered lines to the three logs and rotates them in one of the ways
real deployments do (dated rename, numbered rename, numbered rename with gzip, copytruncate,
delete and create). Hypothesis picks the schemes and the sequence of writes, rotations, polls
and exporter restarts; the counted lines and matches must equal the written ones.

The only constraints are the ones no tailer can beat: a generation that is compressed or
deleted before the tailer ever opened it is gone, so the writer polls once after a gzip
rotation before the next one and before deleting a file, and does only appends, renames and
copytruncate while the exporter is down.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tts_sentinel.exporter.logs.pipeline import LogPipeline
from tts_sentinel.loghistory.config import LogFileConfig, LogsConfig

MODES = ["rename_dated", "rename_numbered", "gzip_numbered", "copytruncate", "delete_create"]
NAMES = ["webui", "inference", "health"]
KEEP = 5
MAX_LINE = 256
LONG = 300


class RotatingWriter:
    """Writes numbered lines to one log and rotates it in one fixed way."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path = path
        self.mode = mode
        self.lines = 0
        self.ooms = 0
        self.long = 0
        self.rotations = 0
        self.partial = b""  # the rest of a line whose start is already in the file
        self.needs_poll = False  # a generation could be lost to compression/deletion before a poll

    def _next_line(self) -> bytes:
        self.lines += 1
        if self.lines % 3 == 0:
            self.ooms += 1
            return b"2024-06-15 14:22:03,102 [ERROR] [CUDA] Out of memory on device 0 #%d\n" % self.lines
        if self.lines % 7 == 0:  # longer than max_line_bytes: cut and counted once
            self.long += 1
            return b"2024-06-15 14:22:03,000 [INFO] " + b"x" * LONG + b" #%d\n" % self.lines
        return b"2024-06-15 14:22:03,%03d [INFO] request %d done\n" % (self.lines % 1000, self.lines)

    def _write(self, data: bytes) -> None:
        with open(self.path, "ab") as f:
            f.write(data)

    def finish_partial(self) -> None:
        if self.partial:
            self._write(self.partial)
            self.partial = b""

    def append(self, n: int) -> None:
        self.finish_partial()
        self._write(b"".join(self._next_line() for _ in range(n)))

    def start_partial(self, cut: int) -> None:
        """Write the start of a line; the rest comes with the next write (a logger mid-write)."""
        self.finish_partial()
        line = self._next_line()
        cut = max(1, min(cut, len(line) - 1))
        self._write(line[:cut])
        self.partial = line[cut:]

    def _gen(self, n: int, gz: bool = False) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}{'.gz' if gz else ''}")

    def _shift(self, gz_from: int | None) -> None:
        """name.N -> name.N+1 (oldest dropped); generations from gz_from on are compressed."""
        for n in range(KEEP, 0, -1):
            for gz in (True, False):
                src = self._gen(n, gz)
                if not src.exists():
                    continue
                if n == KEEP:
                    src.unlink()
                    continue
                if not gz and gz_from is not None and n + 1 >= gz_from:
                    with open(src, "rb") as fi, gzip.open(self._gen(n + 1, True), "wb") as fo:
                        shutil.copyfileobj(fi, fo)
                    src.unlink()
                else:
                    os.rename(src, self._gen(n + 1, gz))

    def rotate(self) -> None:
        self.finish_partial()  # loggers write whole lines: no line straddles two files
        self.rotations += 1
        if not self.path.exists():
            return
        if self.mode == "rename_dated":
            os.rename(self.path, self.path.with_name(f"{self.path.name}.2024-06-{self.rotations:02d}"))
        elif self.mode == "rename_numbered":
            self._shift(None)
            os.rename(self.path, self._gen(1))
        elif self.mode == "gzip_numbered":
            self._shift(2)  # delaycompress: .1 stays plain, older ones are .gz
            os.rename(self.path, self._gen(1))
            self.needs_poll = True
        elif self.mode == "copytruncate":
            self._shift(None)
            shutil.copyfile(self.path, self._gen(1))
            with open(self.path, "r+b") as f:
                f.truncate(0)
        elif self.mode == "delete_create":
            self.path.unlink()

    def safe_while_down(self) -> bool:
        return self.mode in ("rename_dated", "rename_numbered", "copytruncate")


def counted(registries: list[CollectorRegistry], metric: str, **labels: str) -> float:
    return sum(r.get_sample_value(metric, labels) or 0.0 for r in registries)


op = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 2), st.integers(1, 40)),
    st.tuples(st.just("rotate"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("poll"), st.just(0), st.just(0)),
    st.tuples(st.just("partial"), st.integers(0, 2), st.integers(1, 400)),
    st.tuples(st.just("restart"), st.just(0), st.integers(0, 3)),
)


# Each example costs a few pipelines; what makes one slow is not the tailer but what the property
# does not test: Hyperscan compiling its databases and template learning for every pipeline. Both
# are off here (the scanner engines are compared in test_scanner_engines and test_scanner_fast_path),
# so 200 examples run in under a minute where 400 took five. TTS_ROTATION_EXAMPLES=2000 for a
# deeper search.
EXAMPLES = int(os.environ.get("TTS_ROTATION_EXAMPLES", "200"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# copytruncate, a line written in two pieces around a poll, then a restart with a copytruncate while
# the exporter is down (reported once as 10 lines counted for 9 written)
@example(modes=["copytruncate"] * 3, block=4096, rotate_wait=0,
         ops=[("append", 0, 8), ("partial", 0, 20), ("poll", 0, 0), ("restart", 0, 1), ("append", 0, 1)])
@example(modes=["copytruncate", "gzip_numbered", "delete_create"], block=4096, rotate_wait=3600,
         ops=[("partial", 0, 5), ("poll", 0, 0), ("restart", 0, 3), ("partial", 0, 300), ("restart", 0, 1)])
# a generation read before a restart and compressed after it (its archive was read whole again)
@example(modes=["rename_dated", "gzip_numbered", "rename_dated"], block=4096, rotate_wait=0,
         ops=[("restart", 0, 2), ("rotate", 1, 0), ("append", 1, 1), ("restart", 0, 0), ("rotate", 1, 0)])
@given(
    modes=st.lists(st.sampled_from(MODES), min_size=3, max_size=3),
    ops=st.lists(op, min_size=1, max_size=40),
    block=st.sampled_from([4096, 65536]),
    rotate_wait=st.sampled_from([0, 3600]),
)
def test_lines_written_equal_lines_counted(modes, ops, block, rotate_wait):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        logs = root / "logs"
        logs.mkdir()
        writers = [RotatingWriter(logs / f"{name}.log", m) for name, m in zip(NAMES, modes, strict=True)]
        config = LogsConfig(
            files=[LogFileConfig(name=n, path=w.path) for n, w in zip(NAMES, writers, strict=True)],
            rotate_wait_seconds=rotate_wait,
            read_block_bytes=block,
            max_line_bytes=MAX_LINE,
            scanner="literal",
            learning={"enabled": False},
        )
        registries: list[CollectorRegistry] = []

        def new_pipeline() -> LogPipeline:
            registries.append(CollectorRegistry())
            return LogPipeline(config, registries[-1], root / "state")

        pipeline = new_pipeline()
        pipeline.poll_once()
        for kind, idx, n in ops:
            w = writers[idx]
            if kind == "append":
                w.append(n)
            elif kind == "partial":
                w.start_partial(n)
            elif kind == "rotate":
                if w.needs_poll or w.mode == "delete_create":
                    pipeline.poll_once()
                    for x in writers:
                        x.needs_poll = False
                w.rotate()
            elif kind == "poll":
                pipeline.poll_once()
                for x in writers:
                    x.needs_poll = False
            elif kind == "restart":
                pipeline.poll_once()
                pipeline.stop()
                # while the exporter is down: appends, and rotations no tailer could miss
                for k in range(n):
                    down = writers[k % 3]
                    down.append(k + 1)
                    if down.safe_while_down() and k % 2 == 0:
                        down.rotate()
                    down.append(1)
                pipeline = new_pipeline()
                pipeline.poll_once()
                for x in writers:
                    x.needs_poll = False
        for w in writers:
            w.finish_partial()
        pipeline.poll_once()
        pipeline.poll_once()  # the second poll finishes files the first one saw rotated
        pipeline.stop()
        for name, w in zip(NAMES, writers, strict=True):
            lines = counted(registries, "tts_log_lines_total", log=name)
            assert lines == w.lines, (name, w.mode, modes, ops)
            ooms = counted(registries, "tts_log_pattern_matches_total", log=name, pattern="cuda_oom")
            assert ooms == w.ooms, (name, w.mode, modes, ops)
            long = counted(registries, "tts_log_long_lines_total", log=name)
            assert long == w.long, (name, w.mode, modes, ops)
