"""Find the rotated generations of a log file: `name.1`, `name.2.gz`, `name.2024-06-15`, `name-20240615`."""

from __future__ import annotations

import os
from pathlib import Path

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip")


def is_compressed(path: Path | str) -> bool:
    """True when the file name says it is a compressed archive."""
    return str(path).endswith(COMPRESSED_SUFFIXES)


def rotated_generations(path: Path, *, compressed: bool = True) -> list[Path]:
    """Files next to `path` whose name is `path`'s name plus a `.` or `-` suffix.

    Compressed archives are included only when `compressed` is True. A missing
    directory yields an empty list.
    """
    base = path.name
    out: list[Path] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return out
    for entry in entries:
        name = entry.name
        if name == base or not (name.startswith(base + ".") or name.startswith(base + "-")):
            continue
        if not compressed and name.endswith(COMPRESSED_SUFFIXES):
            continue
        if name.endswith((".tmp", ".swp", ".lock")):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
        except OSError:
            continue
        out.append(Path(entry.path))
    return out
