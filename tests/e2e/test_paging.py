"""Who gets paged, on the real loop: Prometheus, Alertmanager, supervisord and an on-call webhook sink.

A fault the receiver heals pages no one. With the receiver stopped, on-call is paged by
Prometheus and Alertmanager alone, once: TtsReceiverDown, naming the alert left unhealed,
while the TtsNotHealed backstop it makes redundant is inhibited. The stack scales every
`for:` by 0.1, here the healing bound too (15m becomes 90s: the drill profile's quarter, 225s,
leaves room for a whole ladder, and the one healing here is a light restart of a few seconds),
and uses group_wait 1s, group_interval 2s.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from support import started_stack, wait_for

from tts_sentinel.harness.drill import StackEndpoints, actions, firing_alerts, inject, journal, run_drill
from tts_sentinel.harness.stack import Stack
from tts_sentinel.harness.timing import Timing

pytestmark = pytest.mark.e2e
# Longer than group_wait + 2 x group_interval of the test stack: a page still due has arrived.
SETTLE_SECONDS = 6.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(Stack, tmp_path_factory.mktemp("paging"), timing=Timing(bound_scale=0.1))


def firing_pages(stack: Stack, since: int = 0) -> list[dict[str, Any]]:
    """Notifications on-call got (after the first `since`) that tell of something firing, not an all-clear."""
    assert stack.oncall is not None
    return [p for p in stack.oncall.pages[since:] if p.get("status") == "firing"]


def alert_firing(endpoints: StackEndpoints, name: str) -> bool:
    return any(a["labels"]["alertname"] == name for a in firing_alerts(endpoints.prometheus, endpoints.auth))


def test_a_fault_the_receiver_heals_pages_no_one(stack):
    endpoints = StackEndpoints.from_dir(stack.dir)
    assert stack.oncall is not None
    before = len(stack.oncall.pages)

    result = run_drill(endpoints, "hang", "web", timeout=150, on_event=print)
    print(result.summary())
    assert result.alert == "TtsHealthProbeFailing", result.summary()
    assert result.green_seconds is not None, json.dumps(result.actions, indent=1)

    wait_for(lambda: not alert_firing(endpoints, "TtsHealthProbeFailing"), 90, "the health alert to resolve")
    time.sleep(SETTLE_SECONDS)
    assert stack.oncall.pages[before:] == [], json.dumps(stack.oncall.pages[before:], indent=1)
    done = actions(journal(endpoints.receiver, endpoints.token))
    assert [(a["tier"], a["status"]) for a in done] == [("light", "succeeded")], json.dumps(done, indent=1)


def test_with_the_receiver_stopped_alertmanager_alone_pages_once(stack):
    endpoints = StackEndpoints.from_dir(stack.dir)
    before = len(stack.oncall.pages)
    stack.stop_part("receiver")
    inject(endpoints, "hang", "web")
    try:
        pages = wait_for(lambda: firing_pages(stack, before), 60, "a page at the on-call sink")
        assert [a["labels"]["alertname"] for a in pages[0]["alerts"]] == ["TtsReceiverDown"]
        # the page says what is left unhealed
        assert "TtsHealthProbeFailing" in pages[0]["alerts"][0]["annotations"]["description"], pages[0]

        # The healing-bound backstop fires too, and Alertmanager holds it back: already paged.
        wait_for(lambda: alert_firing(endpoints, "TtsNotHealed"), 300, "TtsNotHealed to fire in Prometheus")

        def not_healed_in_alertmanager() -> dict[str, Any] | None:
            found = httpx.get(stack.url("alertmanager", "/api/v2/alerts"),
                              params={"filter": 'alertname="TtsNotHealed"'}, timeout=5, auth=stack.web.auth()).json()
            return found[0] if found else None

        not_healed = wait_for(not_healed_in_alertmanager, 30, "TtsNotHealed to reach Alertmanager")
        assert not_healed["status"]["state"] == "suppressed", not_healed
        assert not_healed["status"]["inhibitedBy"], not_healed
        time.sleep(SETTLE_SECONDS)

        pages = firing_pages(stack, before)
        assert len(pages) == 1, json.dumps(pages, indent=1)
        assert len({p["groupKey"] for p in pages}) == 1
    finally:
        inject(endpoints, "none", "web")
