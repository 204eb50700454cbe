"""harness.stack.free_port: a port that a server can bind, out of the way of outgoing connections."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from tts_sentinel.harness.ports import EPHEMERAL_MARGIN, SLICE_ENV, free_port, port_slice


def test_free_ports_lie_below_the_ephemeral_range_and_can_be_bound():
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert low - EPHEMERAL_MARGIN >= 1024, "this machine's range leaves room below it (Linux's default does)"
    taken = []
    try:
        for _ in range(20):
            port = free_port()
            assert low - EPHEMERAL_MARGIN <= port < low, port
            s = socket.socket()
            s.bind(("127.0.0.1", port))  # free when returned: the next call must not hand it out again
            s.listen()
            taken.append(s)
        assert len({s.getsockname()[1] for s in taken}) == 20
    finally:
        for s in taken:
            s.close()


def test_a_share_of_the_range_keeps_concurrent_pickers_apart(monkeypatch):
    # Three pytest-xdist workers, as tests/conftest.py sets it: disjoint shares that cover the range.
    shares = [port_slice(22768, 10_000, f"{i}/3") for i in range(3)]
    assert shares == [(22768, 3333), (26101, 3333), (29434, 3333)]
    assert port_slice(22768, 10_000, "") == port_slice(22768, 10_000, "3/3") == port_slice(22768, 10_000, "x") \
        == (22768, 10_000)
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    monkeypatch.setenv("TTS_SENTINEL_PORT_SLICE", "1/4")
    first, size = port_slice(low - EPHEMERAL_MARGIN, EPHEMERAL_MARGIN, "1/4")
    ports = [free_port() for _ in range(200)]
    assert all(first <= p < first + size for p in ports), (first, size, sorted(ports)[:5])
    # Unbound between calls, yet never handed out twice (a stack takes nine at once).
    assert len(set(ports)) == 200


def test_each_pytest_xdist_worker_has_a_share_of_its_own():
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        assert SLICE_ENV not in os.environ  # one process: the whole range
        return
    assert os.environ[SLICE_ENV] == f"{int(worker[2:])}/{os.environ['PYTEST_XDIST_WORKER_COUNT']}"
