"""Incidents as the drill and the soak read them: from the receiver's GET /incidents, or inferred from its journal."""

from __future__ import annotations

from tts_sentinel.harness.incidents import (
    Incident,
    combined_status,
    components_acted_on,
    group_incidents,
    status_from_rows,
)

LIGHT_STEPS = [{"step": "restart web via supervisord (hot_reload=False)"}, {"step": "verify http://x/probe?module=health"}]
MEDIUM_STEPS = [{"step": "stop inference via supervisord"}, {"step": "release GPU 0: no reset configured"},
                {"step": "start inference via supervisord"}, {"step": "wait 10s"}]
HEAVY_STEPS = [{"step": "stop web via supervisord"}, {"step": "stop inference via supervisord"},
               {"step": "clear cache dir /tmp/c"}, {"step": "start inference via supervisord"}]


def job(id, tier, status, created, **extra):
    return {"id": id, "tier": tier, "status": status, "created_at": created, "kind": "remediate",
            "target": "qwen3-tts", "finished_at": created + 5 if status not in ("queued", "running") else None,
            **extra}


def test_components_are_read_from_the_journaled_steps():
    assert components_acted_on({"steps": LIGHT_STEPS}) == ["web"]
    assert components_acted_on({"steps": MEDIUM_STEPS}) == ["inference"]
    assert components_acted_on({"steps": HEAVY_STEPS}) == ["web", "inference"]
    assert components_acted_on({"steps": [{"step": "stop web+inference via systemd"}]}) == ["web", "inference"]
    assert components_acted_on({"steps": [{"step": "signal SIGUSR1 web via supervisord"}]}) == ["web"]
    assert components_acted_on({"steps": []}) == []


def test_an_escalation_that_healed_makes_the_incident_healed():
    rows = [job(1, "light", "failed", 100, escalation="escalated to medium as job 2"),
            job(2, "medium", "succeeded", 130, escalated_from=1)]
    assert status_from_rows(rows) == "healed"


def test_an_incident_is_open_while_a_job_runs_or_its_escalation_is_not_journaled_yet():
    assert status_from_rows([job(1, "light", "failed", 100), job(2, "medium", "running", 130)]) == "open"
    assert status_from_rows([job(1, "light", "failed", 100, escalation="escalated to medium as job 2")]) == "open"
    assert status_from_rows([]) == "open"


def test_refused_and_exhausted_incidents_end_refused_and_paged():
    assert status_from_rows([job(1, "heavy", "refused", 100)]) == "refused"
    assert status_from_rows([job(1, "heavy", "failed", 100, note="no higher tier; on-call paged")]) == "paged"


def test_inferred_incidents_keep_escalations_with_the_job_they_escalate_from():
    # fault 1 at t=100 (light fails, its medium is queued after fault 2 went in at t=110)
    rows = [job(1, "light", "failed", 101, escalation="escalated to medium as job 3"),
            job(2, "medium", "succeeded", 112),
            job(3, "medium", "succeeded", 115, escalated_from=1),
            job(4, "none", "succeeded", 113),  # a tier-none alert: journal only, not part of an incident
            {"id": 5, "tier": "light", "status": "ignored", "created_at": 114, "kind": "remediate"}]
    first, second = group_incidents(rows, None, [100.0, 110.0])
    assert [r["id"] for r in first[0].rows] == [1, 3]
    assert first[0].tiers == ["light", "medium"] and first[0].status == "healed"
    assert first[0].escalations() == [{"job": 3, "from_job": 1, "from": "light", "to": "medium",
                                       "why": ""}]
    assert [r["id"] for r in second[0].rows] == [2]


def test_a_window_without_jobs_has_no_incident():
    first, second = group_incidents([job(1, "light", "succeeded", 101)], None, [100.0, 200.0])
    assert len(first) == 1 and second == []


def test_a_recurrence_escalation_names_the_job_of_the_earlier_incident():
    reason = ("TtsHealthProbeFailing: alert label tier=light; fired again 40s after light job 1 succeeded "
              "-> escalate to medium")
    rows = [job(1, "light", "succeeded", 101), job(2, "medium", "succeeded", 160, reason=reason)]
    _, second = group_incidents(rows, None, [100.0, 150.0])
    assert second[0].escalations()[0]["from_job"] == 1
    assert second[0].escalations()[0]["from"] == "light" and second[0].escalations()[0]["to"] == "medium"


