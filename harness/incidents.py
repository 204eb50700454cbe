"""What the receiver says happened, as incidents: the one place that reads its journal for the drill and the soak.

A receiver with an incident model answers `GET /incidents` and tags each `GET /actions` row with
`incident_id` and `family`; then its incidents are taken as they are. An older receiver has
neither: then an incident is inferred from the journal, one per injection window (the actions
created between one injected fault and the next), with every escalation kept in the incident
of the job it escalated from. When the receiver's API changes, this module is the one to adapt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

# Journal statuses of a job that is (or was) an action; `refused` is a decision, `ignored` is not ours.
ACTION_STATUSES = {"queued", "running", "succeeded", "failed", "interrupted"}
ACTIVE_STATUSES = {"queued", "running", "interrupted"}
# Incident outcomes (the receiver's vocabulary); `open` is anything not finished yet.
TERMINAL = {"healed", "paged", "refused"}
# Tiers that act on the service; `none` only journals and `derate` lowers a power limit.
RESTART_TIERS = ("light", "medium", "heavy")

_ACTED = re.compile(r"^(?:restart|stop|start|signal \S+) ((?:web|inference)(?:\+(?:web|inference))?)\b")
# How the receiver says a job starts higher because the fault came back after a success; the job
# it names may belong to an earlier fault's incident. Older receivers say only this, not escalated_from.
_RECURRENCE = re.compile(r"fired again .*?after (\w+) job (\d+) succeeded")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def journal(receiver: str, token: str, limit: int = 10_000) -> list[dict[str, Any]]:
    """The receiver's journal (GET /actions), oldest first."""
    r = httpx.get(f"{receiver}/actions", params={"limit": limit}, headers=_auth(token), timeout=5)
    r.raise_for_status()
    body = r.json()
    rows = body.get("actions", []) if isinstance(body, dict) else body
    return sorted(rows, key=lambda row: row.get("id", 0))


def receiver_incidents(receiver: str, token: str) -> list[dict[str, Any]] | None:
    """The receiver's own incidents (GET /incidents), or None when it has no such endpoint."""
    r = httpx.get(f"{receiver}/incidents", params={"limit": 10_000}, headers=_auth(token), timeout=5)
    if r.status_code in (404, 405):
        return None
    r.raise_for_status()
    body = r.json()
    return body.get("incidents", []) if isinstance(body, dict) else body


def actions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The journal rows that are actions (not refusals, nor alerts the receiver journaled and ignored)."""
    return [r for r in rows if r.get("status") in ACTION_STATUSES]


def remediation_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that belong to an incident: restart actions and refusals (not `none` journal lines, restores)."""
    return [r for r in rows if r.get("kind", "remediate") == "remediate" and r.get("tier") in RESTART_TIERS
            and (r.get("status") in ACTION_STATUSES or r.get("status") == "refused")]


def components_acted_on(row: dict[str, Any]) -> list[str]:
    """The components a job restarted, stopped, started or signalled, read from its journaled steps."""
    found: list[str] = []
    for step in row.get("steps") or []:
        text = step.get("step", "") if isinstance(step, dict) else str(step)
        match = _ACTED.match(text)
        if match:
            found += [c for c in match.group(1).split("+") if c not in found]
    return found


