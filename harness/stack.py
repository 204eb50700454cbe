"""The whole loop on loopback: simulator under supervisord, exporter, receiver,
Alertmanager and Prometheus, with configs generated from the checked-in ones.

Used by `tts-sentinel demo`, `tts-sentinel drill` and the end-to-end tests. Every
port is picked free at start (or given), every process runs in its own session
and is stopped, with its children, by `Stack.stop()`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tts_sentinel.harness.oncall_sink import OncallSink
from tts_sentinel.harness.ports import free_port
from tts_sentinel.harness.timing import (  # noqa: F401 - Timing and parse_duration are imported from here too
    Timing,
    deep_merge,
    parse_duration,
    receiver_timings,
    scale_rule_durations,
)
from tts_sentinel.harness.webauth import WebAuth
from tts_sentinel.runbook_urls import with_runbook_urls

REPO = Path(__file__).resolve().parents[1]
RULES_DIR = REPO / "rules"
WEB_PROGRAM = "tts-webui"
INFERENCE_PROGRAM = "tts-inference"
SERVICE = "qwen3-tts"


class StackError(RuntimeError):
    """The stack could not be started; the message says which part and where its log is."""


def find_binary(*names: str) -> str:
    """The path of the first of `names` on PATH, or StackError saying what to install."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise StackError(
        f"{names[0]} is not installed: run `make demo` as root, or `sudo apt-get install "
        "prometheus prometheus-alertmanager`."
    )


@dataclass
class Ports:
    """Every loopback port the stack uses."""

    web: int = field(default_factory=free_port)
    api: int = field(default_factory=free_port)
    exporter: int = field(default_factory=free_port)
    receiver: int = field(default_factory=free_port)
    prometheus: int = field(default_factory=free_port)
    alertmanager: int = field(default_factory=free_port)
    supervisord: int = field(default_factory=free_port)
    oncall: int = field(default_factory=free_port)


