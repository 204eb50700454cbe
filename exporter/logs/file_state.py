"""What a file source saves so that a restart resumes exactly where the previous process stopped.

One JSON-able dict per log (OffsetStore keeps them together):
`{"path": ..., "cur": {dev, ino, offset, fp_len, fp, discarding} or None,
"known": [[dev, ino, fp_len, fp, size, mtime_ns], ...]}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts_sentinel.exporter.logs.file_identity import Identity, KnownGeneration
from tts_sentinel.exporter.logs.followed_file import FollowedFile


@dataclass(frozen=True)
class SavedCursor:
    """Where the followed file was read up to, and how to recognise it."""

    ident: Identity
    offset: int
    fp_len: int
    fp: str
    discarding: bool  # inside an over-long line whose rest is skipped


def source_state(path: Path, cur: FollowedFile | None, known: dict[Identity, KnownGeneration]) -> dict[str, Any]:
    """The dict to save for the log at `path`: the followed file's cursor and the generations accounted for."""
    cursor = None
    if cur is not None:
        cursor = {
            "dev": cur.ident[0], "ino": cur.ident[1], "offset": cur.consumed(),
            "fp_len": cur.fp_len, "fp": cur.fp, "discarding": cur.assembler.discarding,
        }
    generations = [[*ident, k.fp_len, k.fp, k.size, k.mtime_ns] for ident, k in sorted(known.items())]
    return {"path": str(path), "cur": cursor, "known": generations}


def load_known(saved: dict[str, Any]) -> dict[Identity, KnownGeneration]:
    """The generations a saved state accounted for; a damaged entry is dropped (that generation is re-read)."""
    out: dict[Identity, KnownGeneration] = {}
    for item in saved.get("known", []):
        try:
            dev, ino, fp_len, fp, size, mtime_ns = item
            out[(int(dev), int(ino))] = KnownGeneration(int(fp_len), str(fp), int(size), int(mtime_ns))
        except (TypeError, ValueError):
            continue
    return out


def load_cursor(cur: dict[str, Any]) -> SavedCursor | None:
    """The saved cursor of the followed file; None when it is damaged."""
    try:
        return SavedCursor(
            ident=(int(cur["dev"]), int(cur["ino"])),
            offset=int(cur.get("offset", 0)),
            fp_len=int(cur.get("fp_len", 0)),
            fp=str(cur.get("fp", "")),
            discarding=bool(cur.get("discarding")),
        )
    except (KeyError, TypeError, ValueError):
        return None
