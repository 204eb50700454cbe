"""Real supervisord, real stand-in programs, a real /probe server and the receiver on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import xmlrpc.client
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import uvicorn
from support import free_port

from tests.receiver.fakes import ServedInThread, answer
from tts_sentinel.receiver.app import create_app
from tts_sentinel.receiver.config import ReceiverConfig
from tts_sentinel.receiver.service import ReceiverService

HERE = Path(__file__).parent
TOKEN = "test-token-0123456789abcdef"


def failing_fsync(sync) -> threading.Event:
    """The journal's fsync raises EIO (a broken disk) while the returned event is set; set at first."""
    real = type(sync)._fsync
    broken = threading.Event()
    broken.set()

    def flaky(self):
        if broken.is_set():
            raise OSError(5, "Input/output error")
        real(self)

    sync._fsync = flaky.__get__(sync)
    return broken


def held_fsync(sync) -> tuple[threading.Event, threading.Event]:
    """The journal's next fsync waits (a slow disk): `held` is set once it waits, `release` lets it
    go on (10 s at most). Later fsyncs run at once."""
    real = type(sync)._fsync
    held, release = threading.Event(), threading.Event()
    holding = threading.Lock()

    def slow(self):
        if holding.acquire(blocking=False):
            held.set()
            release.wait(10)
        real(self)

    sync._fsync = slow.__get__(sync)
    return held, release


def wait_for(condition, timeout=20.0, interval=0.1, what="condition"):
    """Poll until `condition()` is truthy; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def http_json(url, method="GET", body=None, timeout=2.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


class Supervisor:
    """supervisord with inet_http_server on a free port, supervising the two stand-in programs;
    with `username`/`password`, its HTTP server asks for them (basic auth)."""

    def __init__(self, workdir: Path, username: str | None = None, password: str | None = None) -> None:
        self.workdir = workdir
        self.rpc_port = free_port()
        self.web_port = free_port()
        self.inference_port = free_port()
        self.url = f"http://127.0.0.1:{self.rpc_port}/RPC2"
        # The test's own client may carry credentials in its URL; the receiver never does.
        self._rpc_url = self.url if username is None else f"http://{username}:{password}@127.0.0.1:{self.rpc_port}/RPC2"
        auth = "" if username is None else f"username={username}\npassword={password}\n"
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.inference_url = f"http://127.0.0.1:{self.inference_port}"
        py = sys.executable
        script = HERE / "tts_standin.py"
        conf = f"""
[supervisord]
nodaemon=true
logfile={workdir}/supervisord.log
pidfile={workdir}/supervisord.pid
childlogdir={workdir}
[inet_http_server]
port=127.0.0.1:{self.rpc_port}
{auth}[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:tts-inference]
command={py} {script} --role inference --port {self.inference_port}
startsecs=1
autorestart=false
stopasgroup=true
killasgroup=true
stopwaitsecs=5
[program:tts-webui]
command={py} {script} --role web --port {self.web_port} --upstream {self.inference_url}
startsecs=1
autorestart=false
stopasgroup=true
killasgroup=true
stopwaitsecs=5
"""
        self.conf = workdir / "supervisord.conf"
        self.conf.write_text(conf)
        binary = shutil.which("supervisord") or str(Path(sys.executable).parent / "supervisord")
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for(self._all_running, timeout=30, what="supervisord and both programs RUNNING")
            wait_for(lambda: self.healthy("web"), timeout=15, what="web stand-in healthy")
        except BaseException:
            # A start that failed (a port taken meanwhile, a slow machine) leaves no supervisord or
            # stand-in behind it; its log says what the programs did.
            self.close()
            log = workdir / "supervisord.log"
            print(log.read_text(errors="replace")[-2000:] if log.exists() else "no supervisord log")
            raise

    def rpc(self):
        return xmlrpc.client.ServerProxy(self._rpc_url).supervisor

    def _all_running(self):
        try:
            infos = self.rpc().getAllProcessInfo()
        except (OSError, xmlrpc.client.Error):
            return False
        return len(infos) == 2 and all(i["statename"] == "RUNNING" for i in infos)

    def pid(self, program):
        return self.rpc().getProcessInfo(program)["pid"]

    def component_url(self, component):
        return self.web_url if component == "web" else self.inference_url

    def healthy(self, component):
        try:
            with urllib.request.urlopen(self.component_url(component) + "/health", timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def inject(self, component, fault):
        return http_json(self.component_url(component) + "/admin/fault", "POST", {"fault": fault})

    def stats(self, component):
        return http_json(self.component_url(component) + "/stats")

    def close(self):
        self.proc.terminate()  # supervisord stops its programs (stopasgroup) before it exits
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class ProbeServer(ServedInThread):
    """A tiny real HTTP server answering /probe?module=health|synthesis like the exporter does.

    health = the web front's /health, synthesis = the inference service's /health.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.calls: list[str] = []
        # Called with the module before each answer: a test's hook into the verification's moment.
        self.on_probe = None
        sup = supervisor
        calls = self.calls
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                parsed = urlparse(self.path)
                module = parse_qs(parsed.query).get("module", [""])[0]
                if parsed.path != "/probe" or module not in ("health", "synthesis"):
                    self.send_response(400)
                    self.end_headers()
                    return
                calls.append(module)
                if server.on_probe is not None:
                    server.on_probe(module)
                ok = sup.healthy("web" if module == "health" else "inference")
                body = (
                    f'# TYPE tts_probe_success gauge\ntts_probe_success{{probe="{module}"}} {1 if ok else 0}\n'
                ).encode()
                answer(self, 200, body, "text/plain; version=0.0.4")

        self.serve(ThreadingHTTPServer(("127.0.0.1", self.port), Handler))


