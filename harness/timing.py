"""How fast the test and demo loop runs: one factor for Prometheus's `for:` and the receiver's windows.

Production keeps the rules' and the receiver's own values. The drill profile (`Timing()`, used by
`make demo`, `tts-sentinel drill` and `soak` and the end-to-end tests) runs the loop about ten
times faster: every `for:` and every receiver window that is a span of wall time (cooldowns, the
escalation window, the action budget's window, the quiet period) is multiplied by the same
factor, so a sequence of faults meets the same guards, in the same proportions, as a week in
production does. The healing bound is the exception (`bound_scale`, see Timing). Range selectors
inside expressions (`[5m]`) are not scaled: they count events, and the probes and logs that
produce those events keep their own pace.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from tts_sentinel.receiver.config import GuardsConfig
from tts_sentinel.receiver.families import IncidentsConfig


@dataclass
class Timing:
    """How fast the loop runs (the drill profile by default). `for_scale` multiplies every `for:` and
    every receiver window; production keeps the rules' and the receiver's own values."""

    scrape_seconds: float = 1.0
    probe_interval_seconds: float = 0.5
    for_scale: float = 0.1
    # The healing bound (the receiver's `heal_bound_seconds`, TtsNotHealed's `for:`) must outlast a
    # whole ladder, and a ladder's steps take real seconds the drill does not compress (stopping a
    # hung process, medium's 10 s wait, the stack's 30 s verification timeout, one job of the target
    # at a time): about a quarter of their production time, not a tenth.
    bound_scale: float = 0.25
    group_wait: str = "1s"
    group_interval: str = "2s"
    repeat_interval: str = "1h"


_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as `1h30m` or `15s`."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT[u] for n, u in parts)


BOUND_ALERTS = ("TtsNotHealed",)  # their `for:` is the healing bound (scaled by Timing.bound_scale)


def scale_rule_durations(rules: dict[str, Any], factor: float, bound_factor: float | None = None) -> dict[str, Any]:
    """A copy of a rules document with every `for:` scaled by `factor` (at least 1s), the healing
    bound's (BOUND_ALERTS) by `bound_factor` when given."""
    out = copy.deepcopy(rules)
    for group in out.get("groups", []):
        for rule in group.get("rules", []):
            if "for" in rule:
                f = bound_factor if bound_factor is not None and rule.get("alert") in BOUND_ALERTS else factor
                rule["for"] = f"{max(1, round(parse_duration(rule['for']) * f))}s"
    return out


def receiver_timings(scale: float, bound_scale: float | None = None) -> dict[str, Any]:
    """The receiver's time windows (guards and incidents) multiplied by `scale` (the healing bound
    by `bound_scale`, default `scale`), as config sections."""
    guards, incidents = GuardsConfig(), IncidentsConfig()
    return {
        "guards": {
            "cooldown_seconds": {tier: s * scale for tier, s in guards.cooldown_seconds.items()},
            "budget_window_seconds": guards.budget_window_seconds * scale,
            "escalation_window_seconds": guards.escalation_window_seconds * scale,
        },
        "incidents": {
            "quiet_seconds": incidents.quiet_seconds * scale,
            "heal_bound_seconds": incidents.heal_bound_seconds * (scale if bound_scale is None else bound_scale),
            "echo_grace_seconds": incidents.echo_grace_seconds * scale,
        },
    }


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` laid over `base`: nested mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
