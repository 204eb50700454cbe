"""Count pattern matches in blocks of complete lines, fast.

A per-line Python loop over millions of lines spends its time in the interpreter.
Instead each block (a few MiB of whole lines) is searched with `bytes.find` for a
literal that every match of the pattern must contain; only the lines around a hit
are confirmed with the full regular expression. A pattern without such a literal
falls back to a per-line search, which is correct but slower.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tts_sentinel.loghistory import hyperscan_engine

try:  # the parser moved in Python 3.11; both expose the same parse tree
    import re._parser as _sre_parse  # type: ignore[import-not-found]
    from re._constants import LITERAL, SUBPATTERN  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _sre_parse  # type: ignore[no-redef]
    from sre_constants import LITERAL, SUBPATTERN  # type: ignore[no-redef]

MIN_LITERAL = 3


def required_literal(regex: str) -> bytes | None:
    """The longest run of literal bytes every match of `regex` contains, or None when there is none.

    Only the top-level sequence (and groups inside it) is examined: alternations,
    classes and repeats end a run. Case-insensitive patterns have no literal.
    """
    try:
        tree = _sre_parse.parse(regex)
    except re.error:
        return None
    if tree.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    best: list[int] = []
    run: list[int] = []

    def walk(items: Sequence[tuple[object, object]]) -> None:
        nonlocal best, run
        for op, arg in items:
            if op is LITERAL:
                run.append(arg)  # type: ignore[arg-type]
            elif op is SUBPATTERN and not arg[2] and not arg[1]:  # type: ignore[index]
                walk(arg[3])  # type: ignore[index]
            else:
                if len(run) > len(best):
                    best = run
                run = []

    walk(list(tree))
    if len(run) > len(best):
        best = run
    if len(best) < MIN_LITERAL or any(c > 0x7F for c in best):
        # Non-ASCII code points would need an encoding choice; leave them to the regex.
        return None
    return bytes(best)


# Below this size bytes.count is as fast as numpy's vectorised compare.
NUMPY_COUNT_BYTES = 64 * 1024


def count_lines(block: bytes | bytearray) -> int:
    """How many newlines `block` holds: numpy's vectorised compare, about 5x bytes.count on big blocks."""
    if len(block) < NUMPY_COUNT_BYTES:
        return block.count(b"\n")
    return int(np.count_nonzero(np.frombuffer(block, np.uint8) == 10))


@dataclass(frozen=True)
class CompiledPattern:
    """One pattern ready for block scanning."""

    name: str
    regex: re.Pattern[bytes]
    literal: bytes | None


@functools.lru_cache(maxsize=1024)
def compile_pattern(name: str, regex: str) -> CompiledPattern:
    """Compile `regex` for bytes; MULTILINE so `^` also matches at a line start inside a block.

    Cached: the receiver triages a window for every new incident, and deriving the required literal
    of ~20 patterns cost ~10 ms of CPU each time (the result is immutable)."""
    return CompiledPattern(name, re.compile(regex.encode("utf-8"), re.MULTILINE), required_literal(regex))


def count_matching_lines(block: bytes | bytearray, pattern: CompiledPattern) -> int:
    """How many lines of `block` (complete lines, each ending in \\n) match `pattern`."""
    rx = pattern.regex
    lit = pattern.literal
    if lit is None:
        return sum(1 for line in block.split(b"\n") if line and rx.search(line))
    n = 0
    pos = 0
    find = block.find
    rfind = block.rfind
    size = len(block)
    while True:
        hit = find(lit, pos)
        if hit < 0:
            return n
        start = rfind(b"\n", 0, hit) + 1
        end = find(b"\n", hit)
        if end < 0:
            end = size
        if rx.search(block, start, end):
            n += 1
        pos = end + 1


def invalid_utf8_lines(block: bytes | bytearray) -> int:
    """How many lines of `block` are not valid UTF-8 (almost free when the block is ASCII)."""
    if block.isascii():
        return 0
    view = memoryview(block)
    n = 0
    pos = 0
    while True:
        try:
            codecs.utf_8_decode(view[pos:], "strict", True)
            return n
        except UnicodeDecodeError as exc:
            bad = pos + exc.start
        n += 1
        end = block.find(b"\n", bad)
        if end < 0:
            return n
        pos = end + 1


