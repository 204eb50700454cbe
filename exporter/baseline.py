"""`tts-sentinel baseline`: record L3 templates and quality references from the healthy service.

Layout, one folder per deployed model identity, so a new model never gets judged
against the old one's voice:

    <baseline_dir>/<model-id>/manifest.json
    <baseline_dir>/<model-id>/semantic/<style>.wav, <style>.f0.npy   (voiced F0 in Hz)
    <baseline_dir>/<model-id>/quality/<sample>.wav
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from tts_sentinel.exporter.audio.checks import check_speech
from tts_sentinel.exporter.audio.pitch import f0_contour
from tts_sentinel.exporter.audio.wav import Audio, decode_wav, encode_wav
from tts_sentinel.exporter.probes.config import AudioLimitsConfig, ProbesConfig, SpeechRequestConfig
from tts_sentinel.exporter.probes.speech import SpeechError, request_speech


def model_slug(model_id: str) -> str:
    """A folder name for a model identity (anything but letters, digits, . _ - becomes _)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._") or "model"


class BaselineStore:
    """Reads and writes the templates of one model identity."""

    def __init__(self, root: Path, model_id: str) -> None:
        self.model_id = model_id
        self.dir = Path(root) / model_slug(model_id)

    def _path(self, kind: str, name: str, suffix: str) -> Path:
        return self.dir / kind / f"{model_slug(name)}{suffix}"

    def style_f0(self, style: str) -> np.ndarray | None:
        """The stored voiced F0 contour of `style`, or None when no baseline was recorded."""
        path = self._path("semantic", style, ".f0.npy")
        return np.load(path) if path.exists() else None

    def style_audio(self, style: str) -> Audio | None:
        """The stored recording of L3 style `style`, or None (shown beside a failing clip as evidence)."""
        path = self._path("semantic", style, ".wav")
        return decode_wav(path.read_bytes()) if path.exists() else None

    def sample_audio(self, name: str) -> Audio | None:
        """The stored reference recording of quality sample `name`, or None."""
        path = self._path("quality", name, ".wav")
        return decode_wav(path.read_bytes()) if path.exists() else None

    def write_style(self, style: str, audio: Audio, f0: np.ndarray) -> None:
        """Store a style's audio and F0 template."""
        self._write(self._path("semantic", style, ".wav"), encode_wav(audio.samples, audio.sample_rate))
        path = self._path("semantic", style, ".f0.npy")
        np.save(path, f0)

    def write_sample(self, name: str, audio: Audio) -> None:
        """Store a quality reference recording."""
        self._write(self._path("quality", name, ".wav"), encode_wav(audio.samples, audio.sample_rate))

    def write_manifest(self, meta: dict[str, Any]) -> Path:
        """manifest.json: model identity, time, request and what was recorded."""
        path = self.dir / "manifest.json"
        self._write(path, json.dumps({"model_id": self.model_id, **meta}, ensure_ascii=False, indent=2).encode())
        return path

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # Write then rename: a probe reading at the same moment sees the old or the new file.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def _record(request: SpeechRequestConfig, text: str, lang: str, speaker: str, instructions: str,
            limits: AudioLimitsConfig) -> Audio:
    """One healthy-looking recording, or SpeechError: a baseline from a broken service is worse than none."""
    audio = request_speech(request, text, lang, speaker, instructions)
    report = check_speech(audio, limits, text)
    if report.reason:
        raise SpeechError(report.reason, f"the service does not look healthy for {text!r}: {report.detail}")
    return audio


def record_baseline(probes: ProbesConfig, model_id: str | None = None, root: Path | None = None) -> Path:
    """Record every L3 style and quality sample from the service; return the manifest path."""
    store = BaselineStore(root or probes.baseline_dir, model_id or probes.model_id)
    semantic, quality = probes.semantic, probes.quality
    limits = probes.synthesis.audio
    styles = {}
    for style, prompt in semantic.styles.items():
        audio = _record(semantic.request, prompt.text, semantic.lang, semantic.speaker, prompt.instructions, limits)
        f0 = f0_contour(audio.samples, audio.sample_rate, semantic.f0_method, semantic.frame_period_ms)
        store.write_style(style, audio, f0)
        styles[style] = {"text": prompt.text, "instructions": prompt.instructions, "voiced_frames": len(f0),
                         "seconds": round(audio.duration_seconds, 3)}
    samples = {}
    for name, text in quality.samples.items():
        audio = _record(quality.request, text, quality.lang, quality.speaker, "", limits)
        store.write_sample(name, audio)
        samples[name] = {"text": text, "seconds": round(audio.duration_seconds, 3)}
    return store.write_manifest({
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "semantic": {"url": semantic.request.url, "protocol": semantic.request.protocol,
                     "speaker": semantic.speaker, "lang": semantic.lang, "f0_method": semantic.f0_method,
                     "styles": styles},
        "quality": {"url": quality.request.url, "protocol": quality.request.protocol,
                    "speaker": quality.speaker, "lang": quality.lang, "samples": samples},
    })
