"""`tts-sentinel simulate web|inference`: run one component of the stand-in TTS service.

Fault API (on either port; a request for the other component is forwarded to it):
  POST /admin/fault {"fault": NAME, "component": "web"|"inference"}   inject
  POST /admin/fault {"fault": "none", ...}  or  DELETE /admin/fault    clear
  GET  /admin/fault                                                    current fault
Faults live in memory: restarting the component clears them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from simulator.config import SimulatorConfig
from simulator.faults import FAULTS
from simulator.inference import InferenceService
from simulator.logfiles import open_log
from simulator.service import Component, make_server
from simulator.web import WebFront


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel simulate`."""
    parser.add_argument("component", choices=["web", "inference"], help="which process to run")
    parser.add_argument("--config", help="YAML config file (section `simulator`)")
    parser.epilog = "faults: " + ", ".join(f"{k} ({v[1]})" for k, v in FAULTS.items())


def build(component: str, config: SimulatorConfig) -> Component:
    """The component object with its log files opened."""
    if component == "web":
        return WebFront(config, open_log(config.log_dir, "webui.log"))
    return InferenceService(
        config, open_log(config.log_dir, "inference.log"), open_log(config.log_dir, "health.log"),
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; exit 0 then, or non-zero when a crash fault fires."""
    from tts_sentinel.config import ConfigError, load_config

    try:
        config = load_config(args.config).simulator
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    component = build(args.component, config)
    if isinstance(component, InferenceService):
        component.load_model()
    try:
        server = make_server(component)
    except OSError as exc:
        component.log.error("Cannot bind %s:%d: %s", config.host, component.port, exc)
        print(f"cannot listen on {config.host}:{component.port}: {exc}", file=sys.stderr)
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if isinstance(component, WebFront):
        component.install_reload_signal()
    if isinstance(component, InferenceService):
        component.start_self_check()
    component.log.info(
        "%s listening on http://%s:%d (protocol %s)",
        component.name, config.host, component.port, config.protocol,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        component.log.info("%s shutting down", component.name)
    finally:
        server.server_close()
        if isinstance(component, InferenceService):
            component.stop_self_check()
    return 0


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
