"""A process from Linux /proc, for the benchmarks and the tests: its CPU time (they measure work
rather than the wall clock: a process waiting for a CPU uses none), its children and its resident
memory."""

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


def child_pids(pid: int) -> list[int]:
    """The children of every thread of `pid` (a child respawned by a helper thread is that
    thread's); [] when the process is gone."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            found += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def resident_bytes(pid: int, *, peak: bool = False) -> int:
    """Resident memory of process `pid` now (VmRSS), or its peak so far (VmHWM) when `peak`.
    Raises OSError when the process is gone (or a zombie, which has none)."""
    key = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise ProcessLookupError(f"process {pid} has no {key[:-1]} (a zombie?)")
