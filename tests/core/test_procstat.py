"""harness/procstat.py: what the benchmarks and the tests read of a process from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tts_sentinel.harness.procstat import child_pids, cpu_seconds, resident_bytes

HOLD = ("import sys; block = bytearray(64 << 20); block[::4096] = b'x' * len(block[::4096]); "
        "print('ready', flush=True); sys.stdin.readline()")


def test_resident_memory_child_pids_and_a_process_that_is_gone():
    child = subprocess.Popen([sys.executable, "-c", HOLD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        now, peak = resident_bytes(child.pid), resident_bytes(child.pid, peak=True)
        assert now >= 64 << 20, "the 64 MiB it touched are resident"
        assert peak >= now
        assert child.pid in child_pids(os.getpid())
        assert cpu_seconds(child.pid) >= 0.0
        child.stdin.write("\n")
        child.stdin.flush()
        child.stdout.read()  # end of file: it is exiting; not reaped, it becomes a zombie
        deadline = time.monotonic() + 30
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        with pytest.raises(ProcessLookupError, match="no VmRSS"):
            resident_bytes(child.pid)  # a zombie holds no memory
    finally:
        child.kill()
        child.wait()
    with pytest.raises(OSError):
        resident_bytes(child.pid)
    assert child_pids(child.pid) == []
