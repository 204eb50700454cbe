"""`tts-sentinel triage --since 10m`: what happened in the last minutes, and its root cause.

The seed's one-liner (zcat | cat | sed | grep | sort | head) reads every archive in
full and its sed range never matches as written. Here each log's current file and
rotated generations (plain and .gz) are read only where the window can be: a plain
file is entered by binary search on its timestamps, an archive last written before
the window starts is skipped by its modification time. Matching lines are merged,
sorted by time, and cause -> effect rules from the config name the root cause.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from tts_sentinel.loghistory.archives import is_compressed, rotated_generations
from tts_sentinel.loghistory.config import CauseRuleConfig, LogCommandConfig, LogsConfig
from tts_sentinel.loghistory.scanner import CompiledPattern, compile_pattern

BLOCK = 4 * 1024 * 1024
# Binary search stops when the range is this small and scans forward from there.
SEEK_GRANULE = 64 * 1024
SEEK_LOOKAHEAD = 1024 * 1024


# ----- timestamps -------------------------------------------------------------------


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


# ----- reading one file -------------------------------------------------------------


@dataclass
class Event:
    """One matching line in the window."""

    time: datetime
    log: str
    file: str
    pattern: str
    line: str

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(timespec="milliseconds"), "log": self.log, "file": self.file,
                "pattern": self.pattern, "line": self.line}


@dataclass
class ReadReport:
    """What triage read and skipped, and what went wrong, for the verdict's footnote."""

    files_read: int = 0
    bytes_read: int = 0
    files_skipped: int = 0
    warnings: list[str] = field(default_factory=list)


class Progress:
    """A progress bar on stderr, shown only on a terminal and only once a run takes over a second."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.enabled = enabled
        self.started = time.monotonic()
        self.shown = False
        self._last = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < 1.0 or now - self._last < 0.1:
            return
        self._last = now
        frac = min(1.0, self.done / self.total)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\rtriage [{bar:<30}] {frac:6.1%} {self.done / 1e6:,.0f} MB")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def _first_line_start_at_or_after(f: BinaryIO, pos: int) -> int:
    if pos == 0:
        return 0
    f.seek(pos - 1)
    while True:
        chunk = f.read(SEEK_GRANULE)
        if not chunk:
            return -1
        nl = chunk.find(b"\n")
        if nl >= 0:
            return f.tell() - len(chunk) + nl + 1


def _time_at(f: BinaryIO, pos: int, end: int, clock: LineClock) -> datetime | None:
    """Timestamp of the first timestamped line starting at or after `pos`.

    None when there is none before `end` or within SEEK_LOOKAHEAD bytes (a long traceback):
    the search then keeps the lower half, which costs reading more, never missing lines.
    """
    start = _first_line_start_at_or_after(f, pos)
    end = min(end, pos + SEEK_LOOKAHEAD)
    while 0 <= start < end:
        f.seek(start)
        line = f.readline(4096)
        t = clock.time_of(line)
        if t is not None:
            return t
        if not line:
            return None
        start = f.tell() if line.endswith(b"\n") else _first_line_start_at_or_after(f, f.tell())
    return None


def seek_window_start(f: BinaryIO, size: int, start: datetime, clock: LineClock) -> int:
    """Offset of a line start at or before the first line stamped >= `start` (binary search)."""
    lo, hi = 0, size
    while hi - lo > SEEK_GRANULE:
        mid = (lo + hi) // 2
        t = _time_at(f, mid, hi, clock)
        if t is not None and t < start:
            lo = mid
        else:
            hi = mid
    first = _first_line_start_at_or_after(f, lo)
    return first if first >= 0 else lo


class DamagedArchive(Exception):
    """A compressed archive that ends early or holds something that is not gzip."""


def _gunzip_chunks(f: BinaryIO, progress: Progress) -> Iterator[bytes]:
    """Decompressed data of a (multi-member) gzip file, chunk by chunk.

    Unlike gzip.GzipFile.read, everything before a damaged spot is yielded before the error.
    """
    d = zlib.decompressobj(wbits=31)
    fed = False  # whether the current member has started
    while True:
        raw = f.read(1024 * 1024)
        if not raw:
            break
        progress.advance(len(raw))
        while raw:
            fed = True
            try:
                out = d.decompress(raw)
            except zlib.error as exc:
                raise DamagedArchive(f"not valid gzip data ({exc})") from None
            if out:
                yield out
            if d.eof:
                raw = d.unused_data
                d = zlib.decompressobj(wbits=31)  # the next member of a concatenated archive
                fed = False
            else:
                raw = b""
    if fed and not d.eof:
        tail = d.flush()
        if tail:
            yield tail
        raise DamagedArchive("it ends in the middle of the compressed data (truncated)")


def _plain_chunks(f: BinaryIO, progress: Progress) -> Iterator[bytes]:
    while True:
        data = f.read(BLOCK)
        if not data:
            return
        progress.advance(len(data))
        yield data


def _blocks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Whole-line blocks of a stream of chunks."""
    pending = b""
    for data in chunks:
        data = pending + data
        last = data.rfind(b"\n")
        if last < 0:
            pending = data
            continue
        pending = data[last + 1 :]
        yield data[: last + 1]
    if pending:
        yield pending + b"\n"


