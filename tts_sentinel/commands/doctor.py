"""`tts-sentinel doctor`: check every configured source and dependency live; exit 1 on any failure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tts_sentinel.config import ConfigError, find_config, load_config
from tts_sentinel.onboarding.doctor import DEFAULT_PROMETHEUS_URL, basic_auth, run_checks
from tts_sentinel.onboarding.report import format_json, format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel doctor`."""
    parser.add_argument("--config", help="config file (default: $TTS_SENTINEL_CONFIG, ./tts-sentinel.yml, "
                                         "/etc/tts-sentinel/config.yml)")
    parser.add_argument("--prometheus", default=DEFAULT_PROMETHEUS_URL,
                        help=f"Prometheus to ask about rules and targets (default {DEFAULT_PROMETHEUS_URL})")
    parser.add_argument("--alertmanager", help="Alertmanager to ask about routes (default: receiver.alertmanager_url; "
                                               "with receiver.alertmanager_username/_password_file)")
    parser.add_argument("--prometheus-username", help="Prometheus' basic auth user (its --web.config.file)")
    parser.add_argument("--prometheus-password-file", type=Path, help="that user's password, in a 0600 file")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")


def run(args: argparse.Namespace) -> int:
    """0 when every check passed, 1 when one failed, 2 when the config itself is unusable."""
    path = find_config(args.config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"doctor: {exc}", file=sys.stderr)
        return 2
    try:
        prometheus_auth = basic_auth(args.prometheus_username, args.prometheus_password_file)
    except ValueError as exc:
        print(f"doctor: {exc}", file=sys.stderr)
        return 2
    checks = run_checks(config, path, args.prometheus, args.alertmanager, prometheus_auth=prometheus_auth)
    print(format_json(checks) if args.json else format_table(checks))
    return 1 if any(c.failed for c in checks) else 0
