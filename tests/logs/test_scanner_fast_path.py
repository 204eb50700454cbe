"""Differential test: the fast path (a reused read buffer scanned in place, cache-sized blocks, numpy
line count, Hyperscan over whole blocks) counts exactly what a plain per-line loop counts.

The fast path here is the one the exporter runs: FollowedFile.read_new on a real file, into the
thread's reused buffer (the leftover start of a line put in front of the next read, or, when it is
longer than the room there, joined by copying), through the LineAssembler and the BlockScanner of a
LogCounter. The plain
path splits the whole input on newlines in Python. Inputs mix partial last lines, invalid UTF-8,
CRLF, NUL, lines longer than the limit and lines of exactly the limit, with blocks small enough
that lines straddle reads.
"""

from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tts_sentinel.exporter.logs import followed_file
from tts_sentinel.exporter.logs.followed_file import FollowedFile
from tts_sentinel.exporter.logs.metrics import LogCounter, LogMetrics
from tts_sentinel.loghistory import hyperscan_engine, scanner
from tts_sentinel.loghistory.config import BUILTIN_PATTERNS
from tts_sentinel.loghistory.scanner import LineAssembler, compile_pattern, count_lines

PATTERNS = [compile_pattern(p.name, p.regex) for p in BUILTIN_PATTERNS] + [
    compile_pattern("end_anchor", r"timeout > \d+s$"),
    compile_pattern("start_anchor", r"^Model load"),
]
FRAGMENTS = [
    b"[CUDA] Out of memory on device 0", b"Model load timeout > 15s", b"Segmentation fault",
    b"torch.OutOfMemoryError: CUDA out of memory.", b"EngineCore encountered an issue.",
    b"\xff\xfe", "\u4f60\u597d".encode(), b"\xe4\xbd", b"\x00", b"\r", b"2024-06-15 14:22:03,102 [INFO]",
]
line = st.one_of(
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=6)), max_size=6).map(
        lambda parts: b" ".join(parts).replace(b"\n", b" ")),
    st.tuples(st.integers(60, 700), st.sampled_from(FRAGMENTS)).map(lambda t: b"y" * t[0] + b" " + t[1]),
)
ENGINES = ["literal", "hyperscan"] if hyperscan_engine.AVAILABLE else ["literal"]


def plain_counts(data: bytes, max_line: int) -> dict[str, object]:
    """The reference: every line (the unterminated last one too), cut to max_line, checked one by one."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    cut = [raw[:max_line] for raw in lines]
    invalid = 0
    for raw in cut:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            invalid += 1
    return {
        "lines": len(lines),
        "long": sum(1 for raw in lines if len(raw) > max_line),
        "invalid": invalid,
        "matches": {p.name: sum(1 for raw in cut if raw and p.regex.search(raw)) for p in PATTERNS},
    }


def fast_counts(data: bytes, max_line: int, block: int, engine: str) -> dict[str, object]:
    registry = CollectorRegistry()
    counter = LogCounter("x", PATTERNS, LogMetrics(registry), engine)  # type: ignore[arg-type]
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(data)
        tmp.flush()
        fd = os.open(tmp.name, os.O_RDONLY)
        f = FollowedFile(fd=fd, ident=(0, 0), pos=0, assembler=LineAssembler(max_line))
        f.read_new(counter, block, 256)
        f.finish(counter, 256)

    def value(name: str, **labels: str) -> int:
        return int(registry.get_sample_value(name, {"log": "x", **labels}) or 0)

    return {
        "lines": value("tts_log_lines_total"),
        "long": value("tts_log_long_lines_total"),
        "invalid": value("tts_log_invalid_utf8_lines_total"),
        "matches": {p.name: value("tts_log_pattern_matches_total", pattern=p.name) for p in PATTERNS},
    }


@settings(max_examples=120, deadline=None)
@given(
    lines=st.lists(line, max_size=60),
    repeat=st.sampled_from([1, 1, 40]),
    numpy_from=st.sampled_from([0, scanner.NUMPY_COUNT_BYTES]),  # 0: numpy counts every block
    crlf=st.booleans(),
    terminated=st.booleans(),
    max_line=st.sampled_from([64, 128, 4096]),
    block=st.sampled_from([4096, 4099, 262144]),
    engine=st.sampled_from(ENGINES),
    leftover_room=st.sampled_from([0, 100, followed_file.LEFTOVER_ROOM]),  # 0: every leftover is copied
)
def test_fast_path_counts_what_a_plain_loop_counts(lines, repeat, numpy_from, crlf, terminated, max_line, block,
                                                  engine, leftover_room):
    sep = b"\r\n" if crlf else b"\n"
    data = sep.join(lines * repeat) + (sep if terminated and lines else b"")
    default, scanner.NUMPY_COUNT_BYTES = scanner.NUMPY_COUNT_BYTES, numpy_from
    room, followed_file.LEFTOVER_ROOM = followed_file.LEFTOVER_ROOM, leftover_room
    try:
        assert fast_counts(data, max_line, block, engine) == plain_counts(data, max_line)
    finally:
        scanner.NUMPY_COUNT_BYTES = default
        followed_file.LEFTOVER_ROOM = room


@pytest.mark.parametrize("size", [0, 1, 100, 65535, 65536, 65537, 300_000])
def test_line_count_is_the_number_of_newlines_at_every_size(size):
    block = bytes((i * 7 + 3) % 256 for i in range(size))
    assert count_lines(block) == block.count(b"\n")
