"""Read one log file, plain or gzip, for the matching lines inside the window.

A plain file is entered by binary search on its timestamps; a gzip archive is read
from its start, and what lies before a damaged spot is kept.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from tts_sentinel.loghistory.archives import is_compressed
from tts_sentinel.loghistory.scanner import CompiledPattern
from tts_sentinel.loghistory.triage.clock import LineClock
from tts_sentinel.loghistory.triage.events import Event, ReadReport, Window, scan_chunks
from tts_sentinel.loghistory.triage.progress import Progress
from tts_sentinel.loghistory.triage.seek import seek_window_start

BLOCK = 4 * 1024 * 1024


def read_file(
    log: str, path: Path, patterns: list[CompiledPattern], clock: LineClock, window: Window,
    progress: Progress, report: ReadReport,
) -> list[Event]:
    """Matching lines of `path` inside the window; what goes wrong becomes a warning in `report`."""
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
            # One by one, so that the events before a damaged spot are kept.
            for event in scan_chunks(chunks, patterns, clock, window, log, path.name, report):
                events.append(event)
    except DamagedArchive as exc:
        # Keep what was read before the damage, say so, go on with the other files.
        report.warnings.append(f"{path}: damaged archive: {exc}; used the lines before the damage.")
    except OSError as exc:
        report.warnings.append(f"{path}: cannot read ({exc.strerror or exc}); skipped.")
    return events


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

