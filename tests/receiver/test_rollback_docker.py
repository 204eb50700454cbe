"""The rollback tier on a Docker target: the inference container recreated from the previous version's image.

The engine is FakeDockerDaemon on a real unix socket (no Docker daemon here); the running
container is created through its API the way `docker run` would, so its inspect output carries
the image's defaults merged in, as dockerd's does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support import free_port

from tests.receiver.conftest import alert, payload, receiver_config, wait_for
from tests.receiver.fake_docker import FakeDockerDaemon
from tests.receiver.fakes import ServedInThread, answer
from tts_sentinel.receiver.actuators import ActuatorError
from tts_sentinel.receiver.config import TargetConfig
from tts_sentinel.receiver.heavy import PreflightRefusal
from tts_sentinel.receiver.rollback import rollback_preflight, switch_version
from tts_sentinel.receiver.versions import VersionHistory, VersionRecord

ROOT = Path(__file__).resolve().parents[2]
HOST = {
    "Binds": ["/srv/models:/models:ro"], "NetworkMode": "tts-net",
    "PortBindings": {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000"}]},
    "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
    "DeviceRequests": [{"Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]}], "ShmSize": 8589934592,
}


class DockerHost:
    """The fake engine with images v1 and v2 and `tts-inference` running v2, as `docker run` left it."""

    def __init__(self, tmp: Path) -> None:
        self.socket = tmp / "docker.sock"
        self.engine = FakeDockerDaemon(self.socket)
        self.engine.networks |= {"tts-net", "monitoring"}
        self.v1 = self.engine.add_image("qwen3-tts:v1", Env=["PATH=/usr/bin", "MODEL_REV=v1"], Cmd=["serve"],
                                        Labels={"org.opencontainers.image.version": "v1"},
                                        ExposedPorts={"8000/tcp": {}}, WorkingDir="/app")
        self.v2 = self.engine.add_image("qwen3-tts:v2", Env=["PATH=/usr/bin", "MODEL_REV=v2"],
                                        Cmd=["serve", "--new-sampler"],
                                        Labels={"org.opencontainers.image.version": "v2"},
                                        ExposedPorts={"8000/tcp": {}, "9000/tcp": {}}, WorkingDir="/app")
        code, created = self.engine.handle("POST", "/v1.43/containers/create?name=tts-inference", {
            "Image": "qwen3-tts:v2", "Env": ["HF_HOME=/models", "CUDA_VISIBLE_DEVICES=0"],
            "Labels": {"com.docker.compose.service": "inference"}, "HostConfig": HOST,
            "NetworkingConfig": {"EndpointsConfig": {"tts-net": {"Aliases": ["inference"]}}}})
        assert code == 201, created
        self.old_id = created["Id"]
        assert self.engine.handle("POST", "/v1.43/networks/monitoring/connect",
                                  {"Container": self.old_id, "EndpointConfig": {"Aliases": ["tts-metrics"]}})[0] == 200
        assert self.engine.handle("POST", f"/v1.43/containers/{self.old_id}/start", None)[0] == 204
        self.engine.requests.clear()
        self.history = VersionHistory(target(tmp).versions)

    def record(self, version: str, image: str | None, tag: str = "") -> None:
        self.history.record_switch(VersionRecord(version, f"qwen3-tts:{version}", "1" * 64, f"c-{version}", True,
                                                 image={"id": image, "ref": tag} if image else None))


def target(tmp: Path) -> TargetConfig:
    return TargetConfig(name="tts", match={"service": "tts"}, actuator="docker", weights_dir=None, docker={
        "socket": str(tmp / "docker.sock"), "web_container": "tts-web", "inference_container": "tts-inference",
        "stop_timeout_seconds": 1}, versions={"history_file": str(tmp / "versions.json")})


@pytest.fixture
def host(tmp_path):
    docker = DockerHost(tmp_path)
    yield docker
    docker.engine.close()


def test_recreates_the_container_from_the_previous_image_with_the_same_settings(host, tmp_path):
    host.record("v1", host.v1, "qwen3-tts:v1")
    host.record("v2", host.v2, "qwen3-tts:v2")
    old = json.loads(json.dumps(host.engine.containers[host.old_id]))
    plan = rollback_preflight(target(tmp_path))
    assert (plan["from"], plan["to"], plan["image"]["id"], plan["old_id"]) == ("v2", "v1", host.v1, host.old_id)

    out = switch_version(target(tmp_path), plan)

    new = host.engine.named("tts-inference")
    assert new["Id"] != host.old_id and new["Image"] == host.v1 and new["State"]["Running"]
    assert new["Config"]["Image"] == "qwen3-tts:v1", "created from the tag, which still names the recorded id"
    assert sorted(new["Config"]["Env"]) == ["CUDA_VISIBLE_DEVICES=0", "HF_HOME=/models", "MODEL_REV=v1",
                                            "PATH=/usr/bin"], "v1's own defaults, the container's own settings"
    assert new["Config"]["Cmd"] == ["serve"] and new["Config"]["WorkingDir"] == "/app"
    assert new["Config"]["Labels"] == {"com.docker.compose.service": "inference",
                                       "org.opencontainers.image.version": "v1"}
    assert set(new["Config"]["ExposedPorts"]) == {"8000/tcp"}, "v2's extra port was v2's default, not ours"
    assert new["Config"]["Hostname"] == new["Id"][:12], "its own hostname, not the old short id"
    for key, value in HOST.items():
        assert new["HostConfig"][key] == value, key
    networks = new["NetworkSettings"]["Networks"]
    assert set(networks) == {"tts-net", "monitoring"}
    assert networks["tts-net"]["Aliases"] == ["inference", new["Id"][:12]]
    assert networks["monitoring"]["Aliases"] == ["tts-metrics", new["Id"][:12]], "no alias of the old id"

    kept = host.engine.containers[host.old_id]
    assert kept["Name"] == "/" + plan["old_name"] and plan["old_name"].startswith("tts-inference-rolledback-")
    assert not kept["State"]["Running"] and kept["Image"] == host.v2, "the old container kept, stopped"
    assert kept["HostConfig"].pop("RestartPolicy") == {"Name": "no", "MaximumRetryCount": 0}, \
        "a daemon restart must not start the old version beside the new one"
    old["HostConfig"].pop("RestartPolicy")
    assert kept["Config"] == old["Config"] and kept["HostConfig"] == old["HostConfig"]
    assert host.engine.named(plan["temp_name"]) is None and host.engine.creates() == 1
    assert f"kept, stopped (restart policy no), as {plan['old_name']}" in out and f"docker rm {plan['old_name']}" in out

    doc = host.history.load()
    assert doc["format"] == 2 and doc["rollback_in_progress"] is None and doc["bad"] == ["v2"]
    assert doc["switches"][-1]["version"] == "v1" and doc["switches"][-1]["image"]["id"] == host.v1
    with pytest.raises(PreflightRefusal, match="no known-good previous version"):
        rollback_preflight(target(tmp_path))  # v2 was rolled back from: never chosen again


def test_refused_without_a_previous_version_that_has_an_image(host, tmp_path):
    # A history written before images were recorded (format 1) is read as it is.
    (tmp_path / "versions.json").write_text(json.dumps(
        {"format": 1, "switches": [{"version": "v1", "validated": True}], "bad": [], "protected": None}))
    with pytest.raises(PreflightRefusal, match="which no recorded version ran"):
        rollback_preflight(target(tmp_path))
    host.record("v2", host.v2, "qwen3-tts:v2")
    with pytest.raises(PreflightRefusal, match="no known-good previous version with a recorded image"):
        rollback_preflight(target(tmp_path))
    assert host.history.load()["format"] == 2 and host.history.switches()[0].image is None
    by_id = target(tmp_path).model_copy(update={"docker": target(tmp_path).docker.model_copy(
        update={"inference_container": host.old_id[:12]})})
    with pytest.raises(PreflightRefusal, match="not the container's name but its id.*configure its name"):
        rollback_preflight(by_id)  # the recreated container would not answer to the old id
    assert host.engine.creates() == 0 and host.engine.containers[host.old_id]["State"]["Running"]


def test_refused_when_the_previous_image_is_gone_from_the_host(host, tmp_path):
    host.record("v1", host.v1, "qwen3-tts:v1")
    host.record("v2", host.v2, "qwen3-tts:v2")
    del host.engine.images[host.v1]  # `docker image prune -a` while v2 ran
    with pytest.raises(PreflightRefusal, match=r"image of v1 \(qwen3-tts:v1, sha256:.*\) is no longer on this host"):
        rollback_preflight(target(tmp_path))
    assert host.engine.creates() == 0
    assert [m for m, _p, _q in host.engine.requests] == ["GET"] * len(host.engine.requests), "nothing changed"


def test_create_failing_leaves_the_old_container_running_and_fails(host, tmp_path):
    host.record("v1", host.v1, "qwen3-tts:v1")
    host.record("v2", host.v2, "qwen3-tts:v2")
    plan = rollback_preflight(target(tmp_path))
    del host.engine.images[host.v1]  # removed between the check and the create
    with pytest.raises(ActuatorError, match=r"No such image: sha256:.*the old container runs again as tts-inference"):
        switch_version(target(tmp_path), plan)
    old = host.engine.named("tts-inference")
    assert old["Id"] == host.old_id and old["State"]["Running"] and len(host.engine.containers) == 1
    assert host.history.rollback_in_progress() is None and host.history.switches()[-1].version == "v2"


def test_start_failing_brings_the_old_container_back_under_its_name(host, tmp_path):
    host.record("v1", host.v1, "qwen3-tts:v1")
    host.record("v2", host.v2, "qwen3-tts:v2")
    host.engine.broken_images.add(host.v1)
    plan = rollback_preflight(target(tmp_path))
    with pytest.raises(ActuatorError, match="OCI runtime create failed.*runs again as tts-inference.*kept, stopped \\(restart policy no\\)"):
        switch_version(target(tmp_path), plan)
    old = host.engine.named("tts-inference")
    assert old["Id"] == host.old_id and old["State"]["Running"]
    assert old["HostConfig"]["RestartPolicy"] == HOST["RestartPolicy"], "its restart policy given back"
    failed = host.engine.named(plan["temp_name"])
    assert failed["Image"] == host.v1 and not failed["State"]["Running"], "kept for a person, not started"
    assert failed["HostConfig"]["RestartPolicy"]["Name"] == "no", "nor started by a daemon restart"
    assert host.history.rollback_in_progress() is None and "v2" not in host.history.load()["bad"]


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from tts_sentinel.receiver.config import TargetConfig
from tts_sentinel.receiver.rollback import rollback_preflight, switch_version
target = TargetConfig.model_validate_json(Path({config!r}).read_text())
switch_version(target, rollback_preflight(target))
"""


