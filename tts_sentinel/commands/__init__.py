"""The command floor: one module per `tts-sentinel` subcommand.

Each module exposes `add_arguments(parser)` and `run(args) -> int`. A command parses
its arguments, loads the whole config once (`tts_sentinel.config`) and hands each
library only its own typed section; no library imports this floor. Modules are
imported only when their subcommand runs, so `--help` stays fast.
"""

from __future__ import annotations

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "exporter": ("tts_sentinel.commands.exporter", "run the Prometheus exporter (/metrics, /probe, /healthz)"),
    "receiver": ("tts_sentinel.commands.receiver", "run the Alertmanager webhook receiver (/alerts, /actions)"),
    "triage": ("tts_sentinel.commands.triage", "what happened in the last N minutes, and its root cause"),
    "probe": ("tts_sentinel.commands.probe", "run one probe module once and print the verdict"),
    "baseline": ("tts_sentinel.commands.baseline", "record L3 templates and reference audio from a healthy service"),
    "mine": ("tts_sentinel.commands.mine", "mine log templates to find new anomaly patterns"),
    "validate": ("tts_sentinel.commands.validate", "run the full probe battery against a candidate model version"),
    "simulate": ("tts_sentinel.commands.simulate", "run the stand-in TTS service with fault injection"),
    "demo": ("tts_sentinel.commands.demo", "run the whole stack on loopback"),
    "drill": ("tts_sentinel.commands.drill", "inject a fault into a running demo and follow its incident"),
    "soak": ("tts_sentinel.commands.soak", "inject a sequence of faults, score each incident against a baseline"),
    "actions": ("tts_sentinel.commands.actions", "show the remediation journal"),
    "check-config": ("tts_sentinel.commands.check_config", "validate a config file"),
    "init": ("tts_sentinel.commands.init", "look at a running TTS service and write a config that watches it"),
    "doctor": ("tts_sentinel.commands.doctor", "check every configured source and dependency live"),
    "deploy": ("tts_sentinel.commands.deploy", "write rules, systemd units or Kubernetes manifests for a deployment"),
}
