"""Attack 11: 30 concurrent `/probe?module=synthesis` must not become 30 GPU jobs on the service.

A real exporter process probes a stand-in speech server that takes a second per request and
counts how many run at once. Overlapping /probe requests share one run (or get 429).
"""

from __future__ import annotations

import threading

import httpx
from support import free_port

from tests.security.conftest import SlowSpeechServer, start_exporter, stop_process


def test_thirty_concurrent_probes_put_at_most_two_requests_in_flight(tmp_path):
    speech = SlowSpeechServer(seconds=1.0)
    probes = {
        "health": {"url": f"http://127.0.0.1:{free_port()}/health", "interval_seconds": 3600},
        "synthesis": {"enabled": True, "interval_seconds": 3600, "request": {"url": speech.url}},
    }
    proc, url = start_exporter(tmp_path, {"state_dir": str(tmp_path / "state"), "probes": probes})
    try:
        start = threading.Barrier(30)
        codes: list[int] = []
        bodies: list[str] = []

        def probe() -> None:
            start.wait()
            r = httpx.get(url + "/probe", params={"module": "synthesis"}, timeout=30)
            codes.append(r.status_code)
            bodies.append(r.text)

        threads = [threading.Thread(target=probe) for _ in range(30)]
        for t in threads:
            t.start()
        during = httpx.get(url + "/metrics", timeout=10)
        for t in threads:
            t.join(60)
        assert during.status_code == 200, "the flood does not starve /metrics"
        assert len(codes) == 30 and set(codes) <= {200, 429, 503}, codes
        assert codes.count(200) >= 1 and 429 in codes, "overlapping requests share a run or are told to retry"
        assert all('tts_probe_success{probe="synthesis"} 0.0' in b for b, c in zip(bodies, codes) if c == 200)
        assert speech.max_in_flight <= 2, f"{speech.max_in_flight} synthesis requests ran at once"
        assert speech.total <= 4, f"{speech.total} synthesis requests for 30 probes and one scheduled run"
    finally:
        stop_process(proc)
        speech.close()


def test_the_http_server_caps_its_handler_threads():
    from http.server import BaseHTTPRequestHandler

    from tts_sentinel.exporter.server import BoundedHTTPServer

    release = threading.Event()
    entered = threading.Semaphore(0)

    class Held(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            entered.release()
            release.wait(20)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = BoundedHTTPServer(("127.0.0.1", 0), Held, max_threads=2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        held = [threading.Thread(target=httpx.get, args=(url,), kwargs={"timeout": 30}) for _ in range(2)]
        for t in held:
            t.start()
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10), "both slots taken"
        busy = httpx.get(url, timeout=5)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "busy" in busy.text
        release.set()
        for t in held:
            t.join(30)
        assert httpx.get(url, timeout=5).status_code == 200, "slots come back"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
