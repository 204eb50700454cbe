"""`tts-sentinel deploy rules|systemd|kubernetes --out DIR`: deployment files from the shipped sources.

Nothing here is a second copy: rules come from `rules/*.rules.yml` (runbook links under one base),
units from `deploy/systemd/`, manifests from `deploy/kubernetes/` plus what is generated from the rules.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from tts_sentinel.config import ConfigError, parse_config
from tts_sentinel.managers import SystemdConfig
from tts_sentinel.onboarding.kubernetes import KubernetesPlan, dump, manifests
from tts_sentinel.onboarding.polkit import polkit_rule
from tts_sentinel.runbook_urls import DEFAULT_RUNBOOK_BASE, with_runbook_urls
from tts_sentinel.shipped import rule_files, shipped_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel deploy`."""
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    rules = sub.add_parser("rules", help="Prometheus rule files with runbook links under --runbook-base")
    systemd = sub.add_parser("systemd", help="hardened units for the exporter and the receiver, their user, and "
                                             "the polkit rule for the configured systemd units")
    kube = sub.add_parser("kubernetes", help="DaemonSet, Deployment, RBAC, Services, ConfigMap, PrometheusRule, "
                                             "PodMonitor/ServiceMonitor and a kustomization")
    for p in (rules, systemd, kube):
        p.add_argument("--out", type=Path, required=True, help="folder to write into")
        p.add_argument("--force", action="store_true", help="overwrite files that exist")
    for p in (rules, kube):
        p.add_argument("--runbook-base", help="where runbooks live: BASE/AlertName, or a template with {alert} "
                                              f"(default {DEFAULT_RUNBOOK_BASE}; in Kubernetes the receiver Service)")
    kube.add_argument("--namespace", default="default", help="namespace of the TTS Deployments and of ours")
    kube.add_argument("--image", default="tts-sentinel:latest", help="image built from the Dockerfile")
    kube.add_argument("--service", default="qwen3-tts", help="the `service` label the receiver's target matches")
    kube.add_argument("--tts-url", default="http://qwen3-tts-inference:8091", help="vLLM-Omni in the cluster")
    kube.add_argument("--web-deployment", default="qwen3-tts-inference")
    kube.add_argument("--inference-deployment", default="qwen3-tts-inference")
    kube.add_argument("--config", type=Path, help="your config for the ConfigMap (default: a starting one)")
    systemd.add_argument("--config", type=Path, help="your config: the polkit rule allows its systemd targets' units "
                                                     "(default: the default unit names)")


def _systemd_units(config: Path | None) -> list[str]:
    """The units the receiver's systemd targets act on (the defaults without a config or such a target)."""
    targets = parse_config(config.read_text(encoding="utf-8"), str(config)).receiver.targets if config else []
    chosen = [t.systemd for t in targets if t.actuator == "systemd"] or [SystemdConfig()]
    return [u for s in chosen for u in (s.web_unit, s.inference_unit)]


def _write(out: Path, files: dict[str, str], force: bool) -> int:
    existing = [name for name in files if (out / name).exists()]
    if existing and not force:
        print(f"deploy: {', '.join(str(out / n) for n in existing)} already exist; pass --force to overwrite.",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Write the chosen files; 0 written, 2 refused (existing files, invalid --config)."""
    if args.what == "rules":
        base = args.runbook_base or DEFAULT_RUNBOOK_BASE
        files = {p.name: f"# generated from {p.name} by `tts-sentinel deploy rules`; edit the source, not this\n"
                 + yaml.safe_dump(with_runbook_urls(yaml.safe_load(p.read_text(encoding="utf-8")), base),
                                  sort_keys=False, allow_unicode=True, width=200)
                 for p in rule_files()}
        return _write(args.out, files, args.force)
    if args.what == "systemd":
        source = shipped_dir("deploy") / "systemd"
        files = {p.name: p.read_text(encoding="utf-8") for p in sorted(source.iterdir())
                 if p.suffix in (".service", ".conf")}
        try:
            units = _systemd_units(args.config)
        except (OSError, ConfigError) as exc:
            print(f"deploy: {exc}", file=sys.stderr)
            return 2
        files["60-tts-sentinel.rules"] = polkit_rule(units)
        rc = _write(args.out, files, args.force)
        if rc == 0:
            print("next: install tts-sentinel.sysusers.conf as /etc/sysusers.d/tts-sentinel.conf, run "
                  "systemd-sysusers, then systemctl daemon-reload && systemctl enable --now "
                  "tts-sentinel-exporter tts-sentinel-receiver; with the systemd actuator, install "
                  "60-tts-sentinel.rules in /etc/polkit-1/rules.d/ (the receiver then needs no root)")
        return rc
    config_text = None
    if args.config:
        config_text = args.config.read_text(encoding="utf-8")
        try:
            parse_config(config_text, str(args.config))
        except ConfigError as exc:
            print(f"deploy: {exc}", file=sys.stderr)
            return 2
    plan = KubernetesPlan(namespace=args.namespace, image=args.image, service=args.service, tts_url=args.tts_url,
                          web_deployment=args.web_deployment, inference_deployment=args.inference_deployment,
                          runbook_base=args.runbook_base, config_text=config_text)
    return _write(args.out, {name: dump(docs) for name, docs in manifests(plan).items()}, args.force)
