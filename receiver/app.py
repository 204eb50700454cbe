"""The HTTP side: POST /alerts (Alertmanager webhook v4), GET /actions, GET /incidents, GET /unmatched,
GET /metrics, GET /healthz."""

from __future__ import annotations

import html
import json
import logging
import sqlite3
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tts_sentinel.receiver.auth import token_matches
from tts_sentinel.receiver.evidence_client import fetch_evidence
from tts_sentinel.receiver.incident_links import READ_METHODS
from tts_sentinel.receiver.incident_page import incident_window, render_incident_page
from tts_sentinel.receiver.payload import WebhookPayload
from tts_sentinel.receiver.ratelimit import AlertsRateLimit
from tts_sentinel.receiver.rejections import RejectionLog
from tts_sentinel.receiver.runbooks import render_index, render_runbook
from tts_sentinel.receiver.service import ReceiverService
from tts_sentinel.receiver.webhook import AlertsFastPath, admit_payload, replay_body
from tts_sentinel.shipped import shipped_dir
from tts_sentinel.userinfo import strip_userinfo

log = logging.getLogger(__name__)

# Open without the token: liveness, Prometheus' scrape and the runbooks (public documentation that
# every alert links to). Everything else, the schema included, needs it.
OPEN_PATHS = frozenset({"/healthz", "/metrics"})
OPEN_PREFIXES = ("/runbooks/",)
# SQLite's INTEGER range: a larger id is a 422, never an OverflowError in the journal.
IncidentId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# The signed link in the address bar must not travel on to Grafana or Prometheus, nor sit in a cache.
PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff"}


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path == "/runbooks" or path.startswith(OPEN_PREFIXES)


