"""The faults the simulator can play, and the in-memory state that holds the current one.

State lives only in the process, so restarting a component clears its fault, as a
real restart clears a hung or broken process.
"""

from __future__ import annotations

import threading
import time

WEB = "web"
INFERENCE = "inference"

# name -> (components it applies to, what it does)
FAULTS: dict[str, tuple[frozenset[str], str]] = {
    "hang": (frozenset({WEB, INFERENCE}), "health and synthesis never answer (admin still does)"),
    "error500": (frozenset({WEB, INFERENCE}), "health and synthesis answer 500"),
    "crash": (frozenset({WEB, INFERENCE}), "the process exits with status 1"),
    "segfault": (frozenset({WEB, INFERENCE}), "logs 'Segmentation fault (core dumped)', exits with 139"),
    "silent": (frozenset({INFERENCE}), "all-zero audio; health.log: audio output silent"),
    "oom": (frozenset({INFERENCE}), "[CUDA] Out of memory on device 0, then synthesis fails"),
    "unicode": (frozenset({INFERENCE}), "invalid unicode sequence, then silent audio (protection mode)"),
    "underflow": (frozenset({INFERENCE}), "Stream buffer underflow lines and a zero gap in the audio"),
    "load_timeout": (frozenset({INFERENCE}), "Model load timeout > 15s, then the model is not loaded"),
    "monotone": (frozenset({INFERENCE}), "flat F0: a voice without intonation"),
    "runaway": (frozenset({INFERENCE}), "audio far too long for the text"),
    "noise": (frozenset({INFERENCE}), "stationary noise instead of speech"),
    "truncated": (frozenset({INFERENCE}), "audio cut off after 0.4 s"),
    "wrong_rate": (frozenset({INFERENCE}), "audio at 16000 Hz instead of 24000 Hz"),
    "clipping": (frozenset({INFERENCE}), "audio overdriven into clipping"),
    "corrupt": (frozenset({INFERENCE}), "a body that is not a WAV"),
    # vLLM-Omni's own failure modes (protocol openai; in seed mode they act alike without metrics).
    "hung_engine": (frozenset({INFERENCE}), "requests are accepted and none completes; /health stays 200"),
    "underrun": (frozenset({INFERENCE}), "streams audio slower than real time: chunks arrive late"),
    "engine_fatal": (frozenset({INFERENCE}), "EngineCore fatal error and death in the log; /health 503"),
    "no_audio": (frozenset({INFERENCE}), "TTS model did not produce audio output (400, a skipped request)"),
}
NONE = "none"


class FaultError(ValueError):
    """A fault request that cannot be applied; the message says why and what is allowed."""


def check_fault(name: str, component: str) -> None:
    """Raise FaultError unless `name` is a fault (or none) that applies to `component`."""
    if name == NONE:
        return
    if name not in FAULTS:
        raise FaultError(f"unknown fault {name!r}; known faults: none, {', '.join(sorted(FAULTS))}")
    components = FAULTS[name][0]
    if component not in components:
        raise FaultError(f"fault {name!r} applies to {' and '.join(sorted(components))}, not to {component}")


class FaultState:
    """The current fault of one component; requests held by `hang` wait on `released`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.name = NONE
        self.since = time.time()
        self._released = threading.Event()

    def set(self, name: str) -> str:
        """Switch to fault `name` (or none); return the previous one and release hung requests."""
        with self._lock:
            previous, self.name, self.since = self.name, name, time.time()
            self._released.set()
            self._released = threading.Event()
            return previous

    def hold(self, seconds: float, fault: str = "hang") -> bool:
        """Block a request while the fault is `fault` (until it changes or `seconds` pass); True if held."""
        with self._lock:
            released = self._released
            hung = self.name == fault
        if hung:
            released.wait(seconds)
        return hung
