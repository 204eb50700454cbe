"""The built wheel claims one top-level name, `tts_sentinel`, and carries every module we ship."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"tts_sentinel": "tts_sentinel", "loghistory": "tts_sentinel/loghistory", "exporter": "tts_sentinel/exporter",
           "receiver": "tts_sentinel/receiver", "simulator": "tts_sentinel/simulator", "harness": "tts_sentinel/harness"}


def test_wheel_has_one_namespace_and_every_module(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("tts_sentinel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"tts_sentinel"}, top
    expected = {f"{dest}/{p.relative_to(ROOT / folder).as_posix()}"
                for folder, dest in FOLDERS.items() for p in (ROOT / folder).rglob("*.py")
                if "__pycache__" not in p.parts}
    missing = expected - set(names)
    assert not missing, f"modules missing from the wheel: {sorted(missing)}"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "tts-sentinel = tts_sentinel.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
