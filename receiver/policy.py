"""Alert -> target and tier: label matchers onto the allowlist of targets, then the tier policy."""

from __future__ import annotations

from tts_sentinel.receiver.config import ReceiverConfig, TargetConfig
from tts_sentinel.receiver.matchers import labels_match
from tts_sentinel.receiver.tiers import Tier

__all__ = ["TierPolicy", "labels_match"]


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

    def tier_for(self, labels: dict[str, str]) -> tuple[Tier, str]:
        """(tier, why): a policy rule overrides the alert's own `tier` label."""
        for i, rule in enumerate(self.config.policy):
            if labels_match(rule.match, labels):
                return rule.tier, f"policy rule #{i} {rule.match} sets tier={rule.tier}"
        tier = labels.get("tier", "")
        if tier in set(Tier):
            return Tier(tier), f"alert label tier={tier}"
        return Tier.NONE, f"alert has no valid tier label ({tier!r}); journal only"
