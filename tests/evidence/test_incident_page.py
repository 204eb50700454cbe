"""The incident page renderer: hostile text stays text, odd data never breaks it, every section is there."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pytest
from pydantic import ValidationError

from tts_sentinel.receiver.incident_page import (
    IncidentPageConfig,
    incident_window,
    preventive_action,
    render_incident_page,
    runbook_for,
)
from tts_sentinel.receiver.runbooks import runbook_sections
from tts_sentinel.shipped import shipped_dir

RUNBOOKS = (shipped_dir("rules") / "runbooks.md").read_text(encoding="utf-8")
EVIL = '"><script>alert(1)</script><img src=x onerror=alert(2)><a href="javascript:alert(3)">x</a>'
WAV = "data:audio/wav;base64," + base64.b64encode(b"RIFF....WAVEfmt ").decode()
SVG = "data:image/svg+xml;base64," + base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'/>").decode()
T0 = 1_800_000_000.0


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(page: str) -> list[tuple[str, dict]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


def job(**overrides) -> dict:
    base = {
        "id": 7, "created_at": T0 + 60, "started_at": T0 + 61, "finished_at": T0 + 75, "updated_at": T0 + 75,
        "target": "qwen3-tts", "kind": "remediate", "tier": "medium", "reason": "TtsSynthesisSilent: " + EVIL,
        "status": "failed", "result": "failure",
        "alerts": [{"fingerprint": "ab", "startsAt": "2027-01-15T08:00:00+00:00", "status": "firing",
                    "alertname": "TtsSynthesisSilent", "labels": {"alertname": "TtsSynthesisSilent", "x": EVIL},
                    "summary": EVIL, "tier": "medium", "why": "label"}],
        "steps": [{"step": "stop inference via supervisord", "ok": True, "duration_seconds": 2.5, "output": EVIL},
                  {"step": "verify http://127.0.0.1:9464/probe?module=synthesis", "ok": False,
                   "duration_seconds": 10.0, "output": "verification failed",
                   "verification": {"module": "synthesis", "success": False, "attempts": 9,
                                    "duration_seconds": 10.0, "detail": "tts_probe_success=0 " + EVIL}}],
        "verification": {"module": "synthesis", "success": False},
        "escalation": "escalated to heavy as job 8",
        "note": "step 'verify' failed: " + EVIL + "; on-call paged: TtsRemediationExhausted reason=medium_failed",
        "triage": {"window": {}, "root_cause": {"pattern": "cuda_oom", "count": 2, "first": {
            "time": "2027-01-15T07:59:58.100", "log": "inference", "file": "/var/log/inference.log",
            "pattern": "cuda_oom", "line": "[CUDA] Out of memory on device 0 " + EVIL}},
            "derived": [{"pattern": "audio_silent", "count": 3, "first_after_seconds": 2.1,
                         "first": {"line": "Health check failed: audio output silent for 5s"}}],
            "other_causes": [], "events": [
                {"time": "2027-01-15T07:59:58.100", "log": "inference", "pattern": "cuda_oom",
                 "line": "[CUDA] Out of memory on device 0 " + EVIL},
                {"time": "2027-01-15T08:00:00.200", "log": "health", "pattern": "audio_silent",
                 "line": "Health check failed: audio output silent for 5s"},
                {"time": "2027-01-15T08:00:01.000", "log": "webui", "pattern": "unrelated", "line": "noise"}]},
    }
    return {**base, **overrides}


def evidence(**item) -> dict:
    base = {"id": "20270115T075930Z-0123abcd", "time": T0 + 30, "probe": "synthesis",
            "cell": {"lang": "yue", "speaker": EVIL}, "reasons": ["silent", EVIL], "detail": EVIL, "text": EVIL,
            "checks": [{"name": "silence_ratio", "value": 1.0, "op": "<=", "threshold": 0.7, "passed": False,
                        "unit": ""}, {"name": EVIL, "value": None, "note": EVIL, "passed": False}],
            "clip": {"seconds": 2.7}, "baseline": {"seconds": 2.6},
            "inline": {"clip.wav": WAV, "baseline.wav": WAV, "waveform.svg": SVG, "f0.svg": SVG}}
    return {"items": [{**base, **item}], "omitted": 0, "unavailable": None}


INCIDENT = {"id": 3, "target": "qwen3-tts", "family": "TtsSynthesisSilent", "family_reason": EVIL,
            "opened": T0 + 60, "closed": None, "tiers": ["medium", "heavy"], "status": "open"}


def render(**kwargs) -> str:
    args = {"incident": INCIDENT, "jobs": [job()], "alerts": (), "evidence": evidence(),
            "runbooks_markdown": RUNBOOKS,
            "config": IncidentPageConfig(grafana_url="https://grafana.example", prometheus_url="http://prom:9090"),
            "now": T0 + 120, **kwargs}
    return render_incident_page(**args)


def test_hostile_strings_stay_text_everywhere():
    page = render()
    assert "<script" not in page and "<img src=x" not in page and 'href="javascript' not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 10, "shown, escaped, in every section"
    for tag, attrs in tags_of(page):
        assert tag not in {"script", "iframe", "object", "embed", "base", "form", "link"}, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("href", "src"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("https://grafana.example/", "http://prom:9090/", "/runbooks/", "#",
                                         "data:audio/wav;base64,", "data:image/svg+xml;base64,")), (tag, value)


def test_the_page_forbids_scripts_and_remote_loads_by_policy():
    page = render()
    csp = next(a["content"] for t, a in tags_of(page) if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "img-src data:" in csp and "media-src data:" in csp


def test_only_audio_and_svg_data_uris_are_embedded():
    bad = {"clip.wav": "javascript:alert(1)", "baseline.wav": "data:text/html;base64,PHNjcmlwdD4=",
           "waveform.svg": "https://evil.example/x.svg", "f0.svg": SVG + '" onload="alert(1)'}
    page = render(evidence=evidence(inline=bad))
    srcs = [a["src"] for t, a in tags_of(page) if "src" in a]
    assert srcs == [], srcs
    assert "no clip: the service returned no audio" in page


def test_timeline_has_alerts_steps_verification_escalation_and_pages_in_order():
    page = render(alerts=[{"status": "resolved", "fingerprint": "ab", "startsAt": "2027-01-15T08:00:00Z",
                           "endsAt": "2027-01-15T08:30:00Z",
                           "labels": {"alertname": "TtsSynthesisSilent", "severity": "critical", "tier": "medium"},
                           "annotations": {"summary": "silent"}}])
    order = ["FIRING TtsSynthesisSilent (critical, tier medium)", "job 7: medium queued", "job 7: medium started",
             "step stop inference via supervisord: ok 2.5 s", "verification synthesis: FAILED",
             "job 7: medium failed", "ESCALATED escalated to heavy as job 8",
             "PAGE on-call paged: TtsRemediationExhausted reason=medium_failed", "RESOLVED TtsSynthesisSilent"]
    positions = [page.index(event) for event in order]
    assert positions == sorted(positions), order
    assert "because: step &#x27;verify&#x27; failed:" in page, "the escalation names its reason"
    assert "9 attempts in 10 s" in page


def test_root_cause_shows_its_line_derived_and_supporting_lines_only():
    page = render()
    assert "cuda_oom</span> ×2" in page and "/var/log/inference.log" in page
    assert "audio_silent</strong> ×3, first 2.1 s after" in page
    support = page[page.index('class="log-lines"'):]
    support = support[:support.index("</pre>")]
    assert "inference: [CUDA] Out of memory on device 0" in support and "health: Health check failed" in support
    assert "noise" not in support, "lines of unrelated patterns are not support"


def test_preventive_action_of_the_family_runbook():
    page = render()
    assert "Preventive action" in page and 'href="/runbooks/TtsSynthesisSilent"' in page
    prevent = page[page.index('class="prevent"'):]
    assert "remove the root cause the triage names" in prevent[:400]


def test_every_runbook_section_has_a_preventive_action():
    sections = runbook_sections(RUNBOOKS)
    missing = [name for name, text in sections.items() if not preventive_action(text)]
    assert not missing, f"sections without **Preventive action:**: {missing}"
    name, section = runbook_for(RUNBOOKS, ["nope", "TtsSynthesisRunaway"])
    assert name == "TtsSynthesisRunaway" and "maximum generation length" in preventive_action(section)
    assert "GC" in preventive_action(sections["TtsGpuMemorySlowLeak"]) or \
        "gc.collect" in preventive_action(sections["TtsGpuMemorySlowLeak"])
    assert "shm" in preventive_action(sections["TtsEngineDead"])


def test_evidence_shows_cells_players_plots_and_checks():
    page = render()
    assert page.count("<audio controls") == 2 and page.count('<img alt=') == 2
    assert "failing clip 2.7 s" in page and "baseline clip 2.6 s" in page
    cells = page[page.index('class="cells"'):]
    assert "lang yue / speaker &quot;&gt;&lt;script&gt;" in cells[:2000]
    assert "<td>silence_ratio</td><td>1</td><td>&lt;= 0.7</td><td><span class=\"bad\">FAIL</span>" in page


def test_unreachable_exporter_is_a_line_not_an_error_page():
    page = render(evidence={"items": [], "unavailable": "the exporter at http://127.0.0.1:1 is unreachable " + EVIL})
    assert "evidence unavailable: the exporter at http://127.0.0.1:1 is unreachable &quot;&gt;&lt;script" in page
    assert "Timeline" in page and "Root cause" in page
    assert "evidence unavailable: not fetched" in render(evidence=None)


@pytest.mark.parametrize("odd", [
    {"steps": None, "triage": "not a dict", "alerts": "nope", "escalation": None, "note": None},
    {"steps": [None, 3, "x", {"ok": "maybe", "duration_seconds": "long"}], "created_at": "yesterday"},
    {"triage": {"root_cause": {"first": None}, "derived": [None], "events": [None, 5]}},
])
def test_odd_journal_data_never_breaks_the_page(odd):
    page = render(jobs=[job(**odd)], evidence={"items": [{"checks": {"a": 1}, "inline": [], "cell": "x"}, 5]},
                  incident={"id": None, "tiers": "medium"})
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")


def test_links_cover_the_incident_window():
    page = render()
    since, until = incident_window(INCIDENT, [job()], now=T0 + 120)
    assert since == T0, "the first alert started before the incident opened"
    assert until == T0 + 120, "an open incident runs until now"
    grafana = next(a["href"] for t, a in tags_of(page) if t == "a" and "grafana" in a.get("href", ""))
    assert f"from={int((since - 900) * 1000)}" in grafana and f"to={int((until + 900) * 1000)}" in grafana
    assert "/d/tts-sentinel/" in grafana
    assert "g0.expr=min+by+%28probe%29+%28tts_probe_success%29" in page
    assert "<nav>" not in render(config=IncidentPageConfig()), "no base URL, no link"


def test_a_closed_incident_window_ends_at_its_last_moment():
    closed = {**INCIDENT, "closed": T0 + 80, "status": "closed"}
    assert incident_window(closed, [job()], now=T0 + 10_000) == (T0, T0 + 80)


def test_link_bases_must_be_http():
    for bad in ("javascript:alert(1)", "file:///etc/passwd", 'http://x"onmouseover=alert(1)'):
        with pytest.raises(ValidationError):
            IncidentPageConfig(grafana_url=bad)
