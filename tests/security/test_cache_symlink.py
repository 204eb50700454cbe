"""Attack 1: a local user plants a symlink where the heavy tier clears a cache or writes its manifest.

One real receiver process, one target per trap. A trapped target's heavy job is refused before
anything is stopped, with the reason in the journal and a page; the link's target is untouched.
The target with a real cache directory is still cleared, links inside it unlinked, not followed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.security.conftest import alert, command_target, receiver_section


def tree(root: Path) -> dict[str, bytes | None]:
    """Relative path -> content (None for a directory) of everything below `root`, links not followed."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = None if path.is_dir() else path.read_bytes()
    return out


def victim(root: Path) -> Path:
    """A directory an attacker would like emptied (think /etc/ssh or a model store)."""
    (root / "keys").mkdir(parents=True)
    (root / "ssh_host_key").write_bytes(b"precious")
    (root / "keys" / "authorized").write_bytes(b"also precious")
    return root


def heavy(service: str) -> dict:
    return alert("TtsSegfault", tier="heavy", service=service, fingerprint=f"fp-{service}")


def test_planted_links_are_refused_and_a_real_cache_is_still_cleared(tmp_path, start_receiver, pages):
    outside = victim(tmp_path / "victim")
    before = tree(outside)
    secret = tmp_path / "secret.yaml"
    secret.write_text("root_password: [hunter2\n")
    caches = tmp_path / "caches"
    caches.mkdir()

    # The attacker's link sits exactly where cache_dir points.
    (caches / "linked").symlink_to(outside, target_is_directory=True)
    # The link is one level up: cache_dir = hop/keys walks through it into the victim.
    (caches / "hop").symlink_to(outside, target_is_directory=True)
    # A cache any local user can write into.
    (caches / "shared").mkdir()
    (caches / "shared" / "x").write_bytes(b"x")
    (caches / "shared").chmod(0o777)
    # The real cache: nested entries, plus links out of it at two depths.
    real = caches / "real"
    (real / "blocks" / "deep").mkdir(parents=True)
    (real / "blocks" / "deep" / "b.bin").write_bytes(b"b")
    (real / "top.tmp").write_bytes(b"t")
    (real / "to-victim").symlink_to(outside, target_is_directory=True)
    (real / "blocks" / "to-key").symlink_to(outside / "ssh_host_key")
    # Service config that is a link out of its directory (its content would land in the journal).
    conf_dir = tmp_path / "service"
    conf_dir.mkdir()
    (conf_dir / "config.yaml").symlink_to(secret)
    # Manifest path pointing, through a dangling link, at a file the receiver would create as root.
    weights = tmp_path / "models"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"w1")
    state = tmp_path / "state"
    state.mkdir()
    planted = tmp_path / "outside" / "planted.json"
    planted.parent.mkdir()
    (state / "manifest.json").symlink_to(planted)

    logs = {name: tmp_path / f"{name}.ops" for name in ("linked", "hop", "shared", "real", "config", "manifest")}
    targets = [
        command_target("linked", logs["linked"], cache_dir=str(caches / "linked")),
        command_target("hop", logs["hop"], cache_dir=str(caches / "hop" / "keys")),
        command_target("shared", logs["shared"], cache_dir=str(caches / "shared")),
        command_target("real", logs["real"], cache_dir=str(real)),
        command_target("config", logs["config"], service_config=str(conf_dir / "config.yaml")),
        command_target(
            "manifest", logs["manifest"], weights_dir=str(weights), weights_manifest=str(state / "manifest.json")
        ),
    ]
    receiver = start_receiver(receiver_section(tmp_path, targets, alertmanager_url=pages.url))
    answer = receiver.post(*(heavy(name) for name in logs))
    assert answer.status_code == 202, answer.text
    jobs = {j["target"]: j for j in (receiver.wait_job(i) for i in answer.json()["new_jobs"])}
    assert set(jobs) == set(logs)

    assert jobs["real"]["status"] == "succeeded", jobs["real"]
    assert real.is_dir() and list(real.iterdir()) == [], "the real cache is emptied, the directory kept"
    assert tree(outside) == before, "nothing reachable through a link was touched"
    assert (logs["real"].read_text().split("\n")[:2]) == ["web stop job=unset", "inference stop job=unset"]

    why = {name: jobs[name]["note"] for name in ("linked", "hop", "shared", "config", "manifest")}
    assert "is a symlink" in why["linked"] and "links are never followed" in why["linked"]
    assert f"{caches / 'hop'} is a symlink" in why["hop"]
    assert "chmod go-w" in why["shared"] and "0777" in why["shared"]
    assert "symlink out of" in why["config"] and "hunter2" not in why["config"]
    assert "symlink out of" in why["manifest"]
    for name in why:
        assert jobs[name]["status"] == "refused", jobs[name]
        assert not logs[name].exists(), f"{name}: refused before anything was stopped"
    assert (caches / "shared" / "x").exists()
    assert not planted.exists(), "the manifest was not written through the link"
    assert secret.read_text() == "root_password: [hunter2\n"

    paged = {a["labels"]["target"]: a for a in pages.alerts if a["labels"]["alertname"] == "TtsRemediationRefused"}
    assert set(paged) == set(why), "every refusal pages on-call"
    assert {a["labels"]["reason"] for a in paged.values()} == {"preflight"}
    assert "symlink" in paged["linked"]["annotations"]["description"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand a directory to another user")
def test_a_cache_owned_by_another_user_is_refused(tmp_path, start_receiver, pages):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "theirs").write_bytes(b"keep")
    os.chown(cache, 65534, 65534)  # nobody: e.g. a user who created /tmp/qwen3-tts-cache first
    ops = tmp_path / "ops"
    receiver = start_receiver(
        receiver_section(tmp_path, [command_target("t", ops, cache_dir=str(cache))], alertmanager_url=pages.url)
    )
    job = receiver.wait_job(receiver.post(heavy("t")).json()["new_jobs"][0])
    assert job["status"] == "refused"
    assert "belongs to uid 65534" in job["note"] and "chown" in job["note"]
    assert (cache / "theirs").read_bytes() == b"keep"
    assert not ops.exists()
    assert [a["labels"]["reason"] for a in pages.alerts] == ["preflight"]