class BearerAuth:
    """ASGI middleware, outermost: the token is checked before the body is read or parsed.

    Deny by default: every path except OPEN_PATHS answers 401 without the token, including
    /openapi.json, unknown paths and routes added later. Without a token (--insecure) it passes all.
    """

    def __init__(self, app: ASGIApp, service: ReceiverService) -> None:
        self.app = app
        self.expected = service.token.encode() if service.token else None
        self.links = service.links
        self.webhook_requests = service.metrics.webhook_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.expected is None or _is_open(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
        if token_matches(header.decode("latin-1"), self.expected):
            await self.app(scope, receive, send)
            return
        # A browser has no bearer header: a signed link opens its one incident page, read-only.
        verdict = self.links.check(scope.get("path", ""), scope.get("query_string", b"").decode("latin-1"))
        if verdict == "ok" and scope.get("method") in READ_METHODS:
            await self.app(scope, receive, send)
            return
        if verdict != "absent":
            why = {"expired": "this incident link has expired", "ok": "an incident link only reads its page"}.get(
                verdict, "this incident link is not valid for this page")
            await _refuse(send, 403, f"{why}; get a fresh one from GET /incidents (page_url) or the latest "
                                     "drill or page", b"")
            return
        if scope.get("path") == "/alerts":
            self.webhook_requests.labels(code="401").inc()
        await _refuse(send, 401, "missing or wrong bearer token", b"Bearer")


async def _refuse(send: Send, status: int, detail: str, challenge: bytes) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if challenge:
        headers.append((b"www-authenticate", challenge))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: 413 for bodies over the limit (declared or streamed); counts webhook answers."""

    def __init__(self, app: ASGIApp, service: ReceiverService) -> None:
        self.app = app
        self.service = service
        self.limit = service.config.max_body_bytes
        self.answers: dict[int, Any] = {}  # HTTP status -> its child of tts_webhook_requests_total

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_webhook = scope.get("path") == "/alerts"
        answers = self.answers

        async def counting_send(message: Message) -> None:
            if is_webhook and message["type"] == "http.response.start":
                status = message["status"]
                counter = answers.get(status)
                if counter is None:  # a child per code, looked up once (labels() costs more than inc())
                    counter = answers[status] = self.service.metrics.webhook_requests.labels(code=str(status))
                counter.inc()
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
        await self.app(scope, replay_body(b"".join(chunks), receive), counting_send)


class JournalResponse(JSONResponse):
    """JSON from the journal, with no URL userinfo in it (a journal written before URLs with
    credentials were refused may still hold one)."""

    def render(self, content: Any) -> bytes:
        """The JSON text, userinfo stripped."""
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return strip_userinfo(text).encode("utf-8")


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
    # No OpenTelemetry here: FastAPI's native telemetry would ask for a tracer provider on every request.
    app = FastAPI(title="TTS Sentinel receiver", version="1", docs_url=None, redoc_url=None,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    expected = service.token.encode() if service.token else None

    def require_token(request: Request) -> None:
        # BearerAuth already refused a wrong token; this keeps each protected route safe on its own.
        if expected is None:  # --insecure
            return
        if not token_matches(request.headers.get("authorization", ""), expected):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    async def token_required(request: Request) -> None:
        # async: FastAPI runs a sync dependency in its thread pool, a thread hop per request for a
        # string comparison (half the per-post overhead in a webhook storm).
        require_token(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_payload(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:20]:
            if err.get("type") == "json_invalid":  # loc is then the character where parsing stopped
                where, why = err.get("loc", ("body", "?"))[-1], err.get("ctx", {}).get("error", "decode error")
                problems.append(f"body is not JSON ({why} at character {where})")
                continue
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            problems.append(f"{loc}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            status_code=422,
            content={"error": "not an Alertmanager webhook payload (version 4)" if request.url.path == "/alerts"
                     else "invalid request parameters", "problems": problems},
        )

    @app.post(
        "/alerts",
        status_code=202,
        dependencies=[Depends(token_required)],
        responses={
            401: {"description": "missing or wrong bearer token"},
            413: {"description": "body too large"},
            422: {"description": "not a v4 payload"},
            503: {"description": "journal unavailable; retry"},
        },
    )
    async def post_alerts(payload: WebhookPayload) -> JSONResponse:
        """Persist the jobs this payload asks for and answer 202; the workers run them.

        The intake thread admits it (with the other posts queued meanwhile, one fsync for all); a
        re-send already on disk is answered from memory. A valid JSON post is served by
        `AlertsFastPath` (receiver/webhook.py) before it reaches this route, with the same answers."""
        status, content = await admit_payload(service, payload)
        return JSONResponse(status_code=status, content=content)

    @app.get(
        "/actions",
        dependencies=[Depends(token_required)],
        response_class=JournalResponse,
        responses={401: {"description": "token"}},
    )
    def get_actions(
        limit: int = Query(100, ge=1, le=10_000),
        target: str | None = Query(None, max_length=64),
        status: str | None = Query(None, max_length=32),
    ) -> JournalResponse:
        """The journal, newest first; each job with its first alerts and `alerts_total`."""
        jobs = service.journal.jobs(limit=limit, target=target, status=status)
        return JournalResponse([job.as_dict() for job in jobs])

    @app.get(
        "/incidents",
        dependencies=[Depends(token_required)],
        response_class=JournalResponse,
        responses={401: {"description": "token"}},
    )
    def get_incidents(
        limit: int = Query(100, ge=1, le=10_000),
        target: str | None = Query(None, max_length=64),
        open_only: bool = Query(False, alias="open"),
    ) -> JournalResponse:
        """Incidents, newest first: target, family and why, tiers in order, status, page."""
        rows = service.journal.incidents(limit=limit, target=target, open_only=open_only)
        return JournalResponse([{**incident.as_dict(), "page_url": service.links.url(incident.id)}
                                for incident in rows])

    @app.get(
        "/unmatched",
        dependencies=[Depends(token_required)],
        response_class=JournalResponse,
        responses={401: {"description": "token"}},
    )
    def get_unmatched(limit: int = Query(100, ge=1, le=10_000)) -> JournalResponse:
        """Alerts no target matched, one row per alertname and hour, newest first, with a count."""
        return JournalResponse(service.unmatched.rows(limit=limit))

    def require_token_or_link(request: Request, incident_id: IncidentId) -> None:
        # The middleware let a signed link through; check it here too, against this very page.
        if service.links.check(request.url.path, request.url.query) == "ok" and request.method in READ_METHODS:
            return
        require_token(request)

    @app.get("/incidents/{incident_id}", dependencies=[Depends(require_token_or_link)], response_class=HTMLResponse,
             responses={401: {"description": "token"}, 403: {"description": "invalid or expired link"},
                        404: {"description": "no such incident"}})
    def incident_page(incident_id: IncidentId) -> HTMLResponse:
        """One incident as a self-contained page: timeline, root cause, preventive action, audio evidence.

        Opens with the bearer token or a signed link (`page_url` in GET /incidents)."""
        incident = service.journal.incident(incident_id)
        if incident is None:
            return HTMLResponse(f"no incident {incident_id}; see GET /incidents", status_code=404,
                                headers=PAGE_HEADERS)
        jobs = [j.as_dict() for j in service.journal.jobs(limit=500, target=incident.target)
                if j.incident_id == incident_id]
        data = incident.as_dict()
        since, until = incident_window(data, jobs)
        evidence = fetch_evidence(service.config.exporter_url, since, until, service.config.evidence)
        page = render_incident_page(data, jobs, (), evidence, runbooks_md, service.config.incident_page)
        return HTMLResponse(strip_userinfo(page), headers=PAGE_HEADERS)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Alive: the journal answers and every target's worker runs."""
        problems = service.dead()
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

    try:
        runbooks_md = (shipped_dir("rules") / "runbooks.md").read_text(encoding="utf-8")
    except OSError as exc:
        log.warning("runbooks are not served: %s", exc)
        runbooks_md = None

    @app.get("/runbooks", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/runbooks/", response_class=HTMLResponse, include_in_schema=False)
    def runbook_index() -> HTMLResponse:
        """Every runbook, each linking to its page."""
        if runbooks_md is None:
            return HTMLResponse("runbooks.md is not part of this installation", status_code=404)
        return HTMLResponse(render_index(runbooks_md))

    @app.get("/runbooks/{alert}", response_class=HTMLResponse, include_in_schema=False)
    def runbook(alert: str) -> HTMLResponse:
        """The runbook section of one alert, as a page with no external assets."""
        page = render_runbook(runbooks_md, alert) if runbooks_md is not None else None
        if page is None:
            return HTMLResponse(f"no runbook for {html.escape(alert)}; see /runbooks/", status_code=404)
        return HTMLResponse(page)

    # Added last runs first: the token, then the client's rate, then the body's size, then a valid
    # JSON post is answered without FastAPI's routing (the fast path).
    app.add_middleware(AlertsFastPath, service=service)
    app.add_middleware(BodyLimit, service=service)
    app.add_middleware(AlertsRateLimit, config=service.config.rate_limit, answers=service.metrics.webhook_requests)
    app.add_middleware(BearerAuth, service=service)  # before the body is read
    app.add_middleware(RejectionLog)  # outermost: sees every refusal, the token's included
    return app
