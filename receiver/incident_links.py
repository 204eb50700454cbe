"""Signed links to one incident page, for a browser (which cannot send the receiver's bearer header).

    /incidents/ID?exp=UNIX&sig=HEX

`sig` is HMAC-SHA256 over "incident ID expires UNIX" with a link key: by default derived from
the receiver's token (HMAC of the token with a fixed context, so the link never carries the token
and a token rotation revokes every link), or read from `incident_page.link_key_file` (revoke links
without touching the token). A valid link opens that one page, read-only (GET/HEAD), until it
expires; it opens no other incident, no JSON API and no POST. The page inlines its audio and
plots, so nothing it shows needs a second credential.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs

from tts_sentinel.receiver.auth import read_secret

LINK_CONTEXT = b"tts-sentinel incident page link v1"
PAGE_PATH = re.compile(r"^/incidents/([0-9]{1,18})$")
READ_METHODS = frozenset({"GET", "HEAD"})
Verdict = Literal["absent", "ok", "invalid", "expired"]


def link_key_from_token(token: str) -> bytes:
    """The link key derived from the bearer token (one-way: a link reveals nothing of the token)."""
    return hmac.new(token.encode("utf-8"), LINK_CONTEXT, hashlib.sha256).digest()


class IncidentLinks:
    """Makes and checks signed incident-page links; with no key (receiver --insecure) links are plain paths."""

    def __init__(self, key: bytes | None, base_url: str, ttl_seconds: float) -> None:
        self.key = key
        self.base_url = base_url.rstrip("/")
        self.ttl_seconds = ttl_seconds

    @classmethod
    def for_receiver(cls, token: str | None, base_url: str, ttl_seconds: float,
                     key_file: Path | None = None) -> IncidentLinks:
        """Links of a receiver: the key from `key_file` (ValueError with a sentence if unusable), else the token."""
        if key_file is not None:
            key = read_secret(key_file, "incident link key", min_length=16).encode("utf-8")
        else:
            key = link_key_from_token(token) if token else None
        return cls(key, base_url, ttl_seconds)

    def signature(self, incident_id: int, expires: int) -> str:
        """The hex HMAC of one incident and expiry time (empty without a key)."""
        if self.key is None:
            return ""
        message = f"incident {int(incident_id)} expires {int(expires)}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def path(self, incident_id: int, now: float | None = None) -> str:
        """`/incidents/ID?exp=..&sig=..`, valid for ttl_seconds from `now`."""
        if self.key is None:
            return f"/incidents/{int(incident_id)}"
        expires = int((time.time() if now is None else now) + self.ttl_seconds)
        return f"/incidents/{int(incident_id)}?exp={expires}&sig={self.signature(incident_id, expires)}"

    def url(self, incident_id: int, now: float | None = None) -> str:
        """The absolute link a person opens (base URL + signed path)."""
        return self.base_url + self.path(incident_id, now)

    def check(self, path: str, query: str, now: float | None = None) -> Verdict:
        """Whether `path?query` is a valid link: absent (no sig), ok, invalid (wrong path, id or sig), expired.

        The signature is compared in constant time before the expiry is looked at, so "expired"
        is only said of a link this receiver made.
        """
        args = parse_qs(query, keep_blank_values=True)
        if "sig" not in args and "exp" not in args:
            return "absent"
        match = PAGE_PATH.match(path)
        sigs, exps = args.get("sig", []), args.get("exp", [])
        if self.key is None or match is None or len(sigs) != 1 or len(exps) != 1 or not exps[0].isdigit():
            return "invalid"
        expires = int(exps[0][:20])
        expected = self.signature(int(match.group(1)), expires).encode("ascii")
        if not hmac.compare_digest(sigs[0].encode("utf-8", "replace"), expected):
            return "invalid"
        if expires < (time.time() if now is None else now):
            return "expired"
        return "ok"
