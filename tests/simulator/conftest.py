"""A running simulator (both components as real processes) on free loopback ports."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from support import free_port


@dataclass
class Simulator:
    """Handles of one simulator run: URLs, log dir, processes."""

    web: str
    api: str
    log_dir: Path
    config: Path
    procs: dict[str, subprocess.Popen]

    def start(self, component: str) -> None:
        """(Re)start one component and wait until it answers."""
        self.procs[component] = subprocess.Popen(
            [sys.executable, "-m", "tts_sentinel.cli", "simulate", component, "--config", str(self.config)],
        )
        url = (self.web if component == "web" else self.api) + "/admin/fault"
        # 60 s: a loaded CI machine (three test workers on two cores) starts Python slowly
        wait_for(lambda: _answers(url), f"{component} to listen", 60.0)

    def fault(self, name: str, component: str = "inference", port: str = "web") -> httpx.Response:
        """Inject a fault through the admin API on the given port."""
        base = self.web if port == "web" else self.api
        return httpx.post(base + "/admin/fault", json={"fault": name, "component": component}, timeout=5)

    def wait_for(self, condition, what: str, deadline_s: float = 20.0) -> None:
        """Poll `condition` until true (no timed assertions)."""
        wait_for(condition, what, deadline_s)

    def log(self, name: str) -> str:
        """Text of one log file."""
        path = self.log_dir / name
        return path.read_text(encoding="utf-8") if path.exists() else ""


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
        return True
    except httpx.HTTPError:
        return False


def wait_for(condition, what: str, deadline_s: float = 20.0) -> None:
    """Poll `condition` until true; fail naming `what` after the deadline."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_simulator(tmp_path: Path, **overrides) -> Simulator:
    """Write a config with free ports and start both components."""
    web_port, api_port = free_port(), free_port()
    section = {"web_port": web_port, "api_port": api_port, "log_dir": str(tmp_path / "logs"),
               "self_check_interval_seconds": 0.5, "hang_seconds": 30, **overrides}
    config = tmp_path / "sim.yml"
    config.write_text(yaml.safe_dump({"simulator": section}))
    sim = Simulator(f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{api_port}", tmp_path / "logs", config, {})
    try:
        sim.start("web")
        sim.start("inference")
    except BaseException:
        stop_simulator(sim)  # a start that timed out leaves no process behind
        raise
    return sim


def stop_simulator(sim: Simulator) -> None:
    """Terminate what is still running (by our own process handles)."""
    for proc in sim.procs.values():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def simulator(tmp_path) -> Iterator[Simulator]:
    """A seed-protocol simulator."""
    sim = start_simulator(tmp_path)
    yield sim
    stop_simulator(sim)


@pytest.fixture
def start_sim(tmp_path) -> Iterator:
    """Start a simulator with config overrides; stopped after the test."""
    started: list[Simulator] = []

    def start(**overrides) -> Simulator:
        sim = start_simulator(tmp_path, **overrides)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        stop_simulator(sim)
