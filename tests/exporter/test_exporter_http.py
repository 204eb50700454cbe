"""The exporter process: /metrics, /probe, /healthz, and what it does with a dead service or bad config."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from support import free_port

from tts_sentinel.exporter.config import ExporterConfig
from tts_sentinel.exporter.server import Exporter


@pytest.fixture
def exporter(tmp_path):
    dead = free_port()  # nothing listens here: the TTS service is down
    cfg = ExporterConfig.model_validate({
        "listen_port": free_port(),
        "state_dir": str(tmp_path / "state"),
        "gpu": {"enabled": False},
        "logs": {"files": [{"name": "webui", "path": str(tmp_path / "webui.log")}]},
        "probes": {"health": {"url": f"http://127.0.0.1:{dead}/health", "interval_seconds": 60,
                              "timeout_seconds": 0.5}},
    })
    e = Exporter(cfg)
    e.start()
    yield f"http://127.0.0.1:{cfg.listen_port}"
    e.stop()


def test_metrics_expose_core_series_before_anything_happens(exporter):
    text = httpx.get(f"{exporter}/metrics").text
    assert 'tts_log_pattern_matches_total{log="webui",pattern="cuda_oom"} 0.0' in text
    assert 'tts_gpu_up{reason="disabled"} 0.0' in text
    assert "tts_exporter_build_info" in text


def test_probe_of_a_dead_service_answers_200_with_success_0(exporter):
    r = httpx.get(f"{exporter}/probe", params={"module": "health"}, timeout=10)
    assert r.status_code == 200
    assert 'tts_probe_success{probe="health"} 0.0' in r.text


def test_unknown_probe_module_is_a_clear_400(exporter):
    r = httpx.get(f"{exporter}/probe", params={"module": "nope"})
    assert r.status_code == 400
    assert "unknown probe module 'nope'" in r.text and "health" in r.text


def test_healthz_and_404(exporter):
    assert httpx.get(f"{exporter}/healthz").text == "ok\n"
    assert httpx.get(f"{exporter}/nothing").status_code == 404


def test_bad_config_exits_2_with_file_line_and_key(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("exporter:\n  probes:\n    health:\n      interval_seconds: -5\n")
    r = subprocess.run([sys.executable, "-m", "tts_sentinel.cli", "exporter", "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert f"{bad}:4: exporter.probes.health.interval_seconds" in r.stderr


def test_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        cfg = tmp_path / "c.yml"
        cfg.write_text(f"exporter:\n  listen_port: {s.getsockname()[1]}\n  state_dir: {tmp_path}\n"
                       "  gpu: {enabled: false}\n")
        r = subprocess.run([sys.executable, "-m", "tts_sentinel.cli", "exporter", "--config", str(cfg)],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "cannot listen on" in r.stderr
