"""The triage verdict at the moment of action, from the shared log history."""

from __future__ import annotations

import logging
from typing import Any

from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.loghistory.triage import diagnose

log = logging.getLogger(__name__)
JOURNAL_EVENTS = 20


def triage_verdict(logs_config: LogsConfig | None, since_seconds: float) -> dict[str, Any]:
    """`diagnose(...)` of the window ending now; a note instead when it cannot run."""
    if logs_config is None:
        return {"available": False, "note": "no logs config given to the receiver"}
    try:
        verdict = diagnose(logs_config, since_seconds=since_seconds)
    except Exception as exc:  # noqa: BLE001 - triage must never block a remediation
        log.warning("triage failed: %s", exc)
        return {"available": False, "note": f"triage failed: {exc}"}
    # The journal keeps the verdict and the latest lines, not every matching line of 10 minutes.
    events = verdict.get("events")
    if isinstance(events, list) and len(events) > JOURNAL_EVENTS:
        verdict = {**verdict, "events": events[-JOURNAL_EVENTS:]}
    return verdict
