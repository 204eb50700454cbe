"""Alerts that a restart raises by itself: a probe fails while the component it probes restarts.

A heavy restart stops the web front, so the health probe fails and its alert may fire just after
the heavy job healed the incident; a process manager's restart after a crash does the same. Acting
on such an alert restarts a healthy service, opens an incident for a fault that is not there, and
makes the next real fault of that family look like a recurrence that must escalate.

An alert is a possible echo when it asks for a probe to verify it (a `verify` label: log lines are
never echoes) and it started while a restart ran on the same target, or up to
`incidents.echo_grace_seconds` after it (a scrape, an evaluation and a `for:` later). A restart is
one of our jobs that acted (light, medium, heavy, rollback: from its start to its end), or a crash
that the process manager restarted (journaled as TtsProcessCrashed or TtsProcessRestartLoop: the
grace on both sides of the record, since the crash is noticed after the probe fails). A possible
echo is not a recurrence; the runner probes before acting and, when the probe is green within the
verification timeout, journals the echo and does nothing.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from tts_sentinel.receiver.journal import Journal

RESTART_TIERS = ("light", "medium", "heavy", "rollback")
CRASH_ALERTS = ("TtsProcessCrashed", "TtsProcessRestartLoop")
ACTED = ("running", "succeeded", "failed", "interrupted")
WEB_PROBES = {"health"}  # L1: the web front's /health
WEB_ONLY = {"web"}


def restart_around(journal: Journal, target: str, starts_at: float, grace: float, modules: list[str] | None = None,
                   exclude_job: int | None = None, now: float | None = None) -> str | None:
    """What restarted on `target` when an alert that started at `starts_at` began, or None.

    With `modules` ["health"] (the web front's L1 probe) only a restart that touched the web front
    counts: restarting the inference service alone does not make the web front's /health fail."""
    now = time.time() if now is None else now
    wanted = WEB_ONLY if modules and set(modules) <= WEB_PROBES else None
    rows = journal.execute(
        "SELECT j.id, j.tier, j.status, j.created_at, j.started_at, j.finished_at, i.components FROM jobs j"
        " LEFT JOIN incidents i ON i.id = j.incident_id WHERE j.target=? AND j.kind='remediate' AND j.dry_run=0"
        " AND j.id != ? AND j.created_at >= ? ORDER BY j.id DESC LIMIT 50",
        (target, exclude_job or 0, starts_at - 3600),
    ).fetchall()
    for row in rows:
        job_id, tier, status, created, started, finished, components = (row[k] for k in range(7))
        if tier in RESTART_TIERS and status in ACTED and started is not None:
            touched = set(_json_list(components))
            if wanted and touched and not wanted & touched:
                continue
            if started - 1 <= starts_at <= (finished or now) + grace:
                return f"{tier} job {job_id}'s restart"
        elif tier == "none" and abs(starts_at - created) <= grace:
            name, component = _crash_record(journal, job_id)
            if name in CRASH_ALERTS and not (wanted and component and component not in wanted):
                return f"the process manager's restart of {component or 'a process'} after a crash (job {job_id})"
    return None


def alertnames(job_alerts: list[dict[str, Any]]) -> list[str]:
    """The alert names of a job's alert records."""
    return [str(a.get("alertname") or (a.get("labels") or {}).get("alertname", "")) for a in job_alerts]


def may_echo(names: list[str]) -> bool:
    """Whether alerts with these names can be a restart's echo: not the alerts about the crashes
    themselves (a restart loop is three crashes, each with its restart: never its own echo)."""
    return bool(names) and not any(name in CRASH_ALERTS for name in names)


def alert_start(job_alerts: list[dict[str, Any]]) -> float | None:
    """The earliest `startsAt` (epoch seconds) among a job's alert records, if they carry one."""
    starts = []
    for record in job_alerts:
        try:
            starts.append(datetime.fromisoformat(str(record.get("startsAt"))).timestamp())
        except ValueError:
            continue
    return min(starts) if starts else None


def _crash_record(journal: Journal, job_id: int) -> tuple[str, str]:
    """(alertname, component label) of a journal-only job's first alert."""
    row = journal.execute("SELECT record FROM job_alerts WHERE job_id=? ORDER BY id LIMIT 1", (job_id,)).fetchone()
    if row is None:
        return "", ""
    try:
        record = json.loads(row[0])
        return str(record.get("alertname", "")), str((record.get("labels") or {}).get("component", ""))
    except (ValueError, AttributeError):
        return "", ""


def _json_list(text: Any) -> list[str]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []
