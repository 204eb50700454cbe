"""The incident page as a person sees it: real silent audio, a real remediation, headless Chromium.

The simulator goes silent; the exporter's L2 and L3 probes fail on it and keep their clips; the
receiver takes TtsSynthesisSilent, runs the medium tier through the command actuator (which
clears the fault, as a restart would), verifies with the exporter's /probe and journals the
triage of the simulator's logs. The page is rendered from that journal and the evidence the
exporter serves, opened in Chromium over the DevTools protocol, and photographed.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from support import require_binary

from tests.evidence.chromium import Chromium
from tts_sentinel.loghistory.config import LogsConfig
from tts_sentinel.receiver.config import ReceiverConfig
from tts_sentinel.receiver.evidence_client import fetch_evidence
from tts_sentinel.receiver.incident_page import IncidentPageConfig, incident_window, render_incident_page
from tts_sentinel.receiver.payload import WebhookPayload
from tts_sentinel.receiver.service import ReceiverService
from tts_sentinel.shipped import shipped_dir

HOSTILE = '<script>alert("summary")</script><img src=x onerror=alert(1)>'


def alert(status: str, starts: datetime, ends: datetime | None = None) -> dict:
    return {"status": status, "fingerprint": "f00d", "startsAt": starts.isoformat(),
            "endsAt": (ends or starts).isoformat() if status == "resolved" else "0001-01-01T00:00:00Z",
            "labels": {"alertname": "TtsSynthesisSilent", "tier": "medium", "severity": "critical",
                       "job": "tts-sentinel"},
            "annotations": {"summary": "L2 probe audio is silent " + HOSTILE}}


def remediate(sim, exporter, tmp_path: Path) -> tuple[list[dict], list[dict]]:
    """Post the alert to a real ReceiverService; (jobs as GET /actions returns them, the alerts)."""
    control = [sys.executable, str(Path(__file__).with_name("sim_control.py")), sim.api_url]
    config = ReceiverConfig.model_validate({
        "exporter_url": exporter.url, "alertmanager_url": None,
        "targets": [{"name": "sim", "match": {"job": "tts-sentinel"}, "actuator": "command", "cache_dir": None,
                     "weights_dir": None,
                     "service_config": None, "git_dir": None,
                     "command": {"stop": [*control, "stop"], "start": [*control, "start"]}}],
        "tiers": {"medium": [{"action": "stop", "component": "inference"}, {"action": "release_gpu"},
                             {"action": "start", "component": "inference"}, {"action": "wait", "seconds": 0.2},
                             {"action": "verify", "module": "synthesis"}]},
        "verification": {"timeout_seconds": 30, "interval_seconds": 0.5},
    })
    logs = LogsConfig.model_validate({"files": [
        {"name": name, "path": str(sim.config.log_dir / f"{name}.log")} for name in ("webui", "inference", "health")]})
    service = ReceiverService(config, "token", journal_path=tmp_path / "journal.sqlite3", logs_config=logs)
    service.start()
    started = datetime.now(UTC)
    fired = alert("firing", started)
    try:
        service.accept(WebhookPayload.model_validate({"version": "4", "status": "firing", "alerts": [fired]}))
        deadline = time.monotonic() + 60
        while not (jobs := [j.as_dict() for j in service.journal.jobs()]) or jobs[0]["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"the job did not finish: {jobs}"
            time.sleep(0.2)
        jobs = json.loads(json.dumps(jobs))  # exactly what GET /actions sends
    finally:
        service.stop()
    return jobs, [fired, alert("resolved", started, datetime.now(UTC))]


def test_incident_page_in_chromium(sim, exporter, tmp_path):
    chromium = require_binary("chromium", "chromium-browser", "google-chrome")
    sim.inference.set_fault("silent")
    for module in ("synthesis", "semantic"):
        probe = httpx.get(f"{exporter.url}/probe", params={"module": module}, timeout=60)
        assert f'tts_probe_success{{probe="{module}"}} 0.0' in probe.text
    jobs, alerts = remediate(sim, exporter, tmp_path)
    assert jobs[0]["status"] == "succeeded", jobs[0]
    incident = {"id": 1, "target": "sim", "family": "silent_audio",
                "family_reason": "TtsSynthesisSilent: the L2 probe heard silence",
                "opened": jobs[0]["created_at"], "closed": jobs[0]["finished_at"], "tiers": ["medium"],
                "status": "closed"}
    since, until = incident_window(incident, jobs, alerts)
    evidence = fetch_evidence(exporter.url, since, until)
    assert evidence["unavailable"] is None and len(evidence["items"]) >= 4, evidence
    page = render_incident_page(
        incident, jobs, alerts, evidence, (shipped_dir("rules") / "runbooks.md").read_text(encoding="utf-8"),
        IncidentPageConfig(grafana_url="http://grafana.example:3000", prometheus_url="http://prom.example:9090"))
    html_file = tmp_path / "incident.html"
    html_file.write_text(page, encoding="utf-8")

    browser = Chromium(chromium, tmp_path / "chromium-profile")
    try:
        browser.open(html_file.as_uri())
        seen = browser.evaluate("""(async () => {
            const audio = [...document.querySelectorAll('audio')];
            await Promise.all(audio.map(a => a.readyState >= 1 ? null : new Promise(ok => {
                a.addEventListener('loadedmetadata', ok); a.addEventListener('error', ok);
                setTimeout(ok, 5000); })));
            const text = s => [...document.querySelectorAll(s)].map(e => e.textContent);
            return {
                timeline: text('table.timeline tr'), root: text('#root-cause ~ p.root, pre.log-line, pre.log-lines'),
                prevent: text('.prevent'), cells: text('table.cells tr'), checks: text('table.checks tr'),
                audio: audio.map(a => ({data: a.src.startsWith('data:audio/wav;base64,'), error: a.error && a.error.code,
                                        seconds: a.duration})),
                plots: [...document.querySelectorAll('.plots img')].map(i => ({alt: i.alt, width: i.naturalWidth})),
                scripts: document.querySelectorAll('script').length,
                links: [...document.querySelectorAll('nav a')].map(a => a.href),
            };
        })()""")
        shot = browser.screenshot(tmp_path / "incident.png")
        errors = browser.console_errors()
    finally:
        browser.close()

    timeline = "\n".join(seen["timeline"])
    for event in ("FIRING TtsSynthesisSilent", "RESOLVED TtsSynthesisSilent", "job 1: medium queued",
                  "step stop inference via command: ok", "verification synthesis: passed", "job 1: medium succeeded",
                  "probe synthesis failed: zh/Vivian", "probe semantic failed: zh/Vivian/happy"):
        assert event in timeline, (event, timeline)
    assert HOSTILE in timeline and seen["scripts"] == 0, "alert text is shown as text, never run"
    root = "\n".join(seen["root"])
    assert "audio_silent" in root and "Health check failed: audio output silent" in root, root
    assert "Preventive action" not in "".join(seen["prevent"]) and seen["prevent"][0].strip(), seen["prevent"]
    cells = "\n".join(seen["cells"])
    assert "lang en / speaker Ryan" in cells and "style serious" in cells, cells
    assert "silence_ratio1<=0.7FAIL" in [row.replace(" ", "") for row in seen["checks"]], seen["checks"]
    clips = seen["audio"]
    assert len(clips) >= 6 and all(c["data"] and c["error"] is None and c["seconds"] > 1 for c in clips), clips
    plots = {p["alt"] for p in seen["plots"] if p["width"] > 0}
    assert plots == {"waveform and energy", "F0 contour over the template"}, seen["plots"]
    assert any(link.startswith("http://grafana.example:3000/d/tts-sentinel/?from=") for link in seen["links"])
    assert errors == [], errors
    assert shot.stat().st_size > 50_000
