"""The one YAML config file: load, validate with pydantic, report errors with key and line.

Each package owns the model of its own section (`exporter.config`, `receiver.config`,
`simulator.config`); this module composes them and turns every failure into one
sentence that names the file, the line and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tts_sentinel.exporter.config import ExporterConfig
from tts_sentinel.logsetup import LoggingConfig
from tts_sentinel.receiver.config import ReceiverConfig
from tts_sentinel.simulator.config import SimulatorConfig

DEFAULT_CONFIG_ENV = "TTS_SENTINEL_CONFIG"
# Where commands look for the config when neither --config nor $TTS_SENTINEL_CONFIG names one.
SEARCH_PATH: tuple[Path, ...] = (Path("tts-sentinel.yml"), Path("/etc/tts-sentinel/config.yml"))


class SentinelConfig(BaseModel):
    """The whole file. Every section is optional and has production defaults."""

    model_config = ConfigDict(extra="forbid")

    exporter: ExporterConfig = ExporterConfig()
    receiver: ReceiverConfig = ReceiverConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    logging: LoggingConfig = LoggingConfig()


class ConfigError(Exception):
    """A config file that cannot be used; the message is meant for the user as is."""


def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Record the 1-based line of every key and item below `node`."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = path + (key_node.value,)
            out[child] = key_node.start_mark.line + 1
            _line_index(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[path + (i,)] = item.start_mark.line + 1
            _line_index(item, path + (i,), out)


def _line_of(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest part of `loc` that the file actually contains."""
    loc = tuple(part for part in loc if not (isinstance(part, str) and part.startswith("function-")))
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def parse_config(text: str, source: str = "<config>") -> SentinelConfig:
    """Validate YAML text; raise ConfigError naming the source, line and key of each problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML ({problem}); fix the syntax and try again.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}:1: the config must be a mapping of sections (exporter, receiver, simulator, logging)."
        )
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_index(node, (), lines)
    try:
        return SentinelConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            line = _line_of(lines, tuple(err["loc"]))
            where = f"{source}:{line}" if line else source
            problems.append(f"{where}: {key}: {err['msg']}")
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems)) from None


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file a command uses: `--config`, else $TTS_SENTINEL_CONFIG, else the first of
    ./tts-sentinel.yml and /etc/tts-sentinel/config.yml that exists; None when there is none.

    A path the user named (flag or variable) is returned even when missing, so that loading it
    fails with its name instead of silently falling back to another file.
    """
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(DEFAULT_CONFIG_ENV)
    if from_env:
        return Path(from_env)
    return next((p for p in SEARCH_PATH if p.is_file()), None)


def config_source(explicit: str | os.PathLike[str] | None = None) -> str:
    """The config file a command uses, as an absolute path for a log line, or "built-in defaults"."""
    found = find_config(explicit)
    return os.path.abspath(found) if found is not None else "built-in defaults"


def load_config(path: str | os.PathLike[str] | None = None) -> SentinelConfig:
    """Load the config file at `path`, or the one `find_config` finds when None (defaults when none)."""
    found = find_config(path)
    if found is None:
        return SentinelConfig()
    p = found
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file; pass --config PATH or create it.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc}).") from None
    return parse_config(text, str(p))
