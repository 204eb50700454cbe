"""The rollback tier's checks and its one change: point the service back at the previous version.

A rollback is refused (and paged) when no known-good previous version is recorded, when the
weights on disk differ from their manifest (a weight problem, not a version problem: restore
them) or when the target's version layout is unsafe. The symlink switch never follows a link:
`versions_dir` is walked component by component without following symlinks, the chosen version
must be a real directory inside it owned by root or the receiver's user, and the new `current`
link is created beside the old one and renamed over it (atomic: the service sees one or the other).
A Kubernetes target keeps its revisions itself: the switch is `rollout undo` of the inference
Deployment (actuators/kubernetes_undo.py). A Docker target's inference container is recreated
from the image recorded for the previous version (actuators/docker_rollback.py); the plan is
written to the history before the first change, so a resumed job finishes that rollback.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

from tts_sentinel.receiver.actuators import ActuatorError
from tts_sentinel.receiver.actuators.docker_rollback import ContainerRollback, DockerEngine, RollbackFailed
from tts_sentinel.receiver.actuators.kubernetes_undo import DeploymentHistory
from tts_sentinel.receiver.config import TargetConfig
from tts_sentinel.receiver.heavy import (
    PreflightRefusal,
    check_owner,
    open_directory,
    read_manifest,
    trusted_owners,
    weight_hashes,
)
from tts_sentinel.receiver.versions import VersionError, VersionHistory, VersionRecord, check_version_name

# How each actuator's service is pointed at another version; the others are refused with a sentence.
SYMLINK_ACTUATORS = ("supervisord", "command", "systemd")


def current_version(target: TargetConfig) -> str | None:
    """The folder name `current_link` points to, when it points directly into `versions_dir`."""
    cfg = target.versions
    if cfg.current_link is None or cfg.versions_dir is None:
        return None
    try:
        dest = os.readlink(cfg.current_link)
    except OSError:
        return None
    dest_path = Path(dest if os.path.isabs(dest) else os.path.join(os.path.dirname(cfg.current_link), dest))
    dest_path = Path(os.path.normpath(dest_path))
    if dest_path.parent != Path(os.path.normpath(os.path.abspath(cfg.versions_dir))):
        return None
    return dest_path.name


def rollback_preflight(target: TargetConfig) -> dict[str, Any]:
    """What the rollback will switch from and to; PreflightRefusal when it must not run."""
    cfg = target.versions
    if target.actuator == "kubernetes":
        return _kubernetes_plan(target)
    if target.actuator == "docker":
        return _docker_plan(target)
    if target.actuator not in SYMLINK_ACTUATORS:
        raise PreflightRefusal(f"rollback through the {target.actuator} actuator is not supported; roll back by hand")
    if cfg.versions_dir is None or cfg.current_link is None:
        raise PreflightRefusal(
            f"target {target.name} has no versions section (versions_dir, current_link): nothing to roll back to")
    fd = open_directory(cfg.versions_dir, "versions_dir")  # refuses a link anywhere on the way
    if fd is None:
        raise PreflightRefusal(f"versions_dir {cfg.versions_dir} does not exist")
    os.close(fd)
    _weights_intact(target)
    current = current_version(target)
    if current is None:
        raise PreflightRefusal(
            f"current_link {cfg.current_link} does not point straight into {cfg.versions_dir}: "
            "the running version is unknown, so there is no 'previous' one")
    try:
        previous = VersionHistory(cfg).previous_good(current)
    except VersionError as exc:
        raise PreflightRefusal(str(exc)) from None
    if previous is None:
        raise PreflightRefusal(
            f"no known-good previous version recorded for {target.name} (current: {current or 'unknown'}); "
            "a person must decide what to run")
    _version_dir(cfg.versions_dir, previous.version)
    return {"from": current, "to": previous.version, "model_id": previous.model_id,
            "weights_sha256": previous.weights_sha256, "commit": previous.commit}


def switch_version(target: TargetConfig, plan: dict[str, Any]) -> str:
    """Point `current_link` at versions_dir/plan['to'] and record the switch; returns what it did."""
    cfg = target.versions
    if plan.get("kind") == "kubernetes":
        try:
            return DeploymentHistory(target.kubernetes, plan["deployment"]).undo()
        except ActuatorError as exc:
            raise PreflightRefusal(str(exc)) from None
    if plan.get("kind") == "docker":
        return _recreate_container(target, plan)
    assert cfg.versions_dir is not None and cfg.current_link is not None  # checked by rollback_preflight
    version = _version_dir(cfg.versions_dir, plan["to"])
    link = Path(os.path.abspath(cfg.current_link))
    parent = open_directory(link.parent, "current_link's folder")
    if parent is None:
        raise PreflightRefusal(f"the folder of current_link {link} does not exist")
    try:
        try:
            mode = os.stat(link.name, dir_fd=parent, follow_symlinks=False).st_mode
            if not stat.S_ISLNK(mode):
                raise PreflightRefusal(f"refusing to replace {link}: it is not a symlink (move it away by hand)")
        except FileNotFoundError:
            pass
        tmp = f".{link.name}.rollback.{os.getpid()}"
        try:
            os.unlink(tmp, dir_fd=parent)
        except FileNotFoundError:
            pass
        os.symlink(str(version), tmp, dir_fd=parent)
        os.rename(tmp, link.name, src_dir_fd=parent, dst_dir_fd=parent)
    finally:
        os.close(parent)
    history = VersionHistory(cfg)
    try:
        history.record_switch(
            VersionRecord(version=plan["to"], model_id=plan.get("model_id", ""),
                          weights_sha256=plan.get("weights_sha256", ""), commit=plan.get("commit", ""),
                          validated=True, reason=f"rollback from {plan.get('from')}"),
            rolled_back_from=plan.get("from"))
    except VersionError as exc:
        raise PreflightRefusal(f"switched {link} to {version} but could not record it: {exc}") from None
    return f"{link} -> {version} (was {plan.get('from') or 'unknown'}); switch recorded in {history.path}"


def _kubernetes_plan(target: TargetConfig) -> dict[str, Any]:
    """Kubernetes keeps the revisions itself: the inference Deployment's previous ReplicaSet."""
    _weights_intact(target)
    deployment = target.kubernetes.inference_deployment
    try:
        current, previous, _rs, _d = DeploymentHistory(target.kubernetes, deployment).previous()
    except ActuatorError as exc:
        raise PreflightRefusal(f"no known-good previous version: {exc}") from None
    return {"kind": "kubernetes", "deployment": deployment, "from": current, "to": previous}


