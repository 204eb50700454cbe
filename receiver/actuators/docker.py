"""Docker actuator: the Engine API over its unix socket, with httpx (no docker CLI, no shell)."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from tts_sentinel.managers import DockerConfig
from tts_sentinel.receiver.actuators.base import ActuatorError, component_name, signal_name


class DockerActuator:
    """Acts on the containers named in the target's `docker` section."""

    kind = "docker"

    def __init__(self, config: DockerConfig) -> None:
        self.config = config

    def container(self, component: str) -> str:
        """The container name (or id) of a component."""
        return component_name(component, self.config.web_container, self.config.inference_container)

    def _post(self, component: str, verb: str, params: dict[str, str] | None = None) -> str:
        name = self.container(component)
        path = f"/{self.config.api_version}/containers/{quote(name, safe='')}/{verb}"
        transport = httpx.HTTPTransport(uds=str(self.config.socket))
        try:
            with httpx.Client(
                transport=transport, base_url="http://docker", timeout=self.config.timeout_seconds
            ) as client:
                resp = client.post(path, params=params)
        except httpx.HTTPError as exc:
            raise ActuatorError(f"Docker engine at {self.config.socket} unreachable: {exc}") from None
        # 304: already started/stopped, which is the state we want.
        if resp.status_code in (204, 304):
            return f"POST {path} -> {resp.status_code}"
        try:
            message = resp.json().get("message", resp.text)
        except ValueError:
            message = resp.text
        raise ActuatorError(f"POST {path} -> {resp.status_code}: {message[:300]}")

    def restart(self, component: str) -> str:
        """POST /containers/{name}/restart?t=STOP_TIMEOUT."""
        return self._post(component, "restart", {"t": str(self.config.stop_timeout_seconds)})

    def stop(self, component: str) -> str:
        """POST /containers/{name}/stop?t=STOP_TIMEOUT."""
        return self._post(component, "stop", {"t": str(self.config.stop_timeout_seconds)})

    def start(self, component: str) -> str:
        """POST /containers/{name}/start."""
        return self._post(component, "start")

    def signal(self, component: str, signame: str) -> str:
        """POST /containers/{name}/kill?signal=SIGUSR1 (the seed's `docker kill -s SIGUSR1`)."""
        return self._post(component, "kill", {"signal": signal_name(signame)})
