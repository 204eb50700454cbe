"""Follow one log file across every kind of rotation, reading each byte exactly once.

The source tracks files by identity (device, inode), not by name. On every poll it
reads what was appended to the file it follows, then looks at the path and at the
plain (uncompressed) rotated generations next to it:

* the path now names another file: the old one was renamed or deleted. It is kept
  open and read to its end for `rotate_wait_seconds` (the writer may still append
  until it reopens), and the new file is read from its first byte;
* a generation never seen before (created and rotated away between two polls) is read whole,
  one seen before that grew (late writes) from its old end; both are then drained like a renamed file;
* the followed file is shorter than the offset, or its first bytes changed: it was
  truncated (copytruncate). The copy logrotate just made is found by its first
  bytes and read from our offset, then the file is read again from 0. A copy whose
  original is not truncated yet is left alone until it is;
* compressed archives (archived_rest): a new `.gz` that starts like no file we followed
  (created, written and compressed between two polls) is read whole; the followed file
  compressed while we were down is read from the saved offset. Archives created while we were down
  of files we never opened are history, like plain ones: new archives are read when we stop.

Known generations are remembered by identity, size, mtime and a fingerprint of their first bytes
(file_identity), so a reused inode number is not mistaken for a file we read. Offsets are exported
as a small dict (file_state: identity, offset, fingerprint of the first bytes) so a restart resumes
exactly where the previous process stopped. Reading one open file is FollowedFile's job
(followed_file); this module decides which files to read, and from where.
"""

from __future__ import annotations

import logging
import os
import stat as stat_mod
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts_sentinel.exporter.logs.archived_rest import CompressedGenerations, read_compressed_rest
from tts_sentinel.exporter.logs.file_identity import (
    Generation,
    Identity,
    KnownGeneration,
    TruncatedContent,
    copy_of,
    fingerprint_prefix,
    known_generation,
    plain_generations,
    regular_identity,
    starts_like,
)
from tts_sentinel.exporter.logs.file_state import load_cursor, load_known, source_state
from tts_sentinel.exporter.logs.followed_file import FollowedFile
from tts_sentinel.exporter.logs.metrics import LogCounter
from tts_sentinel.loghistory.scanner import LineAssembler

log = logging.getLogger(__name__)
MISSING_POLLS = 3

@dataclass
class FileSourceOptions:
    """Limits shared by every file source, from LogsConfig."""

    max_line_bytes: int = 64 * 1024
    read_block_bytes: int = 512 * 1024
    rotate_wait_seconds: float = 5.0
    fingerprint_bytes: int = 256
    start_at: str = "end"