def _docker_plan(target: TargetConfig) -> dict[str, Any]:
    """The inference container, the version its image belongs to, and the previous version's image."""
    _weights_intact(target)
    history = VersionHistory(target.versions)
    name = target.docker.inference_container
    try:
        pending = history.rollback_in_progress()
        if pending is not None and pending.get("container") == name:
            return pending  # a receiver killed mid-rollback: finish that one, never plan a second
        if pending is not None:
            raise PreflightRefusal(f"{history.path} holds an unfinished rollback of container "
                                   f"{pending.get('container')}, not of {name}: finish it by hand and remove "
                                   "its `rollback_in_progress`")
        running = DockerEngine(target.docker).inspect(name)
        if running is None:
            raise PreflightRefusal(f"container {name} does not exist on the Docker engine: nothing to roll back")
        if str(running.get("Name") or "").lstrip("/") != name:
            raise PreflightRefusal(
                f"docker.inference_container {name!r} is not the container's name but its id: a recreated container "
                f"gets a new id, so configure its name ({str(running.get('Name') or '').lstrip('/')}) first")
        current = history.version_of_image(running["Image"])
        if current is None:
            raise PreflightRefusal(
                f"container {name} runs image {running['Image'][:19]}, which no recorded version ran: the running "
                "version is unknown, so there is no 'previous' one (record versions with `validate --record`)")
        previous = history.previous_good(current, with_image=True)
        if previous is None or previous.image is None:
            raise PreflightRefusal(f"no known-good previous version with a recorded image for {target.name} "
                                   f"(current: {current}); a person must decide what to run")
        if previous.image["id"] == running["Image"]:
            raise PreflightRefusal(f"the previous version {previous.version} ran the same image as {current} "
                                   f"({running['Image'][:19]}): recreating the container would change nothing")
        if DockerEngine(target.docker).image(previous.image["id"]) is None:
            ref = previous.image.get("ref") or previous.image["id"]
            raise PreflightRefusal(f"the image of {previous.version} ({ref}, {previous.image['id'][:19]}) is no "
                                   "longer on this host: load or pull it (and check its id), then roll back by hand")
    except (ActuatorError, VersionError) as exc:
        raise PreflightRefusal(f"rollback of container {name} cannot be planned: {exc}") from None
    stamp = time.strftime("%Y%m%d%H%M%S")
    return {"kind": "docker", "container": name, "old_id": running["Id"], "from": current, "to": previous.version,
            "image": previous.image, "from_image": {"id": running["Image"], "ref": running["Config"].get("Image", "")},
            "temp_name": f"{name}-rollback-{stamp}", "old_name": f"{name}-rolledback-{stamp}",
            "restart_policy": (running.get("HostConfig") or {}).get("RestartPolicy") or {"Name": "no"},
            "model_id": previous.model_id, "weights_sha256": previous.weights_sha256, "commit": previous.commit}


