"""Label matchers as the config writes them: an exact value, or `~regex` for the whole value."""

from __future__ import annotations

import re


def valid_regex(pattern: str, what: str) -> str:
    """`pattern` if it compiles; ValueError naming `what` otherwise."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what} is not a valid regex: {exc}") from None
    return pattern


def valid_matchers(value: dict[str, str]) -> dict[str, str]:
    """Label matchers: exact values, or `~regex` that must compile."""
    for label, pattern in value.items():
        if pattern.startswith("~"):
            valid_regex(pattern[1:], f"matcher for {label!r}")
    return value


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
