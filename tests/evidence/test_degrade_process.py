"""A full disk or an unwritable evidence dir, under the real exporter process: "no clip kept" with a
log line, and the probe's verdict (what alerts and the receiver's verification read) unchanged.

Disk full is a real 64 KiB tmpfs, mounted in a private mount namespace of the exporter's own
(`unshare --mount`), so it goes away with the process; a silent clip is larger than the whole
filesystem. Unwritable is a file where the evidence dir should be (root ignores a 0500 mode).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from support import free_port, wait_for

from tts_sentinel.simulator.runtime import InProcessSimulator


def exporter_config(sim: InProcessSimulator, tmp_path: Path, evidence_dir: Path) -> Path:
    config = {"exporter": {
        "listen_port": free_port(), "state_dir": str(tmp_path / "state"), "gpu": {"enabled": False},
        "logs": {"files": [{"name": "health", "path": str(sim.config.log_dir / "health.log"), "rotation": "none"}]},
        "probes": {"baseline_dir": str(tmp_path / "baseline"),
                   "health": {"url": sim.web_url + "/health", "interval_seconds": 3600},
                   "synthesis": {"enabled": True, "interval_seconds": 3600,
                                 "request": {"url": sim.api_url + "/tts", "timeout_seconds": 10}}},
        "evidence": {"dir": str(evidence_dir), "min_interval_seconds": 0},
    }}
    path = tmp_path / "exporter.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class ExporterProcess:
    """`tts-sentinel exporter` as its own process (optionally wrapped), output kept in a file."""

    def __init__(self, config: Path, wrapper: list[str] | None = None) -> None:
        self.port = yaml.safe_load(config.read_text())["exporter"]["listen_port"]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = config.with_suffix(".out")
        argv = [sys.executable, "-m", "tts_sentinel.cli", "exporter", "--config", str(config)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([*(wrapper or []), *argv], stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_for(self._ready, timeout=60, what="the exporter to listen")

    def _ready(self) -> bool:
        assert self.proc.poll() is None, self.output()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def probe(exporter: ExporterProcess, module: str = "synthesis") -> str:
    answer = httpx.get(f"{exporter.url}/probe", params={"module": module}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.text


def metric(exporter: ExporterProcess, line_start: str) -> float:
    for line in httpx.get(f"{exporter.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(line_start):
            return float(line.split()[-1])
    raise AssertionError(f"no {line_start} in /metrics")


def degrades_and_recovers(sim: InProcessSimulator, exporter: ExporterProcess) -> None:
    """Silent audio: the probe says silent (not an error), nothing is listed, one warning says why;
    the fault cleared: the probe is green again, as a remediation's verification would see it."""
    sim.inference.set_fault("silent")
    failed = probe(exporter)
    assert 'tts_probe_success{probe="synthesis"} 0.0' in failed
    assert 'tts_probe_failures_total{probe="synthesis",reason="silent"}' in failed
    assert metric(exporter, 'tts_evidence_dropped_total{reason="unwritable"}') >= 1
    assert metric(exporter, "tts_evidence_items ") == 0
    listing = httpx.get(f"{exporter.url}/evidence", timeout=10)
    assert listing.status_code == 200 and listing.json() == []
    sim.inference.set_fault("none")
    assert 'tts_probe_success{probe="synthesis"} 1.0' in probe(exporter)
    assert exporter.proc.poll() is None
    wait_for(lambda: "the probe itself is unaffected" in exporter.output(), timeout=10, what="the log line")
    warnings = [line for line in exporter.output().splitlines() if "evidence:" in line]
    assert len(warnings) == 1, warnings  # one line when it starts failing, not one per probe


@pytest.fixture
def sim(tmp_path):
    from tts_sentinel.simulator.config import SimulatorConfig

    config = SimulatorConfig(web_port=free_port(), api_port=free_port(), log_dir=tmp_path / "sim-logs")
    with InProcessSimulator(config) as s:
        yield s


def test_a_full_disk_keeps_no_clip_and_fails_no_probe(sim, tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("mounting a tmpfs needs root and util-linux's unshare")
    small = tmp_path / "small-fs"
    small.mkdir()
    mount = f"mount -t tmpfs -o size=64k,mode=0700 tmpfs {small} && exec \"$@\""
    try:
        subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        f"mount -t tmpfs -o size=64k tmpfs {small}"], check=True, capture_output=True, timeout=10)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc.stderr.decode(errors='replace').strip()}")
    exporter = ExporterProcess(exporter_config(sim, tmp_path, small / "evidence"),
                               ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh"])
    try:
        # The mount is the exporter's alone: this side still sees the empty dir under it.
        assert list(small.iterdir()) == []
        degrades_and_recovers(sim, exporter)
        assert "No space left on device" in exporter.output()
        # Nothing half-written stays on the full filesystem (seen through the exporter's own root).
        inside = Path(f"/proc/{exporter.proc.pid}/root") / str(small).lstrip("/") / "evidence"
        assert [p.name for p in inside.iterdir()] == []
    finally:
        exporter.stop()


def test_a_file_in_place_of_the_evidence_dir_keeps_no_clip_and_fails_no_probe(sim, tmp_path):
    (tmp_path / "blocked").write_text("a file where the evidence dir's parent should be")
    exporter = ExporterProcess(exporter_config(sim, tmp_path, tmp_path / "blocked" / "evidence"))
    try:
        degrades_and_recovers(sim, exporter)
        assert "Not a directory" in exporter.output() or "File exists" in exporter.output()
        assert (tmp_path / "blocked").is_file()
    finally:
        exporter.stop()
