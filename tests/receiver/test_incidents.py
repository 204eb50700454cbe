"""Incidents, not alerts: families decide separate incidents, recurrences escalate, a healed
incident pages nobody, a failed one pages once with evidence, triage stays in its window."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from tests.receiver.conftest import TOKEN, alert, now_iso, payload, receiver_config, wait_for
from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.receiver.config import ReceiverConfig, Step
from tts_sentinel.receiver.families import IncidentsConfig, classify, start_rung
from tts_sentinel.receiver.incidents import IncidentBook
from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.pager import OnCallPager
from tts_sentinel.receiver.plan import build_plan
from tts_sentinel.receiver.records import Incident, Job
from tts_sentinel.receiver.tiers import Tier

SATURDAY_NIGHT = datetime(2026, 11, 28, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
FAMILIES = IncidentsConfig().families


# -- deciding the family ---------------------------------------------------------------------
def test_the_seed_faults_fall_into_their_families():
    def family(name, tier, **labels):
        return classify({"alertname": name, **labels}, Tier(tier), None, FAMILIES).name

    assert family("TtsHealthProbeFailing", "light", verify="health") == "web_front"  # hang, error500
    assert family("TtsCudaOutOfMemory", "medium", pattern="cuda_oom") == "gpu_memory"  # oom
    assert family("TtsAudioSilent", "medium", pattern="audio_silent") == "audio_output"  # silent, unicode
    assert family("TtsSynthesisUnavailable", "medium", verify="synthesis") == "inference_engine"  # error500, hang
    assert family("TtsSegfault", "heavy") == "weights_config"
    assert family("TtsGpuOverheating", "derate") == "gpu_thermal"
    # derating and restarting never share a ladder, whatever the alert is called
    labelled = classify({"alertname": "TtsHealthProbeFailing", "tier": "derate"}, Tier.DERATE, None, FAMILIES)
    assert labelled.name == "gpu_thermal"
    odd = classify({"alertname": "TtsHealthProbeFailing"}, Tier.DERATE, None, FAMILIES)
    assert odd.ladder == (Tier.DERATE,)
    stray = classify({"alertname": "SomethingNew"}, Tier.MEDIUM, None, FAMILIES)
    assert stray.name == "unclassified:SomethingNew" and stray.ladder == (Tier.MEDIUM, Tier.HEAVY)


def test_the_vllm_omni_engine_faults_fall_into_the_inference_engine_family():
    def family(name, **labels):
        return classify({"alertname": name, "tier": "medium", **labels}, Tier.MEDIUM, None, FAMILIES)

    for name, labels in (("TtsVllmEngineCoreDied", {"pattern": "engine_core_fatal"}), ("TtsVllmEngineHung", {}),
                         ("TtsVllmEngineHungProbes", {}), ("TtsStreamingUnderrun", {})):
        decision = family(name, **labels)
        assert (decision.name, decision.ladder) == ("inference_engine", (Tier.MEDIUM, Tier.HEAVY)), (name, decision)
    # one lost CUDA context, seen by NVML (an XID) and in vLLM's log: one family, so one incident
    assert family("TtsGpuXidRecoverable").name == family("TtsVllmGpuFault").name == "cuda_context"
    # a stream that does not stop is the audio, not a dead engine
    assert family("TtsStreamingRunaway").name == "audio_output"
    # the fatal line is a cause: a symptom alert that its window explains joins the family
    verdict = {"root_cause": {"pattern": "engine_core_fatal", "first": {"log": "inference", "line": "fatal"}}}
    symptom = classify({"alertname": "TtsSynthesisUnavailable", "verify": "synthesis"}, Tier.MEDIUM, verdict, FAMILIES)
    assert symptom.name == "inference_engine", symptom
    # a name that merely starts alike is not one of them
    assert family("TtsVllmEngineHungForever").name == "unclassified:TtsVllmEngineHungForever"


def test_the_triage_root_cause_decides_the_family_of_a_symptom():
    verdict = {
        "root_cause": {"pattern": "cuda_oom", "first": {"log": "inference", "line": "[CUDA] Out of memory"}},
        "derived": [{"pattern": "audio_silent"}],
    }
    silent = classify({"alertname": "TtsAudioSilent", "pattern": "audio_silent"}, Tier.MEDIUM, verdict, FAMILIES)
    assert silent.name == "gpu_memory" and "triage root cause cuda_oom" in silent.reason
    l2 = classify({"alertname": "TtsSynthesisUnavailable", "verify": "synthesis"}, Tier.LIGHT, verdict, FAMILIES)
    assert l2.name == "gpu_memory", "an OOM explains a failing synthesis probe"
    hang = classify({"alertname": "TtsHealthProbeFailing", "verify": "health"}, Tier.LIGHT, verdict, FAMILIES)
    assert hang.name == "web_front", "an OOM does not explain a hung web front"


def test_a_ladder_starts_at_the_rung_the_alert_asks_for():
    assert start_rung((Tier.LIGHT, Tier.MEDIUM, Tier.HEAVY), Tier.LIGHT) == 0
    assert start_rung((Tier.LIGHT, Tier.MEDIUM, Tier.HEAVY), Tier.MEDIUM) == 1
    assert start_rung((Tier.MEDIUM, Tier.HEAVY), Tier.LIGHT) == 0
    with pytest.raises(ValueError, match="must climb"):
        IncidentsConfig.model_validate({"families": [{"name": "x", "ladder": ["heavy", "light"]}]})


def test_an_escalation_keeps_every_component_and_check_of_the_rungs_below():
    config = ReceiverConfig()
    job = Job(id=2, created_at=0, updated_at=0, target="t", tier=Tier.MEDIUM, status="queued")
    incident = Incident(
        id=1, target="t", family="web_front", opened_at=0, updated_at=0,
        ladder=[Tier.LIGHT, Tier.MEDIUM, Tier.HEAVY], rung=1, tiers=["light"], components=["web"],
    )
    steps = [(s.action, s.component if s.action in ("restart", "stop", "start") else s.module)
             for s in build_plan(config, job, incident)]
    assert steps == [
        ("stop", "inference"), ("release_gpu", "health"), ("start", "inference"), ("restart", "web"),
        ("wait", "health"), ("verify", "synthesis"), ("verify", "health"),
    ]
    alone = build_plan(config, job, None)
    assert all(s.component != "web" for s in alone if s.action == "restart"), "without an incident: the tier"
    assert isinstance(alone[0], Step)


# -- separate incidents, recurrence, late alerts ---------------------------------------------
def test_different_faults_on_one_target_are_separate_incidents_at_their_own_base_tier(
    supervisor, probe, make_receiver
):
    receiver = make_receiver(receiver_config(supervisor, probe))
    supervisor.inject("web", "hang")
    hang = receiver.wait_job(receiver.post(payload(alert("TtsHealthProbeFailing", verify="health"))).json()[
        "new_jobs"][0])
    assert (hang["tier"], hang["status"], hang["family"]) == ("light", "succeeded", "web_front")

    # An OOM seconds later, inside the escalation window: its own incident, its own base tier.
    supervisor.inject("inference", "oom")
    oom = receiver.wait_job(receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium"))).json()[
        "new_jobs"][0])
    assert (oom["tier"], oom["status"], oom["family"]) == ("medium", "succeeded", "gpu_memory"), oom
    assert oom["incident_id"] != hang["incident_id"] and oom["escalated_from"] is None

    # Silence after the OOM healed is not the OOM coming back: a third incident, medium again.
    supervisor.inject("inference", "silent")
    silent = receiver.wait_job(receiver.post(
        payload(alert("TtsSynthesisSilent", tier="medium", verify="synthesis"))).json()["new_jobs"][0])
    assert (silent["tier"], silent["status"], silent["family"]) == ("medium", "succeeded", "audio_output")
    assert "fired again" not in silent["reason"]

    incidents = {i["family"]: i for i in receiver.incidents()}
    assert {f: i["tiers"] for f, i in incidents.items()} == {
        "web_front": ["light"], "gpu_memory": ["medium"], "audio_output": ["medium"]}
    assert all(i["status"] == "healed" and i["page"] is None for i in incidents.values())
    assert incidents["gpu_memory"]["family_reason"].startswith("TtsCudaOutOfMemory is a gpu_memory alert")


def test_an_alert_arriving_late_after_a_success_is_checked_not_acted_on(supervisor, probe, make_receiver):
    receiver = make_receiver(receiver_config(supervisor, probe))
    supervisor.inject("inference", "oom")
    oom = receiver.wait_job(receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium"))).json()[
        "new_jobs"][0])
    assert oom["status"] == "succeeded"
    pids = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    # L2 failures counted before the restart make an alert fire after it; the probe is green now.
    late = receiver.wait_job(receiver.post(
        payload(alert("TtsSynthesisUnavailable", tier="light", verify="synthesis"))).json()["new_jobs"][0])
    assert late["status"] == "ignored" and "green now" in late["note"] and f"job {oom['id']}" in late["note"]
    assert (supervisor.pid("tts-webui"), supervisor.pid("tts-inference")) == pids, "nothing restarted"
    assert next(i for i in receiver.incidents() if i["id"] == late["incident_id"])["status"] == "healed"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")


def heavy_steps(module: str) -> list[dict[str, str]]:
    """A heavy tier without the cache and weights steps (the test target has neither), verifying `module`."""
    return [{"action": "stop", "component": "web"}, {"action": "stop", "component": "inference"},
            {"action": "start", "component": "inference"}, {"action": "start", "component": "web"},
            {"action": "verify", "module": module}]


NEVER = {"weekdays": []}  # no business hours: a heavy restart runs whenever the test does
SLOW_MACHINE = {"timeout_seconds": 30, "interval_seconds": 0.2, "request_timeout_seconds": 3}  # restarts under load


def test_a_probe_alert_that_started_during_our_restart_is_its_echo_not_a_fault(supervisor, probe, make_receiver):
    # A medium restart: while inference restarts, L2 fails and TtsSynthesisUnavailable starts.
    receiver = make_receiver(receiver_config(supervisor, probe, verification=SLOW_MACHINE))
    supervisor.inject("inference", "oom")
    oom = receiver.wait_job(receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", starts=now_iso())))
                            .json()["new_jobs"][0])
    assert oom["status"] == "succeeded"
    pids = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    during = iso((oom["started_at"] + oom["finished_at"]) / 2)
    echo = receiver.wait_job(receiver.post(payload(alert(
        "TtsSynthesisUnavailable", verify="synthesis", fingerprint="l2", starts=during))).json()["new_jobs"][0])
    assert echo["status"] == "ignored" and "echo" in echo["note"] and f"medium job {oom['id']}" in echo["note"], echo
    assert (supervisor.pid("tts-webui"), supervisor.pid("tts-inference")) == pids, "nothing restarted"
    incident = next(i for i in receiver.incidents() if i["id"] == echo["incident_id"])
    assert incident["status"] in ("healed", "resolved") and "light" not in incident["tiers"], incident

    # The web front's health failing during that inference-only restart is not its echo: a real
    # hang, acted on at once at its own base tier, no escalation.
    supervisor.inject("web", "hang")
    hang = receiver.wait_job(receiver.post(payload(alert(
        "TtsHealthProbeFailing", verify="health", fingerprint="h2", starts=during))).json()["new_jobs"][0], timeout=90)
    assert (hang["tier"], hang["status"], hang["escalated_from"]) == ("light", "succeeded", None), hang
    assert "echo" not in hang["reason"] and hang["incident_id"] != oom["incident_id"]


def test_a_health_alert_after_a_heavy_restart_is_its_echo_and_its_incident_closes(supervisor, probe, make_receiver):
    heavy = heavy_steps("synthesis")
    receiver = make_receiver(receiver_config(supervisor, probe, tiers={"heavy": heavy}, verification=SLOW_MACHINE,
                                             business_hours=NEVER))
    segv = receiver.wait_job(receiver.post(payload(alert("TtsSegfault", tier="heavy", starts=now_iso())))
                             .json()["new_jobs"][0])
    assert segv["status"] == "succeeded", segv
    pids = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    # L1 failed while the heavy job had the web front stopped; the alert arrives after it healed.
    after = iso(segv["finished_at"] + 1)
    echo = receiver.wait_job(receiver.post(payload(alert(
        "TtsHealthProbeFailing", verify="health", fingerprint="h1", starts=after))).json()["new_jobs"][0])
    assert echo["status"] == "ignored" and f"heavy job {segv['id']}" in echo["note"], echo
    assert (supervisor.pid("tts-webui"), supervisor.pid("tts-inference")) == pids, "nothing restarted"
    opened = next(i for i in receiver.incidents() if i["id"] == echo["incident_id"])
    assert (opened["family"], opened["status"], opened["tiers"]) == ("web_front", "resolved", []), opened
    assert opened["closed_at"]
    # The next real web fault opens a new incident at light: nothing to escalate from.
    supervisor.inject("web", "hang")
    hang = receiver.wait_job(receiver.post(payload(alert(
        "TtsHealthProbeFailing", verify="health", fingerprint="h2", starts=now_iso()))).json()["new_jobs"][0], timeout=90)
    assert (hang["tier"], hang["status"], hang["escalated_from"]) == ("light", "succeeded", None), hang
    assert hang["incident_id"] != echo["incident_id"]


def test_a_restart_loop_right_after_a_crash_is_never_taken_for_that_crash_s_echo(supervisor, probe, make_receiver):
    # Three crashes in ten minutes, each restarted by supervisord, the service up again each time:
    # the loop alert starts right after the last crash's record, and it still acts (heavy).
    heavy = heavy_steps("health")
    receiver = make_receiver(receiver_config(supervisor, probe, tiers={"heavy": heavy}, verification=SLOW_MACHINE,
                                             business_hours=NEVER))
    # a recent success on the target, so the late-alert recheck would apply to a probe alert
    supervisor.inject("inference", "oom")
    oom = receiver.wait_job(receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", starts=now_iso())))
                            .json()["new_jobs"][0])
    assert oom["status"] == "succeeded"
    crash = receiver.wait_job(receiver.post(payload(alert(
        "TtsProcessCrashed", tier="none", component="web", fingerprint="c1", starts=now_iso()))).json()["new_jobs"][0])
    assert crash["status"] == "succeeded" and crash["tier"] == "none"
    pids = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    loop = receiver.wait_job(receiver.post(payload(alert(
        "TtsProcessRestartLoop", tier="heavy", verify="health", component="web", fingerprint="l1",
        starts=now_iso()))).json()["new_jobs"][0], timeout=90)
    assert (loop["tier"], loop["status"]) == ("heavy", "succeeded"), loop
    assert "echo" not in (loop["note"] or "") and "echo" not in loop["reason"]
    assert supervisor.pid("tts-webui") != pids[0] and supervisor.pid("tts-inference") != pids[1]


def test_a_recurrence_of_an_incident_healed_without_our_action_starts_over(supervisor, probe, make_receiver):
    # No echo grace: the hang below would otherwise be probed as a possible echo of the medium job.
    receiver = make_receiver(receiver_config(supervisor, probe, incidents={"echo_grace_seconds": 0}))
    supervisor.inject("inference", "oom")
    oom = receiver.wait_job(receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", starts=now_iso())))
                            .json()["new_jobs"][0])
    # A late L2 alert after that success: probed green, its web_front incident healed with no action.
    late = receiver.wait_job(receiver.post(payload(alert(
        "TtsHealthProbeFailing", verify="health", fingerprint="h1"))).json()["new_jobs"][0])
    assert late["status"] == "ignored" and late["incident_id"] != oom["incident_id"]
    # The web front then really hangs: the same family, but nothing of ours healed it before, so
    # there is nothing to escalate from: light, its base.
    supervisor.inject("web", "hang")
    hang = receiver.wait_job(receiver.post(payload(alert(
        "TtsHealthProbeFailing", verify="health", fingerprint="h2", starts=now_iso()))).json()["new_jobs"][0])
    assert (hang["tier"], hang["status"], hang["escalated_from"]) == ("light", "succeeded", None), hang
    assert hang["incident_id"] == late["incident_id"] and "starts over" in hang["reason"], hang


def test_a_late_copy_with_an_earlier_starts_at_is_a_duplicate_not_a_recurrence(supervisor, probe, make_receiver):
    # HA: Alertmanager peer a sends replica a's startsAt; peer b, after the action, the merged
    # (earlier) one. A log-line alert has no probe to recheck: only the dedup stands between it
    # and an escalation to heavy.
    receiver = make_receiver(receiver_config(supervisor, probe))
    supervisor.inject("inference", "oom")
    first = receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", starts="2026-11-23T10:00:01Z")))
    job = receiver.wait_job(first.json()["new_jobs"][0])
    assert job["status"] == "succeeded"
    pids = supervisor.pid("tts-webui"), supervisor.pid("tts-inference")
    late = receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", starts="2026-11-23T10:00:00Z"))).json()
    assert late["new_jobs"] == [] and late["joined_jobs"] == [] and late["duplicates"] == 1, late
    again = receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", starts="2026-11-23T10:00:00Z"))).json()
    assert again["duplicates"] == 1 and again["new_jobs"] == [], "the copy's own key is remembered"
    assert (supervisor.pid("tts-webui"), supervisor.pid("tts-inference")) == pids, "nothing acted twice"
    [only] = receiver.actions()
    assert only["id"] == job["id"] and only["duplicates"] == 2
    [incident] = receiver.incidents()
    assert incident["tiers"] == ["medium"] and incident["status"] == "healed"
    # A firing that starts after the action is a recurrence and still climbs the ladder.
    supervisor.inject("inference", "oom")
    recur = receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", starts=now_iso()))).json()
    assert receiver.job(recur["new_jobs"][0])["tier"] == "heavy" and "escalate" in receiver.job(recur["new_jobs"][0])[
        "reason"]
    wait_for(receiver.idle, timeout=60, what="the heavy job to end")


# -- paging ----------------------------------------------------------------------------------
def test_a_healed_incident_pages_nobody_and_closes_after_the_quiet_period(
    supervisor, probe, make_receiver, alertmanager
):
    cfg = receiver_config(supervisor, probe, alertmanager_url=alertmanager.url, incidents={"quiet_seconds": 0.5})
    receiver = make_receiver(cfg)
    supervisor.inject("web", "hang")
    job = receiver.wait_job(receiver.post(payload(alert())).json()["new_jobs"][0])
    assert job["status"] == "succeeded"
    receiver.post(payload(alert(status="resolved"), status="resolved"))
    closed = wait_for(lambda: (i := receiver.incidents()[0])["closed_at"] and i, what="the incident to close")
    assert closed["status"] == "healed" and closed["page"] is None and closed["firing_alerts"] == 0
    assert alertmanager.alerts() == [], "nobody was paged"


def test_the_receiver_lists_the_alerts_that_still_fire_in_incidents_it_healed(
    supervisor, l1_green_l2_red, make_receiver
):
    """What lets the paging backstop (TtsNotHealed) leave out a healed fault's lingering alert."""

    def listed():
        text = receiver.client.get("/metrics").text
        return sorted(line.split(" ")[0] for line in text.splitlines()
                      if line.startswith("tts_receiver_healed_alert_firing{"))

    cfg = receiver_config(supervisor, l1_green_l2_red, verification={"timeout_seconds": 0.6, "interval_seconds": 0.2})
    receiver = make_receiver(cfg, now=lambda: SATURDAY_NIGHT)
    supervisor.inject("web", "hang")
    job = receiver.wait_job(receiver.post(payload(alert())).json()["new_jobs"][0])
    assert job["status"] == "succeeded"
    assert listed() == ['tts_receiver_healed_alert_firing{alertname="TtsHealthProbeFailing",target="qwen3-tts"}']
    # The L2 probe stays red: that incident fails its ladder. Its alert is never listed, so the
    # backstop still counts it (as it counts every alert while the receiver is down).
    receiver.post(payload(alert("TtsSynthesisSilent", tier="medium", verify="synthesis")))
    wait_for(lambda: len(receiver.actions()) >= 3 and receiver.idle(), timeout=60, what="the ladder to end")
    silent = next(i for i in receiver.incidents() if i["family"] == "audio_output")
    assert silent["status"] == "paged" and silent["firing_alerts"] == 1
    assert listed() == ['tts_receiver_healed_alert_firing{alertname="TtsHealthProbeFailing",target="qwen3-tts"}']
    receiver.post(payload(alert(status="resolved"), status="resolved"))
    assert listed() == [], "resolved: the healed incident holds no firing alert any more"


