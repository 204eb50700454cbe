"""`kubectl rollout undo` through the API, as kubectl's DeploymentRollbacker does it.

The Deployment's ReplicaSets (matched by its selector, owned by its uid) carry their revision in
the `deployment.kubernetes.io/revision` annotation. Undo takes the pod template of the newest
revision below the current one, drops the `pod-template-hash` label, and JSON-patches it into
the Deployment with the ReplicaSet's annotations (kubectl's getDeploymentPatch); the Deployment
controller then rolls the pods and writes the next revision.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

import httpx

from tts_sentinel.receiver.actuators.base import ActuatorError
from tts_sentinel.receiver.config import KubernetesConfig

REVISION = "deployment.kubernetes.io/revision"
# kubectl's annotationsToSkip: never copied from the ReplicaSet onto the Deployment.
_SKIP = {"kubectl.kubernetes.io/last-applied-configuration", REVISION,
         "deployment.kubernetes.io/revision-history", "deployment.kubernetes.io/desired-replicas",
         "deployment.kubernetes.io/max-replicas", "deprecated.deployment.rollback.to"}


class DeploymentHistory:
    """The revisions of one Deployment, read and rolled back through the API server."""

    def __init__(self, config: KubernetesConfig, deployment: str) -> None:
        self.config = config
        self.name = deployment
        ns = quote(config.namespace, safe="")
        self.path = f"/apis/apps/v1/namespaces/{ns}/deployments/{quote(deployment, safe='')}"
        self.rs_path = f"/apis/apps/v1/namespaces/{ns}/replicasets"

    def previous(self) -> tuple[int, int, dict[str, Any], dict[str, Any]]:
        """(current revision, previous revision, its ReplicaSet, the Deployment); ActuatorError when none."""
        deployment = self._request("GET", self.path)
        current = _revision(deployment)
        selector = ",".join(f"{k}={v}" for k, v in
                            ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels", {}).items())
        uid = (deployment.get("metadata") or {}).get("uid")
        sets = self._request("GET", self.rs_path, params={"labelSelector": selector}).get("items") or []
        owned = [rs for rs in sets if any(o.get("uid") == uid and o.get("kind") == "Deployment"
                                          for o in (rs.get("metadata") or {}).get("ownerReferences") or [])]
        older = sorted((rs for rs in owned if 0 < _revision(rs) < current), key=_revision)
        if not older:
            raise ActuatorError(f"deployment {self.config.namespace}/{self.name} has no revision before {current}: "
                                "nothing to roll back to")
        return current, _revision(older[-1]), older[-1], deployment

    def undo(self) -> str:
        """Patch the previous revision's pod template into the Deployment; returns what it did."""
        current, previous, rs, deployment = self.previous()
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
        annotations = dict((deployment.get("metadata") or {}).get("annotations") or {})
        for key, value in ((rs.get("metadata") or {}).get("annotations") or {}).items():
            if key not in _SKIP:
                annotations[key] = value
        patch = [{"op": "replace", "path": "/spec/template", "value": template},
                 {"op": "replace", "path": "/metadata/annotations", "value": annotations}]
        self._request("PATCH", self.path, body=patch, content_type="application/json-patch+json")
        return f"rollout undo {self.config.namespace}/{self.name}: revision {current} -> the template of {previous}"

    def _request(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None,
                 content_type: str | None = None) -> dict[str, Any]:
        try:
            token = self.config.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ActuatorError(f"cannot read the service-account token {self.config.token_file}: {exc}") from None
        headers = {"Authorization": f"Bearer {token}"}
        if content_type:
            headers["Content-Type"] = content_type
        verify: str | bool = str(self.config.ca_file) if self.config.ca_file else True
        try:
            resp = httpx.request(method, self.config.api_url.rstrip("/") + path, params=params, json=body,
                                 headers=headers, verify=verify, timeout=self.config.timeout_seconds)
        except httpx.HTTPError as exc:
            raise ActuatorError(f"Kubernetes API at {self.config.api_url} unreachable: {exc}") from None
        if resp.status_code != 200:
            raise ActuatorError(f"{method} {path} -> {resp.status_code}: {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError:
            raise ActuatorError(f"{method} {path}: the answer is not JSON") from None


def _revision(obj: dict[str, Any]) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0))
    except (TypeError, ValueError):
        return 0
