"""How a file source recognises a file: its identity (device, inode) and a fingerprint of its first bytes.

Files are tracked by identity, never by name. The first bytes tell a truncated or rewritten
file, the copy logrotate made of it, and a reused inode number from the file we read.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mod
from dataclasses import dataclass
from pathlib import Path

from tts_sentinel.loghistory.archives import rotated_generations

Identity = tuple[int, int]


def digest(head: bytes) -> str:
    """The fingerprint of a file's first bytes."""
    return hashlib.blake2b(head, digest_size=12).hexdigest()


def fingerprint(fd: int, nbytes: int) -> tuple[int, str]:
    """(length, hash) of the first `nbytes` bytes of the open file (fewer when it is shorter)."""
    head = os.pread(fd, nbytes, 0)
    return len(head), digest(head)


def fingerprint_prefix(fd: int, length: int) -> str:
    """Hash of the first `length` bytes of the open file; "" when it is shorter than that."""
    head = os.pread(fd, length, 0)
    if len(head) < length:
        return ""
    return digest(head)


def copy_of(start: bytes, head: bytes) -> bool:
    """Whether a file starting with `start` (its first len(head) bytes, fewer when it is shorter)
    is a copy of the content that began with `head`: the same bytes, or, for a copy shorter than
    the head (logrotate copied before we read the lines after it), all of it a start of the head."""
    return bool(start) and head.startswith(start)


def starts_like(fd: int, fp_len: int, fp: str, shorter: dict[int, str]) -> bool:
    """Whether the open file starts with the bytes fingerprinted by (fp_len, fp), or is shorter
    than them and all of it one of their starts that end a line (`shorter`: length -> hash)."""
    if fingerprint_prefix(fd, fp_len) == fp:
        return True
    size = os.fstat(fd).st_size
    return size < fp_len and shorter.get(size) == digest(os.pread(fd, size, 0))


@dataclass(frozen=True)
class TruncatedContent:
    """What the followed file held before a truncation: to recognise its copy and resume in it."""

    head: bytes
    consumed: int
    discarding: bool


@dataclass(frozen=True)
class KnownGeneration:
    """A rotated generation already accounted for: what it looked like when we last saw it."""

    fp_len: int
    fp: str
    size: int
    mtime_ns: int


def known_generation(fd: int, fingerprint_bytes: int) -> KnownGeneration:
    """The open file as it is now: its fingerprint, size and mtime."""
    fp_len, fp = fingerprint(fd, fingerprint_bytes)
    st = os.fstat(fd)
    return KnownGeneration(fp_len, fp, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Generation:
    """A plain rotated file next to the log, as one scan saw it."""

    ident: Identity
    path: Path
    size: int
    mtime_ns: int


def plain_generations(path: Path) -> list[Generation]:
    """The uncompressed rotated generations of the log at `path` that are regular files, as they are now."""
    out = []
    for p in rotated_generations(path, compressed=False):
        try:
            st = os.stat(p)
        except OSError:
            continue
        if stat_mod.S_ISREG(st.st_mode):
            out.append(Generation((st.st_dev, st.st_ino), p, st.st_size, st.st_mtime_ns))
    return out


def regular_identity(path: Path) -> Identity | None:
    """Identity of the regular file at `path`; None when there is none (or it cannot be stat'ed)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat_mod.S_ISREG(st.st_mode):
        return None
    return (st.st_dev, st.st_ino)
