"""Config of the log pipeline: which files, which patterns."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LABEL_VALUE = r"^[a-z_][a-z0-9_]*$"


class LogFileConfig(BaseModel):
    """One log file followed by the tailer. `name` becomes the `log` label."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=LABEL_VALUE)
    path: Path
    rotation: Literal["rename", "size", "none"] = "rename"


class PatternConfig(BaseModel):
    """A named regular expression counted per log. `name` becomes the `pattern` label."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=LABEL_VALUE)
    regex: str
    logs: list[str] = Field(default_factory=list, description="log names; empty means every log")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


# The five patterns of the seed (§2.2), as the seed prints them.
SEED_PATTERNS: list[PatternConfig] = [
    PatternConfig(name="cuda_oom", regex=r"\[CUDA\] Out of memory on device \d+"),
    PatternConfig(name="invalid_unicode", regex=r"Text preprocessing failed: invalid unicode sequence at pos \d+"),
    PatternConfig(name="stream_underflow", regex=r"Stream buffer underflow: expected \d+ samples, got \d+"),
    PatternConfig(name="model_load_timeout", regex=r"Model load timeout > \d+s"),
    PatternConfig(name="audio_silent", regex=r"Health check failed: audio output silent for \d+s"),
]


def _default_files() -> list[LogFileConfig]:
    base = Path("/var/log/qwen3-tts")
    return [
        LogFileConfig(name="webui", path=base / "webui.log", rotation="rename"),
        LogFileConfig(name="inference", path=base / "inference.log", rotation="size"),
        LogFileConfig(name="health", path=base / "health.log", rotation="none"),
    ]


class LogsConfig(BaseModel):
    """The `exporter.logs` section."""

    model_config = ConfigDict(extra="forbid")

    files: list[LogFileConfig] = Field(default_factory=_default_files)
    patterns: list[PatternConfig] = Field(default_factory=lambda: list(SEED_PATTERNS))
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    start_at: Literal["end", "beginning"] = "end"
