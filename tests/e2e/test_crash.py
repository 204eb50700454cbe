"""Crashes that supervisord's autorestart hides, for real: simulator under supervisord, exporter,
Prometheus with rules/process.rules.yml, Alertmanager and the receiver.

One crash is counted, alerted for the journal and pages no one; a requested restart is not a
crash; three crashes in a row are a restart loop, a critical heavy-tier alert the receiver takes.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import started_stack, wait_for

from tts_sentinel.harness.drill import EXPECTED_ALERT, StackEndpoints, firing_alerts, inject, journal
from tts_sentinel.harness.stack import INFERENCE_PROGRAM, WEB_PROGRAM, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(Stack, tmp_path_factory.mktemp("stack"))


def process_metric(stack, name: str, component: str) -> float | None:
    """The exporter's value of `name` for a component, or None when the series is absent."""
    text = httpx.get(stack.url("exporter", "/metrics"), timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("component") == component:
                return sample.value
    return None


def firing(stack, alertname: str, component: str) -> dict | None:
    return next((a for a in firing_alerts(stack.url("prometheus"), stack.web.auth())
                 if a["labels"]["alertname"] == alertname and a["labels"].get("component") == component), None)


def journaled(stack, alertname: str) -> list[dict]:
    endpoints = StackEndpoints.from_dir(stack.dir)
    return [row for row in journal(endpoints.receiver, endpoints.token)
            if any(a.get("alertname") == alertname for a in row.get("alerts") or [])]


def crash_and_wait_for_restart(stack, component: str, program: str) -> None:
    """Crash a component that answers (not one the receiver is restarting), then wait for supervisord's restart."""
    health = stack.url("web" if component == "web" else "api", "/health")
    wait_for(lambda: httpx.get(health, timeout=2).status_code == 200, 30, f"{component} to answer before the crash")
    pid = stack.program_pid(program)
    inject(StackEndpoints.from_dir(stack.dir), "crash", component)
    wait_for(lambda: stack.program_pid(program) not in (0, pid)
             and stack.supervisor().getProcessInfo(program)["statename"] == "RUNNING",
             30, f"supervisord to restart {program}")


def test_the_exporter_sees_both_programs_running_without_restarts(stack):
    def ready():
        text = httpx.get(stack.url("exporter", "/metrics"), timeout=5).text
        return 'tts_process_source_up{kind="supervisord",reason=""} 1.0' in text
    wait_for(ready, 30, "the exporter to read supervisord")
    for component in ("web", "inference"):
        # supervisord's STARTING lasts startsecs (1 s) after a start: wait it out
        wait_for(lambda c=component: process_metric(stack, "tts_process_up", c) == 1, 15, f"{component} up")
        assert process_metric(stack, "tts_process_restarts_total", component) == 0
        assert process_metric(stack, "tts_process_start_time_seconds", component) == pytest.approx(time.time(), abs=300)


def scraped_at_zero(stack, component: str) -> bool:
    """Prometheus holds the component's restart counter at 0: `increase()` needs a sample before the crash."""
    result = httpx.get(stack.url("prometheus", "/api/v1/query"), timeout=5, auth=stack.web.auth(),
                       params={"query": f'tts_process_restarts_total{{component="{component}"}}'}).json()
    return [r["value"][1] for r in result["data"]["result"]] == ["0"]


def test_a_crash_hidden_by_autorestart_is_counted_alerted_and_journaled_without_a_page(stack):
    assert EXPECTED_ALERT["crash"] == "TtsProcessCrashed"
    wait_for(lambda: scraped_at_zero(stack, "web"), 30, "Prometheus to scrape the restart counter at 0")
    crash_and_wait_for_restart(stack, "web", WEB_PROGRAM)

    wait_for(lambda: process_metric(stack, "tts_process_restarts_total", "web") == 1, 15, "the restart to be counted")
    assert process_metric(stack, "tts_process_last_exit_code", "web") == 1
    assert process_metric(stack, "tts_process_up", "web") == 1
    assert process_metric(stack, "tts_process_restarts_total", "inference") == 0

    alert = wait_for(lambda: firing(stack, "TtsProcessCrashed", "web"), 30, "TtsProcessCrashed to fire")
    assert (alert["labels"]["tier"], alert["labels"]["severity"]) == ("none", "warning")
    assert alert["labels"]["name"] == WEB_PROGRAM and alert["labels"]["service"] == "qwen3-tts"
    wait_for(lambda: journaled(stack, "TtsProcessCrashed"), 30, "the receiver to journal the crash")
    time.sleep(3)  # a group_interval for a page that should not come
    assert "TtsProcessCrashed" not in stack.oncall.alertnames()


def test_a_requested_restart_is_not_a_crash(stack):
    before = process_metric(stack, "tts_process_restarts_total", "inference")
    pid = stack.program_pid(INFERENCE_PROGRAM)
    stack.supervisor().stopProcess(INFERENCE_PROGRAM, True)
    stack.supervisor().startProcess(INFERENCE_PROGRAM, True)
    assert stack.program_pid(INFERENCE_PROGRAM) not in (0, pid)
    time.sleep(2.5)  # two polls and a scrape
    assert process_metric(stack, "tts_process_restarts_total", "inference") == before
    assert firing(stack, "TtsProcessCrashed", "inference") is None


def test_three_crashes_in_a_row_are_a_restart_loop_that_the_receiver_takes_as_heavy(stack):
    for _ in range(3):
        crash_and_wait_for_restart(stack, "inference", INFERENCE_PROGRAM)

    wait_for(lambda: process_metric(stack, "tts_process_restarts_total", "inference") == 3, 15,
             "three restarts to be counted")
    alert = wait_for(lambda: firing(stack, "TtsProcessRestartLoop", "inference"), 30,
                     "TtsProcessRestartLoop to fire")
    assert (alert["labels"]["tier"], alert["labels"]["severity"]) == ("heavy", "critical")
    assert firing(stack, "TtsProcessRestartLoop", "web") is None  # one crash of the web front is no loop

    rows = wait_for(lambda: journaled(stack, "TtsProcessRestartLoop"), 30, "the receiver to take the loop alert")
    assert rows[0]["tier"] == "heavy", json.dumps(rows, indent=1)
    # Whatever heavy did (ran, or was refused in business hours), its own restarts are not crashes.
    done = wait_for(lambda: next((r for r in journaled(stack, "TtsProcessRestartLoop")
                                  if r.get("status") not in ("queued", "running")), None), 90, "the heavy job to finish")
    print(f"heavy job for the loop: {done['status']}: {done.get('note') or done.get('reason')}")
    time.sleep(2.5)
    assert process_metric(stack, "tts_process_restarts_total", "inference") == 3
    assert process_metric(stack, "tts_process_restarts_total", "web") == 1
