"""Follow one log file across every kind of rotation, reading each byte exactly once.

The source tracks files by identity (device, inode), not by name. On every poll it
reads what was appended to the file it follows, then looks at the path and at the
plain (uncompressed) rotated generations next to it:

* the path now names another file: the old one was renamed or deleted. It is kept
  open and read to its end for `rotate_wait_seconds` (the writer may still append
  until it reopens), and the new file is read from its first byte;
* a generation never seen before (created and rotated away between two polls) is
  read whole;
* the followed file is shorter than the offset, or its first bytes changed: it was
  truncated (copytruncate). The copy logrotate just made is found by its first
  bytes and read from our offset, then the file is read again from 0;
* compressed archives are never read.

Offsets are exported as a small dict (identity, offset, fingerprint of the first
bytes) so a restart resumes exactly where the previous process stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat as stat_mod
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.logs.archives import rotated_generations
from exporter.logs.metrics import LogCounter
from exporter.logs.scanner import LineAssembler

log = logging.getLogger(__name__)

Identity = tuple[int, int]


def _fingerprint(fd: int, nbytes: int) -> tuple[int, str]:
    """(length, hash) of the first `nbytes` bytes of the open file (fewer when it is shorter)."""
    head = os.pread(fd, nbytes, 0)
    return len(head), hashlib.blake2b(head, digest_size=12).hexdigest()


def _fingerprint_prefix(fd: int, length: int) -> str:
    head = os.pread(fd, length, 0)
    if len(head) < length:
        return ""
    return hashlib.blake2b(head, digest_size=12).hexdigest()


@dataclass
class FollowedFile:
    """An open file and how far it was read."""

    fd: int
    ident: Identity
    pos: int
    assembler: LineAssembler
    fp_len: int = 0
    fp: str = ""
    drain_until: float | None = None
    gone_since: float | None = None

    def consumed(self) -> int:
        """Offset of the first byte not yet counted (a pending partial line is re-read after restart)."""
        return self.pos - len(self.assembler.pending)


@dataclass
class FileSourceOptions:
    """Limits shared by every file source, from LogsConfig."""

    max_line_bytes: int = 64 * 1024
    read_block_bytes: int = 4 * 1024 * 1024
    rotate_wait_seconds: float = 5.0
    fingerprint_bytes: int = 256
    start_at: str = "end"


@dataclass
class _Errors:
    last: str = ""
    reported: set[str] = field(default_factory=set)


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
        self.known: set[Identity] = set()
        # Unknown generations that look like a copy of the followed file: decided on a later poll.
        self._held: dict[Identity, float] = {}
        self._stop = stop_event or threading.Event()
        self._errors = _Errors()
        self._poll_error = ""
        self._started = False
        self._saved = saved

    # ----- public -----------------------------------------------------------------

    def poll(self) -> None:
        """Read everything new; notice rotation, truncation, deletion. Never raises OSError."""
        self._poll_error = ""
        try:
            if not self._started:
                self._start()
            self._poll()
        except OSError as exc:
            self._poll_error = f"{exc.strerror or exc} ({exc.filename or self.path})"
        self._set_error(self._poll_error)

    def state(self) -> dict[str, Any]:
        """What to save so a restart resumes here (see `saved` in the constructor)."""
        known = sorted(self.known | {f.ident for f in self.draining})
        cur = None
        if self.cur is not None:
            c = self.cur
            cur = {
                "dev": c.ident[0], "ino": c.ident[1], "offset": c.consumed(),
                "fp_len": c.fp_len, "fp": c.fp, "discarding": c.assembler.discarding,
            }
        return {"path": str(self.path), "cur": cur, "known": [list(k) for k in known]}

    def finish_rotated(self) -> None:
        """Read rotated files still open to their end and close them (nothing would resume them)."""
        for f in self.draining:
            self._read(f, to_end=True)
            self._finish(f)
        self.draining = []

    def close(self) -> None:
        """Finish rotated files and close the followed one; take `state()` before this."""
        self.finish_rotated()
        if self.cur is not None:
            os.close(self.cur.fd)
            self.cur = None

    # ----- start and resume -------------------------------------------------------

    def _start(self) -> None:
        self._started = True
        saved = self._saved or {}
        self.known = {tuple(k) for k in saved.get("known", []) if isinstance(k, list) and len(k) == 2}
        cur = saved.get("cur")
        if not saved:
            # First start: like `tail -F`, the rotated generations are history, the live file is
            # read from its end unless start_at says otherwise.
            self.known = {self._ident(p) for p in self._generations()} - {None}  # type: ignore[misc]
            f = self._open_path()
            if f is not None:
                if self.opt.start_at == "end":
                    f.pos = os.fstat(f.fd).st_size
                self._refresh_fp(f)
                self.cur = f
            return
        if not isinstance(cur, dict):
            return
        ident = (int(cur.get("dev", -1)), int(cur.get("ino", -1)))
        self.known.add(ident)
        for candidate in [self.path, *self._generations()]:
            if self._ident(candidate) != ident:
                continue
            f = self._open(candidate)
            if f is None or f.ident != ident:
                continue
            fp_len = int(cur.get("fp_len", 0))
            size = os.fstat(f.fd).st_size
            offset = int(cur.get("offset", 0))
            same_start = _fingerprint_prefix(f.fd, fp_len) == cur.get("fp", "") if fp_len else True
            if not same_start or offset > size:
                # The saved offset does not belong to this content: it was truncated or rewritten
                # while we were down. Start over rather than trust a wrong offset.
                log.warning(
                    "%s: saved offset %d does not fit the file (size %d, first bytes %s); reading it from 0.",
                    candidate, offset, size, "same" if same_start else "changed",
                )
                self.counter.truncations.inc()
                self._read_copy_of_saved(cur, offset)
                offset = 0
            f.pos = offset
            f.assembler.discarding = bool(cur.get("discarding")) and offset > 0
            self._refresh_fp(f)
            if candidate == self.path:
                self.cur = f
            else:  # rotated while we were down: finish it, the path is a new file
                f.drain_until = time.monotonic() + self.opt.rotate_wait_seconds
                self.draining.append(f)
                self.counter.rotations.inc()
            return
        # The file we followed is gone (deleted or compressed): whatever sits at the path is new.

    def _read_copy_of_saved(self, cur: dict[str, Any], offset: int) -> None:
        """After a copytruncate while we were down: finish the copy from the saved offset."""
        fp_len = int(cur.get("fp_len", 0))
        for p in self._generations():
            ident = self._ident(p)
            if ident is None or ident in self.known:
                continue
            f = self._open(p)
            if f is None:
                continue
            same = fp_len and _fingerprint_prefix(f.fd, fp_len) == cur.get("fp")
            if same and os.fstat(f.fd).st_size >= offset:
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
        # Check truncation before reading: reading a truncated and regrown file from the old offset
        # would count the tail of the new content twice.
        truncated = cur is not None and self._is_truncated(cur)
        if cur is not None and not truncated:
            self._read(cur)
        path_ident = self._ident(self.path)
        generations = {self._ident(p): p for p in self._generations()}
        generations.pop(None, None)  # type: ignore[call-overload]
        self._read_new_generations(generations, truncated, now)
        if truncated and cur is not None:
            self.counter.truncations.inc()
            cur.pos = 0
            cur.assembler = LineAssembler(self.opt.max_line_bytes)
            cur.fp_len, cur.fp = 0, ""
            self._read(cur)
        if cur is not None and path_ident != cur.ident:
            self._release_or_drain(cur, path_ident, now)
        if path_ident is not None and (self.cur is None or self.cur.ident != path_ident):
            if path_ident not in {f.ident for f in self.draining}:
                f = self._open_path()
                if f is not None:
                    if self.cur is not None:  # still open because the path was briefly missing
                        self._drain(self.cur, now)
                    self.cur = f
                    self._read(f)
        # Forget generations that no longer exist so a reused inode is not mistaken for one we read.
        self.known &= set(generations) | {f.ident for f in self.draining}
        self._update_lag()

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
            self._read(cur)
            self._finish(cur)
            self.counter.rotations.inc()
            self.cur = None

    def _drain(self, f: FollowedFile, now: float) -> None:
        self.counter.rotations.inc()
        f.drain_until = now + self.opt.rotate_wait_seconds
        self.draining.append(f)
        self.known.add(f.ident)
        if self.cur is f:
            self.cur = None

    def _is_truncated(self, f: FollowedFile) -> bool:
        size = os.fstat(f.fd).st_size
        if size < f.pos:
            return True
        return bool(f.fp_len) and _fingerprint_prefix(f.fd, f.fp_len) != f.fp

    def _read_new_generations(self, generations: dict[Identity, Path], truncated: bool, now: float) -> None:
        """Read rotated generations we have never seen: whole, or from our offset when a copy of ours."""
        followed = {f.ident for f in self.draining}
        if self.cur is not None:
            followed.add(self.cur.ident)
        new = [(i, p) for i, p in generations.items() if i not in self.known and i not in followed]
        if not new:
            self._held.clear()
            return
        new.sort(key=lambda item: self._mtime(item[1]))
        for ident, p in new:
            f = self._open(p)
            if f is None:
                continue
            cur = self.cur
            if cur is not None and cur.fp_len and _fingerprint_prefix(f.fd, cur.fp_len) == cur.fp:
                # Starts like the followed file: a copytruncate copy. Read it from where we are,
                # once the followed file is truncated; until then it may be a copy in progress.
                first_seen = self._held.setdefault(ident, now)
                if not truncated and now - first_seen < self.opt.rotate_wait_seconds:
                    os.close(f.fd)
                    continue
                if truncated:
                    f.pos = cur.consumed()
                    f.assembler.discarding = cur.assembler.discarding
            self._held.pop(ident, None)
            self._read(f, to_end=True)
            self._finish(f)
            self.known.add(ident)

    # ----- reading ----------------------------------------------------------------

    def _read(self, f: FollowedFile, *, to_end: bool = False) -> None:
        """Read `f` from its offset to its current end, feeding complete lines to the counter.

        A long backlog is cut short when the pipeline stops (the offset stays exact), unless
        `to_end`: a rotated file is read to its end because nothing would resume it.
        """
        block_size = self.opt.read_block_bytes
        while to_end or not self._stop.is_set():
            data = os.pread(f.fd, block_size, f.pos)
            if not data:
                break
            f.pos += len(data)
            block, cut = f.assembler.push(data)
            self.counter.feed(block, cut)
            if len(data) < block_size:
                break
        if f.fp_len < self.opt.fingerprint_bytes:
            self._refresh_fp(f)

    def _finish(self, f: FollowedFile) -> None:
        """The file will get no more lines: count a last line without newline, close it."""
        self.counter.feed(f.assembler.flush())
        self.known.add(f.ident)
        try:
            os.close(f.fd)
        except OSError:
            pass

    def _refresh_fp(self, f: FollowedFile) -> None:
        f.fp_len, f.fp = _fingerprint(f.fd, self.opt.fingerprint_bytes)

    def _update_lag(self) -> None:
        lag = 0
        for f in ([self.cur] if self.cur else []) + self.draining:
            try:
                lag += max(0, os.fstat(f.fd).st_size - f.pos)
            except OSError:
                pass
        self.counter.lag.set(lag)
        self.counter.up.set(1 if self.cur is not None else 0)

    # ----- files ------------------------------------------------------------------

    def _generations(self) -> list[Path]:
        return rotated_generations(self.path, compressed=False)

    @staticmethod
    def _ident(path: Path) -> Identity | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        return (st.st_dev, st.st_ino)

    @staticmethod
    def _mtime(path: Path) -> int:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return 0

    def _open_path(self) -> FollowedFile | None:
        return self._open(self.path)

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
            if message != self._errors.last:
                log.warning("log %s: %s", self.name, message)
        elif self._errors.last:
            log.info("log %s: %s is readable again", self.name, self.path)
        self._errors.last = message
