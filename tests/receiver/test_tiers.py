"""Medium, heavy, escalation and the guards, on real supervisord with real stand-in programs."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.receiver.conftest import TOKEN, alert, now_iso, payload, receiver_config, wait_for
from tests.receiver.fakes import FakeNvml
from tts_sentinel.receiver.heavy import sha256_file

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_MORNING = datetime(2026, 11, 23, 10, 30, tzinfo=SHANGHAI)
SATURDAY_NIGHT = datetime(2026, 11, 28, 23, 0, tzinfo=SHANGHAI)


def test_medium_restarts_inference_and_verifies_l2(supervisor, probe, make_receiver):
    nvml = FakeNvml()
    nvml.processes[0] = [4242]
    cfg = receiver_config(supervisor, probe, target={"gpu": {"reset": True}})
    receiver = make_receiver(cfg, gpu=_gpu(nvml), is_root=lambda: True)
    web_pid, inference_pid = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    supervisor.inject("inference", "oom")

    job_id = receiver.post(payload(alert("TtsCudaOom", tier="medium"))).json()["new_jobs"][0]
    job = receiver.wait_job(job_id)

    assert job["status"] == "succeeded", job
    assert job["verification"] == {**job["verification"], "module": "synthesis", "success": True}
    assert supervisor.pid("tts-inference") != inference_pid
    assert supervisor.pid("tts-webui") == web_pid, "medium leaves the web front alone"
    release = job["steps"][1]
    assert release["ok"] and "still has processes [4242]" in release["output"], "no reset while a process holds it"
    assert "synthesis" in probe.calls


def test_light_escalates_to_medium_when_the_fault_survives(supervisor, probe, make_receiver):
    cfg = receiver_config(supervisor, probe, verification={"timeout_seconds": 3, "interval_seconds": 0.2})
    receiver = make_receiver(cfg)
    inference_pid = supervisor.pid("tts-inference")
    # The fault is in inference: restarting the web front cannot fix L1.
    supervisor.inject("inference", "oom")

    first_id = receiver.post(payload(alert(tier="light"))).json()["new_jobs"][0]
    first = receiver.wait_job(first_id)
    assert first["status"] == "failed"
    assert first["verification"]["success"] is False
    assert first["escalation"].startswith("escalated to medium")

    medium = wait_for(
        lambda: next((a for a in receiver.actions() if a["escalated_from"] == first_id), None),
        what="the escalated job",
    )
    medium = receiver.wait_job(medium["id"])
    assert medium["tier"] == "medium" and medium["status"] == "succeeded", medium
    assert supervisor.pid("tts-inference") != inference_pid
    assert supervisor.healthy("web")
    assert "tts_remediation_escalations_total 1.0" in receiver.client.get("/metrics").text


def test_firing_again_after_success_escalates_and_keeps_the_web_front(supervisor, probe, make_receiver):
    receiver = make_receiver(receiver_config(supervisor, probe))
    supervisor.inject("web", "hang")
    first = receiver.wait_job(receiver.post(payload(alert(tier="light"))).json()["new_jobs"][0])
    assert first["status"] == "succeeded"
    web_pid, inference_pid = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    # Resolved and firing again (new startsAt) within the window: light did not really help.
    supervisor.inject("web", "hang")
    again = receiver.post(payload(alert(tier="light", starts=now_iso()))).json()
    second = receiver.wait_job(again["new_jobs"][0])
    assert second["tier"] == "medium" and second["status"] == "succeeded", second
    assert "fired again" in second["reason"] and f"job {first['id']}" in second["reason"]
    assert second["incident_id"] == first["incident_id"] and second["family"] == "web_front"
    # The medium rung of a web-front incident still restarts the web front: an escalation never
    # drops the component the previous tier acted on.
    assert "restart web via supervisord" in [s["step"] for s in second["steps"]]
    assert supervisor.pid("tts-webui") != web_pid and supervisor.pid("tts-inference") != inference_pid
    [incident] = receiver.incidents()
    assert incident["tiers"] == ["light", "medium"] and incident["components"] == ["web", "inference"]
    assert incident["status"] == "healed" and incident["page"] is None


def test_one_action_per_incident_with_the_highest_tier(supervisor, probe, make_receiver):
    receiver = make_receiver(receiver_config(supervisor, probe, dry_run=True))
    answer = receiver.post(
        payload(
            alert("TtsStreamUnderflow", tier="light", verify="synthesis"),
            alert("TtsHealthProbeFailing", tier="medium"),
            alert("TtsUnknown", tier="none"),
        )
    ).json()
    # Both web-front alerts: one incident, one action at the highest tier; the tier-none alert
    # is journaled apart and opens no incident.
    assert len(answer["new_jobs"]) == 2
    acting, journal_only = (receiver.wait_job(i) for i in answer["new_jobs"])
    assert acting["tier"] == "medium" and "TtsHealthProbeFailing" in acting["reason"]
    assert acting["family"] == "web_front" and len(acting["alerts"]) == 2
    assert journal_only["tier"] == "none" and journal_only["incident_id"] is None


def test_dry_run_journals_exactly_what_would_run(supervisor, probe, make_receiver):
    receiver = make_receiver(receiver_config(supervisor, probe, target={"dry_run": True}))
    pids = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    job = receiver.wait_job(receiver.post(payload(alert("TtsCudaOom", tier="medium"))).json()["new_jobs"][0])
    assert job["status"] == "dry_run" and job["dry_run"] is True
    assert [s["step"] for s in job["steps"]] == [
        "stop inference via supervisord",
        "release GPU 0: no reset configured",
        "start inference via supervisord",
        "wait 0.3s",
        f"verify {probe.url}/probe?module=synthesis",
    ]
    assert (supervisor.pid("tts-webui"), supervisor.pid("tts-inference")) == pids


def test_unmatched_alert_is_counted_not_acted_on(make_receiver):
    receiver = make_receiver(receiver_config(None, None))
    stray = alert(tier="light")
    stray["labels"]["service"] = "someone-else"
    answer = receiver.post(payload(stray)).json()
    assert answer["ignored"] == 1 and answer["new_jobs"] == []
    assert receiver.actions() == [], "no job, not even an ignored one"
    [row] = receiver.client.get("/unmatched", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert row["alertname"] == "TtsHealthProbeFailing" and row["count"] == 1
    assert row["example"]["service"] == "someone-else"
    metrics = receiver.client.get("/metrics").text
    assert 'tts_receiver_unmatched_alerts_total{alertname="TtsHealthProbeFailing"} 1.0' in metrics


def test_cooldown_and_budget_refuse(supervisor, probe, make_receiver, alertmanager):
    cfg = receiver_config(
        supervisor,
        probe,
        alertmanager_url=alertmanager.url,
        # window 0: firing again after a success repeats the tier instead of escalating
        guards={"cooldown_seconds": {"light": 600}, "budget_actions": 1, "escalation_window_seconds": 0},
    )
    receiver = make_receiver(cfg)
    supervisor.inject("web", "hang")
    first = receiver.wait_job(receiver.post(payload(alert(tier="light"))).json()["new_jobs"][0])
    assert first["status"] == "succeeded"
    supervisor.inject("web", "hang")
    again = payload(alert(tier="light", starts=now_iso()))
    second = receiver.wait_job(receiver.post(again).json()["new_jobs"][0])
    assert second["status"] == "refused" and "cooldown" in second["note"], second
    assert second["incident_id"] == first["incident_id"], "the cooldown is the incident's own"
    supervisor.inject("inference", "oom")
    third = receiver.wait_job(receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium"))).json()["new_jobs"][0])
    assert third["incident_id"] != first["incident_id"]
    assert third["status"] == "refused" and "budget" in third["note"], third
    assert "on-call paged" in third["note"]
    paged = wait_for(lambda: alertmanager.alerts("TtsRemediationExhausted"), what="the page in Alertmanager")
    assert paged[0]["labels"]["reason"] == "budget_exhausted"
    assert paged[0]["labels"]["tier"] == "none", "a page never feeds back into remediation"
    assert paged[0]["labels"]["incident"] == str(third["incident_id"])
    metrics = receiver.client.get("/metrics").text
    assert 'tts_remediation_refused_total{reason="cooldown"} 1.0' in metrics
    assert 'tts_remediation_refused_total{reason="budget_exhausted"} 1.0' in metrics


def test_journal_only_alerts_do_not_spend_the_action_budget(supervisor, probe, make_receiver):
    """A crash the process manager already restarted (tier none) is journaled, not an action: the
    budget counts restarts only (a soak spent it on two TtsProcessCrashed lines)."""
    cfg = receiver_config(supervisor, probe, guards={"budget_actions": 1})
    receiver = make_receiver(cfg)
    for name in ("TtsProcessCrashed", "TtsInvalidUnicodeInput"):
        noted = receiver.wait_job(receiver.post(payload(alert(name, tier="none"))).json()["new_jobs"][0])
        assert noted["status"] == "succeeded" and noted["tier"] == "none", noted
    supervisor.inject("web", "hang")
    acted = receiver.wait_job(receiver.post(payload(alert(tier="light"))).json()["new_jobs"][0])
    assert acted["status"] == "succeeded", acted
    supervisor.inject("inference", "oom")
    over = receiver.wait_job(receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium"))).json()["new_jobs"][0])
    assert over["status"] == "refused" and "1 actions" in over["note"], over


def test_heavy_refused_in_business_hours_and_on_call_paged(supervisor, probe, make_receiver, alertmanager):
    cfg = receiver_config(supervisor, probe, alertmanager_url=alertmanager.url)
    receiver = make_receiver(cfg, now=lambda: MONDAY_MORNING)
    pids = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    job = receiver.wait_job(receiver.post(payload(alert("TtsSegfault", tier="heavy"))).json()["new_jobs"][0])
    assert job["status"] == "refused"
    assert "business hours" in job["note"] and "Mon 10:30" in job["note"]
    assert (supervisor.pid("tts-webui"), supervisor.pid("tts-inference")) == pids
    paged = wait_for(lambda: alertmanager.alerts("TtsRemediationRefused"), what="the refusal in Alertmanager")
    assert paged[0]["labels"]["reason"] == "business_hours"
    assert paged[0]["labels"]["target"] == "qwen3-tts"


def _heavy_target(tmp_path, weights_manifest=None):
    cache = tmp_path / "cache"
    (cache / "sub").mkdir(parents=True)
    (cache / "sub" / "x.bin").write_bytes(b"x")
    (cache / "y.tmp").write_bytes(b"y")
    outside = tmp_path / "keep.txt"
    outside.write_text("must survive")
    (cache / "link").symlink_to(outside)
    weights = tmp_path / "models"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"weights-v1")
    service_config = tmp_path / "config.yaml"
    service_config.write_text("model: qwen3-tts\nport: 8000\n")
    repo = tmp_path / "deploy"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "deploy"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    target = {
        "cache_dir": str(cache),
        "weights_dir": str(weights),
        "service_config": str(service_config),
        "git_dir": str(repo),
        "weights_manifest": str(weights_manifest or tmp_path / "manifest.json"),
    }
    return target, commit, outside


def test_heavy_outside_business_hours_records_clears_and_restarts(supervisor, probe, make_receiver, tmp_path):
    target, commit, outside = _heavy_target(tmp_path)
    receiver = make_receiver(receiver_config(supervisor, probe, target=target), now=lambda: SATURDAY_NIGHT)
    pids = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    job = receiver.wait_job(receiver.post(payload(alert("TtsSegfault", tier="heavy"))).json()["new_jobs"][0])
    assert job["status"] == "succeeded", job
    record = job["steps"][0]["record"]
    assert record["git_commit"] == commit
    assert record["weights"] == {"model.safetensors": sha256_file(tmp_path / "models" / "model.safetensors")}
    assert json.loads((tmp_path / "manifest.json").read_text()) == record["weights"]
    assert list((tmp_path / "cache").iterdir()) == []
    assert outside.read_text() == "must survive", "clearing the cache never follows a link out of it"
    assert supervisor.pid("tts-webui") != pids[0] and supervisor.pid("tts-inference") != pids[1]
    order = [s["step"] for s in job["steps"][1:]]
    assert order.index("start inference via supervisord") < order.index("start web via supervisord")
    assert job["verification"]["module"] == "synthesis" and job["verification"]["success"]


def test_heavy_refused_when_weights_changed_or_config_broken(supervisor, probe, make_receiver, tmp_path, alertmanager):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"model.safetensors": "0" * 64}))
    target, _commit, _ = _heavy_target(tmp_path, weights_manifest=manifest)
    cfg = receiver_config(
        supervisor, probe, target=target, alertmanager_url=alertmanager.url, guards={"cooldown_seconds": {}}
    )
    receiver = make_receiver(cfg, now=lambda: SATURDAY_NIGHT)
    pids = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    job = receiver.wait_job(receiver.post(payload(alert("TtsSegfault", tier="heavy"))).json()["new_jobs"][0])
    assert job["status"] == "refused"
    assert "model.safetensors changed" in job["note"] and "restart cannot fix" in job["note"]
    assert (tmp_path / "cache" / "y.tmp").exists(), "nothing was cleared"

    manifest.unlink()
    (tmp_path / "config.yaml").write_text("model: [unclosed\n")
    job2 = receiver.wait_job(receiver.post(payload(alert("TtsBadConfig", tier="heavy"))).json()["new_jobs"][0])
    assert job2["status"] == "refused" and "does not parse" in job2["note"]
    assert (supervisor.pid("tts-webui"), supervisor.pid("tts-inference")) == pids
    reasons = wait_for(
        lambda: (
            len(alertmanager.alerts("TtsRemediationRefused")) >= 1
            and {a["labels"]["reason"] for a in alertmanager.alerts("TtsRemediationRefused")}
        ),
        what="the refusals in Alertmanager",
    )
    assert reasons == {"preflight"}


def _gpu(nvml):
    from tts_sentinel.receiver.gpu import NvmlGpu

    return NvmlGpu(nvml)
