"""The soak's outputs: a table for the terminal, soak.json, report.md (the timeline PNG is timeline.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tts_sentinel.harness.soak.score import IncidentScore

CHECK_SHORT = {"right_component": "component", "right_ladder": "ladder",
               "no_cross_incident_escalation": "cross-escalation", "healed_as_expected": "healed",
               "paged_iff_not_healed": "pages"}


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _failed(score: IncidentScore) -> str:
    bad = [CHECK_SHORT.get(k, k) for k, v in score.checks.items() if v is False]
    return "ok" if not bad else "FAIL " + ",".join(bad)


def _row(s: IncidentScore) -> list[str]:
    label = f"{s.fault}:{s.component}" + ("@during" if s.during_planned else "")
    base = {"green": _s(s.baseline_green_seconds), "missed": "missed"}.get(s.baseline, "-")
    return [str(s.index), label, s.family or "-", "→".join(s.tiers) or "-", "+".join(s.components) or "-",
            s.status or "-", "yes" if s.healed else "no", str(s.pages), _s(s.alert_seconds), _s(s.action_seconds),
            _s(s.green_seconds), base, _failed(s)]


HEADER = ["#", "fault", "family", "tiers", "acted on", "receiver", "healed", "pages", "alert s", "action s",
          "green s", "baseline s", "score"]


def table(scores: list[IncidentScore], summary: dict[str, Any]) -> str:
    """Fixed-width table and the headline lines."""
    rows = [HEADER] + [_row(s) for s in scores]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join([*lines, "", *headline(summary)])


def headline(summary: dict[str, Any]) -> list[str]:
    """The summary in a few sentences."""
    out = [
        f"incidents scored ok: {summary['ok']}/{summary['injected']}"
        + (f" ({summary['planned'] - summary['injected']} planned faults not injected: {summary['stopped_early']})"
           if summary["stopped_early"] else ""),
        f"healable faults healed: {summary['healed']}/{summary['healable']} "
        f"(by the right component and ladder: {summary['healed_right']})",
        f"cross-incident escalations: {summary['cross_incident_escalations']}; "
        f"pages for healed incidents: {summary['pages_for_healed']}; "
        f"unhealable faults paged exactly once: {summary['unhealable_paged_once']}/{summary['unhealable']}",
        f"sequence: {summary['within_one_escalation_window']} faults within one escalation window of the previous, "
        f"{summary['injected_during_remediation']} during a remediation, {summary['recurrences']} recurrences",
        f"median time to green: {_s(summary['median_green_seconds'])} s (run took {summary['seconds']:.0f} s"
        + (f", of which {summary['paced_seconds']:.0f} s waiting for room in the restart budget"
           if summary.get("paced_seconds") else "") + ")",
    ]
    base = summary.get("baseline")
    if base:
        both = base["median_green_seconds_both_green"]
        out.append(
            f"baseline (autorestart + liveness check, 3 failures 10 s apart): green {base['green']}, "
            f"missed {base['missed']} (of which the sentinel healed {base['missed_by_baseline_healed_by_sentinel']}); "
            f"median time to green {_s(base['median_green_seconds'])} s; where both got green: sentinel "
            f"{_s(both['sentinel'])} s vs baseline {_s(both['baseline'])} s")
    return out


def write_json(path: Path, document: dict[str, Any]) -> None:
    """soak.json."""
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def markdown(scores: list[IncidentScore], summary: dict[str, Any], settings: dict[str, Any],
             timeline: str | None) -> str:
    """report.md: settings, headline, per-incident table, escalations, baseline, timeline."""
    md = ["# TTS Sentinel soak", "", f"`{settings['command']}`", ""]
    md += [f"- {k}: {v}" for k, v in settings.items() if k != "command"]
    md += ["", "## Result", "", *[f"- {line}" for line in headline(summary)], "", "## Incidents", ""]
    md += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    md += ["| " + " | ".join(cell.replace("|", "/") for cell in _row(s)) + " |" for s in scores]
    escalations = [(s, e) for s in scores for e in s.escalations]
    if escalations:
        md += ["", "## Escalations", ""]
        for s, e in escalations:
            cross = " **(cross-incident)**" if e.get("cross_incident") else ""
            md.append(f"- #{s.index} {s.fault}: {e['from']} job {e['from_job']} → {e['to']} job {e['job']}{cross}: "
                      f"{e['why']}")
    refused = [(s, r) for s in scores for r in s.refusals]
    if refused:
        md += ["", "## Refusals", ""]
        md += [f"- #{s.index} {s.fault}: {r}" for s, r in refused]
    during = [s for s in scores if s.during_planned]
    if during:
        md += ["", "## Injected during a remediation", ""]
        md += [f"- #{s.index} {s.fault}: " + (f"during {s.during}" if s.during else
                                               "the previous incident had already ended") for s in during]
    families = [s for s in scores if s.family_reason]
    if families:
        md += ["", "## Families the receiver decided", ""]
        md += [f"- #{s.index} {s.fault}: {s.family} — {s.family_reason}" for s in families]
    paged = [s for s in scores if s.pages]
    if paged:
        md += ["", "## Pages at the on-call sink", ""]
        md += [f"- #{s.index} {s.fault}: {s.pages} ({', '.join(s.page_alerts)})" for s in paged]
    md += ["", "Checks per incident: right component (every action touched the component that broke), "
           "right ladder (the fault family's tiers in order, from its base unless the same fault recurred), "
           "no cross-incident escalation, healed as expected, paged exactly once iff not healed. "
           "`green s` is ground truth: the simulator says the fault is gone and /health answers 200."]
    if timeline:
        md += ["", "## Timeline", "", f"![timeline]({timeline})"]
    return "\n".join(md) + "\n"
