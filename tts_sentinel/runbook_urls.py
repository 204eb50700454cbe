"""Every alert's `runbook_url` comes from one base and the alert name.

The default base is the receiver's own `/runbooks/` page on its default address, so the link in
every alert opens out of the box; a team that keeps runbooks in a wiki passes its own base to
whatever writes the rules for Prometheus (`tts-sentinel deploy rules|kubernetes --runbook-base`,
the demo harness). A base containing `{alert}` is a template (`https://wiki/tts#{alert}`).
"""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_RUNBOOK_BASE = "http://127.0.0.1:9465/runbooks"


def runbook_url(base: str, alert: str) -> str:
    """The runbook link of `alert` under `base`."""
    if "{alert}" in base:
        return base.replace("{alert}", alert)
    return f"{base.rstrip('/')}/{alert}"


def with_runbook_urls(rules: dict[str, Any], base: str = DEFAULT_RUNBOOK_BASE) -> dict[str, Any]:
    """A copy of a Prometheus rules document whose every alert links to its runbook under `base`."""
    out = copy.deepcopy(rules)
    for group in out.get("groups") or []:
        for rule in group.get("rules") or []:
            if "alert" in rule:
                rule.setdefault("annotations", {})["runbook_url"] = runbook_url(base, rule["alert"])
    return out
