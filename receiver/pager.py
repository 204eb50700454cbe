"""Paging on-call: post TtsRemediationExhausted / TtsRemediationRefused to Alertmanager API v2.

An incident pages at most once (the journal claims the page before it is posted), with the
journal's evidence in the annotations: the actions and their steps, the last verification,
and the root cause lines of the incident's own triage window.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tts_sentinel.receiver.auth import read_secret
from tts_sentinel.receiver.records import Incident, Job
from tts_sentinel.receiver.rootcause import root_cause_lines
from tts_sentinel.runbook_urls import DEFAULT_RUNBOOK_BASE, runbook_url
from tts_sentinel.userinfo import strip_userinfo

log = logging.getLogger(__name__)
ANNOTATION_CHARS = 2000


class OnCallPager:
    """Posts an alert to Alertmanager so its on-call route pages a person with the reason.

    Credentials come from files (basic auth: `username` + `password_file`; or a bearer
    `token_file`), read at each page so a rotated secret is used without a restart.
    """

    def __init__(
        self,
        alertmanager_url: str | list[str] | None,
        timeout_seconds: float = 10.0,
        username: str | None = None,
        password_file: Path | None = None,
        token_file: Path | None = None,
        runbook_base: str = DEFAULT_RUNBOOK_BASE,
    ) -> None:
        self.runbook_base = runbook_base
        urls = [alertmanager_url] if isinstance(alertmanager_url, str) else list(alertmanager_url or [])
        # An Alertmanager cluster: the peers in order; a page goes to the next when one fails.
        self.alertmanager_urls = [url.rstrip("/") for url in urls if url]
        self.alertmanager_url = self.alertmanager_urls[0] if self.alertmanager_urls else None
        self.timeout_seconds = timeout_seconds
        self.username = username
        self.password_file = password_file
        self.token_file = token_file

    def check_credentials(self) -> None:
        """Raise ValueError with a sentence when a configured secret file cannot be used."""
        self._auth()

    def _auth(self) -> tuple[httpx.BasicAuth | None, dict[str, str]]:
        if self.username is not None and self.password_file is not None:
            password = read_secret(self.password_file, "Alertmanager password")
            return httpx.BasicAuth(self.username, password), {}
        if self.token_file is not None:
            return None, {"Authorization": "Bearer " + read_secret(self.token_file, "Alertmanager token")}
        return None, {}

    def page(
        self,
        alertname: str,
        target: str,
        reason: str,
        description: str,
        job_id: int | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> str:
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
                **(labels or {}),
            },
            "annotations": {
                "summary": f"{alertname} on {target}: {reason}",
                "description": _cut(description + (f" (journal job {job_id})" if job_id else "")),
                "runbook_url": runbook_url(self.runbook_base, alertname),
                **{k: _cut(v) for k, v in (annotations or {}).items()},
            },
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "generatorURL": "",
        }
        # What on-call reads carries no URL userinfo, whatever the evidence quoted.
        for part in ("labels", "annotations"):
            alert[part] = {k: strip_userinfo(v) for k, v in alert[part].items()}
        try:
            auth, headers = self._auth()
        except ValueError as exc:
            log.error("on-call NOT told: %s", exc)
            return f"on-call NOT told: {exc}"
        failures = []
        for url in self.alertmanager_urls:
            try:
                resp = httpx.post(
                    f"{url}/api/v2/alerts", json=[alert], auth=auth, headers=headers, timeout=self.timeout_seconds
                )
            except httpx.HTTPError as exc:
                failures.append(f"Alertmanager at {url} unreachable ({exc})")
                continue
            if resp.status_code >= 300:
                failures.append(f"Alertmanager at {url} answered {resp.status_code}: {resp.text[:200]}")
                continue
            # One peer is enough: the cluster gossips the notification log, so it notifies once.
            tried = f" (after {'; '.join(failures)})" if failures else ""
            if failures:
                log.warning("page went to the next Alertmanager: %s", "; ".join(failures))
            return f"on-call paged: {alertname} reason={reason} via {url}{tried}"
        log.error("on-call NOT told: %s", "; ".join(failures))
        return f"on-call NOT told: {'; '.join(failures)}"


def incident_evidence(incident: Incident, jobs: list[Job], why: str) -> dict[str, str]:
    """The annotations of an incident's page: what was done, what verification saw, what the logs say."""
    actions = []
    verification: dict[str, Any] | None = None
    precheck: dict[str, Any] | None = None
    triage: dict[str, Any] | None = incident.triage
    for job in jobs:
        steps = ", ".join(f"{s.get('step')}: {'ok' if s.get('ok') else 'FAILED'}" for s in job.steps if "ok" in s)
        note = (job.note or "").split("; on-call")[0]
        actions.append(
            f"job {job.id} {job.tier} {job.status}" + (f" [{steps}]" if steps else "") + (f" - {note}" if note else "")
        )
        if job.verification and any("ok" in st for st in job.steps):
            verification = job.verification  # checked after this job's steps ran
        elif job.verification:
            precheck = job.verification  # a late alert's probe run before deciding to act
        if job.triage and (job.triage.get("root_cause") or not triage):
            triage = job.triage
    if verification:
        checked = _probe_run(verification)
    else:
        checked = "no verification ran"
        if precheck:
            checked += f" (before acting, a late alert's probe was run: {_probe_run(precheck)})"
    lines = root_cause_lines(triage) or ["no root cause: " + str((triage or {}).get("note", "no matching log line"))]
    return {
        "summary": f"incident {incident.id} on {incident.target} ({incident.family}): {why}"[:300],
        "description": (
            f"{why}. Family {incident.family}: {incident.family_reason}. Tiers run: "
            f"{' -> '.join(incident.tiers) or 'none'}; components acted on: "
            f"{', '.join(incident.components) or 'none'}."
        ),
        "actions": "\n".join(actions) or "no action ran",
        "verification": checked,
        "root_cause": "\n".join(lines),
    }


def _probe_run(v: dict[str, Any]) -> str:
    return (f"{v.get('module')}: {'green' if v.get('success') else 'RED'} after {v.get('attempts')} attempt(s) "
            f"in {v.get('duration_seconds')}s ({v.get('detail')})")


def _cut(text: str) -> str:
    return text if len(text) <= ANNOTATION_CHARS else text[: ANNOTATION_CHARS - 1] + "…"
