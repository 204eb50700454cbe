"""`tts-sentinel doctor`: every configured source and dependency, checked live, in one list."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import httpx

from tts_sentinel.config import SentinelConfig
from tts_sentinel.onboarding.checks_host import check_gpu, check_logs, check_probes, check_targets
from tts_sentinel.onboarding.checks_stack import (
    check_alertmanager,
    check_closed,
    check_exporter,
    check_prometheus,
    check_receiver,
)
from tts_sentinel.onboarding.report import Check, fail, ok
from tts_sentinel.receiver.auth import read_secret
from tts_sentinel.receiver.config import ReceiverConfig

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
DEFAULT_ALERTMANAGER_URL = "http://127.0.0.1:9093"


def config_check(path: Path | None) -> Check:
    """Which config file the checks below read."""
    if path is None:
        return fail("config", "no config file found: checking the built-in defaults",
                    "write one with `tts-sentinel init URL`, or pass --config / set $TTS_SENTINEL_CONFIG")
    return ok("config", f"{path} (valid)")


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def basic_auth(username: str | None, password_file: Path | None) -> httpx.Auth | None:
    """Basic auth from a user and a password file (ValueError with a sentence when the file is unusable)."""
    if username is None or password_file is None:
        return None
    return httpx.BasicAuth(username, read_secret(password_file, "password"))


def alertmanager_auth(receiver: ReceiverConfig) -> httpx.Auth | None:
    """The credentials the receiver pages Alertmanager with: the doctor asks with the same ones."""
    if receiver.alertmanager_token_file is not None:
        return _Bearer(read_secret(receiver.alertmanager_token_file, "Alertmanager token"))
    return basic_auth(receiver.alertmanager_username, receiver.alertmanager_password_file)


def run_checks(config: SentinelConfig, path: Path | None, prometheus_url: str = DEFAULT_PROMETHEUS_URL,
               alertmanager_url: str | None = None, timeout: float = 3.0,
               prometheus_auth: httpx.Auth | None = None) -> list[Check]:
    """All checks, in the order data flows: logs and probes, GPU, exporter, receiver and its targets,
    then Prometheus and Alertmanager (with `prometheus_auth`, and the receiver's Alertmanager credentials),
    and whether either answers without a login."""
    am = alertmanager_url or config.receiver.alertmanager_url or DEFAULT_ALERTMANAGER_URL
    checks = [config_check(path)]
    checks += check_logs(config.exporter.logs)
    checks += check_probes(config.exporter.probes)
    checks.append(check_gpu(config.exporter.gpu))
    with httpx.Client(timeout=timeout) as client:
        checks += check_exporter(config.exporter, config.receiver, client)
        checks.append(check_receiver(config.receiver, client))
        checks += check_targets(config.receiver.targets, timeout)
        checks += check_prometheus(prometheus_url, config.exporter, config.receiver, client, prometheus_auth)
        try:
            am_auth = alertmanager_auth(config.receiver)
        except ValueError as exc:
            checks.append(fail("Alertmanager credentials", str(exc), "fix receiver.alertmanager_password_file"))
            am_auth = None
        checks.append(check_alertmanager(am, config.receiver, client, am_auth))
        checks.append(check_closed("Prometheus", prometheus_url.rstrip("/") + "/api/v1/status/config", client))
        checks.append(check_closed("Alertmanager", am.rstrip("/") + "/api/v2/status", client))
    return checks
