"""FakeNvml: the subset of the real `pynvml` module (nvidia-ml-py) the project calls.

Same function names, signatures, return shapes and error classes (the real
`pynvml.NVMLError`), so code that passes here calls the real library the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-1111-2222-3333-444444444444"
    total: int = 80 * 1024**3
    used: int = 10 * 1024**3
    temperature: int = 55
    power_mw: int = 250_000
    limit_mw: int = 700_000
    min_limit_mw: int = 200_000
    max_limit_mw: int = 700_000
    util_gpu: int = 40
    pids: list[int] = field(default_factory=lambda: [4242])
    unsupported: set[str] = field(default_factory=set)


class FakeNvml:
    NVMLError = pynvml.NVMLError
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU

    def __init__(self, gpus: list[FakeGpu] | None = None, *, library_missing: bool = False) -> None:
        self.gpus = gpus if gpus is not None else [FakeGpu()]
        self.library_missing = library_missing
        self.lost = False
        self.init_calls = 0

    def _gpu(self, handle: int, fn: str) -> FakeGpu:
        if self.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        gpu = self.gpus[handle]
        if fn in gpu.unsupported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.library_missing:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index >= len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self._gpu(handle, "name").name

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._gpu(handle, "uuid").uuid

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> SimpleNamespace:
        g = self._gpu(handle, "memory")
        return SimpleNamespace(total=g.total, used=g.used, free=g.total - g.used)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return self._gpu(handle, "temperature").temperature

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self._gpu(handle, "power").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return self._gpu(handle, "power_limit").limit_mw

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: int) -> list[int]:
        g = self._gpu(handle, "power_limit")
        return [g.min_limit_mw, g.max_limit_mw]

    def nvmlDeviceSetPowerManagementLimit(self, handle: int, limit: int) -> None:
        g = self._gpu(handle, "set_power_limit")
        if not g.min_limit_mw <= limit <= g.max_limit_mw:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        g.limit_mw = limit

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._gpu(handle, "utilization").util_gpu, memory=0)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        g = self._gpu(handle, "processes")
        return [SimpleNamespace(pid=p, usedGpuMemory=g.used // max(1, len(g.pids))) for p in g.pids]
