"""GPU collector: reads NVML at scrape time (client_python custom-collector style).

Nothing is cached between scrapes except the NVML initialisation itself, the PCI address of
each GPU (so a kernel log line still names the GPU after it fell off the bus) and the XID
counts, which two background sources add to: NVML's event wait (gpu_events) and the kernel log
(gpu_kernel_log). A host without a GPU or driver gets `tts_gpu_up 0` and a reason, never an
exception; a GPU that answers GPU_IS_LOST is `tts_gpu_lost 1` while the others are read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tts_sentinel.exporter.gpu_config import GpuConfig, GpuXidConfig, KernelLogConfig
from tts_sentinel.exporter.gpu_events import NvmlXidWatcher
from tts_sentinel.exporter.gpu_health import GpuHealthFamilies
from tts_sentinel.exporter.gpu_kernel_log import KernelLogWatcher, KernelXidSink
from tts_sentinel.exporter.gpu_xid import PciMap, XidTally

__all__ = ["GpuCollector", "GpuConfig", "GpuXidConfig", "KernelLogConfig", "load_nvml"]

log = logging.getLogger(__name__)


def load_nvml() -> ModuleType | None:
    """The real `pynvml` module (package nvidia-ml-py), or None when it is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


class GpuCollector(Collector):
    """Emits tts_gpu_* families from NVML on every `collect()`; `start()` runs the XID sources."""

    def __init__(self, config: GpuConfig, nvml: Any = None) -> None:
        self._config = config
        self._nvml = nvml if nvml is not None else load_nvml()
        self._initialised = False
        self._errors = 0
        self._last_error = ""
        self._lock = threading.Lock()
        self.xids = XidTally(config.xid.critical)
        self.pci_map = PciMap()
        self.events: NvmlXidWatcher | None = None
        self.kernel_log: KernelLogWatcher | None = None
        if config.enabled and config.xid.enabled:
            self.events = NvmlXidWatcher(config, self._nvml, self.xids)
        if config.enabled and config.xid.kernel_log.enabled:
            self.kernel_log = KernelLogWatcher(config.xid.kernel_log, KernelXidSink(self.xids, self.pci_map))

    # ----- background XID sources ------------------------------------------------------

    def start(self) -> None:
        """Learn the GPUs' PCI addresses, then start the NVML event thread and the kernel log."""
        if not self._config.enabled:
            return
        list(self.collect())  # fills the PCI map before the first kernel log line
        if self.events is not None:
            self.events.start()
        if self.kernel_log is not None:
            self.kernel_log.start()

    def stop(self) -> None:
        """Stop both XID sources."""
        if self.events is not None:
            self.events.stop()
        if self.kernel_log is not None:
            self.kernel_log.stop()

    # ----- scrape ----------------------------------------------------------------------

    def _ensure_init(self) -> bool:
        if self._initialised:
            return True
        if self._nvml is None:
            self._last_error = "nvml_missing"
            return False
        try:
            self._nvml.nvmlInit()
        except self._nvml.NVMLError as exc:
            self._last_error = "nvml_init"
            log.debug("NVML init failed: %s", exc)
            return False
        self._initialised = True
        return True

    def _optional(self, fn: str, *args: Any) -> Any:
        """Call an NVML query that some boards or bindings do not have; None when it fails."""
        call = getattr(self._nvml, fn, None)
        if call is None:
            return None
        try:
            return call(*args)
        except self._nvml.NVMLError as exc:
            if exc.value == self._nvml.NVML_ERROR_GPU_IS_LOST:
                raise
            return None

    def collect(self) -> Iterator[Metric]:
        """Read every configured GPU now and yield the families."""
        with self._lock:
            yield from self._collect_locked()

    def _collect_locked(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tts_gpu_up", "1 when NVML answered for the GPUs of this host.", labels=["reason"])
        errors = CounterMetricFamily("tts_gpu_scrape_errors", "NVML queries that failed during scrapes.")
        if not self._config.enabled:
            up.add_metric(["disabled"], 0)
            yield up
            return
        if not self._ensure_init():
            self._errors += 1
            up.add_metric([self._last_error], 0)
            errors.add_metric([], self._errors)
            yield up
            yield errors
            yield from self._xid_families([])
            return

        info = GaugeMetricFamily("tts_gpu_info", "GPU identity.", labels=["gpu", "name", "uuid"])
        used = GaugeMetricFamily("tts_gpu_memory_used_bytes", "GPU memory in use.", labels=["gpu"])
        total = GaugeMetricFamily("tts_gpu_memory_total_bytes", "GPU memory installed.", labels=["gpu"])
        temp = GaugeMetricFamily("tts_gpu_temperature_celsius", "GPU core temperature.", labels=["gpu"])
        power = GaugeMetricFamily("tts_gpu_power_watts", "GPU power draw.", labels=["gpu"])
        limit = GaugeMetricFamily("tts_gpu_power_limit_watts", "Enforced GPU power limit.", labels=["gpu"])
        util = GaugeMetricFamily("tts_gpu_utilization_ratio", "GPU busy time, 0..1.", labels=["gpu"])
        procs = GaugeMetricFamily("tts_gpu_processes", "Compute processes holding the GPU.", labels=["gpu"])
        devices = GaugeMetricFamily("tts_gpu_devices", "GPUs NVML counts on this host (all, not only watched).")
        lost = GaugeMetricFamily(
            "tts_gpu_lost", "1 when NVML answers GPU_IS_LOST for the GPU: it fell off the bus.", labels=["gpu"]
        )
        health = GpuHealthFamilies(self._nvml, self._optional)
        nv = self._nvml
        gpus: list[str] = []
        try:
            count = nv.nvmlDeviceGetCount()
            devices.add_metric([], float(count))
            for index in self._config.devices or list(range(count)):
                gpu = str(index)
                gpus.append(gpu)
                try:
                    handle = nv.nvmlDeviceGetHandleByIndex(index)
                    pci = self._optional("nvmlDeviceGetPciInfo", handle)
                    if pci is not None:
                        self.pci_map.remember(_text(pci.busId), gpu)
                    name = _text(self._optional("nvmlDeviceGetName", handle))
                    uuid = _text(self._optional("nvmlDeviceGetUUID", handle))
                    mem = nv.nvmlDeviceGetMemoryInfo(handle)
                    t = self._optional("nvmlDeviceGetTemperature", handle, nv.NVML_TEMPERATURE_GPU)
                    mw = self._optional("nvmlDeviceGetPowerUsage", handle)
                    lim = self._optional("nvmlDeviceGetEnforcedPowerLimit", handle)
                    rates = self._optional("nvmlDeviceGetUtilizationRates", handle)
                    running = self._optional("nvmlDeviceGetComputeRunningProcesses", handle)
                    health.read(gpu, handle)
                except nv.NVMLError as exc:
                    if exc.value != nv.NVML_ERROR_GPU_IS_LOST:
                        raise
                    # This GPU is gone; the others are still worth reading.
                    lost.add_metric([gpu], 1)
                    log.warning("GPU %s is lost (NVML GPU_IS_LOST): it fell off the bus or is inaccessible", gpu)
                    continue
                lost.add_metric([gpu], 0)
                info.add_metric([gpu, name, uuid], 1)
                used.add_metric([gpu], float(mem.used))
                total.add_metric([gpu], float(mem.total))
                if t is not None:
                    temp.add_metric([gpu], float(t))
                if mw is not None:
                    power.add_metric([gpu], mw / 1000.0)
                if lim is not None:
                    limit.add_metric([gpu], lim / 1000.0)
                if rates is not None:
                    util.add_metric([gpu], rates.gpu / 100.0)
                if running is not None:
                    procs.add_metric([gpu], float(len(running)))
        except nv.NVMLError as exc:
            # The driver stopped answering mid-scrape: report it, re-initialise next time.
            self._errors += 1
            self._initialised = False
            log.warning("NVML query failed, will re-initialise on the next scrape: %s", exc)
            up.add_metric(["nvml_query"], 0)
            errors.add_metric([], self._errors)
            yield up
            yield errors
            yield from self._xid_families(gpus)
            return
        up.add_metric([""], 1)
        errors.add_metric([], self._errors)
        yield from (up, errors, devices, lost, info, used, total, temp, power, limit, util, procs)
        yield from health.families()
        yield from self._xid_families(gpus)

    def _xid_families(self, gpus: list[str]) -> Iterator[Metric]:
        sources = []
        source_up = GaugeMetricFamily(
            "tts_gpu_xid_source_up", "1 when the XID source is read (nvml: event wait, kernel_log: the log).",
            labels=["source", "reason"],
        )
        source_errors = CounterMetricFamily(
            "tts_gpu_xid_source_errors", "Failures of an XID source (it is retried).", labels=["source"]
        )
        if self.events is not None:
            sources.append("nvml")
            source_up.add_metric(["nvml", self.events.reason], 1 if self.events.up else 0)
            source_errors.add_metric(["nvml"], self.events.errors)
        if self.kernel_log is not None:
            sources.append("kernel_log")
            sink = self.kernel_log.sink
            source_up.add_metric(["kernel_log", "" if sink.up.value else "unreadable"], sink.up.value)
            source_errors.add_metric(["kernel_log"], sink.read_errors.value)
        if not sources:
            return
        xids = CounterMetricFamily(
            "tts_gpu_xid_errors", "XID errors reported by the NVIDIA driver, by GPU, XID and source.",
            labels=["gpu", "xid", "source"],
        )
        for (gpu, xid, source), n in sorted(self.xids.snapshot(gpus, sources).items()):
            xids.add_metric([gpu, xid, source], n)
        yield from (source_up, source_errors, xids)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
