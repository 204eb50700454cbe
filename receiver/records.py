"""The journal's records as types: a `Job` is one row of the `jobs` table, JSON columns decoded."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tts_sentinel.receiver.tiers import Tier

# Statuses: queued -> running -> succeeded | failed; or refused, ignored, dry_run, interrupted.
ACTIVE = ("queued", "running")
JSON_COLUMNS = ("alerts", "steps", "verification", "triage")


@dataclass
class Job:
    """One remediation job (an action, a refusal, a dry run, an ignored alert) as the journal holds it."""

    id: int
    created_at: float
    updated_at: float
    target: str
    tier: Tier
    status: str
    kind: str = "remediate"
    reason: str = ""
    result: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    escalated_from: int | None = None
    escalation: str | None = None
    triage: dict[str, Any] | None = None
    dry_run: bool = False
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    note: str = ""
    duplicates: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        """A job from a `SELECT *` row (JSON columns still text)."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in row.items() if k in known}
        for col in JSON_COLUMNS:
            data[col] = _json(data.get(col))
        data["alerts"] = data["alerts"] or []
        data["steps"] = data["steps"] or []
        data["tier"] = Tier(data["tier"])
        data["dry_run"] = bool(data.get("dry_run"))
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `GET /actions` (one object per job)."""
        out = asdict(self)
        out["tier"] = self.tier.value
        return out

    def first_labels(self) -> dict[str, str]:
        """The labels of the job's first alert (the command actuator's label source)."""
        return dict(self.alerts[0].get("labels") or {}) if self.alerts else {}


def encode_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Column values ready for SQLite: JSON columns as text, enums as their value, booleans as 0/1."""
    out = dict(values)
    for col in JSON_COLUMNS:
        if col in out and out[col] is not None and not isinstance(out[col], str):
            out[col] = json.dumps(out[col], ensure_ascii=False, default=str)
    for key, value in out.items():
        if isinstance(value, Tier):
            out[key] = value.value
    if "dry_run" in out:
        out["dry_run"] = int(bool(out["dry_run"]))
    return out


def _json(text: Any) -> Any:
    if not text or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
