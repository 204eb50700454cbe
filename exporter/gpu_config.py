"""The `exporter.gpu` section: which GPUs, and where their XID errors are read."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tts_sentinel.exporter.gpu_xid import DEFAULT_CRITICAL_XIDS


class KernelLogConfig(BaseModel):
    """Where the kernel log is followed for `NVRM: Xid` lines: a command or a file, or neither.

    Only new lines count: ask the command for no history (`journalctl -k -f -n 0 -o cat`,
    `dmesg --follow-new`), since it is started again after every exit and history it printed
    again would be counted again. A file (`/var/log/kern.log`) is read from its end at start and
    followed across rotation. The exporter's user must be allowed to read it (group
    `systemd-journal` or `adm`).
    """

    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(default_factory=list, description="command printing the kernel log; empty: none")
    path: Path | None = Field(default=None, description="regular file the kernel log is written to")
    poll_interval_seconds: float = Field(default=1.0, gt=0, description="how often the file is read")
    restart_backoff_max_seconds: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> KernelLogConfig:
        if self.argv and self.path is not None:
            raise ValueError("give the kernel log as a command (argv) or as a file (path), not both")
        return self

    @property
    def enabled(self) -> bool:
        """Whether a kernel log source is configured."""
        return bool(self.argv) or self.path is not None


class GpuXidConfig(BaseModel):
    """XID errors: NVML's event wait, and the kernel log for those NVML cannot deliver."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="wait for XID events through NVML")
    critical: list[int] = Field(
        default_factory=lambda: list(DEFAULT_CRITICAL_XIDS),
        description="XIDs counted under their own number (79, 119 and 120 always are); others count as `other`",
    )
    wait_timeout_ms: int = Field(default=1000, ge=100, le=60_000, description="one NVML event wait; bounds stop()")
    kernel_log: KernelLogConfig = KernelLogConfig()

    @model_validator(mode="after")
    def _xids_in_range(self) -> GpuXidConfig:
        bad = [x for x in self.critical if not 0 < x < 100_000]
        if bad:
            raise ValueError(f"XID numbers are positive integers below 100000; got {bad}")
        return self


class GpuConfig(BaseModel):
    """The `exporter.gpu` section."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    devices: list[int] = Field(default_factory=list, description="NVML indices; empty means all")
    xid: GpuXidConfig = GpuXidConfig()
