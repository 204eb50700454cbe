"""The Done-when of issue 14, as a person does it: the demo's stack, `tts-sentinel drill silent`, and
the incident URL the drill printed opened in headless Chromium with no header and no cookie.

The stack is the demo's (`Stack(..., audio_evidence=True)`, free ports instead of the demo's
familiar ones): the simulator under supervisord, the exporter with its L2, L3 and quality probes
and a baseline recorded at start, the receiver, Prometheus and Alertmanager. The silent fault's
log line fires TtsAudioSilent; the receiver's medium tier captures the probes' evidence, restarts
inference and verifies. The page must show the timeline, the root cause, the preventive action,
and the failing and baseline clips with their plots, all loaded; the screenshot is kept under the
test's output (and written to $INCIDENT_PAGE_SCREENSHOT when set: docs/incident-page.png).
"""

from __future__ import annotations

import os
import re
import shutil
from urllib.parse import urlsplit

import pytest
from support import require_binary, started_stack

from tests.evidence.chromium import Chromium
from tts_sentinel.cli import main
from tts_sentinel.harness.stack import Stack

pytestmark = pytest.mark.e2e

# What the page's own script-free DOM says, read back in the browser (DevTools is not bound by the CSP).
READ_PAGE = """(async () => {
    const audio = [...document.querySelectorAll('audio')];
    await Promise.all(audio.map(a => a.readyState >= 1 ? null : new Promise(ok => {
        a.addEventListener('loadedmetadata', ok); a.addEventListener('error', ok); setTimeout(ok, 10000); })));
    const imgs = [...document.querySelectorAll('.plots img')];
    await Promise.all(imgs.map(i => i.complete ? null : new Promise(ok => {
        i.addEventListener('load', ok); i.addEventListener('error', ok); setTimeout(ok, 10000); })));
    const text = s => [...document.querySelectorAll(s)].map(e => e.textContent);
    const bytes = src => src.startsWith('data:') ? atob(src.slice(src.indexOf(',') + 1)) : '';
    return {
        title: document.title, h1: text('h1'),
        timeline: text('table.timeline tr'), root: text('p.root, pre.log-line, pre.log-lines'),
        prevent: text('.prevent'), cells: text('table.cells tr'), checks: text('table.checks tr'),
        clips: [...document.querySelectorAll('.clips figure')].map(f => {
            const a = f.querySelector('audio'), raw = bytes(a.src);
            return {label: f.querySelector('figcaption').textContent, bytes: raw.length, magic: raw.slice(0, 4),
                    error: a.error && a.error.code, seconds: a.duration};
        }),
        plots: imgs.map(i => ({alt: i.alt, width: i.naturalWidth, bytes: bytes(i.src).length,
                               svg: bytes(i.src).includes('<svg')})),
        scripts: document.querySelectorAll('script').length,
    };
})()"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    yield from started_stack(Stack, tmp_path_factory.mktemp("demo"), audio_evidence=True)


def test_the_url_drill_silent_prints_opens_in_chromium_with_the_evidence(demo, capsys, tmp_path):
    chromium = require_binary("chromium", "chromium-browser", "google-chrome")
    code = main(["drill", "silent", "--dir", str(demo.dir), "--timeout", "240"])
    printed = capsys.readouterr().out
    print(printed)
    assert code == 0, printed
    urls = re.findall(r"^incident page: (\S+)$", printed, re.MULTILINE)
    assert len(urls) == 1, printed
    url = urls[0]
    assert urlsplit(url).netloc == f"127.0.0.1:{demo.ports.receiver}" and "sig=" in url and "exp=" in url
    assert demo.token not in printed, "the admin token is never printed"

    browser = Chromium(chromium, tmp_path / "chromium-profile")
    try:
        status = browser.open(url)  # no Authorization header, no cookie: a plain link
        seen = browser.evaluate(READ_PAGE)
        html = browser.evaluate("document.documentElement.outerHTML")
        shot = browser.screenshot(tmp_path / "incident.png")
        top = browser.screenshot(tmp_path / "incident-top.png", max_height=2400)
        errors = browser.console_errors()
        requested = browser.requested_urls()
        responses = browser.responses()
    finally:
        browser.close()

    assert status == 200, (status, seen.get("title"))
    assert demo.token not in html, "the admin token is never in the page"
    timeline = "\n".join(seen["timeline"])
    for event in ("FIRING TtsAudioSilent", "medium queued", "step capture evidence: synthesis, quality, semantic",
                  "step stop inference via supervisord: ok", "verification synthesis: passed", "medium succeeded",
                  "probe synthesis failed", "probe semantic failed", "probe quality failed"):
        assert event in timeline, (event, timeline)
    root = "\n".join(seen["root"])
    assert "audio_silent" in root and "Health check failed: audio output silent" in root, root
    assert seen["prevent"] and seen["prevent"][0].strip(), "the runbook's preventive action is shown"
    cells = "\n".join(seen["cells"])
    for cell in ("speaker Vivian", "style serious", "sample seed", "silent", "unvoiced"):
        assert cell in cells, (cell, cells)
    assert any("silence_ratio" in row and "FAIL" in row for row in seen["checks"]), seen["checks"]

    failing = [c for c in seen["clips"] if c["label"].startswith("failing clip")]
    baseline = [c for c in seen["clips"] if c["label"].startswith("baseline clip")]
    assert failing and baseline, seen["clips"]
    for clip in failing + baseline:  # each loads in the browser: a WAV with bytes, decoded, no media error
        assert clip["magic"] == "RIFF" and clip["bytes"] > 1000 and clip["error"] is None and clip["seconds"] > 0.5, clip
    plots = {p["alt"] for p in seen["plots"] if p["width"] > 0 and p["svg"] and p["bytes"] > 500}
    assert plots == {"waveform and energy", "F0 contour over the template"}, seen["plots"]
    assert seen["scripts"] == 0 and errors == [], errors
    # Everything it loaded came from the page itself or the one link: nothing else to authenticate.
    assert all(u == url or u.startswith("data:") for u in requested), requested
    assert all(r["response"]["status"] == 200 for r in responses if r["response"]["url"] == url), responses
    assert shot.stat().st_size > 50_000
    if os.environ.get("INCIDENT_PAGE_SCREENSHOT"):
        shutil.copyfile(top, os.environ["INCIDENT_PAGE_SCREENSHOT"])
