"""The probes section of the config: defaults, extra modules by prober name, errors with lines."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from tts_sentinel.config import ConfigError, parse_config
from tts_sentinel.exporter.probes.config import ProbesConfig
from tts_sentinel.exporter.probes.scheduler import ProbeScheduler


def test_defaults_are_the_seeds():
    probes = ProbesConfig()
    assert probes.health.url == "http://127.0.0.1:7860/health"
    assert probes.health.expect_json == {"status": "ok"}
    assert probes.synthesis.text == "你好,世界。Hello, world."
    assert probes.synthesis.request.url == "http://127.0.0.1:8000/tts"
    assert probes.synthesis.audio.sample_rate == 24000 and probes.synthesis.audio.min_seconds == 1.2
    assert probes.semantic.max_dtw_distance == 0.35 and probes.semantic.interval_seconds == 3600
    assert probes.quality.min_stoi == 0.85 and probes.quality.min_envelope_fluctuation == 0.15
    assert list(probes.enabled_modules()) == ["health"]


def test_extra_module_picks_its_prober_by_name(sim):
    config = parse_config(f"""
exporter:
  probes:
    modules:
      api_health:
        prober: health
        url: {sim.api_url}/health
""")
    scheduler = ProbeScheduler(config.exporter.probes, CollectorRegistry())
    assert scheduler.module_names() == ["health", "api_health"]
    ok, body = scheduler.probe_now("api_health")
    assert ok and b'tts_probe_success{probe="api_health"} 1.0' in body


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("exporter:\n  probes:\n    modules:\n      x:\n        prober: ping\n", 4, "prober"),
        ("exporter:\n  probes:\n    synthesis:\n      request:\n        protocol: grpc\n", 5, "protocol"),
        ("exporter:\n  probes:\n    semantic:\n      max_dtw_distance: -1\n", 4, "max_dtw_distance"),
    ],
)
def test_bad_probe_config_names_line_and_key(text, line, key):
    with pytest.raises(ConfigError) as err:
        parse_config(text, "f.yml")
    assert f"f.yml:{line}" in str(err.value) and key in str(err.value)


def test_an_extra_module_cannot_shadow_a_builtin():
    with pytest.raises(ConfigError, match="built in"):
        parse_config("exporter:\n  probes:\n    modules:\n      health:\n        prober: health\n")
