"""What a heavy restart checks and records first, and the one destructive step it takes: the cache.

The receiver usually runs as root and the default cache sits in world-writable /tmp, so every
path here is opened without following symlinks and the cache is emptied through directory
descriptors: a link planted by another local user is unlinked or refused, never followed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from tts_sentinel.receiver.config import TargetConfig

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_DEPTH = 128  # deeper than this inside a cache is not a cache; clear it by hand


class PreflightRefusal(Exception):
    """A restart cannot fix this, or would be unsafe (bad config, changed weights, a planted link)."""


def trusted_owners(extra: Iterable[int] = ()) -> set[int]:
    """Owners the receiver acts for: root, the receiver's own user, and any `extra` uids."""
    return {0, os.geteuid(), *extra}


def open_directory(path: Path, what: str) -> int | None:
    """A descriptor of `path`, walked one component at a time without following any symlink.

    None when the directory does not exist. Raises PreflightRefusal when a component is a
    symlink or not a directory: the operator names the real path, an attacker cannot swap one in.
    """
    absolute = Path(os.path.abspath(path))
    fd = os.open("/", _DIR_FLAGS)
    walked = Path("/")
    try:
        for part in absolute.parts[1:]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    raise PreflightRefusal(
                        f"refusing to use {what} {path}: {walked / part} is a symlink "
                        f"(to {os.readlink(part, dir_fd=fd)}), and links are never followed here; "
                        "configure the real directory, owned by root or the receiver's user"
                    ) from None
                raise PreflightRefusal(f"refusing to use {what} {path}: {walked / part} is not a directory") from None
            os.close(fd)
            fd, walked = child, walked / part
        result, fd = fd, -1
        return result
    finally:
        if fd >= 0:
            os.close(fd)


def check_owner(st: os.stat_result, path: Path, what: str, owners: set[int], allow_shared: bool) -> None:
    """Raise PreflightRefusal unless `st` belongs to a trusted owner and only its owner may write it."""
    if st.st_uid not in owners:
        raise PreflightRefusal(
            f"refusing to use {what} {path}: it belongs to uid {st.st_uid}, not to root or the receiver's "
            f"user ({os.geteuid()}); another local user may have planted it: check it, then chown it"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not allow_shared:
        raise PreflightRefusal(
            f"refusing to use {what} {path}: its mode {stat.S_IMODE(st.st_mode):04o} lets group or others "
            f"write into it; run `chmod go-w {path}` (or allow shared directories in the config)"
        )


def open_cache_dir(cache_dir: Path, *, allow_shared: bool = False, owners: Iterable[int] = ()) -> int | None:
    """The cache directory's descriptor after every check, or None when it does not exist."""
    absolute = Path(os.path.abspath(cache_dir))
    if len(absolute.parts) < 3:
        raise PreflightRefusal(f"refusing to clear {absolute}: too close to the filesystem root")
    fd = open_directory(absolute, "cache_dir")
    if fd is None:
        return None
    try:
        check_owner(os.fstat(fd), absolute, "cache_dir", trusted_owners(owners), allow_shared)
    except BaseException:
        os.close(fd)
        raise
    return fd


def clear_cache(cache_dir: Path, *, allow_shared: bool = False, owners: Iterable[int] = ()) -> str:
    """Delete what is inside `cache_dir` through its descriptor; never anything outside it.

    Symlinks inside are unlinked, not followed; subdirectories are opened with O_NOFOLLOW and
    emptied through their own descriptors; other filesystems mounted inside are left alone.
    """
    fd = open_cache_dir(cache_dir, allow_shared=allow_shared, owners=owners)
    if fd is None:
        return f"{cache_dir} does not exist; nothing to clear"
    try:
        removed, kept = _empty(fd, os.fstat(fd).st_dev, 0)
    finally:
        os.close(fd)
    note = f"; left {kept} (other filesystems or swapped while clearing)" if kept else ""
    return f"removed {removed} entries from {cache_dir}{note}"


def _empty(fd: int, device: int, depth: int) -> tuple[int, int]:
    """Remove every entry of the directory open at `fd`: (removed, kept)."""
    if depth > _MAX_DEPTH:
        raise PreflightRefusal(f"cache tree deeper than {_MAX_DEPTH} levels; clear it by hand")
    removed = kept = 0
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=fd)  # files, sockets and symlinks alike: the link goes, its target stays
                removed += 1
                continue
        except FileNotFoundError:
            continue  # gone already
        if st.st_dev != device:
            kept += 1  # a mount point: not ours to empty
            continue
        try:
            sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                kept += 1  # swapped for a link between stat and open: leave it
                continue
            raise
        try:
            same = os.fstat(sub)
            if (same.st_dev, same.st_ino) != (st.st_dev, st.st_ino):
                kept += 1
                continue
            _, inner_kept = _empty(sub, device, depth + 1)
        finally:
            os.close(sub)
        if inner_kept:
            kept += inner_kept
            continue
        os.rmdir(name, dir_fd=fd)
        removed += 1
    return removed, kept


