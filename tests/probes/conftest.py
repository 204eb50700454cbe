"""An in-process simulator (real HTTP servers on free loopback ports) for probe tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import free_port

from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.runtime import InProcessSimulator


def make_simulator(tmp_path, **overrides) -> InProcessSimulator:
    """A simulator config on free ports with logs under tmp_path."""
    config = SimulatorConfig(web_port=free_port(), api_port=free_port(), log_dir=tmp_path / "sim-logs",
                             hang_seconds=30, **overrides)
    return InProcessSimulator(config)


@pytest.fixture
def sim(tmp_path) -> Iterator[InProcessSimulator]:
    """Seed-protocol simulator."""
    with make_simulator(tmp_path) as s:
        yield s


@pytest.fixture
def openai_sim(tmp_path) -> Iterator[InProcessSimulator]:
    """vLLM-Omni-protocol simulator with a bearer token."""
    with make_simulator(tmp_path, protocol="openai", api_key="tok") as s:
        yield s


@pytest.fixture
def make_sim(tmp_path) -> Iterator:
    """Factory: a running simulator with config overrides, shut down after the test."""
    running: list[InProcessSimulator] = []

    def make(**overrides) -> InProcessSimulator:
        s = make_simulator(tmp_path, **overrides).__enter__()
        running.append(s)
        return s

    yield make
    for s in running:
        s.__exit__(None, None, None)
