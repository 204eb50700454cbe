"""A progress bar on stderr for triage runs that read a lot."""

from __future__ import annotations

import sys
import time


class Progress:
    """A progress bar on stderr, shown only on a terminal and only once a run takes over a second."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self.started = time.monotonic()
        self.shown = False
        self._last = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < 1.0 or now - self._last < 0.1:
            return
        self._last = now
        frac = min(1.0, self.done / self.total)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\rtriage [{bar:<30}] {frac:6.1%} {self.done / 1e6:,.0f} MB")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()
