"""L3 semantic and quality probes against baselines recorded from the healthy simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tts_sentinel.exporter.audio.quality import align, stoi_score
from tts_sentinel.exporter.baseline import BaselineStore, record_baseline
from tts_sentinel.exporter.probes.config import ProbesConfig, SpeechRequestConfig
from tts_sentinel.exporter.probes.quality import probe_quality
from tts_sentinel.exporter.probes.semantic import probe_semantic
from tts_sentinel.exporter.probes.speech import SpeechError


def probes_config(sim, tmp_path) -> ProbesConfig:
    request = {"url": sim.api_url + "/tts", "timeout_seconds": 10}
    return ProbesConfig(
        baseline_dir=tmp_path / "baseline",
        model_id="sim/model:v1",
        semantic={"enabled": True, "request": request, "report_path": str(tmp_path / "semantic_report.log")},
        quality={"enabled": True, "request": request},
    )


@pytest.fixture
def recorded(sim, tmp_path) -> ProbesConfig:
    config = probes_config(sim, tmp_path)
    record_baseline(config)
    return config


def distances(result) -> dict[str, float]:
    return {m.labels["style"]: m.value for m in result.gauges if m.name == "tts_semantic_dtw_distance"}


def test_baseline_is_versioned_by_model_identity(recorded):
    store = BaselineStore(recorded.baseline_dir, recorded.model_id)
    manifest = json.loads((store.dir / "manifest.json").read_text())
    assert manifest["model_id"] == "sim/model:v1"
    assert store.dir.name == "sim_model_v1"
    assert set(manifest["semantic"]["styles"]) == {"happy", "serious"}
    assert store.style_f0("happy") is not None and store.sample_audio("seed") is not None
    assert BaselineStore(recorded.baseline_dir, "another-model").style_f0("happy") is None


def test_baseline_refuses_an_unhealthy_service(sim, tmp_path):
    sim.inference.set_fault("silent")
    with pytest.raises(SpeechError) as err:
        record_baseline(probes_config(sim, tmp_path))
    assert err.value.reason == "silent"


def test_semantic_separates_healthy_from_monotone_with_margin(sim, recorded):
    healthy = probe_semantic(recorded.semantic, recorded)
    assert healthy.success, healthy.detail
    sim.inference.set_fault("monotone")
    flat = probe_semantic(recorded.semantic, recorded)
    assert not flat.success
    assert set(flat.reasons) <= {"dtw_distance", "f0_spread"}
    threshold = recorded.semantic.max_dtw_distance
    assert max(distances(healthy).values()) < threshold / 2
    assert min(distances(flat).values()) > threshold * 1.5
    spreads = {m.labels["style"]: m.value for m in flat.gauges if m.name == "tts_semantic_f0_spread_semitones"}
    assert max(spreads.values()) < recorded.semantic.min_f0_spread_semitones


def test_semantic_another_voice_of_the_same_prompt_stays_close(sim, recorded):
    other = recorded.semantic.model_copy(update={"speaker": "Serena"})
    result = probe_semantic(other, recorded)
    assert result.success, result.detail


def test_semantic_report_gets_a_json_line_per_run(sim, recorded):
    probe_semantic(recorded.semantic, recorded)
    sim.inference.set_fault("monotone")
    probe_semantic(recorded.semantic, recorded)
    lines = recorded.semantic.report_path.read_text(encoding="utf-8").splitlines()
    runs = [json.loads(line) for line in lines]
    assert [r["ok"] for r in runs] == [True, False]
    assert runs[1]["styles"]["happy"]["dtw_distance"] > runs[0]["styles"]["happy"]["dtw_distance"]


def test_semantic_without_baseline_says_what_to_do(sim, tmp_path):
    config = probes_config(sim, tmp_path)
    result = probe_semantic(config.semantic, config)
    assert result.reasons == ["no_baseline", "no_baseline"]
    assert "tts-sentinel baseline" in result.detail


def test_semantic_on_the_openai_protocol(make_sim, tmp_path):
    sim = make_sim(protocol="openai")
    request = SpeechRequestConfig(protocol="openai", url=sim.api_url + "/v1/audio/speech")
    config = ProbesConfig(baseline_dir=tmp_path / "b",
                          semantic={"enabled": True, "request": request, "report_path": str(tmp_path / "r.log")},
                          quality={"request": request})
    record_baseline(config)
    assert probe_semantic(config.semantic, config).success


def test_quality_healthy_then_noise(sim, recorded):
    healthy = probe_quality(recorded.quality, recorded)
    assert healthy.success, healthy.detail
    values = {m.name: m.value for m in healthy.gauges}
    assert values["tts_quality_stoi"] > 0.95
    assert values["tts_quality_envelope_fluctuation_ratio"] > 0.3
    sim.inference.set_fault("noise")
    noisy = probe_quality(recorded.quality, recorded)
    assert set(noisy.reasons) == {"envelope", "stoi"}
    checks = {m.labels["check"]: m.value for m in noisy.gauges if m.name == "tts_quality_check_passed"}
    assert checks == {"envelope": 0.0, "stoi": 0.0}


def test_quality_with_pesq_enabled(sim, recorded):
    try:
        import pesq  # noqa: F401
    except ImportError:
        installed = False
    else:
        installed = True
    config = recorded.quality.model_copy(update={"pesq": True})
    result = probe_quality(config, recorded)
    values = {m.name: m.value for m in result.gauges}
    # Optional extra: scored when installed, silently absent (not a failure) otherwise.
    assert result.success
    assert ("tts_quality_pesq_mos" in values) == installed
    if installed:
        assert values["tts_quality_pesq_mos"] > 4.0


def test_quality_on_all_zero_audio_fails_as_silent_with_a_clear_verdict(sim, recorded):
    sim.inference.set_fault("silent")
    for pesq_on in (False, True):
        result = probe_quality(recorded.quality.model_copy(update={"pesq": pesq_on}), recorded)
        assert not result.success and result.reasons == ["silent"], result.detail
        assert "all-zero audio" in result.detail and "STOI/PESQ not scored" in result.detail
        checks = {m.labels["check"]: m.value for m in result.gauges if m.name == "tts_quality_check_passed"}
        assert checks == {"envelope": 0.0}
    sim.inference.set_fault("none")
    assert probe_quality(recorded.quality, recorded).success


def test_stoi_of_silence_against_speech_is_zero_not_an_error():
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(48_000) * 0.1
    assert stoi_score(speech, np.zeros(48_000), 24_000) == 0.0
    assert align(speech, np.zeros(48_000))[2] == 0, "no correlation: no lag"
    assert stoi_score(speech, speech, 24_000) > 0.99
