"""Files shipped beside the code: `rules/`, `dashboards/`, `deploy/`.

There is one copy of each, the folder at the top of the repository. A source checkout reads it
there; an installed wheel carries it as package data under `tts_sentinel/` (pyproject's
`package-dir` maps the folders there), so both layouts are looked up, installed first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

_HERE = Path(__file__).resolve().parent

ShippedFolder = Literal["rules", "dashboards", "deploy"]


def shipped_dir(name: ShippedFolder) -> Path:
    """The folder `name` of this installation; FileNotFoundError with what to do when it is absent."""
    candidates = (_HERE / name, _HERE.parent / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"{name}/ is not part of this installation (looked in {candidates[0]} and {candidates[1]}); "
        "reinstall tts-sentinel from its wheel or run from a source checkout."
    )


def rule_files() -> list[Path]:
    """The shipped Prometheus rule files (`rules/*.rules.yml`), sorted by name."""
    return sorted(shipped_dir("rules").glob("*.rules.yml"))
