"""`tts-sentinel init URL`: look at a running TTS service and write a config that watches it.

Non-interactive: everything init cannot find out is a flag. It writes three files and never
overwrites one without --force: the config, a Prometheus scrape snippet and an Alertmanager route.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from tts_sentinel.config import ConfigError
from tts_sentinel.onboarding.configfile import InitPlan, alertmanager_snippet, checked_config, scrape_snippet
from tts_sentinel.onboarding.detect import (
    DetectionError,
    detect_gpu,
    detect_log_sources,
    detect_manager,
    detect_service,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `tts-sentinel init`."""
    parser.add_argument("url", help="the TTS service, e.g. http://127.0.0.1:8091 (vLLM-Omni) or :7860 (seed web front)")
    parser.add_argument("--protocol", choices=["seed", "openai", "gradio"], help="skip detection")
    parser.add_argument("--api-url", help="seed API base when POST /tts is not at URL (default: URL, then port 8000)")
    parser.add_argument("--api-key-file", type=Path, help="file with the service's API key (vLLM-Omni --api-key)")
    parser.add_argument("--manager", choices=["supervisord", "systemd", "docker", "kubernetes"],
                        help="what runs the service (without it the receiver only journals)")
    parser.add_argument("--unit", help="program/unit/container/deployment running everything")
    parser.add_argument("--web-unit", help="the web front's program/unit/container/deployment")
    parser.add_argument("--inference-unit", help="the inference process's program/unit/container/deployment")
    parser.add_argument("--supervisord-url", help="supervisord XML-RPC (default http://127.0.0.1:9001/RPC2)")
    parser.add_argument("--namespace", help="Kubernetes namespace of the deployments (default: default)")
    parser.add_argument("--log-file", action="append", default=[], metavar="[NAME=]PATH",
                        help="a log file to follow (repeatable); default: the seed's files in --log-dir, "
                             "else the manager's log (supervisord stdout file, journald, docker logs, kubectl logs)")
    parser.add_argument("--log-dir", type=Path, default=Path("/var/log/qwen3-tts"),
                        help="where the seed's webui.log, inference.log, health.log are looked for")
    parser.add_argument("--service", default="qwen3-tts", help="service name: the target and the `service` label")
    parser.add_argument("--out", type=Path, default=Path("tts-sentinel.yml"), help="config to write")
    parser.add_argument("--state-dir", type=Path, default=Path("/var/lib/tts-sentinel"))
    parser.add_argument("--token-file", type=Path, default=Path("/etc/tts-sentinel/receiver.token"),
                        help="receiver bearer token; created (random, mode 0600) when missing")
    parser.add_argument("--exporter-port", type=int, default=9464)
    parser.add_argument("--receiver-port", type=int, default=9465)
    parser.add_argument("--alertmanager-url", default="http://127.0.0.1:9093")
    parser.add_argument("--alertmanager-username", help="Alertmanager's basic auth user (its --web.config.file)")
    parser.add_argument("--alertmanager-password-file", type=Path, help="that user's password, in a 0600 file")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")


def _log_files(values: list[str]) -> list[tuple[str | None, Path]]:
    out: list[tuple[str | None, Path]] = []
    for value in values:
        name, sep, path = value.partition("=")
        out.append((name, Path(path).absolute()) if sep and "/" not in name else (None, Path(value).absolute()))
    return out


def _write_token(path: Path) -> bool:
    """Create a random token at `path` unless one is there; True when created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return True


def run(args: argparse.Namespace) -> int:
    """Detect, write, and say what to do next. 0 written, 1 detection failed, 2 refused or invalid."""
    out = args.out
    outputs = {out: "config", out.with_name("prometheus-scrape.yml"): "Prometheus scrape snippet",
               out.with_name("alertmanager-route.yml"): "Alertmanager route"}
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not args.force:
        print(f"init: {', '.join(existing)} already exist; pass --force to overwrite, or --out elsewhere.",
              file=sys.stderr)
        return 2
    try:
        service = detect_service(args.url, args.protocol, args.api_url)
        manager = None
        if args.manager:
            manager = detect_manager(args.manager, args.web_unit or args.unit, args.inference_unit or args.unit,
                                     args.supervisord_url, args.namespace)
    except DetectionError as exc:
        print(f"init: {exc}", file=sys.stderr)
        return 1
    logs = detect_log_sources(_log_files(args.log_file), args.log_dir.absolute(), manager)
    gpu, gpu_why = detect_gpu()
    plan = InitPlan(url=args.url, service=service, logs=logs, manager=manager, service_name=args.service,
                    state_dir=args.state_dir.absolute(), token_file=args.token_file.absolute(),
                    api_key_file=args.api_key_file.absolute() if args.api_key_file else None,
                    exporter_port=args.exporter_port, receiver_port=args.receiver_port,
                    alertmanager_url=args.alertmanager_url, alertmanager_username=args.alertmanager_username,
                    alertmanager_password_file=(args.alertmanager_password_file.absolute()
                                                if args.alertmanager_password_file else None),
                    gpu=gpu, gpu_why=gpu_why, config_path=out)
    if service.needs_api_key and not args.api_key_file:
        plan.notes.append("the service wants an API key: rerun with --api-key-file, or L2 fails with 401.")
    try:
        text, _ = checked_config(plan, str(out))
    except ConfigError as exc:  # a bug in init, not the user's doing: say so plainly
        print(f"init: the config init produced does not validate, please report it:\n{exc}", file=sys.stderr)
        return 2
    try:
        created = _write_token(plan.token_file)
        out.parent.mkdir(parents=True, exist_ok=True)
        contents = [text, scrape_snippet(plan), alertmanager_snippet(plan)]
        for path, content in zip(outputs, contents, strict=True):
            path.write_text(content, encoding="utf-8")
    except OSError as exc:
        print(f"init: cannot write ({exc}); pass --out, --token-file or --state-dir somewhere writable.",
              file=sys.stderr)
        return 2
    print(f"detected {service.protocol} at {args.url}; logs: "
          + (", ".join(s.name for s in logs) or "none found (see the comment in the config)"))
    for path, what in outputs.items():
        print(f"wrote {path} ({what})")
    if created:
        print(f"wrote {plan.token_file} (receiver token, mode 0600)")
    print(f"next: tts-sentinel check-config {out}  then  tts-sentinel doctor --config {out}")
    return 0
