"""Enter a plain log file near the start of the window by binary search on its timestamps."""

from __future__ import annotations

from datetime import datetime
from typing import BinaryIO

from tts_sentinel.loghistory.triage.clock import LineClock

# Binary search stops when the range is this small and scans forward from there.
SEEK_GRANULE = 64 * 1024
SEEK_LOOKAHEAD = 1024 * 1024


def _first_line_start_at_or_after(f: BinaryIO, pos: int) -> int:
    if pos == 0:
        return 0
    f.seek(pos - 1)
    while True:
        chunk = f.read(SEEK_GRANULE)
        if not chunk:
            return -1
        nl = chunk.find(b"\n")
        if nl >= 0:
            return f.tell() - len(chunk) + nl + 1


def _time_at(f: BinaryIO, pos: int, end: int, clock: LineClock) -> datetime | None:
    """Timestamp of the first timestamped line starting at or after `pos`.

    None when there is none before `end` or within SEEK_LOOKAHEAD bytes (a long traceback):
    the search then keeps the lower half, which costs reading more, never missing lines.
    """
    start = _first_line_start_at_or_after(f, pos)
    end = min(end, pos + SEEK_LOOKAHEAD)
    while 0 <= start < end:
        f.seek(start)
        line = f.readline(4096)
        t = clock.time_of(line)
        if t is not None:
            return t
        if not line:
            return None
        start = f.tell() if line.endswith(b"\n") else _first_line_start_at_or_after(f, f.tell())
    return None


def seek_window_start(f: BinaryIO, size: int, start: datetime, clock: LineClock) -> int:
    """Offset of a line start at or before the first line stamped >= `start` (binary search)."""
    lo, hi = 0, size
    while hi - lo > SEEK_GRANULE:
        mid = (lo + hi) // 2
        t = _time_at(f, mid, hi, clock)
        if t is not None and t < start:
            lo = mid
        else:
            hi = mid
    first = _first_line_start_at_or_after(f, lo)
    return first if first >= 0 else lo
