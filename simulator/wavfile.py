"""WAV in and out for the simulator, with the standard library's `wave`.

Deliberately not the exporter's codec: the probes parse what this writes, so a bug
in the exporter's WAV code cannot hide behind the same bug on the serving side.
"""

from __future__ import annotations

import io
import struct
import wave

import numpy as np

# What streaming servers write into the RIFF and data size fields when the length is unknown.
UNKNOWN_SIZE = 0xFFFFFFFF


def write_wav(samples: np.ndarray, sample_rate: int, streaming_header: bool = False) -> bytes:
    """Mono 16-bit PCM WAV of float samples in [-1, 1]; unknown sizes as a streaming server writes them."""
    pcm = (np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    data = bytearray(buf.getvalue())
    if streaming_header:
        struct.pack_into("<I", data, 4, UNKNOWN_SIZE)  # RIFF chunk size
        struct.pack_into("<I", data, 40, UNKNOWN_SIZE)  # data chunk size (wave writes a 44-byte header)
    return bytes(data)


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Float mono samples and the rate of a 16-bit PCM WAV (espeak-ng's output); channels averaged."""
    with wave.open(io.BytesIO(data), "rb") as src:
        if src.getsampwidth() != 2:
            raise ValueError(f"expected 16-bit PCM, got {8 * src.getsampwidth()}-bit")
        channels, rate = src.getnchannels(), src.getframerate()
        raw = src.readframes(src.getnframes())
    pcm = np.frombuffer(raw[: len(raw) - len(raw) % (2 * channels)], dtype="<i2").astype(np.float64) / 32768.0
    return pcm.reshape(-1, channels).mean(axis=1), rate


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Linear-interpolation resampling: enough for a stand-in voice."""
    if rate == target or len(samples) == 0:
        return samples
    n = int(round(len(samples) * target / rate))
    return np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples)
