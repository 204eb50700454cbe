"""Hosts as Linux network namespaces on one machine, joined by one bridge: the fleet's network.

Each node (a GPU host, a monitoring host) is a namespace with one veth whose other end is
plugged into a bridge that lives in a namespace of its own (`core`), so no address, link or
route is added to the machine's own namespace: every packet stays between namespaces this
process created. The test's client joins `core` (its address ends in .254) with `entered()`.

Needs root and iproute2. Every namespace is named `tsf<pid>-<node>`; `teardown()` kills what
still runs inside them and deletes them (their veths and the bridge go with them), and
`remove_stale()` does the same for namespaces whose creating process died without teardown.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_OURS = re.compile(r"^tsf(\d+)-[a-z0-9-]+$")
_libc = ctypes.CDLL(None, use_errno=True)


class NetworkUnavailable(RuntimeError):
    """Namespaces cannot be created here; the message says what is missing."""


@dataclass(frozen=True)
class Node:
    """One host of the fleet: its name, its namespace and its address on the bridge."""

    name: str
    netns: str
    address: str


def _ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise NetworkUnavailable(f"`ip {' '.join(args)}` failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _pids_in(netns: str) -> list[int]:
    proc = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=20)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed and not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _delete(netns: str) -> None:
    """Kill whatever still runs in one of our namespaces (our own children), then delete it."""
    for attempt in range(3):
        pids = _pids_in(netns)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2 * (attempt + 1))
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=20)


def our_namespaces() -> list[str]:
    """Names of the namespaces made by this harness (any process) that exist now."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if _OURS.match(n))
    except FileNotFoundError:
        return []


def remove_stale() -> list[str]:
    """Delete the namespaces of fleet runs whose process is gone (a run killed before teardown)."""
    stale = [n for n in our_namespaces() if not _alive(int(_OURS.match(n).group(1)))]  # type: ignore[union-attr]
    for netns in stale:
        _delete(netns)
    return stale


class FleetNetwork:
    """A bridge in a `core` namespace and one namespace per node plugged into it."""

    def __init__(self, subnet: str = "10.213.0", prefix: str | None = None) -> None:
        self.subnet = subnet
        self.prefix = prefix or f"tsf{os.getpid()}"
        self.core = Node("core", f"{self.prefix}-core", f"{subnet}.254")
        self.nodes: dict[str, Node] = {}
        self._created: list[str] = []

    @staticmethod
    def check() -> None:
        """Raise NetworkUnavailable with what to do when this machine cannot host the fleet."""
        if os.geteuid() != 0:
            raise NetworkUnavailable("the fleet needs root: network namespaces, veth pairs and a bridge")
        if shutil.which("ip") is None:
            raise NetworkUnavailable("iproute2 is not installed: apt-get install iproute2")

    def create(self) -> None:
        """The core namespace with its bridge (br0, .254/24)."""
        self.check()
        self._add_namespace(self.core.netns)
        ns = self.core.netns
        _ip("-n", ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", ns, "addr", "add", f"{self.core.address}/24", "dev", "br0")
        _ip("-n", ns, "link", "set", "br0", "up")

    def node(self, name: str, octet: int) -> Node:
        """The node `name` at `<subnet>.<octet>` (nothing is created until `add`)."""
        return Node(name, f"{self.prefix}-{name}", f"{self.subnet}.{octet}")

    def add(self, node: Node) -> None:
        """Create the node's namespace with its eth0 plugged into the bridge."""
        self._add_namespace(node.netns)
        veth = f"v-{node.name}"[:15]
        _ip("-n", self.core.netns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
        _ip("-n", self.core.netns, "link", "set", veth, "master", "br0", "up")
        _ip("-n", node.netns, "addr", "add", f"{node.address}/24", "dev", "eth0")
        _ip("-n", node.netns, "link", "set", "eth0", "up")
        self.nodes[node.name] = node

    def _add_namespace(self, netns: str) -> None:
        _ip("netns", "add", netns)
        self._created.append(netns)
        _ip("-n", netns, "link", "set", "lo", "up")

    def argv(self, node: Node, argv: list[str]) -> list[str]:
        """`argv` run inside the node's namespace (`ip netns exec` execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", node.netns, *argv]

    @contextmanager
    def entered(self, node: Node | None = None) -> Iterator[None]:
        """Run the calling thread inside `node`'s namespace (default: core); sockets opened here stay there."""
        target = node or self.core
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            there = os.open(f"{NETNS_DIR}/{target.netns}", os.O_RDONLY)
            try:
                _setns(there)
                try:
                    yield
                finally:
                    _setns(own)
            finally:
                os.close(there)
        finally:
            os.close(own)

    def links(self) -> list[str]:
        """Every link name in every namespace of this network (for the test's clean-up check)."""
        out = []
        for netns in self._created:
            text = _ip("-n", netns, "-o", "link", "show")
            out += [f"{netns}:{line.split(':')[1].strip()}" for line in text.splitlines() if ":" in line]
        return out

    def teardown(self) -> None:
        """Kill what still runs in the nodes and delete every namespace (veths and bridge go with them)."""
        for netns in reversed(self._created):
            _delete(netns)
        self._created.clear()
        self.nodes.clear()
