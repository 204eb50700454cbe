"""A voice for the stand-in service: harmonic, pitch-varying, syllable-shaped audio.

Not speech, but it has what the probes look at: a voiced F0 contour that pyworld
can track (tones per syllable, declination, a style), harmonics, a syllable
envelope (so the envelope fluctuation is speech-like), pauses at punctuation, and
a length that grows with the text. It is deterministic for a given text, speaker
and style, so a baseline recorded from the healthy simulator matches later runs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

# Base F0 per speaker (Hz); unknown speakers get one derived from their name.
SPEAKER_F0 = {
    "Vivian": 220.0, "Serena": 205.0, "Uncle_Fu": 105.0, "Dylan": 125.0, "Eric": 118.0,
    "Ryan": 130.0, "Aiden": 140.0, "Ono_Anna": 235.0, "Sohee": 225.0,
}

# style -> (F0 shift in semitones, trend over the utterance in semitones, tone range factor, speed)
STYLES = {
    "neutral": (0.0, -2.0, 1.0, 1.0),
    "happy": (2.0, 4.0, 1.4, 1.25),    # higher, rising, livelier, faster
    "serious": (-3.0, -3.0, 0.8, 0.8),  # lower, falling, flatter, slower
}
_HAPPY = re.compile(r"开心|高兴|快乐|愉快|happy|cheerful|joyful|excited", re.IGNORECASE)
_SERIOUS = re.compile(r"严肃|庄重|沉重|serious|solemn|grave|stern", re.IGNORECASE)
# Pause after punctuation (seconds), ASCII and full-width forms.
_PAUSE = {",": 0.15, "\uff0c": 0.15, "\u3001": 0.12, ";": 0.2, "\uff1b": 0.2, ":": 0.15, "\uff1a": 0.15,
          ".": 0.3, "\u3002": 0.3, "!": 0.3, "\uff01": 0.3, "?": 0.3, "\uff1f": 0.3}
SYLLABLE_SECONDS = 0.2


def detect_style(text: str, instructions: str = "") -> str:
    """happy, serious or neutral, from an instruction or a style cue in the text (the seed's prompts)."""
    for source in (instructions, text):
        if _HAPPY.search(source):
            return "happy"
        if _SERIOUS.search(source):
            return "serious"
    return "neutral"


@dataclass(frozen=True)
class _Unit:
    """One syllable (pause == 0) or one pause."""

    pause: float = 0.0


def _units(text: str) -> list[_Unit]:
    """Syllables and pauses of a text: one per CJK character, vowel groups per Latin word."""
    units: list[_Unit] = []
    for token in re.findall(r"[A-Za-z]+|\d|\s+|.", text):
        if token[0].isascii() and token[0].isalpha():
            units += [_Unit()] * max(1, len(re.findall(r"[aeiouy]+", token.lower())))
        elif token.isdigit():
            units.append(_Unit())
        elif token.isspace():
            units.append(_Unit(pause=0.04))
        elif token in _PAUSE:
            units.append(_Unit(pause=_PAUSE[token]))
        elif token.isalpha():  # CJK and other scripts: one syllable per character
            units.append(_Unit())
    return units or [_Unit()]


def _seed(key: str) -> int:
    """A stable RNG seed (hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def speaker_f0(speaker: str) -> float:
    """Base F0 of a speaker in Hz."""
    if speaker in SPEAKER_F0:
        return SPEAKER_F0[speaker]
    digest = hashlib.sha256(speaker.encode()).digest()
    return 110.0 + digest[0] / 255.0 * 120.0


def synthesize(
    text: str,
    speaker: str = "Vivian",
    style: str = "neutral",
    sample_rate: int = 24000,
    monotone: bool = False,
) -> np.ndarray:
    """Float samples (peak 0.5) for `text`; `monotone` flattens the F0 to the speaker's base."""
    # Intonation follows the text and style (as tones do in Mandarin); timing and loudness vary
    # with the speaker, so another voice of the same text has the same contour, stretched.
    rng = np.random.default_rng(_seed(f"{style}\0{text}"))
    voice_rng = np.random.default_rng(_seed(f"{speaker}\0{style}\0{text}"))
    shift, trend, tone_range, speed = STYLES.get(style, STYLES["neutral"])
    base = speaker_f0(speaker) * 2 ** (shift / 12)
    units = _units(text)
    n_syl = sum(1 for u in units if not u.pause)
    f0_parts: list[np.ndarray] = []
    env_parts: list[np.ndarray] = []
    lead = np.zeros(int(0.08 * sample_rate))
    f0_parts.append(np.full(len(lead), base))
    env_parts.append(lead)
    k = 0
    for unit in units:
        if unit.pause:
            n = int(unit.pause / speed * sample_rate)
            f0_parts.append(np.full(n, base))
            env_parts.append(np.zeros(n))
            continue
        n = int(SYLLABLE_SECONDS / speed * voice_rng.uniform(0.85, 1.15) * sample_rate)
        t = np.linspace(0.0, 1.0, n, endpoint=False)
        progress = k / max(1, n_syl - 1)
        start, end = rng.uniform(-4.0, 4.0, size=2) * tone_range
        semis = trend * progress + start + (end - start) * t
        f0_parts.append(base * 2 ** (semis / 12))
        # Attack in the first 15 %, decay over the last 35 %: a syllable-shaped envelope.
        env = np.minimum(1.0, np.minimum(t / 0.15, (1.0 - t) / 0.35)) ** 1.5 * voice_rng.uniform(0.6, 1.0)
        env_parts.append(env)
        gap = int(0.025 / speed * sample_rate)
        f0_parts.append(np.full(gap, base))
        env_parts.append(np.zeros(gap))
        k += 1
    tail = np.zeros(int(0.1 * sample_rate))
    f0_parts.append(np.full(len(tail), base))
    env_parts.append(tail)
    f0 = np.concatenate(f0_parts)
    env = np.concatenate(env_parts)
    if monotone:
        f0 = np.full_like(f0, base)
    else:
        f0 = f0 * (1 + 0.006 * np.sin(2 * np.pi * 5.5 * np.arange(len(f0)) / sample_rate))  # vibrato
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    wave = np.zeros(len(f0))
    for h in range(1, 13):
        # Harmonics above ~4 kHz would alias for high voices; drop them where they would.
        amp = np.where(h * f0 < 0.45 * sample_rate, 1.0 / h**1.1, 0.0)
        wave += amp * np.sin(h * phase)
    wave += 0.02 * voice_rng.standard_normal(len(wave))  # breath noise
    out = wave * env
    peak = float(np.max(np.abs(out))) or 1.0
    out = 0.5 * out / peak
    # A room-noise floor (~ -66 dBFS) keeps pauses from being exact zeros, except the first
    # 40 ms: real codecs pad the start with a short exact-zero gap, which L2 must tolerate.
    out += 0.0005 * voice_rng.standard_normal(len(out))
    out[: int(0.04 * sample_rate)] = 0.0
    return out