def _open_file(path: Path, what: str, flags: int = os.O_RDONLY) -> int:
    """Open a file whose final component may be a symlink only if it stays inside its directory."""
    parent = Path(os.path.abspath(path)).parent
    resolved = Path(os.path.realpath(path))
    if os.path.islink(path) and not resolved.is_relative_to(os.path.realpath(parent)):
        raise PreflightRefusal(
            f"refusing to read {what} {path}: it is a symlink out of {parent} (to {resolved}); "
            "configure the real file"
        )
    try:
        return os.open(resolved, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PreflightRefusal(f"refusing to read {what} {path}: it changed into a symlink") from None
        raise


def _read_text(path: Path, what: str) -> str:
    fd = _open_file(path, what)
    with os.fdopen(fd, "r", encoding="utf-8") as f:
        return f.read()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (a symlink is refused, not followed)."""
    h = hashlib.sha256()
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weight_hashes(weights_dir: Path) -> dict[str, str]:
    """sha256 of every regular file below `weights_dir`, by relative path (links are skipped)."""
    try:
        return {
            str(p.relative_to(weights_dir)): sha256_file(p)
            for p in sorted(weights_dir.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }
    except OSError as exc:
        raise PreflightRefusal(f"cannot hash the weights in {weights_dir}: {exc}") from None


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
    """Raise PreflightRefusal when the service's config file does not parse (or is a link out of its dir)."""
    try:
        text = _read_text(path, "service config")
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


def read_manifest(manifest: Path, owners: Iterable[int] = ()) -> dict[str, str]:
    """The recorded weight hashes; refused when another user could have written them."""
    try:
        fd = _open_file(manifest, "weights manifest")
        with os.fdopen(fd, "r", encoding="utf-8") as f:
            check_owner(os.fstat(f.fileno()), manifest, "weights manifest", trusted_owners(owners), False)
            recorded = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise PreflightRefusal(f"weights manifest {manifest} unreadable: {exc}") from None
    if not isinstance(recorded, dict):
        raise PreflightRefusal(f"weights manifest {manifest} is not a JSON object of file -> sha256")
    return recorded


def write_manifest(manifest: Path, hashes: dict[str, str]) -> None:
    """Record the hashes in a new 0600 file; never through a link, never over an existing file."""
    manifest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(manifest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise PreflightRefusal(f"cannot record the weights manifest {manifest}: {exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(json.dumps(hashes, indent=1, sort_keys=True))


def preflight(target: TargetConfig, *, allow_shared_cache: bool = False, owners: Iterable[int] = ()) -> dict[str, Any]:
    """Record weight hashes and the deployed commit; refuse on a broken config, changed weights or an unsafe cache.

    Returns the record for the journal. A missing manifest is written from the current weights
    (the first heavy restart records the baseline), an existing one is compared. The cache
    directory is checked here too, so an unsafe one refuses the job before anything is stopped.
    """
    record: dict[str, Any] = {}
    if target.service_config is not None and os.path.lexists(target.service_config):
        check_service_config(target.service_config)
        record["service_config"] = f"{target.service_config} parses"
    if target.git_dir is not None and target.git_dir.exists():
        record["git_commit"] = deployed_commit(target.git_dir)
    if target.weights_dir is not None and target.weights_dir.is_dir():
        hashes = weight_hashes(target.weights_dir)
        record["weights"] = hashes
        manifest = target.weights_manifest
        if manifest is not None:
            if os.path.lexists(manifest):
                problems = _compare(read_manifest(manifest, owners), hashes)
                if problems:
                    raise PreflightRefusal(
                        "weights do not match the recorded manifest (" + "; ".join(problems[:5]) + "); "
                        "a restart cannot fix that: restore the weights or roll back"
                    )
                record["manifest"] = f"{manifest} matches"
            else:
                write_manifest(manifest, hashes)
                record["manifest"] = f"{manifest} recorded (first heavy restart)"
    if target.cache_dir is not None:
        fd = open_cache_dir(target.cache_dir, allow_shared=allow_shared_cache, owners=owners)
        if fd is not None:
            os.close(fd)
            record["cache_dir"] = f"{target.cache_dir} is a real directory of a trusted owner"
    return record


def _compare(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    problems = [f"{name} changed" for name in sorted(expected) if name in actual and actual[name] != expected[name]]
    problems += [f"{name} missing" for name in sorted(expected) if name not in actual]
    problems += [f"{name} unexpected" for name in sorted(actual) if name not in expected]
    return problems
