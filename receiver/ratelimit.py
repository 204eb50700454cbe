"""Per-client rate limit on POST /alerts: a token bucket per client address; past it, 429 with
Retry-After (Alertmanager retries a 429 with backoff, so nothing is lost at normal rates).

It sits behind the token check: a caller without the token cannot empty the bucket of the
Alertmanager that shares its address (on one host every local process is 127.0.0.1).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from tts_sentinel.receiver.config import RateLimitConfig

MAX_CLIENTS = 4096  # buckets kept; the least recently seen client's is dropped first (it refills anyway)


class ClientBuckets:
    """Token buckets by client address: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, when)

    def take(self, client: str) -> float:
        """Take one token for `client`: 0.0 when granted, else the seconds until one is there."""
        now = self.clock()
        tokens, then = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        granted = tokens >= 1.0
        if granted:
            tokens -= 1.0
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return 0.0 if granted else (1.0 - tokens) / self.rate


class AlertsRateLimit:
    """ASGI middleware: POST /alerts beyond the client's bucket answers 429 with Retry-After."""

    def __init__(self, app: ASGIApp, config: RateLimitConfig, answers: Counter) -> None:
        self.app = app
        self.buckets = ClientBuckets(config.requests_per_second, config.burst)
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/alerts" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.buckets.take(client)  # one event loop thread: no lock needed
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        self.answers.labels(code="429").inc()
        retry = max(1, math.ceil(wait))
        body = b'{"error":"too many posts from this address; retry after %d s (receiver.rate_limit)"}' % retry
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
