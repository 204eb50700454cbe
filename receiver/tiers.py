"""The restart tiers and their rank: one enum, used by the config, the policy and the journal."""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    """What the receiver does for an alert; the value is the alert's `tier` label."""

    NONE = "none"
    DERATE = "derate"
    LIGHT = "light"
    MEDIUM = "medium"
    HEAVY = "heavy"
    ROLLBACK = "rollback"

    @property
    def rank(self) -> int:
        """One action per incident: when several alerts ask for tiers, the highest rank wins."""
        return _RANK[self]

    def escalation(self) -> Tier | None:
        """The next tier of the restart ladder (light -> medium -> heavy); None at the top or outside it."""
        if self not in RESTART_LADDER or self is RESTART_LADDER[-1]:
            return None
        return RESTART_LADDER[RESTART_LADDER.index(self) + 1]


_RANK = {Tier.NONE: 0, Tier.DERATE: 1, Tier.LIGHT: 2, Tier.MEDIUM: 3, Tier.HEAVY: 4, Tier.ROLLBACK: 5}
# derate, rollback and none stand apart: they never escalate.
RESTART_LADDER: tuple[Tier, ...] = (Tier.LIGHT, Tier.MEDIUM, Tier.HEAVY)
