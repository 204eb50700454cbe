"""Docker and Kubernetes sources against fakes of their APIs: restart counts, exit codes, back-off, clear errors."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

sys.path.insert(0, str(Path(__file__).parent))
from fake_process_managers import FakeDockerEngine, FakeKubernetesApi, k8s_pod  # noqa: E402

from tts_sentinel.exporter.processes.collector import ProcessCollector  # noqa: E402
from tts_sentinel.exporter.processes.config import (  # noqa: E402
    DockerSourceConfig,
    KubernetesSourceConfig,
    ProcessesConfig,
)
from tts_sentinel.exporter.processes.docker import DockerSource  # noqa: E402
from tts_sentinel.exporter.processes.kubernetes import KubernetesSource, label_selector  # noqa: E402
from tts_sentinel.exporter.processes.source import SourceError  # noqa: E402

TOKEN = "k8s-token-0123456789"
STARTED = "2026-01-05T10:00:00.123456789Z"


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def by_component(reading):
    return {p.component: p for p in reading.processes}


# --- Docker ------------------------------------------------------------------------------------

@pytest.fixture
def engine(tmp_path):
    fake = FakeDockerEngine(tmp_path / "docker.sock")
    fake.add_running("qwen3-tts-webui", STARTED)
    fake.add_running("qwen3-tts-inference", STARTED, restart_count=4)
    yield fake
    fake.close()


def docker_config(engine) -> DockerSourceConfig:
    return DockerSourceConfig(socket=Path(engine.server.server_address))


def test_docker_running_containers_with_their_restart_counts(engine):
    reading = by_component(DockerSource(docker_config(engine)).read())
    web, inference = reading["web"], reading["inference"]
    assert web.up and web.state == "running" and web.name == "qwen3-tts-webui"
    assert (web.restarts, inference.restarts) == (0, 4)
    assert web.start_time_seconds == pytest.approx(epoch("2026-01-05T10:00:00.123456Z"))
    assert web.last_exit_code is None and not web.backoff


def test_docker_a_crash_is_restarting_then_one_more_restart_and_the_exit_code_stays_exported(engine):
    collector = ProcessCollector(ProcessesConfig(kind="docker", docker=docker_config(engine)))
    engine.restarting("qwen3-tts-inference", 137, "2026-01-05T10:05:00Z")
    reading, _ = collector.read()
    inference = by_component(reading)["inference"]
    assert (inference.up, inference.backoff, inference.state, inference.last_exit_code) == (
        False, True, "restarting", 137)
    engine.restarted("qwen3-tts-inference", "2026-01-05T10:05:01Z")
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'tts_process_restarts_total{component="inference",name="qwen3-tts-inference"} 5.0' in text
    assert 'tts_process_up{component="inference",name="qwen3-tts-inference"} 1.0' in text
    # the engine says ExitCode 0 again; the last exit was still 137
    assert 'tts_process_last_exit_code{component="inference",name="qwen3-tts-inference"} 137.0' in text


def test_docker_an_unknown_container_names_the_key_to_set(engine):
    del engine.containers["qwen3-tts-webui"]
    with pytest.raises(SourceError) as err:
        DockerSource(docker_config(engine)).read()
    assert err.value.reason == "not_found"
    assert "exporter.processes.docker.web_container" in str(err.value)


def test_docker_without_an_engine_is_unreachable(tmp_path):
    with pytest.raises(SourceError) as err:
        DockerSource(DockerSourceConfig(socket=tmp_path / "absent.sock")).read()
    assert err.value.reason == "unreachable"
    assert "absent.sock" in str(err.value)


# --- Kubernetes --------------------------------------------------------------------------------

@pytest.fixture
def api(tmp_path):
    fake = FakeKubernetesApi(TOKEN)
    fake.deployments = {"qwen3-tts-webui": {"matchLabels": {"app": "web"}},
                        "qwen3-tts-inference": {"matchLabels": {"app": "inference"}}}
    fake.pods = [k8s_pod("web-7d9-abcde", "web"), k8s_pod("inference-5f6-fghij", "inference", restarts=1,
                                                             last_exit=1)]
    yield fake
    fake.close()


def k8s_config(api, tmp_path, token=TOKEN) -> KubernetesSourceConfig:
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    return KubernetesSourceConfig(api_url=api.url, namespace="tts", token_file=token_file, ca_file=None)


def test_k8s_one_status_per_pod_found_through_the_deployments_selector(api, tmp_path):
    reading = by_component(KubernetesSource(k8s_config(api, tmp_path)).read())
    web, inference = reading["web"], reading["inference"]
    assert web.name == "web-7d9-abcde" and web.up and web.state == "Running" and web.restarts == 0
    assert web.start_time_seconds == epoch("2026-01-05T10:00:00Z")
    assert (inference.restarts, inference.last_exit_code) == (1, 1)
    assert "/api/v1/namespaces/tts/pods?labelSelector=app%3Dweb" in api.requests


def test_k8s_crash_loop_back_off_is_down_and_backing_off(api, tmp_path):
    api.pods[1] = k8s_pod("inference-5f6-fghij", "inference", restarts=5, waiting="CrashLoopBackOff", last_exit=137)
    inference = by_component(KubernetesSource(k8s_config(api, tmp_path)).read())["inference"]
    assert (inference.up, inference.backoff, inference.state) == (False, True, "CrashLoopBackOff")
    assert (inference.restarts, inference.last_exit_code) == (5, 137)
    assert inference.start_time_seconds is None


def test_k8s_every_pod_of_a_rollout_is_its_own_series(api, tmp_path):
    api.pods.append(k8s_pod("web-8e0-zzzzz", "web", running_since="2026-01-05T11:00:00Z"))
    names = [p.name for p in KubernetesSource(k8s_config(api, tmp_path)).read().processes if p.component == "web"]
    assert names == ["web-7d9-abcde", "web-8e0-zzzzz"]


def test_k8s_a_deployment_without_pods_is_down(api, tmp_path):
    api.pods = [p for p in api.pods if p["metadata"]["labels"]["app"] != "web"]
    web = by_component(KubernetesSource(k8s_config(api, tmp_path)).read())["web"]
    assert (web.name, web.up, web.state) == ("qwen3-tts-webui", False, "NoPods")


def test_k8s_errors_say_what_to_fix(api, tmp_path):
    with pytest.raises(SourceError) as err:
        KubernetesSource(k8s_config(api, tmp_path, token="wrong")).read()
    assert err.value.reason == "denied" and "list on pods" in str(err.value)
    del api.deployments["qwen3-tts-inference"]
    with pytest.raises(SourceError) as err:
        KubernetesSource(k8s_config(api, tmp_path)).read()
    assert err.value.reason == "not_found" and "exporter.processes.kubernetes.inference_deployment" in str(err.value)
    config = k8s_config(api, tmp_path).model_copy(update={"token_file": tmp_path / "absent"})
    with pytest.raises(SourceError) as err:
        KubernetesSource(config).read()
    assert err.value.reason == "denied" and "absent" in str(err.value)


def test_label_selector_from_match_labels_and_expressions():
    selector = {"matchLabels": {"app": "tts", "tier": "web"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "canary"]},
                                     {"key": "legacy", "operator": "DoesNotExist"}]}
    assert label_selector(selector) == "app=tts,tier=web,env in (prod,canary),!legacy"
