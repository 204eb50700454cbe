"""Streamed synthesis in vLLM-Omni mode: `stream: true` over HTTP (SSE or raw audio) and the WebSocket.

HTTP: the headers go out first, as from the real server, then the chunks as the model makes
them; a hung engine holds the request after the headers. Errors found before streaming are
ordinary JSON errors; one during an SSE stream is a `speech.audio.error` event.
WebSocket `/v1/audio/speech/stream`: `session.config`, `input.text`..., `input.done` per
utterance (answered by `audio.start`, binary PCM frames, `audio.done`, `session.done`),
`session.close`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.engine_metrics import EngineMetrics, StreamStats
from tts_sentinel.simulator.faults import FaultState
from tts_sentinel.simulator.service import Reply, Stream
from tts_sentinel.simulator.streaming import SSE_ERROR, PacedStream, audio_body, pcm16, sse_body, sse_event
from tts_sentinel.simulator.websocket import WebSocketClosed, WebSocketConnection

WS_IDLE_SECONDS = 60.0


@dataclass(frozen=True)
class SpeechRequest:
    """What one synthesis request asks for."""

    text: str
    lang: str
    speaker: str
    instructions: str = ""
    openai: bool = True


class SpeechEngine(Protocol):
    """What streaming needs from the inference service."""

    config: SimulatorConfig
    fault: FaultState
    metrics: EngineMetrics
    log: logging.Logger
    requests: int

    def generate(self, request: SpeechRequest) -> tuple[np.ndarray, int]: ...  # noqa: D102

    def log_done(self, request: SpeechRequest, audio_seconds: float, elapsed: float) -> None: ...  # noqa: D102

    def check_voice(self, voice: str) -> None: ...  # noqa: D102


def _message(reply: Reply) -> str:
    error = reply.payload.get("error") if isinstance(reply.payload, dict) else None
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


class StreamingSpeech:
    """The streaming endpoints of one inference service."""

    def __init__(self, engine: SpeechEngine) -> None:
        self.engine = engine

    def _admit(self) -> float:
        self.engine.requests += 1
        self.engine.metrics.admit()
        return time.monotonic()

    def _rtf(self) -> float:
        config = self.engine.config
        return config.underrun_rtf if self.engine.fault.name == "underrun" else config.stream_rtf

    def _paced(self, samples: np.ndarray, rate: int, arrived: float) -> PacedStream:
        return PacedStream(samples, rate, self.engine.config.stream_chunk_seconds, self._rtf(), arrived,
                           on_chunk=self.engine.metrics.generated)

    def _ended(self, request: SpeechRequest, paced: PacedStream | None, arrived: float, complete: bool) -> None:
        """Account for one streamed request: finished, aborted by the client, or failed."""
        metrics = self.engine.metrics
        metrics.release()
        if paced is None:
            metrics.failed()
        elif not complete:
            metrics.aborted()
        else:
            elapsed = time.monotonic() - arrived
            audio_seconds = len(paced.samples) / paced.sample_rate
            self.engine.log_done(request, audio_seconds, elapsed)
            metrics.finished(elapsed, audio_seconds, len(paced.samples))
            metrics.streamed(StreamStats(paced.first_packet_seconds(), paced.worst_underrun_seconds()))

    # -- HTTP ------------------------------------------------------------------------------

    def http_stream(self, request: SpeechRequest, stream_format: str, response_format: str) -> Stream:
        """POST /v1/audio/speech with stream: SSE events or raw audio bytes."""
        arrived = self._admit()
        generated: tuple[np.ndarray, int] | None = None
        if self.engine.fault.name != "hung_engine":
            try:
                generated = self.engine.generate(request)
            except Reply:
                self._ended(request, None, arrived, False)
                raise
        if stream_format == "sse":
            content_type = "text/event-stream"
        else:
            content_type = "audio/wav" if response_format == "wav" else "audio/pcm"
        return Stream(content_type, self._http_body(request, generated, arrived, stream_format, response_format))

    def _http_body(self, request: SpeechRequest, generated: tuple[np.ndarray, int] | None, arrived: float,
                   stream_format: str, response_format: str) -> Iterator[bytes]:
        paced: PacedStream | None = None
        complete = False
        try:
            if generated is None:
                self.engine.fault.hold(self.engine.config.hang_seconds, "hung_engine")
                generated = self.engine.generate(request)
            paced = self._paced(*generated, arrived)
            body = sse_body(paced, response_format) if stream_format == "sse" else audio_body(paced, response_format)
            yield from body
            complete = True
        except Reply as reply:
            if stream_format == "sse":
                yield sse_event(SSE_ERROR, {"error": {"message": _message(reply), "code": reply.status}})
        finally:
            self._ended(request, paced, arrived, complete)

    # -- WebSocket -------------------------------------------------------------------------

    def websocket_session(self, ws: WebSocketConnection) -> None:
        """Serve one WebSocket connection until session.close, a close frame or an idle timeout."""
        config: dict[str, Any] = {}
        buffered: list[str] = []
        utterance = 0
        try:
            while True:
                message = ws.recv_json(WS_IDLE_SECONDS)
                kind = message.get("type")
                if kind == "session.config":
                    if buffered:
                        ws.send_json({"type": "error", "message": "session.config while text is buffered"})
                    else:
                        config = message
                elif kind == "input.text":
                    buffered.append(str(message.get("text", "")))
                elif kind == "input.done":
                    self._utterance(ws, config, "".join(buffered), utterance)
                    buffered, utterance = [], utterance + 1
                elif kind == "session.close":
                    return
                else:
                    ws.send_json({"type": "error", "message": f"unknown message type {kind!r}"})
        except WebSocketClosed:
            pass
        finally:
            ws.close()

    def _utterance(self, ws: WebSocketConnection, config: dict[str, Any], text: str, index: int) -> None:
        if not text.strip():
            ws.send_json({"type": "session.done", "utterance_index": index, "total_sentences": 0})
            return
        voice = str(config.get("voice", self.engine.config.speakers[0]))
        request = SpeechRequest(text, str(config.get("language", "Auto")), voice, str(config.get("instructions", "")))
        arrived = self._admit()
        paced: PacedStream | None = None
        complete = False
        try:
            self.engine.check_voice(voice)
            self.engine.fault.hold(self.engine.config.hang_seconds, "hung_engine")
            samples, rate = self.engine.generate(request)
        except Reply as reply:
            self._ended(request, None, arrived, False)
            ws.send_json({"type": "error", "message": _message(reply)})
            return
        try:
            paced = self._paced(samples, rate, arrived)
            ws.send_json({"type": "audio.start", "utterance_index": index, "sentence_index": 0,
                          "sentence_text": text, "format": "pcm", "sample_rate": rate})
            sent = 0
            if config.get("stream_audio"):
                for chunk in paced.chunks():
                    data = pcm16(chunk)
                    ws.send_binary(data)
                    sent += len(data)
            else:
                data = b"".join(pcm16(chunk) for chunk in paced.chunks())
                ws.send_binary(data)
                sent = len(data)
            ws.send_json({"type": "audio.done", "utterance_index": index, "sentence_index": 0,
                          "total_bytes": sent, "error": False})
            ws.send_json({"type": "session.done", "utterance_index": index, "total_sentences": 1})
            complete = True
        finally:
            self._ended(request, paced, arrived, complete)
