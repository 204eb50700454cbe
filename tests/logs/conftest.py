"""Fixtures for the log pipeline tests: a config on temp files, a pipeline factory, a counter reader.

With --import-mode=importlib test modules cannot import this file, so helpers are fixtures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tts_sentinel.exporter.logs.pipeline import LogPipeline
from tts_sentinel.loghistory.config import LogFileConfig, LogsConfig


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    v = registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


def _wait_for(cond: Callable[[], bool], deadline_s: float = 20.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.fixture
def wait_for() -> Callable[..., bool]:
    """wait_for(cond, deadline_s=20): poll a condition until it holds or the deadline passes (no timed asserts)."""
    return _wait_for


@pytest.fixture
def value() -> Callable[..., float]:
    """value(registry, name, **labels): a sample's value, 0 when the series does not exist."""
    return _value


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture
def make_config(logdir: Path) -> Callable[..., LogsConfig]:
    """Three seed logs in logdir, read from the beginning, polled fast, no rotate wait."""

    def make(**overrides) -> LogsConfig:
        base = dict(
            files=[
                LogFileConfig(name="webui", path=logdir / "webui.log", rotation="rename"),
                LogFileConfig(name="inference", path=logdir / "inference.log", rotation="size"),
                LogFileConfig(name="health", path=logdir / "health.log", rotation="none"),
            ],
            start_at="beginning",
            poll_interval_seconds=0.05,
            rotate_wait_seconds=0,
        )
        base.update(overrides)
        return LogsConfig(**base)

    return make


@pytest.fixture
def new_pipeline(tmp_path: Path) -> Callable[..., tuple[LogPipeline, CollectorRegistry]]:
    """new_pipeline(config) -> (pipeline, registry), with state in tmp_path/state; stopped at teardown."""
    made: list[LogPipeline] = []

    def make(config: LogsConfig, state_dir: Path | None = None) -> tuple[LogPipeline, CollectorRegistry]:
        registry = CollectorRegistry()
        p = LogPipeline(config, registry, state_dir or tmp_path / "state")
        made.append(p)
        return p, registry

    yield make
    for p in made:
        p.stop()
