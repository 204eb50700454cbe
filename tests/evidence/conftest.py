"""A real simulator, baselines recorded from it while healthy, and an exporter that keeps evidence."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import free_port

from tts_sentinel.exporter.baseline import record_baseline
from tts_sentinel.exporter.config import ExporterConfig
from tts_sentinel.exporter.probes.config import ProbesConfig
from tts_sentinel.exporter.server import Exporter
from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.runtime import InProcessSimulator


@pytest.fixture
def sim(tmp_path) -> Iterator[InProcessSimulator]:
    """The stand-in TTS service (seed protocol) on free loopback ports, logs under tmp_path."""
    config = SimulatorConfig(web_port=free_port(), api_port=free_port(), log_dir=tmp_path / "sim-logs",
                             hang_seconds=30)
    with InProcessSimulator(config) as s:
        yield s


def probes_section(sim: InProcessSimulator, tmp_path: Path) -> dict:
    """L2 over two cells, L3 and quality against the simulator; scheduled runs far apart."""
    request = {"url": sim.api_url + "/tts", "timeout_seconds": 10}
    return {
        "baseline_dir": str(tmp_path / "baseline"), "model_id": "sim/model:v1",
        "health": {"url": sim.web_url + "/health", "interval_seconds": 3600},
        "synthesis": {"enabled": True, "request": request, "interval_seconds": 3600,
                      "targets": [{"lang": "zh", "speaker": "Vivian"}, {"lang": "en", "speaker": "Ryan"}]},
        "semantic": {"enabled": True, "request": request, "interval_seconds": 3600,
                     "report_path": str(tmp_path / "semantic_report.log")},
        "quality": {"enabled": True, "request": request, "interval_seconds": 3600},
    }


@pytest.fixture
def probes(sim, tmp_path) -> ProbesConfig:
    """The probes config, with templates and references recorded from the healthy simulator."""
    config = ProbesConfig.model_validate(probes_section(sim, tmp_path))
    record_baseline(config)
    return config


@pytest.fixture
def exporter(sim, probes, tmp_path) -> Iterator[Exporter]:
    """A running exporter (HTTP on a free port) whose probes keep evidence under its state dir."""
    config = ExporterConfig.model_validate({
        "listen_port": free_port(), "state_dir": str(tmp_path / "state"), "gpu": {"enabled": False},
        "logs": {"files": [{"name": "health", "path": str(sim.config.log_dir / "health.log"), "rotation": "none"}]},
        "probes": probes.model_dump(mode="json"),
        "evidence": {"min_interval_seconds": 0},
    })
    e = Exporter(config)
    e.start()
    e.url = f"http://127.0.0.1:{config.listen_port}"
    # The first scheduled runs start at once; let them end on the healthy service before a test injects a fault.
    deadline = time.monotonic() + 60
    while not all(f'tts_probe_last_run_timestamp_seconds{{probe="{m}"}}' in httpx.get(f"{e.url}/metrics").text
                  for m in e.probes.module_names()):
        assert time.monotonic() < deadline, "the exporter's first probe runs did not finish"
        time.sleep(0.2)
    yield e
    e.stop()
