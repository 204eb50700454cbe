"""The whole loop for real: simulator under supervisord, exporter, receiver, Prometheus, Alertmanager.

A hung web front must be noticed by the L1 probe, alerted by Prometheus, posted by
Alertmanager, restarted once by the receiver through supervisord, and be green again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from support import require_binary

from tts_sentinel.harness.drill import StackEndpoints, actions, firing_alerts, journal, run_drill, wait_until
from tts_sentinel.harness.stack import INFERENCE_PROGRAM, WEB_PROGRAM, Stack

pytestmark = pytest.mark.e2e
FIGURES = Path(os.environ.get("TTS_SENTINEL_FIGURES", "/tmp/tts-sentinel-e2e-figures.json"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "alertmanager")
    s = Stack(tmp_path_factory.mktemp("stack"))
    s.start()
    yield s
    s.stop()


def wait_for(predicate, timeout: float, what: str):
    value = wait_until(predicate, time.monotonic() + timeout)
    if not value:
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
    return value


def test_stack_starts_healthy_with_every_target_up(stack):
    def targets_up():
        targets = httpx.get(stack.url("prometheus", "/api/v1/targets")).json()["data"]["activeTargets"]
        return targets if len(targets) == 2 and all(t["health"] == "up" for t in targets) else None

    targets = wait_for(targets_up, 30, "both scrape targets up")
    assert {t["labels"]["job"] for t in targets} == {"tts-sentinel-exporter", "tts-sentinel-receiver"}
    metrics = httpx.get(stack.url("exporter", "/metrics")).text
    assert 'tts_probe_success{probe="health"} 1.0' in metrics
    # every configured log x pattern exists from the start, so increase() sees the first match
    for log in ("webui", "inference", "health"):
        assert f'tts_log_pattern_matches_total{{log="{log}",pattern="cuda_oom"}} 0.0' in metrics


def test_hung_web_front_is_healed_by_exactly_one_light_restart(stack):
    endpoints = StackEndpoints.from_dir(stack.dir)
    web_pid = stack.program_pid(WEB_PROGRAM)
    inference_pid = stack.program_pid(INFERENCE_PROGRAM)

    result = run_drill(endpoints, "hang", "web", timeout=150, on_event=print)
    print(result.summary())

    assert result.alert == "TtsHealthProbeFailing", result.summary()
    assert result.action_seconds is not None, "the receiver never acted"
    assert result.green_seconds is not None, "the health probe never came back"
    assert result.alert_seconds <= result.action_seconds <= result.green_seconds
    # light tier: the web front was restarted, the inference process (the model) was not
    assert stack.program_pid(WEB_PROGRAM) not in (0, web_pid)
    assert stack.program_pid(INFERENCE_PROGRAM) == inference_pid

    # Let the alert resolve; Alertmanager keeps re-sending while it fires: still one action.
    wait_for(lambda: not any(a["labels"]["alertname"] == "TtsHealthProbeFailing"
                             for a in firing_alerts(endpoints.prometheus)), 90, "the alert to resolve")
    time.sleep(3)  # one more group_interval for a late duplicate to arrive
    done = actions(journal(endpoints.receiver, endpoints.token))
    assert len(done) == 1, json.dumps(done, indent=1)
    assert done[0]["tier"] == "light" and done[0]["status"] == "succeeded"
    # healed by the receiver: on-call was not paged (tests/e2e/test_paging.py proves who is, when)
    assert "TtsHealthProbeFailing" not in stack.oncall.alertnames()
    record_figures(result)


def record_figures(result) -> None:
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[result.fault] = {"alert_seconds": round(result.alert_seconds, 1),
                             "action_seconds": round(result.action_seconds, 1),
                             "green_seconds": round(result.green_seconds, 1)}
    FIGURES.write_text(json.dumps(figures, indent=1))


def test_cuda_oom_is_healed_by_one_medium_restart_verified_by_real_synthesis(stack):
    endpoints = StackEndpoints.from_dir(stack.dir)
    before = len(actions(journal(endpoints.receiver, endpoints.token)))
    web_pid = stack.program_pid(WEB_PROGRAM)
    inference_pid = stack.program_pid(INFERENCE_PROGRAM)

    result = run_drill(endpoints, "oom", "inference", timeout=150, on_event=print)
    print(result.summary())

    assert result.alert == "TtsCudaOutOfMemory", result.summary()
    assert result.green_seconds is not None, json.dumps(result.actions, indent=1)
    # medium tier: the inference process (model) was restarted, the web front was not
    assert stack.program_pid(INFERENCE_PROGRAM) not in (0, inference_pid)
    assert stack.program_pid(WEB_PROGRAM) == web_pid
    new = actions(journal(endpoints.receiver, endpoints.token))[before:]
    # the OOM and the silence it causes fire together: one medium action, verified by L2
    assert [a["tier"] for a in new] == ["medium"], json.dumps(new, indent=1)
    verification = new[0]["verification"]
    assert "synthesis" in json.dumps(verification), verification
    record_figures(result)


def test_every_dashboard_query_is_valid_promql(stack):
    dashboard = json.loads((Path(__file__).parents[2] / "dashboards" / "tts-sentinel.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs
    for expr in exprs:
        r = httpx.get(stack.url("prometheus", "/api/v1/query"), params={"query": expr})
        assert r.status_code == 200 and r.json()["status"] == "success", (expr, r.text)
