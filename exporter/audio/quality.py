"""Objective quality against a baseline recording of the same text: STOI, optional PESQ.

Both compare time-aligned signals, so the degraded clip is first shifted by the lag
that maximises its cross-correlation with the reference (FFT-based, numpy).
PESQ comes from the optional `pesq` package (pip install '.[pesq]'); its bundled ITU
reference code restricts commercial use, so it is off unless configured.
"""

from __future__ import annotations

import numpy as np


def align(reference: np.ndarray, degraded: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Both signals cut to their overlap after the best cross-correlation lag; (ref, deg, lag)."""
    n = len(reference) + len(degraded) - 1
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(reference, size) * np.conj(np.fft.rfft(degraded, size)), size)
    # corr[k] peaks where degraded[t] best matches reference[t + k] (negative k wraps around).
    lags = np.concatenate((corr[-(len(degraded) - 1):], corr[: len(reference)]))
    # No correlation at all (a silent clip): no lag, rather than the first index's 1-sample overlap.
    lag = int(np.argmax(lags)) - (len(degraded) - 1) if np.any(lags) else 0
    if lag >= 0:
        ref, deg = reference[lag:], degraded
    else:
        ref, deg = reference, degraded[-lag:]
    m = min(len(ref), len(deg))
    return ref[:m], deg[:m], lag


def stoi_score(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> float:
    """STOI (pystoi, 0..1) of the aligned degraded clip against the reference."""
    from pystoi import stoi

    ref, deg, _ = align(reference, degraded)
    if not np.any(deg):
        return 0.0  # silence carries no intelligibility (pystoi itself cannot score it)
    return float(stoi(ref, deg, sample_rate, extended=False))


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited resampling by FFT (numpy only; enough for PESQ's 16 kHz input)."""
    if rate == target:
        return samples
    n = int(round(len(samples) * target / rate))
    spectrum = np.fft.rfft(samples)
    keep = n // 2 + 1
    spectrum = spectrum[:keep] if len(spectrum) >= keep else np.pad(spectrum, (0, keep - len(spectrum)))
    return np.fft.irfft(spectrum, n) * (n / len(samples))


def pesq_score(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> float | None:
    """Wide-band PESQ (MOS-LQO) at 16 kHz, or None when the optional `pesq` package is missing."""
    try:
        from pesq import pesq
    except ImportError:
        return None
    ref, deg, _ = align(reference, degraded)
    return float(pesq(16000, resample(ref, sample_rate, 16000), resample(deg, sample_rate, 16000), "wb"))
