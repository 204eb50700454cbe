"""Docker: `GET /containers/NAME/json` on the Engine API's unix socket, with httpx (no docker CLI).

RestartCount counts only the restarts of the container's restart policy; `docker restart`
and the receiver's restart do not raise it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from tts_sentinel.exporter.processes.config import DockerSourceConfig
from tts_sentinel.exporter.processes.source import ProcessStatus, Reading, SourceError, unix_time

# The Engine sets ExitCode back to 0 when the container runs again: it means something only while it is down.
_DOWN = ("exited", "restarting", "dead")


class DockerSource:
    """The containers named in `exporter.processes.docker`."""

    kind = "docker"
    needs_polling = False

    def __init__(self, config: DockerSourceConfig) -> None:
        self.config = config
        self.containers = {"web": config.web_container, "inference": config.inference_container}

    def read(self) -> Reading:
        """Both containers now."""
        transport = httpx.HTTPTransport(uds=str(self.config.socket))
        try:
            with httpx.Client(transport=transport, base_url="http://docker", timeout=self.config.timeout_seconds) as c:
                return Reading(processes=[self._inspect(c, comp, name) for comp, name in self.containers.items()])
        except httpx.HTTPError as exc:
            raise SourceError(
                "unreachable",
                f"Docker engine at {self.config.socket} does not answer ({exc}); "
                "check the socket path and that the exporter may open it",
            ) from None

    def _inspect(self, client: httpx.Client, component: str, name: str) -> ProcessStatus:
        path = f"/{self.config.api_version}/containers/{quote(name, safe='')}/json"
        resp = client.get(path)
        if resp.status_code == 404:
            raise SourceError(
                "not_found", f"Docker has no container {name!r}; set exporter.processes.docker.{component}_container"
            )
        if resp.status_code != 200:
            raise SourceError("error", f"GET {path} -> {resp.status_code}: {resp.text[:300]}")
        try:
            body: dict[str, Any] = resp.json()
            state = body["State"]
            status = str(state["Status"])
            return ProcessStatus(
                component=component,
                name=name,
                up=status == "running",
                state=status,
                restarts=int(body["RestartCount"]),
                last_exit_code=int(state["ExitCode"]) if status in _DOWN else None,
                start_time_seconds=unix_time(state.get("StartedAt")),
                backoff=status == "restarting",
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceError("bad_answer", f"GET {path} answered without a usable {exc}") from None
