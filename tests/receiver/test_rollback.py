"""The rollback tier on real supervisord running the simulator from a `current -> versions/X` link.

v1 is the known-good version; v2 passed validation and then degraded (its inference answers with
silent audio: the simulator's `version_fault`, which comes back after every restart as a bad
release does). The verification is the real L2 synthesis prober behind a /probe server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import yaml
from support import free_port

from tests.receiver.conftest import alert, payload, receiver_config, wait_for
from tests.receiver.fakes import ServedInThread, answer
from tts_sentinel.exporter.probes.config import SynthesisProbeConfig
from tts_sentinel.exporter.probes.synthesis import probe_synthesis
from tts_sentinel.receiver.versions import VersionHistory, VersionRecord, VersionsConfig


class VersionedService:
    """supervisord running `simulate web|inference --config CURRENT/sim.yml` (the link is read at each start)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.rpc_port, self.web_port, self.api_port = free_port(), free_port(), free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.url = f"http://127.0.0.1:{self.rpc_port}/RPC2"
        self.versions = tmp / "versions"
        for name, fault in (("v1", None), ("v2", "silent")):
            folder = self.versions / name
            folder.mkdir(parents=True)
            section = {"web_port": self.web_port, "api_port": self.api_port, "log_dir": str(tmp / "logs"),
                       "model_name": f"sim/tts:{name}"}
            if fault:
                section["version_fault"] = fault
            (folder / "sim.yml").write_text(yaml.safe_dump({"simulator": section}))
        self.current = tmp / "current"
        self.current.symlink_to(self.versions / "v2")
        self.history = VersionHistory(VersionsConfig(history_file=tmp / "versions.json"))
        cli = f"{sys.executable} -m tts_sentinel.cli simulate"
        programs = "".join(f"""
[program:{program}]
command={cli} {component} --config {self.current}/sim.yml
startsecs=1
autorestart=false
stopasgroup=true
killasgroup=true
stopwaitsecs=5
""" for program, component in (("tts-inference", "inference"), ("tts-webui", "web")))
        conf = tmp / "supervisord.conf"
        conf.write_text(f"""
[supervisord]
nodaemon=true
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
[inet_http_server]
port=127.0.0.1:{self.rpc_port}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
{programs}""")
        binary = shutil.which("supervisord") or str(Path(sys.executable).parent / "supervisord")
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._running, timeout=30, what="both simulator programs RUNNING")
        wait_for(self._answers, timeout=30, what="the simulator's API answering")

    def _answers(self) -> bool:
        try:
            return httpx.get(self.api_url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _running(self) -> bool:
        try:
            infos = xmlrpc.client.ServerProxy(self.url).supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error):
            return False
        return len(infos) == 2 and all(i["statename"] == "RUNNING" for i in infos)

    def pid(self, program: str) -> int:
        return xmlrpc.client.ServerProxy(self.url).supervisor.getProcessInfo(program)["pid"]

    def synthesis(self):
        cfg = SynthesisProbeConfig(enabled=True, request={"url": self.api_url + "/tts", "timeout_seconds": 10})
        return probe_synthesis(cfg)

    def target(self) -> dict:
        return {"supervisord": {"url": self.url}, "versions": {
            "versions_dir": str(self.versions), "current_link": str(self.current),
            "history_file": str(self.history.path)}}

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


class SynthesisProbeServer(ServedInThread):
    """/probe?module=synthesis answered by the real L2 prober against the service."""

    def __init__(self, service: VersionedService) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.results: list[str] = []
        results = self.results

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                module = parse_qs(urlparse(self.path).query).get("module", [""])[0]
                result = service.synthesis()
                ok = result.success and module in ("synthesis", "quality")
                results.append(result.detail)
                answer(self, 200, f'tts_probe_success{{probe="{module}"}} {int(ok)}\n'.encode(), "text/plain")

        self.serve(ThreadingHTTPServer(("127.0.0.1", self.port), Handler))


@pytest.fixture
def service(tmp_path):
    svc = VersionedService(tmp_path)
    yield svc
    svc.close()


@pytest.fixture
def exporter(service):
    server = SynthesisProbeServer(service)
    yield server
    server.close()


def _config(service, exporter, **overrides):
    overrides.setdefault("verification", {"timeout_seconds": 30, "interval_seconds": 0.5, "request_timeout_seconds": 15})
    return receiver_config(service, exporter, target=service.target(), tiers={"rollback": [
        {"action": "switch_version"}, {"action": "restart", "component": "all"},
        {"action": "wait", "seconds": 0.5}, {"action": "verify", "module": "synthesis"}]}, **overrides)


