"""Helpers shared by every test package (importable as `support`: tests/ is on pythonpath)."""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (tests never use fixed ports)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
