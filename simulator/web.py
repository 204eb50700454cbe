"""The web front (supervisord program `tts-webui`): GET /health, a landing page, SIGUSR1 reload."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.faults import NONE, WEB
from tts_sentinel.simulator.service import Component, Reply, ServiceHandler

PAGE = b"<!doctype html><title>Qwen3-TTS</title><h1>Qwen3-TTS (simulator)</h1>\n"


class WebFront(Component):
    """The seed's WebUI: answers health checks; its faults are hang, error500, crash, segfault."""

    name = WEB

    def __init__(self, config: SimulatorConfig, log: logging.Logger) -> None:
        super().__init__(config, log)
        self.reloads = 0

    def install_reload_signal(self) -> None:
        """SIGUSR1 rebuilds the web app context; the model stays on the GPU (seed §4.1)."""
        signal.signal(signal.SIGUSR1, self._on_sigusr1)

    def _on_sigusr1(self, signum: int, frame: FrameType | None) -> None:
        self.reload()

    def reload(self) -> None:
        """Hot reload: clear the web front's state (and so its fault), keep the model loaded."""
        previous = self.fault.set(NONE)
        self.reloads += 1
        self.log.info(
            "Received SIGUSR1: web app context reloaded (reload %d, cleared fault %s); "
            "model stays loaded on GPU", self.reloads, previous,
        )

    def route(self, handler: ServiceHandler, method: str, path: str) -> tuple[int, str, bytes]:
        """/health and / ; everything else is 404."""
        self.fault.hold(self.config.hang_seconds)
        if self.fault.name == "error500":
            raise Reply(500, {"status": "error", "detail": "internal server error (injected)"})
        if path == "/health" and method in ("GET", "HEAD"):
            raise Reply(200, {"status": "ok"})
        if path == "/" and method in ("GET", "HEAD"):
            return 200, "text/html; charset=utf-8", PAGE
        raise Reply(404, {"error": f"no route {method} {path}"})
