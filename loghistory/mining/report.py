"""The weekly report: which WARN/ERROR templates are new, which grow fast, and what was learned.

A template is **new** when its first line falls in the recent part of the window (by default
the last day of a week); it is **growing** when its rate in the recent part is at least
`growth` times its rate before (since the first warning or error of the window). Templates of
lines that a configured pattern matches never show up here: those lines are counted as known.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from tts_sentinel.loghistory.mining.masks import is_variable
from tts_sentinel.loghistory.mining.miner import Template
from tts_sentinel.loghistory.mining.offline import WindowMiner

LEVEL_WORDS = {"info", "warn", "warning", "error", "debug", "critical", "fatal"}


def suggest_name(t: Template) -> str:
    """A pattern name from the template's constant words: `tokenizer_skipped_special_chars`."""
    plain = " ".join(x for x in t.tokens if not is_variable(x) and not x.startswith("["))
    words = [w.lower() for w in re.findall(r"[A-Za-z]{3,}", plain)]
    return "_".join([w for w in words if w not in LEVEL_WORDS][:4]) or "template"


def _iso(when: float | None) -> str | None:
    return datetime.fromtimestamp(when).isoformat(sep=" ", timespec="seconds") if when is not None else None


def classify(mined: WindowMiner, growth_min: float) -> list[dict[str, Any]]:
    """Every mined template as a report row, with its status: new, growing or steady."""
    w = mined.window
    recent_s = before_s = None
    if w is not None and mined.data_start is not None:
        recent_s = max(1.0, (w.end - w.recent_start).total_seconds())
        before_s = (w.recent_start - mined.data_start).total_seconds()
    rows = []
    for t in mined.miner.all():
        recent = mined.recent.get(t.cluster_id, 0)
        earlier = t.count - recent
        growth = None
        if recent_s and before_s and before_s > 0 and earlier > 0:
            growth = round((recent / recent_s) / (earlier / before_s), 2)
        if w is None or t.first_seen is None:
            status = "unknown"  # no timestamps: nothing can be said about time
        elif datetime.fromtimestamp(t.first_seen) >= w.recent_start:
            status = "new"
        elif growth is not None and growth >= growth_min:
            status = "growing"
        else:
            status = "steady"
        rows.append({
            "id": t.id, "template": t.text, "status": status, "level": t.level(), "count": t.count,
            "recent_count": recent, "earlier_count": earlier, "growth": growth,
            "first_seen": _iso(t.first_seen), "last_seen": _iso(t.last_seen), "example": t.example,
            "regex": t.regex(), "suggested_name": suggest_name(t),
        })
    order = {"new": 0, "growing": 1, "unknown": 2, "steady": 3}
    rows.sort(key=lambda r: (order[r["status"]], -(r["growth"] or 0) if r["status"] == "growing" else 0, -r["count"]))
    return rows


def build_report(mined: WindowMiner, growth_min: float, min_count: int, top: int, show_all: bool) -> dict[str, Any]:
    """The report as one JSON-able document (what `mine --json` prints)."""
    rows = [r for r in classify(mined, growth_min) if r["count"] >= min_count]
    shown = [r for r in rows if show_all or r["status"] in ("new", "growing", "unknown")][:top]
    w = mined.window
    learned = [
        {"id": t.id, "status": t.status, "name": t.name, "template": t.template, "logs": t.logs,
         "count": mined.learned_counts.get(t.id, 0), "promoted_at": _iso(t.promoted_at)}
        for t in mined.learned.templates if t.status != "rejected"
    ]
    return {
        "file": mined.files[-1] if mined.files else None, "files": mined.files,
        "window": None if w is None else {"start": w.start.isoformat(sep=" ", timespec="seconds"),
                                          "end": w.end.isoformat(sep=" ", timespec="seconds"),
                                          "recent_start": w.recent_start.isoformat(sep=" ", timespec="seconds")},
        "lines": mined.lines, "covered_by_patterns": mined.covered,
        "learned_lines": sum(mined.learned_counts.values()), "rejected_lines": mined.rejected,
        "mined_lines": mined.miner.lines, "without_timestamp": mined.without_timestamp,
        "template_count": len(rows), "templates": shown, "learned": learned, "warnings": mined.warnings,
    }


def format_report(doc: dict[str, Any], log_name: str | None) -> str:
    """The report for a person."""
    out = []
    w = doc["window"]
    span = f"{w['start']} .. {w['end']}" if w else "whole file"
    files = doc["files"]
    where = files[-1] + (f" (+{len(files) - 1} archives)" if len(files) > 1 else "") if files else "-"
    out.append(f"{where}, {span}: {doc['lines']:,} WARN/ERROR lines; {doc['covered_by_patterns']:,} matched "
               f"configured patterns, {doc['learned_lines']:,} learned templates, {doc['rejected_lines']:,} "
               f"rejected ones; {doc['mined_lines']:,} mined into {doc['template_count']:,} templates.")
    if doc["without_timestamp"]:
        out.append(f"({doc['without_timestamp']:,} lines had no timestamp the triage clock reads: kept, but "
                   "they have no first/last seen and no growth.)")
    rows = doc["templates"]
    if w:
        out.append(f"\nNew or fast-growing templates (recent: since {w['recent_start']}):" if rows
                   else "\nNo new or fast-growing WARN/ERROR templates.")
    for r in rows:
        growth = f"x{r['growth']:.1f}" if r["growth"] is not None else "-"
        out.append(f"  {r['id']}  {r['status']:<7} {r['count']:>8,}  growth {growth:<7} {r['level']:<8} "
                   f"{r['template']}")
        out.append(f"      first {r['first_seen'] or '-'}  last {r['last_seen'] or '-'}  e.g. {r['example'][:160]}")
    if doc["learned"]:
        out.append("\nLearned templates (exporter):")
        for t in doc["learned"]:
            label = f"{t['status']} as {t['name']}" if t["name"] else t["status"]
            out.append(f"  {t['id']}  {label:<24} {t['count']:>8,}  {t['template']}")
    if rows:
        out.append("\nTo count one as a pattern, add it to exporter.logs.extra_patterns, e.g.:")
        logs = f", logs: [{log_name}]" if log_name else ""
        for r in rows[:5]:
            regex = r["regex"].replace("'", "''")  # YAML single-quoted
            out.append(f"  - {{name: {r['suggested_name']}, regex: '{regex}'{logs}}}")
        out.append("(a template the exporter promoted: `tts-sentinel mine accept ID --name NAME` or `mine reject ID`)")
    for warning in doc["warnings"]:
        out.append(f"warning: {warning}")
    return "\n".join(out)