def _events_in_block(
    block: bytes, patterns: list[CompiledPattern], clock: LineClock, start: datetime, end: datetime,
    log: str, file: str, last_time: datetime | None,
) -> tuple[list[Event], datetime | None]:
    """Matching lines of one block inside [start, end]; lines without a timestamp take the previous one."""
    hits: dict[int, tuple[int, str]] = {}
    for p in patterns:
        lit = p.literal
        pos = 0
        while True:
            if lit is not None:
                j = block.find(lit, pos)
                if j < 0:
                    break
            else:
                m = p.regex.search(block, pos)
                if m is None:
                    break
                j = m.start()
            ls = block.rfind(b"\n", 0, j) + 1
            le = block.find(b"\n", j)
            if p.regex.search(block, ls, le):
                hits.setdefault(ls, (le, p.name))
            pos = le + 1
    events = []
    for ls in sorted(hits):
        le, name = hits[ls]
        line = block[ls:le]
        t = clock.time_of(line) or _time_before(block, ls, clock) or last_time
        if t is None or t < start or t > end:
            continue
        events.append(Event(t, log, file, name, line.rstrip(b"\r").decode("utf-8", "replace")))
    tail_time = _time_before(block, len(block), clock) or last_time
    return events, tail_time


def _time_before(block: bytes, pos: int, clock: LineClock, max_lines: int = 200) -> datetime | None:
    """Timestamp of the nearest timestamped line before `pos` in the block (for traceback lines)."""
    end = pos - 1 if pos > 0 else 0
    for _ in range(max_lines):
        if end <= 0:
            return None
        ls = block.rfind(b"\n", 0, end) + 1
        t = clock.time_of(block[ls:end])
        if t is not None:
            return t
        end = ls - 1
    return None


# ----- the whole window -------------------------------------------------------------


@dataclass
class Window:
    start: datetime
    end: datetime


def _candidates(config: LogsConfig) -> list[tuple[str, Path]]:
    out = []
    for f in config.files:
        gens = sorted(rotated_generations(f.path, compressed=True), key=lambda p: _mtime(p) or 0)
        out.extend((f.name, p) for p in gens)
        out.append((f.name, f.path))
    return out


def _mtime(p: Path) -> float | None:
    try:
        return p.stat().st_mtime
    except OSError:
        return None


def collect_events(
    config: LogsConfig, window: Window, show_progress: bool = False
) -> tuple[list[Event], ReadReport]:
    """Every line of every configured log (current and rotated) in the window that matches a pattern."""
    report = ReadReport()
    clock = LineClock(config.triage.timestamp_regex, config.triage.timestamp_format)
    compiled = {p.name: compile_pattern(p.name, p.regex) for p in config.all_patterns()}
    by_log = {f.name: [compiled[p.name] for p in config.patterns_for(f.name)] for f in config.files}
    start_ts = window.start.timestamp()
    todo: list[tuple[str, Path, int]] = []
    for log, path in _candidates(config):
        try:
            st = path.stat()
        except FileNotFoundError:
            if not is_compressed(path):
                report.warnings.append(f"{path}: no such file (log {log}); is the path in the config right?")
            continue
        except OSError as exc:
            report.warnings.append(f"{path}: cannot read ({exc.strerror}); skipped.")
            continue
        # Last written before the window opened: nothing in it can be inside the window.
        if st.st_mtime < start_ts - 1:
            report.files_skipped += 1
            continue
        todo.append((log, path, st.st_size))
    progress = Progress(sum(s for _, _, s in todo), show_progress)
    events: list[Event] = []
    try:
        for log, path, _size in todo:
            events.extend(_read_file(log, path, by_log[log], clock, window, progress, report))
        for cmd in config.commands:
            if cmd.history_argv:
                patterns = [compiled[p.name] for p in config.patterns_for(cmd.name)]
                events.extend(_read_command_history(cmd, patterns, clock, window, progress, report))
    finally:
        progress.close()
    events.sort(key=lambda e: e.time)
    return events, report


