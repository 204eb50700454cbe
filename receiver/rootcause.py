"""The triage verdict at the moment of action, through a guarded import of exporter.triage."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)
JOURNAL_EVENTS = 20


def triage_verdict(logs_config: object | None, since_seconds: float) -> dict[str, Any]:
    """`exporter.triage.diagnose(...)` when it exists and works; otherwise a note why not."""
    if logs_config is None:
        return {"available": False, "note": "no logs config given to the receiver"}
    try:
        from exporter.triage import diagnose  # type: ignore[attr-defined]
    except ImportError as exc:
        return {"available": False, "note": f"triage not installed: {exc}"}
    try:
        verdict = diagnose(logs_config, since_seconds=since_seconds)
    except Exception as exc:  # noqa: BLE001 - triage must never block a remediation
        log.warning("triage failed: %s", exc)
        return {"available": False, "note": f"triage failed: {exc}"}
    if not isinstance(verdict, dict):
        return {"verdict": verdict}
    # The journal keeps the verdict and the latest lines, not every matching line of 10 minutes.
    events = verdict.get("events")
    if isinstance(events, list) and len(events) > JOURNAL_EVENTS:
        verdict = {**verdict, "events": events[-JOURNAL_EVENTS:]}
    return verdict
