"""L2 and L3 on real speech: the simulator with espeak-ng as its engine (Debian package espeak-ng)."""

from __future__ import annotations

import pytest
from support import require_binary

from tts_sentinel.exporter.baseline import record_baseline
from tts_sentinel.exporter.probes.config import ProbesConfig
from tts_sentinel.exporter.probes.semantic import probe_semantic
from tts_sentinel.exporter.probes.synthesis import probe_synthesis

STYLES = {"happy": {"text": "Say it happily: what a wonderful day it is today!"},
          "serious": {"text": "Read this seriously: the system will restart now."}}


@pytest.fixture
def espeak_probes(make_sim, tmp_path) -> tuple:
    binary = require_binary("espeak-ng")
    sim = make_sim(engine="espeak", espeak_binary=binary)
    request = {"url": sim.api_url + "/tts", "timeout_seconds": 30}
    config = ProbesConfig(
        baseline_dir=tmp_path / "baseline",
        synthesis={"request": request, "targets": [{"lang": "en", "speaker": "Ryan"}]},
        semantic={"request": request, "speaker": "Ryan", "lang": "en", "styles": STYLES,
                  "report_path": str(tmp_path / "semantic_report.log")},
        quality={"request": request, "speaker": "Ryan", "lang": "en"},
    )
    return sim, config


def test_real_speech_passes_l2_and_fails_on_silence(espeak_probes):
    sim, config = espeak_probes
    assert probe_synthesis(config.synthesis).success
    sim.inference.set_fault("underflow")
    assert probe_synthesis(config.synthesis).reasons == ["zero_run"]


def test_l3_on_real_speech_flags_a_monotone_reading(espeak_probes):
    sim, config = espeak_probes
    record_baseline(config)
    healthy = probe_semantic(config.semantic, config)
    assert healthy.success, healthy.detail
    sim.inference.set_fault("monotone")
    flat = probe_semantic(config.semantic, config)
    assert not flat.success, flat.detail
    spreads = [m.value for m in flat.gauges if m.name == "tts_semantic_f0_spread_semitones"]
    assert max(spreads) < config.semantic.min_f0_spread_semitones
