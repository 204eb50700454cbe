"""What a heavy restart checks and records first, and the one destructive step it takes: the cache."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tts_sentinel.receiver.config import TargetConfig


class PreflightRefusal(Exception):
    """A restart cannot fix this (bad config, changed weights); the message says what is wrong."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weight_hashes(weights_dir: Path) -> dict[str, str]:
    """sha256 of every regular file below `weights_dir`, by relative path."""
    return {
        str(p.relative_to(weights_dir)): sha256_file(p)
        for p in sorted(weights_dir.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def deployed_commit(git_dir: Path, timeout: float = 10.0) -> str:
    """`git -C DIR rev-parse HEAD` (argv, no shell), or a note why there is none."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(git_dir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return proc.stdout.strip() if proc.returncode == 0 else f"unknown ({proc.stderr.strip()[-200:]})"


def check_service_config(path: Path) -> None:
    """Raise PreflightRefusal when the service's config file does not parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PreflightRefusal(f"service config {path} cannot be read: {exc}") from None
    try:
        if path.suffix == ".json":
            json.loads(text)
        else:
            yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PreflightRefusal(
            f"service config {path} does not parse ({str(exc).splitlines()[0]}); a restart cannot fix "
            "that: repair the file or roll it back"
        ) from None


def preflight(target: TargetConfig) -> dict[str, Any]:
    """Record weight hashes and the deployed commit; refuse on a broken config or changed weights.

    Returns the record for the journal. A missing manifest is written from the current weights
    (the first heavy restart records the baseline), an existing one is compared.
    """
    record: dict[str, Any] = {}
    if target.service_config is not None and target.service_config.exists():
        check_service_config(target.service_config)
        record["service_config"] = f"{target.service_config} parses"
    if target.git_dir is not None and target.git_dir.exists():
        record["git_commit"] = deployed_commit(target.git_dir)
    if target.weights_dir is not None and target.weights_dir.is_dir():
        hashes = weight_hashes(target.weights_dir)
        record["weights"] = hashes
        manifest = target.weights_manifest
        if manifest is not None:
            if manifest.exists():
                try:
                    expected = json.loads(manifest.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise PreflightRefusal(f"weights manifest {manifest} unreadable: {exc}") from None
                problems = _compare(expected, hashes)
                if problems:
                    raise PreflightRefusal(
                        "weights do not match the recorded manifest (" + "; ".join(problems[:5]) + "); "
                        "a restart cannot fix that: restore the weights or roll back"
                    )
                record["manifest"] = f"{manifest} matches"
            else:
                manifest.parent.mkdir(parents=True, exist_ok=True)
                manifest.write_text(json.dumps(hashes, indent=1, sort_keys=True), encoding="utf-8")
                record["manifest"] = f"{manifest} recorded (first heavy restart)"
    return record


def _compare(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    problems = [f"{name} changed" for name in sorted(expected) if name in actual and actual[name] != expected[name]]
    problems += [f"{name} missing" for name in sorted(expected) if name not in actual]
    problems += [f"{name} unexpected" for name in sorted(actual) if name not in expected]
    return problems


def clear_cache(cache_dir: Path) -> str:
    """Delete what is inside `cache_dir`, never anything outside it (symlinks are unlinked, not followed)."""
    root = cache_dir.resolve()
    if root == Path(root.anchor) or len(root.parts) < 3:
        raise PreflightRefusal(f"refusing to clear {root}: too close to the filesystem root")
    if not root.is_dir():
        return f"{root} does not exist; nothing to clear"
    removed = 0
    for child in root.iterdir():
        # A child must be directly inside root (no path tricks); symlinks go without following them.
        if child.parent.resolve() != root:
            continue
        if child.is_symlink() or not child.is_dir():
            child.unlink()
        else:
            shutil.rmtree(child)
        removed += 1
    return f"removed {removed} entries from {root}"
