"""The GPU as the receiver sees it: processes on a card, its power limits, a reset.

`NvmlGpu` wraps the `pynvml` module of nvidia-ml-py (imported lazily; tests pass a FakeNvml
with the same function names). Without the module or a driver, every call raises GpuUnavailable.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any


class GpuUnavailable(Exception):
    """No NVML (no package, no driver, no card) or no permission; the message says which."""


class NvmlGpu:
    """Small facade over pynvml; `nvml` is the module (or a fake following its API)."""

    def __init__(self, nvml: Any | None = None) -> None:
        self._nvml = nvml
        self._initialised = False

    def _lib(self) -> Any:
        if self._nvml is None:
            try:
                import pynvml  # nvidia-ml-py
            except ImportError:
                raise GpuUnavailable("nvidia-ml-py (pynvml) is not installed") from None
            self._nvml = pynvml
        if not self._initialised:
            try:
                self._nvml.nvmlInit()
            except Exception as exc:  # noqa: BLE001 - NVMLError subclasses vary by driver
                raise GpuUnavailable(f"NVML cannot start: {exc}") from None
            self._initialised = True
        return self._nvml

    def _handle(self, index: int) -> Any:
        lib = self._lib()
        try:
            return lib.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:  # noqa: BLE001
            raise GpuUnavailable(f"no GPU {index}: {exc}") from None

    def processes(self, index: int) -> list[int]:
        """PIDs of compute and graphics processes on GPU `index`."""
        lib = self._lib()
        handle = self._handle(index)
        pids: list[int] = []
        for fn in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            try:
                pids.extend(int(p.pid) for p in getattr(lib, fn)(handle))
            except Exception as exc:  # noqa: BLE001
                raise GpuUnavailable(f"cannot list processes on GPU {index}: {exc}") from None
        return sorted(set(pids))

    def power_limits(self, index: int) -> dict[str, int]:
        """Milliwatts: min, max (the card's constraints), default and current limit."""
        lib = self._lib()
        handle = self._handle(index)
        try:
            low, high = lib.nvmlDeviceGetPowerManagementLimitConstraints(handle)
            return {
                "min_mw": int(low),
                "max_mw": int(high),
                "default_mw": int(lib.nvmlDeviceGetPowerManagementDefaultLimit(handle)),
                "current_mw": int(lib.nvmlDeviceGetPowerManagementLimit(handle)),
            }
        except Exception as exc:  # noqa: BLE001
            raise GpuUnavailable(f"cannot read power limits of GPU {index}: {exc}") from None

    def set_power_limit(self, index: int, milliwatts: int) -> None:
        """Set the power limit (root only; NVML refuses otherwise)."""
        lib = self._lib()
        handle = self._handle(index)
        try:
            lib.nvmlDeviceSetPowerManagementLimit(handle, int(milliwatts))
        except Exception as exc:  # noqa: BLE001
            raise GpuUnavailable(f"cannot set the power limit of GPU {index}: {exc}") from None


def reset_gpu(nvidia_smi: str, index: int, timeout: float = 60.0) -> str:
    """`nvidia-smi --gpu-reset -i N` (argv, no shell); its output, or GpuUnavailable on failure."""
    try:
        proc = subprocess.run(
            [nvidia_smi, "--gpu-reset", "-i", str(index)], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GpuUnavailable(f"nvidia-smi --gpu-reset failed: {exc}") from None
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise GpuUnavailable(f"nvidia-smi --gpu-reset exited {proc.returncode}: {out[-300:]}")
    return out


def running_as_root() -> bool:
    """Whether this process may change GPU settings."""
    return os.geteuid() == 0
