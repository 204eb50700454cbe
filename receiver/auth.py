"""The receiver's bearer token, read like every other secret (`tts_sentinel.secrets.read_secret`)."""

from __future__ import annotations

import hmac
from pathlib import Path

from tts_sentinel.secrets import read_secret

__all__ = ["read_secret", "read_token", "token_matches"]


def read_token(path: Path | None, check_owner: bool = True) -> str | None:
    """The receiver's bearer token in `path` (None when no file is configured); ValueError when unusable."""
    if path is None:
        return None
    return read_secret(path, "token", min_length=16, check_owner=check_owner)


def token_matches(header: str, expected: bytes) -> bool:
    """True when an Authorization header value carries the expected bearer token."""
    scheme, _, given = header.partition(" ")
    # compare_digest on equal-type bytes: the time does not depend on where they differ.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)
