"""`NVRM: Xid` lines as the driver prints them, under every prefix a kernel log reader adds, and the tally."""

from __future__ import annotations

import pytest

from tts_sentinel.exporter.gpu_xid import (
    DEFAULT_CRITICAL_XIDS,
    OTHER,
    KernelXid,
    PciMap,
    XidTally,
    kernel_xids,
    normalise_pci,
    parse_kernel_xid,
)

# Real lines (from public bug reports and vendor pages), with the prefix of the reader they came through.
XID_LINES = [
    ("NVRM: Xid (PCI:0000:3b:00): 79, pid=1101234, name=nvc:[driver], GPU has fallen off the bus.",
     KernelXid("0000:3b:00", 79)),
    # journalctl -k (short), dmesg, /dev/kmsg record
    ("Mar 27 17:40:36 gpu-host kernel: NVRM: Xid (PCI:0000:01:00): 62, 223b6a66 00002100 00000000 20662342",
     KernelXid("0000:01:00", 62)),
    ("[ 8123.456789] NVRM: Xid (PCI:0000:65:00): 119, pid='N/A', Timeout waiting for RPC from GSP",
     KernelXid("0000:65:00", 119)),
    ("4,1912,81234567890,-;NVRM: Xid (PCI:0000:01:00): 120, GSP kernel exception: store access page fault",
     KernelXid("0000:01:00", 120)),
    ("[Fri Aug 30 11:43:09 2024] NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, "
     "Graphics SM Warp Exception on (GPC 7, TPC 0, SM 1): Out Of Range Address", KernelXid("0000:cb:00", 13)),
    ("NVRM: Xid (PCI:0000:b3:00): 48, pid=2204, name=python3, DBE (double bit error) ECC error",
     KernelXid("0000:b3:00", 48)),
    ("NVRM: Xid (PCI:0000:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)",
     KernelXid("0000:01:00", 154)),
    # drivers before r450: no `PCI:`; an address with a function number; a 16-bit PCI domain
    ("NVRM: Xid (0000:03:00): 14, Channel 00000001", KernelXid("0000:03:00", 14)),
    ("NVRM: Xid (PCI:0000:3B:00.0): 31, pid=77, Ch 00000008, intr 00000000. MMU Fault", KernelXid("0000:3b:00", 31)),
    ("NVRM: Xid (PCI:0008:01:00): 43, pid=9, name=vllm, Ch 00000008", KernelXid("0008:01:00", 43)),
]

NOT_XID_LINES = [
    "NVRM: GPU at PCI:0000:3b:00: GPU-b850f46d-d5ea-c752-ddf3-c4453e44d3f7",
    "NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.",
    "NVRM: GPU Board Serial Number: 1324021012345",
    "NVRM: A GPU crash dump has been created. If possible, please run nvidia-bug-report.sh",
    "NVRM: loading NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023",
    "nvidia-nvswitch3: SXid (PCI:0000:86:00.0): 24007, Fatal, Link 44 sourcetrack timeout error",
    "sudo grep 'NVRM: Xid' /var/log/messages",
    "r8169 0000:02:00.0: eth0: RTL8101e at 0xf8036000, 00:03:25:41:38:a9, XID 14000000 IRQ 43",
    "nvidia-peermem nv_get_p2p_free_callback:127 ERROR detected invalid context, skipping further processing",
]


@pytest.mark.parametrize(("line", "expected"), XID_LINES, ids=[str(x.xid) for _, x in XID_LINES])
def test_every_reader_prefix_and_driver_generation_yields_the_xid_and_its_gpu(line, expected):
    assert parse_kernel_xid(line) == expected


@pytest.mark.parametrize("line", NOT_XID_LINES)
def test_lines_about_gpus_that_are_not_xid_reports_do_not_count(line):
    assert parse_kernel_xid(line) is None


def test_a_block_of_lines_yields_each_xid_once_in_order():
    block = "\n".join([NOT_XID_LINES[0], XID_LINES[0][0], NOT_XID_LINES[1], XID_LINES[2][0], ""]).encode()
    assert kernel_xids(block) == [XID_LINES[0][1], XID_LINES[2][1]]
    assert kernel_xids(b"kernel: usb 1-2: new high-speed USB device number 3\n") == []


def test_invalid_utf8_around_an_xid_line_does_not_hide_it():
    block = b"\xff\xfe garbage\n" + XID_LINES[0][0].encode() + b"\n"
    assert kernel_xids(block) == [XID_LINES[0][1]]


def test_nvml_and_kernel_notations_of_one_address_are_the_same():
    assert normalise_pci("00000000:3B:00.0") == normalise_pci("0000:3b:00") == "0000:3b:00"
    assert normalise_pci("0000:3B:00.0") == "0000:3b:00"


def test_pci_map_names_the_nvml_index_and_keeps_an_unknown_address_readable():
    pci = PciMap()
    pci.remember("00000000:3B:00.0", "0")
    assert pci.gpu_of("0000:3b:00") == "0"
    assert pci.gpu_of("0000:86:00") == "pci:0000:86:00"


def test_counted_xids_keep_their_number_and_the_rest_share_other():
    tally = XidTally(DEFAULT_CRITICAL_XIDS)
    assert tally.label(48) == "48"
    assert tally.label(79) == "79" and tally.label(120) == "120"  # read from the kernel log: always counted
    assert tally.label(45) == OTHER


def test_snapshot_creates_every_counted_xid_at_zero_so_the_first_one_raises_an_alert():
    tally = XidTally([48])
    snap = tally.snapshot(["0"], ["nvml"])
    assert snap[("0", "48", "nvml")] == 0
    assert snap[("0", "79", "nvml")] == 0 and snap[("0", OTHER, "nvml")] == 0
    tally.add("0", 48, "nvml")
    tally.add("0", 45, "nvml")
    snap = tally.snapshot(["0"], ["nvml"])
    assert snap[("0", "48", "nvml")] == 1
    assert snap[("0", OTHER, "nvml")] == 1


def test_a_series_nobody_announced_is_shown_at_zero_once_then_with_its_count():
    tally = XidTally([48])
    tally.add("pci:0000:86:00", 79, "kernel_log")
    assert tally.snapshot([], ["kernel_log"])[("pci:0000:86:00", "79", "kernel_log")] == 0
    assert tally.snapshot([], ["kernel_log"])[("pci:0000:86:00", "79", "kernel_log")] == 1