def test_a_healed_alert_firing_past_the_longest_look_back_is_no_longer_listed(supervisor, probe, make_receiver):
    """Still firing long after the heal: the fault is back (its alert never resolved), the backstop counts it."""
    cfg = receiver_config(supervisor, probe, incidents={"lookback_seconds": 3.0})
    receiver = make_receiver(cfg)
    supervisor.inject("web", "hang")
    assert receiver.wait_job(receiver.post(payload(alert())).json()["new_jobs"][0])["status"] == "succeeded"
    metric = 'tts_receiver_healed_alert_firing{alertname="TtsHealthProbeFailing",target="qwen3-tts"} 1.0'
    assert metric in receiver.client.get("/metrics").text
    wait_for(lambda: metric not in receiver.client.get("/metrics").text, timeout=10, what="the look-back to pass")
    assert receiver.incidents()[0]["status"] == "healed" and receiver.incidents()[0]["firing_alerts"] == 1


def test_an_exhausted_incident_pages_once_with_its_evidence(
    supervisor, l1_green_l2_red, make_receiver, alertmanager
):
    cfg = receiver_config(
        supervisor,
        l1_green_l2_red,
        alertmanager_url=alertmanager.url,
        verification={"timeout_seconds": 0.5, "interval_seconds": 0.2},
    )
    receiver = make_receiver(cfg, now=lambda: SATURDAY_NIGHT)
    receiver.post(payload(alert("TtsHealthProbeFailing", verify="synthesis")))
    incident = wait_for(lambda: (i := receiver.incidents()) and i[0]["page"] and i[0], timeout=60,
                        what="the incident to page")
    assert incident["tiers"] == ["light", "medium", "heavy"] and incident["status"] == "paged"
    # Firing again after the page acts again (no cooldown bypass) but never pages twice.
    wait_for(receiver.idle, what="the heavy job to finish")
    again = receiver.post(payload(alert("TtsHealthProbeFailing", verify="synthesis", starts=now_iso())))
    assert receiver.wait_job(again.json()["new_jobs"][0])["status"] == "refused", "heavy's cooldown"
    pages = wait_for(lambda: alertmanager.alerts("TtsRemediationExhausted"), what="the page in Alertmanager")
    time.sleep(1)
    pages = [a for a in alertmanager.alerts() if a["labels"].get("incident") == str(incident["id"])]
    assert len(pages) == 1, pages
    page = pages[0]
    assert page["labels"]["reason"] == "heavy_failed" and page["labels"]["family"] == "web_front"
    notes = page["annotations"]
    assert [line.split()[2] for line in notes["actions"].splitlines()] == ["light", "medium", "heavy"]
    assert "failed" in notes["actions"] and "verify" in notes["actions"]
    assert notes["verification"].startswith("synthesis: RED")
    assert "root_cause" in notes and notes["summary"].startswith(f"incident {incident['id']}")
    # on-call's page links to the incident page with a signed link that opens without the token
    link = urlsplit(notes["incident_page"])
    assert link.path == f"/incidents/{incident['id']}" and TOKEN not in notes["incident_page"]
    opened = receiver.client.get(f"{link.path}?{link.query}")
    assert opened.status_code == 200 and "heavy_failed" in opened.text


