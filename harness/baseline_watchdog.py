"""What users run instead of TTS Sentinel, for the soak to compare with: a liveness check.

supervisord's `autorestart` brings back a process that exits. On top of it, a loop does what a
Kubernetes liveness probe does with its defaults: every 10 s, GET each program's health URL
with a 1 s timeout; after 3 failures in a row, restart that program. Nothing else: no logs,
no audio checks, no escalation, no page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class LivenessWatchdog:
    """Restarts a program after `failure_threshold` failed health checks `period_seconds` apart."""

    checks: dict[str, str]  # program -> health URL
    restart: Callable[[str], None]
    period_seconds: float = 10.0
    failure_threshold: int = 3
    timeout_seconds: float = 1.0
    restarts: list[tuple[float, str]] = field(default_factory=list)  # (time.time(), program)
    _failures: dict[str, int] = field(default_factory=dict)
    _client: httpx.Client = field(default_factory=httpx.Client)

    def healthy(self, url: str) -> bool:
        """One liveness check: an HTTP answer below 400 within the timeout."""
        try:
            return self._client.get(url, timeout=self.timeout_seconds).status_code < 400
        except httpx.HTTPError:
            return False

    def check(self) -> list[str]:
        """One round: check every program, restart those with `failure_threshold` failures in a row."""
        restarted = []
        for program, url in self.checks.items():
            failures = 0 if self.healthy(url) else self._failures.get(program, 0) + 1
            self._failures[program] = failures
            if failures >= self.failure_threshold:
                self._failures[program] = 0
                self.restarts.append((time.time(), program))
                restarted.append(program)
                try:
                    self.restart(program)
                except Exception:  # noqa: BLE001, S112 - a failed restart is retried after 3 more failures
                    continue
        return restarted

    def run(self, stop: threading.Event) -> None:
        """Check every period until `stop` is set."""
        while not stop.wait(self.period_seconds):
            self.check()

    def start(self) -> tuple[threading.Thread, threading.Event]:
        """Run in a daemon thread; set the returned event to stop it."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run, args=(stop,), name="liveness-watchdog", daemon=True)
        thread.start()
        return thread, stop
