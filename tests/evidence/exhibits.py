"""Exhibits and stores for the evidence tests: a tone as the clip, a store with the repeat interval off."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tts_sentinel.exporter.audio.wav import Audio
from tts_sentinel.exporter.evidence import EvidenceConfig, EvidenceStore
from tts_sentinel.exporter.evidence_exhibit import Exhibit, measured


def tone(seconds: float = 1.5, rate: int = 24000, hz: float = 220.0) -> Audio:
    """A clip of `seconds` of a sine at -6 dBFS."""
    t = np.arange(int(seconds * rate)) / rate
    return Audio(0.5 * np.sin(2 * np.pi * hz * t), rate)


def exhibit(at: float, speaker: str = "Vivian", seconds: float = 1.5, reasons=("silent",)) -> Exhibit:
    """An L2 exhibit at Unix time `at` with a clip of `seconds`."""
    return Exhibit("synthesis", {"lang": "zh", "speaker": speaker}, list(reasons), "silence ratio 1.00",
                   [measured("silence_ratio", 1.0, "<=", 0.7)], "你好", clip=tone(seconds), time=at)


def store_at(path: Path, **bounds) -> EvidenceStore:
    """A store in `path` with the repeat interval off unless given."""
    return EvidenceStore(EvidenceConfig(dir=path, **{"min_interval_seconds": 0, **bounds}), path.parent)
