"""L1 health prober: an HTTP request that must answer the expected status and body, in time."""

from __future__ import annotations

import json

import httpx

from tts_sentinel.exporter.probes.config import HealthProbeConfig, ProbesConfig
from tts_sentinel.exporter.probes.prober import Measurement, Prober, ProbeResult

REASONS = ("timeout", "connection", "http_status", "body")


def probe_health(config: HealthProbeConfig, probes: ProbesConfig | None = None) -> ProbeResult:
    """GET (or the configured method) the health URL and check status and body."""
    try:
        response = httpx.request(
            config.method, config.url, headers=config.request_headers(), timeout=config.timeout_seconds,
        )
    except httpx.TimeoutException:
        return ProbeResult.failed("timeout", f"{config.url} did not answer within {config.timeout_seconds}s")
    except (httpx.HTTPError, OSError) as exc:
        return ProbeResult.failed("connection", f"{config.url}: {exc.__class__.__name__}: {exc}")
    status = Measurement("tts_probe_http_status_code", "HTTP status of the last probe request.", {},
                         response.status_code)
    result = _check(config, response)
    result.gauges.append(status)
    return result


def _check(config: HealthProbeConfig, response: httpx.Response) -> ProbeResult:
    if response.status_code not in config.expect_status:
        expected = config.expect_status
        return ProbeResult.failed("http_status", f"status {response.status_code}, expected {expected}")
    body = response.content
    if config.expect_empty_body and body.strip():
        return ProbeResult.failed("body", f"expected an empty body, got {body[:80]!r}")
    if config.expect_json is not None:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return ProbeResult.failed("body", f"body is not JSON: {body[:80]!r}")
        got = data if isinstance(data, dict) else {}
        wrong = {k: v for k, v in config.expect_json.items() if got.get(k) != v}
        if wrong:
            return ProbeResult.failed("body", f"body {body[:80]!r} lacks {wrong}")
    return ProbeResult(success=True, detail=f"status {response.status_code}")


PROBER = Prober(run=probe_health, reasons=REASONS)
