"""Attack 2: the targets are an allowlist: no default target, no empty `match`, and an alert from
any other job is counted (bounded by name) and journaled in aggregate, never acted on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import yaml
from support import free_port

from tests.security.conftest import AUTH, CLI, alert, command_target, receiver_section
from tts_sentinel.config import SentinelConfig, load_config
from tts_sentinel.harness.stack import Stack


def _run(tmp_path, receiver):
    config = tmp_path / "sentinel.yml"
    config.write_text(yaml.safe_dump({"receiver": {"listen_port": free_port(),
                                                   "journal_path": str(tmp_path / "j.sqlite3"), **receiver}}))
    token = tmp_path / "receiver.token"
    token.write_text("t" * 32)
    token.chmod(0o600)
    check = subprocess.run([*CLI, "check-config", str(config)], capture_output=True, text=True, timeout=60)
    start = subprocess.run([*CLI, "receiver", "--config", str(config), "--token-file", str(token)],
                           capture_output=True, text=True, timeout=60)
    return check, start


def test_an_empty_match_is_a_config_error_and_no_targets_refuses_to_start(tmp_path):
    check, start = _run(tmp_path, {"targets": [{"name": "qwen3-tts", "match": {}}]})
    for out, rc in ((check.stdout, check.returncode), (start.stderr, start.returncode)):
        assert rc == 2
        assert "target 'qwen3-tts' has an empty `match`" in out and "match: {service: qwen3-tts}" in out, out

    check, start = _run(tmp_path, {})
    assert check.returncode == 0, "a file without a receiver section is valid (an exporter-only host)"
    assert start.returncode == 2 and "receiver.targets is empty" in start.stderr and "`match`" in start.stderr
    assert not (tmp_path / "j.sqlite3").exists(), "nothing started"


def test_an_alert_from_another_job_is_counted_not_acted_on(tmp_path, start_receiver):
    ops = tmp_path / "ops"
    receiver = start_receiver(receiver_section(tmp_path, [command_target("qwen3-tts", ops)]))
    stray = alert("DiskFullOnSomeOtherBox", tier="heavy", instance="db7:9100")
    del stray["labels"]["service"]
    answer = receiver.post(stray, stray)
    assert answer.status_code == 202 and answer.json()["ignored"] == 2 and answer.json()["new_jobs"] == []

    # 150 more names: the metric and the journal keep 100 of them and fold the rest into `other`.
    many = [alert(f"Stray{i:03d}", tier="heavy", service="db", fingerprint=f"s{i}") for i in range(150)]
    assert receiver.post(*many).status_code == 202

    assert httpx.get(receiver.url + "/actions", headers=AUTH).json() == [], "no job, not even an ignored one"
    assert not ops.exists(), "nothing ran"
    rows = httpx.get(receiver.url + "/unmatched", params={"limit": 1000}, headers=AUTH).json()
    counts = {r["alertname"]: r["count"] for r in rows}
    disk = next(r for r in rows if r["alertname"] == "DiskFullOnSomeOtherBox")
    assert disk["count"] == 2 and disk["example"]["instance"] == "db7:9100", "the labels of one, as an example"
    assert len(rows) == 101 and counts["other"] == 51 and sum(counts.values()) == 152
    series = [line for line in httpx.get(receiver.url + "/metrics").text.splitlines()
              if line.startswith("tts_receiver_unmatched_alerts_total{")]
    assert len(series) == 101 and 'tts_receiver_unmatched_alerts_total{alertname="other"} 51.0' in series
    assert 'tts_receiver_unmatched_alerts_total{alertname="DiskFullOnSomeOtherBox"} 2.0' in series


def test_the_shipped_config_and_the_demo_stack_name_their_target(tmp_path):
    shipped = load_config(Path(__file__).parents[2] / "tts-sentinel.yml").receiver
    assert [t.match for t in shipped.targets] == [{"service": "qwen3-tts"}]
    demo = SentinelConfig.model_validate(Stack(tmp_path).sentinel_config()).receiver
    assert [t.match for t in demo.targets] == [{"service": "qwen3-tts"}]
