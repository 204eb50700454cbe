"""The `simulator` section of the config file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tts_sentinel.simulator.faults import INFERENCE, FaultError, check_fault

# The nine speakers of Qwen3-TTS-12Hz-1.7B-CustomVoice (public model card).
QWEN3_SPEAKERS = ["Vivian", "Serena", "Uncle_Fu", "Dylan", "Eric", "Ryan", "Aiden", "Ono_Anna", "Sohee"]


class SimulatorConfig(BaseModel):
    """Ports, log directory and behaviour of the stand-in TTS service."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    web_port: int = Field(default=7860, ge=1, le=65535)
    api_port: int = Field(default=8000, ge=1, le=65535)
    log_dir: Path = Path("/var/log/qwen3-tts")
    # "seed": GET /health {"status":"ok"} and POST /tts, as the ops manual describes.
    # "openai": vLLM-Omni's GET /health (empty body, 503 when the engine is dead),
    # POST /v1/audio/speech and GET /v1/audio/voices.
    protocol: Literal["seed", "openai"] = "seed"
    # With protocol openai: when set, /v1/* requires `Authorization: Bearer <api_key>`.
    api_key: str | None = None
    model_name: str = "Qwen3-TTS-12Hz-1.7B-CustomVoice"
    # -- model versions: a second instance plays a candidate (or a bad release) ---------------
    # sha256 of the weights this instance claims to serve, shown in GET /v1/models next to the id.
    weights_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    # The defect this model version carries: an inference fault that is on from the start and
    # comes back after every restart (it is in the weights, not in the process), e.g. monotone.
    version_fault: str | None = None
    speakers: list[str] = Field(default_factory=lambda: list(QWEN3_SPEAKERS))
    sample_rate: int = Field(default=24000, ge=8000, le=192000)
    # Longer inputs get a 400, as a real service limits its input (and memory).
    max_text_chars: int = Field(default=2000, ge=1)
    # Simulated model load at start of the inference process (the seed's timeout is 15 s).
    model_load_seconds: float = Field(default=0.0, ge=0)
    # How often the inference process writes its self-check line to health.log.
    self_check_interval_seconds: float = Field(default=8.0, gt=0)
    # How long a request held by the `hang` fault waits before the connection is dropped.
    hang_seconds: float = Field(default=3600.0, gt=0)
    # "tone": the built-in harmonic voice (no dependency). "espeak": real speech from the
    # espeak-ng binary (Debian package espeak-ng), resampled to sample_rate.
    engine: Literal["tone", "espeak"] = "tone"
    espeak_binary: str = "espeak-ng"
    # Write WAV headers as a streaming server does (RIFF and data sizes 0xFFFFFFFF).
    streaming_wav_header: bool = False
    # -- vLLM-Omni mode (protocol openai) ---------------------------------------------------
    # Prefix of the engine's own metric families: recent sources write `vllm_omni:`, older
    # ones `vllm:omni_`; vLLM's `vllm:` families are the same in both.
    metric_prefix: Literal["vllm_omni:", "vllm:omni_"] = "vllm_omni:"
    # Requests beyond this many in flight are counted as waiting, not running (vLLM's scheduler).
    max_num_seqs: int = Field(default=4, ge=1)
    # Streaming: seconds of audio per chunk, and generation time per second of audio
    # (real-time factor): healthy well below 1, the `underrun` fault above it.
    stream_chunk_seconds: float = Field(default=0.2, gt=0)
    stream_rtf: float = Field(default=0.1, ge=0)
    underrun_rtf: float = Field(default=1.6, gt=0)

    @field_validator("version_fault")
    @classmethod
    def _inference_fault(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_fault(value, INFERENCE)
            except FaultError as exc:
                raise ValueError(str(exc)) from None
        return value
