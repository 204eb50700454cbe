"""Alert -> target and tier: label matchers onto the allowlist of targets, then the tier policy."""

from __future__ import annotations

import re

from tts_sentinel.receiver.config import TIERS, ReceiverConfig, TargetConfig

# One action per target per incident: the highest of these wins.
TIER_RANK = {"none": 0, "derate": 1, "light": 2, "medium": 3, "heavy": 4}
_LADDER = ("light", "medium", "heavy")


def labels_match(matchers: dict[str, str], labels: dict[str, str]) -> bool:
    """Every matcher holds: exact value, or `~regex` matching the whole value. Empty matches all."""
    for name, want in matchers.items():
        value = labels.get(name)
        if value is None:
            return False
        if want.startswith("~"):
            if re.fullmatch(want[1:], value) is None:
                return False
        elif value != want:
            return False
    return True


def next_tier(tier: str) -> str | None:
    """The tier an escalation moves to, or None at the top (or outside the ladder)."""
    if tier not in _LADDER or tier == _LADDER[-1]:
        return None
    return _LADDER[_LADDER.index(tier) + 1]


class TierPolicy:
    """Decides, for one alert, which target it concerns and which tier it asks for, and why."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config

    def target_for(self, labels: dict[str, str]) -> TargetConfig | None:
        """The first allowlisted target whose matchers hold, or None."""
        for target in self.config.targets:
            if labels_match(target.match, labels):
                return target
        return None

    def tier_for(self, labels: dict[str, str]) -> tuple[str, str]:
        """(tier, why): a policy rule overrides the alert's own `tier` label."""
        for i, rule in enumerate(self.config.policy):
            if labels_match(rule.match, labels):
                return rule.tier, f"policy rule #{i} {rule.match} sets tier={rule.tier}"
        tier = labels.get("tier", "")
        if tier in TIERS:
            return tier, f"alert label tier={tier}"
        return "none", f"alert has no valid tier label ({tier!r}); journal only"
