"""XID errors from the kernel log, for those NVML cannot deliver (79, 119, 120: the GPU is gone).

The log is read by the exporter's own log sources: `CommandSource` (`journalctl -k -f -n 0
-o cat`) or `RotatingFileSource` (`/var/log/kern.log`), exactly as the service logs are.
Their blocks of complete lines go to a `KernelXidSink` instead of the pattern counter: it
finds the `NVRM: Xid` lines (gpu_xid parses them), maps the PCI address to the NVML index and
counts them in the shared tally with source `kernel_log`.
"""

from __future__ import annotations

import logging
import threading

from tts_sentinel.exporter.gpu_config import KernelLogConfig
from tts_sentinel.exporter.gpu_xid import PciMap, XidTally, kernel_xids
from tts_sentinel.exporter.logs.command_source import CommandSource
from tts_sentinel.exporter.logs.file_source import FileSourceOptions, RotatingFileSource
from tts_sentinel.loghistory.config import LogCommandConfig

log = logging.getLogger(__name__)

SOURCE_NAME = "kernel"


class Tally:
    """A number a log source sets or increments (the part of a prometheus child it uses)."""

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value


class KernelXidSink:
    """Takes the place of a LogCounter for the kernel log: `feed()` counts XID lines.

    It has what the log sources call on their counter (`feed`, `up`, `read_errors`,
    `rotations`, `truncations`), and nothing else.
    """

    def __init__(self, tally: XidTally, pci_map: PciMap) -> None:
        self._tally = tally
        self._pci_map = pci_map
        self.up = Tally()
        self.read_errors = Tally()
        self.rotations = Tally()
        self.truncations = Tally()
        self.lines_with_xid = 0

    def feed(self, block: bytes, long_lines: int = 0) -> None:
        """Count the XIDs in one block of complete lines."""
        for found in kernel_xids(block):
            gpu = self._pci_map.gpu_of(found.pci)
            self._tally.add(gpu, found.xid, "kernel_log")
            self.lines_with_xid += 1
            log.warning("GPU %s (PCI %s): XID %d (kernel log)", gpu, found.pci, found.xid)


class KernelLogWatcher:
    """Follows the configured kernel log (command or file) into a KernelXidSink."""

    def __init__(self, config: KernelLogConfig, sink: KernelXidSink) -> None:
        self.config = config
        self.sink = sink
        self._stop = threading.Event()
        self._command: CommandSource | None = None
        self._file: RotatingFileSource | None = None
        self._thread: threading.Thread | None = None
        if config.argv:
            command = LogCommandConfig(
                name=SOURCE_NAME, argv=config.argv,
                restart_backoff_max_seconds=config.restart_backoff_max_seconds,
            )
            # the sink stands in for a LogCounter: same calls, XIDs instead of patterns
            self._command = CommandSource(command, sink, stop_event=self._stop)  # type: ignore[arg-type]
        elif config.path is not None:
            self._file = RotatingFileSource(
                SOURCE_NAME, config.path, sink, FileSourceOptions(start_at="end"),  # type: ignore[arg-type]
                stop_event=self._stop,
            )

    def start(self) -> None:
        """Start the command, or note where the file ends now and poll it in a thread."""
        self._stop.clear()
        if self._command is not None:
            self._command.start()
        if self._file is not None and self._thread is None:
            self._file.prime()
            self._file.poll()  # nothing new yet; says whether the file can be read
            self._thread = threading.Thread(target=self._poll_file, name="gpu-kernel-log", daemon=True)
            self._thread.start()

    def poll_once(self) -> None:
        """Read what the file gained since the last poll, in the caller's thread (tests)."""
        if self._file is not None:
            self._file.poll()

    def stop(self) -> None:
        """Stop the command or the file thread; a file is read to its end first."""
        self._stop.set()
        if self._command is not None:
            self._command.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._file is not None:
            self._file.finish_rotated()
            self._file.close()

    def _poll_file(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # a bug in one poll must not end XID counting for good
                log.exception("kernel log poll failed; retrying")
            self._stop.wait(self.config.poll_interval_seconds)
