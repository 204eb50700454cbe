"""The `receiver` section of the config file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class SupervisordConfig(BaseModel):
    """How to reach supervisord's XML-RPC interface."""

    model_config = ConfigDict(extra="forbid")

    url: str = "http://127.0.0.1:9001/RPC2"
    web_program: str = "tts-webui"
    inference_program: str = "tts-inference"


class TargetConfig(BaseModel):
    """A service the receiver may act on; only alerts whose labels match reach it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    match: dict[str, str] = Field(default_factory=dict)
    supervisord: SupervisordConfig = SupervisordConfig()


class ReceiverConfig(BaseModel):
    """Where the receiver listens, its token, its journal and its targets."""

    model_config = ConfigDict(extra="forbid")

    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=9465, ge=1, le=65535)
    token_file: Path | None = None
    journal_path: Path = Path("/var/lib/tts-sentinel/journal.sqlite3")
    targets: list[TargetConfig] = Field(default_factory=lambda: [TargetConfig(name="qwen3-tts")])
