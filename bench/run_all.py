"""Run every benchmark once, in one go, with their default sizes (`make bench`)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCHES = [
    ["logs_scan.py"],
    ["logs_triage.py"],
    ["logs_mining.py"],
    ["probes_speed.py"],
    ["probes_streaming.py", "15"],
    ["probes_simulator_startup.py"],
    ["receiver_storm.py"],
    ["loop_drills.py"],
    ["exporter_capacity.py"],
]


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for argv in BENCHES:
        print(f"\n=== {' '.join(argv)} ===", flush=True)
        start = time.monotonic()
        rc = subprocess.call([sys.executable, str(here / argv[0]), *argv[1:]])
        print(f"=== {argv[0]}: exit {rc} after {time.monotonic() - start:.0f}s ===", flush=True)
        if rc:
            failed.append(argv[0])
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
