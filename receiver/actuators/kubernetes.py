"""Kubernetes actuator: `kubectl rollout restart` through the API (a pod-template annotation patch).

Only restart is supported: stop/start/signal have no faithful Deployment equivalent, so they
fail with a sentence instead of guessing (configure restart steps for kubernetes targets).
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from tts_sentinel.managers import KubernetesConfig
from tts_sentinel.receiver.actuators.base import ActuatorError, component_name


class KubernetesActuator:
    """Restarts the Deployments named in the target's `kubernetes` section."""

    kind = "kubernetes"

    def __init__(self, config: KubernetesConfig) -> None:
        self.config = config

    def deployment(self, component: str) -> str:
        """The Deployment of a component."""
        return component_name(component, self.config.web_deployment, self.config.inference_deployment)

    def restart(self, component: str) -> str:
        """PATCH the pod template's restartedAt annotation, as `kubectl rollout restart` does."""
        name = self.deployment(component)
        path = f"/apis/apps/v1/namespaces/{quote(self.config.namespace, safe='')}/deployments/{quote(name, safe='')}"
        stamp = datetime.now(UTC).isoformat()
        patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
        try:
            token = self.config.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ActuatorError(f"cannot read the service-account token {self.config.token_file}: {exc}") from None
        verify: str | bool = str(self.config.ca_file) if self.config.ca_file else True
        try:
            resp = httpx.patch(
                self.config.api_url.rstrip("/") + path,
                json=patch,
                verify=verify,
                timeout=self.config.timeout_seconds,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/strategic-merge-patch+json",
                },
            )
        except httpx.HTTPError as exc:
            raise ActuatorError(f"Kubernetes API at {self.config.api_url} unreachable: {exc}") from None
        if resp.status_code != 200:
            raise ActuatorError(f"PATCH {path} -> {resp.status_code}: {resp.text[:300]}")
        return f"rollout restart {self.config.namespace}/{name} at {stamp}"

    def _unsupported(self, what: str) -> str:
        raise ActuatorError(f"the kubernetes actuator cannot {what}; use restart steps for this target")

    def stop(self, component: str) -> str:
        """Not supported (see module docstring)."""
        return self._unsupported("stop a component")

    def start(self, component: str) -> str:
        """Not supported (see module docstring)."""
        return self._unsupported("start a component")

    def signal(self, component: str, signame: str) -> str:
        """Not supported (see module docstring)."""
        return self._unsupported(f"send {signame}")
