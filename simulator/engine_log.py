"""The failure lines a vLLM-Omni engine prints, written into the simulator's inference.log.

The message text follows what the real processes print (the `(EngineCore_DP0 pid=N)` and
`[file.py:line]` prefixes included); the timestamp and level stay in the simulator's own
format, so triage reads these lines like every other.
"""

from __future__ import annotations

import logging
import os

STALL_LINE = ("No available shared memory broadcast block found in 60 seconds. This typically happens "
              "when some processes are hanging or doing some time-consuming work.")
NO_AUDIO_LINE = "TTS model did not produce audio output."
ENGINE_DEAD_MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause."


def _engine(message: str) -> str:
    return f"(EngineCore_DP0 pid={os.getpid()}) {message}"


def log_engine_fatal(log: logging.Logger) -> None:
    """The engine core process dies: its own fatal error, the client noticing, the stage shutting down."""
    log.error(_engine("[core.py:1016] EngineCore encountered a fatal error."))
    log.error(_engine("[core.py:1016] Traceback (most recent call last):"))
    log.error(_engine("[core.py:1016] torch.AcceleratorError: CUDA error: an illegal memory access was "
                      "encountered"))
    log.error("(APIServer pid=%d) [core_client.py:610] Engine core proc EngineCore_DP0 died unexpectedly, "
              "shutting down client.", os.getpid())
    log.info("(APIServer pid=%d) [stage_pool.py:392] [StagePool] Stage 0 replica 0 shut down", os.getpid())


def log_engine_dead_request(log: logging.Logger) -> None:
    """A request that reaches the dead engine."""
    log.error("(APIServer pid=%d) [serving_speech.py:402] vllm.v1.engine.exceptions.EngineDeadError: %s",
              os.getpid(), ENGINE_DEAD_MESSAGE)


def log_stall(log: logging.Logger) -> None:
    """The shared-memory broadcast queue has not moved for a minute: the precursor of a hang."""
    log.info(_engine("[shm_broadcast.py:681] " + STALL_LINE))


def log_no_audio(log: logging.Logger) -> None:
    """The model finished without audio; the API answers 400."""
    log.error("(APIServer pid=%d) [serving_speech.py:655] %s", os.getpid(), NO_AUDIO_LINE)