@pytest.mark.parametrize("killed_during", ["create", "stop", "update", "rename", "start"])
def test_a_receiver_killed_mid_rollback_resumes_it_without_a_second_container(host, tmp_path, killed_during):
    host.record("v1", host.v1, "qwen3-tts:v1")
    host.record("v2", host.v2, "qwen3-tts:v2")
    config = tmp_path / "target.json"
    config.write_text(target(tmp_path).model_dump_json())
    host.engine.hold(killed_during)
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), config=str(config))],
                             cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert host.engine.held.wait(30), f"the rollback never reached {killed_during}"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    host.engine.release()
    assert host.engine.done.wait(10)  # the daemon finishes the request its client died in
    pending = host.history.rollback_in_progress()
    assert pending is not None and pending["to"] == "v1"

    resumed = rollback_preflight(target(tmp_path))  # the runner's preflight on the resumed job
    assert resumed["temp_name"] == pending["temp_name"], "the plan written before the kill, not a new one"
    switch_version(target(tmp_path), resumed)

    assert host.engine.creates() == 1, "resumed, not created again"
    new = host.engine.named("tts-inference")
    assert new["Image"] == host.v1 and new["State"]["Running"] and new["Id"] != host.old_id
    kept = host.engine.containers[host.old_id]
    assert kept["Name"] == "/" + pending["old_name"] and not kept["State"]["Running"]
    assert len(host.engine.containers) == 2 and host.history.rollback_in_progress() is None
    assert [s.version for s in host.history.switches()] == ["v1", "v2", "v1"]


