"""Streaming prober: vLLM-Omni's streamed synthesis over SSE, raw audio bytes and WebSocket.

Per transport it records when each audio chunk arrives and how much audio it carries, then
judges the stream as a listener would hear it: time to the first audio, the worst deficit
of a real-time player started at the first chunk (underrun), gaps longer than the audio
before them, and the total length against the text. A runaway is not read to its end:
reading stops as soon as the audio passes the L2 upper bound. The assembled audio gets the
same checks as L2.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import numpy as np
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException
from websockets.sync.client import ClientConnection, connect

from tts_sentinel.exporter.audio.checks import check_speech, text_units
from tts_sentinel.exporter.audio.wav import Audio, WavError, decode_wav
from tts_sentinel.exporter.probes.config import ProbesConfig, StreamingProbeConfig
from tts_sentinel.exporter.probes.prober import Measurement, Prober, ProbeResult

REASONS = ("timeout", "connection", "http_status", "protocol", "stream_error", "stalled", "slow_first_audio",
           "underrun", "bad_wav", "sample_rate", "too_short", "too_long", "silent", "zero_run", "clipping")
_WAV_HEADER_MAX = 4096


class StreamError(Exception):
    """A stream that could not be read to a verdict: `reason` is a failure reason, the message says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class _Enough(Exception):
    """The audio passed the upper bound: stop reading (a runaway)."""


