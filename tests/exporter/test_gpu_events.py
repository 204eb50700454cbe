"""XID errors through NVML's event wait: counted per GPU, never lost to a timeout, rebuilt after a lost GPU."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pynvml

sys.path.insert(0, str(Path(__file__).parent))
from fake_nvml import FakeGpu, FakeNvml, sample, scrape  # noqa: E402

from tts_sentinel.exporter.gpu import GpuCollector, GpuConfig  # noqa: E402
from tts_sentinel.exporter.gpu_events import NvmlXidWatcher  # noqa: E402
from tts_sentinel.exporter.gpu_xid import XidTally  # noqa: E402

FAST = GpuConfig.model_validate({"xid": {"wait_timeout_ms": 100}})


def watcher(nvml: FakeNvml, config: GpuConfig = FAST) -> tuple[NvmlXidWatcher, XidTally]:
    tally = XidTally(config.xid.critical)
    return NvmlXidWatcher(config, nvml, tally), tally


def test_an_xid_48_event_is_counted_on_its_gpu():
    nvml = FakeNvml([FakeGpu(), FakeGpu()])
    w, tally = watcher(nvml)
    assert w.step() == 0 and w.up
    nvml.xid(1, 48)
    w.step()
    assert tally.count("1", 48, "nvml") == 1
    assert tally.count("0", 48, "nvml") == 0


def test_an_xid_outside_the_critical_set_counts_as_other():
    nvml = FakeNvml()
    w, tally = watcher(nvml)
    w.step()
    nvml.xid(0, 45)  # preemptive cleanup: every killed CUDA process logs one
    w.step()
    assert tally.count("0", "other", "nvml") == 1


def test_the_critical_set_is_configurable():
    config = GpuConfig.model_validate({"xid": {"critical": [45], "wait_timeout_ms": 100}})
    nvml = FakeNvml()
    w, tally = watcher(nvml, config)
    w.step()
    nvml.xid(0, 45)
    w.step()
    assert tally.count("0", "45", "nvml") == 1


def test_a_wait_that_times_out_is_not_an_error():
    w, _ = watcher(FakeNvml())
    w.step()
    assert w.step() == 0  # nothing happened within wait_timeout_ms
    assert w.up and w.errors == 0


def test_a_gpu_lost_during_the_wait_rebuilds_the_set_on_the_gpus_left():
    nvml = FakeNvml([FakeGpu(), FakeGpu()])
    w, tally = watcher(nvml)
    w.step()
    nvml.lose(0)
    pause = w.step()
    assert (w.up, w.reason, w.errors) == (False, "gpu_lost", 1)
    assert pause > 0 and nvml.open_event_sets() == 0
    assert w.step() == 0 and w.up  # the next set: GPU 1 only
    nvml.xid(1, 13)
    w.step()
    assert tally.count("1", 13, "nvml") == 1


def test_a_host_whose_only_gpu_is_lost_says_so():
    nvml = FakeNvml()
    w, _ = watcher(nvml)
    nvml.lose(0)
    w.step()
    assert (w.up, w.reason) == (False, "gpu_lost")
    assert nvml.open_event_sets() == 0


def test_boards_without_event_support_leave_the_source_down_not_broken():
    nvml = FakeNvml([FakeGpu(unsupported={"events"})])
    w, _ = watcher(nvml)
    assert w.step() > 0
    assert (w.up, w.reason, w.errors) == (False, "not_supported", 0)
    assert nvml.open_event_sets() == 0


def test_no_driver_backs_off_and_retries():
    nvml = FakeNvml(library_missing=True)
    w, _ = watcher(nvml)
    first, second = w.step(), w.step()
    assert (w.up, w.reason) == (False, "nvml_init")
    assert 0 < first < second  # doubling backoff
    nvml.library_missing = False
    assert w.step() == 0 and w.up


def test_the_thread_counts_events_and_stops_within_a_wait_timeout():
    nvml = FakeNvml()
    w, tally = watcher(nvml)
    w.start()
    try:
        deadline = time.monotonic() + 5
        while not w.up and time.monotonic() < deadline:
            time.sleep(0.01)
        nvml.xid(0, 79)
        while tally.count("0", 79, "nvml") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tally.count("0", 79, "nvml") == 1
    finally:
        started = time.monotonic()
        w.stop()
    assert time.monotonic() - started < 1.0
    assert nvml.open_event_sets() == 0
    assert nvml.shutdown_calls == 1  # its own nvmlInit, balanced


def test_the_collector_exports_the_event_from_zero_to_one():
    nvml = FakeNvml()
    collector = GpuCollector(FAST, nvml)
    m = scrape(collector)
    assert sample(m, "tts_gpu_xid_errors_total", gpu="0", xid="48", source="nvml") == 0
    assert sample(m, "tts_gpu_xid_source_up", source="nvml", reason="starting") == 0
    collector.events.step()
    nvml.xid(0, 48)
    collector.events.step()
    m = scrape(collector)
    assert sample(m, "tts_gpu_xid_errors_total", gpu="0", xid="48", source="nvml") == 1
    assert sample(m, "tts_gpu_xid_source_up", source="nvml", reason="") == 1
    assert sample(m, "tts_gpu_xid_source_errors_total", source="nvml") == 0


def test_a_driver_that_stops_answering_is_initialised_again_once_it_answers():
    nvml = FakeNvml()
    w, tally = watcher(nvml)
    nvml.nvmlInit()  # someone else's reference (the collector's) keeps NVML loaded
    nvml.failing = pynvml.NVML_ERROR_UNKNOWN
    w.step()
    assert (w.up, w.reason) == (False, "nvml_error")
    nvml.failing = None
    assert w.step() == 0 and w.up
    assert nvml.init_calls == 3  # ours, the other's, ours again
    nvml.xid(0, 31)
    w.step()
    assert tally.count("0", 31, "nvml") == 1
