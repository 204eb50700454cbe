"""One open log file being followed: how far it was read, its first bytes, and reading what is new."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from tts_sentinel.exporter.logs.file_identity import Identity, KnownGeneration, digest
from tts_sentinel.exporter.logs.metrics import LogCounter
from tts_sentinel.loghistory.scanner import LineAssembler

_readers = threading.local()

# Room in front of a block for the start of a line left over from the block before.
LEFTOVER_ROOM = 16 * 1024


class BlockReader:
    """Reads blocks into one reusable buffer, the pending start of a line in front, so the block of
    complete lines is counted where it was read: never copied.

    One buffer per thread instead of a fresh bytes object per block spares the allocation and its
    page faults, and scanning it in place spares a copy: a good part of the cost of a read once the
    data is in the page cache. A leftover longer than LEFTOVER_ROOM takes the copying path.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.buf = bytearray(size + LEFTOVER_ROOM)
        self.front = 0  # where the bytes read last start in `buf` (the pending line is before)

    def read(self, fd: int, pos: int, assembler: LineAssembler) -> int:
        """Read up to `size` bytes at `pos` into `buf`, after `assembler.pending` when it fits."""
        pending = assembler.pending
        self.front = len(pending) if len(pending) <= LEFTOVER_ROOM else 0
        end = self.front + self.size
        try:
            if len(self.buf) < end:  # trimmed to the last block's complete lines: grow it back
                self.buf.extend(bytes(end - len(self.buf)))
        except BufferError:  # something still holds a view of the last block: leave it that one
            self.buf = bytearray(end)
        buf = self.buf
        buf[: self.front] = pending[: self.front]
        with memoryview(buf) as view:
            n = os.preadv(fd, [view[self.front : end]], pos)
        del buf[self.front + n :]
        return n

    def fresh(self, count: int) -> bytes:
        """The first `count` bytes of the last read (not the pending line before them)."""
        return bytes(self.buf[self.front : self.front + count])

    def lines(self, assembler: LineAssembler) -> tuple[bytes | bytearray, int]:
        """The last read's block of complete lines and how many were cut (see LineAssembler.push)."""
        if self.front or not assembler.pending:
            return assembler.push_in_place(self.buf)
        return assembler.push(self.buf)  # a leftover too long to sit in front


def block_reader(size: int) -> BlockReader:
    """This thread's BlockReader for blocks of `size` bytes."""
    reader = getattr(_readers, "reader", None)
    if reader is None or reader.size != size:
        reader = _readers.reader = BlockReader(size)
    return reader


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
        reader = block_reader(block_size)
        while stop is None or not stop.is_set():
            n = reader.read(self.fd, self.pos, self.assembler)
            if not n:
                break
            if verify and not self.head_unchanged():
                return False
            if len(self.head) == self.pos < head_bytes:
                # The head is the file's first bytes as we read them: taken from this very read,
                # never from a second one that could already see a truncated file.
                self.head += reader.fresh(min(n, head_bytes - self.pos))
            self.pos += n
            counter.feed(*reader.lines(self.assembler))
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
            # The head also when the file is deleted (gzip done): the archive is recognised by it.
            self.refresh_head(head_bytes)
            st = os.fstat(self.fd)
            if st.st_nlink:
                # A copytruncate copy can be shorter than our offset: we read the lines written after
                # logrotate's copy from the original, before its truncate. Remember the size it has,
                # or it never looks known again and is read whole as a generation we never saw.
                known = KnownGeneration(self.fp_len, self.fp, min(self.pos, st.st_size), st.st_mtime_ns)
        except OSError:
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass
        return known
