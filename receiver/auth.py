"""The receiver's bearer token, read from its file (which only its owner may read)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_token(path: Path | None) -> str | None:
    """The token in `path` (whitespace stripped); raises ValueError with a sentence when unusable.

    A token that group or others can read (or write) is already shared with every local user
    who can post to the receiver, so it is refused with the `chmod` that fixes it. The mode is
    taken from the opened file, so a symlink (e.g. a Kubernetes secret mount) counts by its target.
    """
    if path is None:
        return None
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            raw = f.read(4096)
    except OSError as exc:
        raise ValueError(f"cannot read the token file {path}: {exc}") from None
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"the token file {path} is not UTF-8 text; write the token as plain text") from None
    if len(token) < 16:
        raise ValueError(
            f"the token in {path} is shorter than 16 characters; generate a longer one (e.g. `openssl rand -hex 32`)"
        )
    if st.st_mode & 0o077:
        raise ValueError(
            f"the token file {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others can read or change "
            f"it; run `chmod 600 {path}` and start again"
        )
    if st.st_uid not in (0, os.geteuid()):
        raise ValueError(
            f"the token file {path} belongs to uid {st.st_uid}, not to root or the receiver's user "
            f"({os.geteuid()}); whoever owns it can change the token: `chown {os.geteuid()} {path}`"
        )
    return token