def test_an_incident_not_healed_within_the_bound_pages_once(supervisor, probe, make_receiver, alertmanager):
    slow_light = [{"action": "wait", "seconds": 5}, {"action": "reload", "component": "web"},
                  {"action": "verify", "module": "health"}]
    cfg = receiver_config(supervisor, probe, alertmanager_url=alertmanager.url,
                          tiers={"light": slow_light}, incidents={"heal_bound_seconds": 1})
    receiver = make_receiver(cfg)
    supervisor.inject("web", "hang")
    job = receiver.wait_job(receiver.post(payload(alert())).json()["new_jobs"][0], timeout=40)
    assert job["status"] == "succeeded"
    [incident] = receiver.incidents()
    assert incident["status"] == "paged" and incident["page"]["reason"] == "not_healed_in_time"
    assert incident["healed_at"], "it healed after the page: the journal says both"
    pages = wait_for(lambda: alertmanager.alerts("TtsRemediationExhausted"), what="the page in Alertmanager")
    assert len(pages) == 1 and pages[0]["labels"]["reason"] == "not_healed_in_time"


def test_the_sweep_closes_quiet_and_stale_incidents_and_pages_only_live_ones(tmp_path):
    config = ReceiverConfig.model_validate({
        "alertmanager_url": None,
        "incidents": {"quiet_seconds": 10, "heal_bound_seconds": 60},
        "guards": {"escalation_window_seconds": 100},
    })
    journal = Journal(tmp_path / "j.sqlite3")
    book = IncidentBook(config, journal, OnCallPager(None))
    now = time.time()

    def incident(firing=(), **fields):
        made = journal.insert_incident(target="t", family="web_front", ladder=["light"], opened_at=now - 1000,
                                       unhealed_since=now - 1000, **fields).id
        journal.add_firing(made, firing)
        return made

    quiet = incident(status="healed", healed_at=now - 50, resolved_at=now - 20)
    waiting = incident(status="healed", healed_at=now - 50, resolved_at=now - 5)
    stale = incident(status="healed", healed_at=now - 200, firing=["never-resolved"])
    stuck = incident(status="open", firing=["still-firing"])
    calm = incident(status="open", resolved_at=now - 5)
    for i in (stuck, calm):
        journal.insert_job(target="t", tier="light", status="refused", incident_id=i, family="web_front")

    book.sweep_all(["t"], now)
    book.sweep_all(["t"], now + 1)  # a second sweep pages nobody again
    state = {i.id: i for i in journal.incidents()}
    assert state[quiet].closed_at and state[quiet].status == "healed"
    assert state[waiting].closed_at is None, "still in its quiet period"
    assert state[stale].closed_at and state[stale].status == "healed", "no resolved notification ever came"
    assert state[stuck].status == "paged" and state[stuck].page["reason"] == "not_healed_in_time"
    assert "NOT told" in state[stuck].page["note"], "no Alertmanager configured: the journal says so"
    assert state[calm].status == "open" and state[calm].page is None, "its alerts resolved: nobody paged"


