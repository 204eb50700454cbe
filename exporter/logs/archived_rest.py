"""The rest of a followed file that was compressed while the exporter was down.

logrotate's `compress` without `delaycompress` renames the log and gzips it in one run.
When that happens while we are stopped, the file we followed exists only as `NAME.N.gz`
on restart. It is recognised by the fingerprint of its first bytes (saved with the
offset) and read from the saved offset, so no line is lost and none is counted twice.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterable
from pathlib import Path

from tts_sentinel.exporter.logs.file_identity import KnownGeneration, digest
from tts_sentinel.exporter.logs.file_state import SavedCursor
from tts_sentinel.exporter.logs.metrics import LogCounter
from tts_sentinel.loghistory.archives import rotated_generations
from tts_sentinel.loghistory.scanner import LineAssembler

log = logging.getLogger(__name__)
MISSING_LISTINGS = 3

# How a file we read starts: its first bytes when we hold them, else (fp_len, fp) from saved state.
FileStart = bytes | tuple[int, str]


def read_compressed_rest(
    path: Path, saved: SavedCursor, counter: LogCounter, max_line_bytes: int, block_bytes: int
) -> Path | None:
    """Count the lines after `saved.offset` in the gzip archive of the file `saved` describes.

    Returns the archive it read, or None when no archive starts with the saved first bytes.
    Without a saved fingerprint (the file was empty) nothing can be recognised: None.
    """
    if not saved.fp_len:
        return None
    for archive in sorted(rotated_generations(path), key=lambda p: p.name):
        if archive.suffix != ".gz":
            continue
        try:
            with gzip.open(archive, "rb") as z:
                head = z.read(saved.fp_len)
                if len(head) < saved.fp_len or digest(head) != saved.fp:
                    continue
                z.seek(saved.offset)
                if z.tell() != saved.offset:  # shorter than our offset: another file after all
                    continue
                assembler = LineAssembler(max_line_bytes)
                assembler.discarding = saved.discarding
                while chunk := z.read(block_bytes):
                    counter.feed(*assembler.push(chunk))
                counter.feed(assembler.flush())
        except (OSError, EOFError, zlib.error) as exc:
            log.warning("log %s: cannot read the archive %s (%s); its lines are not counted.", path, archive, exc)
            continue
        return archive
    return None


class CompressedGenerations:
    """Gzip archives next to a followed log, read when they hold lines we never counted.

    With `compress` and no `delaycompress`, logrotate can create a log, see it written and
    compress it away between two of our polls: the lines exist only in the new `.gz`. Each
    new archive is compared with the first bytes of every file we followed (open, draining,
    or finished recently): one that starts like none of them is read whole; one that starts
    like a finished file but is longer got late writes, read from where we stopped.
    Archives present at start are history, as plain generations are.
    """

    def __init__(self, path: Path, counter: LogCounter, max_line_bytes: int, block_bytes: int,
                 head_bytes: int, remember: int = 64) -> None:
        self.path = path
        self.counter = counter
        self.max_line_bytes = max_line_bytes
        self.block_bytes = block_bytes
        self.head_bytes = head_bytes
        self._seen: set[tuple[int, int]] = set()
        self._missing: dict[tuple[int, int], int] = {}  # seen archives missing from the last listings
        # new archives wait one poll at the same size: logrotate may still be writing them
        self._pending: dict[tuple[int, int], int] = {}
        self._finished: list[tuple[FileStart, int]] = []  # (how it starts, bytes read), newest last
        self._remember = remember

    def mark_all_seen(self) -> None:
        """Everything there now is history."""
        self._seen = {ident for ident, _, _ in self._archives()}

    def finished(self, start: FileStart, size: int) -> None:
        """A file we followed is finished; its archive, when it appears, holds nothing new up to `size`."""
        self._finished.append((start, size))
        del self._finished[: -self._remember]

    def finished_before(self, known: Iterable[KnownGeneration]) -> None:
        """Generations a previous process read (saved state): their archives hold nothing new up to their size."""
        for k in known:
            self.finished((k.fp_len, k.fp), k.size)

    def poll(self, open_files: list[FileStart], settle: bool = True) -> None:
        """Read the archives that appeared since the last call; `open_files` start the files we still read.

        A new archive is read once a poll saw it at the same size (logrotate may still be writing it);
        without `settle` (we stop: a restart takes the archives there as history) as soon as it is whole.
        """
        archives = self._archives()
        for ident, archive, size in archives:
            if ident in self._seen:
                continue
            if settle and self._pending.get(ident) != size:
                self._pending[ident] = size
                continue
            try:
                _check_whole(archive)
            except (EOFError, zlib.error, OSError):
                continue  # still being written (or broken): look again next poll
            self._seen.add(ident)
            try:
                self._read_new(archive, open_files)
            except (OSError, EOFError, zlib.error) as exc:
                log.warning("log %s: cannot read the new archive %s (%s).", self.path, archive, exc)
        live = {ident for ident, _, _ in archives}
        # Forgotten only when gone from a few listings in a row: one listing misses an archive logrotate
        # renames meanwhile (.1.gz -> .2.gz), which would then look new and be read whole again.
        self._missing = {i: self._missing.get(i, 0) + 1 for i in self._seen if i not in live}
        self._seen -= {i for i, n in self._missing.items() if n >= MISSING_LISTINGS}
        self._pending = {i: n for i, n in self._pending.items() if i in live and i not in self._seen}

    def _read_new(self, archive: Path, open_files: list[FileStart]) -> None:
        with gzip.open(archive, "rb") as z:
            head = z.read(self.head_bytes)
            if any(same_start(head, known) for known in open_files):
                return  # an open descriptor reads that content
            start = 0
            for known, size in reversed(self._finished):
                if same_start(head, known):
                    start = size
                    break
            z.seek(start)
            if z.tell() < start:
                return
            assembler = LineAssembler(self.max_line_bytes)
            counted = False
            while chunk := z.read(self.block_bytes):
                counted = True
                self.counter.feed(*assembler.push(chunk))
            self.counter.feed(assembler.flush())
        if counted:
            log.info("log %s: counted lines from %s that were compressed before we could read them.",
                     self.path, archive)

    def _archives(self) -> list[tuple[tuple[int, int], Path, int]]:
        out = []
        for p in rotated_generations(self.path):
            if p.suffix != ".gz":
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            out.append(((st.st_dev, st.st_ino), p, st.st_size))
        return out


def _check_whole(archive: Path) -> None:
    """Read the archive to its end (EOFError or zlib.error when it is not complete yet)."""
    with gzip.open(archive, "rb") as z:
        while z.read(1 << 20):
            pass


def same_start(archive_head: bytes, known: FileStart) -> bool:
    """Whether an archive starting with `archive_head` holds the content of a file we read, as far as both go.

    With the file's first bytes at hand, an archive shorter than them is recognised too: logrotate
    compressed the file while it was still short, and the writer appended more before it reopened,
    which we read through our descriptor (the fingerprint of our longer head would not match).
    An empty start matches only an empty one: the files we hold are read before archives are
    looked at, so one still empty is not the source of an archive with lines.
    """
    if isinstance(known, bytes):
        if not known or not archive_head:
            return known == archive_head
        n = min(len(known), len(archive_head))
        return archive_head[:n] == known[:n]
    return _starts_with(archive_head, *known)


def _starts_with(head: bytes, fp_len: int, fp: str) -> bool:
    """Whether `head` starts with the bytes fingerprinted as (fp_len, fp); an empty file matches an empty head."""
    if fp_len == 0:
        return head == b""
    return len(head) >= fp_len and digest(head[:fp_len]) == fp
