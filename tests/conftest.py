"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest
from support import free_port, require_binary

from tts_sentinel import config as config_module

__all__ = ["free_port", "require_binary"]


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