def _degraded_alert():
    return alert("TtsQualityDegraded", tier="rollback", severity="warning", verify="quality", check="stoi")


def test_a_validated_version_that_degrades_is_rolled_back_and_verified(service, exporter, make_receiver):
    service.history.record_switch(VersionRecord("v1", "sim/tts:v1", "1" * 64, "c1", validated=True))
    service.history.record_switch(VersionRecord("v2", "sim/tts:v2", "2" * 64, "c2", validated=True))
    assert service.synthesis().reasons == ["silent"], "v2 is the degraded release"
    inference_pid = service.pid("tts-inference")
    receiver = make_receiver(_config(service, exporter))

    job = receiver.wait_job(receiver.post(payload(_degraded_alert())).json()["new_jobs"][0], timeout=60)

    assert job["status"] == "succeeded", (exporter.results, json.dumps(job["steps"], indent=1))
    assert job["tier"] == "rollback"
    assert service.current.readlink() == service.versions / "v1"
    assert service.pid("tts-inference") != inference_pid
    assert job["steps"][0]["rollback"] == {"from": "v2", "to": "v1", "model_id": "sim/tts:v1",
                                           "weights_sha256": "1" * 64, "commit": "c1"}
    verified = {s["verification"]["module"]: s["verification"]["success"] for s in job["steps"] if "verification" in s}
    assert verified == {"synthesis": True, "quality": True}, "the tier's L2 check and the alert's own probe"
    assert service.synthesis().success, "the previous version speaks again"
    doc = json.loads(service.history.path.read_text())
    assert doc["switches"][-1]["version"] == "v1" and doc["switches"][-1]["reason"] == "rollback from v2"
    assert doc["bad"] == ["v2"], "the version rolled back from is never chosen again"
    assert service.history.previous_good("v1") is None


def test_rollback_refused_and_paged_without_a_known_good_previous_version(service, exporter, make_receiver,
                                                                          alertmanager):
    service.history.record_switch(VersionRecord("v2", "sim/tts:v2", "2" * 64, "c2", validated=True))
    service.history.record_switch(VersionRecord("v1", "sim/tts:v1", "1" * 64, "c1", validated=False))
    pid = service.pid("tts-inference")
    receiver = make_receiver(_config(service, exporter, alertmanager_url=alertmanager.url))

    job = receiver.wait_job(receiver.post(payload(_degraded_alert())).json()["new_jobs"][0])

    assert job["status"] == "refused", job
    assert "no known-good previous version" in job["note"]
    assert service.current.readlink() == service.versions / "v2", "nothing switched"
    assert service.pid("tts-inference") == pid, "nothing restarted"
    paged = wait_for(lambda: alertmanager.alerts("TtsRemediationRefused"), what="the refusal page")
    assert paged[0]["labels"]["reason"] == "preflight"


def test_rollback_refused_while_weights_differ_from_their_manifest(service, exporter, make_receiver, tmp_path):
    service.history.record_switch(VersionRecord("v1", validated=True))
    service.history.record_switch(VersionRecord("v2", validated=True))
    weights = tmp_path / "models"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"flipped bits")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"model.safetensors": "0" * 64}))
    target = {**service.target(), "weights_dir": str(weights), "weights_manifest": str(manifest)}
    cfg = receiver_config(service, exporter, target=target)
    receiver = make_receiver(cfg)

    job = receiver.wait_job(receiver.post(payload(_degraded_alert())).json()["new_jobs"][0])

    assert job["status"] == "refused" and "weights differ from the manifest" in job["note"], job
    assert service.current.readlink() == service.versions / "v2"


def test_the_current_version_is_protected_while_a_candidate_is_validated(service, exporter, make_receiver):
    service.history.record_switch(VersionRecord("v1", validated=True))
    service.history.record_switch(VersionRecord("v2", validated=True))
    service.history.protect(600, "candidate http://127.0.0.1:1 under validation")
    receiver = make_receiver(_config(service, exporter))

    job = receiver.wait_job(receiver.post(payload(_degraded_alert())).json()["new_jobs"][0])

    assert job["status"] == "refused", job
    assert "protected: canary" in job["note"]
    assert service.current.readlink() == service.versions / "v2"