class RotatingFileSource:
    """One log file by path; call `poll()` repeatedly from a single thread."""

    def __init__(
        self,
        name: str,
        path: Path,
        counter: LogCounter,
        options: FileSourceOptions,
        saved: dict[str, Any] | None = None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.counter = counter
        self.opt = options
        self.cur: FollowedFile | None = None
        self.draining: list[FollowedFile] = []
        # Plain rotated generations already accounted for (read, or there before we started).
        self.known: dict[Identity, KnownGeneration] = {}
        # Never-seen generations that start like the followed file: copies (copytruncate) whose
        # original is not truncated yet. Read from our offset once it is.
        self._held: set[Identity] = set()
        self._missing: dict[Identity, int] = {}  # known generations missing from the last listings
        self._stop = stop_event or threading.Event()
        self._last_error = ""
        self._poll_error = ""
        self._started = False
        self._saved = saved
        self.archives = CompressedGenerations(self.path, counter, options.max_line_bytes,
                                              options.read_block_bytes, options.fingerprint_bytes)

    # ----- public -----------------------------------------------------------------

    def prime(self) -> None:
        """Decide where reading starts (saved offset, or start_at) now, without reading new lines.

        Called by the pipeline's start(), so that "the files there at start" means exactly that,
        however late the first poll runs.
        """
        self._guarded(lambda: None)

    def poll(self) -> None:
        """Read everything new; notice rotation, truncation, deletion. Never raises OSError."""
        self._guarded(self._poll)

    def _guarded(self, step: Callable[[], None]) -> None:
        """Start if needed, run `step`; an OS error is counted and reported, never raised."""
        self._poll_error = ""
        try:
            if not self._started:
                self._start()
            step()
        except OSError as exc:
            self._poll_error = f"{exc.strerror or exc} ({exc.filename or self.path})"
        self._set_error(self._poll_error)

    def state(self) -> dict[str, Any] | None:
        """What to save so a restart resumes here (see `saved` in the constructor).

        A source that never started hands back what it was given: stopping an exporter that
        failed before its first poll must not overwrite good offsets with empty ones.
        """
        if not self._started:
            return self._saved
        return source_state(self.path, self.cur, self.known)

    def finish_rotated(self) -> None:
        """Read rotated files still open to their end and close them (nothing would resume them)."""
        for f in self.draining:
            self._read(f, to_end=True)
            self._finish(f)
        self.draining = []
        self.archives.poll([self.cur.head] if self.cur is not None else [], settle=False)

    def close(self) -> None:
        """Finish rotated files and close the followed one; take `state()` before this."""
        self.finish_rotated()
        if self.cur is not None:
            os.close(self.cur.fd)
            self.cur = None

    # ----- start and resume -------------------------------------------------------

    def _start(self) -> None:
        self._started = True
        self.archives.mark_all_seen()
        saved = self._saved
        if not saved:
            # First start: like `tail -F`, the rotated generations are history and the live file
            # is read from its end, unless start_at says otherwise.
            for g in self._generations():
                self._remember_unopened(g)
            f = self._open(self.path)
            if f is not None:
                if self.opt.start_at == "end":
                    f.pos = os.fstat(f.fd).st_size
                f.refresh_head(self.opt.fingerprint_bytes)
                self.cur = f
            return
        self.known = load_known(saved)
        self.archives.finished_before(self.known.values())  # one compressed after this start is not new
        cur = saved.get("cur")
        if isinstance(cur, dict):
            self._resume(cur)
        # When the followed file is gone (deleted, or read from its archive), whatever sits at the
        # path is new.

    def _resume(self, cur: dict[str, Any]) -> None:
        """Find the file we followed (maybe renamed while we were down) and continue at its offset."""
        saved = load_cursor(cur)
        if saved is None:
            log.warning("log %s: saved offset is damaged; reading the log from its start.", self.name)
            return
        ident, offset, fp_len, fp = saved.ident, saved.offset, saved.fp_len, saved.fp
        for candidate in [self.path, *(g.path for g in self._generations())]:
            if regular_identity(candidate) != ident:
                continue
            f = self._open(candidate)
            if f is None or f.ident != ident:
                continue
            size = os.fstat(f.fd).st_size
            same_start = fingerprint_prefix(f.fd, fp_len) == fp if fp_len else True
            if not same_start or offset > size:
                # The saved offset does not belong to this content: it was truncated or rewritten
                # while we were down. Never trust it; finish the copy if logrotate made one.
                log.warning(
                    "log %s: saved offset %d does not fit %s (size %d, first bytes %s); reading it from 0.",
                    self.name, offset, candidate, size, "same" if same_start else "changed",
                )
                self.counter.truncations.inc()
                self._finish_copy_of(fp_len, fp, offset, dict(saved.fp_lines))
                offset = 0
            f.pos = offset
            f.assembler.discarding = saved.discarding and offset > 0
            f.refresh_head(self.opt.fingerprint_bytes)
            if candidate == self.path:
                self.cur = f
            else:  # rotated while we were down: finish it; the path is a new file
                self.counter.rotations.inc()
                f.drain_until = time.monotonic() + self.opt.rotate_wait_seconds
                self.draining.append(f)
            return
        archive = read_compressed_rest(self.path, saved, self.counter, self.opt.max_line_bytes,
                                       self.opt.read_block_bytes)
        if archive is not None:
            log.info("log %s: read the rest of the followed file from %s (compressed while we were down).",
                     self.name, archive)
            self.counter.rotations.inc()

    def _finish_copy_of(self, fp_len: int, fp: str, offset: int, shorter: dict[int, str]) -> None:
        """After a copytruncate while we were down: read its copy from the saved offset (`starts_like`)."""
        if not fp_len:
            return
        for g in self._generations():
            # one shorter than the offset too (its end was read from the original): remembered, not re-read
            if self._is_known(g):
                continue
            f = self._open(g.path)
            if f is None:
                continue
            if starts_like(f.fd, fp_len, fp, shorter):
                f.pos = offset
                self._read(f, to_end=True)
                self._finish(f)
                return
            os.close(f.fd)

    # ----- one poll ---------------------------------------------------------------

    def _poll(self) -> None:
        now = time.monotonic()
        for f in list(self.draining):
            self._read(f)
            if f.drain_until is not None and now >= f.drain_until:
                self._finish(f)
                self.draining.remove(f)
        cur = self.cur
        # Truncation is checked before and during the read: reading a truncated and regrown file from
        # the old offset would count the tail of the new content twice.
        truncated = cur is not None and (self._is_truncated(cur) or not self._read(cur, verify=True))
        path_ident = self._path_ident()
        if cur is not None and path_ident != cur.ident:
            self._release_or_drain(cur, path_ident, now)
            truncated = False  # whatever happened to it, the old file is finished by draining
        if path_ident is not None and (self.cur is None or self.cur.ident != path_ident):
            if path_ident not in {f.ident for f in self.draining}:
                # Opened before the generations are looked at, so that a copy of it is recognised.
                f = self._open(self.path)
                if f is not None:
                    self.cur = f
                    self._read(f)
        before_truncation: TruncatedContent | None = None
        if truncated and cur is not None:
            # Read the new content first: a copy of *it* (the next copytruncate, in progress) must
            # be recognised as such, while a copy of the old content is read from the old offset.
            self.counter.truncations.inc()
            before_truncation = TruncatedContent(cur.head, cur.consumed(), cur.assembler.discarding)
            cur.pos = 0
            cur.assembler = LineAssembler(self.opt.max_line_bytes)
            cur.head = b""
            self._read(cur)
        generations = self._generations()
        self._read_new_generations(generations, before_truncation)
        # Forget generations gone for a few polls in a row (one listing can miss a file logrotate renames
        # meanwhile: read twice): the list stays short, a reused inode is not mistaken for a file we read.
        present = {g.ident for g in generations}
        self._missing = {i: self._missing.get(i, 0) + 1 for i in self.known if i not in present}
        for i in [i for i, n in self._missing.items() if n >= MISSING_POLLS]:  # compressed or deleted
            k = self.known.pop(i)
            self.archives.finished((k.fp_len, k.fp), k.size)
        self.archives.poll([f.head for f in [*self.draining, *([self.cur] if self.cur else [])]])
        self.counter.up.set(1 if self.cur is not None else 0)

    def _release_or_drain(self, cur: FollowedFile, path_ident: Identity | None, now: float) -> None:
        """The path no longer names the followed file."""
        if path_ident is not None:
            self._drain(cur, now)
            return
        # Deleted (or renamed) and nothing created yet: keep reading, but do not hold a deleted
        # file open forever (its disk space is only freed when we close it).
        st = os.fstat(cur.fd)
        if cur.gone_since is None:
            cur.gone_since = now
        if st.st_nlink == 0 and now - cur.gone_since >= self.opt.rotate_wait_seconds:
            self._forget_held_copies()
            self._read(cur, to_end=True)
            self._finish(cur)
            self.counter.rotations.inc()
            self.cur = None

    def _drain(self, f: FollowedFile, now: float) -> None:
        self._forget_held_copies()
        self.counter.rotations.inc()
        f.drain_until = now + self.opt.rotate_wait_seconds
        self.draining.append(f)
        if self.cur is f:
            self.cur = None

    def _forget_held_copies(self) -> None:
        """The followed file is done: copies of it hold nothing we will not have read from it."""
        for g in self._generations():
            if g.ident in self._held:
                self._remember_unopened(g)
        self._held.clear()

    def _is_truncated(self, f: FollowedFile) -> bool:
        return os.fstat(f.fd).st_size < f.pos or not f.head_unchanged()

    def _is_known(self, g: Generation) -> bool:
        k = self.known.get(g.ident)
        return k is not None and k.size == g.size and k.mtime_ns == g.mtime_ns

    def _read_new_generations(
        self, generations: list[Generation], truncated: TruncatedContent | None
    ) -> None:
        """Read the generations that changed since we accounted for them, or that we never saw.

        * a known generation that grew got late writes: read from its old end;
        * one that starts with the content the followed file had before this poll's truncation is
          the copytruncate copy: read from where we were;
        * one that starts like the followed file as it is now (or is a shorter start of it: a copy
          in progress) is a copy whose original is not truncated yet: everything in it is still to
          be read from the original, so it is held until the truncation shows;
        * anything else is a generation we never saw (rotated between two polls): read whole.
        """
        followed = {f.ident for f in self.draining}
        if self.cur is not None:
            followed.add(self.cur.ident)
        changed = [g for g in generations if g.ident not in followed and not self._is_known(g)]
        self._held &= {g.ident for g in changed}
        for g in sorted(changed, key=lambda g: g.mtime_ns):
            f = self._open(g.path)
            if f is None:
                continue
            k = self.known.get(g.ident)
            cur = self.cur
            same_file = k is not None and (not k.fp_len or fingerprint_prefix(f.fd, k.fp_len) == k.fp)
            if k is not None and same_file and g.size >= k.size:
                f.pos = k.size  # the same file, appended to after we finished it
            elif truncated and copy_of(os.pread(f.fd, len(truncated.head), 0), truncated.head):
                f.pos = truncated.consumed  # past its end when the copy is shorter: nothing in it is new
                f.assembler.discarding = truncated.discarding
            elif cur is not None and cur.head and cur.head.startswith(os.pread(f.fd, len(cur.head), 0)):
                self._held.add(g.ident)
                os.close(f.fd)
                continue
            self._held.discard(g.ident)
            self._read(f, to_end=True)
            # Drained like a renamed log: its writer may append until it reopens (compress: deleted by then).
            f.drain_until = time.monotonic() + self.opt.rotate_wait_seconds
            self.draining.append(f)

    # ----- reading ----------------------------------------------------------------
    def _read(self, f: FollowedFile, *, to_end: bool = False, verify: bool = False) -> bool:
        """Read what is new in `f` (see FollowedFile.read_new).

        A long backlog is cut short when the pipeline stops, unless `to_end`: a rotated file is
        read to its end because nothing would resume it.
        """
        stop = None if to_end else self._stop
        return f.read_new(self.counter, self.opt.read_block_bytes, self.opt.fingerprint_bytes, stop=stop, verify=verify)

    def _finish(self, f: FollowedFile) -> None:
        """The file will get no more lines: count a last line without newline, remember it, close it."""
        known = f.finish(self.counter, self.opt.fingerprint_bytes)
        self.archives.finished(f.head, f.pos)
        if known is not None:
            self.known[f.ident] = known

    def _remember_unopened(self, g: Generation) -> None:
        """Account for a generation as it is now, without counting its lines (history at first start)."""
        f = self._open(g.path)
        if f is None:
            return
        try:
            self.known[g.ident] = known_generation(f.fd, self.opt.fingerprint_bytes)
        finally:
            os.close(f.fd)

    def lag_bytes(self) -> float:
        """Bytes at the path not read yet, measured now (called at scrape time, from another thread).

        Only the path is stat'ed, never our file descriptors, which the poll thread may close.
        """
        try:
            st = os.stat(self.path)
        except OSError:
            return 0.0
        cur = self.cur
        if cur is not None and (st.st_dev, st.st_ino) == cur.ident:
            return float(max(0, st.st_size - cur.pos))
        return float(st.st_size) if self._started else 0.0

    # ----- files ------------------------------------------------------------------
    def _generations(self) -> list[Generation]:
        return plain_generations(self.path)

    def _path_ident(self) -> Identity | None:
        """Identity of the file at the configured path; None when missing or unusable (reported)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._poll_error = f"cannot stat {self.path}: {exc.strerror or exc}"
            return None
        if not stat_mod.S_ISREG(st.st_mode):
            self._poll_error = f"{self.path} is not a regular file; point the config at the log file itself"
            return None
        return (st.st_dev, st.st_ino)

    def _open(self, path: Path) -> FollowedFile | None:
        """Open `path` for reading; an error is counted and reported once, and retried next poll."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._poll_error = f"cannot open {path}: {exc.strerror or exc}; check its permissions"
            return None
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            os.close(fd)
            self._poll_error = f"{path} is not a regular file; point the config at the log file itself"
            return None
        return FollowedFile(fd=fd, ident=(st.st_dev, st.st_ino), pos=0,
                            assembler=LineAssembler(self.opt.max_line_bytes))

    def _set_error(self, message: str) -> None:
        """Count every failed poll; log each distinct problem once, and its recovery."""
        if message:
            self.counter.read_errors.inc()
            self.counter.up.set(0)
            if message != self._last_error:
                log.warning("log %s: %s", self.name, message)
        elif self._last_error:
            log.info("log %s: %s is readable again", self.name, self.path)
        self._last_error = message
