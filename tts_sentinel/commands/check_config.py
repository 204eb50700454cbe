"""`tts-sentinel check-config FILE`: validate a config file."""

from __future__ import annotations

import argparse

from tts_sentinel.config import ConfigError, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel check-config`."""
    parser.add_argument("file", help="the YAML config file to validate")


def run(args: argparse.Namespace) -> int:
    """`tts-sentinel check-config FILE`: 0 when valid, 2 with every problem printed otherwise."""
    try:
        load_config(args.file)
    except ConfigError as exc:
        print(exc)
        return 2
    print(f"{args.file}: ok")
    return 0
