"""Triage speed: `tts-sentinel triage --since 10m` vs the seed's shell pipeline (corrected), over >= 2 GB.

Generates the three seed logs with a day of history: inference.log (100 MB) with
gzip archives, webui.log with daily plain archives, an append-only health.log; in
all about --gb GB uncompressed. Then times, in the same run, the project's triage
of the last 10 minutes and the seed's §2.3 pipeline, corrected so that it runs:

    { zcat *.log.*.gz; cat *.log *.log.<plain> ; } | awk (timestamp >= start) \\
        | grep -E "(Out of memory|invalid unicode|buffer underflow|timeout|silent for)" | sort -k1,2

(as printed, the seed's `sed -n '/$(date ...)/,$p'` never expands the date inside
single quotes, and its range would run on into every archive appended after the
current files). Prints seconds, the ratio and the number of lines each found.

    python bench/logs_triage.py [--gb 2] [--dir DIR]   (DIR keeps the data between runs)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logs_data import write_log  # noqa: E402

from tts_sentinel.loghistory.config import SEED_PATTERNS, LogFileConfig, LogsConfig  # noqa: E402
from tts_sentinel.loghistory.triage import diagnose  # noqa: E402

NOW = datetime(2024, 6, 15, 12, 0, 0)
LINES_PER_100MB = 960_000
SEED_GREP = "(Out of memory|invalid unicode|buffer underflow|timeout|silent for)"


def set_mtime(path: Path, t: datetime) -> None:
    os.utime(path, (t.timestamp(), t.timestamp()))


def generate(d: Path, gb: float) -> None:
    d.mkdir(parents=True, exist_ok=True)
    meta = d / "bench-meta.json"
    if meta.exists() and json.loads(meta.read_text()).get("gb") == gb:
        total = json.loads(meta.read_text()).get("total_bytes", 0)
        print(f"data: reusing {d} ({total / 1e9:.2f} GB of log lines)")
        return
    for p in d.iterdir():
        if p.is_file():
            p.unlink()
    t0 = time.perf_counter()
    # health.log: append-only for a week, one line every 250 ms.
    health_lines = int(2.5 * LINES_PER_100MB)
    write_log(d / "health.log", health_lines, NOW - timedelta(milliseconds=250 * health_lines), 250, seed=3)
    # webui.log: daily rename rotation, 7 kept, 50 MB a day.
    day_lines = LINES_PER_100MB // 2
    step = 86400_000 / day_lines
    for k in range(6, 0, -1):
        day = NOW - timedelta(days=k)
        p = d / f"webui.log.{day:%Y-%m-%d}"
        last = write_log(p, day_lines, day - timedelta(days=1), step, seed=10 + k)
        set_mtime(p, last)
    write_log(d / "webui.log", day_lines, NOW - timedelta(milliseconds=step * day_lines), step, seed=20)
    # inference.log: 100 MB size rotation with gzip archives, 5 ms between lines; as many
    # archives as it takes to reach `gb` of uncompressed log lines in all.
    per_file = timedelta(milliseconds=5 * LINES_PER_100MB)
    current_start = NOW - per_file
    write_log(d / "inference.log", LINES_PER_100MB, current_start, 5, seed=30)
    total = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
    archives = []
    k = 0
    while total < gb * 1e9:
        k += 1
        p = d / f"inference.log.{k}"
        last = write_log(p, LINES_PER_100MB, current_start - per_file * k, 5, seed=30 + k)
        archives.append((p, last))
        total += p.stat().st_size
    n_archives = len(archives)
    gz_procs = []
    for p, _ in archives:
        gz_procs.append(subprocess.Popen(["gzip", "-6", "-f", str(p)]))
        if len(gz_procs) >= 2:
            gz_procs.pop(0).wait()
    for proc in gz_procs:
        proc.wait()
    for p, last in archives:
        set_mtime(p.with_name(p.name + ".gz"), last)
    meta.write_text(json.dumps({"gb": gb, "total_bytes": total, "archives": n_archives}))
    gz_mb = sum(p.stat().st_size for p in d.glob("*.gz")) / 1e6
    print(f"data: generated in {time.perf_counter() - t0:.0f} s: {total / 1e9:.2f} GB of log "
          f"lines ({n_archives} gzip archives of 100 MB, {gz_mb:.0f} MB compressed)")


def run_seed_pipeline(d: Path, since: timedelta) -> tuple[float, int]:
    start = (NOW - since).strftime("%Y-%m-%d %H:%M:%S")
    end = NOW.strftime("%Y-%m-%d %H:%M:%S,999")
    script = f"""
shopt -s extglob nullglob
cd "{d}"
{{ zcat *.log.*.gz 2>/dev/null; cat *.log *.log.!(*.gz); }} \\
  | awk -v s="{start}" -v e="{end}" 'substr($0,1,23) >= s && substr($0,1,23) <= e' \\
  | grep -E "{SEED_GREP}" | sort -k1,2 > seed-pipeline.out
"""
    t0 = time.perf_counter()
    subprocess.run(["bash", "-c", script], check=True)
    elapsed = time.perf_counter() - t0
    with open(d / "seed-pipeline.out", "rb") as f:
        n = sum(1 for _ in f)
    return elapsed, n


def run_project(d: Path, since: timedelta) -> tuple[float, dict]:
    config = LogsConfig(
        files=[
            LogFileConfig(name="webui", path=d / "webui.log", rotation="rename"),
            LogFileConfig(name="inference", path=d / "inference.log", rotation="size"),
            LogFileConfig(name="health", path=d / "health.log", rotation="none"),
        ],
        patterns=list(SEED_PATTERNS),
    )
    t0 = time.perf_counter()
    result = diagnose(config, since.total_seconds(), now=NOW)
    return time.perf_counter() - t0, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.0, help="uncompressed size of all logs (default 2)")
    ap.add_argument("--dir", type=Path, default=None, help="data directory, kept for the next run")
    ap.add_argument("--since-minutes", type=float, default=10)
    args = ap.parse_args()
    d = args.dir or Path(tempfile.mkdtemp(prefix="tts-bench-triage-"))
    since = timedelta(minutes=args.since_minutes)
    try:
        generate(d, args.gb)
        for p in sorted(d.iterdir()):  # warm the page cache for both sides alike
            subprocess.run(["cat", str(p)], stdout=subprocess.DEVNULL, check=False)
        seed_s, seed_n = run_seed_pipeline(d, since)
        ours_s, result = run_project(d, since)
        print(f"window: last {args.since_minutes:g} minutes before {NOW}")
        print(f"{'tool':<44} {'seconds':>8} {'lines':>7} {'MB read':>9}")
        print(f"{'seed pipeline (corrected): zcat|cat|awk|grep|sort':<44} {seed_s:8.2f} {seed_n:7d} "
              f"{'all':>9}")
        print(f"{'tts-sentinel triage (diagnose)':<44} {ours_s:8.3f} {result['event_count']:7d} "
              f"{result['bytes_read'] / 1e6:9.1f}")
        print(f"speed-up: {seed_s / ours_s:.0f}x; files skipped by mtime: {result['files_skipped']}; "
              f"root cause: {(result['root_cause'] or {}).get('pattern')}")
        if seed_n != result["event_count"]:
            print(f"NOTE: line counts differ ({seed_n} vs {result['event_count']})")
    finally:
        if args.dir is None:
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
