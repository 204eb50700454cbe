"""Where each log was read up to, saved atomically so a restart neither loses nor recounts lines."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_FILE = "log-offsets.json"
VERSION = 1


class OffsetStore:
    """A JSON file in `state_dir`: {"version": 1, "logs": {log name: source state}}.

    Written to a temporary file in the same directory, fsynced, then renamed over the
    old one: a crash leaves either the old or the new state, never half of one.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / STATE_FILE

    def load(self) -> dict[str, dict[str, Any]]:
        """Saved states by log name; an unreadable or foreign file is reported and ignored."""
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read saved log offsets (%s); starting as on a first run.", self.path, exc)
            return {}
        logs = data.get("logs") if isinstance(data, dict) else None
        if not isinstance(logs, dict) or data.get("version") != VERSION:
            log.warning("%s: saved log offsets have an unknown format; starting as on a first run.",
                        self.path)
            return {}
        return {k: v for k, v in logs.items() if isinstance(v, dict)}

    def save(self, states: dict[str, dict[str, Any]]) -> None:
        """Replace the saved states atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"version": VERSION, "logs": states}, sort_keys=True).encode()
        fd, tmp = tempfile.mkstemp(prefix=".log-offsets.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        try:  # make the rename itself durable
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
