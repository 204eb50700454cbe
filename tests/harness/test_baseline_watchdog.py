"""The baseline users run instead: restart a program after 3 failed liveness checks in a row."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tts_sentinel.harness.baseline_watchdog import LivenessWatchdog


class Program:
    """A real HTTP server whose /health answers `status`, or answers too late while `hung`."""

    def __init__(self) -> None:
        self.status, self.hung = 200, False
        program = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if program.hung:
                    time.sleep(0.5)
                self.send_response(program.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def programs():
    made = {"web": Program(), "inference": Program()}
    yield made
    for p in made.values():
        p.close()


@pytest.fixture
def restarted():
    return []


@pytest.fixture
def dog(programs, restarted):
    return LivenessWatchdog({name: p.url for name, p in programs.items()}, restarted.append, timeout_seconds=0.2)


def test_a_failing_program_is_restarted_on_the_third_failure_in_a_row_and_a_healthy_one_never(dog, programs,
                                                                                             restarted):
    programs["web"].status = 500
    assert dog.check() == [] and dog.check() == []
    assert dog.check() == ["web"]
    assert restarted == ["web"] and [p for _, p in dog.restarts] == ["web"]
    assert dog.check() == [], "the count starts again after a restart"


def test_a_hung_program_counts_as_failing(dog, programs, restarted):
    programs["inference"].hung = True
    for _ in range(3):
        dog.check()
    assert restarted == ["inference"]


def test_a_success_in_between_resets_the_count(dog, programs, restarted):
    programs["web"].status = 503
    dog.check()
    dog.check()
    programs["web"].status = 200
    dog.check()
    programs["web"].status = 503
    dog.check()
    dog.check()
    assert restarted == []


def test_the_loop_runs_in_a_thread_until_stopped(dog, programs, restarted):
    dog.period_seconds = 0.02
    programs["web"].status = 500
    thread, stop = dog.start()
    deadline = time.monotonic() + 10
    while not restarted and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(5)
    assert restarted[:1] == ["web"] and not thread.is_alive()
