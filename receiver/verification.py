"""Verification after an action: the exporter's blackbox-style `/probe?module=NAME` until it succeeds."""

from __future__ import annotations

import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tts_sentinel.receiver.config import VerificationConfig

_SUCCESS_SERIES = ("tts_probe_success", "probe_success")


def probe_succeeded(text: str) -> bool | None:
    """True/False from the `tts_probe_success` samples of a Prometheus text body (all must be 1); None if absent.

    Parsed with prometheus_client's own parser; a body that is not the exposition format counts as absent.
    """
    found = None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in _SUCCESS_SERIES:
                    ok = sample.value == 1.0
                    found = ok if found is None else (found and ok)
    except ValueError:
        return found
    return found


class ExporterVerifier:
    """Polls the exporter's /probe for one module until success or the deadline."""

    def __init__(self, exporter_url: str, config: VerificationConfig) -> None:
        self.exporter_url = exporter_url.rstrip("/")
        self.config = config

    def verify(self, module: str, timeout_seconds: float | None = None) -> dict[str, Any]:
        """Run the probe until it succeeds or `timeout_seconds` (default: the config's) pass; the
        journal's verification record. A timeout of 0 runs the probe exactly once."""
        started = time.monotonic()
        deadline = started + (self.config.timeout_seconds if timeout_seconds is None else timeout_seconds)
        attempts = 0
        detail = ""
        url = f"{self.exporter_url}/probe"
        with httpx.Client(timeout=self.config.request_timeout_seconds) as client:
            while True:
                attempts += 1
                try:
                    resp = client.get(url, params={"module": module})
                    verdict = probe_succeeded(resp.text)
                    if verdict is None:
                        detail = f"HTTP {resp.status_code}, no tts_probe_success in the answer"
                    else:
                        detail = f"HTTP {resp.status_code}, tts_probe_success={int(verdict)}"
                    if verdict:
                        return self._record(module, True, attempts, started, detail)
                except httpx.HTTPError as exc:
                    detail = f"exporter unreachable: {exc}"
                if time.monotonic() + self.config.interval_seconds > deadline:
                    return self._record(module, False, attempts, started, detail)
                time.sleep(self.config.interval_seconds)

    def _record(self, module: str, ok: bool, attempts: int, started: float, detail: str) -> dict[str, Any]:
        return {
            "module": module,
            "success": ok,
            "attempts": attempts,
            "duration_seconds": round(time.monotonic() - started, 3),
            "detail": detail,
        }
