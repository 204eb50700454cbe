"""WAV parsing and the L2 checks on WAVs built in the test (no server)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts_sentinel.exporter.audio.checks import check_speech, envelope_fluctuation, longest_true_run
from tts_sentinel.exporter.audio.wav import WavError, decode_wav, encode_wav
from tts_sentinel.exporter.probes.config import AudioLimitsConfig
from tts_sentinel.simulator.voice import synthesize

TEXT = "你好,世界。Hello, world."
RATE = 24000


def speech() -> np.ndarray:
    return synthesize(TEXT, "Vivian", "neutral", RATE)


def test_round_trip_and_streaming_header():
    x = speech()
    for streaming in (False, True):
        audio = decode_wav(encode_wav(x, RATE, streaming_header=streaming))
        assert audio.sample_rate == RATE
        assert np.max(np.abs(audio.samples - x)) < 1e-4
    body = encode_wav(x, RATE, streaming_header=True)
    assert body[4:8] == b"\xff\xff\xff\xff"


def test_24_bit_stereo_extensible_is_read_as_mono():
    pcm = np.array([[0, 0], [1 << 22, -(1 << 22)], [-(1 << 23), -(1 << 23)]], dtype=np.int32)
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in pcm.ravel())
    fmt = struct.pack("<HHIIHH", 0xFFFE, 2, RATE, RATE * 6, 6, 24) + struct.pack("<HHI", 22, 24, 3) \
        + struct.pack("<H", 1) + b"\x00" * 14
    body = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(raw)) + b"WAVE" \
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\x00" \
        + b"data" + struct.pack("<I", len(raw)) + raw
    audio = decode_wav(body)
    assert audio.samples.tolist() == [0.0, 0.0, -1.0]


@pytest.mark.parametrize("body", [b"", b"<html>oops</html>", b"RIFF\x00\x00\x00\x00WAVE", b"RIFF\x10\x00\x00\x00WAVEdata"])
def test_garbage_is_a_wav_error(body):
    with pytest.raises(WavError):
        decode_wav(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_audio_or_wav_error(body):
    try:
        decode_wav(b"RIFF\xff\xff\xff\xffWAVE" + body)
    except WavError:
        pass


def check(x: np.ndarray, rate: int = RATE, **limits):
    return check_speech(decode_wav(encode_wav(x, rate)), AudioLimitsConfig(**limits), TEXT)


def test_one_zero_frame_is_fine_a_long_run_is_not():
    x = speech()
    mid = len(x) // 2
    one = x.copy()
    one[mid:mid + 240] = 0.0
    assert check(one).reason is None
    run = x.copy()
    run[mid:mid + RATE] = 0.0
    assert check(run).reason == "zero_run"


def test_each_reason_from_a_built_wav():
    x = speech()
    assert check(x).reason is None
    assert check(np.zeros_like(x)).reason == "silent"
    assert check(x[: RATE]).reason == "too_short"
    assert check(np.tile(x, 6)).reason == "too_long"
    assert check(x, rate=16000).reason == "sample_rate"
    assert check(np.clip(x * 10, -1, 1)).reason == "clipping"
    quiet = x.copy()
    quiet[: int(0.8 * len(x))] = 1e-5 * np.random.default_rng(1).standard_normal(int(0.8 * len(x)))
    assert check(quiet).reason == "silent"


def test_envelope_fluctuation_separates_speech_from_tones_and_noise():
    t = np.arange(3 * RATE) / RATE
    assert envelope_fluctuation(speech(), RATE) > 0.3
    assert envelope_fluctuation(0.3 * np.sin(2 * np.pi * 220 * t), RATE) < 0.05
    assert envelope_fluctuation(0.1 * np.random.default_rng(0).standard_normal(len(t)), RATE) < 0.15


def test_longest_true_run():
    assert longest_true_run(np.array([False, True, True, False, True])) == 2
    assert longest_true_run(np.zeros(4, dtype=bool)) == 0


def test_alignment_recovers_a_shift_and_stoi_sees_through_it():
    from tts_sentinel.exporter.audio.quality import align, stoi_score

    x = speech()
    delayed = np.concatenate([np.zeros(1234), x])
    _, _, lag = align(x, delayed)
    assert lag == -1234
    _, _, lag = align(delayed, x)
    assert lag == 1234
    assert stoi_score(x, delayed, RATE) > 0.99
    noisy = x + 0.2 * np.random.default_rng(3).standard_normal(len(x))
    assert stoi_score(x, noisy, RATE) < 0.85


def test_pesq_is_optional():
    from tts_sentinel.exporter.audio.quality import pesq_score

    x = speech()
    try:
        import pesq  # noqa: F401
    except ImportError:
        assert pesq_score(x, x, RATE) is None
    else:
        assert pesq_score(x, x, RATE) > 4.0