def _recreate_container(target: TargetConfig, plan: dict[str, Any]) -> str:
    """Recreate the container from the previous image, then record the switch (which ends the plan)."""
    history = VersionHistory(target.versions)
    try:
        if history.rollback_in_progress() is None:
            history.begin_rollback(plan)
    except VersionError as exc:
        raise PreflightRefusal(f"rollback not started: {exc}") from None
    try:
        done = ContainerRollback(target.docker).run(plan)
    except RollbackFailed as exc:
        if exc.restored:
            history.end_rollback()
            raise
        raise RollbackFailed(f"{exc}; the rollback stays in progress in {history.path}: the next rollback job "
                             "resumes it (or remove its `rollback_in_progress` once fixed by hand)", False) from None
    try:
        history.record_switch(
            VersionRecord(version=plan["to"], model_id=plan.get("model_id", ""),
                          weights_sha256=plan.get("weights_sha256", ""), commit=plan.get("commit", ""),
                          validated=True, reason=f"rollback from {plan.get('from')}", image=plan["image"]),
            rolled_back_from=plan.get("from"))
    except VersionError as exc:
        raise PreflightRefusal(f"{done}, but the switch could not be recorded: {exc}") from None
    return f"{done}; switch recorded in {history.path}"


def _version_dir(versions_dir: Path, name: str) -> Path:
    """The absolute path of a version folder after every check (no link anywhere on the way)."""
    try:
        check_version_name(name)
    except VersionError as exc:
        raise PreflightRefusal(str(exc)) from None
    root = Path(os.path.abspath(versions_dir))
    fd = open_directory(root, "versions_dir")
    if fd is None:
        raise PreflightRefusal(f"versions_dir {root} does not exist")
    try:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise PreflightRefusal(f"version {name} is recorded but {root / name} is gone") from None
        if stat.S_ISLNK(st.st_mode):
            raise PreflightRefusal(
                f"refusing to switch to {root / name}: it is a symlink (to {os.readlink(name, dir_fd=fd)}); "
                "a version must be a real folder inside versions_dir")
        if not stat.S_ISDIR(st.st_mode):
            raise PreflightRefusal(f"refusing to switch to {root / name}: not a directory")
        check_owner(st, root / name, "version folder", trusted_owners(), False)
    finally:
        os.close(fd)
    return root / name


def _weights_intact(target: TargetConfig) -> None:
    """The 24-hour quality alert rolls back only when the weights match their manifest."""
    if target.weights_manifest is None or target.weights_dir is None or not os.path.lexists(target.weights_manifest):
        return
    expected = read_manifest(target.weights_manifest)
    actual = weight_hashes(target.weights_dir)
    changed = sorted(k for k in set(expected) | set(actual) if expected.get(k) != actual.get(k))
    if changed:
        raise PreflightRefusal(
            f"weights differ from the manifest ({', '.join(changed[:5])}): restore the weights; "
            "a rollback would hide the corruption")
