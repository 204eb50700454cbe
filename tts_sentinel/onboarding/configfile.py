"""The commented config that `tts-sentinel init` writes, and the snippets for Prometheus and Alertmanager.

Values are written as JSON scalars and flow collections (valid YAML that needs no quoting rules),
each with a comment saying where it came from. The text is validated with the config loader
before anything is written, so `init` never leaves a file that `check-config` rejects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tts_sentinel.config import SentinelConfig, parse_config
from tts_sentinel.exporter.probes.config import SEED_TEXT
from tts_sentinel.onboarding.detect import LogSource, ManagerFacts, ServiceFacts
from tts_sentinel.shipped import shipped_dir

RECEIVER_NAME = "tts-sentinel"  # the receiver's name in rules/alertmanager.yml
PROTOCOL_TEXT = {"seed": "the seed API", "openai": "vLLM-Omni (OpenAI speech API)", "gradio": "a qwen-tts Gradio demo"}


@dataclass
class InitPlan:
    """Everything `init` decided, ready to be written."""

    url: str
    service: ServiceFacts
    logs: list[LogSource]
    manager: ManagerFacts | None
    service_name: str = "qwen3-tts"
    state_dir: Path = Path("/var/lib/tts-sentinel")
    token_file: Path = Path("/etc/tts-sentinel/receiver.token")
    api_key_file: Path | None = None
    exporter_port: int = 9464
    receiver_port: int = 9465
    alertmanager_url: str = "http://127.0.0.1:9093"
    alertmanager_username: str | None = None  # Alertmanager's --web.config.file basic auth
    alertmanager_password_file: Path | None = None
    gpu: bool = True
    gpu_why: str = ""
    config_path: Path = Path("tts-sentinel.yml")
    listen_host: str = "127.0.0.1"
    exporter_url: str | None = None
    written_by: str = "tts-sentinel init"
    notes: list[str] = field(default_factory=list)


def j(value: Any) -> str:
    """One value as YAML (JSON flow syntax)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _log_lines(plan: InitPlan) -> list[str]:
    files = [s for s in plan.logs if s.path is not None]
    commands = [s for s in plan.logs if s.path is None]
    out = ["  logs:"]
    if not plan.logs:
        out += ["    # No log found. Name one with --log-file, or follow the service's stdout, e.g.:",
                "    #   commands: [{name: vllm, argv: [journalctl, -f, -n, \"0\", -o, cat, -u, vllm.service]}]",
                "    files: []"]
    if files:
        out.append("    files:")
        out += [f"      - {{name: {j(s.name)}, path: {j(str(s.path))}, rotation: {j(s.rotation)}}}  # {s.why}"
                for s in files]
    elif plan.logs:
        out.append("    files: []                    # the service logs to stdout only: followed below")
    if commands:
        out.append("    commands:                    # started again after every exit; asks for new lines only")
        for s in commands:
            out += [f"      - name: {j(s.name)}  # {s.why}", f"        argv: {j(s.argv)}",
                    f"        history_argv: {j(s.history_argv)}  # what `tts-sentinel triage` reads"]
    out.append("    start_at: end                # first start without saved offsets: like tail -F")
    return out


