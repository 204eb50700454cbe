"""The loop in vLLM-Omni mode: the simulator plays the engine (its API, /metrics, streaming), Prometheus
scrapes the engine as a second job, and an engine that is alive but hung, or one that runs away,
raises its alerts through the real Prometheus and Alertmanager.

The receiver runs dry here: it journals the tier it would act on, but a real restart would clear
the fault before the slower of the two hang alerts (the one from the engine's metrics) fires.
The exporter runs over FakeNvml (one GPU) so the dashboard's GPU panels have data too: this is
the stack `tts-sentinel demo --vllm-omni` runs, with a GPU.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import started_stack, wait_for

from tts_sentinel.harness.drill import StackEndpoints, firing_alerts, inject, journal
from tts_sentinel.harness.stack import Stack

pytestmark = pytest.mark.e2e


DASHBOARD = Path(__file__).parents[2] / "dashboards" / "tts-sentinel.json"
WRAPPER = Path(__file__).with_name("fake_nvml_exporter.py")
# Panels with no data on a healthy stack, and why ("Alerts firing" is checked in the fatal-line test).
NO_DATA_WHEN_HEALTHY = {
    "Semantic DTW distance (L3)": "L3 runs hourly against a recorded baseline; the stack records none",
    "Remediation refused": "a series per reason appears with the first refusal",
    "Alerts firing": "nothing fires on a healthy stack",
}


class OmniStack(Stack):
    """The vLLM-Omni-mode stack with the GPU collector on, over FakeNvml (see fake_nvml_exporter.py)."""

    def sentinel_config(self) -> dict[str, Any]:
        config = super().sentinel_config()
        config["exporter"]["gpu"] = {"enabled": True}
        return config

    def _spawn(self, name: str, argv: list[str]) -> None:
        if name == "exporter":  # `python -m tts_sentinel.cli exporter ...` with FakeNvml in place of pynvml
            argv = [sys.executable, str(WRAPPER), str(self.dir / "run" / "nvml-control.jsonl"), *argv[3:]]
        super()._spawn(name, argv)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(OmniStack, tmp_path_factory.mktemp("vllm-stack"), protocol="openai",
                             receiver_overrides={"dry_run": True})


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


def journaled_plans(stack, alertname: str) -> list[dict]:
    """The dry-run jobs the receiver journaled for alerts of that name: tier, family, steps it would run."""
    endpoints = StackEndpoints.from_dir(stack.dir)
    return [{"tier": row.get("tier"), "family": row.get("family"),
             "steps": [step.get("step", "") for step in row.get("steps") or []]}
            for row in journal(endpoints.receiver, endpoints.token) if row.get("status") == "dry_run"
            and any(alert.get("alertname") == alertname for alert in row.get("alerts") or [])]


def restarts_inference(stack, alertname: str) -> list[dict]:
    """The medium jobs journaled for the alert whose plan stops and starts inference, and leaves the web front."""
    return [job for job in journaled_plans(stack, alertname) if job["tier"] == "medium"
            and any(step.startswith("stop inference via") for step in job["steps"])
            and any(step.startswith("start inference via") for step in job["steps"])
            and not any(" web" in step for step in job["steps"])]


def assert_inference_restart_journaled(stack, alertname: str, family: str = "inference_engine") -> None:
    jobs = wait_for(lambda: restarts_inference(stack, alertname), 30, f"a medium inference restart for {alertname}")
    assert {job["family"] for job in jobs} == {family}, jobs


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


def panels() -> list[dict]:
    """Every panel of the dashboard with queries, rows' own included."""
    found, todo = [], list(json.loads(DASHBOARD.read_text())["panels"])
    while todo:
        panel = todo.pop(0)
        todo.extend(panel.get("panels", []))
        if panel.get("targets"):
            found.append(panel)
    return found


