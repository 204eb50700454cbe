"""`tts-sentinel probe MODULE` and `tts-sentinel baseline` as a person or a script runs them."""

from __future__ import annotations

import subprocess
import sys

import yaml


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tts_sentinel.cli", *args], capture_output=True, text=True,
                          timeout=120)


def write_config(sim, tmp_path) -> str:
    request = {"url": sim.api_url + "/tts"}
    config = {"exporter": {"probes": {
        "health": {"url": sim.web_url + "/health"},
        "synthesis": {"request": request},
        "semantic": {"request": request, "report_path": str(tmp_path / "semantic_report.log")},
        "quality": {"request": request},
        "baseline_dir": str(tmp_path / "baseline"),
    }}}
    path = tmp_path / "sentinel.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return str(path)


def test_probe_prints_the_verdict_and_exits_by_it(sim, tmp_path):
    config = write_config(sim, tmp_path)
    ok = cli("probe", "health", "--config", config)
    assert ok.returncode == 0 and ok.stdout.startswith("health: ok"), ok.stdout + ok.stderr
    sim.inference.set_fault("silent")
    bad = cli("probe", "synthesis", "--config", config, "--metrics")
    assert bad.returncode == 1
    assert "FAIL [silent]" in bad.stdout
    assert 'tts_probe_failures_total{probe="synthesis",reason="silent"} 1.0' in bad.stdout


def test_unknown_module_lists_the_configured_ones(sim, tmp_path):
    r = cli("probe", "nope", "--config", write_config(sim, tmp_path))
    assert r.returncode == 2 and "health, synthesis, semantic, quality" in r.stderr


def test_baseline_then_semantic(sim, tmp_path):
    config = write_config(sim, tmp_path)
    missing = cli("probe", "semantic", "--config", config)
    assert missing.returncode == 1 and "no_baseline" in missing.stdout
    recorded = cli("baseline", "--config", config, "--model-id", "qwen3-tts@abc123")
    assert recorded.returncode == 0, recorded.stderr
    assert (tmp_path / "baseline" / "qwen3-tts_abc123" / "manifest.json").exists()
    # The probes look for the configured model identity, so record that one too.
    assert cli("baseline", "--config", config).returncode == 0
    assert cli("probe", "semantic", "--config", config).returncode == 0


def test_baseline_from_a_broken_service_is_refused(sim, tmp_path):
    sim.inference.set_fault("truncated")
    r = cli("baseline", "--config", write_config(sim, tmp_path))
    assert r.returncode == 1 and "too_short" in r.stderr
