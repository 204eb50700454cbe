"""The soak's report files: a table, report.md and a timeline PNG drawn from what the runs recorded."""

from __future__ import annotations

from pathlib import Path

from tests.harness.soak_records import ENGINE, WEB, job, run_of
from tts_sentinel.harness.soak.observe import AlertSpan
from tts_sentinel.harness.soak.plan import WEIGHTS, Injection
from tts_sentinel.harness.soak.report import markdown, table
from tts_sentinel.harness.soak.run import BASELINE, InjectionRecord, RunRecord
from tts_sentinel.harness.soak.score import score_run, summarize
from tts_sentinel.harness.soak.timeline import render

PLAN = [Injection("hang", "web"), Injection("oom", "inference", during=True), Injection(WEIGHTS, "inference")]


def runs():
    rows = [job(1, "light", "succeeded", 104, WEB), job(2, "medium", "succeeded", 202, ENGINE),
            job(3, "heavy", "refused", 302, note="weights do not match the recorded manifest")]
    sentinel = run_of(PLAN, rows, [9, 12, None], pages=[(302.5, "TtsRemediationRefused")], cleared={2})
    sentinel.journal = rows
    sentinel.records[1].during_action = "light job 1"
    sentinel.observer.alerts[("TtsHealthProbeFailing", 101.0, "{}")] = AlertSpan(
        "TtsHealthProbeFailing", {"severity": "critical"}, 101.0, 104.5, 109.0, for_seconds=3.0)
    baseline = RunRecord(BASELINE, started_at=90.0, finished_at=420.0,
                         records=[InjectionRecord(0, PLAN[0], injected_at=100, green_at=137),
                                  InjectionRecord(1, PLAN[1], injected_at=200, green_at=None, ended_at=350,
                                                  cleared_by_soak=True),
                                  InjectionRecord(2, PLAN[2], injected_at=360, ended_at=410, cleared_by_soak=True)],
                         watchdog_restarts=[(130.0, "tts-webui")])
    return sentinel, baseline


def test_table_and_markdown_show_every_incident_its_checks_and_the_baseline():
    sentinel, baseline = runs()
    scores = score_run(PLAN, sentinel, baseline)
    summary = summarize(scores, PLAN, sentinel, baseline, escalation_window=900)
    text = table(scores, summary)
    assert "hang:web" in text and "oom:inference@during" in text and "weights:inference" in text
    assert scores[0].alert_seconds == 4.0  # pending at 101 + for 3s, injected at 100
    assert "missed" in text and "37" in text
    assert "unhealable faults paged exactly once: 1/1" in text
    md = markdown(scores, summary, {"command": "tts-sentinel soak --faults x"}, "timeline.png")
    assert "| 3 | weights:inference |" in md
    assert "weights do not match the recorded manifest" in md  # refusals say why
    assert "during light job 1" in md
    assert "![timeline](timeline.png)" in md


def test_the_timeline_is_a_png(tmp_path: Path):
    sentinel, baseline = runs()
    render(tmp_path / "timeline.png", sentinel, baseline)
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
