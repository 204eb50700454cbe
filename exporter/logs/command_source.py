"""Follow a command's output as a log: `journalctl -f -o cat -u UNIT`, `docker logs -f NAME`, ...

Real Qwen3-TTS and vLLM-Omni write only to stdout/stderr, so their logs are read
from the process manager. The argv list runs without a shell; when the command
exits (container restarted, journal rotated) it is started again after a backoff
that doubles up to a maximum and resets once a run lasted longer than that maximum.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time

from tts_sentinel.exporter.logs.metrics import LogCounter
from tts_sentinel.loghistory.config import LogCommandConfig
from tts_sentinel.loghistory.scanner import LineAssembler
from tts_sentinel.procgroup import spawn_group, stop_group

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024


class CommandSource:
    """One command, read by its own thread; every stdout line is one log line."""

    def __init__(
        self,
        config: LogCommandConfig,
        counter: LogCounter,
        max_line_bytes: int = 64 * 1024,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.counter = counter
        self.max_line_bytes = max_line_bytes
        self._stop = stop_event or threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.starts = 0  # how many times the command was started (restarts = starts - 1)

    def start(self) -> None:
        """Start the reader thread (which starts the command)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"log-command-{self.name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the command (SIGTERM to its process group, SIGKILL after 5 s) and join the thread."""
        self._stop.set()
        with self._proc_lock:
            proc = self._proc
        if proc is not None:
            stop_group(proc)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        cfg = self.config
        backoff = cfg.restart_backoff_initial_seconds
        while not self._stop.is_set():
            started = time.monotonic()
            self._run_once()
            if self._stop.is_set():
                break
            if time.monotonic() - started >= cfg.restart_backoff_max_seconds:
                backoff = cfg.restart_backoff_initial_seconds
            log.info("log %s: command %s ended; starting it again in %.1f s", self.name, cfg.argv[0], backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, cfg.restart_backoff_max_seconds)

    def _run_once(self) -> None:
        cfg = self.config
        try:
            # its own process group, so stop() reaches its children too
            proc = spawn_group(cfg.argv, merge_stderr=cfg.include_stderr)
        except OSError as exc:
            self.counter.read_errors.inc()
            self.counter.up.set(0)
            log.warning("log %s: cannot run %s (%s); check the command in the config.",
                        self.name, cfg.argv, exc)
            return
        with self._proc_lock:
            self._proc = proc
        if self._stop.is_set():  # stop() ran before the process was visible to it
            stop_group(proc)
        self.starts += 1
        self.counter.up.set(1)
        assembler = LineAssembler(self.max_line_bytes)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        try:
            while True:
                data = os.read(fd, READ_CHUNK)
                if not data:
                    break
                block, cut = assembler.push(data)
                self.counter.feed(block, cut)
        except OSError as exc:
            self.counter.read_errors.inc()
            log.warning("log %s: reading the command output failed (%s)", self.name, exc)
        finally:
            self.counter.feed(assembler.flush())
            proc.stdout.close()
            rc = proc.wait()
            with self._proc_lock:
                self._proc = None
            self.counter.up.set(0)
            if rc != 0 and not self._stop.is_set():
                self.counter.read_errors.inc()
                log.warning("log %s: command %s exited with status %s", self.name, cfg.argv[0], rc)
