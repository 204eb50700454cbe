"""The exporter serves evidence: a list by time window, and only the files an item lists."""

from __future__ import annotations

import http.client
import os
import time
from urllib.parse import urlparse

import httpx
import pytest


def raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET with the request target sent exactly as written (httpx would normalise `..` away)."""
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def failed(sim, exporter):
    """The exporter after one failing L2 run on silent audio: (exporter, its items)."""
    sim.inference.set_fault("silent")
    before = time.time()
    probe = httpx.get(f"{exporter.url}/probe", params={"module": "synthesis"}, timeout=60)
    assert 'tts_probe_success{probe="synthesis"} 0.0' in probe.text
    items = httpx.get(f"{exporter.url}/evidence", params={"since": before}).json()
    assert len(items) == 2, "one item per failed cell"
    return exporter, items


def test_list_by_window_and_files_by_name(failed):
    exporter, items = failed
    assert {tuple(i["cell"].values()) for i in items} == {("zh", "Vivian"), ("en", "Ryan")}
    assert all(i["probe"] == "synthesis" and i["reasons"] == ["silent"] for i in items)
    first = items[0]
    assert httpx.get(f"{exporter.url}/evidence", params={"until": first["time"] - 1}).json() == []
    answer = httpx.get(f"{exporter.url}/evidence/{first['id']}/clip.wav")
    assert answer.status_code == 200 and answer.headers["content-type"] == "audio/wav"
    assert answer.content[:4] == b"RIFF"
    svg = httpx.get(f"{exporter.url}/evidence/{first['id']}/waveform.svg")
    assert svg.headers["content-type"] == "image/svg+xml" and svg.content.startswith(b"<svg")
    metrics = httpx.get(f"{exporter.url}/metrics").text
    assert "tts_evidence_kept_total 2.0" in metrics and "tts_evidence_items 2.0" in metrics


def test_a_bad_window_is_a_clear_400(failed):
    exporter, _ = failed
    answer = httpx.get(f"{exporter.url}/evidence", params={"since": "yesterday"})
    assert answer.status_code == 400 and "since must be a Unix time" in answer.text
    assert httpx.get(f"{exporter.url}/evidence", params={"until": "nan"}).status_code == 400


TRAVERSALS = (
    "/evidence/{id}/../../state/offsets.json",
    "/evidence/{id}/..%2F..%2Foffsets.json",
    "/evidence/{id}/%2e%2e/%2e%2e/offsets.json",
    "/evidence/../../../etc/passwd",
    "/evidence/{id}//etc/passwd",
    "/evidence//etc/passwd",
    "/evidence/%2Fetc%2Fpasswd/clip.wav",
    "/evidence/{id}/clip.wav/..",
    "/evidence/{id}/clip.wav%00.txt",
    "/evidence/{id}/baseline.wav",
    "/evidence/{id}/notes.txt",
    "/evidence/{id}",
    "/evidence/20260101T000000Z-00000000/clip.wav",
)


def test_traversal_absolute_paths_and_unlisted_names_are_404(failed):
    exporter, items = failed
    item_dir = exporter.evidence.dir / items[0]["id"]
    (item_dir / "notes.txt").write_text("not listed, never served")
    for target in TRAVERSALS:
        status, body = raw_get(exporter.url, target.format(id=items[0]["id"]))
        assert status == 404, (target, body)
        assert b"root:" not in body and b"not listed" not in body, target


def test_symlinks_in_the_evidence_dir_are_not_followed(failed, tmp_path):
    exporter, items = failed
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET outside the evidence dir")
    clip = exporter.evidence.dir / items[0]["id"] / "clip.wav"
    clip.unlink()
    clip.symlink_to(secret)
    status, body = raw_get(exporter.url, f"/evidence/{items[0]['id']}/clip.wav")
    assert status == 404 and b"SECRET" not in body
    # The whole item folder swapped for a link to another folder holding the same names.
    other = exporter.evidence.dir / items[1]["id"]
    elsewhere = tmp_path / "elsewhere"
    os.rename(other, elsewhere)
    (elsewhere / "clip.wav").write_bytes(b"RIFF SECRET")
    other.symlink_to(elsewhere, target_is_directory=True)
    status, body = raw_get(exporter.url, f"/evidence/{items[1]['id']}/clip.wav")
    assert status == 404 and b"SECRET" not in body
