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
from tts_sentinel.receiver.config import ReceiverConfig
from tts_sentinel.simulator.config import SimulatorConfig

DEFAULT_CONFIG_ENV = "TTS_SENTINEL_CONFIG"


class SentinelConfig(BaseModel):
    """The whole file. Every section is optional and has production defaults."""

    model_config = ConfigDict(extra="forbid")

    exporter: ExporterConfig = ExporterConfig()
    receiver: ReceiverConfig = ReceiverConfig()
    simulator: SimulatorConfig = SimulatorConfig()


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
        raise ConfigError(f"{source}:1: the config must be a mapping of sections (exporter, receiver, simulator).")
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


def load_config(path: str | os.PathLike[str] | None) -> SentinelConfig:
    """Load the config file at `path` ($TTS_SENTINEL_CONFIG when None; defaults when neither)."""
    if path is None:
        path = os.environ.get(DEFAULT_CONFIG_ENV)
        if not path:
            return SentinelConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file; pass --config PATH or create it.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc}).") from None
    return parse_config(text, str(p))
