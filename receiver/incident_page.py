"""The incident page: one self-contained HTML page from plain data, for on-call at 3 a.m.

`render_incident_page(incident, jobs, alerts, evidence, runbooks_markdown, config)` is pure: the
incident (id, target, family, family_reason, opened, closed, tiers, status), its jobs as GET
/actions returns them, the alerts, the evidence fetched by receiver/evidence_client.py, and
rules/runbooks.md. It shows the timeline (alerts firing and resolved, each job and step with its
duration and output, verification, escalations with their reasons, pages), the root cause with
its log lines, the runbook's preventive action, the failing and baseline clips with their plots
and checks, and which cells broke. No external assets and no scripts (a CSP says so); every
string is escaped, since alert text comes from whoever can reach Alertmanager.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tts_sentinel.receiver.runbooks import markdown_to_html, runbook_sections

_DATA_URI = re.compile(r"^data:(?:audio/wav|image/svg\+xml);base64,[A-Za-z0-9+/]*={0,2}$")
_PREVENTIVE = re.compile(r"\*\*Preventive action:\*\*(.*?)(?:\n\s*\n|\Z)", re.DOTALL)
_CSP = ("default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'")
_STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:1.5rem auto;padding:0 1rem;color:#1b1b1b}"
    "h1{font-size:1.45rem;margin-bottom:.2rem}h2{font-size:1.15rem;border-bottom:1px solid #ddd;"
    "padding-bottom:.2rem;margin-top:1.8rem}table{border-collapse:collapse;width:100%;font-size:.92rem}"
    "td,th{border-bottom:1px solid #eee;padding:.25rem .4rem;text-align:left;vertical-align:top}"
    "pre,code{font-family:ui-monospace,monospace;font-size:.85rem}pre{background:#f5f5f5;padding:.4rem;"
    "margin:.2rem 0;white-space:pre-wrap;word-break:break-word;max-height:12rem;overflow:auto}"
    ".bad{color:#b3261e;font-weight:600}.ok{color:#1e7b34;font-weight:600}.muted{color:#666}"
    ".badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;background:#eee;font-size:.85rem}"
    ".alert{background:#fdecea}.resolved{background:#e8f5e9}.page{background:#fff4d6}"
    ".esc{background:#f3e8fd}.evidence{border:1px solid #ddd;border-radius:6px;padding:.6rem;margin:.8rem 0}"
    ".clips{display:flex;gap:1.5rem;flex-wrap:wrap}.clips figure{margin:0}.plots img{max-width:100%;"
    "border:1px solid #eee;margin:.3rem .3rem 0 0}.prevent{background:#eef6ff;border-left:4px solid #2c6fbb;"
    "padding:.5rem .8rem}nav a{margin-right:1rem}.timeline td:nth-child(-n+2){white-space:nowrap}"
)


class IncidentPageConfig(BaseModel):
    """Where the incident page links to: Grafana and Prometheus base URLs (none: no link)."""

    model_config = ConfigDict(extra="forbid")

    grafana_url: str | None = None
    grafana_dashboard_uid: str = "tts-sentinel"
    prometheus_url: str | None = None
    prometheus_expr: str = "min by (probe) (tts_probe_success)"
    runbooks_path: str = "/runbooks"
    # Seconds shown before the first and after the last event in the links.
    link_margin_seconds: float = 900.0
    # Signed page links (receiver/incident_links.py): the base URL people open (default
    # http://listen_host:listen_port), how long a link opens its page, and an optional key file
    # (default: a key derived from the receiver's token).
    public_url: str | None = None
    link_ttl_seconds: float = Field(default=7 * 86400.0, gt=0)
    link_key_file: Path | None = None

    @field_validator("grafana_url", "prometheus_url", "public_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s\"'<>]+$", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value


def esc(value: Any) -> str:
    """Any value as escaped HTML text (None as an empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def when(value: Any) -> float | None:
    """Unix seconds from a number or an ISO-8601 string; None for missing, zero or unparsable times."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    if isinstance(value, str) and value:
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp() if stamp.year > 1971 else None
    return None


def _utc(t: float | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if t else "?"


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def _seconds(value: Any) -> str:
    return f"{float(value):.3g} s" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def incident_alerts(jobs: Sequence[Mapping[str, Any]], alerts: Sequence[Mapping[str, Any]] = ()) -> list[dict]:
    """The alerts as {alertname, status, severity, tier, summary, starts, ends}, from `alerts` or else the jobs."""
    source = list(alerts) or [a for job in jobs for a in _list(job.get("alerts"))]
    out: list[dict] = []
    by_firing: dict[tuple[Any, ...], dict] = {}
    for alert in source:
        alert = _dict(alert)
        labels, annotations = _dict(alert.get("labels")), _dict(alert.get("annotations"))
        record = {
            "alertname": alert.get("alertname") or labels.get("alertname") or "?",
            "status": alert.get("status") or "firing",
            "severity": labels.get("severity", ""), "tier": alert.get("tier") or labels.get("tier", ""),
            "summary": alert.get("summary") or annotations.get("summary", ""),
            "starts": when(alert.get("startsAt")), "ends": when(alert.get("endsAt")),
        }
        # One record per firing (fingerprint, start): a later "resolved" updates it.
        key = (alert.get("fingerprint"), alert.get("startsAt"), record["alertname"])
        if key not in by_firing:
            by_firing[key] = record
            out.append(record)
        elif record["status"] == "resolved":
            by_firing[key].update(status="resolved", ends=record["ends"])
    return out


def incident_window(incident: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]],
                    alerts: Sequence[Mapping[str, Any]] = (), now: float | None = None) -> tuple[float, float]:
    """(since, until) in Unix seconds: the first alert or opening to the close or last job update (or now)."""
    starts = [when(incident.get("opened"))] + [a["starts"] for a in incident_alerts(jobs, alerts)]
    starts += [when(j.get("created_at")) for j in jobs]
    ends = [when(incident.get("closed"))] + [when(j.get("finished_at")) or when(j.get("updated_at")) for j in jobs]
    ends += [a["ends"] for a in incident_alerts(jobs, alerts) if a["status"] == "resolved"]
    now = now if now is not None else datetime.now(UTC).timestamp()
    since = min((t for t in starts if t), default=now)
    # An open incident runs until now; a closed one until its last recorded moment.
    until = max((t for t in ends if t), default=now) if when(incident.get("closed")) else now
    return since, max(since, until)


def runbook_for(runbooks_markdown: str | None, names: Sequence[str]) -> tuple[str, str] | None:
    """(section name, its markdown) of the first of `names` that rules/runbooks.md has."""
    sections = runbook_sections(runbooks_markdown or "")
    for name in names:
        if name in sections:
            return name, sections[name]
    return None


def preventive_action(section_markdown: str) -> str | None:
    """The markdown after `**Preventive action:**` in a runbook section, or None."""
    match = _PREVENTIVE.search(section_markdown)
    return " ".join(match.group(1).split()) if match else None


# -- timeline ---------------------------------------------------------------------------------------
def timeline(incident: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]],
             alerts: Sequence[Mapping[str, Any]] = (), evidence_items: Sequence[Mapping[str, Any]] = ()
             ) -> list[tuple[float | None, str, str, str]]:
    """(time, css class, what happened, detail) rows, oldest first; steps placed by their durations."""
    rows: list[tuple[float | None, str, str, str]] = []
    for a in incident_alerts(jobs, alerts):
        what = f"FIRING {a['alertname']}" + (f" ({a['severity']}, tier {a['tier']})" if a["tier"] else "")
        rows.append((a["starts"], "alert", what, a["summary"]))
        if a["status"] == "resolved":
            rows.append((a["ends"] or a["starts"], "resolved", f"RESOLVED {a['alertname']}", ""))
    if when(incident.get("opened")):
        rows.append((when(incident.get("opened")), "", f"incident {incident.get('id', '')} opened",
                     f"family {incident.get('family', '?')}: {incident.get('family_reason', '')}"))
    for job in sorted(jobs, key=lambda j: when(j.get("created_at")) or 0):
        rows.extend(_job_rows(job))
    for item in evidence_items:
        cell = "/".join(str(v) for v in _dict(item.get("cell")).values())
        rows.append((when(item.get("time")), "", f"probe {item.get('probe', '?')} failed: {cell}",
                     ", ".join(str(r) for r in _list(item.get("reasons"))) + " (evidence below)"))
    if when(incident.get("closed")):
        rows.append((when(incident.get("closed")), "resolved", f"incident {incident.get('id', '')} closed",
                     str(incident.get("status", ""))))
    return sorted(rows, key=lambda r: r[0] or 0)


def _job_rows(job: Mapping[str, Any]) -> list[tuple[float | None, str, str, str]]:
    jid, tier = job.get("id", "?"), job.get("tier", "?")
    rows: list[tuple[float | None, str, str, str]] = [
        (when(job.get("created_at")), "", f"job {jid}: {tier} queued", str(job.get("reason", "")))]
    clock = when(job.get("started_at"))
    if clock:
        rows.append((clock, "", f"job {jid}: {tier} started", f"attempt {job.get('attempts', 1)}"))
    for step in _list(job.get("steps")):
        step = _dict(step)
        ok = step.get("ok")
        mark = "ok" if ok else ("FAILED" if ok is False else "planned")
        rows.append((clock, "" if ok is not False else "alert",
                     f"step {step.get('step', '?')}: {mark} {_seconds(step.get('duration_seconds'))}",
                     str(step.get("output", ""))))
        if isinstance(step.get("verification"), Mapping):
            v = step["verification"]
            rows.append((clock, "resolved" if v.get("success") else "alert",
                         f"verification {v.get('module', '')}: {'passed' if v.get('success') else 'FAILED'}",
                         f"{v.get('attempts', '?')} attempts in {_seconds(v.get('duration_seconds'))}: "
                         f"{v.get('detail', '')}"))
        if clock and isinstance(step.get("duration_seconds"), int | float):
            clock += float(step["duration_seconds"])
    done = when(job.get("finished_at"))
    notes = [p.strip() for p in str(job.get("note") or "").split("; ") if p.strip()]
    reason = "; ".join(p for p in notes if not p.startswith("on-call"))
    if done or job.get("status") not in ("queued", "running"):
        rows.append((done or clock, "alert" if job.get("status") in ("failed", "refused") else "",
                     f"job {jid}: {tier} {job.get('status', '?')}", reason))
    if job.get("escalation"):
        rows.append((done or clock, "esc", f"ESCALATED {job['escalation']}", f"because: {reason or '?'}"))
    for part in notes:
        if part.startswith("on-call"):
            rows.append((done or clock, "page", "PAGE " + part, ""))
    return rows


# -- sections ---------------------------------------------------------------------------------------
def _timeline_html(rows: list[tuple[float | None, str, str, str]]) -> str:
    start = next((t for t, *_ in rows if t), None)
    body = []
    for t, css, what, detail in rows:
        offset = f"+{int(t - start) // 60:d}:{int(t - start) % 60:02d}" if t and start else ""
        text = f"<pre>{esc(detail)}</pre>" if "\n" in detail or len(detail) > 140 else esc(detail)
        body.append(f'<tr class="{css}"><td>{esc(offset)}</td><td class="muted">{esc(_utc(t))}</td>'
                    f"<td><strong>{esc(what)}</strong></td><td>{text}</td></tr>")
    head = "<tr><th>offset</th><th>time</th><th>what</th><th>detail</th></tr>"
    return f'<h2 id="timeline">Timeline</h2><table class="timeline">{head}{"".join(body)}</table>'


def _root_cause_html(jobs: Sequence[Mapping[str, Any]]) -> str:
    verdicts = [_dict(j.get("triage")) for j in sorted(jobs, key=lambda j: when(j.get("created_at")) or 0)]
    verdict = next((v for v in verdicts if v.get("root_cause")), next((v for v in verdicts if v), {}))
    out = ['<h2 id="root-cause">Root cause</h2>']
    root = _dict(verdict.get("root_cause"))
    if not root:
        note = verdict.get("note") or "no known error pattern in the logs of the window"
        return out[0] + f'<p class="muted">{esc(note)}</p>'
    first = _dict(root.get("first"))
    out.append(f'<p class="root"><span class="bad">{esc(root.get("pattern"))}</span> ×{esc(root.get("count"))}, '
               f'first at {esc(first.get("time"))} in <code>{esc(first.get("file"))}</code></p>')
    out.append(f'<pre class="log-line">{esc(first.get("line"))}</pre>')
    derived = [_dict(d) for d in _list(verdict.get("derived"))]
    if derived:
        out.append("<p>Derived from it (they should stop with it):</p><ul>" + "".join(
            f"<li><strong>{esc(d.get('pattern'))}</strong> ×{esc(d.get('count'))}, first "
            f"{esc(d.get('first_after_seconds'))} s after: <code>{esc(_dict(d.get('first')).get('line'))}</code></li>"
            for d in derived) + "</ul>")
    for other in (_dict(o) for o in _list(verdict.get("other_causes"))):
        out.append(f"<p>Independent: <strong>{esc(other.get('pattern'))}</strong> "
                   f"<code>{esc(_dict(other.get('first')).get('line'))}</code></p>")
    related = {root.get("pattern")} | {d.get("pattern") for d in derived}
    lines = [_dict(e) for e in _list(verdict.get("events")) if _dict(e).get("pattern") in related][-20:]
    if lines:
        out.append("<p>Supporting log lines:</p><pre class=\"log-lines\">" + "\n".join(
            esc(f"{e.get('log', '')}: {e.get('line', '')}") for e in lines) + "</pre>")
    return "".join(out)


def _runbook_html(runbook: tuple[str, str] | None, cfg: IncidentPageConfig) -> str:
    out = ['<h2 id="preventive-action">Preventive action</h2>']
    if runbook is None:
        return out[0] + '<p class="muted">no runbook section for this incident\'s alerts</p>'
    name, section = runbook
    prevent = preventive_action(section)
    if prevent:
        out.append(f'<div class="prevent">{markdown_to_html(prevent)}</div>')
    else:
        out.append(f'<p class="muted">the runbook of {esc(name)} names no preventive action yet</p>')
    href = f"{cfg.runbooks_path.rstrip('/')}/{quote(name)}"
    out.append(f'<details><summary>Runbook: <a href="{esc(href)}">{esc(name)}</a></summary>'
               f"{markdown_to_html(section)}</details>")
    return "".join(out)


def _src(value: Any) -> str | None:
    return value if isinstance(value, str) and _DATA_URI.match(value) else None


def _evidence_html(evidence: Mapping[str, Any] | None) -> str:
    out = ['<h2 id="evidence">Audio evidence</h2>']
    evidence = _dict(evidence)
    if evidence.get("unavailable") or not evidence:
        why = evidence.get("unavailable") or "not fetched"
        return out[0] + f'<p class="bad">evidence unavailable: {esc(why)}</p>'
    items = [_dict(i) for i in _list(evidence.get("items"))]
    if not items:
        return out[0] + '<p class="muted">no probe failed with audio evidence in this window</p>'
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        cell = " / ".join(f"{k} {v}" for k, v in _dict(item.get("cell")).items())
        entry = cells.setdefault((str(item.get("probe", "?")), cell), {"reasons": set(), "n": 0, "times": []})
        entry["reasons"].update(str(r) for r in _list(item.get("reasons")))
        entry["n"] += 1
        entry["times"].append(when(item.get("time")))
    out.append("<h3>Cells that broke</h3><table class=\"cells\"><tr><th>probe</th><th>cell</th><th>reasons</th>"
               "<th>failures kept</th><th>first</th><th>last</th></tr>" + "".join(
                   f"<tr><td>{esc(p)}</td><td>{esc(c)}</td><td class=\"bad\">{esc(', '.join(sorted(e['reasons'])))}"
                   f"</td><td>{e['n']}</td><td>{esc(_utc(min(filter(None, e['times']), default=None)))}</td>"
                   f"<td>{esc(_utc(max(filter(None, e['times']), default=None)))}</td></tr>"
                   for (p, c), e in sorted(cells.items())) + "</table>")
    if evidence.get("omitted"):
        out.append(f'<p class="muted">{esc(evidence["omitted"])} more items in the window are not shown</p>')
    out.extend(_item_html(item) for item in items)
    return "".join(out)


def _item_html(item: Mapping[str, Any]) -> str:
    inline = _dict(item.get("inline"))
    cell = ", ".join(f"{k} {v}" for k, v in _dict(item.get("cell")).items())
    out = [f'<section class="evidence" id="ev-{esc(item.get("id"))}"><h3>{esc(item.get("probe"))} · {esc(cell)} · '
           f'<span class="bad">{esc(", ".join(str(r) for r in _list(item.get("reasons"))))}</span> '
           f'<span class="muted">{esc(_utc(when(item.get("time"))))}</span></h3>'
           f"<p>{esc(item.get('detail'))}</p>"]
    if item.get("text"):
        out.append(f'<p class="muted">probe text: {esc(item["text"])}</p>')
    clips = []
    for name, label in (("clip.wav", "failing clip"), ("baseline.wav", "baseline clip")):
        src = _src(inline.get(name))
        if src:
            info = _dict(item.get("clip" if name == "clip.wav" else "baseline"))
            clips.append(f'<figure><figcaption>{label} {esc(_seconds(info.get("seconds")))}</figcaption>'
                         f'<audio controls preload="metadata" src="{esc(src)}"></audio></figure>')
    out.append(f'<div class="clips">{"".join(clips)}</div>' if clips else
               '<p class="muted">no clip: the service returned no audio</p>')
    plots = [f'<img alt="{alt}" src="{esc(src)}">' for name, alt in
             (("waveform.svg", "waveform and energy"), ("f0.svg", "F0 contour over the template"))
             if (src := _src(inline.get(name)))]
    if plots:
        out.append(f'<div class="plots">{"".join(plots)}</div>')
    checks = [_dict(c) for c in _list(item.get("checks"))]
    if checks:
        out.append("<table class=\"checks\"><tr><th>check</th><th>measured</th><th>must be</th><th>result</th></tr>")
        for c in checks:
            unit = f" {c.get('unit')}" if c.get("unit") else ""
            bound = f"{c.get('op', '')} {_number(c.get('threshold'))}{unit}" if c.get("threshold") is not None else ""
            value = f"{_number(c.get('value'))}{unit}" if c.get("value") is not None else str(c.get("note") or "")
            verdict = '<span class="ok">pass</span>' if c.get("passed") else '<span class="bad">FAIL</span>'
            out.append(f"<tr><td>{esc(c.get('name'))}</td><td>{esc(value)}</td><td>{esc(bound)}</td>"
                       f"<td>{verdict}</td></tr>")
        out.append("</table>")
    for missing in _list(item.get("missing")):
        out.append(f'<p class="muted">{esc(missing)}</p>')
    return "".join(out) + "</section>"


def _links_html(cfg: IncidentPageConfig, since: float, until: float) -> str:
    start, end = since - cfg.link_margin_seconds, until + cfg.link_margin_seconds
    links = []
    if cfg.grafana_url:
        query = urlencode({"from": int(start * 1000), "to": int(end * 1000)})
        links.append(f'<a href="{esc(f"{cfg.grafana_url}/d/{quote(cfg.grafana_dashboard_uid)}/?{query}")}">'
                     "Grafana dashboard for this window</a>")
    if cfg.prometheus_url:
        query = urlencode({"g0.expr": cfg.prometheus_expr, "g0.tab": "0", "g0.range_input": f"{int(end - start)}s",
                           "g0.end_input": datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M:%S")})
        links.append(f'<a href="{esc(f"{cfg.prometheus_url}/graph?{query}")}">Prometheus graph for this window</a>')
    return f"<nav>{''.join(links)}</nav>" if links else ""


def render_incident_page(incident: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]],
                         alerts: Sequence[Mapping[str, Any]] = (), evidence: Mapping[str, Any] | None = None,
                         runbooks_markdown: str | None = None, config: IncidentPageConfig | None = None,
                         now: float | None = None) -> str:
    """The whole page as one HTML string; never raises on missing or odd fields (they show as `?`)."""
    cfg = config or IncidentPageConfig()
    incident = _dict(incident)
    jobs = [_dict(j) for j in jobs]
    since, until = incident_window(incident, jobs, alerts, now)
    names = [str(incident.get("family", ""))] + [a["alertname"] for a in incident_alerts(jobs, alerts)]
    items = [_dict(i) for i in _list(_dict(evidence).get("items"))]
    status = str(incident.get("status", "?"))
    tiers = ", ".join(str(t) for t in _list(incident.get("tiers"))) or "?"
    head = (f"<h1>Incident {esc(incident.get('id', '?'))} on {esc(incident.get('target', '?'))}: "
            f"{esc(incident.get('family', '?'))}</h1>"
            f'<p><span class="badge {"ok" if status in ("closed", "resolved") else "bad"}">{esc(status)}</span> '
            f"tiers {esc(tiers)} · opened {esc(_utc(when(incident.get('opened')) or since))}"
            f" · closed {esc(_utc(when(incident.get('closed'))) if incident.get('closed') else 'not yet')}</p>"
            f"<p class=\"muted\">{esc(incident.get('family_reason', ''))}</p>")
    body = "\n".join([
        head, _links_html(cfg, since, until),
        _timeline_html(timeline(incident, jobs, alerts, items)),
        _root_cause_html(jobs), _runbook_html(runbook_for(runbooks_markdown, names), cfg),
        _evidence_html(evidence),
    ])
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="referrer" content="no-referrer">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Incident {esc(incident.get('id', '?'))} · TTS Sentinel</title><style>{_STYLE}</style></head>\n"
            f"<body><main>\n{body}\n</main></body></html>\n")
