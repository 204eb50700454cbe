"""One line of `tts-sentinel doctor`: a check's verdict, what was checked, why, and how to fix it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail", "skip"]
MARKS: dict[str, str] = {"ok": "✔", "warn": "⚠", "fail": "✗", "skip": "–"}


@dataclass(frozen=True)
class Check:
    """The verdict of one live check. `fix` is empty unless it failed or warns. A warning works
    today but is a risk the user should close; it does not make `doctor` exit non-zero."""

    status: Status
    what: str
    why: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def ok(what: str, why: str) -> Check:
    """A check that passed."""
    return Check("ok", what, why)


def fail(what: str, why: str, fix: str) -> Check:
    """A check that failed, with the next step for the user."""
    return Check("fail", what, why, fix)


def warn(what: str, why: str, fix: str) -> Check:
    """A check that passes with a risk worth fixing (not a failure: the exit code stays 0)."""
    return Check("warn", what, why, fix)


def skip(what: str, why: str) -> Check:
    """A check that does not apply to this config (not a failure)."""
    return Check("skip", what, why)


def format_table(checks: list[Check]) -> str:
    """The table people read: mark, what, why, and an indented fix under every failure."""
    width = min(max((len(c.what) for c in checks), default=0), 40)
    lines = []
    for c in checks:
        lines.append(f"{MARKS[c.status]} {c.what:<{width}}  {c.why}")
        if c.fix:
            lines.append(f"  {'':<{width}}  fix: {c.fix}")
    failed = sum(c.failed for c in checks)
    passed = sum(c.status == "ok" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append("")
    lines.append(f"{passed} ok, {warned} warnings, {failed} failed, "
                 f"{len(checks) - passed - warned - failed} not applicable")
    return "\n".join(lines)


def format_json(checks: list[Check]) -> str:
    """The checks as one JSON document: {"ok": bool, "checks": [...]}."""
    return json.dumps({"ok": not any(c.failed for c in checks), "checks": [asdict(c) for c in checks]},
                      ensure_ascii=False, indent=2)
