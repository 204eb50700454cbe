"""The receiver section: the documented example is valid, mistakes name the key and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tts_sentinel.config import ConfigError, parse_config

README = Path(__file__).parents[2] / "receiver" / "README.md"


def test_documented_example_is_valid():
    block = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S).group(1)
    receiver = parse_config(block, "README").receiver
    assert receiver.policy[0].tier == "medium"
    assert [s.action for s in receiver.tiers["medium"]] == ["stop", "release_gpu", "start", "wait", "verify"]
    assert receiver.targets[0].command.label_env == ["instance"]
    families = [f.name for f in receiver.incidents.families]
    assert families[0] == "gpu_memory" and families.count("gpu_memory") == 1 and "web_front" in families


@pytest.mark.parametrize(
    ("yaml_text", "line", "words"),
    [
        ("receiver:\n  tiers:\n    reboot: []\n", 2, "unknown tier"),
        ("receiver:\n  targets:\n    - name: a\n      match: {instance: '~(['}\n", 4, "not a valid regex"),
        ("receiver:\n  targets:\n    - {name: a, match: {s: a}}\n    - {name: a, match: {s: b}}\n", 1, "unique"),
        ("receiver:\n  targets:\n    - name: a\n", 2, "empty `match`"),
        ("receiver:\n  alertmanager_url: http://u:secret@am:9093\n", 2, "alertmanager_password_file"),
        ("receiver:\n  business_hours:\n    timezone: Mars/Olympus\n", 3, "unknown time zone"),
        ("receiver:\n  targets:\n    - name: a\n      command: {label_env: ['bad-name']}\n", 4, "environment"),
        ("receiver:\n  incidents:\n    families:\n      - name: x\n        ladder: [heavy, light]\n", 5, "must climb"),
        ("receiver:\n  incidents:\n    families:\n      - {name: a, ladder: [light]}\n      - {name: a, ladder: [light]}\n",
         3, "unique"),
    ],
)
def test_mistakes_name_key_and_line(yaml_text, line, words):
    with pytest.raises(ConfigError) as err:
        parse_config(yaml_text, "f.yml")
    assert f"f.yml:{line}:" in str(err.value) and words in str(err.value)


def test_each_target_has_its_own_version_history():
    from tts_sentinel.receiver.config import ReceiverConfig

    cfg = ReceiverConfig.model_validate({"targets": [
        {"name": "a", "match": {"service": "a"}},
        {"name": "b", "match": {"service": "b"}, "versions": {"history_file": "/srv/b/versions.json"}},
    ]})
    paths = [str(t.versions.history_file) for t in cfg.targets]
    assert paths == ["/var/lib/tts-sentinel/versions-a.json", "/srv/b/versions.json"]
