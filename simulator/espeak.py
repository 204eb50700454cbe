"""Real speech from espeak-ng for the simulator's `engine: espeak` (tests and demos on real F0).

Style maps to pitch and rate (happy higher and faster, serious lower and slower); a
monotone reading uses SSML `<prosody range="x-low">`. The text goes to espeak-ng as an
argument list, never through a shell.
"""

from __future__ import annotations

import struct
import subprocess
from xml.sax.saxutils import escape

import numpy as np

from tts_sentinel.simulator.voice import speaker_f0
from tts_sentinel.simulator.wavfile import read_wav, resample

# style -> (espeak pitch 0-99, words per minute)
_STYLE = {"neutral": (50, 175), "happy": (68, 210), "serious": (32, 140)}


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed; the message says which."""


def espeak_synthesize(text: str, speaker: str, style: str, sample_rate: int, monotone: bool = False,
                      binary: str = "espeak-ng") -> np.ndarray:
    """Float samples of `text` spoken by espeak-ng at `sample_rate`."""
    pitch, rate = _STYLE.get(style, _STYLE["neutral"])
    has_cjk = any("\u4e00" <= ch <= "\u9fff" for ch in text)
    voice = ("cmn" if has_cjk else "en-us") + ("+f3" if speaker_f0(speaker) > 170 else "+m3")
    args = [binary, "--stdout", "-v", voice, "-p", str(pitch), "-s", str(rate)]
    if monotone:
        args += ["-m", f'<speak><prosody range="x-low">{escape(text)}</prosody></speak>']
    else:
        args.append(text)
    try:
        done = subprocess.run(args, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EspeakError(f"cannot run {binary}: {exc}; install the Debian package espeak-ng") from None
    if done.returncode != 0:
        raise EspeakError(f"{binary} failed ({done.returncode}): {done.stderr.decode(errors='replace')[:200]}")
    try:
        samples, rate = read_wav(done.stdout)
    except (EOFError, ValueError, struct.error) as exc:
        raise EspeakError(f"{binary} wrote no usable WAV: {exc}") from None
    return 0.9 * resample(samples, rate, sample_rate)
