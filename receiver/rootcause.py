"""The triage verdict of one window of the shared log history (an incident's, or the last minutes)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.loghistory.triage import diagnose

log = logging.getLogger(__name__)
JOURNAL_EVENTS = 20


def triage_verdict(logs_config: LogsConfig | None, since_seconds: float, end: float | None = None) -> dict[str, Any]:
    """`diagnose(...)` of the `since_seconds` before `end` (epoch seconds, default now); a note
    instead when it cannot run. The logs carry naive local time, so the window does too."""
    if logs_config is None:
        return {"available": False, "note": "no logs config given to the receiver"}
    end = time.time() if end is None else end
    try:
        verdict = diagnose(logs_config, since_seconds=max(since_seconds, 0.0), now=datetime.fromtimestamp(end))
    except Exception as exc:  # noqa: BLE001 - triage must never block a remediation
        log.warning("triage failed: %s", exc)
        return {"available": False, "note": f"triage failed: {exc}"}
    # The journal keeps the verdict and the latest lines, not every matching line of 10 minutes.
    events = verdict.get("events")
    if isinstance(events, list) and len(events) > JOURNAL_EVENTS:
        verdict = {**verdict, "events": events[-JOURNAL_EVENTS:]}
    return verdict


def window_verdict(logs_config: LogsConfig | None, start: float, end: float | None = None) -> dict[str, Any]:
    """The verdict of the window [start, end] (epoch seconds): an incident's own lines only."""
    end = time.time() if end is None else end
    return triage_verdict(logs_config, end - start, end)


def root_cause_lines(verdict: dict[str, Any] | None, limit: int = 6) -> list[str]:
    """The root cause and the latest matching lines, for a page or a table (empty without triage)."""
    if not verdict or verdict.get("available") is False:
        return []
    out = []
    root = verdict.get("root_cause")
    if isinstance(root, dict):
        first = root.get("first") or {}
        derived = ", ".join(f"{d.get('pattern')} x{d.get('count')}" for d in verdict.get("derived") or [])
        out.append(
            f"root cause {root.get('pattern')} x{root.get('count')} first at {first.get('time')} "
            f"in {first.get('log')}.log" + (f"; derived: {derived}" if derived else "")
        )
    for event in (verdict.get("events") or [])[-limit:]:
        if isinstance(event, dict):
            out.append(f"{event.get('time')} {event.get('log')}: {str(event.get('line', '')).strip()[:200]}")
    return out
