"""ProbeScheduler: scheduled runs into the shared registry, probe_now with a fresh one."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tts_sentinel.exporter.probes.config import HealthProbeConfig, ProbesConfig
from tts_sentinel.exporter.probes.scheduler import ProbeScheduler


def samples(text: bytes | str) -> dict[tuple[str, tuple], float]:
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def wait_until(condition, what: str, deadline_s: float = 15.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def health_config(url: str) -> ProbesConfig:
    return ProbesConfig(health=HealthProbeConfig(url=url, interval_seconds=0.2, timeout_seconds=0.5))


def test_failure_reasons_exist_at_zero_before_any_run(sim):
    registry = CollectorRegistry()
    scheduler = ProbeScheduler(health_config(sim.web_url + "/health"), registry)
    s = samples(generate_latest(registry))
    assert s[("tts_probe_failures_total", (("probe", "health"), ("reason", "timeout")))] == 0
    assert scheduler.module_names() == ["health"]


def test_scheduled_health_goes_red_on_hang_and_green_after(sim):
    registry = CollectorRegistry()
    scheduler = ProbeScheduler(health_config(sim.web_url + "/health"), registry)
    scheduler.start()
    try:
        key = ("tts_probe_success", (("probe", "health"),))
        wait_until(lambda: samples(generate_latest(registry)).get(key) == 1.0, "first green run")
        sim.web.set_fault("hang")
        wait_until(lambda: samples(generate_latest(registry)).get(key) == 0.0, "red on hang")
        timeouts = ("tts_probe_failures_total", (("probe", "health"), ("reason", "timeout")))
        assert samples(generate_latest(registry))[timeouts] >= 1
        sim.web.set_fault("none")
        wait_until(lambda: samples(generate_latest(registry)).get(key) == 1.0, "green after clearing")
        assert samples(generate_latest(registry))[("tts_probe_duration_seconds", (("probe", "health"),))] > 0
    finally:
        scheduler.stop()


def test_probe_now_uses_a_fresh_registry(sim):
    registry = CollectorRegistry()
    scheduler = ProbeScheduler(health_config(sim.web_url + "/health"), registry)
    sim.web.set_fault("error500")
    ok, body = scheduler.probe_now("health")
    assert not ok
    s = samples(body)
    assert s[("tts_probe_success", (("probe", "health"),))] == 0
    assert s[("tts_probe_failures_total", (("probe", "health"), ("reason", "http_status")))] == 1
    # The shared registry saw nothing of it.
    assert ("tts_probe_success", (("probe", "health"),)) not in samples(generate_latest(registry))
    with pytest.raises(KeyError):
        scheduler.probe_now("nope")
