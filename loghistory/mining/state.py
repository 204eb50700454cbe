"""The miners' saved state: our own versioned JSON, written atomically, readable by its owner only.

Drain3 persists itself with jsonpickle, which rebuilds arbitrary Python objects on load;
a state file anyone could edit must not be able to do that, so we write plain JSON
(`TemplateMiner.to_dict`) and rebuild the Drain3 tree from it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from tts_sentinel.loghistory.mining.miner import TemplateMiner

log = logging.getLogger(__name__)

STATE_FORMAT = "tts-sentinel-miner"
STATE_VERSION = 1


def write_private_json(path: Path, doc: dict[str, Any]) -> None:
    """Replace `path` with `doc` as JSON: temporary file (0600) in the same folder, fsync, rename.

    A crash leaves the old file or the new one, never half of one. When root replaces a file
    someone else owns (the exporter's user), the new file keeps that owner, so the exporter can
    still read what `tts-sentinel mine reject` wrote under sudo.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    try:
        owner = path.stat()
    except FileNotFoundError:
        owner = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if os.geteuid() == 0:
            ref = owner or path.parent.stat()
            os.chown(tmp, ref.st_uid, ref.st_gid)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def load_miners(path: Path, similarity: float, depth: int, max_clusters: int) -> dict[str, TemplateMiner]:
    """Saved miners by log name; a missing file is a first run, a broken or foreign one is reported and ignored."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read the saved template miner (%s); mining starts afresh.", path, exc)
        return {}
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT or doc.get("version") != STATE_VERSION:
        log.warning("%s: not a template miner state of version %s; mining starts afresh.", path, STATE_VERSION)
        return {}
    miners = {}
    for name, data in (doc.get("logs") or {}).items():
        try:
            miners[name] = TemplateMiner.from_dict(data, similarity, depth, max_clusters)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("%s: saved clusters of log %s are damaged (%s); that log starts afresh.", path, name, exc)
    return miners


def save_miners(path: Path, miners: dict[str, dict[str, Any]]) -> None:
    """Save every miner's `to_dict()` by log name (atomic, 0600)."""
    write_private_json(path, {"format": STATE_FORMAT, "version": STATE_VERSION, "logs": miners})
