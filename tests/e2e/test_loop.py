"""The whole loop for real: simulator under supervisord, exporter, receiver, Prometheus, Alertmanager.

A hung web front must be noticed by the L1 probe, alerted by Prometheus, posted by
Alertmanager, restarted once by the receiver through supervisord, and be green again.
Then sequences, as a messy week brings them: a different fault inside the escalation window
is its own incident at its own base tier, the same fault coming back escalates without
dropping the web front, a healed incident pages nobody, an unhealable one pages on-call once
with the journal's evidence.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from support import started_stack, wait_for

from tts_sentinel.harness.drill import (
    StackEndpoints,
    actions,
    firing_alerts,
    inject,
    journal,
    run_drill,
)
from tts_sentinel.harness.stack import INFERENCE_PROGRAM, WEB_PROGRAM, Stack

pytestmark = pytest.mark.e2e
FIGURES = Path(os.environ.get("TTS_SENTINEL_FIGURES", "/tmp/tts-sentinel-e2e-figures.json"))
RECEIVER_PAGES = ("TtsRemediationExhausted", "TtsRemediationRefused")
# Heavy is refused at any hour (a fault that cannot be healed, whatever the clock says), and
# incidents close 20 s after their alerts resolve, so each test starts with the earlier closed.
RECEIVER = {
    "business_hours": {"weekdays": [0, 1, 2, 3, 4, 5, 6], "start": "00:00:00", "end": "23:59:59"},
    "incidents": {"quiet_seconds": 20},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(Stack, tmp_path_factory.mktemp("stack"), receiver_overrides=RECEIVER)


def incidents(endpoints: StackEndpoints) -> list[dict]:
    """GET /incidents, oldest first."""
    r = httpx.get(f"{endpoints.receiver}/incidents", headers={"Authorization": f"Bearer {endpoints.token}"},
                  timeout=5)
    r.raise_for_status()
    return sorted(r.json(), key=lambda i: i["id"])


def receiver_pages(stack) -> list[dict]:
    """Every firing alert the on-call sink got that the receiver posted (one per notification)."""
    return [a for p in stack.oncall.pages for a in p.get("alerts", [])
            if a.get("labels", {}).get("alertname") in RECEIVER_PAGES and a.get("status") == "firing"]


def test_stack_starts_healthy_with_every_target_up(stack):
    def targets_up():
        targets = httpx.get(stack.url("prometheus", "/api/v1/targets"), auth=stack.web.auth()).json()["data"]["activeTargets"]
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
                             for a in firing_alerts(endpoints.prometheus, endpoints.auth)), 90, "the alert to resolve")
    time.sleep(3)  # one more group_interval for a late duplicate to arrive
    done = actions(journal(endpoints.receiver, endpoints.token))
    assert len(done) == 1, json.dumps(done, indent=1)
    assert done[0]["tier"] == "light" and done[0]["status"] == "succeeded"
    # healed within its verification: the receiver paged nobody, nor did Alertmanager
    # (tests/e2e/test_paging.py proves who is paged, when)
    assert receiver_pages(stack) == []
    assert "TtsHealthProbeFailing" not in stack.oncall.alertnames()
    [incident] = incidents(endpoints)
    assert (incident["family"], incident["tiers"], incident["status"]) == ("web_front", ["light"], "healed")
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
    # a different fault inside the hang's escalation window: its own incident at its own base tier
    oom = next(i for i in incidents(endpoints) if i["id"] == new[0]["incident_id"])
    assert (oom["family"], oom["tiers"]) == ("gpu_memory", ["medium"]), oom
    assert new[0]["escalated_from"] is None and "fired again" not in new[0]["reason"]
    record_figures(result)


def test_silence_after_an_oom_is_its_own_incident_not_a_recurrence(stack):
    """`drill oom` then `drill silent`, inside the OOM's escalation window: a new incident that
    starts at medium, never a heavy restart taken for an OOM coming back."""
    endpoints = StackEndpoints.from_dir(stack.dir)
    known = {i["id"] for i in incidents(endpoints)}
    inference_pid = stack.program_pid(INFERENCE_PROGRAM)
    inject(endpoints, "silent", "inference")

    def healed_silence():
        fresh = [i for i in incidents(endpoints) if i["id"] not in known]
        return next((i for i in fresh if i["family"] == "audio_output" and i["status"] == "healed"), None)

    silence = wait_for(healed_silence, 150, "the silence to be healed as its own incident")
    assert silence["tiers"] == ["medium"], silence
    assert stack.program_pid(INFERENCE_PROGRAM) not in (0, inference_pid)
    fresh = [i for i in incidents(endpoints) if i["id"] not in known]
    assert not any("heavy" in i["tiers"] for i in fresh), json.dumps(fresh, indent=1)
    rows = [r for r in actions(journal(endpoints.receiver, endpoints.token)) if r.get("incident_id") == silence["id"]]
    assert rows and all(r["escalated_from"] is None for r in rows)
    # the incident's triage holds its own lines: silence, never the OOM before it
    patterns = {e["pattern"] for r in rows for e in (r.get("triage") or {}).get("events", [])}
    assert "cuda_oom" not in patterns and "audio_silent" in patterns, patterns
    assert receiver_pages(stack) == []


def test_the_same_fault_recurring_escalates_and_keeps_the_web_front(stack):
    endpoints = StackEndpoints.from_dir(stack.dir)
    # the earlier hang's incident closes once quiet: this test's first hang starts a new one
    wait_for(lambda: not [i for i in incidents(endpoints) if i["family"] == "web_front" and not i["closed_at"]],
             90, "the earlier web-front incident to close")
    first = run_drill(endpoints, "hang", "web", timeout=120, on_event=print)
    assert first.green_seconds is not None, first.summary()
    web_pid, inference_pid = stack.program_pid(WEB_PROGRAM), stack.program_pid(INFERENCE_PROGRAM)

    # The alert resolves, the drill injects the same fault again at once: inside the quiet period.
    second = run_drill(endpoints, "hang", "web", timeout=150, on_event=print)
    assert second.green_seconds is not None, second.summary()
    incident = [i for i in incidents(endpoints) if i["family"] == "web_front"][-1]
    assert incident["tiers"] == ["light", "medium"], incident
    assert incident["components"] == ["web", "inference"] and incident["status"] == "healed"
    medium = second.actions[0]
    assert medium["tier"] == "medium" and "fired again" in medium["reason"], medium
    assert "restart web via supervisord" in [s["step"] for s in medium["steps"]]
    assert stack.program_pid(WEB_PROGRAM) not in (0, web_pid), "the escalation kept the web front"
    assert stack.program_pid(INFERENCE_PROGRAM) not in (0, inference_pid)
    assert receiver_pages(stack) == []


def test_an_unhealable_fault_pages_on_call_once_with_the_evidence(stack):
    endpoints = StackEndpoints.from_dir(stack.dir)
    # the earlier tests' incidents are over (their last job bounds this incident's triage window)
    wait_for(lambda: all(i["status"] != "open" for i in incidents(endpoints)), 120, "earlier incidents to close")
    time.sleep(1.5)  # the segfault line is written after the last job finished, as in a real new incident
    inject(endpoints, "segfault", "inference")

    def paged():
        return next((i for i in incidents(endpoints) if i["family"] == "weights_config" and i["page"]), None)

    incident = wait_for(paged, 120, "the segfault incident to page on-call")
    assert incident["status"] == "refused" and incident["page"]["reason"] == "business_hours", incident
    pages = wait_for(lambda: [a for a in receiver_pages(stack) if a["labels"].get("incident") == str(incident["id"])],
                     30, "the page at the on-call sink")
    time.sleep(6)  # Alertmanager re-sends the segfault alert to the receiver meanwhile: still one page
    pages = [a for a in receiver_pages(stack) if a["labels"].get("incident") == str(incident["id"])]
    assert len(pages) == 1, json.dumps(pages, indent=1)
    notes = pages[0]["annotations"]
    assert "heavy refused" in notes["actions"] and "business hours" in notes["actions"], notes
    # nothing ran, so nothing was verified (a late probe alert that joined may have had its probe run first)
    assert notes["verification"].startswith("no verification ran"), notes["verification"]
    assert pages[0]["labels"]["family"] == "weights_config"
    assert notes["root_cause"], notes
    # the root cause is the incident's own segfault line, even when supervisord's restart was
    # journaled (TtsProcessCrashed, tier none) between the line and the segfault's alert
    assert "Segmentation fault" in notes["root_cause"], notes["root_cause"]


def test_every_dashboard_query_is_valid_promql(stack):
    dashboard = json.loads((Path(__file__).parents[2] / "dashboards" / "tts-sentinel.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs
    for expr in exprs:
        r = httpx.get(stack.url("prometheus", "/api/v1/query"), params={"query": expr}, auth=stack.web.auth())
        assert r.status_code == 200 and r.json()["status"] == "success", (expr, r.text)
