"""GPU collector: reads NVML at scrape time (client_python custom-collector style).

Nothing is cached between scrapes except the NVML initialisation itself; a host
without a GPU or driver gets `tts_gpu_up 0` and a reason, never an exception.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)


class GpuConfig(BaseModel):
    """The `exporter.gpu` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    devices: list[int] = Field(default_factory=list, description="NVML indices; empty means all")


def load_nvml() -> ModuleType | None:
    """The real `pynvml` module (package nvidia-ml-py), or None when it is not installed."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


class GpuCollector(Collector):
    """Emits tts_gpu_* families from NVML on every `collect()`."""

    def __init__(self, config: GpuConfig, nvml: Any = None) -> None:
        self._config = config
        self._nvml = nvml if nvml is not None else load_nvml()
        self._initialised = False
        self._errors = 0
        self._last_error = ""
        self._lock = threading.Lock()

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
        """Call an NVML query that some boards do not support; None when it fails."""
        try:
            return getattr(self._nvml, fn)(*args)
        except self._nvml.NVMLError:
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
            return

        info = GaugeMetricFamily("tts_gpu_info", "GPU identity.", labels=["gpu", "name", "uuid"])
        used = GaugeMetricFamily("tts_gpu_memory_used_bytes", "GPU memory in use.", labels=["gpu"])
        total = GaugeMetricFamily("tts_gpu_memory_total_bytes", "GPU memory installed.", labels=["gpu"])
        temp = GaugeMetricFamily("tts_gpu_temperature_celsius", "GPU core temperature.", labels=["gpu"])
        power = GaugeMetricFamily("tts_gpu_power_watts", "GPU power draw.", labels=["gpu"])
        limit = GaugeMetricFamily("tts_gpu_power_limit_watts", "Enforced GPU power limit.", labels=["gpu"])
        util = GaugeMetricFamily("tts_gpu_utilization_ratio", "GPU busy time, 0..1.", labels=["gpu"])
        procs = GaugeMetricFamily("tts_gpu_processes", "Compute processes holding the GPU.", labels=["gpu"])
        nv = self._nvml
        try:
            indices = self._config.devices or list(range(nv.nvmlDeviceGetCount()))
            for index in indices:
                gpu = str(index)
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                name = _text(self._optional("nvmlDeviceGetName", handle))
                uuid = _text(self._optional("nvmlDeviceGetUUID", handle))
                info.add_metric([gpu, name, uuid], 1)
                mem = nv.nvmlDeviceGetMemoryInfo(handle)
                used.add_metric([gpu], float(mem.used))
                total.add_metric([gpu], float(mem.total))
                t = self._optional("nvmlDeviceGetTemperature", handle, nv.NVML_TEMPERATURE_GPU)
                if t is not None:
                    temp.add_metric([gpu], float(t))
                mw = self._optional("nvmlDeviceGetPowerUsage", handle)
                if mw is not None:
                    power.add_metric([gpu], mw / 1000.0)
                lim = self._optional("nvmlDeviceGetEnforcedPowerLimit", handle)
                if lim is not None:
                    limit.add_metric([gpu], lim / 1000.0)
                rates = self._optional("nvmlDeviceGetUtilizationRates", handle)
                if rates is not None:
                    util.add_metric([gpu], rates.gpu / 100.0)
                running = self._optional("nvmlDeviceGetComputeRunningProcesses", handle)
                if running is not None:
                    procs.add_metric([gpu], float(len(running)))
        except nv.NVMLError as exc:
            # A GPU that falls off the bus mid-scrape: report it, re-initialise next time.
            self._errors += 1
            self._initialised = False
            log.warning("NVML query failed, will re-initialise on the next scrape: %s", exc)
            up.add_metric(["nvml_query"], 0)
            errors.add_metric([], self._errors)
            yield up
            yield errors
            return
        up.add_metric([""], 1)
        errors.add_metric([], self._errors)
        yield from (up, errors, info, used, total, temp, power, limit, util, procs)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