@dataclass
class StreamRecord:
    """One stream as it arrived: audio bytes, and (arrival time, audio seconds) of every chunk."""

    started: float
    pcm_rate: int
    chunks: list[tuple[float, float]] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    header: bytes = b""
    bytes_per_second: float = 0.0

    def add(self, payload: bytes, at: float) -> None:
        """Append received audio bytes; a leading WAV header is kept apart and sets the byte rate."""
        if not payload:
            return
        if self._in_header(payload):
            payload = self._take_header(payload)
            if not payload:
                return
        if not self.bytes_per_second:
            self.bytes_per_second = 2.0 * self.pcm_rate
        self.data += payload
        self.chunks.append((at, len(payload) / self.bytes_per_second))

    def _in_header(self, payload: bytes) -> bool:
        """True while the bytes belong to a WAV header: one is being read, or the stream opens with RIFF."""
        if self.header:
            return not self.bytes_per_second
        return not self.data and payload[:4] == b"RIFF"

    def _take_header(self, payload: bytes) -> bytes:
        buf = self.header + payload
        end = buf.find(b"data", 12)
        if end < 0 or end + 8 > len(buf):
            if len(buf) > _WAV_HEADER_MAX:
                raise StreamError("bad_wav", f"no data chunk in the first {_WAV_HEADER_MAX} bytes of the WAV stream")
            self.header = buf
            return b""
        fmt = buf.find(b"fmt ", 12)
        if fmt < 0 or fmt + 24 > end:
            raise StreamError("bad_wav", "the WAV stream has no fmt chunk before its data")
        (byte_rate,) = struct.unpack("<I", buf[fmt + 16:fmt + 20])
        if byte_rate <= 0:
            raise StreamError("bad_wav", "the WAV stream's fmt chunk gives a byte rate of 0")
        self.header, self.bytes_per_second = buf[:end + 8], float(byte_rate)
        return buf[end + 8:]

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio received so far."""
        return sum(seconds for _, seconds in self.chunks)

    def first_audio_seconds(self) -> float | None:
        """Seconds from the request to the first audio bytes (None when none came)."""
        return self.chunks[0][0] - self.started if self.chunks else None

    def worst_underrun_seconds(self) -> float:
        """Worst deficit of a player that starts with the first chunk and plays in real time."""
        if not self.chunks:
            return 0.0
        start, played, worst = self.chunks[0][0], 0.0, 0.0
        for at, seconds in self.chunks:
            worst = max(worst, at - start - played)
            played += seconds
        return worst

    def late_chunks(self) -> int:
        """Chunks that came later after the one before than the audio that one carried."""
        return sum(1 for (a, seconds), (b, _) in zip(self.chunks, self.chunks[1:], strict=False) if b - a > seconds)

    def audio(self) -> Audio:
        """The assembled audio: a WAV when the stream started with a header, else 16-bit PCM."""
        if self.header:
            return decode_wav(self.header + bytes(self.data))
        raw = bytes(self.data[: len(self.data) - len(self.data) % 2])
        return Audio(np.frombuffer(raw, dtype="<i2") / 32768.0, self.pcm_rate)


class StreamReader:
    """What every transport shares: the deadline, the bound, and recording what arrives."""

    def __init__(self, config: StreamingProbeConfig) -> None:
        self.config = config
        self.started = time.monotonic()
        self.deadline = self.started + config.request.timeout_seconds
        self.max_seconds = config.audio.max_seconds_base + config.audio.max_seconds_per_char * text_units(config.text)
        self.record = StreamRecord(self.started, config.pcm_sample_rate)
        self.stopped_at_bound = False

    def request_sent(self) -> None:
        """Start the clock at the request: building an httpx client (its TLS context, 0.2-0.4 s on a
        loaded 2-CPU host, even for http://) is the prober's time, not the server's."""
        self.started = self.record.started = time.monotonic()
        self.deadline = self.started + self.config.request.timeout_seconds

    def audio_bytes(self, payload: bytes) -> None:
        """Record audio bytes as they arrive; raise _Enough once past the upper bound."""
        self.record.add(payload, time.monotonic())
        if self.record.audio_seconds > self.max_seconds:
            self.stopped_at_bound = True
            raise _Enough
        if time.monotonic() > self.deadline:
            self.no_progress(f"the stream was still running after {self.config.request.timeout_seconds}s")

    def wait_seconds(self) -> float:
        """How long the next read may wait: the stall bound, never past the deadline."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.no_progress(f"the stream was still running after {self.config.request.timeout_seconds}s")
        return min(self.config.stall_timeout_seconds, left)

    def no_progress(self, why: str) -> None:
        """Raise `timeout` before the first audio, `stalled` after it."""
        if self.record.chunks:
            raise StreamError("stalled", f"{why} ({self.record.audio_seconds:.2f}s of audio received)")
        raise StreamError("timeout", f"{why}; no audio arrived")


def _read_http(reader: StreamReader, stream_format: str) -> None:
    config = reader.config
    body = config.request.body(config.text, config.lang, config.speaker, config.instructions)
    body.update(stream=True, stream_format=stream_format, response_format=config.response_format)
    timeout = httpx.Timeout(config.request.timeout_seconds, read=config.stall_timeout_seconds)
    try:
        with httpx.Client(timeout=timeout) as client:
            reader.request_sent()
            with client.stream(config.request.method, config.request.url, json=body,
                               headers=config.request.request_headers()) as response:
                if response.status_code != 200:
                    response.read()
                    raise StreamError("http_status", f"status {response.status_code}: {response.text[:160]}")
                if stream_format == "sse":
                    read_sse_events(reader, response.iter_lines())
                else:
                    for payload in response.iter_bytes():
                        reader.audio_bytes(payload)
    except _Enough:
        pass
    except httpx.TimeoutException:
        reader.no_progress(f"no bytes for {config.stall_timeout_seconds}s")
    except (httpx.HTTPError, OSError) as exc:
        raise StreamError("connection", f"{config.request.url}: {exc.__class__.__name__}: {exc}") from None


def read_sse_events(reader: StreamReader, lines: Iterator[str]) -> None:
    """speech.audio.delta events until speech.audio.done (or an error event)."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].strip())
            continue
        if line or not data:
            continue  # `event:` lines, comments, keep-alives
        try:
            event = json.loads("\n".join(data))
            kind = event["type"]
            audio = base64.b64decode(event["audio"], validate=True) if kind.endswith(".delta") else b""
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise StreamError("protocol", f"unreadable SSE event {data[0][:80]!r}: {exc}") from None
        data = []
        if kind.endswith(".error"):
            raise StreamError("stream_error", f"the server ended the stream: {event.get('error')}")
        if kind.endswith(".done"):
            return
        reader.audio_bytes(audio)
    reader.no_progress("the event stream ended without speech.audio.done")


def _read_websocket(reader: StreamReader) -> None:
    config = reader.config
    url = config.ws_url()
    try:
        with connect(url, additional_headers=config.request.request_headers(), open_timeout=reader.wait_seconds(),
                     proxy=None, compression=None, max_size=2**24, close_timeout=1) as ws:
            session = {"type": "session.config", "voice": config.speaker, "language": config.lang,
                       "response_format": "pcm", "stream_audio": True}
            if config.instructions:
                session["instructions"] = config.instructions
            for message in (session, {"type": "input.text", "text": config.text}, {"type": "input.done"}):
                ws.send(json.dumps(message))
            try:
                _read_ws_messages(reader, ws)
            except _Enough:
                return
            ws.send(json.dumps({"type": "session.close"}))
    except TimeoutError:
        reader.no_progress(f"no message for {config.stall_timeout_seconds}s")
    except (InvalidURI, InvalidHandshake) as exc:
        raise StreamError("http_status", f"{url}: {exc}") from None
    except (WebSocketException, OSError) as exc:
        raise StreamError("connection", f"{url}: {exc.__class__.__name__}: {exc}") from None


def _read_ws_messages(reader: StreamReader, ws: ClientConnection) -> None:
    """audio.start, binary PCM frames, audio.done, until session.done."""
    while True:
        message = ws.recv(timeout=reader.wait_seconds())
        if isinstance(message, bytes):
            reader.audio_bytes(message)
            continue
        try:
            event = json.loads(message)
            kind = event["type"]
        except (ValueError, KeyError, TypeError):
            raise StreamError("protocol", f"unreadable WebSocket message {message[:80]!r}") from None
        if kind == "audio.start" and isinstance(event.get("sample_rate"), int) and event["sample_rate"] > 0:
            reader.record.pcm_rate = event["sample_rate"]
        elif kind == "error" or (kind == "audio.done" and event.get("error")):
            raise StreamError("stream_error", f"the server reported: {event.get('message', event)}")
        elif kind == "session.done":
            return


def _verdict(config: StreamingProbeConfig, reader: StreamReader) -> tuple[str | None, str]:
    """(reason or None, detail) of a stream read to its end or to the bound."""
    record = reader.record
    if reader.stopped_at_bound:
        return "too_long", (f"stopped reading at {record.audio_seconds:.1f}s of audio, bound "
                            f"{reader.max_seconds:.1f}s for {text_units(config.text)} characters (runaway?)")
    try:
        audio = record.audio()
    except WavError as exc:
        return "bad_wav", str(exc)
    report = check_speech(audio, config.audio, config.text)
    if report.reason:
        return report.reason, report.detail
    underrun, first = record.worst_underrun_seconds(), record.first_audio_seconds() or 0.0
    if underrun > config.max_underrun_seconds:
        return "underrun", (f"a real-time player ran dry for {underrun:.2f}s (max {config.max_underrun_seconds}s); "
                            f"{record.late_chunks()} chunks came later than the audio before them")
    if first > config.max_first_audio_seconds:
        return "slow_first_audio", f"first audio after {first:.2f}s (max {config.max_first_audio_seconds}s)"
    return None, f"{report.detail}, first audio {first:.3f}s, underrun {underrun:.3f}s"


def _probe_transport(config: StreamingProbeConfig, transport: str, result: ProbeResult) -> tuple[str | None, str]:
    reader = StreamReader(config)
    labels = {"transport": transport}
    try:
        if transport == "websocket":
            _read_websocket(reader)
        else:
            _read_http(reader, transport)
        reason, detail = _verdict(config, reader)
    except StreamError as exc:
        reason, detail = exc.reason, str(exc)
    record, elapsed = reader.record, time.monotonic() - reader.started
    first = record.first_audio_seconds()
    for name, help_text, value in (
        ("tts_streaming_first_audio_seconds", "Seconds from the request to the first audio (-1: none came).",
         -1.0 if first is None else first),
        ("tts_streaming_underrun_seconds", "Worst deficit of a real-time player started at the first chunk.",
         record.worst_underrun_seconds()),
        ("tts_streaming_late_chunks", "Chunks that came later than the audio of the chunk before them.",
         float(record.late_chunks())),
        ("tts_streaming_chunks", "Audio chunks received.", float(len(record.chunks))),
        ("tts_streaming_audio_seconds", "Seconds of audio received (reading stops at the bound).",
         record.audio_seconds),
        ("tts_streaming_max_audio_seconds", "Duration bound for the probe text (runaway).", reader.max_seconds),
        ("tts_streaming_realtime_factor", "Seconds the stream took per second of audio it carried.",
         elapsed / record.audio_seconds if record.audio_seconds else 0.0),
        ("tts_streaming_success", "1 when the last stream over this transport passed.", 0.0 if reason else 1.0),
    ):
        result.gauges.append(Measurement(name, help_text, labels, value))
    if reason:
        result.counts.append(Measurement("tts_streaming_failures_total", "Streaming failures by transport and "
                                         "reason.", {**labels, "reason": reason}, 1.0))
    return reason, detail


def probe_streaming(config: StreamingProbeConfig, probes: ProbesConfig | None = None) -> ProbeResult:
    """Stream the text over every configured transport; success when every stream passes."""
    result = ProbeResult(success=True, detail="")
    details = []
    for transport in config.transports:
        reason, detail = _probe_transport(config, transport, result)
        details.append(f"{transport}: {detail}")
        if reason:
            result.success = False
            result.reasons.append(reason)
    result.detail = "; ".join(details)
    return result


PROBER = Prober(run=probe_streaming, reasons=REASONS)
