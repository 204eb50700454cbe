"""The inference service (supervisord program `tts-inference`): synthesis API and self-check log.

Speaks the seed's protocol (GET /health {"status":"ok"}, POST /tts) or vLLM-Omni's
(GET /health empty 200 or 503, POST /v1/audio/speech plain or streamed, the WebSocket
/v1/audio/speech/stream, GET /v1/audio/voices, GET /metrics), as configured. Writes
inference.log (one line per request) and health.log (a self-check line every
`self_check_interval_seconds`).
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST

from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.engine_log import (
    ENGINE_DEAD_MESSAGE,
    NO_AUDIO_LINE,
    log_engine_dead_request,
    log_engine_fatal,
    log_no_audio,
    log_stall,
)
from tts_sentinel.simulator.engine_metrics import EngineMetrics
from tts_sentinel.simulator.espeak import EspeakError, espeak_synthesize
from tts_sentinel.simulator.faults import INFERENCE
from tts_sentinel.simulator.service import Answer, Component, Reply, ServiceHandler, WebSocketUpgrade
from tts_sentinel.simulator.speech_stream import SpeechRequest, StreamingSpeech
from tts_sentinel.simulator.voice import detect_style, synthesize
from tts_sentinel.simulator.wavfile import write_wav
from tts_sentinel.simulator.websocket import is_upgrade

# Zero-width space, BOM, bidi marks and C0 controls: the inputs the seed says break preprocessing.
_BAD_CHARS = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\x00-\x08\x0b\x0c\x0e-\x1f]",
)
_SILENT_FAULTS = ("silent", "unicode", "oom")
_ENGINE_DEAD = ("oom", "load_timeout", "engine_fatal")
UNDERFLOW_CHUNK = 2048
WRONG_RATE = 16000


class InferenceService(Component):
    """The model process: synthesises audio and plays the audio and engine faults."""

    name = INFERENCE

    def __init__(self, config: SimulatorConfig, log: logging.Logger, health_log: logging.Logger) -> None:
        super().__init__(config, log)
        self.health_log = health_log
        self.underflows = 0
        self.requests = 0
        self._stop = threading.Event()
        self.metrics = EngineMetrics(config)
        self.streaming = StreamingSpeech(self)
        if config.version_fault:
            self.fault.set(config.version_fault)

    # -- lifecycle -------------------------------------------------------------------------

    def load_model(self) -> None:
        """Simulated weight loading (the seed times it out at 15 s)."""
        started = time.monotonic()
        self.log.info("Loading model %s", self.config.model_name)
        time.sleep(self.config.model_load_seconds)
        self.log.info("Model %s loaded in %.2fs", self.config.model_name, time.monotonic() - started)

    def start_self_check(self) -> threading.Thread:
        """Background thread writing health.log lines; stops with stop_self_check()."""
        thread = threading.Thread(target=self._self_check_loop, name="self-check", daemon=True)
        thread.start()
        return thread

    def stop_self_check(self) -> None:
        """End the self-check thread."""
        self._stop.set()

    def _self_check_loop(self) -> None:
        while not self._stop.wait(self.config.self_check_interval_seconds):
            self.self_check()

    def self_check(self) -> None:
        """One health.log line: the seed's silent-output signal, or the GPU/CUDA/buffer summary."""
        if self.fault.name == "hung_engine":
            log_stall(self.log)  # a hung engine still passes its own self-check: that is the trap
        if self.fault.name in _SILENT_FAULTS:
            self._log_silent()
        else:
            self.health_log.info(
                "Self check ok: GPU 0 temperature 61C, CUDA context ok, buffer underflows %d",
                self.underflows,
            )

    def _log_silent(self) -> None:
        seconds = round(self.config.self_check_interval_seconds)
        self.health_log.warning("Health check failed: audio output silent for %ds", seconds)

    # -- faults ----------------------------------------------------------------------------

    def on_fault(self, name: str) -> None:
        """The log lines the seed shows when each fault starts."""
        if name == "oom":
            self.log.error("[CUDA] Out of memory on device 0")
        elif name == "unicode":
            self.log.error("Text preprocessing failed: invalid unicode sequence at pos 17")
        elif name == "underflow":
            self._log_underflow(3)  # the seed: three in a row means streaming is broken
        elif name == "load_timeout":
            self.log.error("Model load timeout > 15s")
        elif name == "engine_fatal":
            log_engine_fatal(self.log)
        if name in ("silent", "unicode", "oom"):
            self._log_silent()
        super().on_fault(name)

    def _log_underflow(self, count: int) -> None:
        for _ in range(count):
            self.underflows += 1
            self.log.warning("Stream buffer underflow: expected %d samples, got 0", UNDERFLOW_CHUNK)

    # -- HTTP ------------------------------------------------------------------------------

    def route(self, handler: ServiceHandler, method: str, path: str) -> Answer:
        """Health, synthesis, voices and (vLLM-Omni) metrics for the configured protocol."""
        self.fault.hold(self.config.hang_seconds)
        openai = self.config.protocol == "openai"
        if path == "/health" and method in ("GET", "HEAD"):
            return self._health(openai)
        if openai and path == "/metrics" and method == "GET":
            return 200, CONTENT_TYPE_LATEST, self.metrics.exposition()
        if self.fault.name == "error500":
            raise self._error(500, "internal server error (injected)", openai)
        if openai and path.startswith("/v1/"):
            self._authorize(handler)
            if path == "/v1/audio/voices" and method == "GET":
                raise Reply(200, {"voices": self.config.speakers})
            if path == "/v1/models" and method == "GET":
                model: dict[str, object] = {"id": self.config.model_name, "object": "model",
                                            "owned_by": "vllm", "root": self.config.model_name}
                if self.config.weights_sha256:
                    # Not a vLLM field: the simulator's stand-in for the operator's weights manifest.
                    model["weights_sha256"] = self.config.weights_sha256
                raise Reply(200, {"object": "list", "data": [model]})
            if path == "/v1/audio/speech" and method == "POST":
                return self._speech_openai(handler.json_body())
            if path == "/v1/audio/speech/stream" and method == "GET" and is_upgrade(handler):
                return WebSocketUpgrade(self.streaming.websocket_session)
        if not openai and path == "/tts" and method == "POST":
            return self._speech_seed(handler.json_body())
        raise self._error(404, f"no route {method} {path}", openai)

    def _health(self, openai: bool) -> tuple[int, str, bytes]:
        if self.fault.name == "error500":
            raise Reply(500, {"status": "error"})
        if openai:
            # vLLM-Omni: 200 with an empty body, 503 once the engine is dead (a hung one stays 200).
            return (503, "", b"") if self.fault.name in _ENGINE_DEAD else (200, "", b"")
        if self.fault.name == "load_timeout":
            raise Reply(503, {"status": "model not loaded"})
        raise Reply(200, {"status": "ok"})

    def _authorize(self, handler: ServiceHandler) -> None:
        if not self.config.api_key:
            return
        given = handler.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.config.api_key}".encode()):
            raise self._error(401, "missing or wrong bearer token", True)

    @staticmethod
    def _error(status: int, message: str, openai: bool, kind: str = "") -> Reply:
        if openai:
            kind = kind or ("invalid_request_error" if status < 500 else "server_error")
            return Reply(status, {"error": {"message": message, "type": kind, "param": None, "code": status}})
        return Reply(status, {"error": message})

    def check_voice(self, voice: str) -> None:
        """Reply 400 unless the voice is one of the model's speakers."""
        if voice not in self.config.speakers:
            raise self._error(400, f"voice {voice!r} not found; GET /v1/audio/voices lists them", True)

    def _speech_seed(self, data: dict[str, Any]) -> tuple[int, str, bytes]:
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Reply(400, {"error": 'expected {"text": non-empty string, "lang": ..., "speaker": ...}'})
        speaker = str(data.get("speaker", self.config.speakers[0]))
        instructions = str(data.get("instructions", data.get("style", "")))
        return self._speak(SpeechRequest(text, str(data.get("lang", "auto")), speaker, instructions, openai=False))

    def _speech_openai(self, data: dict[str, Any]) -> Answer:
        text = data.get("input")
        if not isinstance(text, str) or not text.strip():
            raise self._error(400, "'input' must be a non-empty string", True)
        voice = str(data.get("voice", self.config.speakers[0]))
        self.check_voice(voice)
        request = SpeechRequest(text, str(data.get("language", "Auto")), voice, str(data.get("instructions", "")),
                                openai=True)
        response_format = data.get("response_format", "wav")
        stream_format = data.get("stream_format")
        if data.get("stream") or stream_format is not None:
            if stream_format not in (None, "sse", "audio"):
                raise self._error(400, "stream_format must be 'sse' or 'audio'", True)
            if response_format not in ("wav", "pcm"):
                raise self._error(400, "streaming needs response_format 'pcm' or 'wav'", True)
            return self.streaming.http_stream(request, stream_format or "sse", response_format)
        if response_format != "wav":
            raise self._error(400, "only response_format 'wav' is supported here", True)
        return self._speak(request)

    def _speak(self, request: SpeechRequest) -> tuple[int, str, bytes]:
        started = time.monotonic()
        self.requests += 1
        self.metrics.admit()
        try:
            self.fault.hold(self.config.hang_seconds, "hung_engine")
            samples, rate = self.generate(request)
            body = b"<html>502 upstream error</html>" if self.fault.name == "corrupt" else write_wav(
                samples, rate, streaming_header=self.config.streaming_wav_header,
            )
            elapsed = time.monotonic() - started
            self.log_done(request, len(samples) / rate, elapsed)
            self.metrics.generated(len(samples) / rate)
            self.metrics.finished(elapsed, len(samples) / rate, len(samples))
            return 200, "audio/wav", body
        except Reply:
            self.metrics.failed()
            raise
        finally:
            self.metrics.release()

    def log_done(self, request: SpeechRequest, audio_seconds: float, elapsed: float) -> None:
        """The per-request line of inference.log."""
        self.log.info(
            "TTS done: lang=%s speaker=%s style=%s chars=%d audio=%.2fs elapsed=%.3fs gpu_mem_peak=%.2fGB",
            request.lang, request.speaker, detect_style(request.text, request.instructions), len(request.text),
            audio_seconds, elapsed, 3.4 + 0.001 * len(request.text),
        )

    def generate(self, request: SpeechRequest) -> tuple[np.ndarray, int]:
        """Samples and sample rate for one request, or the Reply its fault causes."""
        text, openai = request.text, request.openai
        if len(text) > self.config.max_text_chars:
            raise self._error(400, f"text has {len(text)} characters; the limit is {self.config.max_text_chars}",
                              openai)
        fault = self.fault.name
        if fault == "oom":
            self.log.error("[CUDA] Out of memory on device 0")
            raise self._error(500, "CUDA out of memory", openai)
        if fault == "load_timeout":
            raise self._error(503, "model is not loaded (load timed out)", openai)
        if fault == "engine_fatal":
            log_engine_dead_request(self.log)
            raise self._error(500, ENGINE_DEAD_MESSAGE, openai)
        if fault == "no_audio":
            log_no_audio(self.log)
            self.metrics.skipped("no_audio_data")
            raise self._error(400, NO_AUDIO_LINE, openai, kind="BadRequestError")
        bad = _BAD_CHARS.search(text)
        if bad:
            # The seed: preprocessing enters a protection mode and every later request is silent.
            self.log.error("Text preprocessing failed: invalid unicode sequence at pos %d", bad.start())
            self.fault.set("unicode")
            fault = "unicode"
        rate = self.config.sample_rate
        samples = self._render(text, request.speaker, detect_style(text, request.instructions), fault)
        if fault == "wrong_rate":
            n = int(len(samples) * WRONG_RATE / rate)
            samples = np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples)
            rate = WRONG_RATE
        return samples, rate

    def _voice(self, text: str, speaker: str, style: str, monotone: bool = False) -> np.ndarray:
        if self.config.engine == "espeak":
            try:
                return espeak_synthesize(text, speaker, style, self.config.sample_rate, monotone,
                                         self.config.espeak_binary)
            except EspeakError as exc:
                self.log.error("Synthesis engine failed: %s", exc)
                raise Reply(500, {"error": str(exc)}) from None
        return synthesize(text, speaker, style, self.config.sample_rate, monotone=monotone)

    def _render(self, text: str, speaker: str, style: str, fault: str) -> np.ndarray:
        rate = self.config.sample_rate
        if fault == "runaway":
            # Runaway generation: the decoder does not stop; tens of seconds for a short input.
            return self._voice((text * 8)[: 8 * 200], speaker, style)
        samples = self._voice(text, speaker, style, monotone=fault == "monotone")
        if fault in ("silent", "unicode"):
            return np.zeros_like(samples)
        if fault == "noise":
            return 0.1 * np.random.default_rng().standard_normal(len(samples))
        if fault == "truncated":
            return samples[: int(0.4 * rate)]
        if fault == "clipping":
            return np.clip(samples * 8.0, -1.0, 1.0)
        if fault == "underflow":
            # Twelve chunks never arrived: a second of exact zeros mid-utterance.
            self._log_underflow(1)
            gap = 12 * UNDERFLOW_CHUNK
            start = max(0, len(samples) // 2 - gap // 2)
            samples = samples.copy()
            samples[start:start + gap] = 0.0
        return samples
