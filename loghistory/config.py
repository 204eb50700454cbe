"""Config of the log pipeline: which files and commands, which patterns, which limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tts_sentinel.loghistory.mining.config import LearningConfig

LABEL_VALUE = r"^[a-z_][a-z0-9_]*$"


def compiled_regex(value: str) -> str:
    """Pydantic check: `value` must compile as a Python regular expression."""
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


# A config string that must be a valid regular expression (checked once, at load).
RegexText = Annotated[str, AfterValidator(compiled_regex)]


class LogFileConfig(BaseModel):
    """One log file followed by the tailer. `name` becomes the `log` label.

    `rotation` documents how the file is rotated; the tailer detects rename,
    copytruncate and delete+create by itself, so the value only matters to triage
    (which archives to look for) and to readers of the config.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=LABEL_VALUE)
    path: Path
    rotation: Literal["rename", "size", "none", "copytruncate"] = "rename"


class LogCommandConfig(BaseModel):
    """A command whose stdout is a log, e.g. `journalctl -f -o cat -u UNIT` or `docker logs -f NAME`.

    Real Qwen3-TTS and vLLM-Omni log only to stdout/stderr, so this is how they are followed.
    The argv list is executed directly, never through a shell. Ask the command for new lines
    only (`journalctl -f -n 0 ...`, `docker logs -f --tail 0 ...`): it is started again after
    every exit, and history it prints again would be counted again.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=LABEL_VALUE)
    argv: list[str] = Field(min_length=1)
    # `docker logs` writes the container's stderr to its own stderr: read both by default.
    include_stderr: bool = True
    restart_backoff_initial_seconds: float = Field(default=1.0, gt=0)
    restart_backoff_max_seconds: float = Field(default=60.0, gt=0)
    # For triage: an argv printing the recent history with timestamps, `{since_seconds}` and
    # `{since_local}` (YYYY-MM-DD HH:MM:SS) replaced, e.g.
    # [journalctl, -o, short-iso-precise, --no-pager, -u, UNIT, --since, "{since_local}"] or
    # [docker, logs, --timestamps, --since, "{since_seconds}s", NAME]. Empty: triage skips this log.
    history_argv: list[str] = Field(default_factory=list)
    history_timeout_seconds: float = Field(default=30.0, gt=0)


class PatternConfig(BaseModel):
    """A named regular expression counted per log. `name` becomes the `pattern` label."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=LABEL_VALUE)
    regex: RegexText
    logs: list[str] = Field(default_factory=list, description="log names; empty means every log")


# The five patterns of the seed (§2.2), as the seed prints them. The lead's alert rules use these names.
SEED_PATTERNS: list[PatternConfig] = [
    PatternConfig(name="cuda_oom", regex=r"\[CUDA\] Out of memory on device \d+"),
    PatternConfig(
        name="invalid_unicode", regex=r"Text preprocessing failed: invalid unicode sequence at pos \d+"
    ),
    PatternConfig(name="stream_underflow", regex=r"Stream buffer underflow: expected \d+ samples, got \d+"),
    PatternConfig(name="model_load_timeout", regex=r"Model load timeout > \d+s"),
    PatternConfig(name="audio_silent", regex=r"Health check failed: audio output silent for \d+s"),
]

# What the real services print (PyTorch, vLLM-Omni, qwen-tts) plus the seed's segfault.
REAL_SERVICE_PATTERNS: list[PatternConfig] = [
    PatternConfig(name="segfault", regex=r"Segmentation fault"),
    PatternConfig(name="torch_cuda_oom", regex=r"CUDA out of memory"),
    PatternConfig(name="torch_oom_error", regex=r"torch\.OutOfMemoryError"),
    PatternConfig(name="engine_dead", regex=r"EngineDeadError"),
    PatternConfig(name="orchestrator_crashed", regex=r"Orchestrator thread crashed"),
    PatternConfig(name="unsupported_speakers", regex=r"Unsupported speakers:"),
    PatternConfig(name="unsupported_languages", regex=r"Unsupported languages:"),
    # vLLM / vLLM-Omni / PyTorch / NCCL failure markers; the family each belongs to is in the
    # comment and in the `family` label of its alert (rules/vllm.rules.yml).
    # family inference_engine: the engine core process is dead, every request fails until a restart.
    PatternConfig(name="engine_core_fatal", regex=r"EngineCore encountered a fatal error"),
    PatternConfig(name="engine_core_died", regex=r"Engine core proc EngineCore\S* died unexpectedly"),
    PatternConfig(name="stage_replica_shutdown", regex=r"\[StagePool\] Stage \d+ replica \d+ shut down"),
    # family inference_hang: the engine is alive but its workers do not move.
    PatternConfig(name="shm_broadcast_stall",
                  regex=r"No available (?:shared memory broadcast )?block found in \d+ second"),
    PatternConfig(name="execute_model_timeout", regex=r"RPC call to execute_model timed out"),
    PatternConfig(name="engine_iteration_timeout", regex=r"Engine iteration timed out\. This should never happen"),
    # family audio_output: the model answered without audio (vLLM-Omni answers 400).
    PatternConfig(name="tts_no_audio_output", regex=r"TTS model did not produce audio output"),
    # family gpu: CUDA or NCCL failures that leave the process unusable.
    PatternConfig(name="cuda_illegal_memory_access", regex=r"CUDA error: an illegal memory access was encountered"),
    PatternConfig(name="cuda_error_oom", regex=r"CUDA error: out of memory"),
    PatternConfig(name="nccl_watchdog_timeout", regex=r"Watchdog caught collective operation timeout"),
]

