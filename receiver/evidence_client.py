"""The exporter's audio evidence for an incident's time window, fetched for the incident page.

GET {exporter}/evidence?since=&until= lists the items; each item's clips and plots are fetched
from /evidence/ID/FILE and inlined as data: URIs, so the page needs nothing else. Every read is
bounded (items, bytes per file, bytes in all, one deadline); an exporter that cannot be reached
gives {"unavailable": "why"} and the page says so instead of failing.
"""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

ITEM_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
# file name -> (content type of the data: URI, how its bytes must start or contain)
INLINED = {"clip.wav": ("audio/wav", b"RIFF"), "baseline.wav": ("audio/wav", b"RIFF"),
           "waveform.svg": ("image/svg+xml", b"<svg"), "f0.svg": ("image/svg+xml", b"<svg")}
MAX_LIST_BYTES = 2 * 1024 * 1024


class EvidenceClientConfig(BaseModel):
    """How much evidence one incident page may pull from the exporter."""

    model_config = ConfigDict(extra="forbid")

    timeout_seconds: float = Field(default=5.0, gt=0)
    deadline_seconds: float = Field(default=20.0, gt=0)
    max_items: int = Field(default=24, ge=1)
    max_file_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_total_bytes: int = Field(default=24 * 1024 * 1024, ge=1024)
    # Probes fail before their alert fires (rules wait `for:`): look this far before the window.
    margin_seconds: float = Field(default=600.0, ge=0)


class _TooBig(Exception):
    pass


def fetch_evidence(exporter_url: str, since: float, until: float,
                   config: EvidenceClientConfig | None = None,
                   transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """{"items": [...], "omitted": N, "unavailable": None or why, "window": {since, until}}.

    Each item is the exporter's manifest plus "inline": {file name: data URI} for its clips and
    plots (a file that was too big or malformed is left out and named in "missing").
    """
    cfg = config or EvidenceClientConfig()
    since, until = since - cfg.margin_seconds, until + cfg.margin_seconds
    out: dict[str, Any] = {"items": [], "omitted": 0, "unavailable": None,
                           "window": {"since": since, "until": until}}
    base = exporter_url.rstrip("/")
    deadline = time.monotonic() + cfg.deadline_seconds
    try:
        with httpx.Client(timeout=cfg.timeout_seconds, follow_redirects=False, transport=transport) as client:
            listing = _listing(client, f"{base}/evidence", since, until)
            chosen = _choose(listing, cfg.max_items)
            out["omitted"] = len(listing) - len(chosen)
            budget = cfg.max_total_bytes
            for item in chosen:
                inline, missing = {}, []
                for name in _listed_names(item):
                    if time.monotonic() > deadline:
                        missing.append(f"{name}: not fetched (evidence deadline of {cfg.deadline_seconds:g}s)")
                        continue
                    try:
                        data = _get(client, f"{base}/evidence/{item['id']}/{name}", min(cfg.max_file_bytes, budget))
                    except _TooBig:
                        missing.append(f"{name}: larger than the page's evidence budget")
                        continue
                    except httpx.HTTPError as exc:
                        missing.append(f"{name}: {exc.__class__.__name__}: {exc}"[:200])
                        continue
                    content_type, magic = INLINED[name]
                    if magic not in data[:512]:
                        missing.append(f"{name}: not a {content_type} file")
                        continue
                    budget -= len(data)
                    inline[name] = f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
                out["items"].append({**item, "inline": inline, "missing": missing})
    except (httpx.HTTPError, _TooBig, ValueError) as exc:
        out["unavailable"] = _why(base, exc)
    return out


def _why(base: str, exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"the exporter at {base} did not answer in time"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the exporter at {base} answered {exc.response.status_code} to /evidence (an older exporter?)"
    if isinstance(exc, httpx.HTTPError):
        return f"the exporter at {base} is unreachable ({exc.__class__.__name__}: {exc})"
    if isinstance(exc, _TooBig):
        return f"the exporter's evidence list is larger than {MAX_LIST_BYTES} bytes"
    return f"the exporter's evidence list is not valid ({exc})"


def _get(client: httpx.Client, url: str, limit: int) -> bytes:
    """The body of GET `url`, at most `limit` bytes (_TooBig beyond); raise for a non-200 status."""
    with client.stream("GET", url) as response:
        response.raise_for_status()
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise _TooBig(url)
            chunks.append(chunk)
    return b"".join(chunks)


def _listing(client: httpx.Client, url: str, since: float, until: float) -> list[dict[str, Any]]:
    body = _get(client, f"{url}?since={since:.3f}&until={until:.3f}", MAX_LIST_BYTES)
    data = json.loads(body)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list")
    return [item for item in data if isinstance(item, dict) and isinstance(item.get("id"), str)
            and ITEM_ID.match(item["id"]) and isinstance(item.get("time"), int | float)]


def _listed_names(item: dict[str, Any]) -> list[str]:
    files = item.get("files") if isinstance(item.get("files"), list) else []
    names = {f.get("name") for f in files if isinstance(f, dict)}
    return [name for name in INLINED if name in names]


def _choose(items: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """At most `limit` items: the first of each probe/cell/reasons first (how it started), then the rest."""
    ordered = sorted(items, key=lambda i: i["time"])
    seen, first, rest = set(), [], []
    for item in ordered:
        key = json.dumps([item.get("probe"), item.get("cell"), item.get("reasons")], sort_keys=True, default=str)
        (rest if key in seen else first).append(item)
        seen.add(key)
    chosen = (first + rest)[:limit]
    return sorted(chosen, key=lambda i: i["time"])