def test_one_sweep_covers_the_workers_targets_and_a_failing_incident_stops_no_other(tmp_path, monkeypatch, caplog):
    config = ReceiverConfig.model_validate({
        "alertmanager_url": None, "incidents": {"quiet_seconds": 10, "heal_bound_seconds": 60},
    })
    journal = Journal(tmp_path / "j.sqlite3")
    book = IncidentBook(config, journal, OnCallPager(None))
    now = time.time()

    def incident(target, **fields):
        made = journal.insert_incident(target=target, family="web_front", ladder=["light"], opened_at=now - 1000,
                                       unhealed_since=now - 1000, **fields).id
        return made

    quiet = {t: incident(t, status="healed", healed_at=now - 50, resolved_at=now - 20) for t in ("a", "b", "other")}
    stuck = {t: incident(t, status="open") for t in ("a", "b")}
    for target, made in stuck.items():
        journal.add_firing(made, [f"firing-{target}"])
        journal.insert_job(target=target, tier="light", status="running", incident_id=made, family="web_front")
    real_page = book.page

    def page(incident, *args, **kwargs):
        if incident.id == stuck["a"]:
            raise RuntimeError("Alertmanager answered nonsense")
        return real_page(incident, *args, **kwargs)

    monkeypatch.setattr(book, "page", page)
    notes = book.sweep_all(["a", "b"], now)
    state = {i.id: i for i in journal.incidents()}
    assert state[quiet["a"]].closed_at and state[quiet["b"]].closed_at
    assert state[quiet["other"]].closed_at is None, "not this worker's target: left to its own"
    assert state[stuck["b"]].status == "paged", "swept after the incident that failed"
    assert state[stuck["a"]].status == "open" and state[stuck["a"]].page is None
    assert f"incident sweep of incident {stuck['a']} (a)" in caplog.text
    assert sum("closed" in n for n in notes) == 2
    journal.close()


