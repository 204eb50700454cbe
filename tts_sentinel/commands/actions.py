"""`tts-sentinel actions`: the remediation journal as a table (or JSON)."""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tts_sentinel.config import ConfigError, load_config
from tts_sentinel.printable import printable, printable_json
from tts_sentinel.receiver.journal import Journal

COLUMNS = ("id", "when", "target", "tier", "status", "verify", "secs", "incident", "root cause", "why / note")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel actions`."""
    parser.add_argument("--config", help="YAML config file (default: $TTS_SENTINEL_CONFIG, else defaults)")
    parser.add_argument("--journal", type=Path, help="journal file (default: receiver.journal_path)")
    parser.add_argument("--url", help="read GET URL/actions of a running receiver instead of the file")
    parser.add_argument("--token-file", type=Path, help="bearer token for --url (default: receiver.token_file)")
    parser.add_argument("--limit", type=int, default=30, help="newest N rows (default 30)")
    parser.add_argument("--target", help="only this target")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def fetch(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Journal rows, newest first, from the receiver's HTTP API or straight from the SQLite file."""
    if args.url:
        params: dict[str, Any] = {"limit": args.limit}
        if args.target:
            params["target"] = args.target
        token_file = args.token_file or load_config(args.config).receiver.token_file
        headers = {}
        if token_file is not None:
            headers["Authorization"] = "Bearer " + Path(token_file).read_text(encoding="utf-8").strip()
        resp = httpx.get(args.url.rstrip("/") + "/actions", params=params, headers=headers, timeout=10)
        resp.raise_for_status()
        return resp.json()
    path = args.journal or load_config(args.config).receiver.journal_path
    if not Path(path).exists():
        raise FileNotFoundError(f"no journal at {path}; has the receiver run with this config?")
    journal = Journal(path)
    try:
        if args.json:
            return [job.as_dict() for job in journal.jobs(limit=args.limit, target=args.target)]
        return journal.job_summaries(limit=args.limit, target=args.target)  # the table's columns only
    finally:
        journal.close()


def row_cells(job: dict[str, Any]) -> list[str]:
    """One journal row as the table's cells, control characters from alerts escaped."""
    when = datetime.fromtimestamp(job["created_at"]).strftime("%m-%d %H:%M:%S")
    verification = job.get("verification") or {}
    verify = "" if not verification else ("ok" if verification.get("success") else "FAIL")
    secs = ""
    if job.get("started_at") and job.get("finished_at"):
        secs = f"{job['finished_at'] - job['started_at']:.1f}"
    status = job["status"] + (" (dry)" if job.get("dry_run") and job["status"] != "dry_run" else "")
    why = job.get("note") or job.get("reason") or ""
    if job.get("escalation"):
        why = f"{job['escalation']}; {why}"
    root = ((job.get("triage") or {}).get("root_cause") or {}).get("pattern") or ""
    incident = f"{job['incident_id']}:{job.get('family') or ''}" if job.get("incident_id") else ""
    cells = [str(job["id"]), when, job["target"], job["tier"], status, verify, secs, incident, root,
             why.replace("\n", " ")]
    return [printable(cell) for cell in cells]


def render_table(jobs: list[dict[str, Any]], width: int) -> str:
    """A plain-text table that fits `width` columns (the last column is cut)."""
    rows = [list(COLUMNS)] + [row_cells(j) for j in jobs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    fixed = sum(widths) + 2 * (len(widths))
    last = max(20, width - fixed)
    lines = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)]
        tail = r[-1] if len(r[-1]) <= last else r[-1][: last - 1] + "…"
        lines.append("  ".join(cells + [tail]).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the journal; 2 with a sentence when it cannot be read."""
    try:
        jobs = fetch(args)
    except (OSError, sqlite3.Error, httpx.HTTPError, ValueError, ConfigError) as exc:
        print(f"actions: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(printable_json(json.dumps(jobs, indent=1, ensure_ascii=False, default=str)))
        return 0
    if not jobs:
        print("the journal is empty")
        return 0
    print(render_table(jobs, shutil.get_terminal_size((120, 24)).columns))
    return 0
