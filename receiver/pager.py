"""Paging on-call: post TtsRemediationExhausted / TtsRemediationRefused to Alertmanager API v2."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx

log = logging.getLogger(__name__)
RUNBOOK = "https://github.com/tts-sentinel/tts-sentinel/blob/main/rules/runbooks.md#"


class OnCallPager:
    """Posts an alert to Alertmanager so its on-call route pages a person with the reason."""

    def __init__(self, alertmanager_url: str | None, timeout_seconds: float = 10.0) -> None:
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None
        self.timeout_seconds = timeout_seconds

    def page(self, alertname: str, target: str, reason: str, description: str, job_id: int | None = None) -> str:
        """Post the alert; returns a note for the journal (never raises: the journal must be written)."""
        if not self.alertmanager_url:
            log.error("on-call NOT told (no alertmanager_url): %s %s: %s", alertname, target, description)
            return f"on-call NOT told: no alertmanager_url configured ({alertname}: {reason})"
        now = datetime.now(UTC)
        alert = {
            "labels": {
                "alertname": alertname,
                "severity": "critical",
                # tier=none: the webhook route must not feed this page back into a remediation.
                "tier": "none",
                "target": target,
                "reason": reason,
            },
            "annotations": {
                "summary": f"{alertname} on {target}: {reason}",
                "description": description[:2000] + (f" (journal job {job_id})" if job_id else ""),
                "runbook_url": RUNBOOK + alertname.lower(),
            },
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "generatorURL": "",
        }
        try:
            resp = httpx.post(f"{self.alertmanager_url}/api/v2/alerts", json=[alert], timeout=self.timeout_seconds)
        except httpx.HTTPError as exc:
            log.error("on-call NOT told: Alertmanager unreachable: %s", exc)
            return f"on-call NOT told: Alertmanager at {self.alertmanager_url} unreachable ({exc})"
        if resp.status_code >= 300:
            return f"on-call NOT told: Alertmanager answered {resp.status_code}: {resp.text[:200]}"
        return f"on-call paged: {alertname} reason={reason}"
