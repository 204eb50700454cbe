"""The floors of ARCHITECTURE.md, checked on the source: what may import what.

Every module of ours is read with `ast`; an import of one of our modules is allowed
only when the importing floor may see the imported one. Imports of our own modules
sit at the top of the module (none hidden in a function to dodge a cycle); plugin
registries name their modules as strings and load them with importlib.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# folder in the repository -> the package it installs as
PACKAGE_DIRS = {
    "tts_sentinel": "tts_sentinel",
    "loghistory": "tts_sentinel.loghistory",
    "exporter": "tts_sentinel.exporter",
    "receiver": "tts_sentinel.receiver",
    "simulator": "tts_sentinel.simulator",
    "harness": "tts_sentinel.harness",
}

# data-only packages (no Python): shipped in the wheel, found by tts_sentinel.shipped
DATA_PACKAGES = {"tts_sentinel.rules": "rules", "tts_sentinel.dashboards": "dashboards",
                 "tts_sentinel.deploy": "deploy"}

# floor -> floors it may import (itself always included)
BASE = "base"
MAY_IMPORT: dict[str, set[str]] = {
    BASE: set(),
    "loghistory": {BASE},
    "exporter": {BASE, "loghistory"},
    "receiver": {BASE, "loghistory"},
    "simulator": {BASE},
    "config": {BASE, "loghistory", "exporter", "receiver", "simulator"},
    "harness": {BASE, "loghistory", "exporter", "receiver", "simulator", "config"},
    # init, doctor and deploy: they read the whole config and call the libraries' own clients
    "onboarding": {BASE, "loghistory", "exporter", "receiver", "simulator", "config"},
    "commands": {BASE, "loghistory", "exporter", "receiver", "simulator", "config", "harness", "onboarding"},
}


def floor_of(module: str) -> str:
    """The floor a dotted module name of ours lives on."""
    parts = module.split(".")
    if len(parts) == 1:
        return BASE  # tts_sentinel itself: the version
    second = parts[1]
    if second in {"loghistory", "exporter", "receiver", "simulator", "harness", "commands", "config",
                  "onboarding"}:
        return second
    if second == "cli":
        return "commands"
    return BASE


def our_modules() -> dict[str, Path]:
    """Dotted name -> file for every module we ship."""
    out: dict[str, Path] = {}
    for folder, package in PACKAGE_DIRS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def imports_of(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module top level) for each import of our namespace in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if name == "tts_sentinel" or name.startswith("tts_sentinel."):
                found.append((name, node.lineno, id(node) in top))
    return found


MODULES = our_modules()


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert packages | set(DATA_PACKAGES) == listed, (
        "pyproject's [tool.setuptools] packages must list exactly the package folders and the data folders")
    for package, folder in DATA_PACKAGES.items():
        assert not list((ROOT / folder).rglob("*.py")), f"{folder}/ is shipped as data ({package}); keep code out"


def test_old_top_level_names_are_not_imported():
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for mod in mods:
                assert mod.split(".")[0] not in {"exporter", "receiver", "simulator", "loghistory", "harness"}, (
                    f"{path}:{node.lineno} imports {mod}; use tts_sentinel.{mod}")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_floors(module):
    floor = floor_of(module)
    allowed = MAY_IMPORT[floor] | {floor}
    for imported, line, at_top in imports_of(MODULES[module]):
        where = f"{MODULES[module].relative_to(ROOT)}:{line}"
        assert at_top, f"{where}: import of {imported} hidden inside a block; import it at the top"
        target = floor_of(imported)
        assert target in allowed, f"{where}: the {floor} floor may not import {imported} (the {target} floor)"


def test_the_rules_catch_a_library_that_reaches_up():
    # the checker itself can fail: a receiver module importing the config loader is refused
    assert floor_of("tts_sentinel.config") not in MAY_IMPORT["receiver"]
    assert floor_of("tts_sentinel.harness.stack") not in MAY_IMPORT["exporter"]
    assert floor_of("tts_sentinel.commands.triage") not in MAY_IMPORT["harness"]


def test_no_module_is_much_past_450_lines():
    big = {str(p.relative_to(ROOT)): n for p in MODULES.values()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450}
    assert not big, f"split these modules by job: {big}"
