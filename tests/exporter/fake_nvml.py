"""FakeNvml: the subset of the real `pynvml` module (nvidia-ml-py) the project calls.

Same function names, signatures, return shapes and error classes (the real
`pynvml.NVMLError`, whose constructor hands back the subclass of each code, e.g.
NVMLError_Timeout), so code that passes here calls the real library the same way:

* every call but nvmlInit raises UNINITIALIZED until nvmlInit; init and shutdown are counted;
* a function the installed driver lacks raises FUNCTION_NOT_FOUND (`missing_functions`);
* a query a board does not support raises NOT_SUPPORTED (`FakeGpu.unsupported`); page
  retirement is NOT_SUPPORTED on Ampere and later (`memory_repair="remap"`), row remapping
  before them (`memory_repair="retire"`);
* a lost GPU raises GPU_IS_LOST from its queries and from an event wait it is registered in;
* nvmlEventSetWait_v2 returns an object shaped like c_nvmlEventData_t (device, eventType,
  eventData, gpuInstanceId, computeInstanceId), or raises TIMEOUT after `timeoutms`.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

# an event with no MIG instance carries these ids (0xFFFFFFFF: "not applicable")
NO_INSTANCE = 0xFFFFFFFF
_LOST = object()


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
    # NVML's busId notation; "" gets 00000000:3B:00.0, 00000000:3C:00.0, ... by index
    pci_bus_id: str = ""
    lost: bool = False
    # (single-bit = corrected, double-bit = uncorrected) x (volatile, aggregate)
    ecc: dict[str, int] = field(default_factory=lambda: {
        "single_bit_volatile": 0, "double_bit_volatile": 0, "single_bit_aggregate": 0, "double_bit_aggregate": 0,
    })
    memory_repair: str = "remap"  # "remap": Ampere and later; "retire": Volta/Turing page retirement
    remapped_rows: tuple[int, int, int, int] = (0, 0, 0, 0)  # correctable, uncorrectable, pending, failure
    retired_pages: dict[int, list[int]] = field(default_factory=dict)  # cause -> page addresses
    retired_pending: bool = False
    clocks_event_reasons: int = pynvml.nvmlClocksEventReasonNone


class FakeNvml:
    NVMLError = pynvml.NVMLError
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_ERROR_TIMEOUT = pynvml.NVML_ERROR_TIMEOUT
    NVML_ERROR_GPU_IS_LOST = pynvml.NVML_ERROR_GPU_IS_LOST
    NVML_ERROR_NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_FUNCTION_NOT_FOUND = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    NVML_FEATURE_DISABLED = pynvml.NVML_FEATURE_DISABLED
    NVML_FEATURE_ENABLED = pynvml.NVML_FEATURE_ENABLED
    NVML_MEMORY_ERROR_TYPE_CORRECTED = pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    NVML_VOLATILE_ECC = pynvml.NVML_VOLATILE_ECC
    NVML_AGGREGATE_ECC = pynvml.NVML_AGGREGATE_ECC
    NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS = pynvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS
    NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = pynvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR
    nvmlEventTypeSingleBitEccError = pynvml.nvmlEventTypeSingleBitEccError
    nvmlEventTypeDoubleBitEccError = pynvml.nvmlEventTypeDoubleBitEccError
    nvmlEventTypeXidCriticalError = pynvml.nvmlEventTypeXidCriticalError

    def __init__(self, gpus: list[FakeGpu] | None = None, *, library_missing: bool = False,
                 missing_functions: set[str] | None = None) -> None:
        self.gpus = gpus if gpus is not None else [FakeGpu()]
        for i, g in enumerate(self.gpus):
            g.pci_bus_id = g.pci_bus_id or f"00000000:{0x3B + i:02X}:00.0"
        self.library_missing = library_missing
        self.missing_functions = missing_functions or set()
        self.lost = False  # every GPU at once (the driver's view of a host whose GPUs all fell off)
        self.failing: int | None = None  # an NVML_ERROR_* every call raises (the driver stopped answering)
        self.init_calls = 0
        self.shutdown_calls = 0
        self._refs = 0
        self._sets: list[SimpleNamespace] = []

    # ----- what the tests do to the GPUs -------------------------------------------------

    def xid(self, index: int, xid: int) -> None:
        """The driver reports XID `xid` on GPU `index`: every event set registered for it gets it."""
        for s in self._sets:
            if s.registered.get(index, 0) & pynvml.nvmlEventTypeXidCriticalError:
                s.events.put(SimpleNamespace(device=index, eventType=pynvml.nvmlEventTypeXidCriticalError,
                                             eventData=xid, gpuInstanceId=NO_INSTANCE,
                                             computeInstanceId=NO_INSTANCE))

    def lose(self, index: int) -> None:
        """GPU `index` falls off the bus: its queries and the waits it is registered in fail."""
        self.gpus[index].lost = True
        for s in self._sets:
            if index in s.registered:
                s.events.put(_LOST)

    # ----- checks every real call makes --------------------------------------------------

    def _call(self, fn: str) -> None:
        if self._refs == 0:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        if self.failing is not None:
            raise pynvml.NVMLError(self.failing)
        if fn in self.missing_functions:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)

    def _gpu(self, handle: int, fn: str) -> FakeGpu:
        gpu = self.gpus[handle]
        if self.lost or gpu.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        if fn in gpu.unsupported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    # ----- init ----------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.library_missing:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self._refs += 1

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")
        self.shutdown_calls += 1
        self._refs -= 1

    # ----- devices -------------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._call("nvmlDeviceGetHandleByIndex")
        if index >= len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetIndex(self, handle: int) -> int:
        self._call("nvmlDeviceGetIndex")
        return handle

    def nvmlDeviceGetName(self, handle: int) -> str:
        self._call("nvmlDeviceGetName")
        return self._gpu(handle, "name").name

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        self._call("nvmlDeviceGetUUID")
        return self._gpu(handle, "uuid").uuid

    def nvmlDeviceGetPciInfo(self, handle: int) -> SimpleNamespace:
        self._call("nvmlDeviceGetPciInfo")
        g = self._gpu(handle, "pci")
        domain, bus, rest = g.pci_bus_id.split(":")
        return SimpleNamespace(busId=g.pci_bus_id, busIdLegacy=f"{int(domain, 16):04X}:{bus}:{rest}",
                               domain=int(domain, 16), bus=int(bus, 16), device=int(rest.split(".")[0], 16))

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> SimpleNamespace:
        self._call("nvmlDeviceGetMemoryInfo")
        g = self._gpu(handle, "memory")
        return SimpleNamespace(total=g.total, used=g.used, free=g.total - g.used)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        self._call("nvmlDeviceGetTemperature")
        return self._gpu(handle, "temperature").temperature

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        self._call("nvmlDeviceGetPowerUsage")
        return self._gpu(handle, "power").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        self._call("nvmlDeviceGetEnforcedPowerLimit")
        return self._gpu(handle, "power_limit").limit_mw

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: int) -> list[int]:
        self._call("nvmlDeviceGetPowerManagementLimitConstraints")
        g = self._gpu(handle, "power_limit")
        return [g.min_limit_mw, g.max_limit_mw]

    def nvmlDeviceSetPowerManagementLimit(self, handle: int, limit: int) -> None:
        self._call("nvmlDeviceSetPowerManagementLimit")
        g = self._gpu(handle, "set_power_limit")
        if not g.min_limit_mw <= limit <= g.max_limit_mw:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        g.limit_mw = limit

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        self._call("nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=self._gpu(handle, "utilization").util_gpu, memory=0)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        self._call("nvmlDeviceGetComputeRunningProcesses")
        g = self._gpu(handle, "processes")
        return [SimpleNamespace(pid=p, usedGpuMemory=g.used // max(1, len(g.pids))) for p in g.pids]

    # ----- memory health -------------------------------------------------------------------

    def nvmlDeviceGetTotalEccErrors(self, handle: int, errorType: int, counterType: int) -> int:  # noqa: N803
        self._call("nvmlDeviceGetTotalEccErrors")
        g = self._gpu(handle, "ecc")
        kind = "single_bit" if errorType == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else "double_bit"
        scope = "volatile" if counterType == pynvml.NVML_VOLATILE_ECC else "aggregate"
        return g.ecc[f"{kind}_{scope}"]

    def nvmlDeviceGetRetiredPages(self, device: int, sourceFilter: int) -> list[int]:  # noqa: N803
        self._call("nvmlDeviceGetRetiredPages")
        g = self._gpu(device, "retired_pages")
        if g.memory_repair != "retire":
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return list(g.retired_pages.get(sourceFilter, []))

    def nvmlDeviceGetRetiredPagesPendingStatus(self, device: int) -> int:
        self._call("nvmlDeviceGetRetiredPagesPendingStatus")
        g = self._gpu(device, "retired_pages")
        if g.memory_repair != "retire":
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return pynvml.NVML_FEATURE_ENABLED if g.retired_pending else pynvml.NVML_FEATURE_DISABLED

    def nvmlDeviceGetRemappedRows(self, device: int) -> tuple[int, int, int, int]:
        self._call("nvmlDeviceGetRemappedRows")
        g = self._gpu(device, "remapped_rows")
        if g.memory_repair != "remap":
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return g.remapped_rows

    # ----- clocks --------------------------------------------------------------------------

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        self._call("nvmlDeviceGetCurrentClocksEventReasons")
        return self._gpu(handle, "clocks_event_reasons").clocks_event_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: int) -> int:
        self._call("nvmlDeviceGetCurrentClocksThrottleReasons")
        return self._gpu(handle, "clocks_event_reasons").clocks_event_reasons

    # ----- events --------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> SimpleNamespace:
        self._call("nvmlEventSetCreate")
        s = SimpleNamespace(registered={}, events=queue.Queue(), freed=False)
        self._sets.append(s)
        return s

    def nvmlDeviceRegisterEvents(self, handle: int, eventTypes: int, eventSet: SimpleNamespace) -> None:  # noqa: N803
        self._call("nvmlDeviceRegisterEvents")
        self._gpu(handle, "events")
        eventSet.registered[handle] = eventSet.registered.get(handle, 0) | eventTypes

    def nvmlEventSetWait_v2(self, eventSet: SimpleNamespace, timeoutms: int) -> SimpleNamespace:  # noqa: N802, N803
        self._call("nvmlEventSetWait_v2")
        if any(self.lost or self.gpus[i].lost for i in eventSet.registered):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        try:
            event = eventSet.events.get(timeout=timeoutms / 1000)
        except queue.Empty:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT) from None
        if event is _LOST:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return event

    def nvmlEventSetWait(self, eventSet: SimpleNamespace, timeoutms: int) -> SimpleNamespace:  # noqa: N803
        return self.nvmlEventSetWait_v2(eventSet, timeoutms)

    def nvmlEventSetFree(self, eventSet: SimpleNamespace) -> None:  # noqa: N803
        self._call("nvmlEventSetFree")
        eventSet.freed = True
        if eventSet in self._sets:
            self._sets.remove(eventSet)

    def open_event_sets(self) -> int:
        """Event sets created and not freed (a watcher must free what it creates)."""
        return len(self._sets)


def scrape(collector) -> dict[tuple[str, tuple], float]:
    """What Prometheus would read from `collector` now: (sample name, sorted labels) -> value."""
    registry = CollectorRegistry()
    registry.register(collector)
    out = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(m: dict, name: str, **labels: str) -> float | None:
    """One sample of a scrape, or None when it is not there."""
    return m.get((name, tuple(sorted(labels.items()))))
