"""Actuators other than supervisord: Docker (fake engine on a unix socket), systemd (FakeSystemctl),
command (real processes: no shell, hard timeout killing the group, allowlisted label env)."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from tests.receiver.fakes import FakeDockerEngine, fake_systemctl
from tts_sentinel.receiver.actuators import ActuatorError, build_actuator
from tts_sentinel.receiver.actuators.command import CommandActuator
from tts_sentinel.receiver.actuators.docker import DockerActuator
from tts_sentinel.receiver.actuators.systemd import SystemdActuator
from tts_sentinel.receiver.config import CommandConfig, DockerConfig, SystemdConfig, TargetConfig


@pytest.fixture
def engine(tmp_path):
    fake = FakeDockerEngine(tmp_path / "docker.sock", ["tts-web", "tts-inf"])
    yield fake
    fake.close()


def test_docker_restart_signal_stop_start(engine, tmp_path):
    act = DockerActuator(
        DockerConfig(
            socket=tmp_path / "docker.sock",
            web_container="tts-web",
            inference_container="tts-inf",
            stop_timeout_seconds=3,
        )
    )
    act.restart("web")
    act.signal("web", "USR1")
    act.stop("inference")
    assert engine.running["tts-inf"] is False
    act.stop("inference")  # 304: already stopped is fine
    act.start("inference")
    assert engine.running["tts-inf"] is True
    assert engine.requests == [
        ("restart", "tts-web", {"t": "3"}),
        ("kill", "tts-web", {"signal": "SIGUSR1"}),
        ("stop", "tts-inf", {"t": "3"}),
        ("stop", "tts-inf", {"t": "3"}),
        ("start", "tts-inf", {}),
    ]


def test_docker_unknown_container_and_missing_socket_are_clear_errors(engine, tmp_path):
    act = DockerActuator(DockerConfig(socket=tmp_path / "docker.sock", web_container="nope"))
    with pytest.raises(ActuatorError, match="No such container: nope"):
        act.restart("web")
    gone = DockerActuator(DockerConfig(socket=tmp_path / "absent.sock"))
    with pytest.raises(ActuatorError, match="unreachable"):
        gone.start("web")


def test_systemd_argv_and_hot_reload(tmp_path):
    systemctl, calls = fake_systemctl(tmp_path, ["w.service", "i.service"])
    act = SystemdActuator(SystemdConfig(systemctl=str(systemctl), web_unit="w.service", inference_unit="i.service"))
    act.restart("web")
    act.signal("web", "SIGUSR1")
    act.stop("inference")
    act.start("inference")
    lines = [json.loads(line) for line in calls.read_text().splitlines()]
    assert lines == [
        ["restart", "w.service"],
        ["kill", "--kill-whom=main", "--signal=SIGUSR1", "w.service"],
        ["stop", "i.service"],
        ["start", "i.service"],
    ]
    bad = SystemdActuator(SystemdConfig(systemctl=str(systemctl), web_unit="missing.service"))
    with pytest.raises(ActuatorError, match="exited 5.*not found"):
        bad.restart("web")


def test_signal_names_are_validated():
    act = SystemdActuator(SystemdConfig(systemctl="/bin/false"))
    with pytest.raises(ActuatorError, match="not a signal"):
        act.signal("web", "USR1; rm -rf /")


def _script(tmp_path, body):
    path = tmp_path / "ctl.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_command_labels_only_as_allowlisted_validated_env(tmp_path):
    out = tmp_path / "seen.json"
    argv = _script(
        tmp_path,
        f"""
import json, os, sys
json.dump({{"argv": sys.argv[1:], "env": {{k: v for k, v in os.environ.items() if k.startswith("TTS_")}}}},
          open({str(out)!r}, "w"))
""",
    )
    labels = {"instance": "gpu-01:7860", "job": f"$(touch {tmp_path}/pwned)", "secret": "s3cret"}
    target = TargetConfig(
        name="t",
        actuator="command",
        command={"restart": [*argv, "restart"], "label_env": ["instance", "job"]},
    )
    act = build_actuator(target, labels)
    assert isinstance(act, CommandActuator)
    act.restart("web")
    seen = json.loads(out.read_text())
    assert seen["argv"] == ["restart", "web"]
    assert seen["env"]["TTS_LABEL_INSTANCE"] == "gpu-01:7860"
    assert "TTS_LABEL_JOB" not in seen["env"], "a value failing the pattern never reaches the program"
    assert "TTS_LABEL_SECRET" not in seen["env"], "labels not in the allowlist never reach the program"
    assert seen["env"]["TTS_SENTINEL_OPERATION"] == "restart"
    assert not (tmp_path / "pwned").exists()


def test_command_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    argv = _script(
        tmp_path,
        f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open({str(pidfile)!r}, "w").write(str(child.pid))
print("started", flush=True)
time.sleep(60)
""",
    )
    act = CommandActuator(CommandConfig(restart=argv, timeout_seconds=1.5))
    with pytest.raises(ActuatorError, match="timed out.*process group killed"):
        act.restart("web")
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        # A killed but unreaped child of a dead parent lingers as a zombie until init reaps it.
        try:
            with open(f"/proc/{grandchild}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the grandchild survived the timeout")


def test_command_failure_and_missing_operation(tmp_path):
    argv = _script(tmp_path, "import sys; print('boom'); sys.exit(3)")
    act = CommandActuator(CommandConfig(restart=argv))
    with pytest.raises(ActuatorError, match="exited 3: boom"):
        act.restart("web")
    with pytest.raises(ActuatorError, match="no `stop` command configured"):
        act.stop("web")


def test_kubernetes_rollout_restart_and_unsupported_operations(tmp_path):
    from tests.receiver.fakes import FakeKubernetesApi
    from tts_sentinel.receiver.actuators.kubernetes import KubernetesActuator
    from tts_sentinel.receiver.config import KubernetesConfig

    token = tmp_path / "sa-token"
    token.write_text("k8s-token\n")
    api = FakeKubernetesApi(["tts-web"], "k8s-token")
    try:
        act = KubernetesActuator(
            KubernetesConfig(
                api_url=api.url,
                namespace="tts",
                token_file=token,
                ca_file=None,
                web_deployment="tts-web",
                inference_deployment="absent",
            )
        )
        assert "rollout restart tts/tts-web" in act.restart("web")
        [(namespace, name, patch)] = api.patches
        assert (namespace, name) == ("tts", "tts-web")
        assert "kubectl.kubernetes.io/restartedAt" in patch["spec"]["template"]["metadata"]["annotations"]
        with pytest.raises(ActuatorError, match="404"):
            act.restart("inference")
        with pytest.raises(ActuatorError, match="cannot stop"):
            act.stop("web")
    finally:
        api.close()
