"""F0 contours (pyworld) and their comparison by DTW, for the L3 semantic probe.

Contours are compared in z units: log-F0 of the voiced frames, z-scored per clip,
so a different voice (another mean pitch and range) of the same intonation stays
close, while a changed intonation moves away. DTW is dtaidistance's C
implementation with a Sakoe-Chiba band; the distance is the mean |z_a - z_b|
along the warping path (normalised by path length), so it does not grow with the
clip length. z-scoring hides a flat voice, hence the F0 spread in semitones too.
"""

from __future__ import annotations

import numpy as np

# Below this spread a contour is flat: z-scoring it would only amplify tracker jitter.
FLAT_SPREAD_SEMITONES = 0.2
MIN_VOICED_FRAMES = 10


def f0_contour(samples: np.ndarray, sample_rate: int, method: str = "dio",
               frame_period_ms: float = 5.0) -> np.ndarray:
    """F0 in Hz of the voiced frames (unvoiced frames dropped); dio + stonemask by default."""
    import pyworld  # imported here: only L3 needs it, and it is slow to import

    x = np.ascontiguousarray(samples, dtype=np.float64)
    if method == "harvest":
        f0, t = pyworld.harvest(x, sample_rate, frame_period=frame_period_ms)
    else:
        f0, t = pyworld.dio(x, sample_rate, frame_period=frame_period_ms)
        f0 = pyworld.stonemask(x, f0, t, sample_rate)
    return f0[f0 > 0]


def zscore_log_f0(f0: np.ndarray) -> np.ndarray:
    """log-F0 z-scored within the clip (zeros for a flat contour)."""
    log_f0 = np.log(f0)
    if f0_spread_semitones(f0) < FLAT_SPREAD_SEMITONES:
        return np.zeros_like(log_f0)
    return (log_f0 - np.mean(log_f0)) / np.std(log_f0)


def f0_spread_semitones(f0: np.ndarray) -> float:
    """Standard deviation of the F0 in semitones (0 for a monotone voice).

    Trimmed to the 5th-95th percentiles: F0 trackers jump at voicing edges, and those few
    frames would otherwise give a flat voice a spread of half a semitone.
    """
    if len(f0) < 2:
        return 0.0
    semis = 12.0 * np.log2(f0 / np.median(f0))
    low, high = np.percentile(semis, [5, 95])
    return float(np.std(semis[(semis >= low) & (semis <= high)]))


def dtw_distance(a: np.ndarray, b: np.ndarray, window_ratio: float = 0.2) -> float:
    """Mean absolute difference along the DTW path between two z contours (dtaidistance, C)."""
    from dtaidistance import dtw

    a = np.ascontiguousarray(a, dtype=np.double)
    b = np.ascontiguousarray(b, dtype=np.double)
    window = max(abs(len(a) - len(b)) + 1, int(window_ratio * max(len(a), len(b))))
    path = dtw.warping_path(a, b, window=window, use_c=True)
    i, j = np.array(path).T
    return float(np.mean(np.abs(a[i] - b[j])))
