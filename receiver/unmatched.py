"""Alerts no target matches: counted, never acted on, never stored one row each.

Whoever can post to Alertmanager decides how many there are and what they are called, so both
the metric and the journal are bounded: the first MAX_ALERTNAMES distinct names keep their own
series and rows, later ones fold into `other`; the journal keeps one row per name and hour with
a count and the labels of the latest one.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from prometheus_client import Counter

from tts_sentinel.receiver.journal import Journal
from tts_sentinel.receiver.payload import WebhookAlert
from tts_sentinel.userinfo import strip_userinfo

MAX_ALERTNAMES = 100
OTHER = "other"
EXAMPLE_CHARS = 2048  # the labels kept as an example, at most


class UnmatchedAlerts:
    """Counts unmatched alerts by alertname (bounded) in the metric and the journal's hourly rows."""

    def __init__(self, journal: Journal, counter: Counter, max_names: int = MAX_ALERTNAMES) -> None:
        self.journal = journal
        self.counter = counter
        self.max_names = max_names
        self._names: set[str] = set()
        self._lock = threading.Lock()

    def name_for(self, alertname: str) -> str:
        """The alertname as counted: itself while fewer than `max_names` names were seen, else `other`."""
        with self._lock:
            if alertname in self._names:
                return alertname
            if len(self._names) < self.max_names:
                self._names.add(alertname)
                return alertname
        return OTHER

    def record(self, alerts: list[WebhookAlert], now: float | None = None) -> None:
        """Count these alerts in one journal transaction (raises sqlite3.Error when it cannot)."""
        if not alerts:
            return
        now = time.time() if now is None else now
        counts: dict[str, list[Any]] = {}
        for alert in alerts:
            name = self.name_for(alert.labels.get("alertname", ""))
            entry = counts.setdefault(name, [0, alert.labels])
            entry[0] += 1
            entry[1] = alert.labels
        hour = int(now // 3600) * 3600
        rows = [(hour, name, n, now, now, _example(labels)) for name, (n, labels) in counts.items()]
        with self.journal.transaction() as j:
            for row in rows:  # at most max_names + 1
                j.execute(
                    "INSERT INTO unmatched_alerts(hour, alertname, count, first_seen, last_seen, example)"
                    " VALUES (?,?,?,?,?,?) ON CONFLICT(hour, alertname) DO UPDATE SET"
                    " count = count + excluded.count, last_seen = excluded.last_seen, example = excluded.example",
                    row,
                )
        for name, (n, _labels) in counts.items():
            self.counter.labels(alertname=name).inc(n)

    def rows(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest hours first: `hour` (epoch seconds), `alertname`, `count`, `first_seen`, `last_seen`, `example`."""
        got = self.journal.execute(
            "SELECT hour, alertname, count, first_seen, last_seen, example FROM unmatched_alerts"
            " ORDER BY hour DESC, count DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [{**dict(r), "example": json.loads(r["example"])} for r in got]


def _example(labels: dict[str, str]) -> str:
    """The labels of one alert as JSON, cut label by label to EXAMPLE_CHARS (always valid JSON)."""
    kept: dict[str, str] = {}
    size = 2
    for name, value in labels.items():
        size += len(name) + min(len(value), 200) + 8
        if size > EXAMPLE_CHARS:
            kept["…"] = "more labels not kept"
            break
        kept[name] = value if len(value) <= 200 else value[:199] + "…"
    return strip_userinfo(json.dumps(kept, ensure_ascii=False))