# -- incident-scoped triage ------------------------------------------------------------------
def _logs(tmp_path):
    return LogsConfig.model_validate({"files": [
        {"name": "inference", "path": str(tmp_path / "inference.log"), "rotation": "size"},
        {"name": "health", "path": str(tmp_path / "health.log"), "rotation": "none"},
    ]})


def _line(seconds_ago, text):
    when = datetime.now() - timedelta(seconds=seconds_ago)
    return when.strftime("%Y-%m-%d %H:%M:%S,%f")[:-3] + " [ERROR] " + text + "\n"


def test_the_triage_of_an_incident_never_shows_an_earlier_incidents_lines(make_receiver, tmp_path):
    receiver = make_receiver(receiver_config(None, None, dry_run=True), logs_config=_logs(tmp_path))
    (tmp_path / "inference.log").write_text(_line(20, "[CUDA] Out of memory on device 0"))
    (tmp_path / "health.log").write_text(_line(15, "Health check failed: audio output silent for 8s"))
    oom = receiver.wait_job(receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium"))).json()[
        "new_jobs"][0])
    assert oom["triage"]["root_cause"]["pattern"] == "cuda_oom"
    time.sleep(1.2)  # the next lines are written after the first incident's job finished
    with (tmp_path / "inference.log").open("a") as f:
        for _ in range(3):
            f.write(_line(0, "Stream buffer underflow: expected 2048 samples, got 0"))
    hang = receiver.wait_job(receiver.post(payload(alert())).json()["new_jobs"][0])
    assert hang["incident_id"] != oom["incident_id"]
    patterns = {e["pattern"] for e in hang["triage"]["events"]}
    assert patterns == {"stream_underflow"}, hang["triage"]["events"]
    assert hang["triage"]["root_cause"]["pattern"] == "stream_underflow"
    time.sleep(1.2)  # and a journal-only record after that one finished: no earlier incident's lines either
    with (tmp_path / "inference.log").open("a") as f:
        f.write(_line(0, "[CUDA] Out of memory on device 0"))
    note = receiver.wait_job(receiver.post(payload(alert("TtsLatencyNote", tier="none"))).json()["new_jobs"][0])
    assert note["incident_id"] is None and note["tier"] == "none"
    assert [e["pattern"] for e in note["triage"]["events"]] == ["cuda_oom"], note["triage"]["events"]


