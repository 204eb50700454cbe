"""Stand-ins for what cannot run here (systemd, the Docker engine, a Kubernetes API), named Fake…"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def fake_systemctl(tmp_path: Path, units: dict[str, str]) -> Path:
    """A `systemctl` that knows `units` (name -> ActiveState) and answers `show` like systemd does."""
    lines = "\n".join(f'  {name}) echo "LoadState=loaded"; echo "ActiveState={state}";;'
                      for name, state in units.items())
    script = tmp_path / "systemctl"
    script.write_text(f'#!/bin/sh\n[ "$1" = show ] || exit 1\ncase "$2" in\n{lines}\n'
                      '  *) echo "LoadState=not-found"; echo "ActiveState=inactive";;\nesac\n')
    script.chmod(0o755)
    return script


def _handler(route: Callable[[str], tuple[int, object]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.seen = self.headers.get("Authorization")
            status, body = route(self.path + " " + (self.headers.get("Authorization") or ""))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    return Handler


class FakeHttpApi:
    """A JSON API on loopback: `route("PATH AUTHORIZATION") -> (status, body)`."""

    def __init__(self, route: Callable[[str], tuple[int, object]]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(route))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _UnixHttpServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class FakeDockerEngine:
    """The Docker engine's `GET /vX/containers/NAME/json` on a unix socket, for `containers` (name -> status)."""

    def __init__(self, socket_path: Path, containers: dict[str, str]) -> None:
        def route(request: str) -> tuple[int, object]:
            name = request.split("/containers/")[1].split("/")[0]
            if name in containers:
                return 200, {"Name": f"/{name}", "State": {"Status": containers[name]}}
            return 404, {"message": f"No such container: {name}"}

        handler = _handler(route)
        handler.address_string = lambda self: "docker"  # unix sockets have no client address
        self.server = _UnixHttpServer(str(socket_path), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
