"""One log line for every request the receiver refuses: the answer, its reason and who asked.

A post Alertmanager cannot deliver (wrong token, too big, not a webhook, rate-limited, wrong path
or method) is an alert that heals nothing; the answer reaches only the sender's own log. This ASGI
middleware sits outermost, sees every answer of 400 and above and logs it with the client address
and the reason from the answer's body. The token is never logged, only whether one came.

A client that keeps getting refused would write a line per request: past `burst` lines in
`window` seconds for one (client, answer), the rest are counted and reported in one line.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tts_sentinel.logsetup import fields

log = logging.getLogger("tts_sentinel.receiver.rejections")
MAX_BODY_KEPT = 4096  # rejection bodies are short JSON; a longer one is cut, not buffered
MAX_KEYS = 4096


def _reason(status: int, body: bytes, scope: Scope) -> str:
    """Why the answer refused: the body's `error`/`detail` and `problems`, else the status phrase."""
    if status == 401:
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), None)
        if header is None:
            return "no bearer token (no Authorization header)"
        if not header.lower().startswith(b"bearer "):
            return "no bearer token (the Authorization header is not `Bearer TOKEN`)"
        return "wrong bearer token"
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        reason = data.get("error") or data.get("detail")
        if isinstance(reason, list):  # FastAPI's own validation answer
            reason = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in reason)
        problems = data.get("problems")
        if isinstance(problems, list) and problems:
            listed = "; ".join(str(p) for p in problems[:5])
            reason = f"{reason}: {listed}" if reason else f"{data.get('status') or 'problems'}: {listed}"
        if reason:
            return str(reason)
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"answered {status}"


class RejectionThrottle:
    """Lines allowed per (client, status): `burst` in each `window` seconds; the rest are counted."""

    def __init__(self, burst: int = 20, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.window = window
        self.clock = clock
        self._keys: OrderedDict[tuple[str, int], list[float]] = OrderedDict()  # key -> [start, logged, held]

    def admit(self, key: tuple[str, int]) -> tuple[bool, int, float]:
        """(log this one?, how many were held back in the window just closed, that window's length)."""
        now = self.clock()
        state = self._keys.pop(key, None)
        held, length = 0, 0.0
        if state is None or now - state[0] >= self.window:
            if state is not None:
                held, length = int(state[2]), now - state[0]
            state = [now, 0.0, 0.0]
        self._keys[key] = state
        if len(self._keys) > MAX_KEYS:
            self._keys.popitem(last=False)
        if state[1] < self.burst:
            state[1] += 1
            return True, held, length
        state[2] += 1
        return False, held, length


class RejectionLog:
    """ASGI middleware, outermost: logs every answer >= 400 with method, path, client and reason."""

    def __init__(self, app: ASGIApp, throttle: RejectionThrottle | None = None) -> None:
        self.app = app
        self.throttle = throttle or RejectionThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        kept: list[bytes] = []

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400:
                if sum(map(len, kept)) < MAX_BODY_KEPT:
                    kept.append(message.get("body", b"")[:MAX_BODY_KEPT])
                if not message.get("more_body", False):
                    self._log(scope, status, b"".join(kept))
            await send(message)

        await self.app(scope, receive, watching_send)

    def _log(self, scope: Scope, status: int, body: bytes) -> None:
        host, port = scope.get("client") or ("unknown", 0)
        method, path = scope.get("method", "?"), scope.get("path", "?")
        admitted, held, length = self.throttle.admit((host, status))
        if held:
            log.warning("%d more requests from %s were answered %d in %.0f s (not logged one by one)",
                        held, host, status, length, extra=fields(client=host, status=status, suppressed=held))
        if not admitted:
            return
        # A browser's missing favicon is not a refusal worth a warning; everything else is.
        level = logging.INFO if status == 404 and method in ("GET", "HEAD") else logging.WARNING
        log.log(level, "rejected %s %s (%d): %s", method, path, status, _reason(status, body, scope),
                extra=fields(client=f"{host}:{port}", status=status))
