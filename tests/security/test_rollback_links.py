"""Attack: a local user plants symlinks where the rollback tier switches versions.

The switch must only ever point `current` at a real folder inside the configured versions_dir:
a version that is a link out of it, a versions_dir reached through a link, a history file that
is a link, or a `current` that is a real folder are refused before anything changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tts_sentinel.receiver.config import TargetConfig
from tts_sentinel.receiver.heavy import PreflightRefusal
from tts_sentinel.receiver.rollback import rollback_preflight, switch_version
from tts_sentinel.receiver.versions import VersionError, VersionHistory, VersionRecord, VersionsConfig


def layout(tmp_path: Path, *, versions_dir: Path | None = None) -> TargetConfig:
    versions = tmp_path / "versions"
    for name in ("v1", "v2"):
        (versions / name).mkdir(parents=True)
    (tmp_path / "current").symlink_to(versions / "v2")
    cfg = VersionsConfig(versions_dir=versions_dir or versions, current_link=tmp_path / "current",
                         history_file=tmp_path / "state" / "versions.json")
    history = VersionHistory(cfg)
    history.record_switch(VersionRecord("v1", validated=True))
    history.record_switch(VersionRecord("v2", validated=True))
    return TargetConfig(name="tts", match={"service": "tts"}, versions=cfg, weights_dir=None)


def test_a_version_that_is_a_link_out_of_versions_dir_is_refused(tmp_path):
    target = layout(tmp_path)
    victim = tmp_path / "attacker-model"
    victim.mkdir()
    (tmp_path / "versions" / "v1").rmdir()
    (tmp_path / "versions" / "v1").symlink_to(victim)

    with pytest.raises(PreflightRefusal, match="is a symlink"):
        rollback_preflight(target)
    assert (tmp_path / "current").readlink() == tmp_path / "versions" / "v2"


def test_a_versions_dir_reached_through_a_link_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    target = layout(tmp_path / "real")
    (tmp_path / "via-link").symlink_to(tmp_path / "real")
    cfg = target.versions.model_copy(update={"versions_dir": tmp_path / "via-link" / "versions"})
    target = target.model_copy(update={"versions": cfg})

    with pytest.raises(PreflightRefusal, match="symlink"):
        rollback_preflight(target)


def test_a_current_that_is_a_real_folder_is_not_replaced(tmp_path):
    target = layout(tmp_path)
    plan = rollback_preflight(target)
    (tmp_path / "current").unlink()
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "data").write_text("kept")

    with pytest.raises(PreflightRefusal, match="not a symlink"):
        switch_version(target, plan)
    assert (tmp_path / "current" / "data").read_text() == "kept"


def test_a_recorded_version_name_cannot_climb_out(tmp_path):
    target = layout(tmp_path)
    history = VersionHistory(target.versions)
    with pytest.raises(VersionError, match="not a version name"):
        history.record_switch(VersionRecord("../../etc", validated=True))
    # A hand-edited history is checked again at switch time.
    doc = history.load()
    doc["switches"].append({"version": "..", "validated": True})
    history._write(doc)
    with pytest.raises(PreflightRefusal, match="not a version name"):
        rollback_preflight(target)


def test_a_history_file_planted_as_a_link_is_not_read(tmp_path):
    target = layout(tmp_path)
    secret = tmp_path / "secret.json"
    secret.write_text('{"format": 1, "switches": [{"version": "v1", "validated": true}]}')
    path = target.versions.history_file
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(PreflightRefusal, match="symlink is refused"):
        rollback_preflight(target)


def test_the_switch_is_atomic_and_leaves_no_temporary_link(tmp_path):
    target = layout(tmp_path)
    out = switch_version(target, rollback_preflight(target))
    assert "(was v2)" in out
    assert (tmp_path / "current").readlink() == tmp_path / "versions" / "v1"
    assert sorted(os.listdir(tmp_path)) == ["current", "state", "versions"]
