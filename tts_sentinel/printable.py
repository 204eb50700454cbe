"""Text that came from an alert, made safe for a terminal or a log line.

Alert labels and annotations are written by whoever can post to Alertmanager. Printed raw, an
`ESC [2J` clears the operator's screen, `ESC ]0;…BEL` retitles the window, a newline forges a
log line and a bidi override reorders what is read. Every such character becomes a visible escape.
"""

from __future__ import annotations

import logging
import re
from types import TracebackType

# C0 controls, DEL, C1 controls (0x9b is an 8-bit CSI), and the bidi embedding/override/isolate marks.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control or bidi character written as `\\xNN` / `\\uNNNN`."""
    return _UNSAFE.sub(_escape, text)


def printable_json(text: str) -> str:
    """JSON text with the characters json.dumps(ensure_ascii=False) leaves raw written as `\\uNNNN`.

    json escapes C0 controls itself; DEL, C1 and bidi marks can only sit inside strings, where
    `\\uNNNN` means the same character to a JSON reader and nothing to a terminal.
    """
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class PrintableFormatter(logging.Formatter):
    """A Formatter whose messages carry no raw control characters (tracebacks keep their newlines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(  # noqa: N802 (logging's name)
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> str:
        return _UNSAFE_BUT_NEWLINE.sub(_escape, super().formatException(ei))
