"""One open log file being followed: how far it was read, its first bytes, and reading what is new."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from tts_sentinel.exporter.logs.file_identity import Identity, KnownGeneration, digest
from tts_sentinel.exporter.logs.metrics import LogCounter
from tts_sentinel.loghistory.scanner import LineAssembler

_buffers = threading.local()


def read_buffer(size: int) -> bytearray:
    """This thread's reusable read buffer of `size` bytes.

    Reading into one buffer instead of a fresh bytes object per block spares the allocation and
    its page faults, a good part of the cost of a read once the data is in the page cache.
    """
    buf = getattr(_buffers, "buf", None)
    if buf is None or len(buf) != size:
        buf = _buffers.buf = bytearray(size)
    return buf


@dataclass
class FollowedFile:
    """An open file and how far it was read."""

    fd: int
    ident: Identity
    pos: int
    assembler: LineAssembler
    head: bytes = b""  # the first bytes we counted, to recognise the file, its copies and truncation
    drain_until: float | None = None
    gone_since: float | None = None

    def consumed(self) -> int:
        """Offset of the first byte not yet counted (a pending partial line is re-read after restart)."""
        return self.pos - len(self.assembler.pending)

    @property
    def fp_len(self) -> int:
        return len(self.head)

    @property
    def fp(self) -> str:
        return digest(self.head)

    def head_unchanged(self) -> bool:
        """True while the file still starts with the bytes we read first (not truncated, not rewritten)."""
        return not self.head or os.pread(self.fd, len(self.head), 0) == self.head

    def refresh_head(self, head_bytes: int) -> None:
        """Take the head again from the file: its first bytes up to the offset, at most `head_bytes`."""
        self.head = os.pread(self.fd, min(max(self.pos, 0), head_bytes), 0)

    def read_new(
        self, counter: LogCounter, block_size: int, head_bytes: int,
        stop: threading.Event | None = None, verify: bool = False,
    ) -> bool:
        """Read from the offset to the current end, feeding complete lines to `counter`.

        A long backlog is cut short once `stop` is set (the offset stays exact); without `stop`
        the file is read to its end. With `verify`, each block is counted only if the file still
        starts with the same bytes after it was read; False means it was truncated meanwhile and
        nothing of that block was counted.
        """
        buf = read_buffer(block_size)
        while stop is None or not stop.is_set():
            n = os.preadv(self.fd, [buf], self.pos)
            if not n:
                break
            if verify and not self.head_unchanged():
                return False
            if len(self.head) == self.pos < head_bytes:
                # The head is the file's first bytes as we read them: taken from this very read,
                # never from a second one that could already see a truncated file.
                self.head += buf[: min(n, head_bytes - self.pos)]
            self.pos += n
            block, cut = self.assembler.push(buf, n)
            counter.feed(block, cut)
            if n < block_size:
                break
        return True

    def finish(self, counter: LogCounter, head_bytes: int) -> KnownGeneration | None:
        """No more lines will come: count a last line without newline and close the file.

        Returns how the file looks now, to remember it by; None when it was deleted meanwhile.
        """
        counter.feed(self.assembler.flush())
        known = None
        try:
            st = os.fstat(self.fd)
            if st.st_nlink:
                self.refresh_head(head_bytes)
                known = KnownGeneration(self.fp_len, self.fp, self.pos, st.st_mtime_ns)
        except OSError:
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass
        return known
