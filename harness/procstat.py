"""CPU time of a process from Linux /proc, for the benchmarks and the tests that measure work
rather than the wall clock (a process waiting for a CPU uses none)."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, thread: int | None = None, children: bool = False) -> float:
    """User + system CPU seconds of process `pid` (of its thread `thread` alone, when given), with
    its reaped children's when `children`. Raises OSError when the process is gone."""
    stat = f"/proc/{pid}/task/{thread}/stat" if thread is not None else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / TICKS
