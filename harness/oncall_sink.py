"""A loopback stand-in for an on-call pager: stores every Alertmanager page it gets.

The demo and the tests point Alertmanager's `oncall` receiver here, so what a person
would have been paged with can be read back (JSON lines file and `pages`).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class OncallSink:
    """An HTTP server that accepts Alertmanager webhook posts on any path."""

    def __init__(self, host: str, port: int, journal: Path) -> None:
        self.pages: list[dict[str, Any]] = []
        self._journal = journal
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                try:
                    payload = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self.send_response(400)
                    self.end_headers()
                    return
                sink.record(payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True

    def record(self, payload: dict[str, Any]) -> None:
        """Keep one page in memory and append it to the journal file."""
        with self._lock:
            self.pages.append(payload)
            with self._journal.open("a", encoding="utf-8") as f:
                f.write(json.dumps(payload, ensure_ascii=False) + "\n")

    def alertnames(self) -> list[str]:
        """Names of every alert paged so far (firing or resolved), in order."""
        with self._lock:
            return [a.get("labels", {}).get("alertname", "") for p in self.pages for a in p.get("alerts", [])]

    def start(self) -> None:
        """Serve in a daemon thread."""
        threading.Thread(target=self._server.serve_forever, name="oncall-sink", daemon=True).start()

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
