"""The receiver's evidence client against exporters that are down, old, slow, huge or hostile."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support import free_port

from tts_sentinel.receiver.evidence_client import EvidenceClientConfig, fetch_evidence

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32
SVG = b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"


def item(n: int, probe="synthesis", cell=None, files=("clip.wav", "waveform.svg", "evidence.json")) -> dict:
    return {"id": f"20270115T0800{n:02d}Z-0000abcd", "time": 1_800_000_000 + n, "probe": probe,
            "cell": cell or {"lang": "zh", "speaker": "Vivian"}, "reasons": ["silent"],
            "files": [{"name": f} for f in files]}


class FakeExporter:
    """A real HTTP server playing an exporter: `routes` maps a path to (status, body, delay seconds)."""

    def __init__(self, routes: dict[str, tuple[int, bytes, float]]) -> None:
        self.routes = routes
        self.requested: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                owner.requested.append(self.path)
                status, body, delay = owner.routes.get(path, (404, b"no", 0.0))
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_exporter():
    made: list[FakeExporter] = []

    def make(routes):
        made.append(FakeExporter(routes))
        return made[-1]

    yield make
    for exporter in made:
        exporter.close()


def test_files_are_inlined_as_data_uris_and_the_window_is_widened(make_exporter):
    one = item(1)
    exporter = make_exporter({"/evidence": (200, json.dumps([one]).encode(), 0),
                              f"/evidence/{one['id']}/clip.wav": (200, WAV, 0),
                              f"/evidence/{one['id']}/waveform.svg": (200, SVG, 0)})
    got = fetch_evidence(exporter.url, 1000.0, 2000.0, EvidenceClientConfig(margin_seconds=100))
    assert got["unavailable"] is None and got["window"] == {"since": 900.0, "until": 2100.0}
    assert "since=900.000&until=2100.000" in exporter.requested[0]
    inline = got["items"][0]["inline"]
    assert inline["clip.wav"].startswith("data:audio/wav;base64,UklGR")
    assert inline["waveform.svg"].startswith("data:image/svg+xml;base64,")
    assert not any("evidence.json" in r for r in exporter.requested), "the manifest is already in the list"


def test_an_unreachable_exporter_is_a_reason_not_an_error():
    got = fetch_evidence(f"http://127.0.0.1:{free_port()}", 0, 1)
    assert got["items"] == [] and "is unreachable" in got["unavailable"]


def test_an_exporter_without_evidence_routes_says_so(make_exporter):
    got = fetch_evidence(make_exporter({}).url, 0, 1)
    assert "answered 404 to /evidence (an older exporter?)" in got["unavailable"]


def test_a_listing_that_is_not_a_json_list_is_refused(make_exporter):
    for body in (b"<html>", b'{"items": []}'):
        got = fetch_evidence(make_exporter({"/evidence": (200, body, 0)}).url, 0, 1)
        assert "evidence list is not valid" in got["unavailable"]


def test_a_slow_exporter_is_bounded_by_the_timeout(make_exporter):
    exporter = make_exporter({"/evidence": (200, b"[]", 3.0)})
    started = time.monotonic()
    got = fetch_evidence(exporter.url, 0, 1, EvidenceClientConfig(timeout_seconds=0.5))
    assert time.monotonic() - started < 2.5
    assert "did not answer in time" in got["unavailable"]


def test_hostile_ids_are_never_requested_and_bad_files_not_inlined(make_exporter):
    good = item(1, files=("clip.wav", "waveform.svg", "f0.svg", "../../etc/passwd"))
    evil = [{**item(2), "id": "../../../etc"}, {**item(3), "id": "20270115T080003Z-0000abcd/../x"},
            {**item(4), "time": "soon"}, "not an item"]
    exporter = make_exporter({"/evidence": (200, json.dumps([good, *evil]).encode(), 0),
                              f"/evidence/{good['id']}/clip.wav": (200, b"<html>not a wav</html>", 0),
                              f"/evidence/{good['id']}/waveform.svg": (200, SVG, 0),
                              f"/evidence/{good['id']}/f0.svg": (500, b"boom", 0)})
    got = fetch_evidence(exporter.url, 0, 1)
    assert [i["id"] for i in got["items"]] == [good["id"]]
    assert set(got["items"][0]["inline"]) == {"waveform.svg"}
    missing = " ".join(got["items"][0]["missing"])
    assert "clip.wav: not a audio/wav file" in missing and "f0.svg: HTTPStatusError" in missing
    assert all(".." not in r and "passwd" not in r for r in exporter.requested), exporter.requested


def test_size_bounds_per_file_and_for_the_page(make_exporter):
    big = b"RIFF" + b"\x00" * 5000
    items = [item(n, cell={"lang": "zh", "speaker": f"s{n}"}) for n in range(3)]
    routes = {"/evidence": (200, json.dumps(items).encode(), 0)}
    for i in items:
        routes[f"/evidence/{i['id']}/clip.wav"] = (200, big, 0)
        routes[f"/evidence/{i['id']}/waveform.svg"] = (200, SVG, 0)
    exporter = make_exporter(routes)
    got = fetch_evidence(exporter.url, 0, 1, EvidenceClientConfig(max_file_bytes=4096, max_total_bytes=1 << 20))
    assert all("clip.wav" not in i["inline"] and "waveform.svg" in i["inline"] for i in got["items"])
    got = fetch_evidence(exporter.url, 0, 1, EvidenceClientConfig(max_file_bytes=1 << 20, max_total_bytes=11_000))
    kept = [("clip.wav" in i["inline"]) for i in got["items"]]
    assert kept == [True, True, False], "the page budget runs out on the third clip"
    assert "larger than the page's evidence budget" in got["items"][2]["missing"][0]


def test_many_items_keep_how_each_cell_started(make_exporter):
    items = [item(n, cell={"lang": "zh", "speaker": "Vivian"}) for n in range(10)]
    items += [item(20 + n, cell={"lang": "en", "speaker": "Ryan"}) for n in range(10)]
    exporter = make_exporter({"/evidence": (200, json.dumps(items).encode(), 0)})
    got = fetch_evidence(exporter.url, 0, 1, EvidenceClientConfig(max_items=3))
    ids = [i["id"] for i in got["items"]]
    assert items[0]["id"] in ids and items[10]["id"] in ids, "the first failure of each cell is kept"
    assert got["omitted"] == 17
