"""`tts-sentinel exporter`: serve /metrics, /probe and /healthz until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from tts_sentinel import __version__
from tts_sentinel.config import ConfigError, config_source, load_config
from tts_sentinel.exporter.config import ExporterConfig
from tts_sentinel.exporter.server import Exporter
from tts_sentinel.logsetup import add_logging_arguments, configure_from, fields

log = logging.getLogger("tts_sentinel.exporter")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel exporter`."""
    parser.add_argument("--config", help="YAML config file (default: $TTS_SENTINEL_CONFIG or built-in defaults)")
    add_logging_arguments(parser)


def startup_fields(config: ExporterConfig, config_path: str) -> dict[str, Any]:
    """What the startup line says: where it listens, what it reads and what it probes."""
    probes = []
    for name, module in config.probes.enabled_modules().items():
        url = getattr(module, "url", None) or getattr(getattr(module, "request", None), "url", None)
        probes.append(f"{name}={url}" if url else name)
    return fields(
        version=__version__, listen=f"{config.listen_host}:{config.listen_port}",
        config=config_path, auth="none (read-only metrics)",
        targets=probes,
        sources=[f"{f.name}={f.path}" for f in config.logs.files]
        + [f"{c.name}={c.argv[0]}" for c in config.logs.commands],
        gpu="nvml" if config.gpu.enabled else "disabled",
        state_dir=config.state_dir,
    )


def run(args: argparse.Namespace) -> int:
    """Run the exporter until SIGINT or SIGTERM."""
    try:
        loaded = load_config(args.config)
        configure_from(args, loaded.logging)
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    config = loaded.exporter
    exporter = Exporter(config)
    try:
        exporter.start()
    except OSError as exc:
        print(f"cannot listen on {config.listen_host}:{config.listen_port}: {exc}; set exporter.listen_port.",
              file=sys.stderr)
        return 1
    log.info("exporter listening on http://%s:%d/metrics", config.listen_host, config.listen_port,
             extra=startup_fields(config, config_source(args.config)))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("exporter stopping")
    exporter.stop()
    return 0
