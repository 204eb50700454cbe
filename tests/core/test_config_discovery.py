"""Every command finds the same config: --config, $TTS_SENTINEL_CONFIG, ./tts-sentinel.yml, /etc/tts-sentinel/config.yml."""

from __future__ import annotations

from pathlib import Path

import pytest

from tts_sentinel import config as config_module
from tts_sentinel.config import ConfigError, find_config, load_config


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TTS_SENTINEL_CONFIG", raising=False)
    etc = tmp_path / "etc" / "config.yml"
    monkeypatch.setattr(config_module, "SEARCH_PATH", (Path("tts-sentinel.yml"), etc))
    return tmp_path


def write(path: Path, port: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"exporter: {{listen_port: {port}}}\n")
    return path


def test_the_flag_wins_then_the_variable_then_the_working_directory_then_etc(workdir, monkeypatch):
    etc = write(workdir / "etc" / "config.yml", 1004)
    assert find_config(None) == etc
    assert load_config(None).exporter.listen_port == 1004
    write(workdir / "tts-sentinel.yml", 1003)
    assert load_config(None).exporter.listen_port == 1003
    monkeypatch.setenv("TTS_SENTINEL_CONFIG", str(write(workdir / "env.yml", 1002)))
    assert load_config(None).exporter.listen_port == 1002
    assert load_config(str(write(workdir / "flag.yml", 1001))).exporter.listen_port == 1001


def test_nothing_found_means_built_in_defaults(workdir):
    assert find_config(None) is None
    assert load_config(None).exporter.listen_port == 9464


def test_a_named_file_that_is_missing_is_an_error_not_a_fallback(workdir, monkeypatch):
    write(workdir / "tts-sentinel.yml", 1003)
    monkeypatch.setenv("TTS_SENTINEL_CONFIG", str(workdir / "gone.yml"))
    with pytest.raises(ConfigError, match="gone.yml: no such config file"):
        load_config(None)
