"""Multi-pattern prefiltering with Hyperscan, when the optional `hyperscan` wheel is installed.

One Hyperscan database holds every pattern in prefilter mode: it reports a superset of
the places where a pattern can match, in one pass over the block for all patterns
together. Each reported line is then confirmed with the pattern's own Python regex, so
the counts are exactly those of `count_matching_lines` whatever the two engines disagree
on (look-arounds, `$` before a newline, a match that would span two lines). Patterns
Hyperscan cannot compile even as a prefilter stay on the literal scanner.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

try:
    import hyperscan
except ImportError:  # optional: `pip install 'tts-sentinel[hyperscan]'`
    hyperscan = None

AVAILABLE = hyperscan is not None


class HyperscanMatcher:
    """Counts matching lines per pattern for a fixed list of patterns.

    `fallback(block, i)` counts pattern i for the patterns Hyperscan cannot take.
    """

    def __init__(self, regexes: Sequence[re.Pattern[bytes]], fallback: Callable[[bytes, int], int]) -> None:
        if hyperscan is None:
            raise RuntimeError("the hyperscan package is not installed")
        self.regexes = list(regexes)
        self._fallback_count = fallback
        # No HS_FLAG_ALLOWEMPTY: a pattern that can match the empty string stays on the fallback.
        flags = hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_PREFILTER
        self._in_db: list[int] = []
        self._fallback: list[int] = []
        for i, rx in enumerate(self.regexes):
            try:
                probe = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                probe.compile(expressions=[rx.pattern], ids=[i], elements=1, flags=[flags])
            except hyperscan.error as exc:
                log.info("pattern %r stays on the literal scanner (Hyperscan: %s)", rx.pattern, exc)
                self._fallback.append(i)
            else:
                self._in_db.append(i)
        self._db: Any = None
        if self._in_db:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._db.compile(expressions=[self.regexes[i].pattern for i in self._in_db], ids=self._in_db,
                             elements=len(self._in_db), flags=[flags] * len(self._in_db))
            self._scratch = hyperscan.Scratch(self._db)

    @property
    def prefiltered(self) -> int:
        """How many patterns Hyperscan prefilters (the rest use the literal scanner)."""
        return len(self._in_db)

    def count(self, block: bytes | bytearray) -> list[int]:
        """Matching lines per pattern in `block` (complete lines, each ending in \\n)."""
        counts = [0] * len(self.regexes)
        for i in self._fallback:
            counts[i] = self._fallback_count(block, i)
        if self._db is None or not block:
            return counts
        # (pattern id, line start) of every candidate line; a line is confirmed once per pattern
        candidates: set[tuple[int, int]] = set()
        rfind = block.rfind

        def on_match(pid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            candidates.add((pid, rfind(b"\n", 0, max(end - 1, 0)) + 1))  # the line holding the match's last byte

        self._db.scan(block, match_event_handler=on_match, scratch=self._scratch)
        find = block.find
        for pid, start in candidates:
            end = find(b"\n", start)
            end = len(block) if end < 0 else end
            if end > start and self.regexes[pid].search(block, start, end):  # empty lines never count
                counts[pid] += 1
        return counts
