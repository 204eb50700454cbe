"""The HTTP side: POST /alerts (Alertmanager webhook v4), GET /actions, GET /incidents, GET /metrics,
GET /healthz."""

from __future__ import annotations

import hmac
import logging
import sqlite3
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tts_sentinel.receiver.payload import WebhookPayload, oversized_labels
from tts_sentinel.receiver.service import ReceiverService

log = logging.getLogger(__name__)


class BodyLimit:
    """ASGI middleware: 413 for bodies over the limit (declared or streamed); counts webhook answers."""

    def __init__(self, app: ASGIApp, service: ReceiverService) -> None:
        self.app = app
        self.service = service
        self.limit = service.config.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_webhook = scope.get("path") == "/alerts"
        counter = self.service.metrics.webhook_requests

        async def counting_send(message: Message) -> None:
            if is_webhook and message["type"] == "http.response.start":
                counter.labels(code=str(message["status"])).inc()
            await send(message)

        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _too_large(counting_send, self.limit)
                    return
        # Read the body here, up to the limit, then replay it: the app never sees an oversized body.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                await _too_large(counting_send, self.limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, counting_send)


async def _too_large(send: Send, limit: int) -> None:
    body = (
        b'{"error":"request body larger than %d bytes; split the alert group or raise receiver.max_body_bytes"}' % limit
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(service: ReceiverService) -> FastAPI:
    """The FastAPI application over a (started or not) ReceiverService."""
    app = FastAPI(title="TTS Sentinel receiver", version="1", docs_url=None, redoc_url=None)
    expected = service.token.encode() if service.token else None

    def require_token(request: Request) -> None:
        if expected is None:  # --insecure
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        # compare_digest on equal-type bytes: the time does not depend on where they differ.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(RequestValidationError)
    async def invalid_payload(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:20]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{loc}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            status_code=422,
            content={"error": "not an Alertmanager webhook payload (version 4)", "problems": problems},
        )

    @app.post(
        "/alerts",
        status_code=202,
        dependencies=[Depends(require_token)],
        responses={
            401: {"description": "missing or wrong bearer token"},
            413: {"description": "body too large"},
            422: {"description": "not a v4 payload"},
            503: {"description": "journal unavailable; retry"},
        },
    )
    def post_alerts(payload: WebhookPayload) -> JSONResponse:
        """Persist the jobs this payload asks for and answer 202; the workers run them."""
        problem = oversized_labels(payload, service.config.max_label_length, service.config.max_alerts)
        if problem:
            return JSONResponse(status_code=422, content={"error": problem})
        try:
            result = service.accept(payload)
        except sqlite3.Error as exc:
            # The job is not persisted: 503 makes Alertmanager retry instead of losing it.
            log.error("journal write failed: %s", exc)
            return JSONResponse(status_code=503, content={"error": f"journal unavailable ({exc}); retry later"})
        return JSONResponse(status_code=202, content=result.summary())

    @app.get("/actions", dependencies=[Depends(require_token)], responses={401: {"description": "token"}})
    def get_actions(
        limit: int = Query(100, ge=1, le=10_000),
        target: str | None = Query(None, max_length=64),
        status: str | None = Query(None, max_length=32),
    ) -> list[dict[str, Any]]:
        """The journal, newest first."""
        return [job.as_dict() for job in service.journal.jobs(limit=limit, target=target, status=status)]

    @app.get("/incidents", dependencies=[Depends(require_token)], responses={401: {"description": "token"}})
    def get_incidents(
        limit: int = Query(100, ge=1, le=10_000),
        target: str | None = Query(None, max_length=64),
        open_only: bool = Query(False, alias="open"),
    ) -> list[dict[str, Any]]:
        """Incidents, newest first: target, family and why, tiers in order, status, page."""
        rows = service.journal.incidents(limit=limit, target=target, open_only=open_only)
        return [incident.as_dict() for incident in rows]

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Alive: the journal answers and every target's worker runs."""
        problems = [f"worker {name} is dead" for name in service.workers.dead()]
        try:
            service.journal.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            problems.append(f"journal: {exc}")
        if problems:
            return JSONResponse(status_code=503, content={"status": "unhealthy", "problems": problems})
        return JSONResponse(content={"status": "ok"})

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text exposition of the receiver's metrics."""
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(BodyLimit, service=service)
    return app
