"""XID errors: which ones we count by number, how a kernel log line names one, and the tally.

An XID is the NVIDIA driver's numbered report of a GPU fault. Two sources see them: NVML's event
wait (gpu_events) while the GPU still answers, and the kernel log (gpu_kernel_log) also when it
does not — XID 79 "fallen off the bus" and the GSP errors 119/120 leave nothing for NVML to
deliver. Both count into one `XidTally`, labelled by source, read by the collector at scrape time.
The `NVRM: Xid` line format is parsed here and nowhere else.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

# A commonly used critical set (the default of `exporter.gpu.xid.critical`).
DEFAULT_CRITICAL_XIDS: tuple[int, ...] = (4, 8, 9, 12, 13, 24, 30, 31, 37, 38, 43, 48, 54, 74, 119, 140, 143)
# What the kernel log is read for: NVML cannot deliver these, the GPU is gone (79) or its
# firmware does not answer (119 GSP RPC timeout, 120 GSP error). Always counted by number.
GPU_GONE_XIDS: tuple[int, ...] = (79, 119, 120)
# Every XID outside the counted set shares this label value: the catalog is long and
# event data is a raw integer, so the label stays bounded.
OTHER = "other"
SOURCES = ("nvml", "kernel_log")

# `NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.` as the
# driver prints it; journalctl, dmesg and /dev/kmsg put their own prefix before `NVRM:`, drivers
# before r450 print the address without `PCI:`. SXid lines (NVSwitch) are not XIDs.
XID_LINE = re.compile(
    r"NVRM: Xid \((?:PCI:)?(?P<pci>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2})(?:\.[0-7])?\): (?P<xid>\d{1,5}),"
)
_MARKER = b"NVRM: Xid"


@dataclass(frozen=True)
class KernelXid:
    """One `NVRM: Xid` line: the GPU's PCI address (domain:bus:device) and the XID number."""

    pci: str
    xid: int


def parse_kernel_xid(line: str) -> KernelXid | None:
    """The XID a kernel log line reports, or None when the line is not an `NVRM: Xid` report."""
    m = XID_LINE.search(line)
    if m is None:
        return None
    return KernelXid(pci=normalise_pci(m.group("pci")), xid=int(m.group("xid")))


def kernel_xids(block: bytes) -> list[KernelXid]:
    """Every XID reported in a block of complete kernel log lines."""
    if _MARKER not in block:  # nearly every block: skip decoding
        return []
    found = []
    for line in block.decode("utf-8", errors="replace").splitlines():
        xid = parse_kernel_xid(line)
        if xid is not None:
            found.append(xid)
    return found


def normalise_pci(address: str) -> str:
    """`0000:3b:00` from the kernel's `0000:3b:00` and NVML's `00000000:3B:00.0` alike."""
    address = address.strip().split(".")[0].lower()
    domain, bus, device = address.split(":")[-3:]
    return f"{int(domain, 16):04x}:{bus}:{device}"


class PciMap:
    """PCI address -> NVML index, as last seen by the collector; kept when the GPU disappears."""

    def __init__(self) -> None:
        self._by_pci: dict[str, str] = {}
        self._lock = threading.Lock()

    def remember(self, pci: str, gpu: str) -> None:
        """Record that NVML index `gpu` sits at PCI address `pci` (any notation)."""
        with self._lock:
            self._by_pci[normalise_pci(pci)] = gpu

    def gpu_of(self, pci: str) -> str:
        """The NVML index of the GPU at `pci`, or `pci:ADDRESS` when NVML never named it."""
        with self._lock:
            return self._by_pci.get(pci, f"pci:{pci}")


class XidTally:
    """Counts XIDs per (gpu, xid label, source); thread-safe, read at scrape time.

    XIDs in `counted` keep their number as label, the rest count as `other`. `snapshot()`
    includes a 0 for every counted XID of every GPU it is told about, so the first XID raises an
    `increase()` alert; a series that appears otherwise (a GPU NVML never named) is shown at 0 by
    the first snapshot that sees it and with its count from the next one on, for the same reason.
    """

    def __init__(self, counted: Iterable[int]) -> None:
        self.counted = frozenset(counted) | frozenset(GPU_GONE_XIDS)
        self._counts: dict[tuple[str, str, str], int] = {}
        self._shown: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def label(self, xid: int) -> str:
        """The `xid` label value of XID number `xid`."""
        return str(xid) if xid in self.counted else OTHER

    def add(self, gpu: str, xid: int, source: str) -> None:
        """Count one XID `xid` on `gpu` seen by `source` (nvml or kernel_log)."""
        key = (gpu, self.label(xid), source)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def count(self, gpu: str, xid: int | str, source: str) -> int:
        """How many XIDs of that label were counted (for tests and logs)."""
        label = xid if isinstance(xid, str) else self.label(xid)
        with self._lock:
            return self._counts.get((gpu, label, source), 0)

    def snapshot(self, gpus: Iterable[str], sources: Iterable[str]) -> dict[tuple[str, str, str], int]:
        """(gpu, xid, source) -> count to export now, zeros included (see the class docstring)."""
        labels = [*(str(x) for x in sorted(self.counted)), OTHER]
        out = {(g, x, s): 0 for g in gpus for s in sources for x in labels}
        with self._lock:
            for key, n in self._counts.items():
                if key in out or key in self._shown:
                    out[key] = n
                else:
                    out[key] = 0
                self._shown.add(key)
            self._shown.update(out)
        return out
