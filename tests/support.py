"""Helpers shared by every test package (importable as `support`: tests/ is on pythonpath)."""

from __future__ import annotations

import os
import shutil

import pytest

from tts_sentinel.harness.stack import free_port  # tests never use fixed ports

__all__ = ["free_port", "require_binary"]


def require_binary(*names: str) -> str:
    """Path of the first binary found; with CI=true a missing one fails the test, else it is skipped."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    message = f"{names[0]} is not installed (make test installs it with apt-get as root)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + "; CI=true forbids skipping", pytrace=False)
    pytest.skip(message)