def test_a_journal_only_alert_between_a_fault_and_its_alert_does_not_cut_the_incidents_window(
        make_receiver, tmp_path):
    """The segfault line, then supervisord's restart shows as TtsProcessCrashed (tier none, journal
    only) before the segfault's own alert arrives: that record belongs to no incident, so the new
    incident's triage still starts before the line (seen on the e2e loop as a page with no root cause)."""
    receiver = make_receiver(receiver_config(None, None, dry_run=True), logs_config=_logs(tmp_path))
    (tmp_path / "health.log").write_text("")
    (tmp_path / "inference.log").write_text(_line(3, "Segmentation fault (core dumped)"))
    crash = receiver.wait_job(receiver.post(payload(alert("TtsProcessCrashed", tier="none", component="inference"))
                                            ).json()["new_jobs"][0])
    assert crash["incident_id"] is None and crash["status"] == "succeeded", crash
    time.sleep(1.2)  # the segfault's alert comes after the journal-only record finished
    job = receiver.wait_job(receiver.post(payload(alert("TtsSegfault", tier="heavy", pattern="segfault",
                                                        starts="2026-11-23T10:00:05Z"))).json()["new_jobs"][0])
    [incident] = [i for i in receiver.incidents() if i["id"] == job["incident_id"]]
    assert incident["family"] == "weights_config", incident
    assert (incident["triage"] or {}).get("root_cause", {}).get("pattern") == "segfault", incident["triage"]