def _probe_lines(plan: InitPlan) -> list[str]:
    svc = plan.service
    health = [f"      url: {j(svc.health_url)}", "      interval_seconds: 5"]
    if svc.health_expect == "json_ok":
        health.append('      expect_json: {"status": "ok"}')
    else:
        health.append("      expect_json: null")
        if svc.health_expect == "empty":
            health.append("      expect_empty_body: true     # vLLM-Omni answers 200 with an empty body")
    if svc.needs_api_key and plan.api_key_file:
        health.append(f"      bearer_token_file: {j(str(plan.api_key_file))}")
    out = ["  probes:", "    health:                       # L1, seconds", *health]
    if svc.speech_url is None:
        out += ["    synthesis:                    # L2: no speech API found at init; set request.url to enable",
                "      enabled: false"]
    else:
        speaker = "Vivian" if "Vivian" in svc.speakers or not svc.speakers else svc.speakers[0]
        lang = "Auto" if svc.protocol == "openai" else "zh"
        en = "Auto" if svc.protocol == "openai" else "en"
        request: dict[str, Any] = {"protocol": svc.protocol, "url": svc.speech_url, "timeout_seconds": 30}
        if plan.api_key_file:
            request["bearer_token_file"] = str(plan.api_key_file)
        out += ["    synthesis:                    # L2, minutes: real speech, checked sample by sample",
                "      enabled: true", "      interval_seconds: 60", f"      request: {j(request)}",
                "      targets:",
                f"        - {{lang: {j(lang)}, speaker: {j(speaker)}}}   # the seed's text: {SEED_TEXT}",
                f"        - {{lang: {j(en)}, speaker: {j(speaker)}, text: \"Hello, world. This is a health check.\"}}"]
    # `baseline` records with these requests: the same speech API as L2, not the seed's default URL.
    same_api = [] if svc.speech_url is None else [f"      request: {j(request)}", f"      lang: {j(lang)}",
                                                   f"      speaker: {j(speaker)}"]
    out += ["    semantic:                     # L3: record templates with `tts-sentinel baseline`, then enable",
            "      enabled: false", *same_api,
            f"      report_path: {j(str(plan.state_dir / 'semantic_report.log'))}",
            "    quality:                      # seed §5.3; needs the baseline too",
            "      enabled: false", *same_api,
            f"    baseline_dir: {j(str(plan.state_dir / 'baseline'))}"]
    return out


def _target_lines(plan: InitPlan) -> list[str]:
    m = plan.manager
    out = ["  targets:", f"    - name: {j(plan.service_name)}",
           f"      match: {{service: {j(plan.service_name)}}}   # the label the Prometheus scrape snippet adds"]
    if m is None:
        out += ["      # No process manager given (--manager): the receiver journals alerts and acts on nothing.",
                "      dry_run: true"]
        return out
    out.append(f"      actuator: {m.kind}            # {m.why}")
    if m.kind == "supervisord":
        out.append(f"      supervisord: {{url: {j(m.supervisord_url)}, web_program: {j(m.web)}, "
                   f"inference_program: {j(m.inference)}}}")
    elif m.kind == "systemd":
        out.append(f"      systemd: {{web_unit: {j(m.web)}, inference_unit: {j(m.inference)}}}")
    elif m.kind == "docker":
        out.append(f"      docker: {{web_container: {j(m.web)}, inference_container: {j(m.inference)}}}")
    else:
        out.append(f"      kubernetes: {{namespace: {j(m.namespace)}, web_deployment: {j(m.web)}, "
                   f"inference_deployment: {j(m.inference)}}}")
    if m.web == m.inference:
        out.append("      # one process serves everything: the light tier restarts it too")
    out += ["      hot_reload: false           # true only if the web front really handles SIGUSR1",
            "      gpu: {index: 0, reset: false}",
            "      # heavy tier: the cache it clears and what it records first (defaults under /opt/qwen3-tts):",
            "      # cache_dir: /tmp/qwen3-tts-cache",
            "      # weights_dir: /opt/qwen3-tts/models"]
    return out


