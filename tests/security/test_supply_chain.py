"""Supply chain: the image installs from a hash-locked requirements file and its base is pinned by digest."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)")


def locked() -> dict[str, tuple[Version, list[str]]]:
    """name -> (version, sha256 hashes) of requirements-lock.txt."""
    pins: dict[str, tuple[Version, list[str]]] = {}
    current = None
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        m = PIN.match(line)
        if m:
            current = canonicalize_name(m.group(1))
            pins[current] = (Version(m.group(2)), [])
        elif current and line.strip().startswith("--hash=sha256:"):
            pins[current][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif line.strip() and not line.lstrip().startswith("#"):
            current = None
    return pins


def test_every_runtime_dependency_is_pinned_within_its_range_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = locked()
    needed = [Requirement(r) for r in project["project"]["dependencies"]]
    needed += [Requirement(r) for r in project["build-system"]["requires"]]
    for req in needed:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in requirements-lock.txt: run `make lock`"
        assert req.specifier.contains(pins[name][0], prereleases=True), f"{req} but the lock pins {pins[name][0]}"
    for name, (_, hashes) in pins.items():
        assert hashes, f"{name} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name
    extras = {canonicalize_name(Requirement(r).name) for group in project["project"]["optional-dependencies"].values()
              for r in group} - {canonicalize_name(r.name) for r in needed}
    assert not extras & set(pins), f"extras leaked into the runtime lock: {sorted(extras & set(pins))}"


def test_the_image_installs_only_what_the_lock_checked_on_a_digest_pinned_base():
    dockerfile = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert froms and all(re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", f) for f in froms), froms
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert any("--require-hashes -r requirements-lock.txt" in line for line in installs), installs
    own = [line for line in installs if "requirements-lock.txt" not in line]
    assert own and all("--no-deps" in line and "--no-build-isolation" in line for line in own), own
