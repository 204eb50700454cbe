"""Streamed speech as vLLM-Omni sends it: paced PCM chunks, as raw WAV bytes or as SSE events.

The model is simulated as a generator that needs `rtf` seconds of work per second of audio:
each chunk leaves when its share of the work is done. Below 1 the stream runs ahead of a
listener; above 1 (the `underrun` fault) the listener's buffer runs dry. The engine measures
what it sent the way vLLM-Omni does: time to the first audio packet, and the worst deficit of
a player that starts with the first chunk and plays in real time.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from tts_sentinel.simulator.wavfile import write_wav

SSE_DELTA = "speech.audio.delta"
SSE_DONE = "speech.audio.done"
SSE_ERROR = "speech.audio.error"


def pcm16(samples: np.ndarray) -> bytes:
    """Little-endian 16-bit PCM of float samples in [-1, 1]."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def wav_header(sample_rate: int) -> bytes:
    """The 44-byte header of a streamed WAV: sizes unknown (0xFFFFFFFF)."""
    return write_wav(np.zeros(0), sample_rate, streaming_header=True)


@dataclass
class PacedStream:
    """Cuts audio into chunks and releases each when the simulated model has produced it."""

    samples: np.ndarray
    sample_rate: int
    chunk_seconds: float
    rtf: float
    arrived: float = field(default_factory=time.monotonic)
    # Called with the audio seconds of each chunk once it is produced (the engine's token counter).
    on_chunk: Callable[[float], None] = lambda seconds: None
    # Arrival time (monotonic) and audio seconds of every chunk sent so far.
    sent: list[tuple[float, float]] = field(default_factory=list)

    def chunks(self) -> Iterator[np.ndarray]:
        """The chunks, each yielded no earlier than `rtf` x the audio produced up to its end."""
        step = max(1, int(round(self.chunk_seconds * self.sample_rate)))
        produced = 0.0
        for start in range(0, len(self.samples), step):
            chunk = self.samples[start:start + step]
            produced += len(chunk) / self.sample_rate
            delay = self.arrived + self.rtf * produced - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.on_chunk(len(chunk) / self.sample_rate)
            yield chunk
            self.sent.append((time.monotonic(), len(chunk) / self.sample_rate))

    def first_packet_seconds(self) -> float:
        """Seconds from arrival to the first chunk (0 when nothing was sent)."""
        return self.sent[0][0] - self.arrived if self.sent else 0.0

    def worst_underrun_seconds(self) -> float:
        """Worst deficit of a real-time player that starts at the first chunk and never rebuffers."""
        if not self.sent:
            return 0.0
        start, played, worst = self.sent[0][0], 0.0, 0.0
        for at, seconds in self.sent:
            worst = max(worst, at - start - played)
            played += seconds
        return worst


def sse_event(kind: str, payload: dict[str, object]) -> bytes:
    """One server-sent event: an `event:` line and a JSON `data:` line."""
    data = json.dumps({"type": kind, **payload}, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


def sse_body(stream: PacedStream, response_format: str) -> Iterator[bytes]:
    """speech.audio.delta events with base64 audio, then speech.audio.done."""
    header = wav_header(stream.sample_rate) if response_format == "wav" else b""
    for chunk in stream.chunks():
        audio = header + pcm16(chunk)
        header = b""
        yield sse_event(SSE_DELTA, {"audio": base64.b64encode(audio).decode(), "response_format": response_format})
    frames = int(sum(seconds for _, seconds in stream.sent) * stream.sample_rate)
    yield sse_event(SSE_DONE, {"usage": {"input_tokens": 0, "output_tokens": frames, "total_tokens": frames}})


def audio_body(stream: PacedStream, response_format: str) -> Iterator[bytes]:
    """Raw audio bytes as they are produced: a streaming WAV header first when the format is wav."""
    if response_format == "wav":
        yield wav_header(stream.sample_rate)
    for chunk in stream.chunks():
        yield pcm16(chunk)


def guarded(body: Iterator[bytes], on_end: Callable[[bool], None]) -> Iterator[bytes]:
    """`body`, calling on_end(True) once it is sent whole and on_end(False) if the client leaves."""
    complete = False
    try:
        yield from body
        complete = True
    finally:
        on_end(complete)
