"""How every long-running process logs: readable lines for a person, or one JSON object a line for a shipper.

`configure_logging` is called once by `exporter`, `receiver` and `simulate`. A record's structured
data rides in `extra=fields(...)`: text lines append it as `key=value`, JSON lines carry it as keys
next to `ts`, `level`, `logger` and `msg`. Both formats escape control characters (alert text reaches
log lines) and strip URL userinfo. Libraries that log one INFO line per request are held at WARNING.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from tts_sentinel.printable import PrintableFormatter, printable, printable_json
from tts_sentinel.userinfo import strip_userinfo

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[str, ...] = ("text", "json")
TEXT_LAYOUT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# One line per HTTP request each (httpx: every probe, page and verification; uvicorn.access: every post).
QUIET_LIBRARIES = ("httpx", "httpcore", "urllib3", "uvicorn.access", "websockets", "asyncio")
_RESERVED = frozenset({"ts", "level", "logger", "msg", "exc"})


class LoggingConfig(BaseModel):
    """The `logging` section: the format and level of the processes' own log lines (flags override it)."""

    model_config = ConfigDict(extra="forbid")

    format: LogFormat = "text"
    level: str = "INFO"

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        name = value.upper()
        if name not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}; use DEBUG, INFO, WARNING or ERROR")
        return name


def fields(**values: Any) -> dict[str, Any]:
    """`extra=` for a log call: structured data shown as `key=value` in text and as keys in JSON."""
    return {"fields": values}


def _field_text(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        value = ",".join(str(v) for v in value) or "none"
    text = printable(str(value))
    if not text or any(c in text for c in ' "='):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(PrintableFormatter):
    """`2026-12-01 20:15:00,123 WARNING logger: message key=value ...`, safe to print."""

    def __init__(self) -> None:
        super().__init__(TEXT_LAYOUT)

    def format(self, record: logging.LogRecord) -> str:
        """The line, its fields appended, URL userinfo stripped."""
        line = super().format(record)
        extra = getattr(record, "fields", None)
        if extra:
            head, sep, tail = line.partition("\n")  # fields go on the message line, before a traceback
            line = head + "".join(f" {k}={_field_text(v)}" for k, v in extra.items()) + sep + tail
        return strip_userinfo(line)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, ISO 8601), level, logger, msg, the record's fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line (no raw newline, control or bidi character in it)."""
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        data: dict[str, Any] = {"ts": ts, "level": record.levelname, "logger": record.name,
                                "msg": record.getMessage()}
        for key, value in (getattr(record, "fields", None) or {}).items():
            data[f"field_{key}" if key in _RESERVED else key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        text = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
        return strip_userinfo(printable_json(text))


def configure_logging(
    log_format: str = "text",
    level: str | int = "INFO",
    stream: IO[str] | None = None,
    quiet: Iterable[str] = QUIET_LIBRARIES,
) -> None:
    """Send every log record of this process to `stream` (stderr) in `log_format`; idempotent."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in quiet:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def add_logging_arguments(parser: Any) -> None:
    """`--log-format` and `--log-level`; unset, they come from the config's `logging` section."""
    parser.add_argument("--log-format", choices=LOG_FORMATS,
                        help="text (default) or json: one JSON object a line, for log shippers (logging.format)")
    parser.add_argument("--log-level", help="DEBUG, INFO (default), WARNING or ERROR (logging.level)")


def configure_from(args: Any, config: LoggingConfig) -> tuple[str, str]:
    """configure_logging with the flags of `add_logging_arguments` over the config's `logging` section;
    returns the (format, level) it chose, for a child process to log the same way."""
    level = (args.log_level or config.level).upper()
    if level not in logging.getLevelNamesMapping():
        raise ValueError(f"unknown log level {args.log_level!r}; use DEBUG, INFO, WARNING or ERROR")
    log_format = args.log_format or config.format
    configure_logging(log_format, level)
    return log_format, level
