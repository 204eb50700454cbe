"""Config of the probe modules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class HealthProbeConfig(BaseModel):
    """L1: an HTTP GET that must answer 2xx and, when `expect_json` is set, contain those keys."""

    model_config = ConfigDict(extra="forbid")

    url: str = "http://127.0.0.1:7860/health"
    interval_seconds: float = Field(default=5.0, gt=0)
    timeout_seconds: float = Field(default=3.0, gt=0)
    expect_json: dict[str, Any] = Field(default_factory=lambda: {"status": "ok"})


class ProbesConfig(BaseModel):
    """The `exporter.probes` section."""

    model_config = ConfigDict(extra="forbid")

    health: HealthProbeConfig = HealthProbeConfig()
