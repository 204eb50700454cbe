"""`tts-sentinel receiver`: the Alertmanager webhook receiver under uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from tts_sentinel.config import ConfigError, load_config
from tts_sentinel.receiver.app import create_app
from tts_sentinel.receiver.auth import read_token
from tts_sentinel.receiver.service import ReceiverService


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel receiver`."""
    parser.add_argument("--config", help="YAML config file (default: $TTS_SENTINEL_CONFIG, else defaults)")
    parser.add_argument("--token-file", type=Path, help="file holding the bearer token (overrides the config)")
    parser.add_argument("--insecure", action="store_true", help="accept requests without a token (never in production)")
    parser.add_argument("--host", help="listen address (overrides receiver.listen_host)")
    parser.add_argument("--port", type=int, help="listen port (overrides receiver.listen_port)")
    parser.add_argument("--dry-run", action="store_true", help="journal what would run, run nothing")



def run(args: argparse.Namespace) -> int:
    """Load the config, check the token, start workers and serve until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    rc = config.receiver
    updates: dict[str, object] = {}
    if args.host:
        updates["listen_host"] = args.host
    if args.port:
        updates["listen_port"] = args.port
    if args.dry_run:
        updates["dry_run"] = True
    if updates:
        rc = rc.model_copy(update=updates)
    try:
        token = read_token(args.token_file or rc.token_file)
    except ValueError as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    if token is None and not args.insecure:
        print(
            "receiver: no bearer token configured; set receiver.token_file or --token-file "
            "(or pass --insecure to accept unauthenticated requests, never in production).",
            file=sys.stderr,
        )
        return 2
    service = ReceiverService(rc, token, logs_config=config.exporter.logs)
    service.start()
    try:
        uvicorn.run(
            create_app(service),
            host=rc.listen_host,
            port=rc.listen_port,
            log_level="warning",
            access_log=False,
        )
    finally:
        service.stop()
    return 0
