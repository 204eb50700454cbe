"""The receiver's bearer token, read from its file."""

from __future__ import annotations

from pathlib import Path


def read_token(path: Path | None) -> str | None:
    """The token in `path` (whitespace stripped); raises ValueError with a sentence when unusable."""
    if path is None:
        return None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the token file {path}: {exc}") from None
    if len(token) < 16:
        raise ValueError(
            f"the token in {path} is shorter than 16 characters; generate a longer one (e.g. `openssl rand -hex 32`)"
        )
    return token