def test_the_receivers_own_incidents_are_taken_as_they_are():
    rows = [job(1, "light", "succeeded", 101, incident_id=7, family="web_front", steps=LIGHT_STEPS),
            job(2, "medium", "running", 111, incident_id=8, family="gpu_memory", steps=MEDIUM_STEPS)]
    listed = [
        {"id": 8, "target": "qwen3-tts", "family": "gpu_memory", "family_reason": "TtsCudaOutOfMemory fired",
         "opened": "1970-01-01T00:01:50Z", "closed": None, "tiers": ["medium"], "status": "open"},
        {"id": 7, "target": "qwen3-tts", "family": "web_front", "family_reason": "health probe failing",
         "opened": 100.5, "closed": 106.0, "tiers": ["light"], "status": "healed"},
    ]
    (web,), (gpu,) = group_incidents(rows, listed, [100.0, 110.0])
    assert (web.id, web.source, web.family, web.status, web.closed) == ("7", "receiver", "web_front", "healed", 106.0)
    assert [r["id"] for r in web.rows] == [1] and web.components == ["web"]
    assert (gpu.id, gpu.status, gpu.opened, gpu.components) == ("8", "open", 110.0, ["inference"])


def test_a_fault_that_opened_several_incidents_is_healed_only_when_all_are():
    def incident(status):
        return Incident(id=status, target="t", opened=0.0, status=status)

    assert combined_status([]) == ""
    assert combined_status([incident("healed"), incident("healed")]) == "healed"
    assert combined_status([incident("healed"), incident("open")]) == "open"
    assert combined_status([incident("healed"), incident("refused"), incident("paged")]) == "refused"


def test_a_receiver_incident_resolved_or_in_its_quiet_period_after_a_healing_action_counts_as_healed():
    rows = [job(1, "light", "succeeded", 101, incident_id="a"), job(2, "medium", "running", 130, incident_id="b")]
    listed = [{"id": "a", "opened_at": 100.5, "status": "open", "tiers": ["light"]},
              {"id": "b", "opened_at": 129.0, "status": "open", "tiers": ["medium"]},
              {"id": "c", "opened_at": 131.0, "closed_at": 160.0, "status": "resolved", "tiers": [],
               "components": ["inference"]}]
    ((quiet, acting, resolved),) = group_incidents(rows, listed, [100.0])
    assert quiet.status == "healed" and acting.status == "open"
    assert (resolved.status, resolved.closed, resolved.components) == ("healed", 160.0, ["inference"])


def test_a_refused_incident_whose_job_is_not_journaled_finished_yet_is_still_open():
    # The receiver claims the page (incident refused) before it journals the job's end and note:
    # a drill that stopped there reported a refusal without its reason (CI of 2026-12-02).
    listed = [{"id": 1, "opened_at": 100.5, "status": "refused", "tiers": ["heavy"]}]
    ((refusing,),) = group_incidents([job(1, "heavy", "running", 101, incident_id=1)], listed, [100.0])
    assert refusing.status == "open"
    note = "refused: heavy restarts only outside business hours"
    ((refused,),) = group_incidents([job(1, "heavy", "refused", 101, incident_id=1, note=note)], listed, [100.0])
    assert refused.status == "refused" and "business hours" in refused.rows[0]["note"]


def test_one_receiver_incident_over_several_faults_is_split_by_fault():
    # One web-front incident (7) holds three hangs: the second's light restart fails and its heavy
    # escalation is queued after the third hang went in; the third recurs after that heavy succeeded.
    rows = [job(1, "light", "succeeded", 101, incident_id=7, steps=LIGHT_STEPS),
            job(2, "light", "failed", 201, incident_id=7, escalation="escalated to heavy as job 3"),
            job(3, "heavy", "succeeded", 240, incident_id=7, escalated_from=2),
            job(4, "heavy", "succeeded", 250, incident_id=7, escalated_from=3, reason="fired again: recurs")]
    listed = [{"id": 7, "family": "web_front", "opened_at": 100.5, "status": "paged",  # the last one paged
               "tiers": ["light", "light", "heavy", "heavy"]}]
    first, second, third = group_incidents(rows, listed, [100.0, 200.0, 230.0])
    assert [r["id"] for r in first[0].rows] == [1] and first[0].tiers == ["light"]
    assert first[0].status == "healed", "the first hang was healed, whatever became of the incident later"
    assert [r["id"] for r in second[0].rows] == [2, 3] and second[0].tiers == ["light", "heavy"]
    assert second[0].status == "healed" and second[0].family == "web_front"
    assert [r["id"] for r in third[0].rows] == [4] and third[0].escalations()[0]["from_job"] == 3


def test_the_incident_models_recurrence_wording_names_the_job_it_climbs_from():
    reason = ("TtsHealthProbeFailing: alert label tier=light; fired again 68s after medium job 2 succeeded "
              "at the top of incident 1 (web_front)'s ladder")
    rows = [job(2, "medium", "succeeded", 101, incident_id=1), job(6, "heavy", "succeeded", 160, incident_id=1,
                                                                    reason=reason)]
    _, (second,) = group_incidents(rows, [{"id": 1, "opened_at": 100.5, "status": "healed"}], [100.0, 150.0])
    assert second.escalations() == [{"job": 6, "from_job": 2, "from": "medium", "to": "heavy", "why": reason}]