def test_every_dashboard_panel_shows_data_from_the_vllm_omni_stack(stack):
    """What Grafana draws: each query over the last minutes, as a range query to this Prometheus."""
    wait_for(lambda: query(stack, "tts:vllm_audio_ttfp_seconds:p95_5m"), 90, "the engine's streamed-audio series")

    def series(expr: str) -> list[dict]:
        now = time.time()
        answer = httpx.get(stack.url("prometheus", "/api/v1/query_range"), timeout=10, auth=stack.web.auth(),
                           params={"query": expr, "start": now - 300, "end": now, "step": 5}).json()
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    def empty() -> dict[str, list[str]]:
        return {p["title"]: [t["expr"] for t in p["targets"] if not series(t["expr"])] for p in panels()}

    def settled() -> bool:
        missing = {title: exprs for title, exprs in empty().items() if exprs and title not in NO_DATA_WHEN_HEALTHY}
        print("panels without data yet:", missing or "none")
        return not missing

    assert set(NO_DATA_WHEN_HEALTHY) < {p["title"] for p in panels()}  # the exceptions name real panels
    wait_for(settled, 90, "every panel but the event-driven ones to have data")
    # the vLLM-Omni row reads the engine's own families, under the names the engine exports
    engine = query(stack, 'count by (__name__) ({job="vllm-omni", __name__=~"vllm_omni:.+|vllm:.+"})')
    names = {e["metric"]["__name__"] for e in engine}
    for family in ("vllm_omni:audio_rtf_bucket", "vllm_omni:audio_ttfp_s_bucket", "vllm_omni:audio_underrun_s_bucket",
                   "vllm_omni:audio_continuity_ok_total", "vllm_omni:num_requests_waiting",
                   "vllm:kv_cache_usage_perc", "vllm:num_preemptions_total", "vllm:num_requests_running"):
        assert family in names, (family, sorted(names))


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
        assert alert["labels"]["tier"] == "medium" and alert["labels"]["family"] == "inference_engine"
        # the inference restart tier is what the receiver would run
        assert_inference_restart_journaled(stack, names[0])
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
        assert_inference_restart_journaled(stack, "TtsStreamingRunaway", "audio_output")
    finally:
        back_to_healthy(stack)


def test_underrunning_stream_raises_its_alert_and_maps_to_an_inference_restart(stack):
    name = "TtsStreamingUnderrun"
    wait_for(lambda: query(stack, 'tts_streaming_success{probe="stream"} == 1'), 60, "streams passing before the fault")
    inject(StackEndpoints.from_dir(stack.dir), "underrun", "inference")
    try:
        # the probe's streams arrive slower than real time (the engine's rtf above 1) over both transports
        wait_for(lambda: firing(stack, name), 120, f"{name} firing")
        failures = query(stack, 'sum by (transport) (increase(tts_probe_failures_total{probe="stream",reason="underrun"}[5m]))')
        assert failures and any(float(f["value"][1]) > 0 for f in failures), failures
        alert = next(a for a in firing_alerts(stack.url("prometheus"), stack.web.auth()) if a["labels"]["alertname"] == name)
        assert (alert["labels"]["tier"], alert["labels"]["family"]) == ("medium", "inference_engine")
        # /health still answers 200: only a stream shows it
        assert httpx.get(stack.url("api", "/health"), timeout=2).status_code == 200
        wait_for(lambda: in_alertmanager(stack, name), 30, f"{name} in Alertmanager")
        assert_inference_restart_journaled(stack, name)
    finally:
        back_to_healthy(stack)


def test_fatal_engine_core_log_line_raises_its_alert_and_maps_to_an_inference_restart(stack):
    name = "TtsVllmEngineCoreDied"
    inject(StackEndpoints.from_dir(stack.dir), "engine_fatal", "inference")
    try:
        # the simulator writes vLLM's own lines to the inference log; the exporter's built-in patterns match them
        wait_for(lambda: "EngineCore encountered a fatal error." in (stack.log_dir / "inference.log").read_text(
            errors="replace"), 10, "the fatal line in the inference log")
        wait_for(lambda: firing(stack, name), 60, f"{name} firing")
        matched = query(stack, 'sum by (pattern) (tts_log_pattern_matches_total{log="inference",'
                               'pattern=~"engine_core_fatal|engine_core_died"}) > 0')
        assert {m["metric"]["pattern"] for m in matched} == {"engine_core_fatal", "engine_core_died"}, matched
        alert = next(a for a in firing_alerts(stack.url("prometheus"), stack.web.auth()) if a["labels"]["alertname"] == name)
        assert (alert["labels"]["tier"], alert["labels"]["family"], alert["labels"]["log"]) == (
            "medium", "inference_engine", "inference")
        # the dashboard's alerts table shows it
        table = next(p for p in panels() if p["title"] == "Alerts firing")["targets"][0]["expr"]
        assert name in {r["metric"]["alertname"] for r in query(stack, table)}
        # a dead engine core turns /health to 503, unlike the hung engine
        assert httpx.get(stack.url("api", "/health"), timeout=2).status_code == 503
        wait_for(lambda: in_alertmanager(stack, name), 30, f"{name} in Alertmanager")
        assert_inference_restart_journaled(stack, name)
    finally:
        back_to_healthy(stack)
