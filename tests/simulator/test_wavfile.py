"""The simulator's WAV writer (stdlib `wave`) and the exporter's parser are separate codecs that agree."""

from __future__ import annotations

import numpy as np

from tts_sentinel.exporter.audio.wav import decode_wav
from tts_sentinel.simulator.wavfile import UNKNOWN_SIZE, read_wav, write_wav


def test_the_exporter_reads_what_the_simulator_writes_with_and_without_sizes():
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(24000) / 24000)
    for streaming in (False, True):
        data = write_wav(tone, 24000, streaming_header=streaming)
        assert (int.from_bytes(data[40:44], "little") == UNKNOWN_SIZE) is streaming
        audio = decode_wav(data)
        assert audio.sample_rate == 24000 and len(audio.samples) == 24000
        assert np.abs(audio.samples - tone).max() < 1e-4


def test_read_wav_round_trips_and_clips():
    data = write_wav(np.array([0.0, 2.0, -2.0, 0.25]), 16000)
    samples, rate = read_wav(data)
    assert rate == 16000
    assert np.allclose(samples, [0.0, 32767 / 32768, -32767 / 32768, 0.25], atol=1e-4)