def render_config(plan: InitPlan, now: datetime | None = None) -> str:
    """The commented config text of `plan` (not yet validated: see `checked_config`)."""
    svc, stamp = plan.service, (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
    head = [f"# TTS Sentinel config written by `{plan.written_by}` on {stamp} for {plan.url}",
            f"# Service: {PROTOCOL_TEXT[svc.protocol]}.", *(f"#   {w}" for w in svc.why),
            *(f"# Note: {n}" for n in plan.notes),
            f"# Check it:  tts-sentinel check-config {plan.config_path}",
            f"# Check everything it names, live:  tts-sentinel doctor --config {plan.config_path}", ""]
    gpu = ("    enabled: true                 # " + plan.gpu_why) if plan.gpu else (
        f"    enabled: false                # {plan.gpu_why}; set true on a GPU host")
    exporter = ["exporter:", f"  listen_host: {plan.listen_host}          # where Prometheus scrapes it",
                f"  listen_port: {plan.exporter_port}",
                f"  state_dir: {j(str(plan.state_dir))}   # log offsets survive restarts here",
                "  gpu:", gpu, *_log_lines(plan), *_probe_lines(plan)]
    exporter_url = plan.exporter_url or f"http://127.0.0.1:{plan.exporter_port}"
    receiver = ["", "receiver:", f"  listen_host: {plan.listen_host}", f"  listen_port: {plan.receiver_port}",
                f"  token_file: {j(str(plan.token_file))}   # mode 0600; Alertmanager reads it or its own 0600 copy",
                f"  journal_path: {j(str(plan.state_dir / 'journal.sqlite3'))}",
                f"  exporter_url: {j(exporter_url)}   # actions are verified through its /probe",
                f"  alertmanager_url: {j(plan.alertmanager_url)}   # refusals and exhausted budgets are paged there",
                *_alertmanager_login(plan), *_target_lines(plan)]
    return "\n".join(head + exporter + receiver) + "\n"


def _alertmanager_login(plan: InitPlan) -> list[str]:
    if plan.alertmanager_username is None or plan.alertmanager_password_file is None:
        return ["  # alertmanager_username: sentinel        # when Alertmanager asks for a login (SECURITY.md)",
                "  # alertmanager_password_file: /etc/tts-sentinel/alertmanager.password   # mode 0600"]
    return [f"  alertmanager_username: {j(plan.alertmanager_username)}",
            f"  alertmanager_password_file: {j(str(plan.alertmanager_password_file))}   # mode 0600"]


def checked_config(plan: InitPlan, source: str) -> tuple[str, SentinelConfig]:
    """The config text and its validated model; ConfigError when init produced something invalid."""
    text = render_config(plan)
    return text, parse_config(text, source)


def scrape_snippet(plan: InitPlan) -> str:
    """The `scrape_configs` entries Prometheus needs for this exporter and receiver."""
    jobs = [{"job_name": f"tts-sentinel-{part}",
             "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": {"service": plan.service_name}}]}
            for part, port in (("exporter", plan.exporter_port), ("receiver", plan.receiver_port))]
    rules = shipped_dir("rules")
    return ("# Add to prometheus.yml under scrape_configs (the `service` label is what the receiver matches),\n"
            f"# and load the rules: rule_files: [\"{rules}/*.rules.yml\"]\n"
            "# (or write them with your own runbook base: tts-sentinel deploy rules --out DIR).\n"
            + yaml.safe_dump({"scrape_configs": jobs}, sort_keys=False))


def alertmanager_snippet(plan: InitPlan) -> str:
    """The route and receiver of the shipped rules/alertmanager.yml, pointed at this receiver."""
    shipped = yaml.safe_load((shipped_dir("rules") / "alertmanager.yml").read_text(encoding="utf-8"))
    route = next(r for r in shipped["route"]["routes"] if r.get("receiver") == RECEIVER_NAME)
    receiver = next(r for r in shipped["receivers"] if r["name"] == RECEIVER_NAME)
    for hook in receiver.get("webhook_configs", []):
        hook["url"] = f"http://127.0.0.1:{plan.receiver_port}/alerts"
        hook["http_config"]["authorization"]["credentials_file"] = str(plan.token_file)
    return ("# Add the route first under route.routes (continue: true lets on-call routes still see the alert)\n"
            "# and the receiver under receivers of alertmanager.yml.\n"
            + yaml.safe_dump({"route": {"routes": [route]}, "receivers": [receiver]}, sort_keys=False))