def _read_command_history(
    cmd: LogCommandConfig, patterns: list[CompiledPattern], clock: LineClock, window: Window,
    progress: Progress, report: ReadReport,
) -> list[Event]:
    """Run the command's history argv (no shell) and scan what it prints like a file."""
    since_seconds = str(max(1, math.ceil((window.end - window.start).total_seconds())))
    since_local = window.start.strftime("%Y-%m-%d %H:%M:%S")
    argv = [a.replace("{since_seconds}", since_seconds).replace("{since_local}", since_local)
            for a in cmd.history_argv]
    events: list[Event] = []
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if cmd.include_stderr else subprocess.DEVNULL, start_new_session=True,
        )
    except OSError as exc:
        report.warnings.append(f"log {cmd.name}: cannot run {argv[0]} ({exc.strerror or exc}); skipped.")
        return events
    timer = threading.Timer(cmd.history_timeout_seconds, _kill_group, args=(proc,))
    timer.start()
    try:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()

        def chunks() -> Iterator[bytes]:
            while data := os.read(fd, 1024 * 1024):
                progress.advance(len(data))
                yield data

        report.files_read += 1
        last_time = None
        for block in _blocks(chunks()):
            report.bytes_read += len(block)
            found, last_time = _events_in_block(
                block, patterns, clock, window.start, window.end, cmd.name, f"command {argv[0]}", last_time
            )
            events.extend(found)
    finally:
        timer.cancel()
        proc.stdout.close()  # type: ignore[union-attr]
        rc = proc.wait()
    if rc != 0:
        why = "timed out" if rc == -signal.SIGKILL else f"exited with status {rc}"
        report.warnings.append(f"log {cmd.name}: history command {argv[0]} {why}; its lines may be incomplete.")
    return events


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read_file(
    log: str, path: Path, patterns: list[CompiledPattern], clock: LineClock, window: Window,
    progress: Progress, report: ReadReport,
) -> list[Event]:
    events: list[Event] = []
    compressed = path.name.endswith(".gz")
    if is_compressed(path) and not compressed:
        report.warnings.append(f"{path}: only .gz archives are read; skipped.")
        return events
    try:
        with open(path, "rb") as f:
            if compressed:
                chunks = _gunzip_chunks(f, progress)
            else:
                size = os.fstat(f.fileno()).st_size
                offset = seek_window_start(f, size, window.start, clock)
                f.seek(offset)
                progress.advance(offset)
                chunks = _plain_chunks(f, progress)
            report.files_read += 1
            last_time = None
            for block in _blocks(chunks):
                report.bytes_read += len(block)
                found, last_time = _events_in_block(
                    block, patterns, clock, window.start, window.end, log, path.name, last_time
                )
                events.extend(found)
    except DamagedArchive as exc:
        # Keep what was read before the damage, say so, go on with the other files.
        report.warnings.append(f"{path}: damaged archive: {exc}; used the lines before the damage.")
    except OSError as exc:
        report.warnings.append(f"{path}: cannot read ({exc.strerror or exc}); skipped.")
    return events


# ----- the verdict --------------------------------------------------------------------


def _rules_by_cause(rules: list[CauseRuleConfig]) -> dict[str, list[CauseRuleConfig]]:
    out: dict[str, list[CauseRuleConfig]] = {}
    for r in rules:
        out.setdefault(r.cause, []).append(r)
    return out


