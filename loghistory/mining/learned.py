"""The learned-patterns file: templates the exporter promoted, and what a person decided about them.

One JSON file under the exporter's state_dir, written by the exporter (a promotion) and by
`tts-sentinel mine accept|reject` (a decision). Every change is read-modify-write under an
exclusive lock on the folder, so neither side loses the other's change, and replaces the
file atomically (0600). The exporter notices the change and reloads it, without a restart.

status: `promoted` (new, counted, waiting for a person), `accepted` (a named pattern, counted as
`tts_log_pattern_matches_total{pattern=NAME}`), `rejected` (never counted, never promoted again).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tts_sentinel.loghistory.config import LABEL_VALUE, PatternConfig
from tts_sentinel.loghistory.mining.state import write_private_json
from tts_sentinel.loghistory.scanner import CompiledPattern, compile_pattern

LEARNED_FORMAT = "tts-sentinel-learned-patterns"
Status = Literal["promoted", "accepted", "rejected"]
ACTIVE = ("promoted", "accepted")


class LearnedFileError(Exception):
    """The learned-patterns file cannot be read or written; the message says what to do."""


class LearnedTemplate(BaseModel):
    """One promoted template and its fate."""

    model_config = ConfigDict(extra="ignore")

    id: str
    template: str
    regex: str
    logs: list[str]
    level: str = ""
    status: Status = "promoted"
    name: str | None = Field(default=None, pattern=LABEL_VALUE)
    example: str = ""
    first_seen: float | None = None
    promoted_at: float
    lines_before_promotion: int = 0
    decided_at: float | None = None

    def pattern(self) -> CompiledPattern:
        """The template's regex, compiled like a configured pattern (literal prefilter included)."""
        return compile_pattern(self.name or self.id, self.regex)

    def as_pattern_config(self) -> PatternConfig:
        """The accepted template as an `extra_patterns` entry."""
        return PatternConfig(name=self.name or self.id, regex=self.regex, logs=list(self.logs))


class LearnedPatterns(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["tts-sentinel-learned-patterns"] = LEARNED_FORMAT
    version: Literal[1] = 1
    templates: list[LearnedTemplate] = Field(default_factory=list)

    def get(self, template_id: str) -> LearnedTemplate | None:
        """The entry with this id (or accepted name), or None."""
        return next((t for t in self.templates if template_id in (t.id, t.name)), None)

    def active(self) -> list[LearnedTemplate]:
        """Promoted and accepted entries: the ones counted, and the ones the cap applies to."""
        return [t for t in self.templates if t.status in ACTIVE]


def load_learned(path: Path) -> LearnedPatterns:
    """The file's content; an empty set when it does not exist yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return LearnedPatterns()
    except OSError as exc:
        raise LearnedFileError(f"{path}: cannot read the learned patterns ({exc.strerror or exc}); "
                               "run this as the exporter's user or fix the file's permissions.") from None
    try:
        return LearnedPatterns.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        raise LearnedFileError(f"{path}: not a learned-patterns file ({first}); fix or move it away, "
                               "the exporter keeps what it loaded last.") from None


@contextmanager
def editing_learned(path: Path) -> Iterator[LearnedPatterns]:
    """Read, let the caller change, write back: one writer at a time (flock on the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock = os.open(path.parent, os.O_RDONLY)
    except OSError as exc:
        raise LearnedFileError(f"{path.parent}: cannot open ({exc.strerror}); run this as the exporter's user.") \
            from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        learned = load_learned(path)
        yield learned
        try:
            write_private_json(path, learned.model_dump(mode="json"))
        except OSError as exc:
            raise LearnedFileError(f"{path}: cannot write ({exc.strerror or exc}); run this as the user the "
                                   "exporter runs as (e.g. sudo -u tts-sentinel ...).") from None
    finally:
        os.close(lock)  # closing releases the lock
