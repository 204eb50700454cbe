"""Timestamps at the start of log lines, and durations as people write them (`10m`, `1h30m`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache


class LineClock:
    """Reads the timestamp at the start of a line (the seed's `2024-06-15 14:22:03,102`)."""

    def __init__(self, regex: str, fmt: str) -> None:
        self.rx = re.compile(regex.encode())
        self.fmt = fmt

    def time_of(self, line: bytes) -> datetime | None:
        """The line's timestamp, or None when it has none (a traceback line, a wrapped message)."""
        m = self.rx.match(line)
        if m is None:
            return None
        try:
            base = _parse_seconds(m.group(1).replace(b"T", b" ").decode("ascii"), self.fmt)
        except (ValueError, UnicodeDecodeError):
            return None
        frac = m.group(2) if m.re.groups >= 2 else None
        if frac:
            base = base + timedelta(microseconds=int(frac.decode().ljust(6, "0")[:6]))
        zone = ZONE.match(line, m.end())
        if zone:  # ISO 8601 with an offset (journald, docker): compare in local time like the rest
            base = base.replace(tzinfo=_zone(zone.group(1))).astimezone().replace(tzinfo=None)
        return base


# After the seconds and up to six fraction digits: more digits (docker prints nine), then the zone.
ZONE = re.compile(rb"\d*(Z|[+-]\d{2}:?\d{2})(?![\d:])")


@lru_cache(maxsize=64)
def _zone(text: bytes) -> timezone:
    if text == b"Z":
        return UTC
    sign = -1 if text[:1] == b"-" else 1
    digits = text[1:].replace(b":", b"")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


@lru_cache(maxsize=4096)
def _parse_seconds(text: str, fmt: str) -> datetime:
    # Logs repeat the same second many times; strptime is the slow part.
    return datetime.strptime(text, fmt)


def parse_duration(text: str) -> float:
    """`90s`, `10m`, `2h`, `1d`, `1h30m` -> seconds. A bare number is minutes."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text) * 60
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"cannot read duration {text!r}; write it like 90s, 10m, 2h or 1h30m")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * unit[u] for n, u in parts)
