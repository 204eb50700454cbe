"""A bad config stops the program with the file, the line and the key in one message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tts_sentinel.config import ConfigError, load_config, parse_config


def test_defaults_are_the_seed_values():
    cfg = parse_config("")
    assert cfg.exporter.listen_port == 9464
    assert cfg.receiver.listen_port == 9465
    assert cfg.receiver.listen_host == "127.0.0.1"
    assert [f.name for f in cfg.exporter.logs.files] == ["webui", "inference", "health"]


def test_type_error_names_file_line_and_key():
    text = "exporter:\n  listen_host: 127.0.0.1\n  listen_port: nine\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, "/etc/tts.yml")
    assert "/etc/tts.yml:3: exporter.listen_port:" in str(err.value)


def test_unknown_key_is_rejected_with_its_line():
    with pytest.raises(ConfigError) as err:
        parse_config("receiver:\n  listen_port: 9465\n  tokn_file: /x\n", "c.yml")
    assert "c.yml:3: receiver.tokn_file" in str(err.value)


def test_bad_regex_in_a_list_item_points_at_the_item():
    text = (
        "exporter:\n  logs:\n    patterns:\n"
        "      - name: ok\n        regex: a\n"
        "      - name: bad\n        regex: '(x'\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text, "c.yml")
    assert "c.yml:7: exporter.logs.patterns.1.regex" in str(err.value)
    assert "not a valid regular expression" in str(err.value)


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(ConfigError) as err:
        parse_config("exporter:\n  listen_port: [1,\n", "c.yml")
    assert "c.yml:" in str(err.value) and "not valid YAML" in str(err.value)


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yml")
    assert "no such config file" in str(err.value)


def test_example_config_in_the_repo_is_valid():
    from pathlib import Path

    load_config(Path(__file__).parents[2] / "tts-sentinel.yml")


def test_check_config_command_exit_codes(tmp_path):
    good = tmp_path / "good.yml"
    good.write_text("exporter:\n  listen_port: 9999\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("exporter:\n  listen_port: -1\n")
    ok = subprocess.run([sys.executable, "-m", "tts_sentinel.cli", "check-config", str(good)], capture_output=True)
    assert ok.returncode == 0, ok.stdout
    ko = subprocess.run([sys.executable, "-m", "tts_sentinel.cli", "check-config", str(bad)],
                        capture_output=True, text=True)
    assert ko.returncode == 2
    assert f"{bad}:2: exporter.listen_port" in ko.stdout
