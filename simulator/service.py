"""What both simulator components share: a small HTTP server and the fault admin API.

Stdlib ThreadingHTTPServer, not uvicorn: it starts in ~50 ms (supervisord restarts
the components in tests and drills), a hung request blocks only its own thread, so
/admin keeps answering during `hang`, and it needs no event loop to exit hard on
`crash`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.faults import INFERENCE, NONE, WEB, FaultError, FaultState, check_fault
from tts_sentinel.simulator.logfiles import flush
from tts_sentinel.simulator.websocket import WebSocketConnection, accept

MAX_BODY_BYTES = 1 << 20


class Reply(Exception):
    """Raised by a route to answer with a status and a JSON body."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


@dataclass
class Stream:
    """A route's answer sent as it is produced (chunked transfer encoding)."""

    content_type: str
    chunks: Iterator[bytes]


@dataclass
class WebSocketUpgrade:
    """A route's answer that switches the connection to WebSocket and runs `session` on it."""

    session: Callable[[WebSocketConnection], None]


Answer = tuple[int, str, bytes] | Stream | WebSocketUpgrade


class Component:
    """One simulated process (web front or inference) with its fault state and log."""

    name = ""

    def __init__(self, config: SimulatorConfig, log: logging.Logger) -> None:
        self.config = config
        self.log = log
        self.fault = FaultState()

    @property
    def port(self) -> int:
        """The port this component listens on."""
        return self.config.web_port if self.name == WEB else self.config.api_port

    def other_port(self) -> int:
        """The port of the other component (admin requests for it are forwarded there)."""
        return self.config.api_port if self.name == WEB else self.config.web_port

    def on_fault(self, name: str) -> None:
        """Log what the fault does when it starts; subclasses add their own lines."""
        if name in ("crash", "segfault"):
            self.exit_on_fault(name)

    def exit_on_fault(self, name: str) -> None:
        """Leave the process the way a crash does, once the admin answer is on its way."""
        if name == "segfault":
            self.log.critical("Segmentation fault (core dumped)")
            status = 139
        else:
            self.log.critical("Fatal error: %s process exited unexpectedly (injected crash)", self.name)
            status = 1
        flush(self.log)
        threading.Timer(0.2, os._exit, args=(status,)).start()

    def set_fault(self, name: str) -> dict[str, Any]:
        """Apply a fault to this component; the answer of the admin API."""
        check_fault(name, self.name)
        previous = self.fault.set(name)
        if name == NONE:
            self.log.info("Fault cleared (was %s)", previous)
        else:
            self.log.info("Fault injected: %s", name)
            self.on_fault(name)
        return {"component": self.name, "fault": name, "previous": previous}

    def route(self, handler: ServiceHandler, method: str, path: str) -> Answer:
        """Answer a non-admin request: (status, content type, body), a Stream or a WebSocketUpgrade.

        Raise Reply for JSON answers.
        """
        raise Reply(404, {"error": f"no route {method} {path}"})


class ServiceHandler(BaseHTTPRequestHandler):
    """Dispatches /admin/fault itself and everything else to the component."""

    component: Component
    protocol_version = "HTTP/1.1"
    server_version = "qwen3-tts-simulator"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Access lines go to the component's log (the seed's webui.log records HTTP requests)."""
        self.component.log.info("%s - %s", self.address_string(), format % args)

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or Reply(400) saying what is wrong."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise Reply(400, {"error": "Content-Length is not a number"}) from None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read, so the connection cannot be reused
            raise Reply(413, {"error": f"body must be 0 to {MAX_BODY_BYTES} bytes"})
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Reply(400, {"error": f"body is not JSON: {exc}"}) from None
        if not isinstance(data, dict):
            raise Reply(400, {"error": "body must be a JSON object"})
        return data

    def send(self, status: int, content_type: str, body: bytes) -> None:
        """Write a complete response."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_stream(self, stream: Stream) -> None:
        """Write a 200 whose body is sent chunk by chunk as the route produces it."""
        self.send_response(200)
        self.send_header("Content-Type", stream.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()  # the client sees the headers before the first chunk, as from a real server
        try:
            for chunk in stream.chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(stream.chunks, "close", None)
            if close is not None:
                close()  # runs the generator's cleanup when the client left mid-stream

    def send_json(self, status: int, payload: Any) -> None:
        """Write a JSON response."""
        # Compact separators: the seed's L1 script greps for '"status":"ok"' literally.
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        self.send(status, "application/json", body)

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        try:
            try:
                if path == "/admin/fault":
                    self.send_json(200, self._admin(method))
                    return
                answer = self.component.route(self, method, path)
                if isinstance(answer, Stream):
                    self.send_stream(answer)
                elif isinstance(answer, WebSocketUpgrade):
                    connection = accept(self)
                    if connection is not None:
                        answer.session(connection)
                else:
                    self.send(*answer)
            except Reply as reply:
                self.send_json(reply.status, reply.payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a probe timeout); nothing to answer

    def _admin(self, method: str) -> dict[str, Any]:
        component = self.component
        if method == "GET":
            return {"component": component.name, "fault": component.fault.name}
        if method == "DELETE":
            return component.set_fault(NONE)
        if method != "POST":
            raise Reply(405, {"error": "use GET, POST or DELETE on /admin/fault"})
        data = self.json_body()
        name = data.get("fault", NONE)
        target = data.get("component", component.name)
        if not isinstance(name, str) or target not in (WEB, INFERENCE):
            raise Reply(400, {"error": 'expected {"fault": NAME, "component": "web"|"inference"}'})
        if target != component.name:
            return forward_fault(component.other_port(), component.config.host, name, target)
        try:
            return component.set_fault(name)
        except FaultError as exc:
            raise Reply(400, {"error": str(exc)}) from None

    def do_GET(self) -> None:  # noqa: N802 - stdlib names
        """GET."""
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        """HEAD."""
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        """POST."""
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        """DELETE."""
        self._dispatch("DELETE")


def forward_fault(port: int, host: str, name: str, component: str) -> dict[str, Any]:
    """Send a fault request to the other component (admin works on either port)."""
    body = json.dumps({"fault": name, "component": component}).encode()
    request = urllib.request.Request(
        f"http://{host}:{port}/admin/fault", data=body, method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 - our own loopback URL
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise Reply(exc.code, json.loads(exc.read() or b"{}")) from None
    except (OSError, ValueError) as exc:
        raise Reply(502, {"error": f"{component} on port {port} did not take the fault: {exc}"}) from None


def make_server(component: Component) -> ThreadingHTTPServer:
    """A threading HTTP server bound to the component's port; hung threads never block exit."""
    handler = type("BoundHandler", (ServiceHandler,), {"component": component})
    server = ThreadingHTTPServer((component.config.host, component.port), handler)
    server.daemon_threads = True
    return server
