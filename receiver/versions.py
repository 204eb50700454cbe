"""A target's model versions: where they live, and the history of switches between them.

The history is a small JSON file (versioned format, written atomically, mode 0600): every switch
with its model id, weights sha256 and commit, whether the version passed validation, the
versions rolled back from (never chosen again), and the canary protection with its expiry.
It is the record the `rollback` tier reads to find the previous known-good version.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

FORMAT = 1
VERSION_NAME = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class VersionError(Exception):
    """The history cannot be read or written, or a version name is unusable; the message says why."""


class VersionsConfig(BaseModel):
    """Where a target's model versions live (the demo/supervisord layout: a `current` symlink
    pointing into `versions_dir`) and the history file of switches."""

    model_config = ConfigDict(extra="forbid")

    versions_dir: Path | None = Field(default=None, description="one folder per version, e.g. /opt/qwen3-tts/versions")
    current_link: Path | None = Field(default=None, description="symlink the service runs from: current -> versions/X")
    # Default (set by the target): /var/lib/tts-sentinel/versions-TARGET.json, one file per target.
    history_file: Path | None = None

    def for_target(self, name: str) -> VersionsConfig:
        """This section with the target's own default history file filled in."""
        if self.history_file is not None:
            return self
        return self.model_copy(update={"history_file": Path(f"/var/lib/tts-sentinel/versions-{name}.json")})


@dataclass
class VersionRecord:
    """One switch to a version."""

    version: str
    model_id: str = ""
    weights_sha256: str = ""
    commit: str = ""
    validated: bool = False
    reason: str = "validated candidate"
    switched_at: float = field(default_factory=time.time)


class VersionHistory:
    """Reads and appends to one target's history file."""

    def __init__(self, config: VersionsConfig) -> None:
        if config.history_file is None:
            raise VersionError("no history_file: build the history from a target's versions section")
        self.config = config
        self.path = config.history_file

    @classmethod
    def of(cls, target: Any) -> VersionHistory:
        """The history of a receiver target (anything with a `versions` section)."""
        return cls(target.versions)

    # -- reading --------------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        """The whole document; an empty history when the file does not exist yet."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return {"format": FORMAT, "switches": [], "bad": [], "protected": None}
        except OSError as exc:
            raise VersionError(f"cannot read the version history {self.path}: {exc} (a symlink is refused)") from None
        with os.fdopen(fd, encoding="utf-8") as f:
            try:
                doc = json.load(f)
            except ValueError as exc:
                raise VersionError(f"version history {self.path} is not JSON ({exc}); fix or move it") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else "?"
            raise VersionError(f"version history {self.path} has format {found}; this program reads format {FORMAT}")
        doc.setdefault("switches", [])
        doc.setdefault("bad", [])
        doc.setdefault("protected", None)
        return doc

    def switches(self) -> list[VersionRecord]:
        """Every recorded switch, oldest first."""
        return [VersionRecord(**s) for s in self.load()["switches"]]

    def previous_good(self, current: str | None) -> VersionRecord | None:
        """The newest validated version other than `current` that was never rolled back from."""
        doc = self.load()
        bad = set(doc["bad"])
        for raw in reversed(doc["switches"]):
            record = VersionRecord(**raw)
            if record.version != current and record.validated and record.version not in bad:
                return record
        return None

    def protection(self, now: float | None = None) -> str | None:
        """Why the current version is protected (a candidate under validation), or None once expired."""
        protected = self.load().get("protected")
        if not protected or float(protected.get("until", 0)) <= (now or time.time()):
            return None
        until = time.strftime("%H:%M:%S", time.localtime(protected["until"]))
        return f"{protected.get('why', 'canary')} (until {until})"

    # -- writing --------------------------------------------------------------------------------
    def record_switch(self, record: VersionRecord, rolled_back_from: str | None = None) -> None:
        """Append a switch; a rollback also marks the version it left as bad."""
        check_version_name(record.version)
        doc = self.load()
        doc["switches"].append(asdict(record))
        if rolled_back_from and rolled_back_from not in doc["bad"]:
            doc["bad"].append(rolled_back_from)
        self._write(doc)

    def protect(self, seconds: float, why: str) -> None:
        """Mark the current version protected ("read-only") for at most `seconds`."""
        doc = self.load()
        doc["protected"] = {"since": time.time(), "until": time.time() + seconds, "why": f"protected: canary, {why}"}
        self._write(doc)

    def unprotect(self) -> None:
        """End the protection (the validation finished)."""
        doc = self.load()
        doc["protected"] = None
        self._write(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)
            os.replace(tmp, self.path)  # a planted link at the destination is replaced, not followed
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise VersionError(f"cannot write the version history {self.path}: {exc}") from None


def check_version_name(name: str) -> str:
    """`name` when it is a plain folder name (no slash, not `.` or `..`); VersionError otherwise."""
    if not VERSION_NAME.match(name):
        raise VersionError(f"{name!r} is not a version name: letters, digits, `.`, `_`, `-`, no slashes")
    return name