def test_triage_puts_a_symptom_into_the_incident_of_its_root_cause(make_receiver, tmp_path):
    receiver = make_receiver(receiver_config(None, None, dry_run=True), logs_config=_logs(tmp_path))
    (tmp_path / "inference.log").write_text(_line(10, "[CUDA] Out of memory on device 0"))
    (tmp_path / "health.log").write_text(_line(8, "Health check failed: audio output silent for 8s"))
    # one notification, as Alertmanager groups alerts of one service that fire together (posted one
    # after the other, the first dry-run job may finish in between and close the triage window)
    answer = receiver.post(payload(alert("TtsCudaOutOfMemory", tier="medium", pattern="cuda_oom"),
                                   alert("TtsAudioSilent", tier="medium", pattern="audio_silent"))).json()
    jobs = [receiver.wait_job(i) for i in answer["new_jobs"] + answer["joined_jobs"]]
    assert {j["incident_id"] for j in jobs} == {jobs[0]["incident_id"]}, "one incident"
    silent = next(a for j in jobs for a in j["alerts"] if a["alertname"] == "TtsAudioSilent")
    assert silent["family"] == "gpu_memory"
    [incident] = receiver.incidents()
    assert incident["family"] == "gpu_memory"


def test_incidents_need_the_token(make_receiver):
    receiver = make_receiver(receiver_config(None, None, dry_run=True))
    receiver.wait_job(receiver.post(payload(alert())).json()["new_jobs"][0])
    assert receiver.client.get("/incidents").status_code == 401
    [incident] = receiver.incidents()
    assert incident["family"] == "web_front" and incident["ladder"] == ["light", "medium", "heavy"]
    assert receiver.actions()[0]["incident_id"] == incident["id"]
    assert TOKEN


def test_the_incident_page_shows_the_incident_and_needs_the_token(make_receiver):
    receiver = make_receiver(receiver_config(None, None, dry_run=True))
    receiver.wait_job(receiver.post(payload(alert(summary="<script>alert(1)</script>"))).json()["new_jobs"][0])
    [incident] = receiver.incidents()
    url = f"/incidents/{incident['id']}"
    assert receiver.client.get(url).status_code == 401
    page = receiver.client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "web_front" in page.text and "TtsHealthProbeFailing" in page.text
    assert "<script>alert(1)" not in page.text  # alert text is escaped
    assert "evidence unavailable" in page.text.lower()  # no exporter here: said, not an error page
    missing = receiver.client.get("/incidents/999", headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 404
    # an id past SQLite's integer range is a client error, never a 500 (found by the fuzz test)
    huge = receiver.client.get(f"/incidents/{2**63}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert huge.status_code == 422
