"""Credentials never ride in URLs: refuse them in config, strip them from anything we write out.

A URL's userinfo (`http://user:password@host/`) is copied wherever the URL goes: an error
message, a log line, the journal, an API answer, a page to on-call. Config refuses such URLs
(`has_userinfo`); `strip_userinfo` is the one helper every exit applies to text that may still
carry one (an old journal, a proxy URL in an exception, an alert's own annotations).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# scheme://userinfo@ : the userinfo runs to the last '@' before the authority ends ('/', '?', '#'), as
# urlsplit reads it, and never past whitespace, a double quote or a backslash (the end of a JSON
# string or of a word in a sentence). Stripping a little too much is safe; too little is a leak.
_USERINFO = re.compile(r'(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s"\\<>]*@')


def strip_userinfo(text: str) -> str:
    """`text` with the userinfo of every URL in it removed (`http://u:p@h/x` -> `http://h/x`)."""
    if "@" not in text:
        return text
    return _USERINFO.sub(r"\1", text)


def has_userinfo(url: str) -> bool:
    """True when `url` names a user or a password before its host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "@" in url
    return "@" in parts.netloc
