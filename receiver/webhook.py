"""POST /alerts: a payload -> its answer (202 with what it became, 422, 503), and the ASGI fast path
that serves the usual post without FastAPI's routing.

A webhook storm is hundreds of posts a second of a small JSON body. Through FastAPI each paid its
router, dependency solving, exception layers and response classes (~0.3 ms of CPU in the one
event-loop thread, as much as the validation and the answer together). `AlertsFastPath` sits
innermost, behind the token, rate-limit and body-size middlewares, and answers a POST /alerts
whose body is `application/json` and a valid v4 payload itself. Anything else (another content
type, not JSON, not a payload) goes on to the FastAPI route, whose answers (the 422 wording) stay
the reference; both answer valid payloads with `admit_payload`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tts_sentinel.receiver.auth import token_matches
from tts_sentinel.receiver.payload import WebhookPayload, oversized_labels
from tts_sentinel.receiver.service import ReceiverService

log = logging.getLogger("tts_sentinel.receiver.app")


async def admit_payload(service: ReceiverService, payload: WebhookPayload,
                        body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """(status, JSON answer) of a valid payload: 202 once its jobs are on disk, 422 over the label
    limits, 503 when the journal cannot be written (Alertmanager retries instead of losing it).
    `body`: the JSON it was read from, if any (handed on to an intake process as is)."""
    problem = oversized_labels(payload, service.config.max_label_length, service.config.max_alerts)
    if problem:
        return 422, {"error": problem}
    # A re-send whose every alert is already on disk is answered from memory; the rest go to the
    # intake thread (one fsync for the posts that arrived together).
    keys = service.admission.firing_keys(payload)
    result = service.admission.from_memory(payload, keys)
    if result is None:
        try:
            result = await service.intake.admit(payload, keys, body)
        except sqlite3.Error as exc:
            log.error("journal write failed: %s", exc)
            return 503, {"error": f"journal unavailable ({exc}); retry later"}
    return 202, result.summary()


class AlertsFastPath:
    """ASGI middleware, innermost: a valid JSON POST /alerts answered without FastAPI."""

    def __init__(self, app: ASGIApp, service: ReceiverService) -> None:
        self.app = app
        self.service = service
        self.expected = service.token.encode() if service.token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/alerts" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        payload = self._payload(scope, body)
        if payload is None:
            await self.app(scope, replay_body(body, receive), send)
            return
        status, content = await admit_payload(self.service, payload, body)
        answer = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        headers = [(b"content-length", str(len(answer)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    def _payload(self, scope: Scope, body: bytes) -> WebhookPayload | None:
        """The validated payload, or None when FastAPI's route must answer (and word the refusal)."""
        content_type, authorization = b"", b""
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                content_type = value
            elif name == b"authorization":
                authorization = value
        # The token was checked outermost; checked again so this path is safe on its own too.
        if self.expected is not None and not token_matches(authorization.decode("latin-1"), self.expected):
            return None
        if content_type.partition(b";")[0].strip().lower() != b"application/json" or not body:
            return None
        try:
            # pydantic's own JSON parser: half the CPU of json.loads + validation. What it refuses
            # (not UTF-8, a lone surrogate, not a payload) FastAPI's route parses again and words.
            return WebhookPayload.model_validate_json(body)
        except (ValueError, RecursionError):  # ValidationError is a ValueError
            return None


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands an already read body to the next app once, then reads on."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
