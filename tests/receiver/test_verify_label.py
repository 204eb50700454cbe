"""An alert's `verify` label adds its probe to the verification: a fix that L1 sees but L2 does not fails."""

from __future__ import annotations

from tests.receiver.conftest import alert, payload, receiver_config, wait_for


def test_light_action_for_an_l2_alert_fails_while_synthesis_stays_red_and_escalates(
    supervisor, l1_green_l2_red, make_receiver
):
    cfg = receiver_config(supervisor, l1_green_l2_red, verification={"timeout_seconds": 1, "interval_seconds": 0.2})
    receiver = make_receiver(cfg)
    # A web-front alert that asks for L2 too (TtsSynthesisUnavailable itself is an inference alert)
    job_id = receiver.post(payload(alert("TtsHealthProbeFailing", tier="light", verify="synthesis"))).json()[
        "new_jobs"][0]
    job = receiver.wait_job(job_id)

    assert job["status"] == "failed", job
    steps = [s["step"] for s in job["steps"]]
    assert any("module=health" in s for s in steps) and any("module=synthesis" in s for s in steps), steps
    assert job["verification"]["module"] == "synthesis" and job["verification"]["success"] is False
    assert "health" in l1_green_l2_red.calls and "synthesis" in l1_green_l2_red.calls
    escalated = wait_for(lambda: next((a for a in receiver.actions() if a["escalated_from"] == job_id), None),
                         what="the escalation")
    assert escalated["tier"] == "medium"


def test_without_the_label_the_tier_default_decides(supervisor, l1_green_l2_red, make_receiver):
    receiver = make_receiver(receiver_config(supervisor, l1_green_l2_red))
    job = receiver.wait_job(receiver.post(payload(alert(tier="light"))).json()["new_jobs"][0])
    assert job["status"] == "succeeded", job
    assert "synthesis" not in l1_green_l2_red.calls


def test_a_label_that_is_not_a_module_name_is_ignored(supervisor, l1_green_l2_red, make_receiver):
    receiver = make_receiver(receiver_config(supervisor, l1_green_l2_red))
    job = receiver.wait_job(receiver.post(payload(alert(tier="light", verify="../x?module=y"))).json()["new_jobs"][0])
    assert job["status"] == "succeeded", job
    assert set(l1_green_l2_red.calls) == {"health"}
