"""Helpers shared by every test package (importable as `support`: tests/ is on pythonpath)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tts_sentinel.harness.drill import wait_until
from tts_sentinel.harness.stack import Stack, free_port  # tests never use fixed ports

__all__ = ["free_port", "require_binary", "started_stack", "wait_for"]


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


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """The first truthy value of `predicate()` within `timeout` seconds; fails the test naming `what`."""
    value = wait_until(predicate, time.monotonic() + timeout)
    if not value:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
    return value


def started_stack(stack_class: type[Stack], *args: Any, **kwargs: Any) -> Iterator[Stack]:
    """A started loopback stack (real Prometheus and Alertmanager required), stopped afterwards."""
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    stack = stack_class(*args, **kwargs)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
