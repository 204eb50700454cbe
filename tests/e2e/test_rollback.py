"""Drill: a validated model version that degrades after the switch is rolled back, end to end.

One real stack (supervisord, simulator, exporter, Prometheus, Alertmanager, receiver). The
service runs from `current -> versions/X`: v1 is the known-good version, v2 passed validation and
then degraded (noise instead of speech, the simulator's `version_fault`). The quality probe fails,
TtsQualityDegraded fires after its `for:` (24 h scaled to seconds for the drill), the receiver's
rollback tier switches back to v1, restarts and verifies, and the alert resolves.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import started_stack, wait_for

from tts_sentinel.exporter.baseline import record_baseline
from tts_sentinel.exporter.probes.config import ProbesConfig
from tts_sentinel.harness.drill import firing_alerts
from tts_sentinel.harness.stack import INFERENCE_PROGRAM, WEB_PROGRAM, Stack
from tts_sentinel.receiver.versions import VersionHistory, VersionRecord, VersionsConfig

pytestmark = pytest.mark.e2e
DRILL_FOR = "8s"  # TtsQualityDegraded's 24h, for the drill


class VersionedStack(Stack):
    """The demo stack with the simulator run from a versions folder and the quality probe on."""

    @property
    def current(self) -> Path:
        return self.dir / "current"

    @property
    def versions(self) -> Path:
        return self.dir / "versions"

    def sentinel_config(self) -> dict[str, Any]:
        config = super().sentinel_config()
        request = config["exporter"]["probes"]["synthesis"]["request"]
        config["exporter"]["probes"]["quality"] = {"enabled": True, "interval_seconds": 2.0, "request": request}
        config["exporter"]["probes"]["semantic"]["request"] = request  # `baseline` records its templates too
        config["exporter"]["probes"]["model_id"] = "sim/tts:v1"
        target = config["receiver"]["targets"][0]
        target.update(cache_dir=None, weights_dir=None, service_config=None, git_dir=None, versions={
            "versions_dir": str(self.versions), "current_link": str(self.current),
            "history_file": str(self.dir / "state" / "versions.json")})
        config["receiver"]["tiers"] = {"rollback": [
            {"action": "switch_version"}, {"action": "restart", "component": "all"},
            {"action": "wait", "seconds": 1.0}, {"action": "verify", "module": "quality"}]}
        return config

    def supervisord_conf(self) -> str:
        return super().supervisord_conf().replace(f"--config {self.config_path}", f"--config {self.current}/sim.yml")

    def write_configs(self) -> None:
        super().write_configs()
        simulator = self.sentinel_config()["simulator"]
        for name, fault in (("v1", None), ("v2", "noise")):
            (self.versions / name).mkdir(parents=True, exist_ok=True)
            section = {**simulator, "model_name": f"sim/tts:{name}"}
            if fault:
                section["version_fault"] = fault  # the degradation this release carries
            (self.versions / name / "sim.yml").write_text(yaml.safe_dump({"simulator": section}))
        if not self.current.is_symlink():
            self.current.symlink_to(self.versions / "v1")
        rules = self.dir / "rules" / "probes.rules.yml"
        doc = yaml.safe_load(rules.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == "TtsQualityDegraded":
                    rule["for"] = DRILL_FOR
        rules.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from started_stack(VersionedStack, tmp_path_factory.mktemp("rollback"))


def journal(stack: Stack) -> list[dict[str, Any]]:
    token = (stack.dir / "receiver.token").read_text().strip()
    return httpx.get(stack.url("receiver", "/actions"), headers={"Authorization": f"Bearer {token}"},
                     timeout=5).json()


def test_degradation_after_a_switch_rolls_back_to_the_previous_version_and_verifies(stack):
    config = yaml.safe_load(stack.config_path.read_text())
    record_baseline(ProbesConfig.model_validate(config["exporter"]["probes"]))  # v1's reference recordings
    history = VersionHistory(VersionsConfig.model_validate(config["receiver"]["targets"][0]["versions"]))
    history.record_switch(VersionRecord("v1", "sim/tts:v1", "1" * 64, "c1", validated=True))
    history.record_switch(VersionRecord("v2", "sim/tts:v2", "2" * 64, "c2", validated=True))

    # The switch to v2 (validated), whose weights turn out to degrade speech.
    tmp = stack.dir / ".current.switch"
    tmp.symlink_to(stack.versions / "v2")
    tmp.replace(stack.current)
    supervisor = stack.supervisor()
    for program in (INFERENCE_PROGRAM, WEB_PROGRAM):
        supervisor.stopProcess(program, True)
        supervisor.startProcess(program, True)
    switched = time.monotonic()

    def degraded_firing() -> bool:
        return any(a["labels"]["alertname"] == "TtsQualityDegraded"
                   for a in firing_alerts(stack.url("prometheus"), stack.web.auth()))

    wait_for(degraded_firing, 120, "TtsQualityDegraded firing")
    print(f"TtsQualityDegraded firing {time.monotonic() - switched:.0f}s after the switch (for: {DRILL_FOR})")
    job = wait_for(lambda: next((j for j in journal(stack) if j["tier"] == "rollback"
                                 and j["status"] not in ("queued", "running")), None), 120, "the rollback job")
    print({k: job[k] for k in ("id", "tier", "status", "note")})
    assert job["status"] == "succeeded", job
    assert stack.current.readlink() == stack.versions / "v1"
    assert job["steps"][0]["rollback"]["from"] == "v2" and job["steps"][0]["rollback"]["to"] == "v1"
    assert job["verification"]["module"] == "quality" and job["verification"]["success"], job
    assert history.switches()[-1].reason == "rollback from v2"
    wait_for(lambda: not degraded_firing(), 120, "TtsQualityDegraded resolved")
