"""The verdict: cause -> effect rules from the config name the root cause of the events in the window."""

from __future__ import annotations

from typing import Any

from tts_sentinel.loghistory.config import CauseRuleConfig
from tts_sentinel.loghistory.triage.events import Event


def _rules_by_cause(rules: list[CauseRuleConfig]) -> dict[str, list[CauseRuleConfig]]:
    out: dict[str, list[CauseRuleConfig]] = {}
    for r in rules:
        out.setdefault(r.cause, []).append(r)
    return out


def explain(events: list[Event], rules: list[CauseRuleConfig]) -> dict[str, Any]:
    """Name the root cause: the unexplained event that explains the most of what follows it.

    An event is explained by an earlier event when a rule says that pattern causes this one
    within its window. Explanation is transitive (OOM -> invalid unicode -> silence), so
    every event traces back to one root; roots are grouped by pattern.
    """
    by_cause = _rules_by_cause(rules)
    horizon = max((r.within_seconds for r in rules), default=0.0)
    root_of: list[int] = []
    for i, e in enumerate(events):
        root = i
        for j in range(i - 1, -1, -1):
            c = events[j]
            gap = (e.time - c.time).total_seconds()
            if gap > horizon:
                break  # events are sorted: nothing earlier can be within any rule's window
            if any(e.pattern in r.effects and gap <= r.within_seconds for r in by_cause.get(c.pattern, [])):
                root = root_of[j]
                break
        root_of.append(root)
    groups: dict[str, dict[str, Any]] = {}
    for i, e in enumerate(events):
        root = events[root_of[i]]
        g = groups.setdefault(root.pattern, {"roots": [], "derived": {}})
        if root_of[i] == i:
            g["roots"].append(e)
        else:
            d = g["derived"].setdefault(e.pattern, {"pattern": e.pattern, "count": 0, "first": e, "last": e})
            d["count"] += 1
            d["last"] = e
    if not groups:
        return {"root_cause": None, "derived": [], "other_causes": []}
    ranked = sorted(
        groups.items(),
        key=lambda kv: (-sum(d["count"] for d in kv[1]["derived"].values()), kv[1]["roots"][0].time),
    )

    def summary(pattern: str, g: dict[str, Any]) -> dict[str, Any]:
        first = g["roots"][0]
        return {
            "pattern": pattern, "count": len(g["roots"]), "first": first.as_dict(),
            "derived": [
                {"pattern": d["pattern"], "count": d["count"],
                 "first_after_seconds": round((d["first"].time - first.time).total_seconds(), 3),
                 "first": d["first"].as_dict()}
                for d in sorted(g["derived"].values(), key=lambda d: d["first"].time)
            ],
        }

    main = summary(*ranked[0])
    return {
        "root_cause": {k: v for k, v in main.items() if k != "derived"},
        "derived": main["derived"],
        "other_causes": [summary(p, g) for p, g in ranked[1:]],
    }


def format_verdict(result: dict[str, Any]) -> str:
    """The human verdict printed after the lines."""
    rc = result["root_cause"]
    win = result["window"]
    if rc is None:
        return f"VERDICT: no known error pattern between {win['start']} and {win['end']}."
    first = rc["first"]
    out = [
        f"ROOT CAUSE: {rc['pattern']} (x{rc['count']}) first at {first['time']} in {first['file']}:",
        f"    {first['line']}",
    ]
    if result["derived"]:
        out.append("DERIVED from it (act on the root cause; these should stop with it):")
        for d in result["derived"]:
            out.append(f"    {d['pattern']} x{d['count']}, first {d['first_after_seconds']:+.3f}s after")
    else:
        out.append("Nothing else in the window follows from it.")
    for other in result["other_causes"]:
        n = sum(d["count"] for d in other["derived"])
        derived = f" with {n} derived" if n else ""
        out.append(f"ALSO, independent: {other['pattern']} x{other['count']} "
                   f"first at {other['first']['time']}{derived}")
    return "\n".join(out)
