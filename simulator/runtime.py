"""`tts-sentinel simulate web|inference`: run one component of the stand-in TTS service.

Fault API (on either port; a request for the other component is forwarded to it):
  POST /admin/fault {"fault": NAME, "component": "web"|"inference"}   inject
  POST /admin/fault {"fault": "none", ...}  or  DELETE /admin/fault    clear
  GET  /admin/fault                                                    current fault
Faults live in memory: restarting the component clears them.
"""

from __future__ import annotations

import threading

from tts_sentinel.simulator.config import SimulatorConfig
from tts_sentinel.simulator.inference import InferenceService
from tts_sentinel.simulator.logfiles import open_log
from tts_sentinel.simulator.service import Component, make_server
from tts_sentinel.simulator.web import WebFront


def build(component: str, config: SimulatorConfig) -> Component:
    """The component object with its log files opened."""
    if component == "web":
        return WebFront(config, open_log(config.log_dir, "webui.log"))
    return InferenceService(
        config, open_log(config.log_dir, "inference.log"), open_log(config.log_dir, "health.log"),
    )


class InProcessSimulator:
    """Both components served from threads of this process (for tests, benchmarks and baselines).

    Real HTTP servers on real ports, only without the separate processes: `crash` would end
    the calling process, so use the `simulate` command for that fault.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.web = build("web", config)
        self.inference = build("inference", config)
        self._servers = [make_server(self.web), make_server(self.inference)]
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
                         for s in self._servers]

    @property
    def web_url(self) -> str:
        """Base URL of the web front."""
        return f"http://{self.config.host}:{self.config.web_port}"

    @property
    def api_url(self) -> str:
        """Base URL of the inference API."""
        return f"http://{self.config.host}:{self.config.api_port}"

    def __enter__(self) -> InProcessSimulator:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for component in (self.web, self.inference):
            component.fault.set("none")  # release requests held by `hang`
        for server in self._servers:
            server.shutdown()
            server.server_close()
