"""ECC errors, retired pages or remapped rows, and throttle reasons, as NVML reports them per board generation."""

from __future__ import annotations

import sys
from pathlib import Path

import pynvml

sys.path.insert(0, str(Path(__file__).parent))
from fake_nvml import FakeGpu, FakeNvml, sample, scrape  # noqa: E402

from tts_sentinel.exporter.gpu import GpuCollector, GpuConfig  # noqa: E402
from tts_sentinel.exporter.gpu_health import THROTTLE_REASONS  # noqa: E402


def test_ecc_errors_by_bit_count_and_scope():
    gpu = FakeGpu(ecc={"single_bit_volatile": 3, "double_bit_volatile": 1,
                       "single_bit_aggregate": 40, "double_bit_aggregate": 2})
    m = scrape(GpuCollector(GpuConfig(), FakeNvml([gpu])))
    assert sample(m, "tts_gpu_ecc_errors_total", gpu="0", type="single_bit_volatile") == 3
    assert sample(m, "tts_gpu_ecc_errors_total", gpu="0", type="double_bit_volatile") == 1
    assert sample(m, "tts_gpu_ecc_errors_total", gpu="0", type="single_bit_aggregate") == 40
    assert sample(m, "tts_gpu_ecc_errors_total", gpu="0", type="double_bit_aggregate") == 2


def test_a_board_without_ecc_has_no_ecc_series():
    m = scrape(GpuCollector(GpuConfig(), FakeNvml([FakeGpu(unsupported={"ecc"})])))
    assert not [k for k in m if k[0] == "tts_gpu_ecc_errors_total"]
    assert sample(m, "tts_gpu_up", reason="") == 1


def test_ampere_and_later_report_remapped_rows_not_retired_pages():
    gpu = FakeGpu(memory_repair="remap", remapped_rows=(2, 1, 1, 0))
    m = scrape(GpuCollector(GpuConfig(), FakeNvml([gpu])))
    assert sample(m, "tts_gpu_remapped_rows", gpu="0", cause="correctable") == 2
    assert sample(m, "tts_gpu_remapped_rows", gpu="0", cause="uncorrectable") == 1
    assert sample(m, "tts_gpu_row_remap_pending", gpu="0") == 1
    assert sample(m, "tts_gpu_row_remap_failed", gpu="0") == 0
    assert not [k for k in m if k[0].startswith("tts_gpu_retired_pages")]


def test_a_failed_row_remap_is_reported():
    gpu = FakeGpu(memory_repair="remap", remapped_rows=(0, 512, 0, 1))
    m = scrape(GpuCollector(GpuConfig(), FakeNvml([gpu])))
    assert sample(m, "tts_gpu_row_remap_failed", gpu="0") == 1


def test_volta_and_turing_report_retired_pages_by_cause_and_pending():
    gpu = FakeGpu(
        name="Tesla V100-SXM2-32GB", memory_repair="retire", retired_pending=True,
        retired_pages={pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS: [0x1000, 0x2000],
                       pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR: [0x3000]},
    )
    m = scrape(GpuCollector(GpuConfig(), FakeNvml([gpu])))
    assert sample(m, "tts_gpu_retired_pages", gpu="0", cause="single_bit") == 2
    assert sample(m, "tts_gpu_retired_pages", gpu="0", cause="double_bit") == 1
    assert sample(m, "tts_gpu_retired_pages_pending", gpu="0") == 1
    assert not [k for k in m if k[0].startswith("tts_gpu_remapped_rows")]


def test_throttle_reasons_one_series_per_reason_set_bits_are_one():
    mask = pynvml.nvmlClocksEventReasonHwThermalSlowdown | pynvml.nvmlClocksEventReasonSwPowerCap
    m = scrape(GpuCollector(GpuConfig(), FakeNvml([FakeGpu(clocks_event_reasons=mask)])))
    assert sample(m, "tts_gpu_throttle_reasons", gpu="0", reason="hw_thermal_slowdown") == 1
    assert sample(m, "tts_gpu_throttle_reasons", gpu="0", reason="sw_power_cap") == 1
    assert sample(m, "tts_gpu_throttle_reasons", gpu="0", reason="hw_slowdown") == 0
    assert len([k for k in m if k[0] == "tts_gpu_throttle_reasons"]) == len(THROTTLE_REASONS)


def test_a_driver_older_than_535_is_asked_for_throttle_reasons_by_their_old_name():
    nvml = FakeNvml([FakeGpu(clocks_event_reasons=pynvml.nvmlClocksThrottleReasonHwSlowdown)],
                    missing_functions={"nvmlDeviceGetCurrentClocksEventReasons"})
    m = scrape(GpuCollector(GpuConfig(), nvml))
    assert sample(m, "tts_gpu_throttle_reasons", gpu="0", reason="hw_slowdown") == 1


def test_throttle_reason_bits_are_the_bindings_own():
    names = {
        "gpu_idle": "GpuIdle", "applications_clocks_setting": "ApplicationsClocksSetting",
        "sw_power_cap": "SwPowerCap", "hw_slowdown": "HwSlowdown", "sync_boost": "SyncBoost",
        "sw_thermal_slowdown": "SwThermalSlowdown", "hw_thermal_slowdown": "HwThermalSlowdown",
        "hw_power_brake_slowdown": "HwPowerBrakeSlowdown", "display_clock_setting": "DisplayClockSetting",
    }
    for label, bit in THROTTLE_REASONS:
        assert getattr(pynvml, f"nvmlClocksEventReason{names[label]}") == bit, label
        assert getattr(pynvml, f"nvmlClocksThrottleReason{names[label]}") == bit, label
