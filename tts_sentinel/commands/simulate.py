"""`tts-sentinel simulate web|inference`: run one component of the stand-in TTS service."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from tts_sentinel.config import ConfigError, load_config
from tts_sentinel.simulator.faults import FAULTS
from tts_sentinel.simulator.inference import InferenceService
from tts_sentinel.simulator.runtime import build
from tts_sentinel.simulator.service import make_server
from tts_sentinel.simulator.web import WebFront


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel simulate`."""
    parser.add_argument("component", choices=["web", "inference"], help="which process to run")
    parser.add_argument("--config", help="YAML config file (section `simulator`)")
    parser.epilog = "faults: " + ", ".join(f"{k} ({v[1]})" for k, v in FAULTS.items())


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; exit 0 then, or non-zero when a crash fault fires."""
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
