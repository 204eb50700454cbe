"""The journal's records as types: a `Job` is one row of the `jobs` table, JSON columns decoded."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tts_sentinel.receiver.tiers import Tier
from tts_sentinel.userinfo import strip_userinfo

# Job statuses: queued -> running -> succeeded | failed; or refused, ignored, dry_run, interrupted.
ACTIVE = ("queued", "running")
# Incident statuses: open -> healed (an action verified) | paged | refused (on-call paged once);
# `resolved` when its alerts resolved before any action healed it. `closed_at` says it is over.
INCIDENT_STATUSES = ("open", "healed", "paged", "refused", "resolved")
JSON_COLUMNS = ("steps", "verification", "triage", "ladder", "tiers", "components", "page")


@dataclass
class Job:
    """One remediation job (an action, a refusal, a dry run, a journal-only alert) as the journal holds it.

    `alerts` are its first few alerts (the journal's ALERTS_SHOWN), `alerts_total` how many it has;
    `verify_labels` the distinct `verify` labels of all of them ("" for an alert without one).
    """

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
    incident_id: int | None = None
    family: str | None = None
    alerts_total: int = 0
    verify_labels: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        """A job from a row of the jobs table (JSON columns still text); its alerts come separately."""
        data = _decoded(cls, row)
        data["alerts"] = []
        data["steps"] = data["steps"] or []
        data["tier"] = Tier(data["tier"])
        data["dry_run"] = bool(data.get("dry_run"))
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `GET /actions` (one object per job)."""
        out = asdict(self)
        out["tier"] = self.tier.value
        del out["verify_labels"]
        return out

    def first_labels(self) -> dict[str, str]:
        """The labels of the job's first alert (the command actuator's label source)."""
        return dict(self.alerts[0].get("labels") or {}) if self.alerts else {}


@dataclass
class Incident:
    """A target plus a fault family, from its first firing alert to resolved plus the quiet period.

    The escalation state lives here: the ladder, the rung reached, the tiers run in order and
    the components they acted on (an escalation never drops one), and whether on-call was paged.
    """

    id: int
    target: str
    family: str
    opened_at: float
    updated_at: float
    status: str = "open"
    family_reason: str = ""
    ladder: list[Tier] = field(default_factory=list)
    rung: int = 0
    tiers: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    firing_alerts: int = 0  # its alerts firing now (their fingerprints: the journal's incident_firing)
    window_start: float = 0.0
    unhealed_since: float | None = None
    resolved_at: float | None = None
    healed_at: float | None = None
    paged_at: float | None = None
    page: dict[str, Any] | None = None
    triage: dict[str, Any] | None = None
    closed_at: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Incident:
        """An incident from a `SELECT *` row of the incidents table."""
        data = _decoded(cls, row)
        data["ladder"] = [Tier(t) for t in data.get("ladder") or []]
        for col in ("tiers", "components"):
            data[col] = data.get(col) or []
        return cls(**data)

    @property
    def tier(self) -> Tier:
        """The tier of the rung reached."""
        return self.ladder[min(self.rung, len(self.ladder) - 1)]

    def next_rung(self) -> int | None:
        """The rung an escalation climbs to, or None when the ladder is exhausted."""
        return self.rung + 1 if self.rung + 1 < len(self.ladder) else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `GET /incidents` (one object per incident)."""
        out = asdict(self)
        out["ladder"] = [t.value for t in self.ladder]
        return out


def encode_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Column values ready for SQLite: JSON columns as text, enums as their value, booleans as 0/1,
    and no URL in any text with its userinfo (an error message may quote one)."""
    out = dict(values)
    for col in JSON_COLUMNS:
        if col in out and out[col] is not None and not isinstance(out[col], str):
            out[col] = json.dumps(out[col], ensure_ascii=False, default=str)
    for key, value in out.items():
        if isinstance(value, Tier):
            out[key] = value.value
        elif isinstance(value, str):
            out[key] = strip_userinfo(value)
    if "dry_run" in out:
        out["dry_run"] = int(bool(out["dry_run"]))
    return out


_FIELD_NAMES: dict[type, frozenset[str]] = {}  # per record class: dataclasses.fields() walks it on each call


def _decoded(cls: type, row: dict[str, Any]) -> dict[str, Any]:
    known = _FIELD_NAMES.get(cls)
    if known is None:
        known = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    data = {k: v for k, v in row.items() if k in known}
    for col in JSON_COLUMNS:
        if col in data:
            data[col] = _json(data[col])
    return data


def _json(text: Any) -> Any:
    if not text or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
