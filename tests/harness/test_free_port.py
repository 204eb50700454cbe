"""harness.stack.free_port: a port that a server can bind, out of the way of outgoing connections."""

from __future__ import annotations

import socket
from pathlib import Path

from tts_sentinel.harness.stack import EPHEMERAL_MARGIN, free_port


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