class ImageProbe(ServedInThread):
    """/probe?module=M for the receiver's verification: green when tts-inference runs `good` (the fake has no model)."""

    def __init__(self, host: DockerHost, good: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                module = self.path.split("module=", 1)[-1]
                c = host.engine.named("tts-inference")
                ok = c is not None and c["Image"] == good and c["State"]["Running"]
                answer(self, 200, f'tts_probe_success{{probe="{module}"}} {int(ok)}\n'.encode(), "text/plain")

        self.serve(ThreadingHTTPServer(("127.0.0.1", self.port), Handler))


def _receiver_config(host, probe, tmp_path, **overrides):
    assert host.engine.handle("POST", "/v1.43/containers/create?name=tts-web", {"Image": "qwen3-tts:v1"})[0] == 201
    host.engine.requests.clear()
    t = target(tmp_path)
    return receiver_config(None, probe, target={
        "actuator": "docker", "docker": t.docker.model_dump(mode="json"),
        "versions": t.versions.model_dump(mode="json")}, tiers={"rollback": [
            {"action": "switch_version"}, {"action": "restart", "component": "all"},
            {"action": "wait", "seconds": 0.2}, {"action": "verify", "module": "synthesis"}]}, **overrides)


def _degraded():
    return alert("TtsQualityDegraded", tier="rollback", severity="warning", verify="quality", check="stoi")


def test_the_tier_rolls_back_journals_and_verifies_through_the_receiver(host, tmp_path, make_receiver):
    host.record("v1", host.v1, "qwen3-tts:v1")
    host.record("v2", host.v2, "qwen3-tts:v2")
    probe = ImageProbe(host, good=host.v1)
    try:
        receiver = make_receiver(_receiver_config(host, probe, tmp_path))
        job = receiver.wait_job(receiver.post(payload(_degraded())).json()["new_jobs"][0], timeout=60)
    finally:
        probe.close()
    assert job["status"] == "succeeded", json.dumps(job, indent=1)
    switch = job["steps"][0]
    assert switch["step"].startswith("recreate container tts-inference from the previous known-good")
    assert switch["rollback"]["to"] == "v1" and switch["rollback"]["image"]["id"] == host.v1
    assert "kept, stopped (restart policy no), as tts-inference-rolledback-" in switch["output"]
    assert [s["verification"]["success"] for s in job["steps"] if "verification" in s] == [True, True]
    assert host.engine.named("tts-inference")["Image"] == host.v1 and host.engine.creates() == 1


def test_a_failed_recreation_fails_the_job_and_pages(host, tmp_path, make_receiver, alertmanager):
    host.record("v1", host.v1, "qwen3-tts:v1")
    host.record("v2", host.v2, "qwen3-tts:v2")
    host.engine.broken_images.add(host.v1)
    probe = ImageProbe(host, good=host.v1)
    try:
        receiver = make_receiver(_receiver_config(host, probe, tmp_path, alertmanager_url=alertmanager.url))
        job = receiver.wait_job(receiver.post(payload(_degraded())).json()["new_jobs"][0], timeout=60)
    finally:
        probe.close()
    assert job["status"] == "failed", json.dumps(job, indent=1)
    assert "OCI runtime create failed" in job["note"] and "runs again as tts-inference" in job["note"]
    assert len(job["steps"]) == 1, "nothing after the failed switch ran"
    old = host.engine.named("tts-inference")
    assert old["Id"] == host.old_id and old["State"]["Running"]
    paged = wait_for(lambda: alertmanager.alerts("TtsRemediationExhausted"), what="the failure page")
    assert paged[0]["labels"]["reason"] == "rollback_failed"
