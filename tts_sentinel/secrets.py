"""Secrets read from files: bearer tokens, and the passwords and tokens presented to supervisord,
Alertmanager, Prometheus and the Kubernetes API. Only the file's owner may read them.

A base-floor module: the receiver, the exporter's process collector and `doctor` all read the
same supervisord password file, with the same refusal of a file others can read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_secret(path: Path, what: str, min_length: int = 1, check_owner: bool = True) -> str:
    """The secret in `path` (whitespace stripped); raises ValueError with a sentence when unusable.

    A secret that group or others can read (or write) is already shared with every local user,
    so it is refused with the `chmod` that fixes it. The mode is taken from the opened file, so
    a symlink (e.g. a Kubernetes secret mount) counts by its target. `check_owner=False` is for
    a checker run as root (`doctor`), reading the file the receiver's own user owns.
    """
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            raw = f.read(4096)
    except OSError as exc:
        raise ValueError(f"cannot read the {what} file {path}: {exc}") from None
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"the {what} file {path} is not UTF-8 text; write it as plain text") from None
    if len(secret) < min_length:
        raise ValueError(
            f"the {what} in {path} is shorter than {min_length} characters; "
            + ("generate a longer one (e.g. `openssl rand -hex 32`)" if min_length > 1 else "write it into the file")
        )
    if st.st_mode & 0o077:
        raise ValueError(
            f"the {what} file {path} has mode {stat.S_IMODE(st.st_mode):04o}: group or others can read or change "
            f"it; run `chmod 600 {path}` and start again"
        )
    if check_owner and st.st_uid not in (0, os.geteuid()):
        raise ValueError(
            f"the {what} file {path} belongs to uid {st.st_uid}, not to root or this process's user "
            f"({os.geteuid()}); whoever owns it can change it: `chown {os.geteuid()} {path}`"
        )
    return secret
