"""The loop in vLLM-Omni mode: the simulator plays the engine (its API, /metrics, streaming), Prometheus
scrapes the engine as a second job, and an engine that is alive but hung, or one that runs away,
raises its alerts through the real Prometheus and Alertmanager.

The receiver runs dry here: it journals the tier it would act on, but a real restart would clear
the fault before the slower of the two hang alerts (the one from the engine's metrics) fires.
"""

from __future__ import annotations

import time

import httpx
import pytest
from support import started_stack, wait_for

from tts_sentinel.harness.drill import StackEndpoints, firing_alerts, inject, journal
from tts_sentinel.harness.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(Stack, tmp_path_factory.mktemp("vllm-stack"), protocol="openai", receiver_overrides={"dry_run": True})


def query(stack, expr: str) -> list[dict]:
    return httpx.get(stack.url("prometheus", "/api/v1/query"), params={"query": expr}, timeout=5, auth=stack.web.auth()).json()["data"]["result"]


def firing(stack, *names: str) -> set[str]:
    return {a["labels"]["alertname"] for a in firing_alerts(stack.url("prometheus"), stack.web.auth())} & set(names)


def in_alertmanager(stack, *names: str) -> set[str]:
    alerts = httpx.get(stack.url("alertmanager", "/api/v2/alerts"), timeout=5, auth=stack.web.auth()).json()
    return {a["labels"]["alertname"] for a in alerts} & set(names)


def probe_green(stack, module: str) -> bool:
    body = httpx.get(stack.url("exporter", "/probe"), params={"module": module}, timeout=30).text
    return f'tts_probe_success{{probe="{module}"}} 1.0' in body


def back_to_healthy(stack) -> None:
    """Clear the fault and wait for L2 and the streams to pass again."""
    httpx.delete(stack.url("api", "/admin/fault"), timeout=5)
    wait_for(lambda: probe_green(stack, "synthesis") and probe_green(stack, "stream"), 60, "L2 and streams green")


def journaled_tiers(stack, alertname: str) -> set[str]:
    """Tiers of the (dry-run) actions the receiver journaled for alerts of that name."""
    endpoints = StackEndpoints.from_dir(stack.dir)
    return {alert.get("tier") for row in journal(endpoints.receiver, endpoints.token)
            if row.get("status") == "dry_run"
            for alert in row.get("alerts") or [] if alert.get("alertname") == alertname}


def test_the_engine_is_scraped_as_a_second_job_and_streams_pass(stack):
    def targets_up():
        targets = httpx.get(stack.url("prometheus", "/api/v1/targets"), timeout=5, auth=stack.web.auth()).json()["data"]["activeTargets"]
        return targets if len(targets) == 3 and all(t["health"] == "up" for t in targets) else None

    targets = wait_for(targets_up, 60, "three scrape targets up")
    assert {t["labels"]["job"] for t in targets} == {"tts-sentinel-exporter", "tts-sentinel-receiver", "vllm-omni"}
    engine = wait_for(lambda: query(stack, 'vllm_omni:requests_success_total{finished_reason="stop"} > 0'), 60,
                      "the engine to count completed requests")
    assert engine[0]["metric"]["service"] == "qwen3-tts"
    wait_for(lambda: query(stack, 'tts_streaming_success{probe="stream"} == 1'), 60, "the streaming probe to pass")
    # the recording rules read the engine (increase() needs two scrapes of it)
    wait_for(lambda: query(stack, "tts:vllm_requests_completed:increase1m"), 60, "the recording rule to have a value")


def test_hung_engine_raises_its_alerts_while_health_stays_green(stack):
    names = ("TtsVllmEngineHung", "TtsVllmEngineHungProbes")
    wait_for(lambda: query(stack, "tts:vllm_requests_completed:increase1m > 0"), 60, "completions before the fault")
    inject(StackEndpoints.from_dir(stack.dir), "hung_engine", "inference")
    started = time.monotonic()
    try:
        wait_for(lambda: firing(stack, *names) == set(names), 150, f"{names} firing")
        elapsed = time.monotonic() - started
        print(f"hung engine: both alerts firing after {elapsed:.0f}s")
        assert elapsed < 150
        # /health answers 200 throughout: only the engine's metrics and the probes see the hang
        assert httpx.get(stack.url("api", "/health"), timeout=2).status_code == 200
        wait_for(lambda: in_alertmanager(stack, *names) == set(names), 30, f"{names} in Alertmanager")
        alert = next(a for a in firing_alerts(stack.url("prometheus"), stack.web.auth()) if a["labels"]["alertname"] == names[0])
        assert alert["labels"]["tier"] == "medium" and alert["labels"]["family"] == "inference_hang"
        # the inference restart tier is what the receiver would run
        wait_for(lambda: "medium" in journaled_tiers(stack, names[0]), 30, "a medium action journaled")
    finally:
        back_to_healthy(stack)


def test_runaway_raises_its_alerts_from_l2_and_from_streams(stack):
    names = ("TtsSynthesisRunaway", "TtsStreamingRunaway")
    inject(StackEndpoints.from_dir(stack.dir), "runaway", "inference")
    try:
        wait_for(lambda: firing(stack, *names) == set(names), 120, f"{names} firing")
        wait_for(lambda: in_alertmanager(stack, *names) == set(names), 30, f"{names} in Alertmanager")
        # the probe stopped reading just past the bound instead of downloading a minute of audio
        read = query(stack, 'max_over_time(tts_streaming_audio_seconds{probe="stream"}[5m])')
        bound = float(query(stack, 'max(tts_streaming_max_audio_seconds{probe="stream"})')[0]["value"][1])
        assert read and all(bound < float(r["value"][1]) < bound + 1 for r in read), (read, bound)
        wait_for(lambda: "medium" in journaled_tiers(stack, "TtsStreamingRunaway"), 30, "a medium action journaled")
    finally:
        back_to_healthy(stack)
