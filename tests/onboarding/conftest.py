"""Fixtures for init and doctor: the stand-in TTS service in-process, and a Gradio-like page."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support import free_port

from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.runtime import InProcessSimulator


@pytest.fixture
def run_simulator(tmp_path) -> Iterator:
    """run_simulator(protocol=...) -> a started InProcessSimulator writing logs under tmp_path/logs."""
    started: list[InProcessSimulator] = []

    def start(**overrides) -> InProcessSimulator:
        config = SimulatorConfig(web_port=free_port(), api_port=free_port(), log_dir=tmp_path / "logs",
                                 self_check_interval_seconds=0.5, **overrides)
        sim = InProcessSimulator(config).__enter__()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.__exit__(None, None, None)


class FakeGradioApp(BaseHTTPRequestHandler):
    """What qwen-tts-demo answers (Gradio is not installed here): a page at /, 404 elsewhere."""

    def do_GET(self) -> None:  # noqa: N802
        found = self.path == "/"
        body = b'<!doctype html><html><head><script>window.gradio_config = {"version": "5.9.1"}</script>' \
               if found else b'{"detail":"Not Found"}'
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def gradio_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), FakeGradioApp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
