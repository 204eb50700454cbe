"""Loopback ports for the stacks the demo, the drills, the soak and the tests start.

A port is picked at random below the kernel's ephemeral range (a port of that range, what binding
port 0 gives, can be taken by any outgoing connection before the server it was chosen for binds
it). Between the pick and the bind (seconds: a receiver starts its children first) nothing holds
it, so two pickers that run at once must not draw from the same ports: `TTS_SENTINEL_PORT_SLICE=i/n`
gives this process (and the processes it starts) the i-th of n equal shares of the range (the
tests set it per pytest-xdist worker), and a process never hands out the same port twice.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from pathlib import Path

EPHEMERAL_MARGIN = 10_000  # ports just below the ephemeral range that free_port picks from
SLICE_ENV = "TTS_SENTINEL_PORT_SLICE"

_given: set[int] = set()  # the ports this process handed out (two parts of one stack once got the same)
_given_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing uses right now and this process has not handed out,
    below the kernel's ephemeral range when there is room (a test's supervised stand-in once
    failed to start in CI on a port an outgoing connection took)."""
    low = _ephemeral_low()
    if low - EPHEMERAL_MARGIN >= 1024:
        first, size = port_slice(low - EPHEMERAL_MARGIN, EPHEMERAL_MARGIN, os.environ.get(SLICE_ENV, ""))
        for _ in range(100):
            port = first + secrets.randbelow(size)
            with _given_lock:
                if port in _given or not port_is_free(port):
                    continue  # handed out already, or in use: another
                _given.add(port)
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_slice(first: int, size: int, spec: str) -> tuple[int, int]:
    """(first port, count) of this process's share of [first, first + size): the i-th of n for a
    `spec` "i/n"; the whole range when `spec` is empty or malformed."""
    try:
        index, count = (int(part) for part in spec.split("/"))
    except ValueError:
        return first, size
    if not 0 <= index < count or size // count < 1:
        return first, size
    width = size // count
    return first + index * width, width


def port_is_free(port: int) -> bool:
    """True when a server could bind `port` on 127.0.0.1 now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
