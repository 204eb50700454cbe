"""`tts-sentinel doctor`: every configured source and dependency, checked live, in one list."""

from __future__ import annotations

from pathlib import Path

import httpx

from tts_sentinel.config import SentinelConfig
from tts_sentinel.onboarding.checks_host import check_gpu, check_logs, check_probes, check_targets
from tts_sentinel.onboarding.checks_stack import check_alertmanager, check_exporter, check_prometheus, check_receiver
from tts_sentinel.onboarding.report import Check, fail, ok

DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
DEFAULT_ALERTMANAGER_URL = "http://127.0.0.1:9093"


def config_check(path: Path | None) -> Check:
    """Which config file the checks below read."""
    if path is None:
        return fail("config", "no config file found: checking the built-in defaults",
                    "write one with `tts-sentinel init URL`, or pass --config / set $TTS_SENTINEL_CONFIG")
    return ok("config", f"{path} (valid)")


def run_checks(config: SentinelConfig, path: Path | None, prometheus_url: str = DEFAULT_PROMETHEUS_URL,
               alertmanager_url: str | None = None, timeout: float = 3.0) -> list[Check]:
    """All checks, in the order data flows: logs and probes, GPU, exporter, receiver and its targets,
    then Prometheus and Alertmanager."""
    am = alertmanager_url or config.receiver.alertmanager_url or DEFAULT_ALERTMANAGER_URL
    checks = [config_check(path)]
    checks += check_logs(config.exporter.logs)
    checks += check_probes(config.exporter.probes)
    checks.append(check_gpu(config.exporter.gpu))
    with httpx.Client(timeout=timeout) as client:
        checks += check_exporter(config.exporter, config.receiver, client)
        checks.append(check_receiver(config.receiver, client))
        checks += check_targets(config.receiver.targets, timeout)
        checks += check_prometheus(prometheus_url, config.exporter, config.receiver, client)
        checks.append(check_alertmanager(am, config.receiver, client))
    return checks
