"""Is this WAV speech-shaped audio? The L2 checks, in numpy, on frames of 10 ms.

Each check maps to one fixed failure reason; the first failing check in the order
below is the verdict (an all-zero clip is `silent`, not also `zero_run`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tts_sentinel.exporter.audio.wav import Audio
from tts_sentinel.exporter.probes.config import AudioLimitsConfig


@dataclass(frozen=True)
class AudioReport:
    """What the checks measured, and the first failure (None when the audio passes)."""

    duration_seconds: float
    sample_rate: int
    max_seconds: float
    silence_ratio: float
    clipping_ratio: float
    longest_zero_run_seconds: float
    reason: str | None
    detail: str


def frames(samples: np.ndarray, frame_len: int) -> np.ndarray:
    """Samples cut into whole frames (rows); the partial last frame is dropped."""
    n = len(samples) // frame_len
    return samples[: n * frame_len].reshape(n, frame_len)


def frame_rms(samples: np.ndarray, frame_len: int) -> np.ndarray:
    """RMS of each whole frame."""
    f = frames(samples, frame_len)
    return np.sqrt(np.mean(f * f, axis=1)) if len(f) else np.zeros(0)


def longest_true_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in a boolean array."""
    if not mask.any():
        return 0
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return int(np.max(edges[1::2] - edges[::2]))


def text_units(text: str) -> int:
    """Characters that are spoken (whitespace excluded): the scale of the duration bound."""
    return sum(1 for ch in text if not ch.isspace())


def check_speech(audio: Audio, limits: AudioLimitsConfig, text: str) -> AudioReport:
    """Run the L2 checks on `audio` synthesised from `text`."""
    x = audio.samples
    rate = audio.sample_rate
    duration = audio.duration_seconds
    max_seconds = limits.max_seconds_base + limits.max_seconds_per_char * text_units(text)
    frame_len = max(1, int(round(limits.frame_seconds * rate)))
    rms = frame_rms(x, frame_len)
    floor = 10 ** (limits.silence_threshold_dbfs / 20)
    silence_ratio = float(np.mean(rms < floor)) if len(rms) else 1.0
    clipping_ratio = float(np.mean(np.abs(x) >= limits.clipping_level)) if len(x) else 0.0
    zero_frames = ~frames(x, frame_len).any(axis=1)
    zero_run = longest_true_run(zero_frames) * frame_len / rate

    def report(reason: str | None, detail: str) -> AudioReport:
        return AudioReport(duration, rate, max_seconds, silence_ratio, clipping_ratio, zero_run, reason, detail)

    if rate != limits.sample_rate:
        return report("sample_rate", f"sample rate {rate} Hz, expected {limits.sample_rate} Hz")
    if duration <= limits.min_seconds:
        return report("too_short", f"{duration:.2f}s, expected more than {limits.min_seconds}s")
    if duration > max_seconds:
        return report("too_long", f"{duration:.2f}s for {text_units(text)} characters, "
                                  f"bound {max_seconds:.1f}s (runaway generation?)")
    if not len(rms) or float(np.max(rms)) < floor:
        return report("silent", "no frame above the silence level: the audio is silent")
    # Before the silence ratio: a dropped stream chunk also raises the ratio, but is a zero run.
    if zero_run > limits.max_zero_run_seconds:
        return report("zero_run", f"{zero_run:.2f}s of all-zero frames (max {limits.max_zero_run_seconds}s)")
    if silence_ratio > limits.max_silence_ratio:
        return report("silent", f"silence ratio {silence_ratio:.2f} (max {limits.max_silence_ratio})")
    if clipping_ratio > limits.max_clipping_ratio:
        return report("clipping", f"clipping ratio {clipping_ratio:.4f} (max {limits.max_clipping_ratio})")
    return report(None, f"{duration:.2f}s, silence {silence_ratio:.2f}, zero run {zero_run:.2f}s")


def envelope_fluctuation(samples: np.ndarray, sample_rate: int, frame_seconds: float = 0.01,
                         active_dbfs: float = -50.0) -> float:
    """Coefficient of variation of the 10 ms RMS over active frames (speech ~0.6-0.95, tones < 0.05)."""
    rms = frame_rms(samples, max(1, int(round(frame_seconds * sample_rate))))
    active = rms[rms >= 10 ** (active_dbfs / 20)]
    if len(active) < 2:
        return 0.0
    return float(np.std(active) / np.mean(active))
