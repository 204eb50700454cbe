"""Attack 8: before the token, nothing: no schema, no docs, no parse error, only /healthz and /metrics.

Against a real receiver process: a caller without the token learns nothing of the API, and a
malformed body is answered 401, not 422, so the body was never parsed for them.
"""

from __future__ import annotations

import httpx

from tests.security.conftest import AUTH, alert, command_target, receiver_section


def test_everything_but_healthz_and_metrics_needs_the_token_before_the_body_is_read(tmp_path, start_receiver):
    receiver = start_receiver(receiver_section(tmp_path, [command_target("t", tmp_path / "ops")]))
    url = receiver.url
    wrong = {"Authorization": "Bearer not-the-token-0123456789abcdef"}

    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect", "/actions", "/no-such-page"):
        for headers in ({}, wrong):
            r = httpx.get(url + path, headers=headers)
            assert r.status_code == 401, (path, r.status_code, r.text[:200])
            assert r.headers["www-authenticate"] == "Bearer"
            assert "paths" not in r.text and "openapi" not in r.text.lower()

    for body in (b"{not json", b'{"version": "4", "alerts": "nope"}', b"x" * 10_000):
        for headers in ({}, wrong, {"Authorization": "Basic dXNlcjpwYXNz"}):
            r = httpx.post(url + "/alerts", content=body, headers={**headers, "Content-Type": "application/json"})
            assert r.status_code == 401, (body[:20], headers, r.status_code, r.text[:200])
            assert r.json() == {"detail": "missing or wrong bearer token"}, "no parse error leaks to them"

    # With the token the same malformed body is parsed (and refused for what it is), the schema served.
    assert httpx.post(url + "/alerts", content=b"{not json", headers=AUTH).status_code == 422
    assert "/alerts" in httpx.get(url + "/openapi.json", headers=AUTH).json()["paths"]
    assert receiver.post(alert("TtsHealthProbeFailing", service="t")).status_code == 202

    assert httpx.get(url + "/healthz").json() == {"status": "ok"}
    metrics = httpx.get(url + "/metrics").text
    assert "tts_receiver_insecure 0.0" in metrics
    refused = next(line for line in metrics.splitlines() if line.startswith('tts_webhook_requests_total{code="401"}'))
    assert float(refused.split()[-1]) == 9, "each refused webhook post is counted"
