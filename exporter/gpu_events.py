"""XID errors from NVML's event wait, in a background thread.

One event set registers `nvmlEventTypeXidCriticalError` on every watched GPU (NVML delivers
every XID through that type, critical or not); the thread waits on it with a timeout so that
stop() returns within one `wait_timeout_ms`. A wait that fails with GPU_IS_LOST or any other
error frees the set and builds a new one after a backoff: the lost GPU is then reported by the
collector's queries, its XID 79 by the kernel log.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from tts_sentinel.exporter.gpu_config import GpuConfig
from tts_sentinel.exporter.gpu_xid import XidTally

log = logging.getLogger(__name__)

BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0


class NvmlXidWatcher:
    """Counts the XIDs NVML delivers into `tally` (source `nvml`).

    `step()` does one unit of work (set up the event set, or one wait) in the caller's thread;
    `start()` runs steps in a thread until `stop()`. `up` and `reason` say whether events are
    being waited for, and if not why (`nvml_missing`, `nvml_init`, `not_supported`, `gpu_lost`,
    `nvml_error`).
    """

    def __init__(self, config: GpuConfig, nvml: Any, tally: XidTally) -> None:
        self._config = config
        self._nvml = nvml
        self._tally = tally
        self._set: Any = None
        self._initialised = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = BACKOFF_INITIAL_SECONDS
        self._last_problem = ""
        self.up = False
        self.reason = "starting"
        self.errors = 0  # failed set-ups and waits (timeouts are not errors)

    # ----- thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Wait for events in a daemon thread; returns at once."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="gpu-xid-events", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the thread (within one wait timeout) and free the event set."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._close()
        self._shutdown()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pause = self.step()
            except Exception:  # a bug here must not end XID watching for good
                log.exception("NVML XID watcher failed; starting over")
                self._close()
                pause = self._next_backoff()
            if pause:
                self._stop.wait(pause)

    # ----- one step --------------------------------------------------------------------

    def step(self) -> float:
        """Set up the event set if there is none, else wait once; returns seconds to pause before the next."""
        if self._set is None:
            return self._open()
        return self._wait()

    def _open(self) -> float:
        nv = self._nvml
        if nv is None:
            return self._down("nvml_missing", "the NVML library (nvidia-ml-py) is not installed", error=False)
        if not self._initialised:
            try:
                nv.nvmlInit()
            except nv.NVMLError as exc:
                return self._down("nvml_init", f"NVML cannot start ({exc})")
            self._initialised = True
        try:
            indices = self._config.devices or list(range(nv.nvmlDeviceGetCount()))
            event_set = nv.nvmlEventSetCreate()
        except nv.NVMLError as exc:
            self._shutdown()  # the driver may have gone away: start from nvmlInit next time
            return self._down("nvml_error", f"NVML cannot create an event set ({exc})")
        registered, lost = 0, 0
        for index in indices:
            try:
                handle = nv.nvmlDeviceGetHandleByIndex(index)
                nv.nvmlDeviceRegisterEvents(handle, nv.nvmlEventTypeXidCriticalError, event_set)
                registered += 1
            except nv.NVMLError as exc:
                # NOT_SUPPORTED (vGPU, some platforms) or a GPU already lost: watch the others.
                lost += exc.value == nv.NVML_ERROR_GPU_IS_LOST
                log.info("GPU %s: no NVML XID events (%s)", index, exc)
        if not registered:
            _free(nv, event_set)
            if lost:
                return self._down("gpu_lost", "every watched GPU is lost (GPU_IS_LOST)")
            return self._down("not_supported", "no GPU accepts NVML XID event registration", error=False)
        self._set = event_set
        self._backoff = BACKOFF_INITIAL_SECONDS
        self.up, self.reason = True, ""
        if self._last_problem:
            log.info("NVML XID events are watched again on %d GPU(s)", registered)
            self._last_problem = ""
        return 0.0

    def _wait(self) -> float:
        nv = self._nvml
        # _v2 carries the MIG instance ids; bindings before it only have the first version.
        wait = getattr(nv, "nvmlEventSetWait_v2", None) or nv.nvmlEventSetWait
        try:
            data = wait(self._set, self._config.xid.wait_timeout_ms)
        except nv.NVMLError as exc:
            if exc.value == nv.NVML_ERROR_TIMEOUT:
                return 0.0
            self._close()
            if exc.value == nv.NVML_ERROR_GPU_IS_LOST:
                return self._down("gpu_lost", "a GPU fell off the bus or is otherwise inaccessible (GPU_IS_LOST)")
            return self._down("nvml_error", f"the NVML event wait failed ({exc})")
        if data.eventType & nv.nvmlEventTypeXidCriticalError:
            gpu = self._index_of(data.device)
            xid = int(data.eventData)
            self._tally.add(gpu, xid, "nvml")
            log.warning("GPU %s: XID %d (NVML event)", gpu, xid)
        return 0.0

    def _index_of(self, device: Any) -> str:
        try:
            return str(self._nvml.nvmlDeviceGetIndex(device))
        except self._nvml.NVMLError:
            return "unknown"

    # ----- state -----------------------------------------------------------------------

    def _down(self, reason: str, why: str, *, error: bool = True) -> float:
        self.up, self.reason = False, reason
        if error:
            self.errors += 1
        if why != self._last_problem:
            log.warning("NVML XID events are not watched: %s; retrying", why)
            self._last_problem = why
        return self._next_backoff()

    def _next_backoff(self) -> float:
        pause = self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX_SECONDS)
        return pause

    def _shutdown(self) -> None:
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()  # our own reference: NVML counts nvmlInit calls
            except self._nvml.NVMLError:
                pass

    def _close(self) -> None:
        if self._set is not None:
            _free(self._nvml, self._set)
            self._set = None


def _free(nv: Any, event_set: Any) -> None:
    try:
        nv.nvmlEventSetFree(event_set)
    except nv.NVMLError:
        pass  # the GPU or the driver is already gone
