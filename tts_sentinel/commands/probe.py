"""`tts-sentinel probe MODULE`: run one probe module once and print the verdict.

Exit status 0 when the probe succeeds, 1 when it fails, 2 for an unknown module or
a bad config: usable from cron, a deploy script or a supervisord event listener.
Any configured module runs, enabled or not.
"""

from __future__ import annotations

import argparse
import sys
import time

from tts_sentinel.config import ConfigError, load_config
from tts_sentinel.exporter.probes.collector import single_run_exposition
from tts_sentinel.exporter.probes.config import ProbesConfig
from tts_sentinel.exporter.probes.prober import verdict
from tts_sentinel.exporter.probes.registry import prober_for


def load_probes(path: str | None) -> ProbesConfig | None:
    """The `exporter.probes` section of the config file, or None after printing why it is unusable."""
    try:
        return load_config(path).exporter.probes
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel probe`."""
    parser.add_argument("module", help="probe module: health, synthesis, semantic, quality or an extra module name")
    parser.add_argument("--config", help="YAML config file (section exporter.probes)")
    parser.add_argument("--metrics", action="store_true", help="also print the run's Prometheus exposition")


def run(args: argparse.Namespace) -> int:
    """Run the module once; print `MODULE: ok|FAIL [reasons] (seconds) detail`."""
    probes = load_probes(args.config)
    if probes is None:
        return 2
    modules = probes.all_modules()
    if args.module not in modules:
        print(f"unknown probe module {args.module!r}; configured: {', '.join(modules)}", file=sys.stderr)
        return 2
    cfg = modules[args.module]
    prober = prober_for(cfg.prober)
    started = time.monotonic()
    result = prober.run(cfg, probes)
    seconds = time.monotonic() - started
    print(verdict(args.module, result, seconds))
    if args.metrics:
        sys.stdout.write(single_run_exposition(args.module, prober.reasons, result, seconds).decode())
    return 0 if result.success else 1
