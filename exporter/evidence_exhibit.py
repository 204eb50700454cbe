"""What a failing probe hands over as evidence: its clip, the baseline clip, the checks it measured.

An Exhibit is plain data built by the prober where it decides a failure; the EvidenceStore
(exporter/evidence.py) turns it into files. Checks carry the measured value, the threshold
and how they compare, so a person sees *how far* a check missed, not only that it did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tts_sentinel.exporter.audio.checks import AudioReport
from tts_sentinel.exporter.audio.wav import Audio
from tts_sentinel.exporter.probes.config import AudioLimitsConfig


@dataclass(frozen=True)
class Check:
    """One measured check: `value op threshold` passes (op is one of >=, <=, >, <, ==)."""

    name: str
    value: float | None
    op: str
    threshold: float | None
    passed: bool
    unit: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (values rounded for people)."""
        def rounded(x: float | None) -> float | None:
            return None if x is None else round(float(x), 4)

        return {"name": self.name, "value": rounded(self.value), "op": self.op,
                "threshold": rounded(self.threshold), "passed": self.passed, "unit": self.unit,
                "note": self.note}


def measured(name: str, value: float, op: str, threshold: float, unit: str = "") -> Check:
    """A Check whose verdict is computed from value, op and threshold."""
    verdicts = {">=": value >= threshold, "<=": value <= threshold, ">": value > threshold,
                "<": value < threshold, "==": value == threshold}
    return Check(name, value, op, threshold, bool(verdicts[op]), unit)


@dataclass
class Exhibit:
    """The evidence of one failed cell of one probe run.

    `probe` is the prober kind (synthesis, semantic, quality, streaming), `cell` the
    language/speaker plus the style or sample name. `clip` is the audio the service
    returned (None when it returned none), `baseline` the recorded healthy clip of the same
    cell, `f0`/`template_f0` voiced F0 contours in Hz for the pitch plot.
    """

    probe: str
    cell: dict[str, str]
    reasons: list[str]
    detail: str
    checks: list[Check] = field(default_factory=list)
    text: str = ""
    clip: Audio | None = None
    baseline: Audio | None = None
    f0: np.ndarray | None = None
    template_f0: np.ndarray | None = None
    time: float = field(default_factory=time.time)


def speech_checks(report: AudioReport, limits: AudioLimitsConfig) -> list[Check]:
    """The L2 checks of `check_speech` with their values and thresholds (exporter/audio/checks.py)."""
    return [
        Check("sample_rate", report.sample_rate, "==", limits.sample_rate,
              report.sample_rate == limits.sample_rate, "Hz"),
        measured("duration (too_short)", report.duration_seconds, ">", limits.min_seconds, "s"),
        measured("duration (too_long)", report.duration_seconds, "<=", report.max_seconds, "s"),
        measured("silence_ratio", report.silence_ratio, "<=", limits.max_silence_ratio),
        measured("zero_run", report.longest_zero_run_seconds, "<=", limits.max_zero_run_seconds, "s"),
        measured("clipping_ratio", report.clipping_ratio, "<=", limits.max_clipping_ratio),
    ]


def request_check(reason: str, detail: str) -> list[Check]:
    """A request that gave no audio (timeout, connection, http_status, bad_wav): one failed check."""
    return [Check(f"request ({reason})", None, "", None, False, note=detail[:300])]
