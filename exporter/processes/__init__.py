"""The process manager's view of the TTS service: one source per manager kind, one collector.

Adding a kind: one file with a class that has `kind`, `needs_polling` and `read()`, and one
line in SOURCES.
"""

from __future__ import annotations

from collections.abc import Callable

from tts_sentinel.exporter.processes.config import ProcessesConfig
from tts_sentinel.exporter.processes.docker import DockerSource
from tts_sentinel.exporter.processes.kubernetes import KubernetesSource
from tts_sentinel.exporter.processes.source import ProcessSource
from tts_sentinel.exporter.processes.supervisord import SupervisordSource
from tts_sentinel.exporter.processes.systemd import SystemdSource

# `exporter.processes.kind` -> how to build its source from the section
SOURCES: dict[str, Callable[[ProcessesConfig], ProcessSource]] = {
    "supervisord": lambda config: SupervisordSource(config.supervisord),
    "systemd": lambda config: SystemdSource(config.systemd),
    "docker": lambda config: DockerSource(config.docker),
    "kubernetes": lambda config: KubernetesSource(config.kubernetes),
}


def build_source(config: ProcessesConfig) -> ProcessSource:
    """The source of the configured kind."""
    return SOURCES[config.kind](config)


__all__ = ["SOURCES", "build_source"]
