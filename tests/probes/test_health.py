"""L1 health prober against the simulator's two protocols."""

from __future__ import annotations

from tts_sentinel.exporter.probes.config import HealthProbeConfig
from tts_sentinel.exporter.probes.health import probe_health


def test_seed_health_ok(sim):
    result = probe_health(HealthProbeConfig(url=sim.web_url + "/health"))
    assert result.success, result.detail


def test_hang_is_a_timeout(sim):
    sim.web.set_fault("hang")
    result = probe_health(HealthProbeConfig(url=sim.web_url + "/health", timeout_seconds=0.3))
    assert result.reasons == ["timeout"]


def test_error500_is_http_status(sim):
    sim.web.set_fault("error500")
    assert probe_health(HealthProbeConfig(url=sim.web_url + "/health")).reasons == ["http_status"]


def test_wrong_path_is_http_status_and_nothing_listening_is_connection(sim):
    url = f"http://127.0.0.1:{sim.config.web_port}/nothing"
    assert probe_health(HealthProbeConfig(url=url)).reasons == ["http_status"]
    nobody = "http://127.0.0.1:9/health"  # discard port: nothing listens there on loopback
    assert probe_health(HealthProbeConfig(url=nobody, timeout_seconds=1)).reasons == ["connection"]


def test_body_must_say_ok(sim):
    config = HealthProbeConfig(url=sim.web_url + "/health", expect_json={"status": "healthy"})
    assert probe_health(config).reasons == ["body"]


def test_openai_health_is_an_empty_200_and_503_when_engine_dead(openai_sim):
    config = HealthProbeConfig(url=openai_sim.api_url + "/health", expect_json=None, expect_empty_body=True)
    assert probe_health(config).success
    # The seed's JSON expectation fails on vLLM-Omni's empty body: protocol must be configured.
    assert probe_health(HealthProbeConfig(url=openai_sim.api_url + "/health")).reasons == ["body"]
    openai_sim.inference.set_fault("oom")
    assert probe_health(config).reasons == ["http_status"]
