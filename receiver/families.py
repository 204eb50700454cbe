"""Fault families: what broke, decided from the evidence, and the ladder of tiers that fixes it.

An incident is a target plus a family. The family of a firing alert comes from, in order:
the triage verdict of the incident's own window (a root cause whose family explains the
alert's log pattern or failing probe), then the alert's own labels (the family whose
matchers hold), else an `unclassified:<alertname>` family climbing the restart ladder
from the alert's tier. The defaults follow the seed's table of faults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tts_sentinel.receiver.matchers import labels_match, valid_matchers
from tts_sentinel.receiver.tiers import RESTART_LADDER, Tier

UNCLASSIFIED = "unclassified"


class FamilyConfig(BaseModel):
    """One fault family: how to recognise it and which tiers, in order, heal it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    description: str = ""
    alerts: list[dict[str, str]] = Field(
        default_factory=list, description="label matcher sets; an alert matching any set belongs here"
    )
    causes: list[str] = Field(default_factory=list, description="triage root-cause patterns of this family")
    probes: list[str] = Field(
        default_factory=list, description="probe modules a root cause of this family makes fail"
    )
    ladder: list[Tier] = Field(min_length=1, description="tiers in the order an incident climbs them")

    @field_validator("alerts")
    @classmethod
    def _regexes(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        return [valid_matchers(m) for m in value]

    @field_validator("ladder")
    @classmethod
    def _climbs(cls, value: list[Tier]) -> list[Tier]:
        if Tier.NONE in value:
            raise ValueError("a ladder cannot contain tier none (an alert with tier none opens no incident)")
        if any(b.rank <= a.rank for a, b in zip(value, value[1:], strict=False)):
            raise ValueError(f"a ladder must climb: each tier higher than the one before ({[str(t) for t in value]})")
        return value

    def serves(self, tier: Tier) -> bool:
        """Whether the ladder can answer an alert of this tier (derating and restarting are apart)."""
        if tier in (Tier.DERATE, Tier.ROLLBACK):
            return tier in self.ladder
        return any(rung in RESTART_LADDER for rung in self.ladder)

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether the alert's labels name this family (a matcher set, or its log pattern is a cause)."""
        if labels.get("pattern") and labels["pattern"] in self.causes:
            return True
        return any(labels_match(m, labels) for m in self.alerts)


def default_families() -> list[FamilyConfig]:
    """The seed's faults; earlier families are causes that explain later ones' symptoms."""
    return [
        FamilyConfig(
            name="weights_config",
            description="corrupted weights, a broken config or a native crash: only a full restart helps",
            alerts=[{"alertname": "TtsSegfault"}],
            causes=["segfault", "model_load_timeout"],
            probes=["synthesis", "health"],
            ladder=[Tier.HEAVY],
        ),
        FamilyConfig(
            name="gpu_memory",
            description="CUDA out of memory or GPU memory held by no process: restart inference, free the GPU",
            alerts=[{"alertname": "~TtsCudaOutOfMemory|TtsTorchOutOfMemory|TtsGpuMemoryFullNoProcess"}],
            causes=["cuda_oom", "torch_cuda_oom", "torch_oom_error"],
            probes=["synthesis"],
            ladder=[Tier.MEDIUM, Tier.HEAVY],
        ),
        FamilyConfig(
            name="cuda_context",
            description="the inference process lost its CUDA context (an XID that kills it, an illegal memory "
                        "access, a CUDA runtime error, an NCCL watchdog timeout); the GPU itself is fine",
            alerts=[{"alertname": "~TtsGpuXidRecoverable|TtsVllmGpuFault"}],
            causes=["cuda_illegal_memory_access", "cuda_error_oom", "nccl_watchdog_timeout"],
            probes=["synthesis"],
            ladder=[Tier.MEDIUM, Tier.HEAVY],
        ),
        FamilyConfig(
            name="inference_engine",
            description="the inference engine does not answer (errors, timeouts, a dead, hung or underrunning "
                        "engine)",
            alerts=[{"alertname": "~TtsEngineDead|TtsSynthesisUnavailable"
                                  "|TtsVllmEngineCoreDied|TtsVllmEngineHung|TtsVllmEngineHungProbes"
                                  "|TtsStreamingUnderrun"}],
            causes=["engine_dead", "orchestrator_crashed", "engine_core_fatal", "engine_core_died"],
            probes=["synthesis"],
            ladder=[Tier.MEDIUM, Tier.HEAVY],
        ),
        FamilyConfig(
            name="audio_output",
            description="the engine answers but does not speak right (silence, runaway audio, the silence "
                        "after invalid input)",
            alerts=[{"alertname": "~TtsAudioSilent|TtsSynthesisSilent|TtsSynthesisRunaway|TtsStreamingRunaway"}],
            causes=["audio_silent", "invalid_unicode"],
            probes=["synthesis"],
            ladder=[Tier.MEDIUM, Tier.HEAVY],
        ),
        FamilyConfig(
            name="process_crash",
            description="a component exited or restarts in a loop (the process manager's view)",
            alerts=[{"alertname": r"~Tts\w*(Crash|Restart|Exit)\w*"}],
            ladder=[Tier.LIGHT, Tier.MEDIUM, Tier.HEAVY],
        ),
        FamilyConfig(
            name="web_front",
            description="the web front does not answer (L1, hung HTTP, streaming): web front first, then with it",
            alerts=[{"alertname": "~TtsHealthProbeFailing|TtsStreamUnderflow"}],
            causes=["stream_underflow"],
            probes=["health"],
            ladder=[Tier.LIGHT, Tier.MEDIUM, Tier.HEAVY],
        ),
        FamilyConfig(
            name="gpu_thermal",
            description="the GPU runs hot: lower its power limit",
            alerts=[{"alertname": "~TtsGpuTemperatureRising|TtsGpuOverheating"}, {"tier": "derate"}],
            ladder=[Tier.DERATE],
        ),
        FamilyConfig(
            name="model_version",
            description="speech quality degraded for a day with intact weights: back to the previous version",
            alerts=[{"alertname": "TtsQualityDegraded"}, {"tier": "rollback"}],
            probes=["quality", "synthesis"],
            ladder=[Tier.ROLLBACK],
        ),
    ]


class IncidentsConfig(BaseModel):
    """How alerts become incidents, when incidents close, and when on-call hears of one."""

    model_config = ConfigDict(extra="forbid")

    quiet_seconds: float = Field(
        default=300.0, ge=0, description="an incident closes this long after its last alert resolved"
    )
    heal_bound_seconds: float = Field(
        default=600.0, gt=0, description="an incident not healed this long after it opened pages on-call"
    )
    recheck_seconds: float = Field(
        default=300.0, ge=0, description="after an action on the target, act only when a probe is red now"
    )
    echo_grace_seconds: float = Field(
        default=30.0, ge=0, description="a probe alert that starts during one of our restarts or a crash restart, "
        "or this long after it, is checked before acting: green, it is that restart's echo (no action, no recurrence)"
    )
    lookback_seconds: float = Field(
        default=600.0, ge=0, description="the longest look-back of a healing alert: an alert still firing this "
        "long after its incident healed is counted again by the paging backstop (TtsNotHealed)"
    )
    triage_lead_seconds: float = Field(
        default=120.0, ge=0, description="the incident's triage window starts this long before it opened"
    )
    families: list[FamilyConfig] = Field(default_factory=default_families)

    @field_validator("families")
    @classmethod
    def _with_defaults(cls, value: list[FamilyConfig]) -> list[FamilyConfig]:
        # Yours first (in your order), then the defaults you did not name: a family you name
        # replaces the default of that name.
        names = [f.name for f in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"family names must be unique; repeated: {', '.join(dupes)}")
        return value + [f for f in default_families() if f.name not in names]


@dataclass(frozen=True)
class FamilyDecision:
    """The family of one alert, its ladder, and why (for the journal)."""

    name: str
    ladder: tuple[Tier, ...]
    reason: str


def classify(
    labels: dict[str, str], tier: Tier, verdict: dict[str, Any] | None, families: list[FamilyConfig]
) -> FamilyDecision:
    """The family of an alert with these labels, given the triage verdict of its window."""
    alertname = labels.get("alertname", "?")
    families = [f for f in families if f.serves(tier)]
    own = next((f for f in families if f.matches(labels)), None)
    root = ((verdict or {}).get("root_cause") or {}).get("pattern")
    root_family = next((f for f in families if root and root in f.causes), None)
    if root_family is not None and root_family is not own:
        derived = {d.get("pattern") for d in (verdict or {}).get("derived") or []}
        pattern, probe = labels.get("pattern"), labels.get("verify")
        if (pattern and pattern in derived | {root}) or (probe and probe in root_family.probes):
            what = f"its {pattern} lines" if pattern in derived | {root} else f"the failing {probe} probe"
            return FamilyDecision(
                root_family.name,
                tuple(root_family.ladder),
                f"{alertname}: triage root cause {root} ({_first_line(verdict)}) explains {what}",
            )
    if own is not None:
        agrees = f"; triage root cause {root} agrees" if root_family is own else ""
        return FamilyDecision(own.name, tuple(own.ladder), f"{alertname} is a {own.name} alert{agrees}")
    return FamilyDecision(
        f"{UNCLASSIFIED}:{alertname}",
        _ladder_from(tier),
        f"{alertname} matches no family and the triage names no known cause; the ladder climbs from tier {tier}",
    )


def start_rung(ladder: tuple[Tier, ...], tier: Tier) -> int:
    """The first rung at or above the alert's tier (a policy rule or label asking for more is obeyed)."""
    for i, rung in enumerate(ladder):
        if rung.rank >= tier.rank:
            return i
    return len(ladder) - 1


def _ladder_from(tier: Tier) -> tuple[Tier, ...]:
    if tier in RESTART_LADDER:
        return RESTART_LADDER[RESTART_LADDER.index(tier):]
    return (tier,)


def _first_line(verdict: dict[str, Any] | None) -> str:
    first = (((verdict or {}).get("root_cause") or {}).get("first") or {})
    line = str(first.get("line", "")).strip()
    return f"{first.get('log', '?')}.log: {line[:160]}" if line else "no line"
