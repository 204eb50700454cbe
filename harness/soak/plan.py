"""What a soak injects, in which order and when, and what the right outcome of each fault is.

A plan is a list of injections. Each waits for the previous incident to end plus the gap, or,
marked `@during`, goes in while the previous incident's remediation is still running. The soak
adds one fault of its own to the simulator's: `weights` corrupts the model weights the receiver
checks before a heavy restart, then segfaults the engine; a restart cannot fix that, so the
right outcome is a refusal and exactly one page.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tts_sentinel.simulator.faults import FAULTS, FaultError, check_fault

WEIGHTS = "weights"
MAX_INJECTIONS = 50
# The tiers a fault's incident may climb, from its base. Which components each step restarts is
# checked apart (every action must touch the component that broke): a web-front incident may go
# to medium only if medium keeps restarting the web front, as the incident model does.
WEB_LADDER = ("light", "medium", "heavy")
ENGINE_LADDER = ("medium", "heavy")


@dataclass(frozen=True)
class Injection:
    """One fault to inject: into which component, and whether it waits for the previous incident to end."""

    fault: str
    component: str
    during: bool = False  # inject while the previous incident's remediation runs

    @property
    def label(self) -> str:
        """`fault:component`, with `@during` when it is injected during a remediation."""
        return f"{self.fault}:{self.component}" + ("@during" if self.during else "")


@dataclass(frozen=True)
class Expectation:
    """The right outcome of one fault: the component acted on, the ladder, whether a restart heals it."""

    component: str
    family: str  # what broke; faults of different families must never escalate each other
    ladder: tuple[str, ...]  # the tiers allowed, in order; the first is where the incident starts
    healable: bool = True
    action_required: bool = True  # False when something else (process autorestart) heals it


def default_component(fault: str) -> str:
    """Where a fault goes when the plan does not say: the web front for hang and error500, else inference."""
    return "web" if fault in ("hang", "error500") else "inference"


def expectation(fault: str, component: str, heavy_refused: bool = False) -> Expectation:
    """The right outcome of `fault` in `component` (the seed's table); `heavy_refused` in business hours."""
    ladder = WEB_LADDER if component == "web" else ENGINE_LADDER
    if fault == WEIGHTS:
        return Expectation("inference", "weights_config", ("heavy",), healable=False)
    if fault == "segfault":
        return Expectation(component, "native_crash", ("heavy",), healable=not heavy_refused)
    if fault == "crash":
        return Expectation(component, "process_exit", ladder, action_required=False)
    if fault in ("hang", "error500"):
        return Expectation(component, "web_front" if component == "web" else "inference_engine", ladder)
    if fault == "load_timeout":
        return Expectation("inference", "inference_engine", ENGINE_LADDER)
    if fault == "oom":
        return Expectation("inference", "gpu_memory", ENGINE_LADDER)
    return Expectation("inference", "audio_output", ENGINE_LADDER)  # silent, unicode and the audio faults


LOOP_CRASHES, LOOP_SECONDS = 3, 600.0  # rules/process.rules.yml: TtsProcessRestartLoop


def in_restart_loop(fault: str, component: str, at: float, earlier: list[tuple[str, str, float]]) -> bool:
    """Whether a crash injected at `at` is the third (or later) of its component within the restart
    loop's window: then TtsProcessRestartLoop fires and the heavy tier is the right answer."""
    if fault != "crash":
        return False
    crashes = [t for f, c, t in earlier if f == "crash" and c == component and at - t <= LOOP_SECONDS]
    return len(crashes) + 1 >= LOOP_CRASHES


def loop_expectation(component: str) -> Expectation:
    """A restart loop: the process manager's restarts do not fix it, so a heavy restart does."""
    return Expectation(component, "process_exit", ("heavy",))


def parse_faults(text: str) -> list[Injection]:
    """`hang,oom@during,crash:web,weights` -> injections; raises ValueError with the allowed names."""
    plan = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        during = item.endswith("@during")
        name, _, component = item.removesuffix("@during").partition(":")
        component = component or default_component(name)
        if name == WEIGHTS:
            component = "inference"
        else:
            try:
                check_fault(name, component)
            except FaultError as exc:
                raise ValueError(f"{exc}; the soak also knows {WEIGHTS}") from None
            if name == "none":
                raise ValueError("`none` is not a fault to inject")
        plan.append(Injection(name, component, during))
    if not plan:
        raise ValueError("no faults given; for example --faults hang,error500,oom")
    if plan[0].during:
        raise ValueError(f"{plan[0].label}: the first fault has no remediation to be injected during")
    if len(plan) > MAX_INJECTIONS:
        raise ValueError(f"{len(plan)} faults; a soak injects at most {MAX_INJECTIONS}")
    return plan


# The faults a random plan draws from: the seed's table, each detected within seconds by the stack.
RANDOM_POOL: tuple[tuple[str, str], ...] = (
    ("hang", "web"), ("error500", "web"), ("hang", "inference"), ("error500", "inference"),
    ("crash", "web"), ("crash", "inference"), ("segfault", "inference"), ("oom", "inference"),
    ("silent", "inference"), ("unicode", "inference"), ("load_timeout", "inference"),
)
assert all(f in FAULTS for f, _ in RANDOM_POOL)


def random_plan(count: int, seed: int) -> list[Injection]:
    """`count` faults drawn with `seed`. From 2 faults on, one recurs right after it healed (it should
    escalate); from 3, one cannot be healed (weights); from 4, one goes into the other component
    while the previous fault is being remediated."""
    if not 1 <= count <= MAX_INJECTIONS:
        raise ValueError(f"--count must be 1 to {MAX_INJECTIONS}")
    rng = random.Random(seed)
    recur = during = weights = -1
    for _ in range(100):  # a few draws find slots that keep the three cases apart
        recur = rng.randrange(1, count) if count >= 2 else -1
        weights = rng.choice([i for i in range(count) if i not in (recur - 1, recur)]) if count >= 3 else -1
        free = [i for i in range(1, count) if i not in (recur, weights, weights + 1)]
        during = rng.choice(free) if count >= 4 and free else -1
        if count < 4 or during >= 0:
            break
    plan: list[Injection] = []
    for i in range(count):
        if i == weights:
            plan.append(Injection(WEIGHTS, "inference"))
        elif i == recur:
            plan.append(Injection(plan[i - 1].fault, plan[i - 1].component))
        elif i == during:
            other = [p for p in RANDOM_POOL if p[1] != plan[i - 1].component and p[0] not in ("crash", "segfault")]
            plan.append(Injection(*rng.choice(other), during=True))
        else:
            plan.append(Injection(*rng.choice(RANDOM_POOL)))
    return plan
