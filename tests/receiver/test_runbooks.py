"""The runbook pages: one section of rules/runbooks.md per alert, escaped, self-contained."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.receiver.conftest import receiver_config
from tts_sentinel.receiver.runbooks import markdown_to_html, render_index, render_runbook, runbook_sections

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = (ROOT / "rules" / "runbooks.md").read_text(encoding="utf-8")


def test_every_alert_in_the_rules_has_a_page():
    alerts = {rule["alert"] for path in (ROOT / "rules").glob("*.rules.yml")
              for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule}
    missing = {a for a in alerts if render_runbook(RUNBOOKS, a) is None}
    assert not missing


def test_a_page_holds_its_own_section_only_and_loads_nothing_from_outside():
    page = render_runbook(RUNBOOKS, "TtsSegfault")
    assert "<h1>TtsSegfault</h1>" in page
    assert "<code>Segmentation fault</code>" in page and "<strong>Means:</strong>" in page
    assert "TtsTorchOutOfMemory" not in page  # the next section
    assert "<script" not in page and "src=" not in page and "@import" not in page
    assert 'href="/runbooks/"' in page


def test_a_section_ends_at_a_chapter_heading():
    sections = runbook_sections("## A\none\n# Chapter\nintro\n## B\ntwo\n")
    assert sections == {"A": "\none\n", "B": "\ntwo\n"}


def test_an_unknown_alert_has_no_page():
    assert render_runbook(RUNBOOKS, "NoSuchAlert") is None


def test_markup_in_the_markdown_is_escaped_and_unsafe_links_are_dropped():
    fragment = markdown_to_html(
        "Run <script>alert(1)</script> and `a < b && **c**`.\n"
        "See [the wiki](https://wiki.example/tts) and [this](javascript:alert(1)).\n"
    )
    assert "<script>" not in fragment and "&lt;script&gt;" in fragment
    assert "<code>a &lt; b &amp;&amp; **c**</code>" in fragment
    assert '<a href="https://wiki.example/tts">the wiki</a>' in fragment
    assert "javascript:" not in fragment.replace("[this]", "")


def test_lists_code_blocks_and_emphasis():
    fragment = markdown_to_html("Steps:\n\n- stop *inference*\n- start it\n  again\n\n```\nnvidia-smi\n```\n")
    assert "<ul><li>stop <em>inference</em></li><li>start it again</li></ul>" in fragment
    assert "<pre><code>nvidia-smi</code></pre>" in fragment


def test_the_index_links_every_runbook():
    index = render_index(RUNBOOKS)
    assert index.count("<li>") == len(runbook_sections(RUNBOOKS))
    assert '<a href="/runbooks/TtsEngineDead">TtsEngineDead</a>' in index


def test_the_running_receiver_serves_every_runbook_without_the_token(make_receiver):
    receiver = make_receiver(receiver_config(None, None, dry_run=True))
    page = receiver.client.get("/runbooks/TtsSegfault")  # no Authorization header
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "TtsSegfault" in page.text and "<script" not in page.text
    assert receiver.client.get("/runbooks/").status_code == 200
    assert receiver.client.get("/runbooks/NoSuchAlert").status_code == 404
    assert receiver.client.get("/actions").status_code == 401  # the journal still needs the token