def _epoch(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


@dataclass
class Incident:
    """One incident: its journal rows (oldest first) and what the receiver (or the inference) says of it."""

    id: str
    target: str
    opened: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    status: str = "open"
    family: str = ""
    family_reason: str = ""
    closed: float | None = None
    tiers: list[str] = field(default_factory=list)
    source: str = "inferred"  # "receiver" when GET /incidents said so
    acted_on: list[str] = field(default_factory=list)  # the receiver's own list, when it keeps one
    page_url: str = ""  # the receiver's signed link to the incident page (opens in a browser)

    @property
    def components(self) -> list[str]:
        """Every component an action of this incident acted on, in order of first touch."""
        out: list[str] = []
        for row in self.rows:
            out += [c for c in components_acted_on(row) if c not in out]
        return out or list(self.acted_on)

    @property
    def first_action_at(self) -> float | None:
        """When the receiver queued the incident's first job."""
        return min((r["created_at"] for r in self.rows if r.get("created_at")), default=None)

    def escalations(self) -> list[dict[str, Any]]:
        """Each step up the ladder: {job, from_job, from, to, why}; `from_job` may lie in another incident."""
        tiers = {r["id"]: r.get("tier") for r in self.rows}
        out = []
        for row in self.rows:
            if row.get("escalated_from"):
                parent = row["escalated_from"]
                out.append({"job": row["id"], "from_job": parent, "from": tiers.get(parent, "?"),
                            "to": row.get("tier"), "why": row.get("reason", "")})
                continue
            match = _RECURRENCE.search(row.get("reason") or "")
            if match and match.group(1) != row.get("tier"):
                out.append({"job": row["id"], "from_job": int(match.group(2)), "from": match.group(1),
                            "to": row.get("tier"), "why": row.get("reason", "")})
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON shape for reports (journal rows reduced to what a reader needs)."""
        return {
            "id": self.id, "target": self.target, "source": self.source, "family": self.family,
            "family_reason": self.family_reason, "opened": self.opened, "closed": self.closed,
            "status": self.status, "tiers": self.tiers, "components": self.components,
            "escalations": self.escalations(), "page_url": self.page_url,
            "jobs": [{k: r.get(k) for k in ("id", "tier", "status", "reason", "note", "created_at", "started_at",
                                            "finished_at", "escalated_from")} for r in self.rows],
        }


def status_from_rows(rows: list[dict[str, Any]]) -> str:
    """An inferred incident's outcome from its journal rows (oldest first).

    Open while a job is queued or running; else the last job decides: succeeded -> healed,
    refused -> refused, failed without an escalation job -> paged (the receiver pages when a
    ladder is exhausted).
    """
    if not rows or any(r.get("status") in ACTIVE_STATUSES for r in rows):
        return "open"
    last = rows[-1]
    if last.get("status") == "succeeded":
        return "healed"
    if last.get("status") == "refused":
        return "refused"
    if last.get("status") == "failed":
        escalated = re.search(r"as job (\d+)", last.get("escalation") or "")
        if escalated and not any(r["id"] == int(escalated.group(1)) for r in rows):
            return "open"  # the escalation job is not in the journal yet
        return "paged"
    return "open"


def combined_status(incidents: list[Incident]) -> str:
    """The outcome of the incidents one fault opened: "" for none, open while one is open, healed
    when all are, else the first refused or paged."""
    statuses = [incident.status for incident in incidents]
    if not statuses or "open" in statuses:
        return "open" if statuses else ""
    return next((s for s in statuses if s != "healed"), "healed")


def window_of(t: float, starts: list[float]) -> int | None:
    """Index of the injection window [starts[i], starts[i+1]) holding time t; None before the first.

    The harness, the receiver and Prometheus share one clock (loopback), and a window starts when
    the fault is asked for, so nothing a fault causes falls before its window."""
    index = None
    for i, start in enumerate(starts):
        if t >= start:
            index = i
    return index


def rows_by_window(rows: list[dict[str, Any]], starts: list[float]) -> list[list[dict[str, Any]]]:
    """The remediation rows of each injection window, oldest first.

    A row goes to the window it was created in, except the escalation of a job that failed: that
    stays with the job's own window (the runner climbing the ladder of the same fault). A recurrence
    escalates from a job that succeeded, so it belongs to the fault that came back.
    """
    groups: list[list[dict[str, Any]]] = [[] for _ in starts]
    where: dict[int, int] = {}
    status = {r["id"]: r.get("status") for r in rows}
    for row in sorted(remediation_rows(rows), key=lambda r: r["id"]):
        parent = row.get("escalated_from")
        index = where.get(parent) if parent and status.get(parent) == "failed" else None
        if index is None:
            index = window_of(row.get("created_at") or 0.0, starts)
        if index is None:
            continue
        where[row["id"]] = index
        groups[index].append(row)
    return groups


def inferred(index: int, rows: list[dict[str, Any]]) -> Incident:
    """The incident of one injection window when the receiver keeps none: its rows decide."""
    status = status_from_rows(rows)
    closed = max((r.get("finished_at") or 0.0) for r in rows) if status in TERMINAL else None
    return Incident(id=f"window-{index + 1}", target=rows[0].get("target", ""), opened=rows[0]["created_at"],
                    rows=rows, status=status, closed=closed, tiers=[r["tier"] for r in rows])


def from_receiver(data: dict[str, Any], rows: list[dict[str, Any]], own_verdict: bool = True) -> Incident:
    """An incident as `GET /incidents` gives it, with this injection's journal rows of it.

    `resolved` (its alerts went away and it closed without a failed action) counts as healed: the
    soak checks that against ground truth. An incident stays `open` through its quiet period and
    while a job of it is queued or running; one whose last action healed it counts as healed already.
    Without `own_verdict` (the incident also holds other injections' jobs: a fault that recurred
    joined it) this injection's rows decide.
    """
    status = data.get("status", "open")
    if status == "resolved" or (status == "open" and rows and status_from_rows(rows) == "healed"):
        status = "healed"
    if not own_verdict:
        status = status_from_rows(rows)
    if status in TERMINAL and any(r.get("status") in ("queued", "running") for r in rows):
        # The receiver pages before it journals the job's end: until then the refusal or page has
        # no job note to say why, so the incident is not over for whoever follows it.
        status = "open"
    listed = [t.get("tier", "") if isinstance(t, dict) else str(t) for t in data.get("tiers") or []]
    return Incident(
        id=str(data.get("id")), target=data.get("target", ""),
        opened=_epoch(data.get("opened_at", data.get("opened"))) or 0.0, rows=rows, status=status,
        family=data.get("family", ""), family_reason=data.get("family_reason", ""),
        closed=_epoch(data.get("closed_at", data.get("closed"))),
        tiers=[r["tier"] for r in rows if r.get("status") != "ignored"] or listed,
        source="receiver", acted_on=list(data.get("components") or []) if own_verdict else [],
        page_url=str(data.get("page_url") or ""),
    )


def incidents_by_window(receiver: str, token: str, starts: list[float]) -> list[list[Incident]]:
    """For each injection (start times, ascending), the incidents it opened or joined."""
    # Incidents first, then the journal: every job an incident's status speaks of (a refusal, a
    # success) is then in the rows. The other order showed a refused incident without its job.
    listed = receiver_incidents(receiver, token)
    return group_incidents(journal(receiver, token), listed, starts)


def group_incidents(rows: list[dict[str, Any]], listed: list[dict[str, Any]] | None,
                    starts: list[float]) -> list[list[Incident]]:
    """Per injection window, its incidents: the receiver's (`listed`, from GET /incidents) that opened in
    it or that its jobs joined; when the receiver keeps none (`listed` is None), one inferred from the
    window's journal rows."""
    windows = rows_by_window(rows, starts)
    if listed is None:
        return [[inferred(i, group)] if group else [] for i, group in enumerate(windows)]
    by_id = {str(d.get("id")): d for d in listed}
    opened_in = {key: window_of(_epoch(d.get("opened_at", d.get("opened"))) or 0.0, starts)
                 for key, d in by_id.items()}
    spans: dict[str, set[int]] = {}
    for i, group in enumerate(windows):
        for row in group:
            spans.setdefault(str(row.get("incident_id")), set()).add(i)
    out: list[list[Incident]] = []
    for i, group in enumerate(windows):
        keys = list(dict.fromkeys(str(r.get("incident_id")) for r in group))
        keys += [k for k in sorted(by_id, key=lambda k: _epoch(by_id[k].get("opened_at", by_id[k].get("opened")))
                                   or 0.0) if opened_in[k] == i and k not in keys]
        found = []
        for key in keys:
            mine = [r for r in group if str(r.get("incident_id")) == key]
            if key in by_id:
                alone = opened_in[key] == i and spans.get(key, {i}) == {i}
                found.append(from_receiver(by_id[key], mine, own_verdict=alone))
            elif mine:  # jobs the receiver did not tie to an incident
                found.append(inferred(i, mine))
        out.append(found)
    return out
