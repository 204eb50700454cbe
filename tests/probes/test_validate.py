"""`tts-sentinel validate` against real simulator processes: the current version, a good candidate
and a degraded one (the same simulator started with a model id, weights sha256 and a version fault)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from support import free_port

from tests.receiver.fake_docker import FakeDockerDaemon
from tts_sentinel.exporter.baseline import record_baseline
from tts_sentinel.exporter.validation import ValidationError, candidate_origin, retarget
from tts_sentinel.receiver.versions import VersionHistory, VersionsConfig

SHA_V1, SHA_V2, SHA_BAD = "1" * 64, "2" * 64, "b" * 64


class SimProcess:
    """`tts-sentinel simulate inference` (vLLM-Omni protocol) as its own process."""

    def __init__(self, tmp_path: Path, name: str, **section) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp_path / f"{name}.yml"
        config.write_text(yaml.safe_dump({"simulator": {
            "api_port": self.port, "web_port": free_port(), "protocol": "openai",
            "log_dir": str(tmp_path / f"{name}-logs"), **section}}))
        self.proc = subprocess.Popen([sys.executable, "-m", "tts_sentinel.cli", "simulate", "inference",
                                      "--config", str(config)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"simulator {name} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """The current version (v1), a good candidate (v2) and a candidate whose voice is monotone."""
    tmp = tmp_path_factory.mktemp("versions")
    sims = {
        "current": SimProcess(tmp, "v1", model_name="sim/tts:v1", weights_sha256=SHA_V1),
        "good": SimProcess(tmp, "v2", model_name="sim/tts:v2", weights_sha256=SHA_V2),
        "monotone": SimProcess(tmp, "bad", model_name="sim/tts:v3", weights_sha256=SHA_BAD, version_fault="monotone"),
    }
    yield tmp, sims
    for sim in sims.values():
        sim.stop()


def write_config(tmp: Path, current_url: str) -> Path:
    request = {"protocol": "openai", "url": current_url + "/v1/audio/speech", "timeout_seconds": 20}
    probes = {
        "baseline_dir": str(tmp / "baseline"), "model_id": "sim/tts:v1",
        "health": {"url": current_url + "/health", "expect_json": None, "expect_empty_body": True},
        "synthesis": {"enabled": True, "request": request,
                      "targets": [{"lang": "zh", "speaker": "Vivian"}, {"lang": "en", "speaker": "Ryan"}]},
        "semantic": {"enabled": True, "request": request, "report_path": str(tmp / "semantic.log")},
        "quality": {"enabled": True, "request": request},
        "modules": {"stream": {"prober": "streaming", "enabled": True, "request": request,
                               "transports": ["sse", "websocket"]}},
    }
    receiver = {"targets": [{"name": "tts", "match": {"service": "tts"}, "versions": {
        "versions_dir": str(tmp / "versions"), "current_link": str(tmp / "current"),
        "history_file": str(tmp / "versions.json")}}, {
        "name": "tts-docker", "match": {"service": "tts-docker"}, "actuator": "docker",
        "docker": {"socket": str(tmp / "docker.sock")}, "versions": {"history_file": str(tmp / "versions-docker.json")}}]}
    path = tmp / "sentinel.yml"
    path.write_text(yaml.safe_dump({"exporter": {"probes": probes}, "receiver": receiver}))
    return path


@pytest.fixture(scope="module")
def config(versions):
    tmp, sims = versions
    path = write_config(tmp, sims["current"].url)
    from tts_sentinel.config import load_config

    record_baseline(load_config(str(path)).exporter.probes)  # templates of the current version
    return path


def validate(config: Path, candidate: str, *extra: str) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "tts_sentinel.cli", "validate", "--config", str(config),
                           "--candidate", candidate, "--json", *extra], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_degraded_candidate_fails_naming_the_failed_checks(versions, config):
    _tmp, sims = versions
    code, report = validate(config, sims["monotone"].url)

    assert code == 1 and report["passed"] is False
    assert "semantic" in report["failed_checks"], report["failed_checks"]
    checks = {c["check"]: c for c in report["checks"]}
    assert set(checks["semantic"]["candidate"]["reasons"]) <= {"monotone", "dtw_distance"}
    assert checks["semantic"]["candidate"]["reasons"], "the failed check says why"
    assert checks["semantic"]["current"]["success"] is True, "the current version passes the same check"
    # Every L2 cell is a check of its own; a monotone voice is still valid audio.
    assert checks["synthesis[zh/Vivian]"]["passed"] and checks["synthesis[en/Ryan]"]["passed"]
    assert checks["health"]["passed"]
    assert report["candidate_model"] == {"model_id": "sim/tts:v3", "weights_sha256": SHA_BAD}
    assert report["current_model"]["model_id"] == "sim/tts:v1"
    # Figures side by side: the DTW distance of each style, current -> candidate.
    figures = [f for f in checks["semantic"]["figures"] if f["name"] == "tts_semantic_dtw_distance"]
    assert figures and all(f["current"] is not None for f in figures)


def test_a_good_candidate_passes_and_the_switch_is_recorded(versions, config):
    tmp, sims = versions
    (tmp / "versions" / "v2").mkdir(parents=True, exist_ok=True)
    code, report = validate(config, sims["good"].url, "--target", "tts", "--record", "v2", "--commit", "abc123")

    assert code == 0 and report["passed"] is True and report["failed_checks"] == []
    assert {c["check"] for c in report["checks"]} == {
        "health", "synthesis[zh/Vivian]", "synthesis[en/Ryan]", "semantic", "quality", "stream"}
    history = VersionHistory(VersionsConfig(history_file=tmp / "versions.json"))
    [switch] = history.switches()
    assert (switch.version, switch.model_id, switch.weights_sha256, switch.commit, switch.validated) == (
        "v2", "sim/tts:v2", SHA_V2, "abc123", True)
    # Baselines re-recorded for the new model id, from the candidate.
    recorded = [json.loads(p.read_text())["model_id"] for p in (tmp / "baseline").rglob("manifest.json")]
    assert sorted(recorded) == ["sim/tts:v1", "sim/tts:v2"]
    assert history.protection() is None, "the protection ends with the validation"


def test_a_failed_candidate_records_nothing(versions, config):
    tmp, sims = versions
    before = (tmp / "versions.json").read_text() if (tmp / "versions.json").exists() else None
    code, _report = validate(config, sims["monotone"].url, "--target", "tts", "--record", "v3")
    assert code == 1
    after = (tmp / "versions.json").read_text() if (tmp / "versions.json").exists() else None
    assert after == before


def test_a_docker_candidate_is_recorded_with_the_image_its_container_runs(versions, config):
    tmp, sims = versions
    engine = FakeDockerDaemon(tmp / "docker.sock")
    try:
        image = engine.add_image("qwen3-tts:v2", Env=["MODEL_REV=v2"])
        assert engine.handle("POST", "/v1.43/containers/create?name=tts-candidate", {"Image": "qwen3-tts:v2"})[0] == 201
        code, _report = validate(config, sims["good"].url, "--target", "tts-docker", "--record", "v2",
                                 "--image-from", "tts-candidate")
        history = VersionHistory(VersionsConfig(history_file=tmp / "versions-docker.json"))
        assert code == 0 and [s.image for s in history.switches()] == [{"id": image, "ref": "qwen3-tts:v2"}]
        # Without a readable image nothing is recorded: a version the rollback could not return to.
        done = subprocess.run([sys.executable, "-m", "tts_sentinel.cli", "validate", "--config", str(config),
                               "--candidate", sims["good"].url, "--target", "tts-docker", "--record", "v3"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "image of container qwen3-tts-inference cannot be read" in done.stderr
        assert [s.version for s in history.switches()] == ["v2"]
    finally:
        engine.close()


def test_bad_candidate_url_is_an_error_not_a_failure(config):
    done = subprocess.run([sys.executable, "-m", "tts_sentinel.cli", "validate", "--config", str(config),
                           "--candidate", "ftp://example"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not an http(s) URL" in done.stderr
    with pytest.raises(ValidationError, match="credentials"):
        candidate_origin("http://user:pw@127.0.0.1:1")


def test_retarget_points_every_url_at_the_candidate():
    from tts_sentinel.exporter.probes.config import ProbesConfig

    probes = ProbesConfig(modules={"stream": {"prober": "streaming", "websocket_url": "ws://10.0.0.1:8000/v1/s"}})
    assert retarget(probes.health, "http://127.0.0.1:9").url == "http://127.0.0.1:9/health"
    assert retarget(probes.synthesis, "http://127.0.0.1:9").request.url == "http://127.0.0.1:9/tts"
    assert retarget(probes.modules["stream"], "https://c:1").websocket_url == "wss://c:1/v1/s"
    assert probes.health.url == "http://127.0.0.1:7860/health", "the original config is left as it was"