class Stack:
    """Generates the configs of the whole loop into `workdir` and runs it."""

    def __init__(self, workdir: Path, ports: Ports | None = None, timing: Timing | None = None,
                 python: str = sys.executable, receiver_overrides: dict[str, Any] | None = None,
                 protocol: str = "seed", web_auth: WebAuth | None = None, audio_evidence: bool = False) -> None:
        self.dir = workdir.resolve()
        # L3 and quality probes too, with a baseline recorded at start: failed probes keep their clip
        # beside the baseline clip, as the incident page shows them (the demo runs this way).
        self.audio_evidence = audio_evidence
        self.protocol = protocol  # "openai": the simulator plays vLLM-Omni (see vllm_omni_mode)
        self.receiver_overrides = receiver_overrides or {}
        self.ports = ports or Ports()
        self.timing = timing or Timing()
        self.python = python
        self.log_dir = self.dir / "logs"
        self.token = secrets.token_urlsafe(32)
        # Prometheus and Alertmanager answer only with this user and its per-run password (0600 file)
        self.web = web_auth or WebAuth(self.dir)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.oncall: OncallSink | None = None

    # -- URLs -------------------------------------------------------------------------------------
    def url(self, part: str, path: str = "") -> str:
        """`http://127.0.0.1:PORT{path}` of one part of the stack."""
        return f"http://127.0.0.1:{getattr(self.ports, part)}{path}"

    @property
    def config_path(self) -> Path:
        return self.dir / "tts-sentinel.yml"

    # -- config generation ------------------------------------------------------------------------
    def sentinel_config(self) -> dict[str, Any]:
        """The TTS Sentinel config of this stack (all three sections)."""
        p, d = self.ports, self.dir
        config = {
            "simulator": {"host": "127.0.0.1", "web_port": p.web, "api_port": p.api, "log_dir": str(self.log_dir)},
            "exporter": {
                "listen_host": "127.0.0.1",
                "listen_port": p.exporter,
                "state_dir": str(d / "state"),
                "gpu": {"enabled": False},
                "processes": {"kind": "supervisord", "supervisord": {
                    "url": f"http://127.0.0.1:{p.supervisord}/RPC2",
                    "web_program": WEB_PROGRAM,
                    "inference_program": INFERENCE_PROGRAM,
                }},
                "logs": {
                    "files": [
                        {"name": "webui", "path": str(self.log_dir / "webui.log"), "rotation": "rename"},
                        {"name": "inference", "path": str(self.log_dir / "inference.log"), "rotation": "size"},
                        {"name": "health", "path": str(self.log_dir / "health.log"), "rotation": "none"},
                    ],
                    "start_at": "beginning",
                },
                "probes": {
                    "health": {
                        "url": f"http://127.0.0.1:{p.web}/health",
                        "interval_seconds": self.timing.probe_interval_seconds,
                        "timeout_seconds": 1.0,
                    },
                    "synthesis": {
                        "enabled": True,
                        "interval_seconds": 15.0,
                        "request": {"url": f"http://127.0.0.1:{p.api}/tts", "timeout_seconds": 10.0},
                    },
                    "semantic": {"report_path": str(self.log_dir / "semantic_report.log")},
                    "baseline_dir": str(d / "baseline"),
                },
            },
            "receiver": {
                "listen_host": "127.0.0.1",
                "listen_port": p.receiver,
                "token_file": str(d / "receiver.token"),
                "journal_path": str(d / "state" / "journal.sqlite3"),
                "exporter_url": self.url("exporter"),
                "alertmanager_url": self.url("alertmanager"),
                **self.web.receiver_config(),
                "verification": {"timeout_seconds": 30.0, "interval_seconds": 0.5},
                **receiver_timings(self.timing.for_scale, self.timing.bound_scale),
                "targets": [
                    {
                        "name": SERVICE,
                        "match": {"service": SERVICE},
                        "supervisord": {
                            "url": f"http://127.0.0.1:{p.supervisord}/RPC2",
                            "web_program": WEB_PROGRAM,
                            "inference_program": INFERENCE_PROGRAM,
                        },
                    }
                ],
            },
        }
        targets = config["receiver"]["targets"]
        config["receiver"] = deep_merge(config["receiver"], self.receiver_overrides)
        config["receiver"]["targets"] = targets  # the stack's own; overrides change their fields elsewhere
        if self.audio_evidence:
            probes = config["exporter"]["probes"]
            request = probes["synthesis"]["request"]
            probes["semantic"].update(enabled=True, interval_seconds=15.0, request=dict(request))
            probes["quality"] = {"enabled": True, "interval_seconds": 15.0, "request": dict(request)}
            # A log line fires the alert before a scheduled probe hears the fault: probe once before restarting.
            config["receiver"].setdefault("tiers", {}).setdefault("medium", [
                {"action": "capture", "seconds": 30}, {"action": "stop", "component": "inference"},
                {"action": "release_gpu"}, {"action": "start", "component": "inference"},
                {"action": "wait", "seconds": 10}, {"action": "verify", "module": "synthesis"}])
        return vllm_omni_mode(config, p) if self.protocol == "openai" else config

    def supervisord_conf(self) -> str:
        """supervisord.conf running the simulator's two programs, as a user would run Qwen3-TTS."""
        d = self.dir
        prog = []
        for name, component in ((WEB_PROGRAM, "web"), (INFERENCE_PROGRAM, "inference")):
            prog.append(
                f"[program:{name}]\n"
                f"command={self.python} -m tts_sentinel.cli simulate {component} --config {self.config_path}\n"
                "autostart=true\nautorestart=true\nstartsecs=1\nstartretries=10\nstopwaitsecs=5\n"
                "stopasgroup=true\nkillasgroup=true\n"
                f"stdout_logfile={d / 'run' / name}.out\nredirect_stderr=true\n"
            )
        return (
            f"[inet_http_server]\nport=127.0.0.1:{self.ports.supervisord}\n\n"
            f"[supervisord]\nnodaemon=true\nlogfile={d / 'run' / 'supervisord.log'}\n"
            f"pidfile={d / 'run' / 'supervisord.pid'}\nchildlogdir={d / 'run'}\n\n"
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            f"[supervisorctl]\nserverurl=http://127.0.0.1:{self.ports.supervisord}\n\n" + "\n".join(prog)
        )

    def prometheus_config(self) -> dict[str, Any]:
        t = self.timing
        config: dict[str, Any] = {
            "global": {"scrape_interval": f"{t.scrape_seconds:g}s", "evaluation_interval": f"{t.scrape_seconds:g}s"},
            "rule_files": [str(self.dir / "rules" / "*.rules.yml")],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.ports.alertmanager}"]}],
                                   **self.web.client_config()}]
            },
            "scrape_configs": [
                {"job_name": "tts-sentinel-exporter",
                 "static_configs": [{"targets": [f"127.0.0.1:{self.ports.exporter}"], "labels": {"service": SERVICE}}]},
                {"job_name": "tts-sentinel-receiver",
                 "static_configs": [{"targets": [f"127.0.0.1:{self.ports.receiver}"], "labels": {"service": SERVICE}}]},
            ],
        }
        if self.protocol == "openai":  # the engine's own /metrics, as rules/prometheus.yml's vllm-omni job
            config["scrape_configs"].append({"job_name": "vllm-omni", "static_configs": [
                {"targets": [f"127.0.0.1:{self.ports.api}"], "labels": {"service": SERVICE}}]})
        return config

    def alertmanager_config(self) -> dict[str, Any]:
        """rules/alertmanager.yml with loopback URLs, this stack's token file and its timers."""
        am = yaml.safe_load((RULES_DIR / "alertmanager.yml").read_text())
        am["route"].update(group_wait=self.timing.group_wait, group_interval=self.timing.group_interval,
                           repeat_interval=self.timing.repeat_interval)
        for receiver in am["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                if receiver["name"] == "tts-sentinel":
                    hook["url"] = self.url("receiver", "/alerts")
                    hook["http_config"]["authorization"]["credentials_file"] = str(self.dir / "receiver.token")
                else:
                    hook["url"] = self.url("oncall", "/oncall")
        return am

    def write_configs(self) -> None:
        """Write every config file of the stack into its directory."""
        for sub in ("run", "rules", "state", "prometheus-data", "alertmanager-data"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        token = self.dir / "receiver.token"
        token.write_text(self.token + "\n")
        token.chmod(0o600)
        self.web.write()
        self.config_path.write_text(yaml.safe_dump(self.sentinel_config(), sort_keys=False))
        (self.dir / "supervisord.conf").write_text(self.supervisord_conf())
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(self.prometheus_config(), sort_keys=False))
        (self.dir / "alertmanager.yml").write_text(yaml.safe_dump(self.alertmanager_config(), sort_keys=False))
        for rules_file in sorted(RULES_DIR.glob("*.rules.yml")):
            rules = scale_rule_durations(yaml.safe_load(rules_file.read_text()), self.timing.for_scale,
                                         self.timing.bound_scale)
            rules = with_runbook_urls(rules, self.url("receiver", "/runbooks"))  # this stack's receiver serves them
            (self.dir / "rules" / rules_file.name).write_text(yaml.safe_dump(rules, sort_keys=False))
        (self.dir / "stack.json").write_text(json.dumps({"ports": asdict(self.ports), "dir": str(self.dir),
                                                         "web_auth": self.web.describe()}))

    # -- processes --------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> None:
        out = (self.dir / "run" / f"{name}.log").open("ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=self.dir, env=env, start_new_session=True)
        out.close()

    def _exporter_scraped(self) -> bool:
        """Prometheus has a sample of the exporter's log counters (its first scrape succeeded)."""
        answer = httpx.get(self.url("prometheus", "/api/v1/query"), timeout=5, auth=self.web.auth(),
                           params={"query": "count(tts_log_lines_total)"}).json()
        return bool(answer.get("data", {}).get("result"))

    def _wait(self, name: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        proc = self._procs.get(name)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}; see {self.dir / 'run' / (name + '.log')}")
            try:
                if ready():
                    return
            except (httpx.HTTPError, OSError, xmlrpc.client.Error):
                pass
            time.sleep(0.2)
        raise StackError(f"{name} not ready after {timeout:.0f}s; see {self.dir / 'run' / (name + '.log')}")

    @staticmethod
    def _http_ok(url: str, auth: httpx.Auth | None = None) -> bool:
        return httpx.get(url, timeout=2, auth=auth).status_code == 200

    def supervisor(self) -> Any:
        """An XML-RPC proxy to this stack's supervisord."""
        return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{self.ports.supervisord}/RPC2").supervisor

    def program_pid(self, program: str) -> int:
        """The pid supervisord reports for `program` (0 when not running)."""
        return int(self.supervisor().getProcessInfo(program)["pid"])

    def start(self) -> None:
        """Write configs and start every part; on failure stop what started and raise StackError."""
        prometheus = find_binary("prometheus")
        alertmanager = find_binary("prometheus-alertmanager", "alertmanager")
        self.write_configs()
        try:
            self.oncall = OncallSink("127.0.0.1", self.ports.oncall, self.dir / "run" / "oncall.jsonl")
            self.oncall.start()
            self._spawn("supervisord", [self.python, "-m", "supervisor.supervisord", "-c",
                                        str(self.dir / "supervisord.conf")])
            # The TTS service is up before anything watches it: a probe of a service still starting
            # would fire an alert and have the receiver restart what was only booting.
            self._wait("supervisord", lambda: all(
                self.supervisor().getProcessInfo(p)["statename"] == "RUNNING"
                for p in (WEB_PROGRAM, INFERENCE_PROGRAM)
            ))
            self._wait(WEB_PROGRAM, lambda: self._http_ok(self.url("web", "/health")))
            self._wait(INFERENCE_PROGRAM, lambda: self._http_ok(self.url("api", "/health")))
            cli = [self.python, "-m", "tts_sentinel.cli"]
            if self.audio_evidence:  # as a user would, from the healthy service, before anything watches it
                done = subprocess.run([*cli, "baseline", "--config", str(self.config_path)], timeout=120,
                                      capture_output=True, text=True, start_new_session=True)
                if done.returncode:
                    raise StackError(f"`tts-sentinel baseline` failed: {(done.stdout + done.stderr)[-600:]}")
            self._spawn("exporter", [*cli, "exporter", "--config", str(self.config_path)])
            self._spawn("receiver", [*cli, "receiver", "--config", str(self.config_path)])
            self._spawn("alertmanager", [
                alertmanager, f"--config.file={self.dir / 'alertmanager.yml'}",
                f"--storage.path={self.dir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports.alertmanager}", "--cluster.listen-address=",
                f"--web.config.file={self.web.config_file}",
            ])
            # The sentinel is up before Prometheus watches it: a receiver that took longer than the
            # scaled `for:` of TtsReceiverDown to start on a busy host paged on-call from the start.
            self._wait("exporter", lambda: self._http_ok(self.url("exporter", "/healthz")))
            self._wait("receiver", lambda: self._http_ok(self.url("receiver", "/healthz")))
            self._spawn("prometheus", [
                prometheus, f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
                f"--web.config.file={self.web.config_file}",
            ])
            self._wait("alertmanager", lambda: self._http_ok(self.url("alertmanager", "/-/ready"), self.web.auth()))
            self._wait("prometheus", lambda: self._http_ok(self.url("prometheus", "/-/ready"), self.web.auth()))
            # Ready means watched: a fault injected before Prometheus' first scrape of the exporter
            # would start its counters at 1, and `increase(...) > 0` never fires for it.
            self._wait("prometheus", self._exporter_scraped)
        except BaseException:
            self.stop()
            raise

    def stop_part(self, name: str) -> None:
        """Stop one part this stack started (e.g. "receiver", to see who pages without it); it stays down."""
        proc = self._procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop every process this stack started, children included; safe to call twice."""
        supervised: list[int] = []
        if "supervisord" in self._procs and self._procs["supervisord"].poll() is None:
            try:
                supervised = [p["pid"] for p in self.supervisor().getAllProcessInfo() if p["pid"]]
            except (OSError, xmlrpc.client.Error):
                pass
        for name in reversed(list(self._procs)):
            proc = self._procs[name]
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self._procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for pid in supervised:  # a child that outlived supervisord
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._procs.clear()
        if self.oncall is not None:
            self.oncall.stop()
            self.oncall = None

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def vllm_omni_mode(config: dict[str, Any], ports: Ports) -> dict[str, Any]:
    """The stack's config with the simulator playing vLLM-Omni: its API for L1 and L2, a streaming probe."""
    api = f"http://127.0.0.1:{ports.api}"
    speech = {"protocol": "openai", "url": f"{api}/v1/audio/speech", "timeout_seconds": 10.0}
    config["simulator"]["protocol"] = "openai"
    probes = config["exporter"]["probes"]
    probes["health"].update(url=f"{api}/health", expect_json=None, expect_empty_body=True)
    for module in ("synthesis", "semantic", "quality"):  # L3 and quality too, when the stack keeps audio evidence
        if module in probes and "request" in probes[module]:
            probes[module]["request"] = dict(speech)
    probes["modules"] = {"stream": {
        "prober": "streaming", "enabled": True, "interval_seconds": 15.0, "transports": ["sse", "websocket"],
        "request": {**speech, "timeout_seconds": 20.0}, "stall_timeout_seconds": 5.0,
    }}
    return config
