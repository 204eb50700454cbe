"""Memory and clock health of one GPU, read from NVML at scrape time.

ECC error counters (single-bit = corrected, double-bit = uncorrected; volatile since the driver
loaded, aggregate over the board's life), retired pages (up to Volta/Turing) or remapped rows
(Ampere and later, where page retirement answers NOT_SUPPORTED), and the reasons the clocks are
held down now. Every query is optional: a board or driver without it leaves its series out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

Optional = Callable[..., Any]  # (NVML function name, *args) -> value, or None when it failed

# (type label, NVML memory error type constant, NVML counter type constant)
ECC_COUNTERS = (
    ("single_bit_volatile", "NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_VOLATILE_ECC"),
    ("double_bit_volatile", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_VOLATILE_ECC"),
    ("single_bit_aggregate", "NVML_MEMORY_ERROR_TYPE_CORRECTED", "NVML_AGGREGATE_ECC"),
    ("double_bit_aggregate", "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", "NVML_AGGREGATE_ECC"),
)
RETIREMENT_CAUSES = (
    ("single_bit", "NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS"),
    ("double_bit", "NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR"),
)
# Bits of nvmlDeviceGetCurrentClocksEventReasons (same values as the older ThrottleReasons).
THROTTLE_REASONS = (
    ("gpu_idle", 0x1),
    ("applications_clocks_setting", 0x2),
    ("sw_power_cap", 0x4),
    ("hw_slowdown", 0x8),
    ("sync_boost", 0x10),
    ("sw_thermal_slowdown", 0x20),
    ("hw_thermal_slowdown", 0x40),
    ("hw_power_brake_slowdown", 0x80),
    ("display_clock_setting", 0x100),
)


class GpuHealthFamilies:
    """The tts_gpu_* health families of one scrape; `read()` adds one GPU to them."""

    def __init__(self, nvml: Any, optional: Optional) -> None:
        self._nv = nvml
        self._optional = optional
        self.ecc = CounterMetricFamily(
            "tts_gpu_ecc_errors", "ECC memory errors by type (single/double bit, volatile/aggregate).",
            labels=["gpu", "type"],
        )
        self.retired = GaugeMetricFamily(
            "tts_gpu_retired_pages", "Framebuffer pages retired, by cause (pre-Ampere boards).",
            labels=["gpu", "cause"],
        )
        self.retired_pending = GaugeMetricFamily(
            "tts_gpu_retired_pages_pending", "1 when a page retirement waits for the next driver load.",
            labels=["gpu"],
        )
        self.remapped = GaugeMetricFamily(
            "tts_gpu_remapped_rows", "Memory rows remapped, by the errors that caused it (Ampere and later).",
            labels=["gpu", "cause"],
        )
        self.remap_pending = GaugeMetricFamily(
            "tts_gpu_row_remap_pending", "1 when a row remapping waits for a GPU reset.", labels=["gpu"],
        )
        self.remap_failed = GaugeMetricFamily(
            "tts_gpu_row_remap_failed", "1 when a row remapping failed: the memory cannot be repaired.",
            labels=["gpu"],
        )
        self.throttle = GaugeMetricFamily(
            "tts_gpu_throttle_reasons", "1 for each reason the clocks are held down now.", labels=["gpu", "reason"],
        )

    def read(self, gpu: str, handle: Any) -> None:
        """Add GPU `gpu` (its NVML handle) to every family it supports."""
        self._ecc(gpu, handle)
        self._pages(gpu, handle)
        self._throttle(gpu, handle)

    def families(self) -> Iterator[Metric]:
        """Every family, in a stable order."""
        yield from (self.ecc, self.retired, self.retired_pending, self.remapped, self.remap_pending,
                    self.remap_failed, self.throttle)

    def _ecc(self, gpu: str, handle: Any) -> None:
        for label, error_type, counter_type in ECC_COUNTERS:
            n = self._optional("nvmlDeviceGetTotalEccErrors", handle, getattr(self._nv, error_type),
                               getattr(self._nv, counter_type))
            if n is not None:
                self.ecc.add_metric([gpu, label], float(n))

    def _pages(self, gpu: str, handle: Any) -> None:
        rows = self._optional("nvmlDeviceGetRemappedRows", handle)
        if rows is not None:
            correctable, uncorrectable, pending, failed = rows
            self.remapped.add_metric([gpu, "correctable"], float(correctable))
            self.remapped.add_metric([gpu, "uncorrectable"], float(uncorrectable))
            self.remap_pending.add_metric([gpu], 1.0 if pending else 0.0)
            self.remap_failed.add_metric([gpu], 1.0 if failed else 0.0)
        for label, cause in RETIREMENT_CAUSES:
            pages = self._optional("nvmlDeviceGetRetiredPages", handle, getattr(self._nv, cause))
            if pages is not None:
                self.retired.add_metric([gpu, label], float(len(pages)))
        pending = self._optional("nvmlDeviceGetRetiredPagesPendingStatus", handle)
        if pending is not None:
            self.retired_pending.add_metric([gpu], 1.0 if pending == self._nv.NVML_FEATURE_ENABLED else 0.0)

    def _throttle(self, gpu: str, handle: Any) -> None:
        # The ClocksEvent name since driver 535; older drivers only know ClocksThrottle.
        mask = self._optional("nvmlDeviceGetCurrentClocksEventReasons", handle)
        if mask is None:
            mask = self._optional("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        if mask is None:
            return
        for label, bit in THROTTLE_REASONS:
            self.throttle.add_metric([gpu, label], 1.0 if mask & bit else 0.0)
