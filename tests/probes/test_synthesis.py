"""L2: every failure reason produced from a real WAV served by the simulator over HTTP."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tts_sentinel.exporter.probes.config import ProbesConfig, SpeechRequestConfig, SynthesisProbeConfig, SynthesisTarget
from tts_sentinel.exporter.probes.scheduler import ProbeScheduler
from tts_sentinel.exporter.probes.synthesis import REASONS, probe_synthesis


def l2(sim, **kw) -> SynthesisProbeConfig:
    request = SpeechRequestConfig(url=sim.api_url + "/tts", timeout_seconds=kw.pop("timeout", 10))
    return SynthesisProbeConfig(enabled=True, request=request, **kw)


def test_healthy_service_passes_the_seed_text(sim):
    result = probe_synthesis(l2(sim))
    assert result.success, result.detail
    gauges = {m.name: m.value for m in result.gauges}
    assert 1.2 < gauges["tts_audio_duration_seconds"] < gauges["tts_audio_max_duration_seconds"]
    # The simulator's 40 ms exact-zero lead-in (a few zero frames) is tolerated.
    assert 0 < gauges["tts_audio_zero_run_seconds"] <= 0.1


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("silent", "silent"),
        ("unicode", "silent"),
        ("underflow", "zero_run"),
        ("runaway", "too_long"),
        ("truncated", "too_short"),
        ("wrong_rate", "sample_rate"),
        ("clipping", "clipping"),
        ("corrupt", "bad_wav"),
        ("error500", "http_status"),
        ("oom", "http_status"),
        ("load_timeout", "http_status"),
    ],
)
def test_fault_gives_its_reason(sim, fault, reason):
    assert reason in REASONS
    sim.inference.set_fault(fault)
    result = probe_synthesis(l2(sim))
    assert not result.success
    assert result.reasons == [reason], result.detail


def test_hang_is_a_timeout(sim):
    sim.inference.set_fault("hang")
    assert probe_synthesis(l2(sim, timeout=0.5)).reasons == ["timeout"]


def test_text_too_short_for_the_floor_is_too_short(sim):
    assert probe_synthesis(l2(sim, text="好")).reasons == ["too_short"]


def test_openai_protocol_with_streaming_header_and_bearer(make_sim):
    sim = make_sim(protocol="openai", api_key="tok", streaming_wav_header=True)
    request = SpeechRequestConfig(protocol="openai", url=sim.api_url + "/v1/audio/speech", bearer_token="tok")
    config = SynthesisProbeConfig(enabled=True, request=request,
                                  targets=[SynthesisTarget(lang="Chinese", speaker="Vivian")])
    result = probe_synthesis(config)
    assert result.success, result.detail
    wrong = SynthesisProbeConfig(enabled=True, request=request.model_copy(update={"bearer_token": "bad"}))
    assert probe_synthesis(wrong).reasons == ["http_status"]


def test_matrix_is_labelled_by_language_and_a_broken_target_is_visible(sim):
    targets = [SynthesisTarget(lang="zh", speaker="Vivian"),
               SynthesisTarget(lang="en", speaker="Ryan", text="好")]  # too short: this cell fails
    registry = CollectorRegistry()
    scheduler = ProbeScheduler(ProbesConfig(health={"enabled": False}, synthesis=l2(sim, targets=targets)),
                               registry)
    ok, body = scheduler.probe_now("synthesis")
    assert not ok
    per_target = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == "tts_synthesis_success":
                per_target[s.labels["lang"]] = s.value
            if s.name == "tts_synthesis_failures_total":
                assert s.labels["reason"] == "too_short" and s.labels["lang"] == "en"
    assert per_target == {"zh": 1.0, "en": 0.0}
    assert b'tts_probe_failures_total{probe="synthesis",reason="silent"} 0.0' in body
    assert generate_latest(registry).count(b"tts_probe_failures_total{") == len(REASONS)
