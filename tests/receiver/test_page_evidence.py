"""What a page says about verification: a probe run after the steps, never a late alert's pre-check."""

from __future__ import annotations

from tts_sentinel.receiver.pager import incident_evidence
from tts_sentinel.receiver.records import Incident, Job
from tts_sentinel.receiver.tiers import Tier

RED = {"module": "synthesis", "success": False, "attempts": 1, "duration_seconds": 0.3, "detail": "HTTP 200"}
GREEN = {"module": "synthesis", "success": True, "attempts": 2, "duration_seconds": 4.1, "detail": "ok"}


def _incident() -> Incident:
    return Incident(id=7, target="qwen3-tts", family="weights_config", opened_at=1.0, updated_at=2.0,
                    status="refused", tiers=[], ladder=[Tier.HEAVY])


def _job(job_id: int, status: str, steps: list, verification: dict | None) -> Job:
    return Job(id=job_id, created_at=1.0, updated_at=2.0, target="qwen3-tts", tier=Tier.HEAVY, status=status,
               steps=steps, verification=verification, incident_id=7)


def test_a_refused_job_with_a_precheck_is_not_reported_as_verified():
    notes = incident_evidence(_incident(), [_job(1, "refused", [], RED)], "heavy refused")
    assert notes["verification"].startswith("no verification ran"), notes
    assert "before acting" in notes["verification"] and "synthesis: RED" in notes["verification"]


def test_a_verification_after_the_steps_is_reported_and_wins_over_a_precheck():
    steps = [{"step": "restart inference via supervisord", "ok": True}, {"step": "verify synthesis", "ok": True}]
    jobs = [_job(1, "refused", [], RED), _job(2, "succeeded", steps, GREEN)]
    notes = incident_evidence(_incident(), jobs, "healed")
    assert notes["verification"].startswith("synthesis: green after 2 attempt(s)"), notes


def test_no_probe_at_all_says_so():
    assert incident_evidence(_incident(), [_job(1, "refused", [], None)], "x")["verification"] == "no verification ran"
