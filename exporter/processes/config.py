"""The `exporter.processes` section: which process manager runs the TTS service, and its names.

The sections are those of a receiver target (`tts_sentinel.managers`), credentials included, so
one block can be copied from there; only the timeouts are shorter, because a read sits inside a
scrape.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tts_sentinel.managers import DockerConfig, KubernetesConfig, SupervisordConfig, SystemdConfig

ManagerKind = Literal["supervisord", "systemd", "docker", "kubernetes"]


# The receiver's sections, with timeouts short enough to sit inside a scrape.
class SupervisordSourceConfig(SupervisordConfig):
    """supervisord's XML-RPC interface, its credentials and the two program names."""

    timeout_seconds: float = Field(default=3.0, gt=0)


class SystemdSourceConfig(SystemdConfig):
    """The two units, read with `systemctl show` (argv only, never a shell)."""

    timeout_seconds: float = Field(default=3.0, gt=0)


class DockerSourceConfig(DockerConfig):
    """The two containers, read through the Docker Engine API on its unix socket."""

    timeout_seconds: float = Field(default=3.0, gt=0)


class KubernetesSourceConfig(KubernetesConfig):
    """The two Deployments; their pods are read through the API with the service-account token."""

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
