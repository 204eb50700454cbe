"""XIDs from the kernel log, through the exporter's own log sources (a command, a file), named by NVML index."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).parent))
from fake_nvml import FakeGpu, FakeNvml, sample, scrape  # noqa: E402

from tts_sentinel.exporter.gpu import GpuCollector, GpuConfig  # noqa: E402
from tts_sentinel.exporter.gpu_config import KernelLogConfig  # noqa: E402
from tts_sentinel.exporter.gpu_kernel_log import KernelXidSink  # noqa: E402
from tts_sentinel.exporter.gpu_xid import PciMap, XidTally  # noqa: E402

FALLEN_OFF = "kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=2211, name=python3, GPU has fallen off the bus.\n"
GSP_TIMEOUT = "kernel: NVRM: Xid (PCI:0000:3c:00): 119, pid='N/A', Timeout waiting for RPC from GSP\n"


def wait_for(predicate, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def file_config(path: Path, **xid) -> GpuConfig:
    return GpuConfig.model_validate({"xid": {"enabled": False, "kernel_log": {"path": str(path)}, **xid}})


def test_the_sink_names_the_gpu_by_the_nvml_index_at_that_pci_address():
    tally, pci = XidTally([]), PciMap()
    pci.remember("00000000:3B:00.0", "0")
    sink = KernelXidSink(tally, pci)
    sink.feed((FALLEN_OFF + "kernel: usb 1-2: new device\n" + GSP_TIMEOUT).encode())
    assert tally.count("0", 79, "kernel_log") == 1
    assert tally.count("pci:0000:3c:00", 119, "kernel_log") == 1  # a GPU NVML never named
    assert sink.lines_with_xid == 2


def test_an_xid_79_line_in_a_followed_file_is_exported_for_the_gpu_that_fell_off(tmp_path):
    kern = tmp_path / "kern.log"
    kern.write_text("kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid=1, name=old, GPU has fallen off the bus.\n")
    nvml = FakeNvml([FakeGpu(), FakeGpu()])
    collector = GpuCollector(file_config(kern), nvml)
    collector.start()  # learns 0 -> 0000:3b:00, 1 -> 0000:3c:00; the file is read from its end
    try:
        m = scrape(collector)
        assert sample(m, "tts_gpu_xid_errors_total", gpu="0", xid="79", source="kernel_log") == 0
        assert sample(m, "tts_gpu_xid_source_up", source="kernel_log", reason="") == 1
        nvml.lose(0)
        with kern.open("a") as f:
            f.write(FALLEN_OFF)
        assert wait_for(lambda: collector.xids.count("0", 79, "kernel_log") == 1)
        m = scrape(collector)
        assert sample(m, "tts_gpu_xid_errors_total", gpu="0", xid="79", source="kernel_log") == 1
        assert sample(m, "tts_gpu_lost", gpu="0") == 1
    finally:
        collector.stop()


def test_a_file_rotated_away_keeps_being_followed(tmp_path):
    kern = tmp_path / "kern.log"
    kern.write_text("")
    collector = GpuCollector(file_config(kern), FakeNvml([FakeGpu(), FakeGpu()]))
    collector.start()
    try:
        kern.rename(tmp_path / "kern.log.1")
        kern.write_text(GSP_TIMEOUT)
        assert wait_for(lambda: collector.xids.count("1", 119, "kernel_log") == 1)
    finally:
        collector.stop()


def test_a_command_source_counts_what_the_command_prints(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        print({FALLEN_OFF.strip()!r}, flush=True)
        time.sleep(30)
    """)
    config = GpuConfig.model_validate({"xid": {"enabled": False, "kernel_log": {"argv": [sys.executable, "-c", script]}}})
    collector = GpuCollector(config, FakeNvml())
    collector.start()
    try:
        assert wait_for(lambda: collector.xids.count("0", 79, "kernel_log") == 1)
        assert sample(scrape(collector), "tts_gpu_xid_source_up", source="kernel_log", reason="") == 1
    finally:
        started = time.monotonic()
        collector.stop()
    assert time.monotonic() - started < 6


def test_a_command_that_cannot_run_is_a_source_error_not_a_crash(tmp_path):
    config = GpuConfig.model_validate({"xid": {"enabled": False,
                                               "kernel_log": {"argv": [str(tmp_path / "no-journalctl")]}}})
    collector = GpuCollector(config, FakeNvml())
    collector.start()
    try:
        assert wait_for(lambda: collector.kernel_log.sink.read_errors.value >= 1)
        m = scrape(collector)
        assert sample(m, "tts_gpu_xid_source_up", source="kernel_log", reason="unreadable") == 0
        assert sample(m, "tts_gpu_xid_source_errors_total", source="kernel_log") >= 1
    finally:
        collector.stop()


def test_xids_from_both_sources_are_kept_apart():
    nvml = FakeNvml()
    collector = GpuCollector(GpuConfig(), nvml)
    collector.events.step()
    nvml.xid(0, 48)
    collector.events.step()
    collector.pci_map.remember("00000000:3B:00.0", "0")
    KernelXidSink(collector.xids, collector.pci_map).feed(
        b"NVRM: Xid (PCI:0000:3b:00): 48, pid=7, name=python3, DBE (double bit error) ECC error\n")
    assert collector.xids.count("0", 48, "nvml") == collector.xids.count("0", 48, "kernel_log") == 1


def test_a_kernel_log_is_a_command_or_a_file_not_both(tmp_path):
    with pytest.raises(ValidationError, match="not both"):
        KernelLogConfig(argv=["journalctl", "-k", "-f", "-n", "0", "-o", "cat"], path=tmp_path / "kern.log")
    assert not KernelLogConfig().enabled
