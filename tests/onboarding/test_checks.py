"""Doctor's checks, one by one: each passes on the real thing and fails with a reason and a fix."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from tts_sentinel.exporter.gpu import GpuConfig
from tts_sentinel.loghistory.config import LogCommandConfig, LogFileConfig
from tts_sentinel.onboarding.checks_host import check_gpu, check_log_command, check_log_file, check_targets
from tts_sentinel.onboarding.checks_stack import check_alertmanager, route_receivers
from tts_sentinel.onboarding.report import Check, format_json, format_table
from tts_sentinel.receiver.auth import read_token
from tts_sentinel.receiver.config import ReceiverConfig, TargetConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "exporter"))
from fake_nvml import FakeGpu, FakeNvml  # noqa: E402
from onboarding_fakes import FakeDockerEngine, FakeHttpApi, fake_systemctl  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_a_log_file_is_readable_missing_or_a_folder(tmp_path):
    (tmp_path / "inference.log").write_text("line\n")
    assert check_log_file(LogFileConfig(name="inference", path=tmp_path / "inference.log")).status == "ok"
    missing = check_log_file(LogFileConfig(name="webui", path=tmp_path / "webui.log"))
    assert missing.failed and "no such file (its folder exists)" in missing.why and "init --log-file" in missing.fix
    folder = check_log_file(LogFileConfig(name="webui", path=tmp_path))
    assert folder.failed and "is a folder" in folder.why


def test_a_log_command_must_start_and_keep_running():
    assert check_log_command(LogCommandConfig(name="a", argv=["sleep", "30"]), grace=0.3).status == "ok"
    died = check_log_command(LogCommandConfig(name="a", argv=["sh", "-c", "echo no such unit >&2; exit 3"]))
    assert died.failed and "exited with status 3" in died.why and "no such unit" in died.why
    absent = check_log_command(LogCommandConfig(name="a", argv=["no-such-binary-here", "-f"]))
    assert absent.failed and "not found on PATH" in absent.why


def test_a_missing_gpu_is_a_failure_with_its_reason_not_a_crash():
    missing = check_gpu(GpuConfig(), FakeNvml(library_missing=True))
    assert missing.failed and "no NVIDIA driver" in missing.why and "exporter.gpu.enabled: false" in missing.fix
    present = check_gpu(GpuConfig(), FakeNvml([FakeGpu(name="NVIDIA H200")]))
    assert present.status == "ok" and "NVIDIA H200" in present.why
    assert check_gpu(GpuConfig(enabled=False)).status == "skip"


def test_systemd_units_must_exist(tmp_path):
    systemctl = str(fake_systemctl(tmp_path, {"vllm.service": "active"}))
    target = TargetConfig(name="tts", actuator="systemd",
                          systemd={"systemctl": systemctl, "web_unit": "vllm.service", "inference_unit": "gone.service"})
    found, missing = check_targets([target])
    assert found.status == "ok" and "active" in found.why
    assert missing.failed and "no unit gone.service" in missing.why


def test_docker_containers_must_exist_behind_the_socket(tmp_path):
    socket = tmp_path / "docker.sock"
    target = TargetConfig(name="tts", actuator="docker",
                          docker={"socket": socket, "web_container": "web", "inference_container": "infer"})
    (down,) = check_targets([target])
    assert down.failed and "unreachable" in down.why
    engine = FakeDockerEngine(socket, {"web": "running"})
    try:
        web, infer = check_targets([target])
    finally:
        engine.close()
    assert web.status == "ok" and "running" in web.why
    assert infer.failed and "no container infer" in infer.why


def test_kubernetes_deployments_must_be_readable_with_the_service_account(tmp_path):
    token = tmp_path / "token"
    api = FakeHttpApi(lambda req: (200, {}) if "deployments/web " in req and req.endswith("Bearer sa-token")
                      else (403, {"message": "forbidden"}))
    target = TargetConfig(name="tts", actuator="kubernetes", kubernetes={
        "api_url": api.url, "token_file": token, "ca_file": None, "namespace": "tts",
        "web_deployment": "web", "inference_deployment": "infer"})
    try:
        (no_token,) = check_targets([target])
        token.write_text("sa-token\n")
        web, infer = check_targets([target])
    finally:
        api.close()
    assert no_token.failed and "service-account token" in no_token.why
    assert web.status == "ok"
    assert infer.failed and "403" in infer.why and "rbac" in infer.fix.lower()


def test_a_dry_run_target_is_not_checked():
    (check,) = check_targets([TargetConfig(name="tts", dry_run=True)])
    assert check.status == "skip"


def shipped_alertmanager() -> dict:
    return yaml.safe_load((ROOT / "rules" / "alertmanager.yml").read_text())


def test_routing_follows_alertmanagers_tree_with_continue():
    route = shipped_alertmanager()["route"]
    # a healable alert goes to the receiver only: on-call hears of it through the receiver's page
    assert route_receivers(route, {"tier": "medium", "severity": "critical"}) == ["tts-sentinel", "blackhole"]
    assert route_receivers(route, {"tier": "none", "severity": "warning"}) == ["tts-sentinel", "blackhole"]
    assert route_receivers(route, {"alertname": "TtsNotHealed", "severity": "critical"}) == ["oncall"]
    assert route_receivers(route, {"severity": "critical"}) == ["oncall"]  # nothing heals it
    legacy = {"receiver": "default", "routes": [{"receiver": "a", "match_re": {"tier": "light|medium"}}]}
    assert route_receivers(legacy, {"tier": "light"}) == ["a"]
    assert route_receivers(legacy, {"tier": "heavy"}) == ["default"]


@pytest.fixture
def alertmanager():
    apis = []

    def serve(config: dict) -> str:
        api = FakeHttpApi(lambda req: (200, {"config": {"original": yaml.safe_dump(config)}}))
        apis.append(api)
        return api.url

    yield serve
    for api in apis:
        api.close()


def _ours(config: dict) -> tuple[dict, dict]:
    """The webhook config of the receiver named tts-sentinel, and the route that reaches it."""
    hook = next(r for r in config["receivers"] if r["name"] == "tts-sentinel")["webhook_configs"][0]
    route = next(r for r in config["route"]["routes"] if r.get("receiver") == "tts-sentinel")
    return hook, route


def test_alertmanager_must_route_every_tier_to_this_receiver_with_the_token(tmp_path, alertmanager):
    token = tmp_path / "receiver.token"
    token.write_text("t" * 32)
    token.chmod(0o600)  # the receiver refuses a token file others can read
    receiver = ReceiverConfig(listen_port=9465, token_file=token)
    config = shipped_alertmanager()
    _ours(config)[0]["http_config"]["authorization"]["credentials_file"] = str(token)
    assert check_alertmanager(alertmanager(config), receiver, _client()).status == "ok"

    _ours(config)[1]["matchers"] = ['tier=~"light|medium"']
    check = check_alertmanager(alertmanager(config), receiver, _client())
    assert check.failed and "tier heavy, derate, rollback, none reaches no webhook" in check.why

    config = shipped_alertmanager()
    _ours(config)[0]["url"] = "http://127.0.0.1:9999/alerts"
    check = check_alertmanager(alertmanager(config), receiver, _client())
    assert check.failed and "posts to http://127.0.0.1:9999/alerts" in check.why

    other = tmp_path / "other.token"
    other.write_text("o" * 32)
    other.chmod(0o600)
    config = shipped_alertmanager()
    _ours(config)[0]["http_config"]["authorization"]["credentials_file"] = str(other)
    check = check_alertmanager(alertmanager(config), receiver, _client())
    assert check.failed and "holds another token" in check.why


def _client():
    import httpx

    return httpx.Client(timeout=3)


def test_a_warning_shows_its_fix_and_does_not_fail_the_run():
    checks = [Check("ok", "receiver", "up"),
              Check("warn", "Alertmanager asks for a login", "-> 200 without credentials", "start it with auth")]
    table = format_table(checks)
    assert "⚠ Alertmanager asks for a login" in table and "fix: start it with auth" in table
    assert table.endswith("1 ok, 1 warnings, 0 failed, 0 not applicable")
    assert json.loads(format_json(checks))["ok"] is True


def test_the_table_shows_every_check_with_a_fix_under_each_failure_and_json_says_the_same():
    checks = [Check("ok", "receiver", "up"), Check("fail", "log file webui", "no such file", "fix the path"),
              Check("skip", "GPU (NVML)", "disabled")]
    table = format_table(checks)
    assert table.splitlines()[:4] == ["✔ receiver        up", "✗ log file webui  no such file",
                                      "                  fix: fix the path", "– GPU (NVML)      disabled"]
    assert table.endswith("1 ok, 0 warnings, 1 failed, 1 not applicable")
    doc = json.loads(format_json(checks))
    assert doc["ok"] is False and doc["checks"][1] == {"status": "fail", "what": "log file webui",
                                                       "why": "no such file", "fix": "fix the path"}


def test_doctor_as_root_reads_the_token_the_receivers_user_owns_but_never_a_shared_one(tmp_path):
    """docs/watch-your-own-server.md: receiver.token belongs to tts-sentinel, mode 0600; doctor runs as root."""
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    token = tmp_path / "receiver.token"
    token.write_text("u" * 32)
    token.chmod(0o600)
    os.chown(token, 65534, 65534)  # nobody: the receiver's user in this test
    with pytest.raises(ValueError, match="belongs to uid 65534"):
        read_token(token)  # the receiver itself, run as another user, refuses it
    assert read_token(token, check_owner=False) == "u" * 32
    token.chmod(0o640)
    with pytest.raises(ValueError, match="chmod 600"):
        read_token(token, check_owner=False)
