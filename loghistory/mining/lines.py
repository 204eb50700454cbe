"""WARN/ERROR lines out of blocks of log text, and the shape of one line: level and body.

Only warnings and errors are mined. A block is searched with `bytes.find` for the level
words (or by Hyperscan in one pass, when installed), so a block without any costs a few
scans of memory and no per-line Python; only the lines around a hit are looked at, and a
line counts when its first level word (the one the logger wrote, not one quoted in the
message) is a warning or an error.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from tts_sentinel.loghistory import hyperscan_engine
from tts_sentinel.loghistory.scanner import CompiledPattern, Engine

# What bytes.find looks for; WARN also finds WARNING.
LEVEL_TOKENS = (b"WARN", b"ERROR", b"CRITICAL", b"FATAL")
MINED_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
LEVEL_RANK = {"CRITICAL": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "DEBUG": 4, "": 5}
# The logger's level sits near the start: after a timestamp, maybe a logger name or a pid.
LEVEL_HEAD_BYTES = 160
_LEVEL_WORD = re.compile(
    r"(?<![A-Za-z])\[?(DEBUG|INFO|NOTICE|WARN(?:ING)?|ERROR|CRITICAL|FATAL)\]?:?(?![A-Za-z])"
)
_NORMAL = {"WARN": "WARNING", "FATAL": "CRITICAL", "NOTICE": "INFO"}


class LevelPrefilter:
    """Whether a block holds a level token at all: the test every block pays, so it must be cheap.

    `bytes.find` once per token, or with Hyperscan (engine "auto" when installed, or "hyperscan")
    one pass for all of them that stops at the first hit, about ten times faster.
    """

    def __init__(self, engine: Engine = "auto") -> None:
        hs = hyperscan_engine.hyperscan
        self._db: Any = None
        if hs is not None and engine != "literal":
            self._db = hs.Database(mode=hs.HS_MODE_BLOCK)
            self._db.compile(expressions=list(LEVEL_TOKENS), ids=list(range(len(LEVEL_TOKENS))),
                             elements=len(LEVEL_TOKENS), flags=[hs.HS_FLAG_SINGLEMATCH] * len(LEVEL_TOKENS))
            self._local = threading.local()  # Hyperscan scratch space is per thread

    def __call__(self, block: bytes | bytearray) -> bool:
        """True when `block` contains WARN, ERROR, CRITICAL or FATAL anywhere."""
        if self._db is None:
            return any(block.find(token) >= 0 for token in LEVEL_TOKENS)
        hs = hyperscan_engine.hyperscan
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hs.Scratch(self._db)
        try:
            self._db.scan(block, match_event_handler=lambda *_: True, scratch=scratch)  # True: stop at once
        except hs.ScanTerminated:
            return True
        return False


def warn_error_lines(block: bytes | bytearray) -> list[bytes]:
    """The lines of `block` (complete lines) that contain a warning or error level word, in order.

    A candidate only: `split_line` decides from the line's first level word. The lines are bytes
    of their own, never views of `block` (it may be a read buffer about to be reused).
    """
    spans: set[int] = set()
    find = block.find
    rfind = block.rfind
    for token in LEVEL_TOKENS:
        pos = find(token)
        while pos >= 0:
            start = rfind(b"\n", 0, pos) + 1
            end = find(b"\n", pos)
            if end < 0:
                end = len(block)
            spans.add(start)
            pos = find(token, end + 1)
    out = []
    for start in sorted(spans):
        end = find(b"\n", start)
        out.append(bytes(block[start : end if end >= 0 else len(block)]))
    return out


class LineShape:
    """Splits a line into its level and the body that is mined (no timestamp, no level word)."""

    def __init__(self, timestamp_regex: str) -> None:
        self.ts = re.compile(timestamp_regex + r"\s*")

    def split(self, line: str) -> tuple[str, str]:
        """(level, body): level is WARNING, ERROR, CRITICAL, INFO, DEBUG or "" when the line has none."""
        m = self.ts.match(line)
        body = line[m.end():] if m else line
        lv = _LEVEL_WORD.search(body, 0, LEVEL_HEAD_BYTES)
        if lv is None:
            return "", body.strip()
        level = _NORMAL.get(lv.group(1), lv.group(1))
        # The level is reported per template, not part of it.
        return level, (body[: lv.start()] + " " + body[lv.end():]).strip()


def covering_pattern(raw: bytes, patterns: Sequence[CompiledPattern]) -> CompiledPattern | None:
    """The first pattern that matches the line, or None (literal prefilter first, as the scanner does)."""
    for p in patterns:
        if (p.literal is None or p.literal in raw) and p.regex.search(raw):
            return p
    return None
