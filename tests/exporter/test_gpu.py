"""The GPU collector reads NVML on every scrape and survives a missing, failing or lost GPU."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pynvml

sys.path.insert(0, str(Path(__file__).parent))
from fake_nvml import FakeGpu, FakeNvml, sample, scrape  # noqa: E402

from tts_sentinel.exporter.gpu import GpuCollector, GpuConfig  # noqa: E402


def test_reads_memory_temperature_power_and_processes_per_gpu():
    nvml = FakeNvml([FakeGpu(used=70 * 2**30, temperature=71), FakeGpu(used=2**30, pids=[])])
    m = scrape(GpuCollector(GpuConfig(), nvml))
    assert m[("tts_gpu_up", (("reason", ""),))] == 1
    assert m[("tts_gpu_memory_used_bytes", (("gpu", "0"),))] == 70 * 2**30
    assert m[("tts_gpu_memory_total_bytes", (("gpu", "1"),))] == 80 * 2**30
    assert m[("tts_gpu_temperature_celsius", (("gpu", "0"),))] == 71
    assert m[("tts_gpu_power_watts", (("gpu", "0"),))] == 250
    assert m[("tts_gpu_power_limit_watts", (("gpu", "0"),))] == 700
    assert m[("tts_gpu_processes", (("gpu", "0"),))] == 1
    assert m[("tts_gpu_processes", (("gpu", "1"),))] == 0


def test_values_are_read_at_scrape_time_not_cached():
    gpu = FakeGpu(temperature=50)
    collector = GpuCollector(GpuConfig(), FakeNvml([gpu]))
    assert scrape(collector)[("tts_gpu_temperature_celsius", (("gpu", "0"),))] == 50
    gpu.temperature = 84
    assert scrape(collector)[("tts_gpu_temperature_celsius", (("gpu", "0"),))] == 84


def test_missing_driver_reports_down_with_reason_and_keeps_working():
    nvml = FakeNvml(library_missing=True)
    collector = GpuCollector(GpuConfig(), nvml)
    m = scrape(collector)
    assert m[("tts_gpu_up", (("reason", "nvml_init"),))] == 0
    assert m[("tts_gpu_scrape_errors_total", ())] == 1
    nvml.library_missing = False  # driver installed later: the next scrape recovers
    m = scrape(collector)
    assert m[("tts_gpu_up", (("reason", ""),))] == 1


def test_unsupported_query_drops_only_that_metric():
    collector = GpuCollector(GpuConfig(), FakeNvml([FakeGpu(unsupported={"power", "temperature"})]))
    m = scrape(collector)
    assert ("tts_gpu_power_watts", (("gpu", "0"),)) not in m
    assert ("tts_gpu_temperature_celsius", (("gpu", "0"),)) not in m
    assert m[("tts_gpu_memory_used_bytes", (("gpu", "0"),))] == 10 * 2**30


def test_a_lost_gpu_is_reported_lost_while_the_others_are_still_read():
    nvml = FakeNvml([FakeGpu(), FakeGpu(temperature=60)])
    collector = GpuCollector(GpuConfig(), nvml)
    assert sample(scrape(collector), "tts_gpu_lost", gpu="0") == 0
    nvml.lose(0)
    m = scrape(collector)
    assert sample(m, "tts_gpu_up", reason="") == 1
    assert sample(m, "tts_gpu_lost", gpu="0") == 1
    assert sample(m, "tts_gpu_lost", gpu="1") == 0
    assert sample(m, "tts_gpu_memory_used_bytes", gpu="0") is None  # nothing stale about a lost GPU
    assert sample(m, "tts_gpu_temperature_celsius", gpu="1") == 60
    assert sample(m, "tts_gpu_devices") == 2
    assert nvml.init_calls == 1  # NVML itself is fine: nothing to re-initialise


def test_driver_that_stops_answering_reports_down_then_reinitialises():
    nvml = FakeNvml()
    collector = GpuCollector(GpuConfig(), nvml)
    scrape(collector)
    nvml.failing = pynvml.NVML_ERROR_UNKNOWN
    m = scrape(collector)
    assert sample(m, "tts_gpu_up", reason="nvml_query") == 0
    nvml.failing = None
    m = scrape(collector)
    assert sample(m, "tts_gpu_up", reason="") == 1
    assert nvml.init_calls == 2


def test_device_count_counts_every_gpu_even_a_watched_subset():
    nvml = FakeNvml([FakeGpu(), FakeGpu(), FakeGpu()])
    collector = GpuCollector(GpuConfig(devices=[1]), nvml)
    assert sample(scrape(collector), "tts_gpu_devices") == 3
    nvml.gpus.pop()  # after a reboot without the card that fell off: the count drops
    assert sample(scrape(collector), "tts_gpu_devices") == 2


def test_configured_device_subset_only():
    collector = GpuCollector(GpuConfig(devices=[1]), FakeNvml([FakeGpu(), FakeGpu(used=5)]))
    m = scrape(collector)
    assert ("tts_gpu_memory_used_bytes", (("gpu", "0"),)) not in m
    assert m[("tts_gpu_memory_used_bytes", (("gpu", "1"),))] == 5


def test_disabled_collector_says_so_and_starts_nothing():
    collector = GpuCollector(GpuConfig(enabled=False), FakeNvml())
    collector.start()
    m = scrape(collector)
    assert m[("tts_gpu_up", (("reason", "disabled"),))] == 0
    assert collector.events is None and collector.kernel_log is None
    collector.stop()


def test_real_pynvml_on_a_host_without_gpu_reports_down():
    """On our CI machines there is no driver: the real binding must yield up=0, not raise."""
    m = scrape(GpuCollector(GpuConfig()))
    up = [v for (name, _), v in m.items() if name == "tts_gpu_up"]
    assert up == [0] or up == [1]  # 1 only where a GPU really is present


def test_real_pynvml_start_and_stop_with_the_xid_sources(tmp_path):
    """The event thread and a kernel log file start and stop on the real binding, GPU or not."""
    kern = tmp_path / "kern.log"
    kern.write_text("")
    collector = GpuCollector(GpuConfig.model_validate({"xid": {"kernel_log": {"path": str(kern)}}}))
    collector.start()
    try:
        deadline = time.monotonic() + 5
        while collector.events.reason == "starting" and time.monotonic() < deadline:
            time.sleep(0.05)
        m = scrape(collector)
        gpu_up = next(v for (name, _), v in m.items() if name == "tts_gpu_up")
        nvml_up = next(v for (name, labels), v in m.items()
                       if name == "tts_gpu_xid_source_up" and ("source", "nvml") in labels)
        assert nvml_up == gpu_up  # no driver here: both 0, with a reason
        if gpu_up == 0:
            assert sample(m, "tts_gpu_xid_source_up", source="nvml", reason="nvml_init") == 0
    finally:
        started = time.monotonic()
        collector.stop()
    assert time.monotonic() - started < 5
