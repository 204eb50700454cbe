"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest
from support import free_port, require_binary

__all__ = ["free_port", "require_binary"]


@pytest.fixture
def port() -> int:
    """A free loopback port."""
    return free_port()