def explain(events: list[Event], rules: list[CauseRuleConfig]) -> dict[str, Any]:
    """Name the root cause: the unexplained event that explains the most of what follows it.

    An event is explained by an earlier event when a rule says that pattern causes this one
    within its window. Explanation is transitive (OOM -> invalid unicode -> silence), so
    every event traces back to one root; roots are grouped by pattern.
    """
    by_cause = _rules_by_cause(rules)
    horizon = max((r.within_seconds for r in rules), default=0.0)
    root_of: list[int] = []
    for i, e in enumerate(events):
        root = i
        for j in range(i - 1, -1, -1):
            c = events[j]
            gap = (e.time - c.time).total_seconds()
            if gap > horizon:
                break  # events are sorted: nothing earlier can be within any rule's window
            if any(e.pattern in r.effects and gap <= r.within_seconds for r in by_cause.get(c.pattern, [])):
                root = root_of[j]
                break
        root_of.append(root)
    groups: dict[str, dict[str, Any]] = {}
    for i, e in enumerate(events):
        root = events[root_of[i]]
        g = groups.setdefault(root.pattern, {"roots": [], "derived": {}})
        if root_of[i] == i:
            g["roots"].append(e)
        else:
            d = g["derived"].setdefault(e.pattern, {"pattern": e.pattern, "count": 0, "first": e, "last": e})
            d["count"] += 1
            d["last"] = e
    if not groups:
        return {"root_cause": None, "derived": [], "other_causes": []}
    ranked = sorted(
        groups.items(),
        key=lambda kv: (-sum(d["count"] for d in kv[1]["derived"].values()), kv[1]["roots"][0].time),
    )

    def summary(pattern: str, g: dict[str, Any]) -> dict[str, Any]:
        first = g["roots"][0]
        return {
            "pattern": pattern, "count": len(g["roots"]), "first": first.as_dict(),
            "derived": [
                {"pattern": d["pattern"], "count": d["count"],
                 "first_after_seconds": round((d["first"].time - first.time).total_seconds(), 3),
                 "first": d["first"].as_dict()}
                for d in sorted(g["derived"].values(), key=lambda d: d["first"].time)
            ],
        }

    main = summary(*ranked[0])
    return {
        "root_cause": {k: v for k, v in main.items() if k != "derived"},
        "derived": main["derived"],
        "other_causes": [summary(p, g) for p, g in ranked[1:]],
    }


def diagnose(
    config: LogsConfig, since_seconds: float, now: datetime | None = None, show_progress: bool = False
) -> dict[str, Any]:
    """The triage verdict for the last `since_seconds`, as a JSON-able dict.

    Keys: window {start, end}, root_cause (None when nothing matched; else pattern, count,
    first event), derived (patterns explained by the root, with counts), other_causes
    (independent roots), events (matching lines, time-sorted, the latest triage.max_lines),
    event_count, warnings, files_read, bytes_read, files_skipped. Naive local time, like the logs.
    """
    end = now or datetime.now()
    window = Window(end - timedelta(seconds=since_seconds), end)
    events, report = collect_events(config, window, show_progress)
    verdict = explain(events, config.triage.rules)
    shown = events[-config.triage.max_lines:]
    return {
        "window": {"start": window.start.isoformat(timespec="seconds"),
                   "end": window.end.isoformat(timespec="seconds")},
        **verdict,
        "events": [e.as_dict() for e in shown],
        "event_count": len(events),
        "warnings": report.warnings,
        "files_read": report.files_read,
        "bytes_read": report.bytes_read,
        "files_skipped": report.files_skipped,
    }


def format_verdict(result: dict[str, Any]) -> str:
    """The human verdict printed after the lines."""
    rc = result["root_cause"]
    win = result["window"]
    if rc is None:
        return f"VERDICT: no known error pattern between {win['start']} and {win['end']}."
    first = rc["first"]
    out = [
        f"ROOT CAUSE: {rc['pattern']} (x{rc['count']}) first at {first['time']} in {first['file']}:",
        f"    {first['line']}",
    ]
    if result["derived"]:
        out.append("DERIVED from it (act on the root cause; these should stop with it):")
        for d in result["derived"]:
            out.append(f"    {d['pattern']} x{d['count']}, first {d['first_after_seconds']:+.3f}s after")
    else:
        out.append("Nothing else in the window follows from it.")
    for other in result["other_causes"]:
        n = sum(d["count"] for d in other["derived"])
        derived = f" with {n} derived" if n else ""
        out.append(f"ALSO, independent: {other['pattern']} x{other['count']} "
                   f"first at {other['first']['time']}{derived}")
    return "\n".join(out)
