"""Log files of the stand-in service, in the seed's line format.

`2024-06-15 14:22:03,102 [ERROR] message` is exactly what the logging module
writes with "%(asctime)s [%(levelname)s] %(message)s". WatchedFileHandler reopens
the file after an outside rename, so rotation tests can move the file away.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LINE_FORMAT = "%(asctime)s [%(levelname)s] %(message)s"


def open_log(log_dir: Path, filename: str) -> logging.Logger:
    """A logger that appends seed-format lines to `log_dir/filename` (created if missing)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"tts-simulator.{filename}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    handler = logging.handlers.WatchedFileHandler(log_dir / filename, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    logger.addHandler(handler)
    return logger


def flush(logger: logging.Logger) -> None:
    """Flush every handler (before the process exits on purpose)."""
    for handler in logger.handlers:
        handler.flush()
