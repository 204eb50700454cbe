"""The `exporter.processes` section: which process manager runs the TTS service, and its names.

The kinds and field names are those of a receiver target's actuator sections
(`receiver.targets[].supervisord`, `.systemd`, `.docker`, `.kubernetes`), so one block
can be copied from there; only the timeouts are shorter, because a read sits inside a scrape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ManagerKind = Literal["supervisord", "systemd", "docker", "kubernetes"]


class SupervisordSourceConfig(BaseModel):
    """supervisord's XML-RPC interface and the two program names."""

    model_config = ConfigDict(extra="forbid")

    url: str = "http://127.0.0.1:9001/RPC2"
    web_program: str = "tts-webui"
    inference_program: str = "tts-inference"
    timeout_seconds: float = Field(default=3.0, gt=0)


class SystemdSourceConfig(BaseModel):
    """The two units, read with `systemctl show` (argv only, never a shell)."""

    model_config = ConfigDict(extra="forbid")

    systemctl: str = "systemctl"
    web_unit: str = "qwen3-tts-webui.service"
    inference_unit: str = "qwen3-tts-inference.service"
    timeout_seconds: float = Field(default=3.0, gt=0)


class DockerSourceConfig(BaseModel):
    """The two containers, read through the Docker Engine API on its unix socket."""

    model_config = ConfigDict(extra="forbid")

    socket: Path = Path("/var/run/docker.sock")
    api_version: str = "v1.43"
    web_container: str = "qwen3-tts-webui"
    inference_container: str = "qwen3-tts-inference"
    timeout_seconds: float = Field(default=3.0, gt=0)


class KubernetesSourceConfig(BaseModel):
    """The two Deployments; their pods are read through the API with the service-account token."""

    model_config = ConfigDict(extra="forbid")

    api_url: str = "https://kubernetes.default.svc"
    namespace: str = "default"
    token_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    ca_file: Path | None = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    web_deployment: str = "qwen3-tts-webui"
    inference_deployment: str = "qwen3-tts-inference"
    timeout_seconds: float = Field(default=3.0, gt=0)


class ProcessesConfig(BaseModel):
    """The `exporter.processes` section.

    On by default with supervisord on 127.0.0.1:9001, as in the example config: a host
    without it shows `tts_process_source_up{reason="unreachable"} 0` and a warning alert,
    never an all-clear. Set `enabled: false` where the TTS service has no process manager.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    kind: ManagerKind = "supervisord"
    poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="supervisord only: how often pids and its main log are read between scrapes"
    )
    supervisord: SupervisordSourceConfig = SupervisordSourceConfig()
    systemd: SystemdSourceConfig = SystemdSourceConfig()
    docker: DockerSourceConfig = DockerSourceConfig()
    kubernetes: KubernetesSourceConfig = KubernetesSourceConfig()
