"""What a file source saves so that a restart resumes exactly where the previous process stopped.

One JSON-able dict per log (OffsetStore keeps them together):
`{"path": ..., "cur": {dev, ino, offset, fp_len, fp, fp_lines, discarding} or None,
"known": [[dev, ino, fp_len, fp, size, mtime_ns], ...]}`.

`fp_lines` ([[length, hash], ...]) fingerprints the head's shorter starts that end a line: a
copytruncate copy made while we were down can be shorter than the head (logrotate copied before
we read the lines after it), and it is recognised by one of them. Only hashes are saved, never
the log's bytes. A state without it (older versions) loads with none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts_sentinel.exporter.logs.file_identity import Identity, KnownGeneration, digest
from tts_sentinel.exporter.logs.followed_file import FollowedFile


@dataclass(frozen=True)
class SavedCursor:
    """Where the followed file was read up to, and how to recognise it."""

    ident: Identity
    offset: int
    fp_len: int
    fp: str
    discarding: bool  # inside an over-long line whose rest is skipped
    fp_lines: tuple[tuple[int, str], ...] = ()  # (length, hash) of the head's starts that end a line


def source_state(path: Path, cur: FollowedFile | None, known: dict[Identity, KnownGeneration]) -> dict[str, Any]:
    """The dict to save for the log at `path`: the followed file's cursor and the generations accounted for."""
    cursor = None
    if cur is not None:
        cursor = {
            "dev": cur.ident[0], "ino": cur.ident[1], "offset": cur.consumed(),
            "fp_len": cur.fp_len, "fp": cur.fp, "discarding": cur.assembler.discarding,
            "fp_lines": [[n, digest(cur.head[:n])] for n in line_starts(cur.head)],
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
            fp_lines=tuple((int(n), str(h)) for n, h in cur.get("fp_lines") or []),
        )
    except (KeyError, TypeError, ValueError):
        return None


def line_starts(head: bytes) -> list[int]:
    """The lengths of the head's starts that end with a newline, shorter than the head itself."""
    return [i + 1 for i, byte in enumerate(head[:-1]) if byte == 0x0A]
