"""The rollback tier on a Kubernetes target: `rollout undo` through the API, as kubectl does it."""

from __future__ import annotations

import pytest

from tests.receiver.fake_kubernetes import FakeDeploymentApi
from tts_sentinel.receiver.config import TargetConfig
from tts_sentinel.receiver.heavy import PreflightRefusal
from tts_sentinel.receiver.rollback import rollback_preflight, switch_version


@pytest.fixture
def token(tmp_path):
    path = tmp_path / "sa-token"
    path.write_text("k8s-token\n")
    return path


def target(api, token) -> TargetConfig:
    return TargetConfig(name="tts", match={"service": "tts"}, actuator="kubernetes", weights_dir=None, kubernetes={
        "api_url": api.url, "namespace": "tts", "token_file": str(token), "ca_file": None,
        "inference_deployment": "tts-inference"})


def test_rollout_undo_returns_to_the_previous_revision_template(token):
    api = FakeDeploymentApi("tts-inference", ["tts:v1", "tts:v2", "tts:v3"], "k8s-token")
    try:
        plan = rollback_preflight(target(api, token))
        assert plan == {"kind": "kubernetes", "deployment": "tts-inference", "from": 3, "to": 2}
        out = switch_version(target(api, token), plan)
        assert "revision 3 -> the template of 2" in out
        assert api.image() == "tts:v2", "the previous revision's pod template, not the stranger's"
        [(_path, ops)] = api.patches
        tpl = next(op["value"] for op in ops if op["path"] == "/spec/template")
        assert "pod-template-hash" not in tpl["metadata"]["labels"], "kubectl drops the hash label"
        annotations = next(op["value"] for op in ops if op["path"] == "/metadata/annotations")
        assert annotations["note"] == "rev 2" and annotations["deployment.kubernetes.io/revision"] == "3"
        assert api.deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    finally:
        api.close()


def test_rollout_undo_refused_without_an_earlier_revision(token):
    api = FakeDeploymentApi("tts-inference", ["tts:v1"], "k8s-token")
    try:
        with pytest.raises(PreflightRefusal, match="no known-good previous version: .* no revision before 1"):
            rollback_preflight(target(api, token))
        assert api.patches == []
    finally:
        api.close()


def test_rollout_undo_with_a_refused_token_says_so(tmp_path, token):
    api = FakeDeploymentApi("tts-inference", ["tts:v1", "tts:v2"], "another-token")
    try:
        with pytest.raises(PreflightRefusal, match="401"):
            rollback_preflight(target(api, token))
    finally:
        api.close()
