"""Real receiver and exporter processes on loopback, and stand-ins that record what reaches them.

Every attack in this folder is played against `tts-sentinel receiver` or `tts-sentinel exporter`
started as its own process, as an operator would run it; the stand-ins (a page catcher in place
of Alertmanager, a slow speech server in place of the TTS service) only record what they receive.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import free_port

from tests.receiver.conftest import alert, payload, wait_for
from tts_sentinel.harness.procstat import cpu_seconds, resident_bytes

TOKEN = "security-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLI = [sys.executable, "-m", "tts_sentinel.cli"]

__all__ = ["AUTH", "CLI", "TOKEN", "alert", "payload", "wait_for"]


def command_target(name: str, log: Path, fail: bool = False, **overrides: Any) -> dict[str, Any]:
    """A target on the command actuator whose programs append `<unit> <operation> job=<label>` to `log`."""
    script = f'echo "$0 $TTS_SENTINEL_OPERATION job=${{TTS_LABEL_JOB-unset}}" >> {log}'
    if fail:
        script += '; echo "label was: $TTS_LABEL_JOB"; exit 3'
    argv = ["sh", "-c", script]
    target: dict[str, Any] = {
        "name": name,
        "match": {"service": name},
        "actuator": "command",
        "command": {"restart": argv, "stop": argv, "start": argv, "signal": argv, "label_env": ["job"]},
        "cache_dir": None,
        "weights_dir": None,
        "service_config": None,
        "git_dir": None,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = {**target[key], **value}
        else:
            target[key] = value
    return target


def receiver_section(tmp_path: Path, targets: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A `receiver:` section: given targets, no business hours, no cooldowns, no verification."""
    section: dict[str, Any] = {
        "listen_port": free_port(),
        "journal_path": str(tmp_path / "journal.sqlite3"),
        "targets": targets,
        "exporter_url": "http://127.0.0.1:9",
        "alertmanager_url": None,
        "business_hours": {"weekdays": []},
        "guards": {"cooldown_seconds": {}, "budget_actions": 100},
        "tiers": {
            "light": [{"action": "restart", "component": "web"}],
            "medium": [],
            "heavy": [
                {"action": "stop", "component": "web"},
                {"action": "stop", "component": "inference"},
                {"action": "clear_cache"},
                {"action": "start", "component": "inference"},
                {"action": "start", "component": "web"},
            ],
        },
    }
    section.update(overrides)
    return section


class ReceiverProcess:
    """`tts-sentinel receiver` in its own process; everything it prints lands in `log_path`."""

    def __init__(
        self, tmp_path: Path, section: dict[str, Any], *args: str, token: bool = True, umask: int | None = None,
        config_extra: dict[str, Any] | None = None,
    ) -> None:
        self.section = section
        self.url = f"http://127.0.0.1:{section['listen_port']}"
        self.journal_path = Path(section["journal_path"])
        self.log_path = tmp_path / "receiver.out"
        config = tmp_path / "sentinel.yml"
        self.config_path = config
        config.write_text(yaml.safe_dump({"receiver": section, **(config_extra or {})}))
        argv = [*CLI, "receiver", "--config", str(config), *args]
        if token:
            token_file = self.token_file = tmp_path / "receiver.token"
            token_file.write_text(TOKEN + "\n")
            token_file.chmod(0o600)
            argv += ["--token-file", str(token_file)]
        self._out = self.log_path.open("wb")
        preexec = None if umask is None else (lambda: os.umask(umask))
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT, preexec_fn=preexec)  # noqa: PLW1509
        wait_for(self._up, timeout=60, what=f"receiver on {self.url}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"receiver exited {self.proc.returncode}: {self.output()!r}")
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def rss_bytes(self) -> int:
        """The process's resident memory now (VmRSS)."""
        return resident_bytes(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU the process (the front: HTTP and the intake) has used so far."""
        return cpu_seconds(self.proc.pid)

    def journal_bytes(self) -> int:
        """The journal on disk: the file, its -wal and -shm."""
        files = [self.journal_path.with_name(self.journal_path.name + s) for s in ("", "-wal", "-shm")]
        return sum(p.stat().st_size for p in files if p.exists())

    def output(self) -> bytes:
        """Everything the process printed so far, raw bytes."""
        return self.log_path.read_bytes()

    def post(self, *alerts: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url + "/alerts", json=payload(*alerts), headers=AUTH if headers is None else headers)

    def wait_job(self, job_id: int, timeout: float = 30.0) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            jobs = httpx.get(self.url + "/actions", params={"limit": 1000}, headers=AUTH).json()
            job = next((j for j in jobs if j["id"] == job_id), None)
            return job if job and job["status"] not in ("queued", "running") else None

        return wait_for(finished, timeout=timeout, what=f"job {job_id} to finish")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()


@pytest.fixture
def start_receiver(tmp_path):
    """Factory: start a receiver process with a `receiver:` section; stopped after the test."""
    started: list[ReceiverProcess] = []

    def start(section: dict[str, Any], *args: str, token: bool = True, umask: int | None = None,
              config_extra: dict[str, Any] | None = None) -> ReceiverProcess:
        proc = ReceiverProcess(tmp_path, section, *args, token=token, umask=umask, config_extra=config_extra)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


class PageCatcher:
    """Stand-in for Alertmanager's API v2: records every alert the receiver posts to page on-call.

    With `authorization` set it answers 401 to any other Authorization header, as Alertmanager
    behind `--web.config.file` basic auth does.
    """

    def __init__(self, authorization: str | None = None) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.authorization = authorization
        self.refused = 0
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if catcher.authorization is not None and self.headers.get("Authorization") != catcher.authorization:
                    catcher.refused += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == "/api/v2/alerts":
                    catcher.alerts.extend(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages():
    catcher = PageCatcher()
    yield catcher
    catcher.close()


class SlowSpeechServer:
    """Stand-in TTS service: each synthesis request takes `seconds`; counts how many run at once."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.total = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    server.in_flight += 1
                    server.total += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.seconds)
                finally:
                    with server.lock:
                        server.in_flight -= 1
                body = b'{"error":{"message":"stand-in: no audio"}}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/tts"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def start_exporter(tmp_path: Path, exporter: dict[str, Any], umask: int = 0o022) -> tuple[subprocess.Popen, str]:
    """`tts-sentinel exporter` in its own process under `umask`; returns (process, base URL) once it answers."""
    port = free_port()
    section = {"listen_port": port, "gpu": {"enabled": False}, **exporter}
    config = tmp_path / "exporter.yml"
    config.write_text(yaml.safe_dump({"exporter": section}))
    out = (tmp_path / "exporter.out").open("wb")
    proc = subprocess.Popen(
        [*CLI, "exporter", "--config", str(config)],
        stdout=out,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.umask(umask),  # noqa: PLW1509 - the umask is what the test is about
    )
    out.close()
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"exporter exited {proc.returncode}: {(tmp_path / 'exporter.out').read_text()}")
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=60, what="exporter up")
    return proc, url


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate, then kill if it does not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
