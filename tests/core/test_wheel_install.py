"""The built wheel installs into a fresh venv and works from there: version, check-config, and the
shipped rules through promtool, read from the installed package data (not from this checkout).

To stay well under a minute the venv gets the wheel with --no-deps and borrows the third-party
packages of the test venv through a .pth file (paths only: its editable finder is not activated,
so `tts_sentinel` can only come from the wheel, which the test asserts).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from support import require_binary

import tts_sentinel

ROOT = Path(__file__).resolve().parents[2]


def run(argv, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    built = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", ROOT], tmp, 300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp / "dist").glob("tts_sentinel-*.whl")
    assert wheel.name.startswith(f"tts_sentinel-{tts_sentinel.__version__}-")  # the version has one source
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("tts_sentinel/rules/tts.rules.yml", "tts_sentinel/rules/runbooks.md",
                 "tts_sentinel/rules/tests/tts_test.yml", "tts_sentinel/rules/alertmanager.yml",
                 "tts_sentinel/dashboards/tts-sentinel.json",
                 "tts_sentinel/dashboards/provisioning/datasources/prometheus.yml",
                 "tts_sentinel/deploy/systemd/tts-sentinel-exporter.service",
                 "tts_sentinel/deploy/systemd/tts-sentinel.sysusers.conf",
                 "tts_sentinel/deploy/kubernetes/receiver.yaml"):
        assert data in names, f"{data} is not in the wheel"
    venv = tmp / "venv"
    assert run([sys.executable, "-m", "venv", "--without-pip", venv], tmp).returncode == 0
    python = venv / "bin" / "python"
    done = run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel], tmp, 300)
    assert done.returncode == 0, done.stderr[-2000:]
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp).stdout.strip())
    (purelib / "borrowed_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_installed_command_reports_the_version(installed, tmp_path):
    done = run([installed / "bin" / "tts-sentinel", "--version"], tmp_path)
    assert done.stdout.strip() == f"tts-sentinel {tts_sentinel.__version__}", done.stderr
    where = run([installed / "bin" / "python", "-c", "import tts_sentinel; print(tts_sentinel.__file__)"], tmp_path)
    assert where.stdout.strip().startswith(str(installed)), where.stdout + where.stderr


def test_the_installed_command_validates_the_example_config(installed, tmp_path):
    done = run([installed / "bin" / "tts-sentinel", "check-config", ROOT / "tts-sentinel.yml"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(": ok")


def test_the_shipped_rules_pass_promtool_from_the_installed_package_data(installed, tmp_path):
    promtool = require_binary("promtool")
    found = run([installed / "bin" / "python", "-c",
                 "from tts_sentinel.shipped import shipped_dir; print(shipped_dir('rules'))"], tmp_path)
    rules = Path(found.stdout.strip())
    assert rules.is_relative_to(installed), found.stdout + found.stderr
    files = sorted(rules.glob("*.rules.yml"))
    assert [p.name for p in files] == sorted(p.name for p in (ROOT / "rules").glob("*.rules.yml"))
    checked = run([promtool, "check", "rules", *files], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for test_file in sorted((rules / "tests").glob("*.yml")):
        tested = run([promtool, "test", "rules", test_file.name], test_file.parent)
        assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_installed_command_writes_deployment_files(installed, tmp_path):
    done = run([installed / "bin" / "tts-sentinel", "deploy", "systemd", "--out", tmp_path / "units"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "units" / "tts-sentinel-receiver.service").read_text() == (
        ROOT / "deploy" / "systemd" / "tts-sentinel-receiver.service").read_text()
