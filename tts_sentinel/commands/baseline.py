"""`tts-sentinel baseline`: record L3 templates and reference audio from a healthy service."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tts_sentinel.commands.probe import load_probes
from tts_sentinel.exporter.baseline import record_baseline
from tts_sentinel.exporter.probes.speech import SpeechError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel baseline`."""
    parser.add_argument("--config", help="YAML config file (section exporter.probes)")
    parser.add_argument("--model-id", help="identity of the deployed model (default: exporter.probes.model_id)")
    parser.add_argument("--dir", type=Path, help="baseline folder (default: exporter.probes.baseline_dir)")


def run(args: argparse.Namespace) -> int:
    """Record the baseline; 0 on success, 1 when the service is unreachable or unhealthy, 2 on bad config."""
    probes = load_probes(args.config)
    if probes is None:
        return 2
    try:
        manifest = record_baseline(probes, args.model_id, args.dir)
    except SpeechError as exc:
        print(f"baseline not recorded ({exc.reason}): {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"baseline not recorded: cannot write ({exc}); check baseline_dir or pass --dir", file=sys.stderr)
        return 1
    print(f"baseline recorded: {manifest}")
    return 0