def cut_long_lines(block: bytes | bytearray, max_line: int) -> tuple[bytes | bytearray, int]:
    """Cut every line of `block` longer than `max_line` bytes to its first `max_line` bytes.

    Returns the (possibly rebuilt) block and how many lines were cut. Checks one
    `find` per half-limit window, so a block without long lines costs almost nothing:
    a run longer than 2*H without a newline must contain a whole aligned window of H.
    """
    half = max(1, max_line // 2)
    size = len(block)
    if size <= max_line:
        return block, 0
    long_spans: list[tuple[int, int]] = []
    k = 0
    while k < size:
        if block.find(b"\n", k, k + half) < 0:
            start = block.rfind(b"\n", 0, k) + 1
            end = block.find(b"\n", k)
            if end < 0:
                end = size
            if end - start > max_line and (not long_spans or long_spans[-1][0] != start):
                long_spans.append((start, end))
            k = max(k + half, end + 1)
            continue
        k += half
    if not long_spans:
        return block, 0
    parts: list[bytes] = []
    prev = 0
    for start, end in long_spans:
        parts.append(block[prev : start + max_line])
        prev = end
    parts.append(block[prev:])
    return b"".join(parts), len(long_spans)


class LineAssembler:
    """Turns arbitrary chunks of bytes into blocks of complete lines, with bounded memory.

    A partial last line waits for its newline. A line longer than `max_line` bytes is
    cut: its first `max_line` bytes are emitted as a line and the rest is skipped up to
    the next newline, so at most `max_line` bytes are ever held back.
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.pending = b""
        self.discarding = False

    def push(self, data: bytes | bytearray, size: int | None = None) -> tuple[bytes, int]:
        """Add the first `size` bytes of `data` (all of it by default); return (block of complete
        lines, number of lines cut as too long).

        `data` may be a read buffer the caller reuses: nothing returned or kept refers to it.
        """
        size = len(data) if size is None else size
        start = 0
        if self.discarding:
            nl = data.find(b"\n", 0, size)
            if nl < 0:
                return b"", 0
            start = nl + 1
            self.discarding = False
        pending, self.pending = self.pending, b""
        last = data.rfind(b"\n", start, size)
        view = memoryview(data)
        # One copy at most for the block: the pending start of a line and the complete lines of
        # `data` are joined straight from a view, never concatenated and then sliced.
        if last < 0:
            block, rest = b"", b"".join((pending, view[start:size]))
        elif not pending and start == 0 and last == len(data) - 1 and isinstance(data, bytes):
            block, rest = data, b""
        else:
            block = b"".join((pending, view[start : last + 1]))
            rest = bytes(view[last + 1 : size])
        view.release()
        return self._finish(block, rest)

    def push_in_place(self, buf: bytearray) -> tuple[bytes | bytearray, int]:
        """Like `push`, for a read buffer that already starts with `pending` (the caller put it there).

        The block of complete lines is `buf` itself, trimmed in place to its last newline (a
        bytearray shrinks at its end without copying): valid only until the caller reuses `buf`.
        Only the partial last line is copied out, into `pending`.
        """
        if self.discarding:  # no pending then: skip the rest of the cut line, the slow way (rare)
            self.pending = b""
            return self.push(buf)
        last = buf.rfind(b"\n")
        with memoryview(buf) as view:
            rest = bytes(view[last + 1 :])
        if last < 0:
            self.pending = b""
            return self._finish(b"", rest)
        del buf[last + 1 :]
        return self._finish(buf, rest)

    def _finish(self, block: bytes | bytearray, rest: bytes) -> tuple[bytes | bytearray, int]:
        """Cut long lines in `block`, keep `rest` (the partial last line) as pending, cut it when too long."""
        cut = 0
        if block:
            block, cut = cut_long_lines(block, self.max_line)
        if len(rest) > self.max_line:
            block = block + rest[: self.max_line] + b"\n"
            cut += 1
            self.discarding = True
            rest = b""
        self.pending = rest
        return block, cut

    def flush(self) -> bytes:
        """The pending partial line, terminated, when its file is finished for good."""
        line, self.pending = self.pending, b""
        self.discarding = False
        return line + b"\n" if line else b""


@dataclass
class BlockCounts:
    """What one block contained."""

    lines: int
    nbytes: int
    invalid_utf8: int
    matches: list[int]


Engine = Literal["auto", "hyperscan", "literal"]


class BlockScanner:
    """Counts lines, invalid UTF-8 lines and pattern matches in blocks of complete lines.

    `engine`: "auto" uses Hyperscan as a prefilter when its wheel is installed, else the
    literal scanner above; both give the same counts (tests/logs/test_scanner_engines.py).
    """

    def __init__(self, patterns: Sequence[CompiledPattern], engine: Engine = "auto") -> None:
        self.patterns = list(patterns)
        if engine == "hyperscan" and not hyperscan_engine.AVAILABLE:
            raise RuntimeError("engine 'hyperscan' asked for, but the hyperscan package is not installed")
        use_hs = engine == "hyperscan" or (engine == "auto" and hyperscan_engine.AVAILABLE and self.patterns)
        self.engine = "hyperscan" if use_hs else "literal"
        self._hs = hyperscan_engine.HyperscanMatcher(
            [p.regex for p in self.patterns], lambda block, i: count_matching_lines(block, self.patterns[i])
        ) if use_hs else None

    def scan(self, block: bytes | bytearray) -> BlockCounts:
        """Count one block (complete lines, each ending in \\n)."""
        return BlockCounts(
            lines=count_lines(block),
            nbytes=len(block),
            invalid_utf8=invalid_utf8_lines(block),
            matches=self._hs.count(block) if self._hs else [count_matching_lines(block, p) for p in self.patterns],
        )
