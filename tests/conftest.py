"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest
from support import free_port, require_binary

from tts_sentinel import config as config_module
from tts_sentinel.harness.ports import SLICE_ENV

__all__ = ["free_port", "require_binary"]


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker picks ports from a share of its own (harness/ports.py), inherited by
    what it starts: two workers' stacks starting at once never draw the same port (a soak's receiver,
    bound 12 s after its port was picked, once found it taken in CI)."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and count.isdigit():
        os.environ.setdefault(SLICE_ENV, f"{int(worker[2:])}/{count}")


@pytest.fixture
def port() -> int:
    """A free loopback port."""
    return free_port()


@pytest.fixture(autouse=True)
def no_discovered_config(monkeypatch):
    """Commands called in-process without --config see the built-in defaults, never the repository's
    example ./tts-sentinel.yml or this machine's /etc/tts-sentinel/config.yml (config discovery)."""
    monkeypatch.delenv(config_module.DEFAULT_CONFIG_ENV, raising=False)
    monkeypatch.setattr(config_module, "SEARCH_PATH", ())
