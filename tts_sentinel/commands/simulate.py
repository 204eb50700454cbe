"""`tts-sentinel simulate web|inference`: run one component of the stand-in TTS service."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from tts_sentinel import __version__
from tts_sentinel.config import ConfigError, config_source, load_config
from tts_sentinel.logsetup import add_logging_arguments, configure_from, fields
from tts_sentinel.simulator.faults import FAULTS
from tts_sentinel.simulator.inference import InferenceService
from tts_sentinel.simulator.runtime import build
from tts_sentinel.simulator.service import make_server
from tts_sentinel.simulator.web import WebFront


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel simulate`."""
    parser.add_argument("component", choices=["web", "inference"], help="which process to run")
    parser.add_argument("--config", help="YAML config file (section `simulator`)")
    add_logging_arguments(parser)
    parser.epilog = "faults: " + ", ".join(f"{k} ({v[1]})" for k, v in FAULTS.items())


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; exit 0 then, or non-zero when a crash fault fires."""
    try:
        loaded = load_config(args.config)
        configure_from(args, loaded.logging)
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    config = loaded.simulator
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
    # The line above goes to the simulated service's own log file; this one to stderr, as ours do.
    logging.getLogger("tts_sentinel.simulator").info(
        "simulator %s listening on http://%s:%d", component.name, config.host, component.port,
        extra=fields(version=__version__, listen=f"{config.host}:{component.port}",
                     config=config_source(args.config),
                     auth="api_key" if config.api_key else "none", protocol=config.protocol,
                     sources=[config.log_dir]),
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