class RunningReceiver:
    """ReceiverService + FastAPI app under a real uvicorn server in a thread."""

    def __init__(self, config: ReceiverConfig, journal_path: Path, token: str | None = TOKEN, **kwargs) -> None:
        self.service = ReceiverService(config, token, journal_path=journal_path, **kwargs)
        self.service.start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.service),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=15, what="receiver listening")
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def post(self, payload, token: str | None = TOKEN, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.post("/alerts", json=payload, headers=headers, **kwargs)

    def actions(self, **params):
        return self.client.get("/actions", params=params, headers={"Authorization": f"Bearer {TOKEN}"}).json()

    def incidents(self, **params):
        """GET /incidents, newest first."""
        return self.client.get("/incidents", params=params, headers={"Authorization": f"Bearer {TOKEN}"}).json()

    def job(self, job_id):
        """The journal's job as GET /actions shows it (None when there is no such id)."""
        job = self.service.journal.job(job_id)
        return None if job is None else job.as_dict()

    def wait_job(self, job_id, timeout=30.0):
        """Wait until the job leaves queued/running; return it."""
        return wait_for(
            lambda: (j := self.job(job_id)) and j["status"] not in ("queued", "running") and j,
            timeout=timeout,
            what=f"job {job_id} to finish",
        )

    def idle(self):
        return all(j.status not in ("queued", "running") for j in self.service.journal.jobs(limit=1000))

    def close(self):
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)
        self.service.stop()


def alert(
    name="TtsHealthProbeFailing",
    tier="light",
    status="firing",
    fingerprint=None,
    starts="2026-11-23T10:00:00Z",
    **labels,
):
    """One alert as Alertmanager sends it."""
    all_labels = {"alertname": name, "tier": tier, "severity": "critical", "service": "qwen3-tts", **labels}
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} fired"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint or f"fp-{name}-{tier}",
    }


def now_iso() -> str:
    """A `startsAt` of now: a real recurrence starts after the action it follows (an earlier one is a copy)."""
    return datetime.now(UTC).isoformat()


def payload(*alerts, status="firing"):
    """An Alertmanager webhook payload, version 4."""
    return {
        "version": "4",
        "groupKey": '{}:{service="qwen3-tts"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "tts-sentinel",
        "groupLabels": {"service": "qwen3-tts"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


def receiver_config(supervisor: Supervisor | None, probe: ProbeServer | None, **overrides) -> ReceiverConfig:
    """A receiver config pointing at the test's supervisord and probe server, fast timings."""
    target = {
        "name": "qwen3-tts",
        "match": {"service": "qwen3-tts"},
        "actuator": "supervisord",
        "supervisord": {"url": supervisor.url if supervisor else "http://127.0.0.1:9/RPC2"},
        "cache_dir": None,
        "weights_dir": None,
        "service_config": None,
        "git_dir": None,
    }
    target.update(overrides.pop("target", {}))
    data = {
        "targets": [target],
        "exporter_url": probe.url if probe else "http://127.0.0.1:9",
        "alertmanager_url": overrides.pop("alertmanager_url", None),
        "verification": {"timeout_seconds": 8, "interval_seconds": 0.2, "request_timeout_seconds": 3},
        "tiers": {
            "medium": [
                {"action": "stop", "component": "inference"},
                {"action": "release_gpu"},
                {"action": "start", "component": "inference"},
                {"action": "wait", "seconds": 0.3},
                {"action": "verify", "module": "synthesis"},
            ]
        },
    }
    for key, value in overrides.items():
        data[key] = value
    return ReceiverConfig.model_validate(data)


@pytest.fixture
def supervisor(tmp_path):
    sup = Supervisor(tmp_path)
    yield sup
    sup.close()


@pytest.fixture
def probe(supervisor):
    server = ProbeServer(supervisor)
    yield server
    server.close()


@pytest.fixture
def l1_green_l2_red():
    """An exporter stand-in whose health probe passes and whose synthesis probe fails."""
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            module = parse_qs(urlparse(self.path).query).get("module", [""])[0]
            calls.append(module)
            ok = module == "health"
            body = f'tts_probe_success{{probe="{module}"}} {1 if ok else 0}\n'.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}", calls=calls)
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_receiver(tmp_path):
    started = []

    def make(config, **kwargs):
        r = RunningReceiver(config, kwargs.pop("journal_path", tmp_path / "journal.sqlite3"), **kwargs)
        started.append(r)
        return r

    yield make
    for r in started:
        r.close()


class Alertmanager:
    """The real Alertmanager binary on a free loopback port, clustering off."""

    BINARY = "/usr/bin/prometheus-alertmanager"

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = workdir / "alertmanager.yml"
        conf.write_text("route:\n  receiver: oncall\n  group_wait: 1s\nreceivers:\n  - name: oncall\n")
        self.proc = subprocess.Popen(
            [
                self.BINARY,
                f"--config.file={conf}",
                f"--storage.path={workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._ready, timeout=30, what="Alertmanager ready")

    def _ready(self):
        try:
            return httpx.get(self.url + "/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def alerts(self, name=None):
        got = httpx.get(self.url + "/api/v2/alerts", timeout=5).json()
        return [a for a in got if name is None or a["labels"].get("alertname") == name]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def alertmanager(tmp_path):
    if not Path(Alertmanager.BINARY).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus-alertmanager is not installed (make test installs it)")
        pytest.skip("prometheus-alertmanager is not installed; apt-get install prometheus-alertmanager")
    am = Alertmanager(tmp_path)
    yield am
    am.close()
