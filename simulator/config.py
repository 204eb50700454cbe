"""The `simulator` section of the config file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class SimulatorConfig(BaseModel):
    """Ports and log directory of the stand-in service."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    web_port: int = Field(default=7860, ge=1, le=65535)
    api_port: int = Field(default=8000, ge=1, le=65535)
    log_dir: Path = Path("/var/log/qwen3-tts")
