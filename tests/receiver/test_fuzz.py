"""No input produces a 5xx: schemathesis fuzzes the receiver's own OpenAPI schema (bounded).

Cases come from schemathesis' hypothesis strategies (positive and negative) for every
operation, each sent with and without the token, in-process over ASGI.
"""

from __future__ import annotations

import collections

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.receiver.conftest import TOKEN, receiver_config
from tts_sentinel.receiver.app import create_app
from tts_sentinel.receiver.service import ReceiverService


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    journal = tmp_path_factory.mktemp("fuzz") / "j.sqlite3"
    service = ReceiverService(receiver_config(None, None, dry_run=True), TOKEN, journal_path=journal)
    service.start()
    # The schema itself is behind the token (tests/security/test_auth_first.py).
    yield schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(service), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    service.stop()


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_no_input_gives_a_server_error(schema, mode):
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /alerts", "GET /actions", "GET /healthz", "GET /metrics"}
    if mode is GenerationMode.NEGATIVE:
        # Operations without parameters or body have no invalid input to generate.
        operations = [op for op in operations if op.label in ("POST /alerts", "GET /actions")]
    seen = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            for headers in ({"Authorization": f"Bearer {TOKEN}"}, {}):
                response = case.call(headers=headers)
                seen.append(response.status_code)
                assert response.status_code < 500, (
                    case.method,
                    case.path,
                    response.status_code,
                    response.text[:300],
                )

        fuzz()
    assert len(seen) > 20, "the fuzzer really sent requests"
    codes = collections.Counter(seen)
    if mode is GenerationMode.POSITIVE:
        assert codes[202] > 0, f"valid payloads reached admission: {codes}"
    else:
        assert codes[422] > 0, f"invalid payloads were refused with 422: {codes}"