BUILTIN_PATTERNS: list[PatternConfig] = SEED_PATTERNS + REAL_SERVICE_PATTERNS


def _default_files() -> list[LogFileConfig]:
    base = Path("/var/log/qwen3-tts")
    return [
        LogFileConfig(name="webui", path=base / "webui.log", rotation="rename"),
        LogFileConfig(name="inference", path=base / "inference.log", rotation="size"),
        LogFileConfig(name="health", path=base / "health.log", rotation="none"),
    ]


class CauseRuleConfig(BaseModel):
    """Triage rule: an event of pattern `cause` explains `effects` that follow it within `within_seconds`."""

    model_config = ConfigDict(extra="forbid")

    cause: str = Field(pattern=LABEL_VALUE)
    effects: list[str] = Field(min_length=1)
    within_seconds: float = Field(default=30.0, gt=0)


def _default_cause_rules() -> list[CauseRuleConfig]:
    # From the seed (§2.2/§2.3): an OOM is the root of the silence, underflow and unicode errors that
    # follow it; a load timeout leaves nothing to synthesise with; an invalid-unicode error puts
    # preprocessing into protection mode, after which every request is silent.
    oom = ["cuda_oom", "torch_cuda_oom", "torch_oom_error"]
    after_oom = ["audio_silent", "stream_underflow", "invalid_unicode", "engine_dead", "orchestrator_crashed"]
    return [
        # The same OOM shows up in several layers (our log line, the torch traceback): the first is root.
        *(CauseRuleConfig(cause=o, effects=[x for x in oom if x != o] + after_oom, within_seconds=30)
          for o in oom),
        CauseRuleConfig(cause="model_load_timeout", effects=["audio_silent"], within_seconds=120),
        CauseRuleConfig(cause="invalid_unicode", effects=["audio_silent"], within_seconds=60),
        CauseRuleConfig(cause="engine_dead", effects=["audio_silent", "stream_underflow"], within_seconds=30),
    ]


class TriageConfig(BaseModel):
    """How `tts-sentinel triage` reads timestamps and names a root cause."""

    model_config = ConfigDict(extra="forbid")

    # The seed's line format: `2024-06-15 14:22:03,102 [ERROR] message`.
    timestamp_regex: RegexText = r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:[,.](\d{1,6}))?"
    timestamp_format: str = "%Y-%m-%d %H:%M:%S"
    rules: list[CauseRuleConfig] = Field(default_factory=_default_cause_rules)
    max_lines: int = Field(default=200, ge=1, description="lines printed at most; the verdict sees all")


class LogsConfig(BaseModel):
    """The `exporter.logs` section."""

    model_config = ConfigDict(extra="forbid")

    files: list[LogFileConfig] = Field(default_factory=_default_files)
    commands: list[LogCommandConfig] = Field(default_factory=list)
    patterns: list[PatternConfig] = Field(default_factory=lambda: list(BUILTIN_PATTERNS))
    # Patterns added to the built-in ones (the usual way to extend; `patterns` replaces them).
    extra_patterns: list[PatternConfig] = Field(default_factory=list)
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    # Like `tail -F`: a file seen at first start (no saved offset) is read from its end.
    start_at: Literal["end", "beginning"] = "end"
    max_line_bytes: int = Field(default=64 * 1024, ge=64)
    # Blocks that stay in the CPU cache while they are read, counted and scanned: measured 1.5-2x
    # faster than 4 MiB blocks, whose passes each go to memory (bench/logs_scan.py).
    read_block_bytes: int = Field(default=512 * 1024, ge=4096)
    # After a rename rotation the writer may still append to the old file until it reopens.
    rotate_wait_seconds: float = Field(default=5.0, ge=0)
    offsets_save_interval_seconds: float = Field(default=5.0, gt=0)
    fingerprint_bytes: int = Field(default=256, ge=16, le=65536)
    # Pattern engine: Hyperscan as a prefilter when its wheel is installed ("auto"), or forced.
    scanner: Literal["auto", "hyperscan", "literal"] = "auto"
    triage: TriageConfig = TriageConfig()
    # WARN/ERROR templates no pattern covers, mined online and promoted (loghistory/mining/config.py).
    learning: LearningConfig = LearningConfig()

    @model_validator(mode="after")
    def _names_consistent(self) -> LogsConfig:
        logs = [f.name for f in self.files] + [c.name for c in self.commands]
        dup = sorted({n for n in logs if logs.count(n) > 1})
        if dup:
            raise ValueError(f"log names must be unique; repeated: {', '.join(dup)}")
        names = [p.name for p in self.all_patterns()]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"pattern names must be unique; repeated: {', '.join(dup)}")
        known = set(logs)
        for p in self.all_patterns():
            unknown = [n for n in p.logs if n not in known]
            if unknown:
                raise ValueError(
                    f"pattern {p.name} names unknown logs {unknown}; known logs: {sorted(known)}"
                )
        return self

    def all_patterns(self) -> list[PatternConfig]:
        """The patterns counted: `patterns` followed by `extra_patterns`."""
        return list(self.patterns) + list(self.extra_patterns)

    def log_names(self) -> list[str]:
        """Every log label value: files first, then commands."""
        return [f.name for f in self.files] + [c.name for c in self.commands]

    def patterns_for(self, log: str) -> list[PatternConfig]:
        """The patterns counted on the log named `log`."""
        return [p for p in self.all_patterns() if not p.logs or log in p.logs]
