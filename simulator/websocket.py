"""WebSocket on the simulator's own HTTP server, with the `websockets` library's Sans-I/O protocol.

vLLM-Omni serves its WebSocket speech endpoint on the same port as the HTTP API, so the
simulator upgrades a request of its stdlib server in place: `websockets` validates the
handshake and frames the messages (pings, fragments, the closing handshake); this module
only moves bytes between that protocol object and the handler's socket.
"""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

READ_BYTES = 65536


class WebSocketClosed(Exception):
    """The client closed the connection (or it broke)."""


class WebSocketConnection:
    """One accepted WebSocket: receive messages, send text, JSON and binary frames."""

    def __init__(self, handler: BaseHTTPRequestHandler, protocol: ServerProtocol) -> None:
        self._handler = handler
        self._protocol = protocol
        self._pending: list[str | bytes] = []
        self._fragments: list[bytes] = []
        self._text = False

    def _flush(self) -> None:
        for data in self._protocol.data_to_send():
            if data:
                self._handler.wfile.write(data)
        self._handler.wfile.flush()

    def recv(self, idle_seconds: float = 60.0) -> str | bytes:
        """The next whole message; WebSocketClosed when the client closes or goes quiet for too long."""
        self._handler.connection.settimeout(idle_seconds)
        while not self._pending:
            if self._protocol.state is not State.OPEN:
                raise WebSocketClosed
            try:
                data = self._handler.rfile.read1(READ_BYTES)  # type: ignore[attr-defined]
            except (TimeoutError, OSError):
                raise WebSocketClosed from None
            if data:
                self._protocol.receive_data(data)
            else:
                self._protocol.receive_eof()
            for event in self._protocol.events_received():
                if isinstance(event, Frame):
                    self._collect(event)
            self._flush()  # pongs and the closing handshake
            if not data and not self._pending:
                raise WebSocketClosed
        return self._pending.pop(0)

    def _collect(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._fragments, self._text = [frame.data], frame.opcode is Opcode.TEXT
        elif frame.opcode is Opcode.CONT:
            self._fragments.append(frame.data)
        else:
            return
        if frame.fin:
            payload = b"".join(self._fragments)
            self._pending.append(payload.decode() if self._text else payload)
            self._fragments = []

    def recv_json(self, idle_seconds: float = 60.0) -> dict[str, Any]:
        """The next text message as a JSON object ({} when it is not one)."""
        message = self.recv(idle_seconds)
        try:
            value = json.loads(message) if isinstance(message, str) else None
        except json.JSONDecodeError:
            value = None
        return value if isinstance(value, dict) else {}

    def send_json(self, payload: dict[str, Any]) -> None:
        """One text frame holding `payload` as JSON."""
        self._send(lambda: self._protocol.send_text(json.dumps(payload).encode()))

    def send_binary(self, data: bytes) -> None:
        """One binary frame."""
        self._send(lambda: self._protocol.send_binary(data))

    def _send(self, queue: Any) -> None:
        if self._protocol.state is not State.OPEN:
            raise WebSocketClosed
        queue()
        try:
            self._flush()
        except OSError:
            raise WebSocketClosed from None

    def close(self) -> None:
        """Start (or finish) the closing handshake and stop using the socket."""
        try:
            if self._protocol.state is State.OPEN:
                self._protocol.send_close(1000)
            self._flush()
            self._handler.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def accept(handler: BaseHTTPRequestHandler) -> WebSocketConnection | None:
    """Answer the upgrade request of `handler`: the open connection, or None after a 4xx answer."""
    protocol = ServerProtocol()
    # The stdlib server has parsed the request already; hand the same bytes to the protocol.
    head = handler.requestline + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in handler.headers.items()) + "\r\n"
    protocol.receive_data(head.encode("latin-1"))
    request = next((e for e in protocol.events_received() if isinstance(e, Request)), None)
    if request is None:
        handler.send_error(400, "not a WebSocket handshake")
        return None
    response = protocol.accept(request)
    protocol.send_response(response)
    for data in protocol.data_to_send():
        handler.wfile.write(data)
    handler.wfile.flush()
    handler.log_request(response.status_code)
    handler.close_connection = True
    return WebSocketConnection(handler, protocol) if response.status_code == 101 else None


def is_upgrade(handler: BaseHTTPRequestHandler) -> bool:
    """True when the request asks to switch to the WebSocket protocol."""
    return "websocket" in handler.headers.get("Upgrade", "").lower()
