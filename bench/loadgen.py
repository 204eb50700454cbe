"""A small HTTP/1.1 load generator for the benchmarks: pre-encoded requests over keep-alive
connections, spread over several processes (one asyncio loop each, uvloop when installed).

Why not httpx: one Python process with httpx costs ~1-2 ms of CPU per request, so on a 2-CPU
machine the client, not the server under test, set the ceiling (~100 posts/s even against a
do-nothing handler). Here a request is one `write` of bytes built before the clock starts and an
answer is read by its Content-Length: tens of microseconds per request.

Two modes:
- closed loop (`rate=None`): `connections` connections each send the next request as soon as the
  previous answer is in; the result is the server's throughput ceiling at that concurrency.
- open loop (`rate=R`): request i is due at start + i/R, whether or not earlier ones were answered;
  its latency counts from the time it was due (a request waiting for a free connection is late, and
  that wait is in its latency: no coordinated omission).

Each answer comes back as (index, status, seconds, body); a connection the server closed is
reopened and the request resent (status 0 is recorded once for each such resend).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

Answer = tuple[int, int, float, bytes]


def encode(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """One HTTP/1.1 keep-alive request, ready to write."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding":
                raise ValueError("chunked answers are not supported by the load generator")
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _run(host: str, port: int, requests: Sequence[tuple[int, bytes]], connections: int,
               rate: float | None, start_at: float) -> list[Answer]:
    answers: list[Answer] = []
    position = 0
    # Every process starts at the same wall-clock instant (a shared `start_at`), so the processes'
    # open-loop schedules interleave instead of running one after the other.
    delay = start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    begin = time.perf_counter()

    async def worker() -> None:
        nonlocal position
        conn = _Conn(host, port)
        while position < len(requests):
            mine = position
            position += 1
            index, request = requests[mine]
            if rate is None:
                due = time.perf_counter()
            else:
                due = begin + mine / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            for attempt in range(3):
                try:
                    status, body = await conn.exchange(request)
                    break
                except (ConnectionError, asyncio.IncompleteReadError):
                    conn.close()  # a keep-alive connection the server closed; Alertmanager resends too
                    answers.append((index, 0, 0.0, b""))
                    if attempt == 2:
                        raise
            answers.append((index, status, time.perf_counter() - due, body))
        conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    answers.append((-1, 0, time.time(), b""))  # this process's end, wall clock
    return answers


def _process(host: str, port: int, requests: Sequence[tuple[int, bytes]], connections: int,
             rate: float | None, start_at: float) -> list[Answer]:
    try:
        import uvloop  # the server side uses it too (uvicorn[standard]); plain asyncio otherwise

        return uvloop.run(_run(host, port, requests, connections, rate, start_at))
    except ImportError:
        return asyncio.run(_run(host, port, requests, connections, rate, start_at))


def blast(host: str, port: int, groups: Sequence[Sequence[bytes]], *, connections: int = 64, processes: int = 2,
          rate: float | None = None) -> tuple[list[Answer], float]:
    """Send every request once; return the answers and the wall time of the whole run.

    The answers' indices count the requests of `groups` in order. A group stays in one process, its
    requests one after the other in the queue (an HA pair's two copies are then in flight at the same
    moment); groups are dealt to the processes in turn, connections and rate split evenly.
    """
    shares: list[list[tuple[int, bytes]]] = [[] for _ in range(processes)]
    index = 0
    for n, group in enumerate(groups):
        for request in group:
            shares[n % processes].append((index, request))
            index += 1
    per_conn = max(1, connections // processes)
    per_rate = rate / processes if rate else None
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        start_at = time.time() + 0.3  # past the workers' start-up
        futures = [pool.submit(_process, host, port, share, per_conn, per_rate, start_at) for share in shares]
        answers = [a for f in futures for a in f.result()]
    wall = max(a[2] for a in answers if a[0] == -1) - start_at
    return [a for a in answers if a[0] != -1], wall
