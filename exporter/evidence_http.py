"""The exporter's evidence routes, as (status, body, content type) for the HTTP handler.

GET /evidence?since=UNIX&until=UNIX   JSON list of items (id, time, probe, cell, reasons, checks, files)
GET /evidence/ID/FILE                 one file an item lists; anything else is a 404
"""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qs

from tts_sentinel.exporter.evidence import EvidenceStore

Answer = tuple[int, bytes, str]
TEXT = "text/plain; charset=utf-8"


def evidence_answer(store: EvidenceStore, path: str, query: str) -> Answer:
    """The answer to GET `path` (/evidence or /evidence/ID/FILE, not percent-decoded) with `query`."""
    if path in ("/evidence", "/evidence/"):
        return _listing(store, query)
    parts = path.removeprefix("/evidence/").split("/")
    if len(parts) == 2:
        found = store.read_file(parts[0], parts[1])
        if found is not None:
            return 200, found[0], found[1]
    return 404, b"no such evidence file: list them with GET /evidence?since=UNIX&until=UNIX\n", TEXT


def _listing(store: EvidenceStore, query: str) -> Answer:
    args = parse_qs(query)
    bounds = []
    for name, default in (("since", 0.0), ("until", math.inf)):
        raw = args.get(name, [""])[0]
        try:
            value = float(raw) if raw else default
        except ValueError:
            value = math.nan
        if math.isnan(value):
            return 400, f"{name} must be a Unix time in seconds, got {raw[:40]!r}\n".encode(), TEXT
        bounds.append(value)
    body = json.dumps(store.items(bounds[0], bounds[1]), ensure_ascii=False).encode()
    return 200, body, "application/json"
