"""A target's model versions: where they live, and the history of switches between them.

The history is a small JSON file (versioned format, written atomically, mode 0600): every switch
with its model id, weights sha256 and commit (and, for a Docker target, the container's image),
whether the version passed validation, the versions rolled back from (never chosen again), the
canary protection with its expiry, and a Docker rollback in progress (so a receiver killed in the
middle of one finishes it instead of starting a second). It is the record the `rollback` tier
reads to find the previous known-good version. Format 1 (before images) is read as it is;
everything is written as format 2.
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

FORMAT = 2
READABLE = (1, 2)  # format 1: the same document without `image` and `rollback_in_progress`
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
    # Docker targets: {"id": "sha256:...", "ref": "repo:tag"}, the immutable image id and the tag it ran as.
    image: dict[str, str] | None = None

    @classmethod
    def from_json(cls, raw: Any, path: Path) -> VersionRecord:
        """A record read from the history file; VersionError (not a TypeError) when its shape is wrong."""
        if not isinstance(raw, dict) or not isinstance(raw.get("version"), str):
            raise VersionError(f"version history {path} holds a switch that is not a record: {str(raw)[:120]}")
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise VersionError(f"version history {path}: a switch has unknown fields {unknown}; "
                               "written by a newer tts-sentinel? fix or move the file")
        image = raw.get("image")
        if image is not None and not (isinstance(image, dict) and isinstance(image.get("id"), str)):
            raise VersionError(f"version history {path}: switch {raw['version']} has an image without an id")
        return cls(**raw)


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
            return {"format": FORMAT, "switches": [], "bad": [], "protected": None, "rollback_in_progress": None}
        except OSError as exc:
            raise VersionError(f"cannot read the version history {self.path}: {exc} (a symlink is refused)") from None
        with os.fdopen(fd, encoding="utf-8") as f:
            try:
                doc = json.load(f)
            except ValueError as exc:
                raise VersionError(f"version history {self.path} is not JSON ({exc}); fix or move it") from None
        if not isinstance(doc, dict) or doc.get("format") not in READABLE:
            found = doc.get("format") if isinstance(doc, dict) else "?"
            raise VersionError(f"version history {self.path} has format {found}; this program reads formats "
                               f"{', '.join(map(str, READABLE))}")
        doc["format"] = FORMAT  # written back as the current format
        doc.setdefault("switches", [])
        doc.setdefault("bad", [])
        doc.setdefault("protected", None)
        doc.setdefault("rollback_in_progress", None)
        return doc

    def switches(self) -> list[VersionRecord]:
        """Every recorded switch, oldest first."""
        return [VersionRecord.from_json(s, self.path) for s in self.load()["switches"]]

    def previous_good(self, current: str | None, *, with_image: bool = False) -> VersionRecord | None:
        """The newest validated version other than `current` that was never rolled back from
        (with `with_image`: one whose container image is recorded, for a Docker target)."""
        bad = set(self.load()["bad"])
        for record in reversed(self.switches()):
            if record.version != current and record.validated and record.version not in bad \
                    and (record.image or not with_image):
                return record
        return None

    def version_of_image(self, image_id: str) -> str | None:
        """The newest recorded version that ran `image_id` (a Docker target's current version)."""
        for record in reversed(self.switches()):
            if record.image and record.image.get("id") == image_id:
                return record.version
        return None

    def rollback_in_progress(self) -> dict[str, Any] | None:
        """The plan of a Docker rollback that started and has not ended (a receiver killed mid-way)."""
        pending = self.load().get("rollback_in_progress")
        return pending if isinstance(pending, dict) else None

    def protection(self, now: float | None = None) -> str | None:
        """Why the current version is protected (a candidate under validation), or None once expired."""
        protected = self.load().get("protected")
        if not protected or float(protected.get("until", 0)) <= (now or time.time()):
            return None
        until = time.strftime("%H:%M:%S", time.localtime(protected["until"]))
        return f"{protected.get('why', 'canary')} (until {until})"

    # -- writing --------------------------------------------------------------------------------
    def record_switch(self, record: VersionRecord, rolled_back_from: str | None = None) -> None:
        """Append a switch; a rollback also marks the version it left as bad and ends the rollback in progress."""
        check_version_name(record.version)
        doc = self.load()
        entry = asdict(record)
        if entry["image"] is None:
            del entry["image"]  # a record without an image reads as it did in format 1
        doc["switches"].append(entry)
        if rolled_back_from and rolled_back_from not in doc["bad"]:
            doc["bad"].append(rolled_back_from)
        if rolled_back_from:
            doc["rollback_in_progress"] = None
        self._write(doc)

    def begin_rollback(self, plan: dict[str, Any]) -> None:
        """Write down a Docker rollback before its first change, so a resumed job finishes that one."""
        doc = self.load()
        doc["rollback_in_progress"] = {**plan, "since": time.time()}
        self._write(doc)

    def end_rollback(self) -> None:
        """Forget the rollback in progress (it failed and the old container was brought back)."""
        doc = self.load()
        doc["rollback_in_progress"] = None
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
