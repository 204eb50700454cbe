"""Seconds from spawn to the first /health answer: our stdlib simulator vs a minimal FastAPI+uvicorn app.

supervisord restarts the simulator in tests and drills, so start-up time is on the
fault-to-green path. Prints medians and the ratio; asserts nothing.
Run: .venv/bin/python bench/probes_simulator_startup.py [runs]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from tts_sentinel.harness.stack import free_port

FASTAPI_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/health")
def health():
    return {"status": "ok"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def time_to_health(args: list[str], port: int) -> float:
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)
                return time.monotonic() - started
            except httpx.HTTPError:
                if proc.poll() is not None:
                    raise SystemExit(f"{args[:4]} exited with {proc.returncode}") from None
                time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        ours, fastapi = [], []
        for _ in range(runs):
            web, api = free_port(), free_port()
            config = os.path.join(tmp, "sim.yml")
            with open(config, "w") as f:
                f.write(f"simulator:\n  web_port: {web}\n  api_port: {api}\n  log_dir: {tmp}/logs\n")
            ours.append(time_to_health([sys.executable, "-m", "tts_sentinel.cli", "simulate", "web",
                                        "--config", config], web))
            port = free_port()
            fastapi.append(time_to_health([sys.executable, "-c", FASTAPI_APP, str(port)], port))
    a, b = statistics.median(ours), statistics.median(fastapi)
    print(f"{os.cpu_count()} CPUs, median of {runs} starts, spawn -> first /health answer:")
    print(f"  simulator web front (stdlib ThreadingHTTPServer): {a:.3f} s")
    print(f"  minimal FastAPI + uvicorn app:                    {b:.3f} s  ({b / a:.1f}x ours)")


if __name__ == "__main__":
    main()
