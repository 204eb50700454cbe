"""RIFF/WAVE encoding and decoding with numpy, tolerant of streaming headers.

A streaming TTS server writes the header before it knows the length, so the RIFF
and data chunk sizes may be 0xFFFFFFFF (or 0): then the data runs to the end of
the body. The standard library's `wave` rejects such files, hence our own parser.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

STREAMING_SIZE = 0xFFFFFFFF
_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE


class WavError(ValueError):
    """The body is not a WAV we can read; the message says what is wrong with it."""


@dataclass(frozen=True)
class Audio:
    """Mono samples in [-1, 1] at `sample_rate` Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_seconds(self) -> float:
        """Length of the clip in seconds."""
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0


def encode_wav(samples: np.ndarray, sample_rate: int, streaming_header: bool = False) -> bytes:
    """Mono 16-bit PCM WAV bytes of float samples in [-1, 1] (values outside are clipped)."""
    pcm = (np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2")
    data = pcm.tobytes()
    riff_size = STREAMING_SIZE if streaming_header else 36 + len(data)
    data_size = STREAMING_SIZE if streaming_header else len(data)
    fmt = struct.pack("<HHIIHH", _PCM, 1, sample_rate, sample_rate * 2, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", data_size) + data
    )


def _decode_samples(raw: bytes, fmt_tag: int, bits: int, channels: int) -> np.ndarray:
    """Interleaved frames -> float64 mono (channels averaged)."""
    width = bits // 8
    usable = len(raw) - len(raw) % (width * channels)
    raw = raw[:usable]
    if fmt_tag == _FLOAT and bits == 32:
        x = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    elif fmt_tag == _FLOAT and bits == 64:
        x = np.frombuffer(raw, dtype="<f8").copy()
    elif fmt_tag == _PCM and bits == 16:
        x = np.frombuffer(raw, dtype="<i2") / 32768.0
    elif fmt_tag == _PCM and bits == 32:
        x = np.frombuffer(raw, dtype="<i4") / 2147483648.0
    elif fmt_tag == _PCM and bits == 8:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif fmt_tag == _PCM and bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)
    else:
        kind = "float" if fmt_tag == _FLOAT else "PCM"
        raise WavError(f"unsupported sample format: {kind} with {bits} bits per sample")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x


def decode_wav(body: bytes) -> Audio:
    """Parse a WAV body; raise WavError with a reason when it is not a readable RIFF/WAVE."""
    if len(body) < 12 or body[:4] != b"RIFF" or body[8:12] != b"WAVE":
        head = body[:16]
        raise WavError(f"not a RIFF/WAVE body (starts with {head!r}, {len(body)} bytes)")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(body):
        chunk_id = body[pos:pos + 4]
        (size,) = struct.unpack("<I", body[pos + 4:pos + 8])
        start = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or start + 16 > len(body):
                raise WavError("fmt chunk is shorter than 16 bytes")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[start:start + 16])
            if tag == _EXTENSIBLE and size >= 40 and start + 26 <= len(body):
                (tag,) = struct.unpack("<H", body[start + 24:start + 26])
            if channels < 1 or rate < 1 or bits not in (8, 16, 24, 32, 64):
                raise WavError(f"fmt chunk is invalid: {channels} channels, {rate} Hz, {bits} bits")
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError("data chunk comes before the fmt chunk")
            # Streaming writers leave 0xFFFFFFFF (or 0) here: the data runs to the end.
            end = len(body) if size in (STREAMING_SIZE, 0) else min(len(body), start + size)
            tag, channels, rate, bits = fmt
            return Audio(_decode_samples(body[start:end], tag, bits, channels), rate)
        if size == STREAMING_SIZE:
            raise WavError(f"chunk {chunk_id!r} has a streaming size but is not the data chunk")
        pos = start + size + (size & 1)
    raise WavError("no data chunk" if fmt else "no fmt chunk")
