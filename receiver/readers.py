"""The journal's reads outside a transaction: a pool of SQLite connections, the rows read out.

WAL mode lets readers run beside the writer, so reads do not queue on the journal's lock. They
were a connection per thread. The worker process runs a thread per target (200 in the storm
bench), so that made 200 connections, each parsing the schema on its first read and keeping its
own page cache. Now a connection serves one read at a time and goes back to the pool: as many
exist as reads ever ran at once. The read's rows are fetched before its connection goes back, so
the caller gets `Rows` (fetchone, fetchall, iteration), not a live cursor. The journal's reads
are bounded (by limit, by id or by target).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Rows:
    """The rows of one SELECT, read out: `fetchone()`, `fetchall()`, iteration."""

    __slots__ = ("_next", "_rows")

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows
        self._next = 0

    def fetchone(self) -> Any:
        """The next row, or None past the last."""
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    def fetchall(self) -> list[Any]:
        """The rows not fetched yet."""
        rest = self._rows[self._next:] if self._next else self._rows
        self._next = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class ReaderPool:
    """Reader connections to one journal file, each lent to one read at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._free: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # the list of connections (to close them), never a read

    def select(self, sql: str, params: tuple[Any, ...]) -> Rows:
        """Run one SELECT on a free connection; its rows (sqlite3.Error as SQLite raises it)."""
        try:
            conn = self._free.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            return Rows(conn.execute(sql, params).fetchall())
        finally:
            self._free.put(conn)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA cache_size=-512")  # KiB
        with self._lock:
            self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection (a read still running raises sqlite3.ProgrammingError)."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
