"""`tts-sentinel exporter`: serve /metrics, /probe and /healthz until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from tts_sentinel.config import ConfigError, load_config
from tts_sentinel.exporter.server import Exporter

log = logging.getLogger("tts_sentinel.exporter")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel exporter`."""
    parser.add_argument("--config", help="YAML config file (default: $TTS_SENTINEL_CONFIG or built-in defaults)")
    parser.add_argument("--log-level", default="INFO", help="Python log level (default INFO)")


def run(args: argparse.Namespace) -> int:
    """Run the exporter until SIGINT or SIGTERM."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # one INFO line per probe request from httpx would bury what matters; its warnings still show
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        config = load_config(args.config).exporter
    except ConfigError as exc:
        print(exc)
        return 2
    exporter = Exporter(config)
    try:
        exporter.start()
    except OSError as exc:
        print(f"cannot listen on {config.listen_host}:{config.listen_port}: {exc}; set exporter.listen_port.")
        return 1
    log.info("exporter listening on http://%s:%d/metrics", config.listen_host, config.listen_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("exporter stopping")
    exporter.stop()
    return 0
