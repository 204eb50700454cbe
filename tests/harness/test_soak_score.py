"""Scoring a soak: right component, right ladder, no cross-incident escalation, paged iff not healed."""

from __future__ import annotations

from tests.harness.soak_records import BOTH, ENGINE, WEB, job, run_of
from tts_sentinel.harness.soak.plan import WEIGHTS, Injection
from tts_sentinel.harness.soak.run import BASELINE, InjectionRecord, RunRecord
from tts_sentinel.harness.soak.score import score_run, summarize


def test_a_web_fault_escalated_by_the_previous_web_incidents_job_is_a_recurrence_not_a_crossing():
    plan = [Injection("hang", "web"), Injection("hang", "web")]
    rows = [job(1, "light", "succeeded", 104, WEB),
            job(2, "heavy", "succeeded", 205, BOTH, reason="x; fired again 90s after light job 1 succeeded "
                                                           "-> escalate to heavy")]
    first, second = score_run(plan, run_of(plan, rows, [10, 30]))
    assert first.ok and first.tiers == ["light"] and first.healed
    assert second.checks["right_ladder"] is True  # starts above the base: the same fault came back
    assert second.checks["no_cross_incident_escalation"] is True
    assert second.ok


def test_a_fault_that_joins_the_incident_of_the_same_fault_before_it_may_start_higher():
    plan = [Injection("hang", "web"), Injection("hang", "web")]
    rows = [job(1, "light", "succeeded", 104, WEB, incident_id=1),
            job(2, "heavy", "succeeded", 205, BOTH, incident_id=1)]  # no escalated_from, no wording
    run = run_of(plan, rows, [10, 30], listed=[{"id": 1, "family": "web_front", "opened_at": 103.0,
                                                 "status": "healed"}])
    first, second = score_run(plan, run)
    assert second.incident_ids == ["1"] and second.family == "web_front"
    assert second.checks["right_ladder"] is True and second.ok


def test_a_web_front_ladder_may_climb_to_medium_only_while_it_keeps_restarting_the_web_front():
    plan = [Injection("hang", "web")]
    kept = [job(1, "light", "failed", 104, WEB, escalation="escalated to medium as job 2"),
            job(2, "medium", "succeeded", 140, WEB + ENGINE, escalated_from=1)]
    dropped = [job(1, "light", "failed", 104, WEB, escalation="escalated to medium as job 2"),
               job(2, "medium", "succeeded", 140, ENGINE, escalated_from=1)]
    (good,) = score_run(plan, run_of(plan, kept, [40]))
    (bad,) = score_run(plan, run_of(plan, dropped, [40]))
    assert good.checks["right_ladder"] is True and good.checks["right_component"] is True and good.ok
    assert bad.checks["right_ladder"] is True and bad.checks["right_component"] is False


def test_an_escalation_from_a_job_of_another_familys_incident_crosses_incidents():
    plan = [Injection("hang", "web"), Injection("oom", "inference")]
    rows = [job(1, "medium", "succeeded", 104, ENGINE),
            job(2, "heavy", "succeeded", 205, BOTH, reason="x; fired again 27s after medium job 1 succeeded "
                                                           "-> escalate to heavy")]
    hang, oom = score_run(plan, run_of(plan, rows, [10, 30]))
    assert hang.checks["right_component"] is False  # the engine was restarted for a web-front fault
    assert hang.checks["right_ladder"] is False
    assert oom.checks["no_cross_incident_escalation"] is False
    assert oom.escalations[0]["cross_incident"] is True
    summary = summarize([hang, oom], plan, run_of(plan, rows, [10, 30]), None, escalation_window=900)
    assert summary["cross_incident_escalations"] == 1
    assert summary["within_one_escalation_window"] == 1


def test_an_engine_fault_healed_by_a_web_restart_ladder_is_the_wrong_ladder():
    plan = [Injection("hang", "inference")]
    rows = [job(1, "light", "failed", 104, WEB, escalation="escalated to medium as job 2"),
            job(2, "medium", "succeeded", 140, ENGINE, escalated_from=1)]
    (score,) = score_run(plan, run_of(plan, rows, [45]))
    assert score.healed and score.tiers == ["light", "medium"]
    assert score.checks["right_component"] is False and score.checks["right_ladder"] is False


def test_healed_means_paged_by_no_one_and_unhealable_means_paged_exactly_once():
    plan = [Injection("oom", "inference"), Injection(WEIGHTS, "inference"), Injection(WEIGHTS, "inference")]
    rows = [job(1, "medium", "succeeded", 102, ENGINE), job(2, "heavy", "refused", 202), job(3, "heavy", "refused", 303)]
    pages = [(101.5, "TtsCudaOutOfMemory"), (202.5, "TtsRemediationRefused"),
             (302.5, "TtsSegfault"), (303.5, "TtsRemediationRefused")]
    oom, once, twice = score_run(plan, run_of(plan, rows, [8, None, None], pages, cleared={1, 2}))
    assert oom.healed and oom.pages == 1 and oom.checks["paged_iff_not_healed"] is False
    assert not once.healed and once.status == "refused" and once.pages == 1 and once.ok
    assert twice.pages == 2 and twice.page_alerts == ["TtsSegfault", "TtsRemediationRefused"]
    assert twice.checks["paged_iff_not_healed"] is False


def test_green_because_the_soak_cleared_it_is_not_healed():
    plan = [Injection("underflow", "inference")]
    rows = [job(1, "light", "succeeded", 104, WEB)]  # "succeeded", but the engine still underflows
    (score,) = score_run(plan, run_of(plan, rows, [None]))
    assert score.status == "healed" and not score.healed
    assert score.checks["healed_as_expected"] is False and score.checks["paged_iff_not_healed"] is False


def test_the_baseline_is_compared_by_time_to_green_and_faults_missed():
    plan = [Injection("hang", "web"), Injection("oom", "inference")]
    rows = [job(1, "light", "succeeded", 104, WEB), job(2, "medium", "succeeded", 202, ENGINE)]
    sentinel = run_of(plan, rows, [9, 12])
    baseline = RunRecord(BASELINE, started_at=90.0, finished_at=400.0,
                         records=[InjectionRecord(0, plan[0], injected_at=100, green_at=137),
                                  InjectionRecord(1, plan[1], injected_at=200, green_at=360, cleared_by_soak=True)],
                         watchdog_restarts=[(130.0, "tts-webui")])
    scores = score_run(plan, sentinel, baseline)
    assert [s.baseline_green_seconds for s in scores] == [37, None]
    summary = summarize(scores, plan, sentinel, baseline, escalation_window=900)
    assert summary["baseline"]["missed"] == 1 and summary["baseline"]["restarts"] == 1
    assert summary["baseline"]["missed_by_baseline_healed_by_sentinel"] == 1
    assert summary["baseline"]["median_green_seconds_both_green"] == {"sentinel": 9, "baseline": 37}
