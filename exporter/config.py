"""The `exporter` section of the config file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tts_sentinel.exporter.evidence import EvidenceConfig
from tts_sentinel.exporter.gpu import GpuConfig
from tts_sentinel.exporter.probes.config import ProbesConfig
from tts_sentinel.exporter.processes.config import ProcessesConfig
from tts_sentinel.loghistory.config import LogsConfig


class ExporterConfig(BaseModel):
    """Where the exporter listens and what it watches."""

    model_config = ConfigDict(extra="forbid")

    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=9464, ge=1, le=65535)
    state_dir: Path = Path("/var/lib/tts-sentinel")
    logs: LogsConfig = LogsConfig()
    probes: ProbesConfig = ProbesConfig()
    gpu: GpuConfig = GpuConfig()
    processes: ProcessesConfig = ProcessesConfig()
    evidence: EvidenceConfig = EvidenceConfig()
